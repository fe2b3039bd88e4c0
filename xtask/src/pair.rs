//! `cargo xtask qemu --pair [--test]`: two windows from one image. Two copies of the built
//! PC image boot under QEMU (TCG), each with its own blank `/data`, on one virtual LAN: a
//! bridge in a network namespace made for the run, with a tap per machine and nothing
//! else — no DHCP server, no route out, as two windows joined by a cable or a LAN without
//! DHCP. Each window then takes an IPv4 link-local address (the image's `linklocal`
//! service); the bridge has one too (169.254.0.1), which is how the test reaches the
//! windows' SSH.
//!
//! `--test` goes through the first run as a person does, on each window's serial console (a
//! Unix socket this side reads as a terminal, `vt100`): A's wizard starts a new network; A's
//! status console makes an invitation for `b` (key `i`), whose code is read off A's screen;
//! B's wizard redeems it (typed); with no further input the window opens. Asserted from
//! `ewindowctl status --json` over SSH (the key typed into both wizards): a call between a
//! and b, audio and video decoded on both sides and rising, SRTP on every stream, the
//! kernel's WireGuard. Then A's button (a 2 s press of space on QEMU's USB keyboard, through
//! the monitor) closes the curtain and a second one opens it; B is rebooted (Ctrl-Alt-Del)
//! and the window reopens by itself; last both are powered off and started together, the
//! provisioned pair's time to an open window. The figures are printed at the end.

use std::fs;
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use crate::proc::{self, sh, Running};
use crate::qemu::{self, Machine, Net};

/// The serial console's size (the image's `serial` service sets it).
const ROWS: u16 = 24;
const COLS: u16 = 80;

fn terminal() -> vt100::Parser {
    let n = |v: u16| std::num::NonZeroU16::new(v).unwrap_or(std::num::NonZeroU16::MIN);
    vt100::Parser::new(n(ROWS), n(COLS), 0)
}

/// The LAN: a bridge with a tap per window, in a network namespace of its own.
struct Lan {
    ns: String,
}

impl Lan {
    fn new() -> Result<Lan> {
        let ns = format!("ewpair{}", std::process::id());
        let _ = sh(&format!("ip netns del {ns}"));
        sh(&format!("ip netns add {ns}"))?;
        let lan = Lan { ns };
        for cmd in [
            "ip link set lo up",
            "ip link add br0 type bridge",
            "ip tuntap add tapa mode tap",
            "ip tuntap add tapb mode tap",
            "ip link set tapa master br0",
            "ip link set tapb master br0",
            "ip link set tapa up",
            "ip link set tapb up",
            "ip link set br0 up",
            // the test's own link-local address: how it reaches the windows' SSH
            "ip addr add 169.254.0.1/16 dev br0",
        ] {
            sh(&format!("ip -n {} {}", lan.ns, &cmd[3..]))?;
        }
        Ok(lan)
    }
}

impl Drop for Lan {
    fn drop(&mut self) {
        let _ = sh(&format!("ip netns del {}", self.ns));
    }
}

/// What the serial line showed: the screen as a terminal draws it, and every line of text
/// with the terminal's escape sequences taken out (ewindow-init's log is on the same line).
struct Serial {
    screen: vt100::Parser,
    text: String,
    log: fs::File,
}

/// One window: its QEMU, its serial console, its monitor.
struct Window {
    name: &'static str,
    dir: PathBuf,
    disk: PathBuf,
    tap: &'static str,
    mac: &'static str,
    qemu: Option<Running>,
    serial: Option<UnixStream>,
    seen: Arc<Mutex<Serial>>,
    /// Where in `text` the next [`Window::wait_log`] looks from.
    mark: usize,
    /// Its link-local address, once it said it.
    address: Option<String>,
}

impl Window {
    fn new(name: &'static str, tap: &'static str, mac: &'static str, root: &Path) -> Result<Self> {
        let dir = root.join(name);
        let disk = qemu::fresh_copy("qemu-x86_64", &dir)?;
        let log = fs::File::create(dir.join("serial.log"))?;
        Ok(Window {
            name,
            dir,
            disk,
            tap,
            mac,
            qemu: None,
            serial: None,
            seen: Arc::new(Mutex::new(Serial {
                screen: terminal(),
                text: String::new(),
                log,
            })),
            mark: 0,
            address: None,
        })
    }

    /// Powers the machine on (QEMU in the LAN's namespace) and connects to its serial line.
    fn start(&mut self, lan: &Lan, headless: bool) -> Result<()> {
        let sock = self.dir.join("serial.sock");
        let monitor = self.dir.join("monitor.sock");
        let _ = fs::remove_file(&sock);
        let _ = fs::remove_file(&monitor);
        let inner = qemu::command(
            &Machine::Pc,
            &self.disk,
            Some(&monitor),
            headless,
            &Net::Tap {
                ifname: self.tap.into(),
                mac: self.mac.into(),
            },
            Some(&sock),
        )?;
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &lan.ns])
            .arg(inner.get_program())
            .args(inner.get_args())
            // the button: a USB keyboard (the PC's PS/2 one is there too); a sound card
            // whose microphone hears silence and whose speaker plays nowhere
            .args(["-device", "qemu-xhci", "-device", "usb-kbd"])
            .args(["-audiodev", "none,id=snd0", "-device", "intel-hda"])
            .args(["-device", "hda-duplex,audiodev=snd0"]);
        self.qemu = Some(proc::spawn(&format!("qemu-{}", self.name), c, false)?);
        let deadline = Instant::now() + Duration::from_secs(20);
        let stream = loop {
            match UnixStream::connect(&sock) {
                Ok(s) => break s,
                Err(e) if Instant::now() > deadline => {
                    bail!("{}'s serial socket {}: {e}", self.name, sock.display())
                }
                Err(_) => std::thread::sleep(Duration::from_millis(50)),
            }
        };
        let mut reader = stream.try_clone()?;
        let seen = self.seen.clone();
        {
            let mut s = seen.lock().unwrap_or_else(|e| e.into_inner());
            s.screen = terminal();
            s.text.push_str("\n--- power on ---\n");
        }
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = reader.read(&mut buf) {
                if n == 0 {
                    break;
                }
                let mut s = seen.lock().unwrap_or_else(|e| e.into_inner());
                s.screen.process(&buf[..n]);
                let plain = strip_escapes(&buf[..n]);
                s.text.push_str(&plain);
                let _ = s.log.write_all(&buf[..n]);
            }
        });
        self.serial = Some(stream);
        self.mark = self.seen.lock().map(|s| s.text.len()).unwrap_or(0);
        Ok(())
    }

    /// Types on the serial console.
    fn keys(&mut self, text: &str) -> Result<()> {
        let s = self.serial.as_mut().context("not started")?;
        s.write_all(text.as_bytes())?;
        std::thread::sleep(Duration::from_millis(300));
        Ok(())
    }

    fn screen(&self) -> String {
        self.seen
            .lock()
            .map(|s| s.screen.screen().contents())
            .unwrap_or_default()
    }

    /// Waits until the screen shows `needle` (spaces as the terminal has them); the screen.
    fn wait_screen(&self, needle: &str, timeout: Duration) -> Result<String> {
        let deadline = Instant::now() + timeout;
        loop {
            let s = self.screen();
            if squeeze(&s).contains(&squeeze(needle)) {
                return Ok(s);
            }
            if Instant::now() > deadline {
                bail!(
                    "{}: `{needle}` never showed on the serial console within {timeout:?}; the screen:\n{s}\nthe last lines:\n{}",
                    self.name,
                    self.tail(15)
                );
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Waits for a line of text containing `needle` after the last one found; the line.
    fn wait_log(&mut self, needle: &str, timeout: Duration) -> Result<String> {
        let deadline = Instant::now() + timeout;
        loop {
            {
                let s = self.seen.lock().unwrap_or_else(|e| e.into_inner());
                if let Some(at) = s.text[self.mark.min(s.text.len())..].find(needle) {
                    let at = self.mark + at;
                    let start = s.text[..at].rfind('\n').map_or(0, |i| i + 1);
                    let end = s.text[at..].find('\n').map_or(s.text.len(), |i| at + i);
                    self.mark = end;
                    return Ok(s.text[start..end].trim().to_string());
                }
            }
            if Instant::now() > deadline {
                bail!(
                    "{}: no `{needle}` on the serial line within {timeout:?}; the last lines:\n{}",
                    self.name,
                    self.tail(25)
                );
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// The first line of text since power-on that contains `needle`.
    fn line_with(&self, needle: &str) -> Option<String> {
        let s = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        s.text
            .lines()
            .find(|l| l.contains(needle))
            .map(|l| l.trim().to_string())
    }

    fn tail(&self, n: usize) -> String {
        let s = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        let lines: Vec<&str> = s.text.lines().collect();
        lines[lines.len().saturating_sub(n)..].join("\n")
    }

    /// A key on the machine's keyboard, through QEMU's monitor.
    fn sendkey(&self, key: &str, hold_ms: Option<u32>) -> Result<()> {
        qemu::sendkey(&self.dir.join("monitor.sock"), key, hold_ms)
            .with_context(|| format!("{}'s QEMU monitor", self.name))
    }

    /// Ctrl-Alt-Del: an orderly shutdown; QEMU (`-no-reboot`) then exits.
    fn power_off(&mut self) -> Result<()> {
        self.sendkey("ctrl-alt-delete", None)?;
        self.wait_log(
            "shutdown complete: no process left",
            Duration::from_secs(90),
        )?;
        if let Some(mut q) = self.qemu.take() {
            q.finish(Duration::from_secs(30))?;
        }
        self.serial = None;
        Ok(())
    }

    /// Its link-local address, from the `linklocal` service's line.
    fn learn_address(&mut self) -> Result<String> {
        if let Some(a) = &self.address {
            return Ok(a.clone());
        }
        let line = self.wait_log("linklocal: eth0 169.254.", Duration::from_secs(120))?;
        let addr = line
            .split_whitespace()
            .find(|w| w.starts_with("169.254."))
            .and_then(|w| w.split('/').next())
            .context("no address in the linklocal line")?
            .to_string();
        self.address = Some(addr.clone());
        Ok(addr)
    }

    /// The phone's last log lines (`ewindowctl logs phone`) over SSH, for a failure's message.
    fn logs(&self, lan: &Lan, key: &Path) -> String {
        let host = self.address.as_deref().unwrap_or("169.254.0.2");
        qemu::ssh_at(Some(&lan.ns), host, 22, key, "ewindowctl logs phone -n 60")
            .unwrap_or_else(|e| format!("(no logs: {e:#})\n{}", self.tail(20)))
    }

    /// `ewindowctl status --json` over SSH.
    fn status(&self, lan: &Lan, key: &Path) -> Result<serde_json::Value> {
        let host = self.address.as_deref().context("no address yet")?;
        let out = qemu::ssh_at(Some(&lan.ns), host, 22, key, "ewindowctl status --json")
            .with_context(|| format!("ewindowctl status on {} over SSH", self.name))?;
        serde_json::from_str(&out)
            .with_context(|| format!("{}'s ewindowctl status --json printed {out}", self.name))
    }
}

impl Drop for Window {
    fn drop(&mut self) {
        if let Some(mut q) = self.qemu.take() {
            let _ = q.child.kill();
            let _ = q.child.wait();
        }
    }
}

/// Terminal output without its escape sequences (CSI, OSC, two-byte ones) and carriage
/// returns: the text a log line carries. Pure.
pub fn strip_escapes(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\x1b' => match chars.next() {
                Some('[') => {
                    // parameters and intermediates, then one final byte @..~
                    for c in chars.by_ref() {
                        if ('@'..='~').contains(&c) {
                            break;
                        }
                    }
                }
                Some(']') => {
                    // to BEL or ST
                    while let Some(c) = chars.next() {
                        if c == '\x07' || (c == '\x1b' && chars.peek() == Some(&'\\')) {
                            if c == '\x1b' {
                                chars.next();
                            }
                            break;
                        }
                    }
                }
                _ => {}
            },
            '\r' | '\0' => {}
            c => out.push(c),
        }
    }
    out
}

/// Runs of spaces as one: what a needle and a screen are compared by.
fn squeeze(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The invitation code as a person reads it off the screen: from `EWIN1-`, line by line, the
/// leading run of code characters (the QR code stands to its right). Pure.
pub fn code_on_screen(screen: &str) -> Option<String> {
    let mut code = String::new();
    for line in screen
        .lines()
        .skip_while(|l| !l.trim_start().starts_with("EWIN1-"))
    {
        let run: String = line
            .trim_start()
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '-')
            .collect();
        if run.is_empty() {
            break;
        }
        code.push_str(&run);
    }
    (!code.is_empty()).then_some(code)
}

/// Goes through a window's wizard: `join` is what the join step gets (`3` to start a new
/// network, `1` and then the code to redeem one).
fn wizard(w: &mut Window, join: Option<&str>, ssh_line: &str) -> Result<()> {
    let step = Duration::from_secs(60);
    w.wait_screen("Setting up this window", Duration::from_secs(300))?;
    w.wait_screen("Welcome", step)?;
    w.keys("\r")?;
    w.wait_screen("What is this window called?", step)?;
    w.keys(&format!("{}\r", w.name))?;
    w.wait_screen("How does this window join", step)?;
    match join {
        None => {
            w.keys("3")?;
            w.wait_screen("> 3 Start a new network", step)?;
            w.keys("\r")?;
        }
        Some(code) => {
            w.keys("1")?;
            w.keys("\r")?;
            w.wait_screen("Invitation code", step)?;
            w.keys(code)?;
            w.keys("\r")?;
        }
    }
    w.wait_screen("When may this window take calls?", step)?;
    w.keys("\r")?;
    // the camera's test picture may take a while (GStreamer's first start under TCG builds
    // its plugin registry): Enter does not wait for it
    w.wait_screen("Which camera shows this space?", step)?;
    w.keys("\r")?;
    w.wait_screen("Which microphone hears this space?", step)?;
    w.keys("\r")?;
    w.wait_screen("Which speaker plays", step)?;
    w.keys("\r")?;
    w.wait_screen("an SSH public key", step)?;
    w.keys(ssh_line)?;
    w.keys("\r")?;
    w.wait_screen("Check the answers", step)?;
    w.keys("\r")?;
    Ok(())
}

/// The live call of a window's status: (peer, decoded audio, decoded video, every stream SRTP).
fn call_of(status: &serde_json::Value) -> Option<(String, u64, u64, bool)> {
    let call = &status["window"]["call"];
    let streams = call["streams"].as_array()?;
    let decoded = |media: &str| {
        streams
            .iter()
            .find(|s| s["media"] == media && s["direction"] == "recv")
            .and_then(|s| s["decoded"].as_u64())
            .unwrap_or(0)
    };
    let srtp = !streams.is_empty() && streams.iter().all(|s| s["srtp"] == true);
    Some((
        call["peer"].as_str()?.to_string(),
        decoded("audio"),
        decoded("video"),
        srtp,
    ))
}

/// Waits until both windows are in a call with each other and media is decoded on both
/// sides, rising between two looks; the seconds it took from `since`.
fn wait_open(a: &Window, b: &Window, lan: &Lan, key: &Path, since: Instant) -> Result<f64> {
    let deadline = Instant::now() + Duration::from_secs(240);
    let mut first: Option<[(u64, u64); 2]> = None;
    let mut opened = None;
    loop {
        let look = || -> Result<Option<[(u64, u64); 2]>> {
            let mut out = [(0, 0); 2];
            for (i, (w, other)) in [(a, b.name), (b, a.name)].into_iter().enumerate() {
                let st = w.status(lan, key)?;
                let Some((peer, audio, video, srtp)) = call_of(&st) else {
                    return Ok(None);
                };
                if peer != other {
                    return Ok(None);
                }
                if !srtp {
                    bail!("{}'s call is not SRTP on every stream: {st}", w.name);
                }
                out[i] = (audio, video);
            }
            Ok(Some(out))
        };
        match look() {
            Ok(Some(now)) => {
                let t = *opened.get_or_insert_with(|| since.elapsed().as_secs_f64());
                match first {
                    None => first = Some(now),
                    Some(f) => {
                        let rising = (0..2).all(|i| now[i].0 > f[i].0 && now[i].1 > f[i].1);
                        if rising {
                            eprintln!(
                                "pair: media both ways: a decoded {} audio / {} video frames, b {} / {}",
                                now[0].0, now[0].1, now[1].0, now[1].1
                            );
                            return Ok(t);
                        }
                    }
                }
            }
            Ok(None) => {}
            Err(e) => {
                if Instant::now() > deadline {
                    return Err(e);
                }
            }
        }
        if Instant::now() > deadline {
            bail!(
                "the window did not open with media both ways within 240 s\na's phone:\n{}\nb's phone:\n{}",
                a.logs(lan, key),
                b.logs(lan, key)
            );
        }
        std::thread::sleep(Duration::from_secs(3));
    }
}

/// What the pair test measured.
pub struct PairFigures {
    pub first_run_open_s: f64,
    pub curtain_s: f64,
    pub reboot_reopen_s: f64,
    pub provisioned_open_s: f64,
}

impl PairFigures {
    /// The figures, for the terminal and the note.
    pub fn print(&self) {
        eprintln!(
            "pair: figures: first run (both wizards typed) QEMU start → window open {:.1} s; button → curtain closed {:.1} s; b's reboot → reopen {:.1} s; provisioned pair QEMU start → open {:.1} s",
            self.first_run_open_s, self.curtain_s, self.reboot_reopen_s, self.provisioned_open_s
        );
    }
}

/// `cargo xtask qemu --pair --test`.
pub fn test() -> Result<PairFigures> {
    let img = qemu::image_path("qemu-x86_64");
    if !img.exists() {
        bail!(
            "{} does not exist: cargo xtask image --target qemu-x86_64",
            img.display()
        );
    }
    let root = crate::root().join("target/image/pair");
    fs::create_dir_all(&root)?;
    let key = root.join("maintainer.key");
    let ssh_line = qemu::ssh_key(&key)?;
    let lan = Lan::new()?;
    let mut a = Window::new("a", "tapa", "52:54:00:77:69:0a", &root)?;
    let mut b = Window::new("b", "tapb", "52:54:00:77:69:0b", &root)?;
    eprintln!("pair: booting two copies of {} on one LAN", img.display());
    let t0 = Instant::now();
    a.start(&lan, true)?;
    b.start(&lan, true)?;

    eprintln!("pair: a's wizard starts a new network");
    wizard(&mut a, None, &ssh_line)?;
    a.wait_screen("only member of its network", Duration::from_secs(120))?;
    a.learn_address()?;
    eprintln!("pair: a invites b from its status console (i)");
    a.keys("i")?;
    a.wait_screen("Invite a new window named", Duration::from_secs(30))?;
    a.keys("b")?;
    a.keys("\r")?;
    a.wait_screen("For b: on the new window", Duration::from_secs(60))?;
    // the rest of the frame may still be on its way, or a log line crossed it (the console
    // repaints every 5 s): read until the code on the screen is a whole, valid one
    let deadline = Instant::now() + Duration::from_secs(30);
    let code = loop {
        let screen = a.screen();
        if let Some(code) = code_on_screen(&screen) {
            if ewindow_protocol::invite::Invitation::decode(&code).is_ok() {
                break code;
            }
        }
        if Instant::now() > deadline {
            bail!("no valid invitation code on a's screen:\n{screen}");
        }
        std::thread::sleep(Duration::from_millis(300));
    };
    eprintln!(
        "pair: read a {}-character code off a's screen; b's wizard redeems it",
        code.len()
    );
    wizard(&mut b, Some(&code), &ssh_line)?;
    // "joined as b; members: a, b", shown two seconds; then b's status console
    b.wait_screen("Members", Duration::from_secs(120))?;
    b.learn_address()?;
    let first_run_open_s = wait_open(&a, &b, &lan, &key, t0)?;
    a.wait_screen("You see and hear b", Duration::from_secs(60))?;
    b.wait_screen("You see and hear a", Duration::from_secs(60))?;
    for w in [&a, &b] {
        let st = w.status(&lan, &key)?;
        let overlay = st["services"]
            .as_array()
            .and_then(|s| s.iter().find(|s| s["name"] == "overlay"))
            .cloned()
            .unwrap_or_default();
        if overlay["state"] != "running" {
            bail!("{}'s overlay is not running: {overlay}", w.name);
        }
    }
    for w in [&a, &b] {
        let up = w
            .line_with("overlay up name=")
            .with_context(|| format!("no `overlay up` line from {}", w.name))?;
        if !up.contains("backend=Kernel") {
            bail!(
                "{}'s overlay is not on the kernel's WireGuard: {up}",
                w.name
            );
        }
    }
    eprintln!("pair: the window opened by itself {first_run_open_s:.1} s after QEMU started (wizards included)");

    eprintln!("pair: a's button: a 2 s press closes the curtain, another opens it");
    let t = Instant::now();
    a.sendkey("spc", Some(2000))?;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let st = a.status(&lan, &key)?;
        if st["window"]["curtain"] == true && call_of(&st).is_none() {
            break;
        }
        if Instant::now() > deadline {
            bail!(
                "a's button did not close the curtain: {}\na's phone:\n{}",
                st["window"],
                a.logs(&lan, &key)
            );
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    let curtain_s = t.elapsed().as_secs_f64();
    a.sendkey("spc", Some(2000))?;
    let reopened = Instant::now();
    wait_open(&a, &b, &lan, &key, reopened)?;
    eprintln!(
        "pair: curtain closed {curtain_s:.1} s after the press began; opened again, and the window reopened {:.1} s after the second press",
        reopened.elapsed().as_secs_f64()
    );

    eprintln!("pair: b reboots (Ctrl-Alt-Del)");
    let t = Instant::now();
    b.power_off()?;
    b.start(&lan, true)?;
    let reboot_reopen_s = wait_open(&a, &b, &lan, &key, t)?;
    eprintln!("pair: the window reopened {reboot_reopen_s:.1} s after b's Ctrl-Alt-Del");

    eprintln!("pair: both off, then both on at once (a provisioned pair)");
    a.power_off()?;
    b.power_off()?;
    let t = Instant::now();
    a.start(&lan, true)?;
    b.start(&lan, true)?;
    let provisioned_open_s = wait_open(&a, &b, &lan, &key, t)?;
    eprintln!("pair: a provisioned pair opened {provisioned_open_s:.1} s after QEMU started");
    let _ = fs::remove_dir_all(&root);
    Ok(PairFigures {
        first_run_open_s,
        curtain_s,
        reboot_reopen_s,
        provisioned_open_s,
    })
}

/// `cargo xtask qemu --pair`: the two machines for a person: the screens in windows when
/// there is a display, each serial console on a Unix socket to attach to.
pub fn interactive(headless: bool) -> Result<()> {
    let root = crate::root().join("target/image/pair-run");
    fs::create_dir_all(&root)?;
    let lan = Lan::new()?;
    let mut a = Window::new("a", "tapa", "52:54:00:77:69:0a", &root)?;
    let mut b = Window::new("b", "tapb", "52:54:00:77:69:0b", &root)?;
    a.start(&lan, headless)?;
    b.start(&lan, headless)?;
    // the serial consoles go to files here; a person uses the screens and keyboards
    eprintln!(
        "xtask: two windows on one LAN (namespace {}); their serial consoles are logged to {}/{{a,b}}/serial.log; Ctrl-C ends both",
        lan.ns,
        root.display()
    );
    for w in [&mut a, &mut b] {
        if let Some(q) = w.qemu.as_mut() {
            q.finish(Duration::from_secs(7 * 86_400))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_are_taken_out_of_the_serial_text() {
        let raw = b"\x1b[?25l\x1b[1;1H\x1b[38;5;2mstarted\x1b[0m service=phone\r\n\x1b]0;title\x07ok\x1bc!";
        assert_eq!(strip_escapes(raw), "started service=phone\nok!");
    }

    #[test]
    fn the_code_is_read_off_the_screen_line_by_line() {
        let screen = "For b: on the new window, enter this code\n\n  EWIN1-ABCD-EFGH-  ▀▄█ ▄\n  JKLM-NP23          █▀\n\n until 12:00 UTC";
        assert_eq!(
            code_on_screen(screen).as_deref(),
            Some("EWIN1-ABCD-EFGH-JKLM-NP23")
        );
        assert_eq!(code_on_screen("no code here"), None);
    }
}
