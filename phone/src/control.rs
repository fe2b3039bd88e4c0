//! The phone's control socket (`--control PATH`, on a window `/run/ewindow/phone.sock`): line
//! JSON, `ewindow_protocol::phone`. Each connection is served on its own task; a bad line gets
//! an error reply, never ends the phone.

use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, Result};
use ewindow_protocol::phone::{Reply, Request};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::UnixListener;

use crate::members::Members;

/// Longest request line.
const MAX_LINE: usize = 64 * 1024;

/// Binds the socket (replacing a stale one) and serves it forever on a task.
pub fn serve(path: &Path, members: Option<Arc<Members>>) -> Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let _ = std::fs::remove_file(path);
    let listener =
        UnixListener::bind(path).with_context(|| format!("binding {}", path.display()))?;
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let members = members.clone();
            tokio::spawn(async move {
                let (read, mut write) = stream.into_split();
                let mut lines = BufReader::new(read.take(MAX_LINE as u64 * 16)).lines();
                while let Ok(Some(line)) = lines.next_line().await {
                    if line.trim().is_empty() {
                        continue;
                    }
                    let reply = answer(&line, members.as_deref());
                    let mut out = serde_json::to_vec(&reply).unwrap_or_default();
                    out.push(b'\n');
                    if write.write_all(&out).await.is_err() {
                        break;
                    }
                }
            });
        }
    });
    Ok(())
}

fn answer(line: &str, members: Option<&Members>) -> Reply {
    let fail = |e: String| Reply {
        ok: false,
        error: Some(e),
        ..Reply::default()
    };
    if line.len() > MAX_LINE {
        return fail("request too long".into());
    }
    let req = match serde_json::from_str::<Request>(line) {
        Ok(r) => r,
        Err(e) => return fail(format!("bad request: {e}")),
    };
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
            Ok(()) => Reply {
                ok: true,
                ..Reply::default()
            },
            Err(e) => fail(format!("{e:#}")),
        },
    }
}

use tokio::io::AsyncReadExt as _;
