//! `ewindow-console`: the window's face on tty1 (and in any terminal).
//!
//! Before `window.toml` exists it runs the first-boot wizard ([`wizard`]); then the status
//! console ([`view`]), fed by the sockets: `ewindow-init`'s subscribe stream (services, log
//! lines), `ewindow-phone`'s subscribe stream (state, presence, the call) and the overlay's
//! `members` (handshake ages, asked every 15 s). Keys go to the phone (`n`, `c`, `h`) or
//! change the screen (`l`, `?`, Esc). A socket that is not there yet is shown as "Waiting
//! for …" and tried again every 2 s; nothing else wakes the console but events.

use crate::{devices, model, view, wizard};

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{anyhow, Context, Result};
use clap::Parser;
use ewindow_io::lines;
use ewindow_protocol::init::{Event as InitEvent, Reply as InitReply, Request as InitRequest};
use ewindow_protocol::keys::PrivateKey;
use ewindow_protocol::overlay::{PeerStatus, Reply as OReply, Request as ORequest};
use ewindow_protocol::phone::{PhoneStatus, Reply as PReply, Request as PRequest};
use ewindow_protocol::window::{self, PublicKey};
use ratatui::crossterm::event::{Event as TermEvent, KeyCode, KeyEventKind, KeyModifiers};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::UnixStream;
use tokio::sync::mpsc;

use view::{Model, Screen};

#[derive(Parser, Debug, Clone)]
#[command(
    name = "ewindow-console",
    version,
    about = "The window's status console and first-boot wizard"
)]
struct Cli {
    /// `ewindow-init`'s control socket.
    #[arg(long, default_value = ewindow_io::paths::INIT_SOCKET)]
    init_control: PathBuf,
    /// `ewindow-phone`'s control socket.
    #[arg(long, default_value = ewindow_io::paths::PHONE_SOCKET)]
    phone_control: PathBuf,
    /// `ewindow-overlay`'s control socket.
    #[arg(long, default_value = ewindow_io::paths::OVERLAY_SOCKET)]
    overlay_control: PathBuf,
    /// The window file; the wizard runs while it does not exist.
    #[arg(long, default_value = ewindow_io::paths::WINDOW_FILE)]
    window: PathBuf,
    /// The identity key (made by the overlay at its first start).
    #[arg(long, default_value = ewindow_io::paths::IDENTITY_KEY)]
    identity: PathBuf,
    /// Where the wizard writes the SSH key.
    #[arg(long, default_value = ewindow_io::paths::AUTHORIZED_KEYS)]
    authorized_keys: PathBuf,
    /// The phone program the wizard runs for its device checks (`probe`).
    #[arg(long, default_value = "/usr/bin/ewindow-phone")]
    phone_bin: PathBuf,
    /// The overlay program the wizard runs to redeem an invitation.
    #[arg(long, default_value = "/usr/bin/ewindow-overlay")]
    overlay_bin: PathBuf,
    /// Extra arguments for `ewindow-overlay redeem` and `found` (repeatable), e.g.
    /// `--interface=ewin0`.
    #[arg(long = "redeem-arg", allow_hyphen_values = true)]
    redeem_args: Vec<String>,
    /// Let `s` open a shell on this terminal (the serial console of a window whose services
    /// file enables it). The console gives way to /bin/sh; when the shell ends, ewindow-init
    /// starts the console again.
    #[arg(long)]
    shell: bool,
    /// Where USB sticks are mounted (repeatable).
    #[arg(long = "usb-root", default_values = ["/media", "/run/media", "/mnt"])]
    usb_roots: Vec<PathBuf>,
    /// Repaint the whole screen every this many seconds (0: only what changes). A serial
    /// console shows ewindow-init's log between the screens; the repaint heals it.
    #[arg(long, default_value_t = 0)]
    repaint_s: u64,
}

/// Everything that wakes the console.
enum Msg {
    Term(TermEvent),
    /// The overlay made an invitation: name, code, expiry.
    Invited(String, String, u64),
    InitUp(Box<ewindow_protocol::init::Status>, Vec<String>),
    Init(Box<InitEvent>),
    InitDown,
    Phone(Box<PhoneStatus>),
    PhoneDown,
    Overlay(Option<Vec<PeerStatus>>),
    Minute,
    Outcome(Result<String, String>),
    Rescan,
    Flash(String),
    Probe(wizard::Input),
    /// Time for the whole screen again (`--repaint-s`).
    Repaint,
}

/// The program, with its command line (`std::env::args_os()` from a `main`).
pub fn main(args: Vec<std::ffi::OsString>) -> ExitCode {
    let cli = Cli::parse_from(args);
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("ewindow-console: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mut terminal = ratatui::init();
    let result = rt.block_on(run(cli, &mut terminal));
    ratatui::restore();
    match result {
        Ok(Exit::Shell) => {
            use std::os::unix::process::CommandExt;
            println!("ewindow-console: shell (exit to return to the console)");
            let e = std::process::Command::new("/bin/sh").arg("-l").exec();
            eprintln!("ewindow-console: /bin/sh: {e}");
            ExitCode::FAILURE
        }
        Ok(Exit::Quit) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ewindow-console: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// How the console ends.
enum Exit {
    Quit,
    Shell,
}

async fn run(cli: Cli, terminal: &mut ratatui::DefaultTerminal) -> Result<Exit> {
    let (tx, mut rx) = mpsc::unbounded_channel::<Msg>();
    // Terminal input on its own thread (crossterm's read blocks).
    {
        let tx = tx.clone();
        std::thread::spawn(move || {
            while let Ok(ev) = ratatui::crossterm::event::read() {
                if tx.send(Msg::Term(ev)).is_err() {
                    break;
                }
            }
        });
    }
    if cli.repaint_s > 0 {
        let (tx, every) = (tx.clone(), Duration::from_secs(cli.repaint_s));
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(every).await;
                if tx.send(Msg::Repaint).is_err() {
                    break;
                }
            }
        });
    }
    if !cli.window.exists() && !first_boot(&cli, terminal, &tx, &mut rx).await? {
        return Ok(Exit::Quit);
    }
    status_console(&cli, terminal, &tx, &mut rx).await
}

/// The whole screen again at the next draw. Not `Terminal::clear`: that asks the terminal
/// where its cursor is, and a serial line with nobody on it never answers.
fn repaint(terminal: &mut ratatui::DefaultTerminal) -> Result<()> {
    let size = terminal.size()?;
    terminal.resize(ratatui::layout::Rect::new(0, 0, size.width, size.height))?;
    Ok(())
}

// ----- first boot ------------------------------------------------------------------------

/// Runs the wizard until the window is set up (true) or the user quits (false).
async fn first_boot(
    cli: &Cli,
    terminal: &mut ratatui::DefaultTerminal,
    tx: &mpsc::UnboundedSender<Msg>,
    rx: &mut mpsc::UnboundedReceiver<Msg>,
) -> Result<bool> {
    // The overlay makes the key at its first start; wait for it (never make it here: two
    // makers could race).
    let key = loop {
        if let Ok(text) = std::fs::read_to_string(&cli.identity) {
            if let Ok(k) = PrivateKey::from_base64(text.trim()) {
                break k;
            }
        }
        let mut m = Model {
            clock: ewindow_io::localtime::clock(),
            ..Model::default()
        };
        model::waiting(&mut m, model::OVERLAY, &cli.identity.display().to_string());
        terminal.draw(|f| view::render(f, &m, Screen::Main))?;
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            Some(Msg::Term(TermEvent::Key(k))) = rx.recv() => {
                if k.code == KeyCode::Char('c') && k.modifiers.contains(KeyModifiers::CONTROL) {
                    return Ok(false);
                }
            }
        }
    };
    let own = key.public_key();
    let mut wiz = wizard::Wizard::new(own.to_base64());
    let scan = |w: &mut wizard::Wizard, cli: &Cli| {
        let (microphones, speakers) = devices::audio();
        let mut actions = w.handle(wizard::Input::Devices {
            cameras: devices::cameras(),
            microphones,
            speakers,
        });
        let roots: Vec<&Path> = cli.usb_roots.iter().map(|p| p.as_path()).collect();
        actions.extend(w.handle(wizard::Input::UsbRosters(devices::usb_rosters(&roots))));
        actions.extend(w.handle(wizard::Input::Now(ewindow_io::localtime::now_unix())));
        actions
    };
    let _ = scan(&mut wiz, cli);
    {
        let tx = tx.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_secs(3)).await;
                if tx.send(Msg::Rescan).is_err() {
                    break;
                }
            }
        });
    }
    let mut done = false;
    let mut level: Option<tokio::process::Child> = None;
    loop {
        terminal.draw(|f| wizard::render(f, &wiz))?;
        let Some(msg) = rx.recv().await else {
            return Ok(false);
        };
        let actions = match msg {
            Msg::Term(TermEvent::Key(k)) if k.kind != KeyEventKind::Release => {
                if k.code == KeyCode::Char('c') && k.modifiers.contains(KeyModifiers::CONTROL) {
                    return Ok(false);
                }
                if done && k.code == KeyCode::Enter {
                    return Ok(true);
                }
                match wizard::Key::from_crossterm(&k) {
                    Some(key) => wiz.handle(wizard::Input::Key(key)),
                    None => Vec::new(),
                }
            }
            Msg::Term(TermEvent::Paste(text)) => wiz.handle(wizard::Input::Paste(text)),
            // Another console (tty1, serial) finished the set-up: show the status.
            Msg::Rescan if cli.window.exists() && !done => return Ok(true),
            Msg::Rescan => scan(&mut wiz, cli),
            Msg::Outcome(r) => {
                done = r.is_ok();
                let ok = r.is_ok();
                let actions = wiz.handle(wizard::Input::Outcome(r));
                if ok {
                    // Show the success a moment, then the status console (no reboot).
                    let tx = tx.clone();
                    tokio::spawn(async move {
                        tokio::time::sleep(Duration::from_secs(2)).await;
                        let _ = tx.send(Msg::Flash("setup done".into()));
                    });
                }
                actions
            }
            Msg::Flash(_) if done => return Ok(true),
            Msg::Probe(input) => wiz.handle(input),
            Msg::Repaint => {
                repaint(terminal)?;
                Vec::new()
            }
            _ => Vec::new(),
        };
        for a in actions {
            match a {
                wizard::Action::StartLevel(dev) => {
                    level = probe(cli, tx, &["level", "--audio-source", &dev]);
                }
                wizard::Action::StopLevel => {
                    if let Some(mut c) = level.take() {
                        let _ = c.start_kill();
                    }
                }
                wizard::Action::ProbeCamera(dev) => {
                    let _ = probe(cli, tx, &["camera", "--video-source", &dev]);
                }
                wizard::Action::PlayTone(dev) => {
                    let _ = probe(cli, tx, &["tone", "--audio-sink", &dev]);
                }
                wizard::Action::Finish(answers) => {
                    let tx = tx.clone();
                    let cli = cli.clone();
                    tokio::spawn(async move {
                        let r = provision(&cli, &answers, &own)
                            .await
                            .map_err(|e| format!("{e:#}"));
                        let _ = tx.send(Msg::Outcome(r));
                    });
                }
            }
        }
    }
}

/// Runs `ewindow-phone probe ARGS` and turns its lines (`level -23.5`, `fps 29.8`) into
/// wizard inputs. The child dies with the console (`kill_on_drop`).
fn probe(
    cli: &Cli,
    tx: &mpsc::UnboundedSender<Msg>,
    args: &[&str],
) -> Option<tokio::process::Child> {
    let mut child = tokio::process::Command::new(&cli.phone_bin)
        .arg("probe")
        .args(args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .ok()?;
    let out = child.stdout.take()?;
    let tx = tx.clone();
    tokio::spawn(async move {
        let mut lines = BufReader::new(out).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            let input = if let Some(v) = line.strip_prefix("level ") {
                v.parse().ok().map(wizard::Input::Level)
            } else if let Some(v) = line.strip_prefix("fps ") {
                v.parse().ok().map(|fps| wizard::Input::CameraProbe { fps })
            } else if line.starts_with("error ") {
                Some(wizard::Input::CameraProbe { fps: 0.0 })
            } else {
                None
            };
            if let Some(i) = input {
                if tx.send(Msg::Probe(i)).is_err() {
                    break;
                }
            }
        }
    });
    Some(child)
}

/// Carries out the wizard's answers: the SSH key, then the window file — from the roster
/// file, or by redeeming the invitation (`ewindow-overlay redeem` writes a temporary file
/// that gets the open hours and devices before it becomes `window.toml`). The window file is
/// written last and atomically: its appearance is what starts the overlay and the phone.
async fn provision(cli: &Cli, answers: &wizard::Answers, own: &PublicKey) -> Result<String> {
    let files = wizard::answers_to_files(answers, Some(own)).map_err(|e| anyhow!(e))?;
    let mut config = match (&files.window, &answers.join) {
        (Some(config), _) => config.clone(),
        (None, join @ (wizard::Join::Invitation { .. } | wizard::Join::Found)) => {
            // the overlay writes the window file (redeemed, or founded) to a temporary path
            let tmp = cli.window.with_extension("redeemed");
            let _ = std::fs::remove_file(&tmp);
            let mut overlay = tokio::process::Command::new(&cli.overlay_bin);
            match join {
                wizard::Join::Invitation { code } => overlay.arg("redeem").arg(code),
                _ => overlay.arg("found").arg(&files.name),
            };
            let out = overlay
                .arg("--window")
                .arg(&tmp)
                .arg("--identity")
                .arg(&cli.identity)
                .args(&cli.redeem_args)
                .output()
                .await
                .with_context(|| format!("running {}", cli.overlay_bin.display()))?;
            if !out.status.success() {
                let err = String::from_utf8_lossy(&out.stderr);
                let last = err.lines().last().unwrap_or("joining failed").to_owned();
                return Err(anyhow!(last
                    .trim_start_matches("ewindow-overlay: ")
                    .to_owned()));
            }
            let written = std::fs::read_to_string(&tmp)
                .with_context(|| format!("reading {}", tmp.display()))?;
            let _ = std::fs::remove_file(&tmp);
            wizard::patch_redeemed(&written, files.open_hours, Some(own)).map_err(|e| anyhow!(e))?
        }
        (None, wizard::Join::Roster { .. }) => unreachable_roster()?,
    };
    files.media.apply(&mut config);
    let text = wizard::window_text(&config, Some(own)).map_err(|e| anyhow!(e))?;
    let name = config.name;
    if let Some(keys) = &files.authorized_keys {
        ewindow_io::write_atomically(&cli.authorized_keys, keys.as_bytes(), 0o600)?;
    }
    ewindow_io::write_atomically(&cli.window, text.as_bytes(), 0o644)?;
    Ok(format!(
        "This window is {name}. It opens to the others in a moment."
    ))
}

fn unreachable_roster() -> Result<window::WindowConfig> {
    Err(anyhow!("the roster file gave no window file"))
}

// ----- status console --------------------------------------------------------------------

async fn status_console(
    cli: &Cli,
    terminal: &mut ratatui::DefaultTerminal,
    tx: &mpsc::UnboundedSender<Msg>,
    rx: &mut mpsc::UnboundedReceiver<Msg>,
) -> Result<Exit> {
    spawn_init(cli.init_control.clone(), tx.clone());
    spawn_phone(cli.phone_control.clone(), tx.clone());
    spawn_overlay(cli.overlay_control.clone(), tx.clone());
    spawn_minutes(tx.clone());
    let mut m = Model {
        clock: ewindow_io::localtime::clock(),
        ..Model::default()
    };
    if let Ok(k) = std::fs::read_to_string(&cli.identity)
        .map_err(|_| ())
        .and_then(|t| PrivateKey::from_base64(t.trim()).map_err(|_| ()))
    {
        m.public_key = Some(k.public_key().to_base64());
    }
    let mut screen = Screen::Main;
    let mut naming: Option<String> = None;
    loop {
        terminal.draw(|f| view::render(f, &m, screen))?;
        let Some(msg) = rx.recv().await else {
            return Ok(Exit::Quit);
        };
        match msg {
            Msg::Term(TermEvent::Key(k)) if k.kind != KeyEventKind::Release => {
                if k.code == KeyCode::Char('c') && k.modifiers.contains(KeyModifiers::CONTROL) {
                    return Ok(Exit::Quit);
                }
                // `i`: the name of the window to invite, typed under the headline
                if let Some(name) = &mut naming {
                    match k.code {
                        KeyCode::Char(c) if name.len() < 32 => name.push(c.to_ascii_lowercase()),
                        KeyCode::Backspace => {
                            name.pop();
                        }
                        KeyCode::Enter => {
                            let name = naming.take().unwrap_or_default();
                            m.message = Some(format!("inviting {name}…"));
                            spawn_invite(cli.overlay_control.clone(), name, tx.clone());
                            continue;
                        }
                        KeyCode::Esc => {
                            naming = None;
                            m.message = None;
                            continue;
                        }
                        _ => {}
                    }
                    m.message = Some(naming_prompt(naming.as_deref().unwrap_or("")));
                    continue;
                }
                if k.code == KeyCode::Char('i') {
                    naming = Some(String::new());
                    m.message = Some(naming_prompt(""));
                    continue;
                }
                if k.code == KeyCode::Char('s') {
                    if cli.shell {
                        return Ok(Exit::Shell);
                    }
                    m.message =
                        Some("no shell on this console (the services file can enable one)".into());
                    continue;
                }
                let request = match k.code {
                    KeyCode::Char('n') => Some((PRequest::Next, "next window…")),
                    KeyCode::Char('c') => Some((PRequest::Curtain { on: None }, "curtain…")),
                    KeyCode::Char('h') => Some((PRequest::Hangup, "hanging up…")),
                    KeyCode::Char('l') => {
                        screen = if screen == Screen::Logs {
                            Screen::Main
                        } else {
                            Screen::Logs
                        };
                        None
                    }
                    KeyCode::Char('?') => {
                        screen = if screen == Screen::Help {
                            Screen::Main
                        } else {
                            Screen::Help
                        };
                        None
                    }
                    KeyCode::Esc | KeyCode::Char('q') => {
                        screen = Screen::Main;
                        None
                    }
                    _ => None,
                };
                if let Some((req, what)) = request {
                    m.message = Some(what.into());
                    let path = cli.phone_control.clone();
                    let tx = tx.clone();
                    tokio::spawn(async move {
                        let flash = match ask::<_, PReply>(&path, &req).await {
                            Ok(r) if r.ok => None,
                            Ok(r) => r.error,
                            Err(e) => Some(format!("the phone does not answer: {e}")),
                        };
                        if let Some(f) = flash {
                            let _ = tx.send(Msg::Flash(f));
                        }
                    });
                }
            }
            Msg::Term(_) => {} // resize and the rest: redraw
            Msg::InitUp(st, logs) => {
                model::arrived(&mut m, model::INIT);
                model::apply_init_status(&mut m, &st);
                m.logs.clear();
                for l in logs {
                    model::push_log(&mut m, l);
                }
            }
            Msg::Init(ev) => model::apply_init_event(&mut m, &ev),
            Msg::InitDown => {
                model::waiting(&mut m, model::INIT, &cli.init_control.display().to_string())
            }
            Msg::Phone(st) => {
                model::arrived(&mut m, model::PHONE);
                model::apply_phone(&mut m, &st);
                if m.message.as_deref().is_some_and(|t| t.ends_with('…')) {
                    m.message = None;
                }
            }
            Msg::PhoneDown => model::waiting(
                &mut m,
                model::PHONE,
                &cli.phone_control.display().to_string(),
            ),
            Msg::Overlay(Some(peers)) => {
                model::arrived(&mut m, model::OVERLAY);
                model::apply_overlay(&mut m, &peers);
            }
            Msg::Overlay(None) => model::waiting(
                &mut m,
                model::OVERLAY,
                &cli.overlay_control.display().to_string(),
            ),
            Msg::Minute => {
                m.clock = ewindow_io::localtime::clock();
                model::tick(&mut m, ewindow_io::localtime::now_unix());
            }
            Msg::Invited(name, code, expires) => {
                model::invitation_made(&mut m, &name, code, expires)
            }
            Msg::Flash(text) => m.message = Some(text),
            Msg::Repaint => repaint(terminal)?,
            Msg::Outcome(_) | Msg::Rescan | Msg::Probe(_) => {}
        }
    }
}

/// One request, one reply line.
async fn ask<Q: serde::Serialize, A: serde::de::DeserializeOwned>(
    path: &Path,
    req: &Q,
) -> Result<A> {
    let mut s = UnixStream::connect(path).await?;
    s.write_all(&lines::encode(req)).await?;
    let mut r = BufReader::new(s);
    let answer = tokio::time::timeout(
        Duration::from_secs(5),
        lines::read_line_async(&mut r, lines::MAX_REPLY),
    )
    .await
    .map_err(|_| anyhow!("no answer"))??
    .ok_or_else(|| anyhow!("closed"))?;
    Ok(serde_json::from_str(answer.trim())?)
}

/// Opens a subscription: sends `req`, checks the `ok` line, returns the stream of the rest
/// (read with [`next_line`]).
async fn subscribe<Q: serde::Serialize>(path: &Path, req: &Q) -> Result<BufReader<UnixStream>> {
    let mut s = UnixStream::connect(path).await?;
    s.write_all(&lines::encode(req)).await?;
    let mut r = BufReader::new(s);
    let first = next_line(&mut r).await?.ok_or_else(|| anyhow!("closed"))?;
    let ok: serde_json::Value = serde_json::from_str(&first)?;
    if ok["ok"] != true {
        return Err(anyhow!("refused: {first}"));
    }
    Ok(r)
}

/// The next line of a subscription.
async fn next_line(r: &mut BufReader<UnixStream>) -> std::io::Result<Option<String>> {
    lines::read_line_async(r, lines::MAX_REPLY).await
}

/// The line under the headline while the name of a window to invite is typed.
fn naming_prompt(name: &str) -> String {
    format!("Invite a new window named: {name}_   (Enter: make the invitation, Esc: cancel)")
}

/// Asks the overlay for an invitation for `name`; the answer comes back as `Msg::Invited`,
/// or the overlay's refusal as a flash line.
fn spawn_invite(path: PathBuf, name: String, tx: mpsc::UnboundedSender<Msg>) {
    tokio::spawn(async move {
        let req = ORequest::Invite {
            name: name.clone(),
            ttl_s: None,
        };
        let msg = match ask::<_, OReply>(&path, &req).await {
            Ok(OReply {
                invitation: Some(code),
                expires_unix: Some(expires),
                ..
            }) => Msg::Invited(name, code, expires),
            Ok(r) => Msg::Flash(format!(
                "no invitation: {}",
                r.error.unwrap_or_else(|| "the overlay gave no code".into())
            )),
            Err(e) => Msg::Flash(format!("the overlay does not answer: {e}")),
        };
        let _ = tx.send(msg);
    });
}

fn spawn_init(path: PathBuf, tx: mpsc::UnboundedSender<Msg>) {
    tokio::spawn(async move {
        loop {
            let session = async {
                let mut events = subscribe(&path, &InitRequest::Subscribe).await?;
                let st: InitReply = ask(&path, &InitRequest::Status).await?;
                let logs: InitReply = ask(
                    &path,
                    &InitRequest::Logs {
                        service: None,
                        lines: Some(model::MAX_LOGS),
                    },
                )
                .await?;
                let lines = logs
                    .logs
                    .unwrap_or_default()
                    .into_iter()
                    .map(|l| format!("{}: {}", l.service, l.line))
                    .collect();
                let status = st.status.ok_or_else(|| anyhow!("no status"))?;
                tx.send(Msg::InitUp(Box::new(status), lines)).ok();
                while let Some(line) = next_line(&mut events).await? {
                    if let Ok(ev) = serde_json::from_str::<InitEvent>(&line) {
                        tx.send(Msg::Init(Box::new(ev))).ok();
                    }
                }
                Ok::<_, anyhow::Error>(())
            };
            let _ = session.await;
            if tx.send(Msg::InitDown).is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_secs(2)).await;
        }
    });
}

fn spawn_phone(path: PathBuf, tx: mpsc::UnboundedSender<Msg>) {
    tokio::spawn(async move {
        loop {
            let session = async {
                let mut events = subscribe(&path, &PRequest::Subscribe).await?;
                while let Some(line) = next_line(&mut events).await? {
                    if let Ok(st) = serde_json::from_str::<PhoneStatus>(&line) {
                        tx.send(Msg::Phone(Box::new(st))).ok();
                    }
                }
                Ok::<_, anyhow::Error>(())
            };
            let _ = session.await;
            if tx.send(Msg::PhoneDown).is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_secs(2)).await;
        }
    });
}

fn spawn_overlay(path: PathBuf, tx: mpsc::UnboundedSender<Msg>) {
    tokio::spawn(async move {
        loop {
            let peers = match ask::<_, OReply>(&path, &ORequest::Members).await {
                Ok(r) if r.ok => r.members,
                _ => None,
            };
            if tx.send(Msg::Overlay(peers)).is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_secs(15)).await;
        }
    });
}

/// A tick at each new minute, for the clock.
fn spawn_minutes(tx: mpsc::UnboundedSender<Msg>) {
    tokio::spawn(async move {
        loop {
            let into = ewindow_io::localtime::now_unix() % 60;
            tokio::time::sleep(Duration::from_secs(60 - into)).await;
            if tx.send(Msg::Minute).is_err() {
                return;
            }
        }
    });
}
