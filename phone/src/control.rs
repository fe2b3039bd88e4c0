//! The phone's control socket (`--control PATH`, on a window `/run/ewindow/phone.sock`): line
//! JSON, `ewindow_protocol::phone`. Each connection is served on its own task; a bad line gets
//! an error reply, never ends the phone.

use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, Result};
use ewindow_io::accept::{LINE_TIMEOUT, MAX_CONNECTIONS};
use ewindow_io::lines;
use ewindow_protocol::phone::{PhoneStatus, Reply, Request};
use tokio::io::{AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::{mpsc, watch};

use crate::members::Members;
use crate::sip::SipCountersFn;

/// A command from the control socket.
#[derive(Debug)]
pub enum Command {
    /// `call NAME`.
    Call(String),
    /// `next`.
    Next,
    /// `hangup`.
    Hangup,
    /// `curtain on|off`.
    Curtain(bool),
    /// The button's long press.
    CurtainToggle,
}

/// What the control socket needs from the running window.
#[derive(Clone)]
pub struct Handle {
    /// Commands into the loop.
    pub commands: mpsc::Sender<Command>,
    /// The latest status; subscribers watch it.
    pub status: watch::Receiver<PhoneStatus>,
}

/// Longest request line.
const MAX_LINE: usize = 64 * 1024;

/// Binds the socket (replacing a stale one) and serves it forever on a task.
pub fn serve(
    path: &Path,
    members: Option<Arc<Members>>,
    window: Option<Handle>,
    sip: SipCountersFn,
) -> Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let _ = std::fs::remove_file(path);
    let listener =
        UnixListener::bind(path).with_context(|| format!("binding {}", path.display()))?;
    tokio::spawn(ewindow_io::accept::serve(
        listener,
        "phone control",
        MAX_CONNECTIONS,
        move |stream: UnixStream, _| {
            connection(stream, members.clone(), window.clone(), sip.clone())
        },
    ));
    Ok(())
}

/// One client: request lines, a reply line each; after a subscribe, the status at once and
/// at every change (each second in a call).
async fn connection(
    stream: UnixStream,
    members: Option<Arc<Members>>,
    window: Option<Handle>,
    sip: SipCountersFn,
) {
    let (read, mut write) = stream.into_split();
    let mut read = BufReader::new(read);
    loop {
        let request =
            tokio::time::timeout(LINE_TIMEOUT, lines::read_line_async(&mut read, MAX_LINE));
        let line = match request.await {
            Err(_) | Ok(Ok(None)) => return,
            Ok(Ok(Some(line))) => line,
            Ok(Err(_)) => {
                let reply = fail("request too long".into());
                let _ = write.write_all(&lines::encode(&reply)).await;
                return;
            }
        };
        if line.trim().is_empty() {
            continue;
        }
        let subscribe = matches!(
            serde_json::from_str::<Request>(&line),
            Ok(Request::Subscribe)
        );
        let reply = answer(&line, members.as_deref(), window.as_ref(), &sip).await;
        if write.write_all(&lines::encode(&reply)).await.is_err() {
            return;
        }
        if let (true, true, Some(w)) = (subscribe, reply.ok, &window) {
            let mut rx = w.status.clone();
            loop {
                let line = lines::encode(&*rx.borrow_and_update());
                // A subscriber that stops reading is dropped, not waited for.
                let sent = tokio::time::timeout(LINE_TIMEOUT, write.write_all(&line)).await;
                if !matches!(sent, Ok(Ok(()))) || rx.changed().await.is_err() {
                    return;
                }
            }
        }
    }
}

fn fail(e: String) -> Reply {
    Reply {
        ok: false,
        error: Some(e),
        ..Reply::default()
    }
}

async fn answer(
    line: &str,
    members: Option<&Members>,
    window: Option<&Handle>,
    sip: &SipCountersFn,
) -> Reply {
    let req = match serde_json::from_str::<Request>(line) {
        Ok(r) => r,
        Err(e) => return fail(format!("bad request: {e}")),
    };
    if req == Request::Sip {
        return Reply {
            ok: true,
            sip: Some(sip()),
            ..Reply::default()
        };
    }
    let ok = Reply {
        ok: true,
        ..Reply::default()
    };
    let command = match &req {
        Request::Call { name } => Some(Command::Call(name.clone())),
        Request::Next => Some(Command::Next),
        Request::Hangup => Some(Command::Hangup),
        Request::Curtain { on: Some(on) } => Some(Command::Curtain(*on)),
        Request::Curtain { on: None } => Some(Command::CurtainToggle),
        _ => None,
    };
    if matches!(req, Request::Status | Request::Subscribe) || command.is_some() {
        let Some(w) = window else {
            return fail(
                "this phone is not a window (`ewindow-phone window`): no window state".into(),
            );
        };
        if let Request::Call { name } = &req {
            if members.and_then(|m| m.uri_of(name)).is_none() {
                return fail(format!("`{name}` is not a member"));
            }
        }
        return match command {
            Some(c) => match w.commands.send(c).await {
                Ok(()) => ok,
                Err(_) => fail("the window is stopping".into()),
            },
            None if matches!(req, Request::Status) => Reply {
                ok: true,
                status: Some(w.status.borrow().clone()),
                ..Reply::default()
            },
            None => ok,
        };
    }
    let Some(members) = members else {
        return fail("this phone runs without --window: it has no members".into());
    };
    match req {
        Request::Members => Reply {
            ok: true,
            members: Some(members.presence()),
            ..Reply::default()
        },
        Request::Reload => match members.reload() {
            Ok(()) => ok,
            Err(e) => fail(format!("{e:#}")),
        },
        _ => fail("unexpected request".into()),
    }
}
