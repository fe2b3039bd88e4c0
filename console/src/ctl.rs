//! `ewindowctl`: maintenance over SSH or serial, speaking the control sockets in
//! `/run/ewindow/`. Today: `ewindow-init`'s services (status, start, stop, restart) and
//! shutdown (reboot, poweroff).
//!
//! Exit status: 0 done; 1 the request was refused (unknown service …); 2 usage; 3 the socket
//! cannot be reached (init not running, wrong path, no permission).

use std::io::{BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use ewindow_io::lines;
use ewindow_protocol::init::{Event, ExitStatus, Reply, Request, Status};

#[derive(Parser)]
#[command(name = "ewindowctl", version, about = "Maintain an Electronic Window")]
struct Cli {
    /// `ewindow-init`'s control socket.
    #[arg(long, global = true, default_value = ewindow_io::paths::INIT_SOCKET)]
    control: PathBuf,
    /// `ewindow-overlay`'s control socket.
    #[arg(long, global = true, default_value = ewindow_io::paths::OVERLAY_SOCKET)]
    overlay_control: PathBuf,
    /// `ewindow-phone`'s control socket.
    #[arg(long, global = true, default_value = ewindow_io::paths::PHONE_SOCKET)]
    phone_control: PathBuf,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Every service's state, pid, restarts, last exit and uptime; the window's state.
    Status {
        /// Machine-readable output (init's `status` object, with the phone's status of the
        /// window as `window` when the phone answers).
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
    /// The last lines the services wrote; `-f` keeps following.
    Logs {
        /// Only this service.
        service: Option<String>,
        /// Keep printing new lines.
        #[arg(short, long)]
        follow: bool,
        /// How many past lines.
        #[arg(short = 'n', long, default_value_t = 50)]
        lines: usize,
    },
    /// Hang up and call this member now.
    Call { name: String },
    /// Hang up and move to the next online window (the button's short press).
    Next,
    /// Hang up (the window reopens by its rules).
    Hangup,
    /// Close (`on`) or open (`off`) the curtain, or `toggle` it: closed = no calls.
    Curtain {
        #[arg(value_parser = ["on", "off", "toggle"])]
        state: String,
    },
    /// This window's public key and overlay address.
    Identity {
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
    },
    /// Print a one-time invitation for a new window called NAME (valid one hour).
    Invite {
        /// The new member's name.
        name: String,
        /// Validity in seconds.
        #[arg(long, default_value_t = 3600)]
        ttl_s: u64,
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
    },
    /// Every member: reachability (SIP OPTIONS) and WireGuard handshake age.
    Members {
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
    },
    /// Follow service state changes as they happen (until init goes away or Ctrl-C).
    Events {
        /// One JSON object per line, as init sends them.
        #[arg(long)]
        json: bool,
    },
}

/// Why a command failed, with its exit status.
enum Failure {
    Refused(String),
    Unreachable(anyhow::Error),
}

fn ask(socket: &Path, request: &Request) -> Result<Reply, Failure> {
    ask_and_keep(socket, request).map(|(reply, _)| reply)
}

/// Sends one request, returns the reply and the connection (for `subscribe`).
fn ask_and_keep(
    socket: &Path,
    request: &Request,
) -> Result<(Reply, BufReader<UnixStream>), Failure> {
    let (reply, reader): (Reply, _) = exchange(
        socket,
        "ewindow-init",
        "is it running? is this the right --control?",
        request,
    )?;
    if reply.ok {
        Ok((reply, reader))
    } else {
        Err(Failure::Refused(
            reply.error.unwrap_or_else(|| "refused".into()),
        ))
    }
}

/// One JSON line out, one JSON line back, on a control socket; the connection is returned
/// for what may follow (a subscription).
fn exchange<Q: serde::Serialize, A: serde::de::DeserializeOwned>(
    socket: &Path,
    what: &str,
    hint: &str,
    request: &Q,
) -> Result<(A, BufReader<UnixStream>), Failure> {
    let reach = |e: std::io::Error| {
        Failure::Unreachable(anyhow::Error::new(e).context(format!(
            "cannot reach {what} at {} ({hint})",
            socket.display()
        )))
    };
    let mut stream = UnixStream::connect(socket).map_err(reach)?;
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .map_err(reach)?;
    stream.write_all(&lines::encode(request)).map_err(reach)?;
    let mut reader = BufReader::new(stream);
    let answer = lines::read_line(&mut reader, lines::MAX_REPLY)
        .map_err(reach)?
        .unwrap_or_default();
    let reply = serde_json::from_str(answer.trim())
        .with_context(|| format!("{what} answered something unexpected: {answer:?}"))
        .map_err(Failure::Unreachable)?;
    Ok((reply, reader))
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
    let sys = &status.system;
    if !sys.modules.is_empty() {
        let failed: Vec<String> = sys
            .modules
            .iter()
            .filter(|m| m.state == "failed")
            .map(|m| format!("{} ({})", m.name, m.error.as_deref().unwrap_or("failed")))
            .collect();
        let no_device = sys
            .modules
            .iter()
            .filter(|m| m.state == "no-device")
            .count();
        out.push_str(&format!(
            "modules: {} ok{}{}\n",
            sys.modules.len() - failed.len() - no_device,
            if no_device == 0 {
                String::new()
            } else {
                format!(", {no_device} without a device")
            },
            if failed.is_empty() {
                String::new()
            } else {
                format!(", failed: {}", failed.join(", "))
            }
        ));
    }
    if let Some(d) = &sys.data {
        out.push_str(&format!(
            "data: {} on {} {}{}{}\n",
            d.device,
            d.mountpoint,
            d.state,
            if d.created { " (created)" } else { "" },
            d.message
                .as_ref()
                .map(|m| format!(": {m}"))
                .unwrap_or_default()
        ));
    }
    if let Some(c) = &sys.clock {
        out.push_str(&format!(
            "clock: {}{}{}\n",
            c.saved_unix
                .map_or("not saved yet".into(), |t| format!("saved at {t}")),
            c.restored_unix
                .map(|t| format!(", restored to {t} at boot"))
                .unwrap_or_default(),
            c.error
                .as_ref()
                .map(|e| format!(", error: {e}"))
                .unwrap_or_default()
        ));
    }
    if let Some(w) = &sys.watchdog {
        out.push_str(&format!(
            "watchdog: {} {} {}s, {} pets{}\n",
            w.device,
            w.state,
            w.timeout_s,
            w.pets,
            w.error
                .as_ref()
                .map(|e| format!(", {e}"))
                .unwrap_or_default()
        ));
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

/// The window's state in one line: "window lab-a: open to lab-b (12 s, opus)".
fn window_line(st: &ewindow_protocol::phone::PhoneStatus) -> String {
    use ewindow_protocol::phone::WindowState;
    let what = match &st.state {
        WindowState::Open { with } => format!("open to {with}"),
        WindowState::Connecting { to } => format!("connecting to {to}"),
        WindowState::ClosedUntil { hh, mm } => format!("closed until {hh:02}:{mm:02}"),
        WindowState::Curtain => "curtain closed".into(),
        WindowState::Waiting => "waiting for a window to come online".into(),
        WindowState::SettingUp => "setting-up".into(),
    };
    let call = st
        .call
        .as_ref()
        .map(|c| format!(" ({:.0} s in call)", c.duration_s))
        .unwrap_or_default();
    let online = st.members.iter().filter(|m| m.reachable).count();
    format!(
        "window {}: {what}{call}; {online} of {} members online",
        st.window,
        st.members.len()
    )
}

/// One event as a line for people.
fn event_text(e: &Event) -> String {
    match e {
        Event::Service {
            name,
            state,
            pid,
            restarts,
        } => format!(
            "{name:<16} {state:<9} {:>7} {restarts:>3} restarts",
            pid.map_or("-".into(), |p| p.to_string())
        ),
        Event::Shutdown { kind } => format!("shutdown: {kind}"),
        Event::Log(l) => format!("{}: {}", l.service, l.line),
    }
}

/// `events`: subscribe and print until the connection ends.
fn follow(socket: &Path, json: bool) -> ExitCode {
    let mut reader = match ask_and_keep(socket, &Request::Subscribe) {
        Ok((_, r)) => r,
        Err(Failure::Refused(why)) => {
            eprintln!("ewindowctl: {why}");
            return ExitCode::from(1);
        }
        Err(Failure::Unreachable(e)) => {
            eprintln!("ewindowctl: {e:#}");
            return ExitCode::from(3);
        }
    };
    let _ = reader.get_ref().set_read_timeout(None);
    loop {
        match lines::read_line(&mut reader, lines::MAX_REPLY) {
            Ok(None) => return ExitCode::SUCCESS,
            Ok(Some(line)) => {
                let text = if json {
                    line.trim_end().to_owned()
                } else {
                    match serde_json::from_str::<Event>(line.trim()) {
                        Ok(e) => event_text(&e),
                        Err(_) => format!("? {}", line.trim()),
                    }
                };
                let mut out = std::io::stdout().lock();
                if writeln!(out, "{text}").and_then(|_| out.flush()).is_err() {
                    return ExitCode::SUCCESS;
                }
            }
            Err(e) => {
                eprintln!("ewindowctl: connection to ewindow-init lost: {e}");
                return ExitCode::from(3);
            }
        }
    }
}

/// One request to another process's control socket (overlay, phone): any serde types.
fn ask_json<Q: serde::Serialize, A: serde::de::DeserializeOwned>(
    socket: &Path,
    what: &str,
    request: &Q,
) -> Result<A, Failure> {
    exchange(socket, what, "is it running?", request).map(|(a, _)| a)
}

fn print_json(v: &impl serde::Serialize) {
    println!("{}", serde_json::to_string_pretty(v).unwrap_or_default());
}

/// `identity`, `invite`, `members`: the overlay (and the phone for presence).
fn network(cli: &Cli) -> Result<(), Failure> {
    use ewindow_protocol::overlay::{Reply as OReply, Request as ORequest};
    use ewindow_protocol::phone::{Reply as PReply, Request as PRequest};
    let overlay = |req: &ORequest| -> Result<OReply, Failure> {
        let r: OReply = ask_json(&cli.overlay_control, "ewindow-overlay", req)?;
        if r.ok {
            Ok(r)
        } else {
            Err(Failure::Refused(
                r.error.unwrap_or_else(|| "refused".into()),
            ))
        }
    };
    match &cli.cmd {
        Cmd::Identity { json } => {
            let r = overlay(&ORequest::Identity)?;
            if *json {
                print_json(&r);
            } else {
                println!("public key: {}", r.public_key.unwrap_or_default());
                println!("overlay address: {}", r.address.unwrap_or_default());
            }
        }
        Cmd::Invite { name, ttl_s, json } => {
            let r = overlay(&ORequest::Invite {
                name: name.clone(),
                ttl_s: Some(*ttl_s),
            })?;
            if *json {
                print_json(&r);
            } else {
                let code = r.invitation.unwrap_or_default();
                println!("{code}");
                // And as a QR code when a person is looking (the dashes dropped: a smaller code).
                use std::io::IsTerminal;
                if std::io::stdout().is_terminal() {
                    let compact = match code.split_once('-') {
                        Some((prefix, rest)) => format!("{prefix}-{}", rest.replace('-', "")),
                        None => code.clone(),
                    };
                    if let Some(qr) = crate::view::qr_text(&compact) {
                        print!("{qr}");
                    }
                }
                eprintln!(
                    "one-time invitation for `{name}`, valid {} min: type it (or scan it) on the new window",
                    ttl_s / 60
                );
            }
        }
        Cmd::Members { json } => {
            let peers = overlay(&ORequest::Members)?.members.unwrap_or_default();
            // Presence is the phone's; without it the WireGuard view still helps.
            let presence: Vec<ewindow_protocol::phone::MemberPresence> = match ask_json::<_, PReply>(
                &cli.phone_control,
                "ewindow-phone",
                &PRequest::Members,
            ) {
                Ok(r) if r.ok => r.members.unwrap_or_default(),
                _ => Vec::new(),
            };
            if *json {
                print_json(&serde_json::json!({"wireguard": peers, "presence": presence}));
            } else {
                println!(
                    "{:<20} {:<9} {:>8} {:>10}  {:<16} ENDPOINT",
                    "MEMBER", "SIP", "RTT", "HANDSHAKE", "PATH"
                );
                for p in &peers {
                    let pr = presence.iter().find(|m| m.name == p.name);
                    println!(
                        "{:<20} {:<9} {:>8} {:>10}  {:<16} {}",
                        p.name,
                        match pr {
                            Some(m) if m.reachable => "online",
                            Some(_) => "offline",
                            None => "?",
                        },
                        pr.and_then(|m| m.rtt_ms)
                            .map_or("-".into(), |ms| format!("{ms:.1}ms")),
                        p.last_handshake_age_s
                            .map_or("never".into(), |s| format!("{s}s ago")),
                        crate::model::path_words(p).unwrap_or_else(|| "-".into()),
                        p.endpoint.as_deref().unwrap_or("-")
                    );
                }
            }
        }
        _ => {}
    }
    Ok(())
}

/// `logs`: the past lines, then (with -f) the new ones as they come.
fn logs(cli: &Cli, service: &Option<String>, follow: bool, lines: usize) -> ExitCode {
    let code = |f: Failure| match f {
        Failure::Refused(why) => {
            eprintln!("ewindowctl: {why}");
            ExitCode::from(1)
        }
        Failure::Unreachable(e) => {
            eprintln!("ewindowctl: {e:#}");
            ExitCode::from(3)
        }
    };
    // Subscribe first, so that no line falls between the past ones and the stream.
    let stream = if follow {
        match ask_and_keep(&cli.control, &Request::Subscribe) {
            Ok((_, r)) => Some(r),
            Err(f) => return code(f),
        }
    } else {
        None
    };
    let past = match ask(
        &cli.control,
        &Request::Logs {
            service: service.clone(),
            lines: Some(lines),
        },
    ) {
        Ok(r) => r.logs.unwrap_or_default(),
        Err(f) => return code(f),
    };
    let mut out = std::io::stdout().lock();
    let mut seen = std::collections::HashSet::new();
    for l in &past {
        seen.insert((l.unix_ms, l.service.clone(), l.line.clone()));
        if writeln!(out, "{}: {}", l.service, l.line).is_err() {
            return ExitCode::SUCCESS;
        }
    }
    let _ = out.flush();
    let Some(mut reader) = stream else {
        return ExitCode::SUCCESS;
    };
    let _ = reader.get_ref().set_read_timeout(None);
    loop {
        match lines::read_line(&mut reader, lines::MAX_REPLY) {
            Ok(None) => return ExitCode::SUCCESS,
            Ok(Some(line)) => {
                if let Ok(Event::Log(l)) = serde_json::from_str::<Event>(line.trim()) {
                    let key = (l.unix_ms, l.service.clone(), l.line.clone());
                    if service.as_ref().is_some_and(|s| s != &l.service) || seen.contains(&key) {
                        continue;
                    }
                    if writeln!(out, "{}: {}", l.service, l.line)
                        .and_then(|_| out.flush())
                        .is_err()
                    {
                        return ExitCode::SUCCESS;
                    }
                }
            }
            Err(e) => {
                eprintln!("ewindowctl: connection to ewindow-init lost: {e}");
                return ExitCode::from(3);
            }
        }
    }
}

/// `call`, `next`, `hangup`, `curtain`: the phone.
fn phone(cli: &Cli) -> Result<(), Failure> {
    use ewindow_protocol::phone::{Reply as PReply, Request as PRequest};
    let req = match &cli.cmd {
        Cmd::Call { name } => PRequest::Call { name: name.clone() },
        Cmd::Next => PRequest::Next,
        Cmd::Hangup => PRequest::Hangup,
        Cmd::Curtain { state } => PRequest::Curtain {
            on: match state.as_str() {
                "on" => Some(true),
                "off" => Some(false),
                _ => None,
            },
        },
        _ => return Ok(()),
    };
    let r: PReply = ask_json(&cli.phone_control, "ewindow-phone", &req)?;
    if r.ok {
        Ok(())
    } else {
        Err(Failure::Refused(
            r.error.unwrap_or_else(|| "refused".into()),
        ))
    }
}

/// The program, with its command line (`std::env::args_os()` from a `main`).
pub fn main(args: Vec<std::ffi::OsString>) -> ExitCode {
    let cli = Cli::parse_from(args);
    if let Cmd::Logs {
        service,
        follow,
        lines,
    } = &cli.cmd
    {
        return logs(&cli, service, *follow, *lines);
    }
    if matches!(
        cli.cmd,
        Cmd::Call { .. } | Cmd::Next | Cmd::Hangup | Cmd::Curtain { .. }
    ) {
        return match phone(&cli) {
            Ok(()) => ExitCode::SUCCESS,
            Err(Failure::Refused(why)) => {
                eprintln!("ewindowctl: {why}");
                ExitCode::from(1)
            }
            Err(Failure::Unreachable(e)) => {
                eprintln!("ewindowctl: {e:#}");
                ExitCode::from(3)
            }
        };
    }
    if matches!(
        cli.cmd,
        Cmd::Identity { .. } | Cmd::Invite { .. } | Cmd::Members { .. }
    ) {
        return match network(&cli) {
            Ok(()) => ExitCode::SUCCESS,
            Err(Failure::Refused(why)) => {
                eprintln!("ewindowctl: {why}");
                ExitCode::from(1)
            }
            Err(Failure::Unreachable(e)) => {
                eprintln!("ewindowctl: {e:#}");
                ExitCode::from(3)
            }
        };
    }
    if let Cmd::Events { json } = cli.cmd {
        return follow(&cli.control, json);
    }
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
        Cmd::Events { .. } => Request::Subscribe,
        Cmd::Identity { .. }
        | Cmd::Invite { .. }
        | Cmd::Members { .. }
        | Cmd::Logs { .. }
        | Cmd::Call { .. }
        | Cmd::Next
        | Cmd::Hangup
        | Cmd::Curtain { .. } => unreachable!("handled above"),
    };
    match ask(&cli.control, &request) {
        Ok(reply) => {
            if let (Cmd::Status { json }, Some(status)) = (&cli.cmd, &reply.status) {
                use ewindow_protocol::phone::{Reply as PReply, Request as PRequest};
                // The window itself, when the phone is there.
                let window =
                    ask_json::<_, PReply>(&cli.phone_control, "ewindow-phone", &PRequest::Status)
                        .ok()
                        .and_then(|r| r.status);
                if *json {
                    // init's status, and the window's as `window` (absent without a phone)
                    let mut v = serde_json::to_value(status).unwrap_or_default();
                    if let (Some(map), Some(w)) = (v.as_object_mut(), &window) {
                        map.insert("window".into(), serde_json::to_value(w).unwrap_or_default());
                    }
                    match serde_json::to_string_pretty(&v) {
                        Ok(text) => println!("{text}"),
                        Err(e) => {
                            eprintln!("ewindowctl: {e}");
                            return ExitCode::from(1);
                        }
                    }
                } else {
                    print!("{}", render(status));
                    if let Some(st) = &window {
                        println!("{}", window_line(st));
                    }
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
            system: ewindow_protocol::init::SystemStatus {
                modules: vec![
                    ewindow_protocol::init::ModuleStatus {
                        name: "wireguard".into(),
                        state: "failed".into(),
                        error: Some("not found".into()),
                    },
                    ewindow_protocol::init::ModuleStatus {
                        name: "i915".into(),
                        state: "no-device".into(),
                        error: None,
                    },
                ],
                data: Some(ewindow_protocol::init::DataStatus {
                    device: "/dev/vda3".into(),
                    mountpoint: "/data".into(),
                    state: "read-only".into(),
                    created: false,
                    message: Some("fsck exit 4".into()),
                }),
                clock: None,
                watchdog: None,
            },
        };
        let text = render(&status);
        assert!(
            text.contains("(PID 1)") && text.contains("up 67m"),
            "{text}"
        );
        assert!(text.contains("config error: services.toml:4"), "{text}");
        assert!(
            text.contains("modules: 0 ok, 1 without a device, failed: wireguard (not found)"),
            "{text}"
        );
        assert!(
            text.contains("data: /dev/vda3 on /data read-only: fsck exit 4"),
            "{text}"
        );
        let row = text.lines().find(|l| l.starts_with("phone")).unwrap();
        assert!(
            row.contains("backoff") && row.contains("SIGKILL") && row.contains(" 3 "),
            "{row}"
        );
        assert!(text.lines().all(|l| l.chars().count() <= 80), "{text}");
    }
}
