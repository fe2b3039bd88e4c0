//! The lab the overlay's tests run in: namespaces on this machine joined by veth pairs on a
//! bridge (the underlay, 192.168.77.0/24 and 2001:db8:77::/64), each window running
//! wireguard-go, `ewindow-overlay` and `ewindow-phone` — the real programs, as a window runs
//! them. Needs root (CI runs as root), `ip` (iproute2) and `wireguard-go`; the NAT tests also
//! `nft` and `tcpdump`.
//!
//! Each test uses its own interface names (`ew<lab><window>`): wireguard-go's UAPI socket is a
//! path in /var/run/wireguard, shared by every namespace of the machine.
#![allow(dead_code)] // each test binary uses part of it

use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, UdpSocket};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

pub const OVERLAY: &str = env!("CARGO_BIN_EXE_ewindow-overlay");

/// A binary of another package of the workspace, built when missing.
pub fn workspace_bin(name: &str, package: &str) -> PathBuf {
    let dir = Path::new(OVERLAY).parent().unwrap();
    let bin = dir.join(name);
    if !bin.exists() {
        // Next to the overlay: a benchmark's (release) or a test's (debug) build.
        let release = dir.ends_with("release").then_some("--release");
        let ok = Command::new(env!("CARGO"))
            .args(["build", "-p", package, "--bin", name])
            .args(release)
            .status()
            .unwrap()
            .success();
        assert!(ok, "building {name}");
    }
    bin
}

pub fn sh(cmd: &str) -> Output {
    Command::new("sh").args(["-c", cmd]).output().unwrap()
}

pub fn must(cmd: &str) -> String {
    let out = sh(cmd);
    assert!(
        out.status.success(),
        "`{cmd}` failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub struct Window {
    pub name: String,
    pub ns: String,
    pub dir: PathBuf,
    pub n: u8,
    pub iface: String,
    /// The overlay gets no `--endpoint`: invitations carry the LAN address it finds itself.
    pub lan_only: bool,
}

impl Window {
    pub fn v4(&self) -> String {
        format!("192.168.77.{}", self.n)
    }
    pub fn window_file(&self) -> PathBuf {
        self.dir.join("window.toml")
    }
    pub fn overlay_sock(&self) -> PathBuf {
        self.dir.join("overlay.sock")
    }
    pub fn phone_sock(&self) -> PathBuf {
        self.dir.join("phone.sock")
    }
    pub fn public_key(&self) -> String {
        must(&format!(
            "{OVERLAY} identity --identity {}",
            self.dir.join("identity.key").display()
        ))
        .trim()
        .to_owned()
    }
    /// The overlay address, from the overlay's control socket.
    pub fn overlay_addr(&self) -> String {
        ask(&self.overlay_sock(), json!({"cmd": "identity"}))["address"]
            .as_str()
            .unwrap()
            .to_owned()
    }
    pub fn exec(&self, cmd: &str) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.ns, "sh", "-c", cmd]);
        c
    }
}

/// One lab: the bridge namespace, the windows, their processes; all removed on drop.
pub struct Lab {
    pub id: char,
    pub bridge: String,
    pub windows: Vec<Window>,
    pub procs: Vec<(String, Child)>,
    pub root: PathBuf,
    /// NAT routers' namespaces.
    pub routers: Vec<String>,
}

pub fn require_root() {
    assert!(
        nix::unistd::geteuid().is_root(),
        "these tests create network namespaces and run wireguard-go: run them as root, as CI does"
    );
}

impl Lab {
    pub fn new(id: char) -> Lab {
        require_root();
        let pid = std::process::id() % 100_000;
        let root = std::env::temp_dir().join(format!("ewindow-lab{id}-{pid}"));
        let _ = fs::remove_dir_all(&root);
        fs::create_dir_all(&root).unwrap();
        let bridge = format!("ewl{id}{pid}br");
        let _ = sh(&format!("ip netns del {bridge}"));
        must(&format!(
            "ip netns add {bridge} && ip -n {bridge} link set lo up && \
             ip -n {bridge} link add br0 type bridge && ip -n {bridge} link set br0 up"
        ));
        Lab {
            id,
            bridge,
            windows: Vec::new(),
            procs: Vec::new(),
            root,
            routers: Vec::new(),
        }
    }

    /// A window on its own LAN (10.0.N.0/24) behind a NAT router namespace whose underlay
    /// address is 192.168.77.N (the window's `v4()`): nftables `masquerade` keeps the source
    /// port when it can (one mapping per source port, filtering per destination: a home
    /// router), `masquerade random` takes a new port per destination (a symmetric NAT). The
    /// window has no IPv6 underlay; its overlay gets no `--endpoint`.
    pub fn behind_nat(&mut self, name: &str, random: bool) -> usize {
        let n = self.windows.len() as u8 + 1;
        let pid = std::process::id() % 100_000;
        let ns = format!("ewl{}{pid}{name}", self.id);
        let router = format!("ewl{}{pid}r{name}", self.id);
        let dir = self.root.join(name);
        fs::create_dir_all(&dir).unwrap();
        let tag = format!("{}{name}{}", self.id, pid % 1000);
        for x in [&ns, &router] {
            let _ = sh(&format!("ip netns del {x}"));
        }
        must(&format!(
            "ip netns add {router} && ip -n {router} link set lo up && \
             ip netns add {ns} && ip -n {ns} link set lo up && \
             ip link add ewv{tag} type veth peer name ewp{tag} && \
             ip link set ewv{tag} netns {br} && ip -n {br} link set ewv{tag} master br0 up && \
             ip link set ewp{tag} netns {router} && ip -n {router} link set ewp{tag} name eth0 && \
             ip -n {router} addr add 192.168.77.{n}/24 dev eth0 && ip -n {router} link set eth0 up && \
             ip link add ewl{tag} type veth peer name ewm{tag} && \
             ip link set ewl{tag} netns {router} && ip -n {router} link set ewl{tag} name lan0 && \
             ip -n {router} addr add 10.0.{n}.1/24 dev lan0 && ip -n {router} link set lan0 up && \
             ip link set ewm{tag} netns {ns} && ip -n {ns} link set ewm{tag} name eth0 && \
             ip -n {ns} addr add 10.0.{n}.2/24 dev eth0 && ip -n {ns} link set eth0 up && \
             ip -n {ns} route add default via 10.0.{n}.1 && \
             ip netns exec {router} sysctl -qw net.ipv4.ip_forward=1",
            br = self.bridge
        ));
        self.routers.push(router);
        self.windows.push(Window {
            name: name.into(),
            ns,
            dir,
            n,
            iface: format!("ew{}{name}", self.id),
            lan_only: true,
        });
        let w = self.windows.len() - 1;
        self.nat(w, random);
        w
    }

    /// The rules of window `w`'s router (see [`Lab::behind_nat`]), replaced in one go.
    pub fn nat(&self, w: usize, random: bool) {
        let router = self.router(w);
        let how = if random {
            "masquerade random"
        } else {
            "masquerade"
        };
        // A home router also drops what nobody inside asked for: without that, Linux keeps a
        // conntrack entry for the other side's first (unsolicited) packet, and the inside's
        // own packet to that peer then gets another source port — no hole ever opens.
        let rules = format!(
            "table ip nat {{}}\ndelete table ip nat\ntable ip nat {{\n chain post {{\n  \
             type nat hook postrouting priority srcnat; policy accept;\n  \
             oifname \"eth0\" {how}\n }}\n}}\n\
             table inet router {{}}\ndelete table inet router\ntable inet router {{\n \
             chain input {{\n  type filter hook input priority filter; policy accept;\n  \
             iifname \"eth0\" ct state new drop\n }}\n \
             chain forward {{\n  type filter hook forward priority filter; policy accept;\n  \
             iifname \"eth0\" ct state new drop\n }}\n}}\n"
        );
        let mut child = Command::new("ip")
            .args(["netns", "exec", &router, "nft", "-f", "-"])
            .stdin(Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(rules.as_bytes())
            .unwrap();
        assert!(child.wait().unwrap().success(), "nft in {router}");
    }

    /// A, B behind NAT routers (B's symmetric when `random_b`), C on the underlay with the
    /// only endpoint in the roster (a relay when `relay`); A and B partners. Returns (a, b, c).
    pub fn behind_nats(&mut self, random_b: bool, relay: bool) -> (usize, usize, usize) {
        let a = self.behind_nat("a", false);
        let b = self.behind_nat("b", random_b);
        let c = self.host("c");
        self.roster_with(
            &[(a, false, false), (b, false, false), (c, true, relay)],
            &[(a, "b"), (b, "a")],
        );
        (a, b, c)
    }

    /// Window `w`'s router becomes a home router (`masquerade`) and forgets its mappings: its
    /// public address goes and comes back, as on a new lease.
    pub fn router_renewed_as_home_router(&self, w: usize) {
        let router = self.router(w);
        let public = self.windows[w].v4();
        self.nat(w, false);
        must(&format!(
            "ip -n {router} addr del {public}/24 dev eth0 && ip -n {router} addr add {public}/24 dev eth0"
        ));
    }

    /// The router namespace in front of window `w`.
    pub fn router(&self, w: usize) -> String {
        let win = &self.windows[w];
        let pid = std::process::id() % 100_000;
        format!("ewl{}{pid}r{}", self.id, win.name)
    }

    /// Each listed window's `window.toml`: the same roster, members in order, each with its
    /// underlay endpoint or none (`(window, endpoint?, relay?)`), and each window's partner.
    pub fn roster_with(&self, members: &[(usize, bool, bool)], partners: &[(usize, &str)]) {
        let mut roster = String::from("[roster]\nversion = 1\n");
        for &(m, endpoint, relay) in members {
            let w = &self.windows[m];
            let endpoints = if endpoint {
                format!("[\"{}:51820\"]", w.v4())
            } else {
                "[]".into()
            };
            roster.push_str(&format!(
                "\n[[member]]\nname = \"{}\"\npublic_key = \"{}\"\nendpoints = {endpoints}\nrelay = {relay}\n",
                w.name,
                w.public_key(),
            ));
        }
        for &(m, _, _) in members {
            let w = &self.windows[m];
            let partner = partners
                .iter()
                .find(|(p, _)| *p == m)
                .map(|(_, name)| format!("partner = \"{name}\"\n"))
                .unwrap_or_default();
            fs::write(
                w.window_file(),
                format!(
                    "[window]\nname = \"{}\"\n{partner}presence_interval_s = 2\n\n{roster}",
                    w.name
                ),
            )
            .unwrap();
        }
    }

    /// wireguard-go and the overlay only (a member that relays, or has no screen).
    pub fn start_overlay(&mut self, w: usize) {
        self.start_wireguard(w);
        let args = self.overlay_args(w);
        self.spawn(w, "overlay", &format!("{OVERLAY} up {args}"));
    }

    /// What window `w`'s overlay says of member `name` (`path`, `via`, `endpoint`, …).
    pub fn peer(&self, w: usize, name: &str) -> Value {
        let sock = self.windows[w].overlay_sock();
        if UnixStream::connect(&sock).is_err() {
            return Value::Null;
        }
        let r = ask(&sock, json!({"cmd": "members"}));
        r["members"]
            .as_array()
            .and_then(|m| m.iter().find(|p| p["name"] == name).cloned())
            .unwrap_or(Value::Null)
    }

    /// `tcpdump` on window `w`'s interface `dev` into `what.pcap` (whole packets matching
    /// `filter`, written packet by packet, so it can be read while it runs).
    pub fn capture(&mut self, w: usize, dev: &str, what: &str, filter: &str) -> PathBuf {
        let file = self.windows[w].dir.join(format!("{what}.pcap"));
        let cmd = format!(
            "tcpdump -i {dev} -U -n -s 2048 -w {} {filter}",
            file.display()
        );
        self.spawn(w, what, &cmd);
        // tcpdump says "listening on" once the capture runs.
        wait_for(&format!("{what} capturing"), 10, || {
            (!self.log(w, what).contains("listening on")).then(|| self.log(w, what))
        });
        file
    }

    /// A namespace on the underlay with its own address (no WireGuard, no processes yet).
    pub fn host(&mut self, name: &str) -> usize {
        let n = self.windows.len() as u8 + 1;
        let pid = std::process::id() % 100_000;
        let ns = format!("ewl{}{pid}{name}", self.id);
        let dir = self.root.join(name);
        fs::create_dir_all(&dir).unwrap();
        let (va, vb) = (
            format!("ewv{}{name}{}", self.id, pid % 1000),
            format!("ewp{}{name}{}", self.id, pid % 1000),
        );
        let _ = sh(&format!("ip netns del {ns}"));
        must(&format!(
            "ip netns add {ns} && ip -n {ns} link set lo up && \
             ip link add {va} type veth peer name {vb} && \
             ip link set {va} netns {br} && ip -n {br} link set {va} master br0 up && \
             ip link set {vb} netns {ns} && ip -n {ns} link set {vb} name eth0 && \
             ip -n {ns} addr add 192.168.77.{n}/24 dev eth0 && \
             ip -n {ns} addr add 2001:db8:77::{n}/64 dev eth0 nodad && \
             ip -n {ns} link set eth0 up",
            br = self.bridge
        ));
        self.windows.push(Window {
            name: name.into(),
            ns,
            dir,
            n,
            iface: format!("ew{}{name}", self.id),
            lan_only: false,
        });
        self.windows.len() - 1
    }

    pub fn spawn(&mut self, w: usize, what: &str, cmd: &str) {
        let win = &self.windows[w];
        let log = fs::File::create(win.dir.join(format!("{what}.log"))).unwrap();
        let child = win
            .exec(&format!("exec {cmd}"))
            .env(
                "EWINDOW_LOG",
                std::env::var("LAB_LOG").unwrap_or_else(|_| "info,rsipstack=warn".into()),
            )
            .env("WG_PROCESS_FOREGROUND", "1")
            .env("LOG_LEVEL", "error")
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        self.procs.push((format!("{}:{what}", win.name), child));
    }

    pub fn log(&self, w: usize, what: &str) -> String {
        fs::read_to_string(self.windows[w].dir.join(format!("{what}.log"))).unwrap_or_default()
    }

    /// Writes every listed window's `window.toml` with the same roster (members in order).
    pub fn roster(&self, members: &[usize], presence_s: u32) {
        let mut roster = String::from("[roster]\nversion = 1\n");
        for &m in members {
            let w = &self.windows[m];
            roster.push_str(&format!(
                "\n[[member]]\nname = \"{}\"\npublic_key = \"{}\"\nendpoints = [\"{}:51820\"]\n",
                w.name,
                w.public_key(),
                w.v4()
            ));
        }
        for &m in members {
            let w = &self.windows[m];
            fs::write(
                w.window_file(),
                format!(
                    "[window]\nname = \"{}\"\npresence_interval_s = {presence_s}\n\n{roster}",
                    w.name
                ),
            )
            .unwrap();
        }
    }

    pub fn overlay_args(&self, w: usize) -> String {
        let win = &self.windows[w];
        let endpoint = if win.lan_only {
            String::new()
        } else {
            format!(" --endpoint {}:51820", win.v4())
        };
        format!(
            "--interface {} --backend userspace --window {} --identity {} --invitations {} \
             --control {} --phone-control {}{endpoint}",
            win.iface,
            win.window_file().display(),
            win.dir.join("identity.key").display(),
            win.dir.join("invitations.json").display(),
            win.overlay_sock().display(),
            win.phone_sock().display(),
        )
    }

    pub fn start_wireguard(&mut self, w: usize) {
        let iface = self.windows[w].iface.clone();
        self.spawn(w, "wireguard-go", &format!("wireguard-go -f {iface}"));
    }

    /// wireguard-go, the overlay (waits until it answers) and the phone.
    pub fn start_window(&mut self, w: usize) {
        self.start_wireguard(w);
        let args = self.overlay_args(w);
        self.spawn(w, "overlay", &format!("{OVERLAY} up {args}"));
        let sock = self.windows[w].overlay_sock();
        let deadline = Instant::now() + Duration::from_secs(20);
        while UnixStream::connect(&sock).is_err() {
            assert!(
                Instant::now() < deadline,
                "overlay of {} not up:\n{}\n{}",
                self.windows[w].name,
                self.log(w, "overlay"),
                self.log(w, "wireguard-go")
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        self.start_phone(w);
    }

    pub fn start_phone(&mut self, w: usize) {
        let phone = workspace_bin("ewindow-phone", "ewindow-phone");
        let win = &self.windows[w];
        let cmd = format!(
            "{} listen --window {} --auto-answer --control {} --video-codecs vp8 --video-size 320x240 --video-fps 15",
            phone.display(),
            win.window_file().display(),
            win.phone_sock().display()
        );
        self.spawn(w, "phone", &cmd);
        let sock = self.windows[w].phone_sock();
        let deadline = Instant::now() + Duration::from_secs(20);
        while UnixStream::connect(&sock).is_err() {
            assert!(
                Instant::now() < deadline,
                "phone of {} not up:\n{}",
                self.windows[w].name,
                self.log(w, "phone")
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// `ewindow-phone call` from window `from` to member `to`, for `secs`.
    pub fn call(&self, from: usize, to: &str, secs: f64) -> (bool, String, Value) {
        let phone = workspace_bin("ewindow-phone", "ewindow-phone");
        let win = &self.windows[from];
        let stats = win.dir.join(format!("call-{to}.json"));
        let out = win
            .exec(&format!(
                "{} call {to} --window {} --duration {secs} --stats-json {} --video-codecs vp8 --video-size 320x240 --video-fps 15",
                phone.display(),
                win.window_file().display(),
                stats.display()
            ))
            .output()
            .unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let stats = fs::read_to_string(&stats)
            .ok()
            .and_then(|t| serde_json::from_str(&t).ok())
            .unwrap_or(Value::Null);
        (out.status.success(), text, stats)
    }
}

impl Lab {
    /// wireguard-go, the overlay and the phone in window mode (audio only: three windows share
    /// two cores).
    pub fn start_window_mode(&mut self, w: usize) {
        self.start_window_mode_with(w, "--video-codecs none");
    }

    /// The same with these media options for the phone.
    pub fn start_window_mode_with(&mut self, w: usize, media: &str) {
        self.start_wireguard(w);
        let args = self.overlay_args(w);
        self.spawn(w, "overlay", &format!("{OVERLAY} up {args}"));
        let phone = workspace_bin("ewindow-phone", "ewindow-phone");
        let win = &self.windows[w];
        let cmd = format!(
            "{} window --window-file {} --control {} {media}",
            phone.display(),
            win.window_file().display(),
            win.phone_sock().display()
        );
        self.spawn(w, "phone", &cmd);
    }

    pub fn state(&self, w: usize) -> (String, String) {
        let sock = self.windows[w].phone_sock();
        if UnixStream::connect(&sock).is_err() {
            return ("no socket".into(), String::new());
        }
        let r = ask(&sock, json!({"cmd": "status"}));
        let st = &r["status"]["state"];
        (
            st["kind"].as_str().unwrap_or("?").to_owned(),
            st["peer"].as_str().unwrap_or("").to_owned(),
        )
    }

    pub fn wait_state(&self, w: usize, kind: &str, peer: &str, secs: u64) {
        wait_for(
            &format!("{} {kind} {peer}", self.windows[w].name),
            secs,
            || {
                let (k, p) = self.state(w);
                (k != kind || p != peer).then(|| format!("{k} {p}\n{}", self.log(w, "phone")))
            },
        );
    }

    /// wireguard-go, the overlay and `ewindow-phone PHONE_ARGS` as the services of
    /// `ewindow-init`, PID 1 of its own PID namespace as on a device (the phone after the
    /// overlay is ready); waits until all three run and returns init's control socket.
    pub fn start_under_init(&mut self, w: usize, phone_args: &str) -> PathBuf {
        let init = workspace_bin("ewindow-init", "ewindow-init");
        let phone = workspace_bin("ewindow-phone", "ewindow-phone");
        let quoted = |args: &str| -> String {
            args.split_whitespace()
                .map(|s| format!("\"{s}\""))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let win = &self.windows[w];
        let services = format!(
            r#"
[[service]]
name = "wireguard-go"
exec = ["wireguard-go", "-f", "{iface}"]
env = {{ WG_PROCESS_FOREGROUND = "1", LOG_LEVEL = "error" }}

[[service]]
name = "overlay"
exec = ["{OVERLAY}", "up", {overlay_args}]
after = ["wireguard-go"]
ready = "notify"

[[service]]
name = "phone"
exec = ["{phone}", {phone_args}]
after = ["overlay"]
"#,
            iface = win.iface,
            overlay_args = quoted(&self.overlay_args(w)),
            phone = phone.display(),
            phone_args = quoted(phone_args),
        );
        let config = win.dir.join("services.toml");
        let init_sock = win.dir.join("init.sock");
        fs::write(&config, services).unwrap();
        let cmd = format!(
            "unshare --fork --pid --mount-proc {} --no-mounts --config {} --control {}",
            init.display(),
            config.display(),
            init_sock.display()
        );
        self.spawn(w, "init", &cmd);
        wait_for("every service running", 30, || {
            let st = UnixStream::connect(&init_sock)
                .ok()
                .map(|_| ask(&init_sock, json!({"cmd": "status"})));
            let all = st
                .as_ref()
                .and_then(|s| s["status"]["services"].as_array().cloned());
            match all {
                Some(v) if v.len() == 3 && v.iter().all(|s| s["state"] == "running") => None,
                _ => Some(format!("{st:?}\n{}", self.log(w, "init"))),
            }
        });
        init_sock
    }

    /// Kills every process of window `w` (SIGKILL: a power cut) and forgets them.
    pub fn kill_all(&mut self, w: usize) {
        self.kill(w, None);
    }

    /// Kills (SIGKILL) window `w`'s process `what` (as [`Lab::spawn`] named it), or all of
    /// them, and forgets it.
    pub fn kill(&mut self, w: usize, what: Option<&str>) {
        let name = &self.windows[w].name;
        let hit = |n: &str| match what {
            Some(what) => n == format!("{name}:{what}"),
            None => n.starts_with(&format!("{name}:")),
        };
        for (n, child) in &mut self.procs {
            if hit(n) {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
        self.procs.retain(|(n, _)| !hit(n));
    }

    /// The process id of window `w`'s process `what` (as [`Lab::spawn`] named it).
    pub fn pid(&self, w: usize, what: &str) -> u32 {
        let name = format!("{}:{what}", self.windows[w].name);
        self.procs
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, c)| c.id())
            .unwrap_or_else(|| panic!("no process {name}"))
    }

    pub fn ctl(&self, w: usize, args: &str) {
        let ctl = workspace_bin("ewindowctl", "ewindow-console");
        must(&format!(
            "{} --phone-control {} {args}",
            ctl.display(),
            self.windows[w].phone_sock().display()
        ));
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        for (_, c) in &mut self.procs {
            let _ = c.kill();
        }
        for (_, c) in &mut self.procs {
            let _ = c.wait();
        }
        // Processes started inside namespaces by `ip netns exec` are its children: gone too.
        for ns in &self.routers {
            let _ = sh(&format!("ip netns del {ns}"));
        }
        for w in &self.windows {
            let _ = sh(&format!(
                "ip netns pids {ns} | xargs -r kill -9; ip netns del {ns}",
                ns = w.ns
            ));
            let _ = fs::remove_file(format!("/var/run/wireguard/{}.sock", w.iface));
        }
        let _ = sh(&format!("ip netns del {}", self.bridge));
        if !std::thread::panicking() {
            let _ = fs::remove_dir_all(&self.root);
        } else {
            eprintln!("lab kept for inspection: {}", self.root.display());
        }
    }
}

pub fn ask(socket: &Path, req: Value) -> Value {
    try_ask(socket, &req).unwrap_or_else(|e| panic!("{}: {req}: {e}", socket.display()))
}

/// [`ask`] for a process that may be dying or restarting: an error instead of a panic.
pub fn try_ask(socket: &Path, req: &Value) -> Result<Value, String> {
    let mut s = UnixStream::connect(socket).map_err(|e| e.to_string())?;
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .map_err(|e| e.to_string())?;
    writeln!(s, "{req}").map_err(|e| e.to_string())?;
    let mut line = String::new();
    BufReader::new(s)
        .read_line(&mut line)
        .map_err(|e| e.to_string())?;
    serde_json::from_str(&line).map_err(|e| format!("{e}: {line:?}"))
}

/// Sends a SIP OPTIONS over UDP from inside namespace `ns` (a thread that entered it) to
/// `[addr]:5060` and returns the status line of the answer, or "no answer".
pub fn udp_probe_from(ns: &str, addr: &str) -> String {
    let ns = ns.to_owned();
    let addr = addr.to_owned();
    std::thread::spawn(move || {
        let f = fs::File::open(format!("/var/run/netns/{ns}")).unwrap();
        nix::sched::setns(&f, nix::sched::CloneFlags::CLONE_NEWNET).unwrap();
        let s = std::net::UdpSocket::bind("[::]:0").unwrap();
        s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        let msg = format!(
            "OPTIONS sip:a@[{addr}]:5060 SIP/2.0\r\n\
             Via: SIP/2.0/UDP [2001:db8:77::3]:5099;branch=z9hG4bKprobe1\r\n\
             From: <sip:a@[2001:db8:77::3]>;tag=1\r\nTo: <sip:a@[{addr}]>\r\n\
             Call-ID: probe1\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
        );
        s.send_to(msg.as_bytes(), format!("[{addr}]:5060")).unwrap();
        let mut buf = [0u8; 2000];
        match s.recv(&mut buf) {
            Ok(n) => String::from_utf8_lossy(&buf[..n])
                .lines()
                .next()
                .unwrap_or("")
                .to_owned(),
            Err(_) => "no answer".to_owned(),
        }
    })
    .join()
    .unwrap()
}

pub fn wait_for(what: &str, secs: u64, mut f: impl FnMut() -> Option<String>) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if f().is_none() {
            return;
        }
        if Instant::now() >= deadline {
            panic!("{what}: {}", f().unwrap_or_default());
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The statistics of one stream (`audio`/`video`, `send`/`recv`).
pub fn stream<'a>(stats: &'a Value, media: &str, direction: &str) -> &'a Value {
    stats["streams"]
        .as_array()
        .and_then(|s| {
            s.iter()
                .find(|x| x["media"] == media && x["direction"] == direction)
        })
        .unwrap_or(&Value::Null)
}

pub fn decoded(stats: &Value, media: &str) -> u64 {
    stream(stats, media, "recv")["decoded"]
        .as_u64()
        .unwrap_or(0)
}

/// Runs `f` in a thread that entered namespace `ns`.
pub fn in_ns<T: Send + 'static>(ns: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    let ns = ns.to_owned();
    std::thread::spawn(move || {
        let file = fs::File::open(format!("/var/run/netns/{ns}")).unwrap();
        nix::sched::setns(&file, nix::sched::CloneFlags::CLONE_NEWNET).unwrap();
        f()
    })
    .join()
    .unwrap()
}

/// The running call of window `w` as its phone reports it (streams with their counters).
pub fn live_call(lab: &Lab, w: usize) -> Value {
    let r = ask(&lab.windows[w].phone_sock(), json!({"cmd": "status"}));
    r["status"]["call"].clone()
}

/// Waits until both windows decode audio and video from each other; SRTP on both.
pub fn decoded_both_ways(lab: &Lab, a: usize, b: usize) {
    for (w, other) in [(a, b), (b, a)] {
        wait_for(
            &format!(
                "{} decodes {}",
                lab.windows[w].name, lab.windows[other].name
            ),
            30,
            || {
                let call = live_call(lab, w);
                let ok = decoded(&call, "audio") > 50
                    && decoded(&call, "video") > 10
                    && stream(&call, "audio", "recv")["srtp"] == true
                    && stream(&call, "video", "recv")["srtp"] == true;
                (!ok).then(|| call.to_string())
            },
        );
    }
}

/// The median round trip of a UDP datagram from window `from` to an echo on window `to`'s
/// overlay address, in milliseconds (over whatever path the overlay uses now).
pub fn udp_rtt_ms(lab: &Lab, from: usize, to: usize) -> f64 {
    let at: SocketAddr = format!("[{}]:7007", lab.windows[to].overlay_addr())
        .parse()
        .unwrap();
    let echo = in_ns(&lab.windows[to].ns, move || UdpSocket::bind(at).unwrap());
    echo.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
    let server = std::thread::spawn(move || {
        let mut buf = [0u8; 64];
        while let Ok((n, peer)) = echo.recv_from(&mut buf) {
            let _ = echo.send_to(&buf[..n], peer);
        }
    });
    let mut rtts = in_ns(&lab.windows[from].ns, move || {
        let s = UdpSocket::bind("[::]:0").unwrap();
        s.set_read_timeout(Some(Duration::from_secs(1))).unwrap();
        let mut out = Vec::new();
        for i in 0..21u8 {
            let t = Instant::now();
            s.send_to(&[i; 32], at).unwrap();
            let mut buf = [0u8; 64];
            if s.recv_from(&mut buf).is_ok() {
                out.push(t.elapsed().as_secs_f64() * 1000.0);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        out
    });
    let _ = server.join();
    assert!(rtts.len() > 10, "{} of 21 echoes came back", rtts.len());
    rtts.sort_by(|a, b| a.partial_cmp(b).unwrap());
    rtts[rtts.len() / 2]
}

/// A number field of `/proc/PID/status` (`VmRSS:`, `VmHWM:` in KiB, `Threads:`), 0 if gone.
pub fn proc_status(pid: u32, field: &str) -> u64 {
    fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// Ticks (user + system) of these processes.
pub fn ticks(pids: &[u32]) -> u64 {
    pids.iter()
        .filter_map(|pid| fs::read_to_string(format!("/proc/{pid}/stat")).ok())
        .map(|stat| {
            // After the command's closing parenthesis: state is field 3, utime 14, stime 15.
            let rest = stat.rsplit_once(") ").map(|(_, r)| r).unwrap_or("");
            let f: Vec<u64> = rest
                .split_whitespace()
                .map(|x| x.parse().unwrap_or(0))
                .collect();
            f.get(11).copied().unwrap_or(0) + f.get(12).copied().unwrap_or(0)
        })
        .sum()
}

/// Per cent of one core each of these processes (window, what it runs) uses over the same
/// `secs`.
pub fn cpu(lab: &Lab, procs: &[(usize, &str)], secs: f64) -> Vec<f64> {
    let pids: Vec<u32> = procs.iter().map(|(w, what)| lab.pid(*w, what)).collect();
    let hz = nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK)
        .ok()
        .flatten()
        .unwrap_or(100) as f64;
    let before: Vec<u64> = pids.iter().map(|p| ticks(&[*p])).collect();
    std::thread::sleep(Duration::from_secs_f64(secs));
    pids.iter()
        .zip(before)
        .map(|(p, t0)| (ticks(&[*p]) - t0) as f64 / hz / secs * 100.0)
        .collect()
}

/// Per cent of one core window `w`'s WireGuard and overlay use over `secs`.
pub fn overlay_cpu(lab: &Lab, w: usize, secs: f64) -> f64 {
    cpu(lab, &[(w, "overlay"), (w, "wireguard-go")], secs)
        .iter()
        .sum()
}

/// One UDP datagram of a capture.
#[derive(Debug, Clone)]
pub struct Datagram {
    pub from: std::net::SocketAddr,
    pub to: std::net::SocketAddr,
    /// As captured (at most the snap length).
    pub payload: Vec<u8>,
    /// Its length on the wire.
    pub len: usize,
}

/// The UDP datagrams of a pcap file (Ethernet or raw IP captures, IPv4 and IPv6).
pub fn udp_datagrams(pcap: &[u8]) -> Vec<Datagram> {
    use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
    let u16be = |b: &[u8]| u16::from_be_bytes([b[0], b[1]]);
    let u32le = |b: &[u8]| u32::from_le_bytes([b[0], b[1], b[2], b[3]]);
    if pcap.len() < 24 {
        return Vec::new();
    }
    let linktype = u32le(&pcap[20..]);
    let mut out = Vec::new();
    let mut at = 24;
    while at + 16 <= pcap.len() {
        let caplen = u32le(&pcap[at + 8..]) as usize;
        let frame = &pcap[at + 16..(at + 16 + caplen).min(pcap.len())];
        at += 16 + caplen;
        let ip = match linktype {
            1 if frame.len() > 14 => &frame[14..],
            101 | 12 => frame,
            113 if frame.len() > 16 => &frame[16..],
            _ => continue,
        };
        let (from_ip, to_ip, udp): (IpAddr, IpAddr, &[u8]) = match ip.first().map(|b| b >> 4) {
            Some(4) if ip.len() >= 20 && ip[9] == 17 => {
                let ihl = usize::from(ip[0] & 15) * 4;
                let a = Ipv4Addr::new(ip[12], ip[13], ip[14], ip[15]);
                let b = Ipv4Addr::new(ip[16], ip[17], ip[18], ip[19]);
                (a.into(), b.into(), &ip[ihl.min(ip.len())..])
            }
            Some(6) if ip.len() >= 40 && ip[6] == 17 => {
                let a: [u8; 16] = ip[8..24].try_into().unwrap();
                let b: [u8; 16] = ip[24..40].try_into().unwrap();
                (
                    Ipv6Addr::from(a).into(),
                    Ipv6Addr::from(b).into(),
                    &ip[40..],
                )
            }
            _ => continue,
        };
        if udp.len() < 8 {
            continue;
        }
        out.push(Datagram {
            from: SocketAddr::new(from_ip, u16be(udp)),
            to: SocketAddr::new(to_ip, u16be(&udp[2..])),
            len: usize::from(u16be(&udp[4..])).saturating_sub(8),
            payload: udp[8..].to_vec(),
        });
    }
    out
}

/// Whether a UDP payload is a WireGuard message: type 1–4, three zero bytes, and the length
/// that type has (a data message: 16 bytes of header, 16 of tag, the packet padded to 16
/// bytes but not past the overlay's MTU of 1420).
pub fn is_wireguard(d: &Datagram) -> bool {
    let p = &d.payload;
    p.len() >= 4
        && p[1..4] == [0, 0, 0]
        && match p[0] {
            1 => d.len == 148,
            2 => d.len == 92,
            3 => d.len == 64,
            4 => d.len >= 32 && ((d.len - 32).is_multiple_of(16) || d.len - 32 == 1420),
            _ => false,
        }
}
