//! The accept loop of every server socket: each connection is served on its own task, at
//! most `max` at once (more wait in the kernel's backlog), and an accept error (EMFILE when
//! the process is out of descriptors, ENOBUFS…) is logged and waited out with a growing
//! pause instead of spinning.

use std::future::Future;
use std::io;
use std::sync::Arc;

use tokio::sync::Semaphore;

/// Connections a server serves at once (more wait in the kernel's backlog): enough that a
/// burst of slow clients does not shut out the real ones, few enough that their buffers stay
/// small (each holds at most one line of its server's limit).
pub const MAX_CONNECTIONS: usize = 64;

/// How long a client has to send a whole request line (and a subscriber to take a status
/// line) before its connection is closed: a client that connects and sends nothing holds a
/// slot no longer than this.
pub const LINE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// A listening socket (Unix or TCP).
pub trait Listener: Send + Sync + 'static {
    /// A connection.
    type Stream: Send + 'static;
    /// Who connected.
    type Peer: Send + 'static;
    /// The next connection.
    fn next(&self) -> impl Future<Output = io::Result<(Self::Stream, Self::Peer)>> + Send;
}

impl Listener for tokio::net::UnixListener {
    type Stream = tokio::net::UnixStream;
    type Peer = tokio::net::unix::SocketAddr;
    fn next(&self) -> impl Future<Output = io::Result<(Self::Stream, Self::Peer)>> + Send {
        self.accept()
    }
}

impl Listener for tokio::net::TcpListener {
    type Stream = tokio::net::TcpStream;
    type Peer = std::net::SocketAddr;
    fn next(&self) -> impl Future<Output = io::Result<(Self::Stream, Self::Peer)>> + Send {
        self.accept()
    }
}

/// Serves `listener` forever: `serve(stream, peer)` on a task per connection, at most `max`
/// of them at once. `what` names the socket in the log.
pub async fn serve<L, F, Fut>(listener: L, what: &'static str, max: usize, serve: F)
where
    L: Listener,
    F: Fn(L::Stream, L::Peer) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let slots = Arc::new(Semaphore::new(max.max(1)));
    let mut errors = 0u32;
    loop {
        let Ok(slot) = slots.clone().acquire_owned().await else {
            return; // the semaphore is never closed
        };
        match listener.next().await {
            Ok((stream, peer)) => {
                errors = 0;
                let task = serve(stream, peer);
                tokio::spawn(async move {
                    task.await;
                    drop(slot);
                });
            }
            Err(e) => {
                let pause = crate::accept_backoff(errors);
                errors = errors.saturating_add(1);
                tracing::warn!(socket = what, "accept: {e} (retrying in {pause:?})");
                drop(slot);
                tokio::time::sleep(pause).await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;
    use tokio::io::AsyncReadExt;

    /// More clients than slots: only `max` are served at once, the others wait and are
    /// served when one leaves.
    #[tokio::test(flavor = "current_thread")]
    async fn connections_are_capped() {
        let dir = std::env::temp_dir().join(format!("ewindow-io-accept-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("s.sock");
        let listener = tokio::net::UnixListener::bind(&path).unwrap();
        let live = Arc::new(AtomicUsize::new(0));
        let most = Arc::new(AtomicUsize::new(0));
        let (l, m) = (live.clone(), most.clone());
        tokio::spawn(serve(
            listener,
            "test",
            2,
            move |mut s: tokio::net::UnixStream, _| {
                let (l, m) = (l.clone(), m.clone());
                async move {
                    let now = l.fetch_add(1, Ordering::SeqCst) + 1;
                    m.fetch_max(now, Ordering::SeqCst);
                    let mut b = [0u8; 1];
                    let _ = s.read(&mut b).await; // until the client closes
                    l.fetch_sub(1, Ordering::SeqCst);
                }
            },
        ));
        let mut clients = Vec::new();
        for _ in 0..5 {
            clients.push(tokio::net::UnixStream::connect(&path).await.unwrap());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(live.load(Ordering::SeqCst), 2);
        drop(clients.drain(..3));
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(
            live.load(Ordering::SeqCst),
            2,
            "the waiting ones are served"
        );
        drop(clients);
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(live.load(Ordering::SeqCst), 0);
        assert_eq!(most.load(Ordering::SeqCst), 2);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
