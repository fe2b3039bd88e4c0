//! Child processes for the demo and the image tests: spawned with their output lines on a
//! channel (and echoed with a prefix), and `sh -c` commands run to their end.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

/// Runs `sh -c cmd` to its end; its stdout, or an error with its stderr.
pub fn sh(cmd: &str) -> Result<String> {
    let out = Command::new("sh").arg("-c").arg(cmd).output()?;
    if !out.status.success() {
        bail!(
            "`{cmd}` failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// A child whose stdout and stderr lines are echoed with a prefix and also sent to a channel.
pub struct Running {
    /// The process.
    pub child: Child,
    lines: mpsc::Receiver<String>,
}

/// Spawns `cmd`, echoing each output line as `[name] line` when `echo` is set.
pub fn spawn(name: &str, mut cmd: Command, echo: bool) -> Result<Running> {
    cmd.stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .stdin(Stdio::null());
    let mut child = cmd
        .spawn()
        .with_context(|| format!("starting {name}: {cmd:?}"))?;
    let (tx, rx) = mpsc::channel();
    let out = child.stdout.take();
    let err = child.stderr.take();
    for stream in [
        out.map(|o| Box::new(o) as Box<dyn std::io::Read + Send>),
        err.map(|e| Box::new(e) as Box<dyn std::io::Read + Send>),
    ]
    .into_iter()
    .flatten()
    {
        let tx = tx.clone();
        let name = name.to_string();
        thread::spawn(move || {
            // bytes, not `lines()`: a serial console's first bytes are often not UTF-8 (a
            // UART's noise), and one bad byte must not end the reading
            let mut r = BufReader::new(stream);
            let mut buf = Vec::new();
            while r
                .read_until(b'\n', &mut buf)
                .map(|n| n > 0)
                .unwrap_or(false)
            {
                let line = String::from_utf8_lossy(&buf)
                    .trim_end_matches(['\n', '\r'])
                    .replace('\0', "");
                buf.clear();
                if echo {
                    println!("[{name}] {line}");
                }
                let _ = tx.send(line);
            }
        });
    }
    Ok(Running { child, lines: rx })
}

impl Running {
    /// The next output line, waiting at most `timeout`.
    pub fn next_line(&mut self, timeout: Duration) -> Result<String> {
        match self.lines.recv_timeout(timeout) {
            Ok(line) => Ok(line),
            Err(mpsc::RecvTimeoutError::Timeout) => bail!("no output line within {timeout:?}"),
            Err(mpsc::RecvTimeoutError::Disconnected) => bail!("the process's output ended"),
        }
    }

    /// Waits for the process to exit, killing it after `timeout`.
    pub fn finish(&mut self, timeout: Duration) -> Result<std::process::ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait()? {
                return Ok(status);
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                return Ok(self.child.wait()?);
            }
            thread::sleep(Duration::from_millis(50));
        }
    }
}
