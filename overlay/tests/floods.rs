//! Connection floods against a window's servers, real processes in the lab: its overlay's
//! control socket, its phone's control socket, and its enrollment port (TCP on the overlay,
//! from a member's namespace). Each meets 10,000 connections (the enrollment port 2,500: each
//! is a TCP handshake through two userspace WireGuards, about 30 ms here), 100 clients that
//! connect and never send a line, and one line of 100 MB; meanwhile and afterwards a real request is
//! answered, and the process's memory stays bounded.

mod lab;

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use lab::*;
use serde_json::json;

/// Resident memory of a process, in kB.
fn rss_kb(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

/// Where a flood goes.
#[derive(Clone)]
enum Target {
    Unix(PathBuf),
    Tcp(SocketAddr),
}

trait Conn: Write + std::io::Read + Send {}
impl<T: Write + std::io::Read + Send> Conn for T {}

impl Target {
    fn connect(&self) -> Option<Box<dyn Conn>> {
        match self {
            Target::Unix(p) => UnixStream::connect(p)
                .ok()
                .map(|s| Box::new(s) as Box<dyn Conn>),
            Target::Tcp(a) => TcpStream::connect_timeout(a, Duration::from_secs(2))
                .ok()
                .map(|s| Box::new(s) as Box<dyn Conn>),
        }
    }

    /// Sends `request` and waits (up to 30 s) for a reply line; how long it took.
    fn ask(&self, request: &serde_json::Value) -> Result<(serde_json::Value, Duration), String> {
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(30) {
            let Some(mut c) = self.connect() else {
                std::thread::sleep(Duration::from_millis(50));
                continue;
            };
            if writeln!(c, "{request}").is_err() {
                continue;
            }
            let mut line = String::new();
            if BufReader::new(c).read_line(&mut line).is_ok() && !line.is_empty() {
                let v = serde_json::from_str(&line).map_err(|e| format!("{e}: {line}"))?;
                return Ok((v, started.elapsed()));
            }
        }
        Err(format!("no answer to {request} in 30 s"))
    }
}

/// Floods `target` (see the module doc) while asking it `probe`; returns the probe's worst
/// latency during the flood and the process's RSS growth in kB.
fn flood(target: &Target, probe: &serde_json::Value, pid: u32, batches: usize) -> (Duration, i64) {
    let rss0 = rss_kb(pid) as i64;
    // `batches` × 250 connections, 250 held at a time.
    let mut made = 0;
    for _ in 0..batches {
        let held: Vec<_> = (0..250).filter_map(|_| target.connect()).collect();
        made += held.len();
    }
    assert!(
        made > batches * 225,
        "only {made} of {} connections were accepted",
        batches * 250
    );
    // 100 clients that never send a line, and one line of 100 MB.
    let silent: Vec<_> = (0..100).filter_map(|_| target.connect()).collect();
    let big = {
        let target = target.clone();
        std::thread::spawn(move || {
            let Some(mut c) = target.connect() else {
                return 0usize;
            };
            let chunk = vec![b'x'; 1 << 20];
            let mut sent = 0;
            for _ in 0..100 {
                if c.write_all(&chunk).is_err() {
                    break;
                }
                sent += chunk.len();
            }
            sent
        })
    };
    let mut worst = Duration::ZERO;
    for _ in 0..3 {
        let (reply, took) = target.ask(probe).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(reply["ok"], true, "{reply}");
        worst = worst.max(took);
        std::thread::sleep(Duration::from_millis(500));
    }
    let sent = big.join().unwrap();
    assert!(
        sent < 100 << 20,
        "the server read a 100 MB line to its end instead of closing it"
    );
    drop(silent);
    let (reply, _) = target.ask(probe).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(reply["ok"], true, "{reply}");
    (worst, rss_kb(pid) as i64 - rss0)
}

fn pid_of(lab: &Lab, name: &str) -> u32 {
    lab.procs
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, c)| c.id())
        .unwrap_or_else(|| panic!("no process {name}"))
}

#[test]
fn floods_of_connections_slow_clients_and_huge_lines_leave_every_server_serving() {
    let mut lab = Lab::new('8');
    let a = lab.host("a");
    let b = lab.host("b");
    lab.roster(&[a, b], 2);
    lab.start_window(a);
    lab.start_overlay(b);
    let (overlay, phone) = (pid_of(&lab, "a:overlay"), pid_of(&lab, "a:phone"));

    let control = Target::Unix(lab.windows[a].overlay_sock());
    let (worst, grew) = flood(&control, &json!({"cmd": "members"}), overlay, 40);
    eprintln!(
        "floods: overlay control socket: a request answered within {:.2} s during the flood; RSS {grew:+} kB",
        worst.as_secs_f64()
    );
    assert!(grew < 32 * 1024, "the overlay grew by {grew} kB");

    let phone_control = Target::Unix(lab.windows[a].phone_sock());
    let (worst, grew) = flood(&phone_control, &json!({"cmd": "members"}), phone, 40);
    eprintln!(
        "floods: phone control socket: answered within {:.2} s during the flood; RSS {grew:+} kB",
        worst.as_secs_f64()
    );
    assert!(grew < 32 * 1024, "the phone grew by {grew} kB");

    // The enrollment port, from member b over the overlay.
    let enroll = Target::Tcp(
        format!("[{}]:5070", lab.windows[a].overlay_addr())
            .parse()
            .unwrap(),
    );
    wait_for("b reaches a's enrollment port", 30, || {
        let e = enroll.clone();
        let connected = in_ns(&lab.windows[b].ns, move || e.connect().is_some());
        (!connected).then(|| "no connection".to_string())
    });
    let ns = lab.windows[b].ns.clone();
    let (worst, grew) = in_ns(&ns, move || {
        flood(&enroll, &json!({"seen": {"peers": []}}), overlay, 10)
    });
    eprintln!(
        "floods: enrollment port: answered within {:.2} s during the flood; RSS {grew:+} kB",
        worst.as_secs_f64()
    );
    assert!(grew < 32 * 1024, "the overlay grew by {grew} kB");
}
