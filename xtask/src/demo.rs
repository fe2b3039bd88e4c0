//! `cargo xtask demo`: two windows open to each other by themselves, as on two fresh
//! devices in one space. Each window runs in a network namespace of its own on one LAN (a
//! bridge), with what a window runs — its WireGuard (wireguard-go here: the build machine's
//! kernel may have none), `ewindow-overlay` and `ewindow-phone window` — and test pictures
//! and tones for camera and microphone. Window `a` starts a new network, invites `b`
//! (`ewindowctl invite b`), `b` redeems the code, and with no further input the window opens
//! (a calls b per the window policy). The demo prints both windows' state and statistics
//! every two seconds, then saves what each window received as a PNG contact sheet (the
//! phone's `--snapshots`: a frame a second) next to the statistics, and prints where. With a
//! display, each window also shows the other in a desktop window.
//!
//! Needs root (network namespaces), like the tests.

use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use crate::proc::{self, sh, Running};

/// The workspace's binaries the demo runs, built in the dev profile.
fn binaries() -> Result<PathBuf> {
    crate::cargo(&[
        "build",
        "--quiet",
        "-p",
        "ewindow-phone",
        "-p",
        "ewindow-overlay",
        "-p",
        "ewindow-console",
    ])?;
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| crate::root().join("target"));
    let dir = target.join("debug");
    for b in ["ewindow-phone", "ewindow-overlay", "ewindowctl"] {
        if !dir.join(b).exists() {
            bail!("{} was not built", dir.join(b).display());
        }
    }
    Ok(dir)
}

/// One window of the demo: its namespace, its files, its processes.
struct Window {
    name: &'static str,
    ns: String,
    dir: PathBuf,
    procs: Vec<Running>,
}

impl Window {
    fn file(&self, f: &str) -> PathBuf {
        self.dir.join(f)
    }

    /// `sh -c cmd` in the window's namespace.
    fn exec(&self, cmd: &str) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.ns, "sh", "-c", cmd]);
        c
    }

    fn spawn(&mut self, what: &str, cmd: &str) -> Result<()> {
        let r = proc::spawn(&format!("{}/{what}", self.name), self.exec(cmd), false)?;
        self.procs.push(r);
        Ok(())
    }

    /// wireguard-go, and its interface up before anything configures it.
    fn start_wireguard(&mut self) -> Result<()> {
        // the interface names differ: wireguard-go's control socket is in /var/run, which
        // the namespaces share
        let iface = self.iface();
        self.spawn("wireguard-go", &format!("wireguard-go -f {iface}"))?;
        let deadline = Instant::now() + Duration::from_secs(10);
        while !self
            .exec(&format!("ip link show {iface}"))
            .output()
            .is_ok_and(|o| o.status.success())
        {
            if Instant::now() > deadline {
                bail!("{}: wireguard-go made no interface {iface}", self.name);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(())
    }

    fn iface(&self) -> String {
        format!("ewdemo-{}", self.name)
    }

    fn overlay_args(&self) -> String {
        format!(
            "--interface {} --backend userspace --window {} --identity {} --invitations {} \
             --control {} --phone-control {}",
            self.iface(),
            self.file("window.toml").display(),
            self.file("identity.key").display(),
            self.file("invitations.json").display(),
            self.file("overlay.sock").display(),
            self.file("phone.sock").display()
        )
    }

    /// The phone's status (`{"cmd":"status"}` on its control socket).
    fn status(&self) -> Option<serde_json::Value> {
        let mut s = UnixStream::connect(self.file("phone.sock")).ok()?;
        s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
        s.write_all(b"{\"cmd\":\"status\"}\n").ok()?;
        let mut line = String::new();
        BufReader::new(s).read_line(&mut line).ok()?;
        let v: serde_json::Value = serde_json::from_str(&line).ok()?;
        (!v["status"].is_null()).then(|| v["status"].clone())
    }
}

impl Drop for Window {
    fn drop(&mut self) {
        for p in &mut self.procs {
            let _ = p.child.kill();
            let _ = p.child.wait();
        }
        let _ = sh(&format!("ip netns del {}", self.ns));
    }
}

/// The LAN: a bridge in its own namespace; removed on drop.
struct Lan(String);

impl Drop for Lan {
    fn drop(&mut self) {
        let _ = sh(&format!("ip netns del {}", self.0));
    }
}

/// A window's namespace on the LAN, at 192.168.79.N.
fn window(lan: &Lan, name: &'static str, n: u8, root: &Path) -> Result<Window> {
    let ns = format!("ewdemo-{name}");
    let _ = sh(&format!("ip netns del {ns}"));
    let (va, vb) = (format!("ewdv{name}"), format!("ewdp{name}"));
    sh(&format!(
        "ip netns add {ns} && ip -n {ns} link set lo up && \
         ip link add {va} type veth peer name {vb} && \
         ip link set {va} netns {br} && ip -n {br} link set {va} master br0 up && \
         ip link set {vb} netns {ns} && ip -n {ns} link set {vb} name eth0 && \
         ip -n {ns} addr add 192.168.79.{n}/24 dev eth0 && ip -n {ns} link set eth0 up",
        br = lan.0
    ))?;
    let dir = root.join(name);
    fs::create_dir_all(&dir)?;
    Ok(Window {
        name,
        ns,
        dir,
        procs: Vec::new(),
    })
}

/// Runs the demo.
pub fn run(duration: u32, codecs: &str) -> Result<()> {
    if !nix_is_root() {
        bail!("the demo makes network namespaces for its two windows: run it as root (sudo cargo xtask demo)");
    }
    let bin = binaries()?;
    let (phone, overlay, ctl) = (
        bin.join("ewindow-phone"),
        bin.join("ewindow-overlay"),
        bin.join("ewindowctl"),
    );
    let root = crate::root().join("target/demo");
    let _ = fs::remove_dir_all(&root);
    fs::create_dir_all(&root)?;
    let lan = Lan("ewdemo-lan".into());
    let _ = sh(&format!("ip netns del {}", lan.0));
    sh(&format!(
        "ip netns add {0} && ip -n {0} link set lo up && ip -n {0} link add br0 type bridge && \
         ip -n {0} link set br0 up",
        lan.0
    ))?;
    let mut a = window(&lan, "a", 1, &root)?;
    let mut b = window(&lan, "b", 2, &root)?;
    let display =
        std::env::var_os("DISPLAY").is_some() || std::env::var_os("WAYLAND_DISPLAY").is_some();
    let sink = if display { "auto" } else { "null" };
    let phone_cmd = |w: &Window| {
        format!(
            "{} window --window-file {} --control {} --codecs {codecs} --audio-source test \
             --audio-sink null --video-source test --video-sink {sink} --snapshots {} \
             --stats-json {}",
            phone.display(),
            w.file("window.toml").display(),
            w.file("phone.sock").display(),
            w.file("frames").display(),
            w.file("last-call.json").display()
        )
    };

    let t0 = Instant::now();
    println!("demo: window a starts a new network");
    a.start_wireguard()?;
    let out = a
        .exec(&format!(
            "{} found a --window {} --identity {}",
            overlay.display(),
            a.file("window.toml").display(),
            a.file("identity.key").display()
        ))
        .output()?;
    if !out.status.success() {
        bail!(
            "ewindow-overlay found: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    a.spawn(
        "overlay",
        &format!("{} up {}", overlay.display(), a.overlay_args()),
    )?;
    wait_socket(&a.file("overlay.sock"))?;
    a.spawn("phone", &phone_cmd(&a))?;

    println!("demo: a invites b (ewindowctl invite b)");
    let out = a
        .exec(&format!(
            "{} --overlay-control {} invite b",
            ctl.display(),
            a.file("overlay.sock").display()
        ))
        .output()?;
    let text = String::from_utf8_lossy(&out.stdout);
    let code = text
        .split_whitespace()
        .find(|w| w.starts_with("EWIN1-"))
        .with_context(|| format!("no code from ewindowctl invite: {text}"))?
        .to_string();

    println!("demo: b redeems the code and joins");
    b.start_wireguard()?;
    let out = b
        .exec(&format!(
            "{} redeem {code} --timeout-s 20 {}",
            overlay.display(),
            b.overlay_args()
        ))
        .output()?;
    let said = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        bail!(
            "ewindow-overlay redeem: {said}{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    println!("demo: b: {}", said.trim());
    b.spawn(
        "overlay",
        &format!("{} up {}", overlay.display(), b.overlay_args()),
    )?;
    wait_socket(&b.file("overlay.sock"))?;
    b.spawn("phone", &phone_cmd(&b))?;

    println!("demo: no further input: the window opens by itself");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let open = [&a, &b].iter().all(|w| {
            w.status()
                .is_some_and(|s| s["state"]["kind"] == "open" && !s["call"].is_null())
        });
        if open {
            break;
        }
        if Instant::now() > deadline {
            bail!(
                "the window did not open within 60 s: a {:?}, b {:?}",
                a.status().map(|s| s["state"].clone()),
                b.status().map(|s| s["state"].clone())
            );
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    println!(
        "demo: open {:.1} s after the first window started",
        t0.elapsed().as_secs_f64()
    );
    let end = Instant::now() + Duration::from_secs(duration.into());
    while Instant::now() < end {
        std::thread::sleep(Duration::from_secs(2));
        for w in [&a, &b] {
            println!("[{}] {}", w.name, line(w.status().as_ref()));
        }
    }
    let finals: Vec<(String, String)> = [&a, &b]
        .iter()
        .map(|w| (w.name.to_string(), line(w.status().as_ref())))
        .collect();
    drop(a);
    drop(b);
    drop(lan);

    println!();
    for (name, l) in &finals {
        println!("window {name}: {l}");
        fs::write(root.join(format!("{name}/stats.txt")), format!("{l}\n"))?;
    }
    for name in ["a", "b"] {
        let frames = root.join(name).join("frames");
        let sheet = root.join(format!("{name}-receives.png"));
        match contact_sheet(&frames, &sheet) {
            Ok(n) => println!(
                "demo: what window {name} received: {} ({n} frames of its last seconds)",
                sheet.display()
            ),
            Err(e) => bail!("no contact sheet for window {name}: {e:#}"),
        }
    }
    println!(
        "demo: the statistics are beside them, in {}",
        root.display()
    );
    println!("\ndemo: two windows set up from nothing opened to each other by themselves");
    Ok(())
}

fn nix_is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

fn wait_socket(path: &Path) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(20);
    while UnixStream::connect(path).is_err() {
        if Instant::now() > deadline {
            bail!("{} did not appear", path.display());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(())
}

/// One line of a window's status: its state, and per received stream what it decoded.
fn line(status: Option<&serde_json::Value>) -> String {
    let Some(s) = status else {
        return "no status".into();
    };
    let mut out = format!(
        "{}{}",
        s["state"]["kind"].as_str().unwrap_or("?"),
        s["call"]["peer"]
            .as_str()
            .map(|p| format!(" to {p}"))
            .unwrap_or_default()
    );
    for st in s["call"]["streams"].as_array().into_iter().flatten() {
        if st["direction"] != "recv" {
            continue;
        }
        out.push_str(&format!(
            "; {} {} in: {} packets, {} decoded, {} lost{}{}",
            st["media"].as_str().unwrap_or("?"),
            st["codec"].as_str().unwrap_or("?"),
            st["packets"],
            st["decoded"],
            st["lost"],
            st["fps"]
                .as_f64()
                .map(|f| format!(", {f:.0} fps"))
                .unwrap_or_default(),
            if st["srtp"] == true { ", SRTP" } else { "" }
        ));
    }
    out
}

/// Tiles up to twelve of the PNG frames in `dir` (evenly spread over the call) four to a
/// row into one PNG at `out`; how many.
fn contact_sheet(dir: &Path, out: &Path) -> Result<usize> {
    let mut files: Vec<PathBuf> = fs::read_dir(dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "png"))
        .collect();
    files.sort();
    if files.is_empty() {
        bail!("no frames in {}", dir.display());
    }
    let step = files.len().div_ceil(12);
    let picked: Vec<&PathBuf> = files.iter().step_by(step).take(12).collect();
    let frames: Vec<(u32, u32, Vec<u8>)> =
        picked.iter().map(|p| read_rgb(p)).collect::<Result<_>>()?;
    let (w, h) = (frames[0].0, frames[0].1);
    let cols = frames.len().min(4) as u32;
    let rows = (frames.len() as u32).div_ceil(cols);
    let gap = 4u32;
    let (sw, sh) = (cols * (w + gap) + gap, rows * (h + gap) + gap);
    let mut sheet = vec![40u8; (sw * sh * 3) as usize];
    for (i, (fw, fh, px)) in frames.iter().enumerate() {
        let (cx, cy) = (i as u32 % cols, i as u32 / cols);
        let (x0, y0) = (gap + cx * (w + gap), gap + cy * (h + gap));
        for y in 0..(*fh).min(h) {
            for x in 0..(*fw).min(w) {
                let src = ((y * fw + x) * 3) as usize;
                let dst = (((y0 + y) * sw + x0 + x) * 3) as usize;
                sheet[dst..dst + 3].copy_from_slice(&px[src..src + 3]);
            }
        }
    }
    let file = fs::File::create(out).with_context(|| format!("creating {}", out.display()))?;
    let mut enc = png::Encoder::new(std::io::BufWriter::new(file), sw, sh);
    enc.set_color(png::ColorType::Rgb);
    enc.set_depth(png::BitDepth::Eight);
    enc.write_header()?.write_image_data(&sheet)?;
    Ok(frames.len())
}

/// A PNG as 8-bit RGB: (width, height, pixels).
fn read_rgb(path: &Path) -> Result<(u32, u32, Vec<u8>)> {
    let dec = png::Decoder::new(std::io::BufReader::new(fs::File::open(path)?));
    let mut reader = dec.read_info()?;
    let mut buf = vec![0; reader.output_buffer_size().context("PNG too large")?];
    let info = reader.next_frame(&mut buf)?;
    if info.bit_depth != png::BitDepth::Eight {
        bail!("{}: not 8 bits per channel", path.display());
    }
    let px = &buf[..info.buffer_size()];
    let rgb = match info.color_type {
        png::ColorType::Rgb => px.to_vec(),
        png::ColorType::Rgba => px
            .chunks_exact(4)
            .flat_map(|p| [p[0], p[1], p[2]])
            .collect(),
        png::ColorType::Grayscale => px.iter().flat_map(|&g| [g, g, g]).collect(),
        other => bail!("{}: {other:?} PNG", path.display()),
    };
    Ok((info.width, info.height, rgb))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_contact_sheet_tiles_the_frames_four_to_a_row() {
        let dir = std::env::temp_dir().join(format!("ewindow-sheet-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        for i in 0..6u8 {
            let f = fs::File::create(dir.join(format!("frame-{i:05}.png"))).unwrap();
            let mut e = png::Encoder::new(f, 8, 6);
            e.set_color(png::ColorType::Rgba);
            e.set_depth(png::BitDepth::Eight);
            let px: Vec<u8> = (0..8 * 6).flat_map(|_| [i * 40, 0, 0, 255]).collect();
            e.write_header().unwrap().write_image_data(&px).unwrap();
        }
        let out = dir.join("sheet.png");
        assert_eq!(contact_sheet(&dir, &out).unwrap(), 6);
        let (w, h, px) = read_rgb(&out).unwrap();
        assert_eq!((w, h), (4 * (8 + 4) + 4, 2 * (6 + 4) + 4));
        // the sixth frame (row 2, column 2) is where it belongs, in its own colour
        let (x, y) = (4 + (8 + 4) + 3, 4 + (6 + 4) + 2);
        let at = ((y * w + x) * 3) as usize;
        assert_eq!(&px[at..at + 3], &[200, 0, 0]);
        // the gap between frames is the background
        assert_eq!(&px[0..3], &[40, 40, 40]);
        fs::remove_dir_all(&dir).unwrap();
    }
}
