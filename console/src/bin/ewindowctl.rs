//! `ewindowctl`: maintenance over SSH or serial, speaking the control sockets in
//! `/run/ewindow/`. Today: `ewindow-init`'s services (status, start, stop, restart) and
//! shutdown (reboot, poweroff).
//!
//! Exit status: 0 done; 1 the request was refused (unknown service …); 2 usage; 3 the socket
//! cannot be reached (init not running, wrong path, no permission).

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use ewindow_protocol::init::{ExitStatus, Reply, Request, Status};

#[derive(Parser)]
#[command(name = "ewindowctl", version, about = "Maintain an Electronic Window")]
struct Cli {
    /// `ewindow-init`'s control socket.
    #[arg(long, global = true, default_value = "/run/ewindow/init.sock")]
    control: PathBuf,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Every service's state, pid, restarts, last exit and uptime.
    Status {
        /// Machine-readable output (the reply's `status` object).
        #[arg(long)]
        json: bool,
    },
    /// Start a stopped or failed service.
    Start { service: String },
    /// Stop a service and keep it stopped.
    Stop { service: String },
    /// Stop a service and start it again.
    Restart { service: String },
    /// Orderly shutdown, then reboot.
    Reboot,
    /// Orderly shutdown, then power off.
    Poweroff,
}

/// Why a command failed, with its exit status.
enum Failure {
    Refused(String),
    Unreachable(anyhow::Error),
}

fn ask(socket: &Path, request: &Request) -> Result<Reply, Failure> {
    let reach = |e: std::io::Error| {
        Failure::Unreachable(anyhow::Error::new(e).context(format!(
            "cannot reach ewindow-init at {} (is it running? is this the right --control?)",
            socket.display()
        )))
    };
    let mut stream = UnixStream::connect(socket).map_err(reach)?;
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .map_err(reach)?;
    let mut line = serde_json::to_string(request).map_err(|e| Failure::Unreachable(e.into()))?;
    line.push('\n');
    stream.write_all(line.as_bytes()).map_err(reach)?;
    let mut answer = String::new();
    BufReader::new(&stream)
        .read_line(&mut answer)
        .map_err(reach)?;
    let reply: Reply = serde_json::from_str(answer.trim())
        .with_context(|| format!("ewindow-init answered something unexpected: {answer:?}"))
        .map_err(Failure::Unreachable)?;
    if reply.ok {
        Ok(reply)
    } else {
        Err(Failure::Refused(
            reply.error.unwrap_or_else(|| "refused".into()),
        ))
    }
}

fn exit_text(e: &Option<ExitStatus>) -> String {
    match e {
        None => "-".into(),
        Some(ExitStatus::Exited(code)) => format!("exit {code}"),
        Some(ExitStatus::Signaled(sig)) => sig.clone(),
        Some(ExitStatus::SpawnFailed(why)) => format!("not started: {why}"),
    }
}

fn seconds(s: Option<f64>) -> String {
    match s {
        None => "-".into(),
        Some(s) if s < 120.0 => format!("{s:.0}s"),
        Some(s) if s < 7200.0 => format!("{:.0}m", s / 60.0),
        Some(s) => format!("{:.1}h", s / 3600.0),
    }
}

/// The human form of `status`, readable on an 80-column serial terminal.
fn render(status: &Status) -> String {
    let mut out = format!(
        "ewindow-init pid {}{}, up {}, {} kB, config {}\n",
        status.init.pid,
        if status.init.pid1 { " (PID 1)" } else { "" },
        seconds(Some(status.init.uptime_s)),
        status.init.rss_kb,
        status.config.source
    );
    if let Some(err) = &status.config.error {
        out.push_str(&format!("config error: {err}\n"));
    }
    out.push_str(&format!(
        "{:<16} {:<9} {:>7} {:>8} {:>8}  {}\n",
        "SERVICE", "STATE", "PID", "RESTARTS", "UP", "LAST EXIT"
    ));
    for s in &status.services {
        out.push_str(&format!(
            "{:<16} {:<9} {:>7} {:>8} {:>8}  {}\n",
            s.name,
            s.state,
            s.pid.map_or("-".into(), |p| p.to_string()),
            s.restarts,
            seconds(s.uptime_s),
            exit_text(&s.last_exit)
        ));
    }
    out
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let request = match &cli.cmd {
        Cmd::Status { .. } => Request::Status,
        Cmd::Start { service } => Request::Start {
            service: service.clone(),
        },
        Cmd::Stop { service } => Request::Stop {
            service: service.clone(),
        },
        Cmd::Restart { service } => Request::Restart {
            service: service.clone(),
        },
        Cmd::Reboot => Request::Reboot,
        Cmd::Poweroff => Request::Poweroff,
    };
    match ask(&cli.control, &request) {
        Ok(reply) => {
            if let (Cmd::Status { json }, Some(status)) = (&cli.cmd, &reply.status) {
                if *json {
                    match serde_json::to_string_pretty(status) {
                        Ok(text) => println!("{text}"),
                        Err(e) => {
                            eprintln!("ewindowctl: {e}");
                            return ExitCode::from(1);
                        }
                    }
                } else {
                    print!("{}", render(status));
                }
            }
            ExitCode::SUCCESS
        }
        Err(Failure::Refused(why)) => {
            eprintln!("ewindowctl: {why}");
            ExitCode::from(1)
        }
        Err(Failure::Unreachable(e)) => {
            eprintln!("ewindowctl: {e:#}");
            ExitCode::from(3)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ewindow_protocol::init::{ConfigStatus, InitStatus, ServiceStatus};

    #[test]
    fn status_renders_every_service_in_80_columns() {
        let status = Status {
            init: InitStatus {
                pid: 1,
                pid1: true,
                uptime_s: 4000.0,
                cpu_ms: 12,
                rss_kb: 3408,
                orphans_reaped: 0,
                shutdown: None,
            },
            config: ConfigStatus {
                source: "/etc/ewindow/services.toml".into(),
                error: Some("services.toml:4: key `restrat`: unknown field".into()),
            },
            services: vec![ServiceStatus {
                name: "phone".into(),
                state: "backoff".into(),
                pid: None,
                restarts: 3,
                last_exit: Some(ExitStatus::Signaled("SIGKILL".into())),
                uptime_s: None,
                next_start_s: Some(4.0),
            }],
        };
        let text = render(&status);
        assert!(
            text.contains("(PID 1)") && text.contains("up 67m"),
            "{text}"
        );
        assert!(text.contains("config error: services.toml:4"), "{text}");
        let row = text.lines().find(|l| l.starts_with("phone")).unwrap();
        assert!(
            row.contains("backoff") && row.contains("SIGKILL") && row.contains(" 3 "),
            "{row}"
        );
        assert!(text.lines().all(|l| l.chars().count() <= 80), "{text}");
    }
}
