//! `cargo xtask bench init`: figures of `ewindow-init` (release build), printed as a table.
//!
//! - exec → first service started: the bench takes the wall clock just before it spawns
//!   `ewindow-init` (as a child subreaper: the PID 1 code path without the mounts); the first
//!   service is `sh -c 'date +%s%N'`. The cost of `sh -c date` alone is measured the same way
//!   and shown beside it, so the difference is init's own share.
//! - RSS of init (`VmRSS`) with two services running.
//! - Idle wake-ups: context switches of init over 10 s with nothing happening, without a
//!   watchdog (goal: zero) and with one (a FIFO standing in for /dev/watchdog, 30 s timeout:
//!   one pet every 10 s).

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

fn init_bin() -> PathBuf {
    // benches live in target/release/deps; the binary in target/release.
    let exe = std::env::current_exe().unwrap();
    let release = exe.parent().unwrap().parent().unwrap();
    let bin = release.join("ewindow-init");
    if !bin.exists() {
        let status = Command::new(env!("CARGO"))
            .args([
                "build",
                "--release",
                "-p",
                "ewindow-init",
                "--bin",
                "ewindow-init",
            ])
            .status()
            .unwrap();
        assert!(status.success());
    }
    bin
}

fn now_ns() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos()
}

fn wait_file(path: &Path) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Ok(s) = fs::read_to_string(path) {
            if s.ends_with('\n') {
                return s.trim().to_owned();
            }
        }
        assert!(
            Instant::now() < deadline,
            "{} never written",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(1));
    }
}

fn start(bin: &Path, dir: &Path, services: &str) -> Child {
    fs::write(dir.join("services.toml"), services).unwrap();
    Command::new(bin)
        .arg("--config")
        .arg(dir.join("services.toml"))
        .arg("--control")
        .arg(dir.join("init.sock"))
        .env("EWINDOW_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

fn stop(mut child: Child) {
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    );
    let _ = child.wait();
}

fn proc_field(pid: u32, key: &str) -> u64 {
    fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix(key))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

fn switches(pid: u32) -> u64 {
    proc_field(pid, "voluntary_ctxt_switches:") + proc_field(pid, "nonvoluntary_ctxt_switches:")
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

fn main() {
    let bin = init_bin();
    let dir = std::env::temp_dir().join(format!("ewindow-bench-init-{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).unwrap();
    let stamp = dir.join("t");
    let date = format!("date +%s%N > {}.tmp && mv {0}.tmp {0}", stamp.display());

    let runs = 15;
    let mut baseline = Vec::new();
    let mut first_service = Vec::new();
    for _ in 0..runs {
        let _ = fs::remove_file(&stamp);
        let t0 = now_ns();
        let mut c = Command::new("sh").args(["-c", &date]).spawn().unwrap();
        let t1: u128 = wait_file(&stamp).parse().unwrap();
        let _ = c.wait();
        baseline.push((t1 - t0) as f64 / 1e6);

        let _ = fs::remove_file(&stamp);
        let services = format!(
            "[[service]]\nname = \"first\"\nexec = [\"sh\", \"-c\", \"{date}; exec sleep 1000\"]\n"
        );
        let t0 = now_ns();
        let child = start(&bin, &dir, &services);
        let t1: u128 = wait_file(&stamp).parse().unwrap();
        first_service.push((t1 - t0) as f64 / 1e6);
        stop(child);
    }

    let services = "[[service]]\nname = \"a\"\nexec = [\"sleep\", \"1000\"]\n\
                    [[service]]\nname = \"b\"\nexec = [\"sleep\", \"1000\"]\nafter = [\"a\"]\n";
    let child = start(&bin, &dir, services);
    std::thread::sleep(Duration::from_secs(2));
    let pid = child.id();
    let rss = proc_field(pid, "VmRSS:");
    let s0 = switches(pid);
    std::thread::sleep(Duration::from_secs(10));
    let idle = (switches(pid) - s0) as f64 / 10.0;
    stop(child);

    let fifo = dir.join("watchdog");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
    let reader = fs::OpenOptions::new()
        .read(true)
        .custom_flags(nix::libc::O_NONBLOCK)
        .open(&fifo)
        .unwrap();
    let with_wd = format!(
        "{services}[system.watchdog]\ndevice = \"{}\"\ntimeout_s = 30\n",
        fifo.display()
    );
    let child = start(&bin, &dir, &with_wd);
    std::thread::sleep(Duration::from_secs(2));
    let pid = child.id();
    let s0 = switches(pid);
    std::thread::sleep(Duration::from_secs(10));
    let idle_wd = (switches(pid) - s0) as f64 / 10.0;
    stop(child);
    drop(reader);

    println!("ewindow-init (release), {runs} runs where timed; medians");
    println!("| figure | value |");
    println!("|---|---|");
    println!(
        "| exec → first service wrote its time (ms) | {:.2} |",
        median(first_service.clone())
    );
    println!(
        "| `sh -c date` alone, spawned by the bench (ms) | {:.2} |",
        median(baseline.clone())
    );
    println!(
        "| init's share (ms) | {:.2} |",
        median(first_service) - median(baseline)
    );
    println!("| RSS with two services (kB) | {rss} |");
    println!("| idle wake-ups/s, no watchdog | {idle:.2} |");
    println!("| idle wake-ups/s, watchdog 30 s (pet every 10 s) | {idle_wd:.2} |");
    let _ = fs::remove_dir_all(&dir);
}

use std::os::unix::fs::OpenOptionsExt;
