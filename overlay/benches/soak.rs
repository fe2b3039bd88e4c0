//! `cargo xtask bench soak --minutes N`: two windows of the overlay tests' lab (namespaces,
//! wireguard-go, release builds of the overlay and the phone in window mode, VP8 320x240@15 +
//! Opus both ways) open to each other for N minutes. Every minute, for each side's phone,
//! overlay and wireguard-go: resident memory, open file descriptors, threads and the minute's
//! CPU, and whether it was one call all along, not a reopened one. Prints a table
//! and the growth after the first five minutes; asserts only that the window stayed open.

#[path = "../tests/lab/mod.rs"]
mod lab;

use std::fs;
use std::time::{Duration, Instant};

use lab::*;

const MEDIA: &str = "--video-codecs vp8 --video-size 320x240 --video-fps 15";
/// After this many minutes growth is counted (start-up, caches and the jitter buffers filling).
const SETTLED_MIN: usize = 5;

/// One process at one moment.
#[derive(Clone, Copy, Default)]
struct Sample {
    rss_kb: u64,
    fds: usize,
    threads: u64,
    ticks: u64,
}

fn sample(pid: u32) -> Sample {
    Sample {
        rss_kb: proc_status(pid, "VmRSS:"),
        fds: fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |d| d.count()),
        threads: proc_status(pid, "Threads:"),
        ticks: ticks(&[pid]),
    }
}

fn minutes() -> usize {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == "--minutes")
        .and_then(|i| args.get(i + 1))
        .map(|m| m.parse().expect("--minutes takes a whole number"))
        .unwrap_or(60)
}

/// Seconds the running call of window `w` has been established.
fn call_seconds(lab: &Lab, w: usize) -> f64 {
    live_call(lab, w)["duration_s"].as_f64().unwrap_or(0.0)
}

fn main() {
    require_root();
    let n = minutes();
    let mut lab = Lab::new('K');
    let a = lab.host("a");
    let b = lab.host("b");
    lab.roster_with(&[(a, true, false), (b, true, false)], &[(a, "b"), (b, "a")]);
    lab.start_window_mode_with(a, MEDIA);
    lab.start_window_mode_with(b, MEDIA);
    lab.wait_state(a, "open", "b", 90);
    lab.wait_state(b, "open", "a", 30);
    decoded_both_ways(&lab, a, b);

    let procs: Vec<(usize, &str)> = [a, b]
        .into_iter()
        .flat_map(|w| [(w, "phone"), (w, "overlay"), (w, "wireguard-go")])
        .collect();
    let pids: Vec<u32> = procs.iter().map(|(w, what)| lab.pid(*w, what)).collect();
    let names: Vec<String> = procs
        .iter()
        .map(|(w, what)| format!("{} {what}", lab.windows[*w].name))
        .collect();
    let hz = nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK)
        .ok()
        .flatten()
        .unwrap_or(100) as f64;

    println!("\nsoak: {n} min, windows a and b open to each other ({MEDIA} + Opus both ways)\n");
    println!("RSS MiB / FDs / threads / CPU % of a core over the minute, each minute:\n");
    println!(
        "| min | {} | decoded a/b (audio, video) |",
        names.join(" | ")
    );
    println!("|---|{}---|", "---|".repeat(names.len()));
    let started = Instant::now();
    let mut rows: Vec<Vec<Sample>> = vec![pids.iter().map(|p| sample(*p)).collect()];
    for minute in 1..=n {
        let due = started + Duration::from_secs(60 * minute as u64);
        std::thread::sleep(due.saturating_duration_since(Instant::now()));
        let now: Vec<Sample> = pids.iter().map(|p| sample(*p)).collect();
        let prev = rows.last().cloned().unwrap_or_default();
        let cells: Vec<String> = now
            .iter()
            .zip(&prev)
            .map(|(s, p)| {
                format!(
                    "{:.1} / {} / {} / {:.1}",
                    s.rss_kb as f64 / 1024.0,
                    s.fds,
                    s.threads,
                    s.ticks.saturating_sub(p.ticks) as f64 / hz / 60.0 * 100.0
                )
            })
            .collect();
        let (ca, cb) = (live_call(&lab, a), live_call(&lab, b));
        println!(
            "| {minute} | {} | {}, {} / {}, {} |",
            cells.join(" | "),
            decoded(&ca, "audio"),
            decoded(&ca, "video"),
            decoded(&cb, "audio"),
            decoded(&cb, "video")
        );
        rows.push(now);
    }
    // One call all along: established at least as long as the soak ran.
    let soaked = started.elapsed().as_secs_f64() - 1.0;
    let same = call_seconds(&lab, a) >= soaked && call_seconds(&lab, b) >= soaked;

    println!("\nafter minute {SETTLED_MIN} (goal: RSS growth < 1 %, FDs and threads flat):\n");
    println!(
        "| process | RSS at {SETTLED_MIN} min → end (growth) | FDs min–max | threads min–max |"
    );
    println!("|---|---|---|---|");
    let from = SETTLED_MIN.min(rows.len() - 1);
    for (i, name) in names.iter().enumerate() {
        let later: Vec<Sample> = rows[from..].iter().map(|r| r[i]).collect();
        let (first, last) = (later[0].rss_kb as f64, later[later.len() - 1].rss_kb as f64);
        let range = |f: fn(&Sample) -> u64| {
            let v: Vec<u64> = later.iter().map(f).collect();
            format!(
                "{}–{}",
                v.iter().min().unwrap_or(&0),
                v.iter().max().unwrap_or(&0)
            )
        };
        println!(
            "| {name} | {:.1} → {:.1} MiB ({:+.2} %) | {} | {} |",
            first / 1024.0,
            last / 1024.0,
            (last - first) / first.max(1.0) * 100.0,
            range(|s| s.fds as u64),
            range(|s| s.threads)
        );
    }
    println!(
        "\nthe same call all along on both sides: {}",
        if same { "yes" } else { "no (it reopened)" }
    );
    assert_eq!(lab.state(a), ("open".into(), "b".into()), "a is still open");
    assert_eq!(lab.state(b), ("open".into(), "a".into()), "b is still open");
}
