//! The wireguard-go UAPI socket: where it is and how to wait for it.
//!
//! wireguard-go (Linux) binds `/var/run/wireguard/<iface>.sock`; the directory is a
//! compile-time constant in wireguard-go (`ipc.socketDirectory`) and
//! wireguard-control 2.0.0 hard-codes `/var/run/wireguard` (falling back to
//! `/run/wireguard`) as well. Neither can be pointed elsewhere, so isolating two
//! instances with the same interface name needs a private mount of that directory
//! (see netns-test.sh).

use std::{
    io,
    os::{
        fd::{AsFd, AsRawFd, RawFd},
        unix::{fs::DirBuilderExt, net::UnixStream},
    },
    path::{Path, PathBuf},
    time::Duration,
};

use anyhow::{Context, Result};
use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify};
use tokio::{io::unix::AsyncFd, time::Instant};

pub const SOCKET_DIR: &str = "/var/run/wireguard";

pub fn socket_path(iface: &str) -> PathBuf {
    Path::new(SOCKET_DIR).join(format!("{iface}.sock"))
}

/// `Inotify` only implements `AsFd`; `AsyncFd` wants `AsRawFd`.
struct InotifyFd(Inotify);

impl AsRawFd for InotifyFd {
    fn as_raw_fd(&self) -> RawFd {
        self.0.as_fd().as_raw_fd()
    }
}

/// Connects once: `Ok(true)` if wireguard-go answers, `Ok(false)` if the socket is
/// not there yet or not listening yet.
fn try_connect(path: &Path) -> io::Result<bool> {
    match UnixStream::connect(path) {
        // Dropping the probe connection is harmless: wireguard-go reads EOF and
        // closes its side.
        Ok(_) => Ok(true),
        Err(e)
            if matches!(
                e.kind(),
                io::ErrorKind::NotFound | io::ErrorKind::ConnectionRefused
            ) =>
        {
            Ok(false)
        }
        Err(e) => Err(e),
    }
}

/// Waits until wireguard-go accepts connections on its UAPI socket.
///
/// No busy polling: an inotify watch on the socket directory wakes us when the
/// socket file is created. The watch is set up before the connect attempt, so a
/// socket created in between is not missed. The only retry loop covers the short
/// window in which the file exists but wireguard-go has not called `listen()` yet
/// (or a stale socket of a killed instance is still there): that gives
/// ECONNREFUSED and no further inotify event.
pub async fn wait_for_socket(iface: &str, timeout: Duration) -> Result<Duration> {
    let start = Instant::now();
    let path = socket_path(iface);
    // Fast path (re-apply, status): no inotify instance at all, see below.
    if try_connect(&path).with_context(|| format!("connecting to {}", path.display()))? {
        return Ok(start.elapsed());
    }

    // wireguard-go does MkdirAll(0755) itself; creating it first lets us watch it.
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o755)
        .create(SOCKET_DIR)
        .with_context(|| format!("creating {SOCKET_DIR}"))?;
    let inotify = Inotify::init(InitFlags::IN_NONBLOCK | InitFlags::IN_CLOEXEC)?;
    inotify.add_watch(
        SOCKET_DIR,
        AddWatchFlags::IN_CREATE | AddWatchFlags::IN_MOVED_TO,
    )?;
    // SAFETY: the Inotify owns its fd, which is neither closed nor replaced while
    // registered (into_inner() below deregisters it first).
    let inotify = unsafe { AsyncFd::register(InotifyFd(inotify)) }.map_err(io::Error::from)?;

    let wait = async {
        while !try_connect(&path)? {
            if std::fs::symlink_metadata(&path).is_ok() {
                // Created but not listening yet: no inotify event will follow.
                tokio::time::sleep(Duration::from_millis(5)).await;
            } else {
                let mut guard = inotify.readable().await?;
                if let Ok(events) =
                    guard.try_io(|fd| fd.get_ref().0.read_events().map_err(io::Error::from))
                {
                    events?;
                }
            }
        }
        Ok::<_, io::Error>(())
    };
    let result = tokio::time::timeout(timeout, wait).await;
    let waited = start.elapsed();

    // close() of an inotify fd waits for an RCU grace period (~15 ms measured
    // here); do it off the critical path.
    let inotify = inotify.into_inner();
    std::thread::spawn(move || drop(inotify));

    result
        .with_context(|| format!("{} did not appear within {timeout:?}", path.display()))?
        .with_context(|| format!("connecting to {}", path.display()))?;
    Ok(waited)
}
