//! `cargo xtask bench media`: VP8 at 500 kbit/s plus Opus, both fed from the same generated
//! clip (640x480, 30 fps, moving content): CPU % and peak RSS of each side for 30 s,
//! ours→baresip against baresip→baresip in one run, then one-way media latency measured
//! with marked media. Numbers only: nothing here passes or fails.

#[path = "../tests/common/mod.rs"]
mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::*;
use ewindow_protocol::{CallStats, StreamDirection};

const CALL_SECS: u64 = 30;
/// The video bitrate both stacks are to send, kbit/s.
const VIDEO_KBPS: u32 = 500;

/// Makes (once) the clip both stacks send: longer than the call, because baresip 1.0's
/// avformat source does not loop cleanly.
fn clip() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/bench");
    std::fs::create_dir_all(&dir).expect("target/bench");
    let path = dir.join("clip-640x480-30fps-40s.webm");
    if path.exists() {
        return path;
    }
    println!("making {} …", path.display());
    let tmp = path.with_extension("tmp.webm");
    let status = Command::new("gst-launch-1.0")
        .args([
            "-q",
            "videotestsrc",
            "num-buffers=1200",
            "pattern=ball",
            "motion=sweep",
            "!",
            "video/x-raw,format=I420,width=640,height=480,framerate=30/1",
            "!",
            "timeoverlay",
            "font-desc=Sans 36",
            "!",
            "vp8enc",
            "deadline=1",
            "cpu-used=4",
            "target-bitrate=3000000",
            "!",
            "webmmux",
            "!",
            "filesink",
        ])
        .arg(format!("location={}", tmp.display()))
        .status()
        .expect("gst-launch-1.0 (gstreamer1.0-tools)");
    assert!(status.success(), "making the clip failed");
    std::fs::rename(&tmp, &path).expect("rename clip");
    path
}

#[derive(Default, Clone, Copy)]
struct Side {
    cpu_pct: f64,
    rss_mib: f64,
}

/// CPU % over the middle of the call (from 1 s to 2 s before the end) and peak RSS.
fn measure(pids: &[u32]) -> Vec<Side> {
    let window = Duration::from_secs(CALL_SECS - 3);
    cpu_and_rss(pids, Instant::now(), Duration::from_secs(1), window)
        .into_iter()
        .map(|(cpu_pct, rss_mib)| Side { cpu_pct, rss_mib })
        .collect()
}

/// baresip 1.0's VP8 sends more than its `video_bitrate` (about 2.4 times on this clip): a
/// short call to our listener measures what it sends at the nominal setting, and returns
/// (the setting that sends [`VIDEO_KBPS`], what it sent at the nominal one).
fn calibrate_baresip(clip: &Path) -> (u32, f64) {
    let source = format!("avformat,{}", clip.display());
    let nominal = VIDEO_KBPS * 1000;
    let peer = Baresip::start_video_from("bench-cal", "vp8", &source, nominal);
    let stats = baresip_calls_us(&peer, "bench-calibrate", 10, &["--video-source", "none"]);
    let sent = stats
        .stream("video", StreamDirection::Recv)
        .and_then(|v| v.bitrate_kbps)
        .filter(|k| *k > 0.0)
        .expect("baresip sent no video to our listener");
    (
        (f64::from(nominal) * f64::from(VIDEO_KBPS) / sent) as u32,
        sent,
    )
}

fn ours_to_baresip(clip: &Path, baresip_bps: u32) -> (Side, Side, CallStats) {
    let source = format!("avformat,{}", clip.display());
    let mut peer = Baresip::start_video_from("bench-b", "vp8", &source, baresip_bps);
    let json = temp_dir("bench-media").join("ours.json");
    let file = format!("file:{}", clip.display());
    let mut a = phone_call(
        &peer.uri(),
        &[
            "--codecs",
            "opus",
            "--video-codecs",
            "vp8",
            "--video-source",
            &file,
            "--video-kbps",
            &VIDEO_KBPS.to_string(),
            "--duration",
            &CALL_SECS.to_string(),
            "--stats-json",
            json.to_str().unwrap(),
        ],
    );
    a.wait_for("call established", Duration::from_secs(10))
        .expect("our call to baresip was not established");
    let sides = measure(&[a.child.id(), peer.proc.child.id()]);
    let (ok, out) = a.finish(Duration::from_secs(20));
    assert!(ok, "the benchmark call failed:\n{out}");
    peer.wait_call_end(Duration::from_secs(10));
    (sides[0], sides[1], read_stats(&json))
}

fn baresip_to_baresip(clip: &Path, baresip_bps: u32) -> (Side, Side) {
    let source = format!("avformat,{}", clip.display());
    let callee = Baresip::start_video_from("bench-b2", "vp8", &source, baresip_bps);
    let mut caller = Baresip::start_video_from("bench-a2", "vp8", &source, baresip_bps);
    caller.command("dial", &callee.uri());
    caller
        .proc
        .wait_for("Call established", Duration::from_secs(10))
        .expect("baresip→baresip call was not established");
    let sides = measure(&[caller.proc.child.id(), callee.proc.child.id()]);
    caller.command("hangup", "");
    (sides[0], sides[1])
}

/// One-way latencies (ms) of clicks: each received onset against the last sent one before it.
fn click_latencies(sent: &[i64], received: &[i64]) -> Vec<f64> {
    received
        .iter()
        .filter_map(|r| {
            let s = sent.iter().filter(|s| *s <= r).max()?;
            let ms = (r - s) as f64 / 1000.0;
            (ms < 500.0).then_some(ms)
        })
        .collect()
}

fn percentile(v: &mut [f64], p: f64) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(|a, b| a.total_cmp(b));
    let i = ((v.len() - 1) as f64 * p).round() as usize;
    Some(v[i])
}

/// Median capture → decoded latency (ms) our receiver measured with the sender's RTCP clock,
/// for (audio, video).
fn ntp_latency(s: &CallStats) -> (Option<f64>, Option<f64>) {
    let get = |m| {
        s.stream(m, StreamDirection::Recv)
            .and_then(|x| x.ntp_latency_ms)
    };
    (get("audio"), get("video"))
}

/// baresip sends to our listener, which measures with the sender's RTCP clock.
fn latency_from_baresip() -> (Option<f64>, Option<f64>) {
    let peer = Baresip::start_video("bench-lat", "vp8");
    ntp_latency(&baresip_calls_us(
        &peer,
        "bench-latency-baresip",
        15,
        &["--latency-marks"],
    ))
}

/// `peer` calls our listener (Opus and VP8, auto-answered, `extra` flags) for `secs`; what
/// our side measured.
fn baresip_calls_us(peer: &Baresip, name: &str, secs: u64, extra: &[&str]) -> CallStats {
    let json = temp_dir(name).join("b.json");
    let port = free_port();
    let secs = secs.to_string();
    let mut args = vec![
        "--auto-answer",
        "--codecs",
        "opus",
        "--video-codecs",
        "vp8",
        "--duration",
        &secs,
        "--stats-json",
        json.to_str().unwrap(),
    ];
    args.extend(extra);
    let mut b = phone_listen(port, &args);
    peer.command("dial", &format!("sip:ewindow@127.0.0.1:{port}"));
    b.finish(Duration::from_secs(40));
    read_stats(&json)
}

/// What the ours↔ours latency call measured.
struct OursLatency {
    /// One-way click latencies, ms.
    clicks: Vec<f64>,
    /// Median painted-frame latency, ms.
    frames: Option<f64>,
    /// (audio, video) capture → decoded by the sender's RTCP clock, ms.
    ntp: (Option<f64>, Option<f64>),
}

/// A 15 s call between two of ours with marked media; `sink`: `null` (buffers taken as soon
/// as decoded) or `clock` (taken when a speaker or a screen would present them).
fn latency_ours(sink: &str) -> OursLatency {
    let dir = temp_dir(&format!("bench-latency-{sink}"));
    let (a_json, b_json) = (dir.join("a.json"), dir.join("b.json"));
    let port = free_port();
    let common = [
        "--latency-marks",
        "--codecs",
        "opus",
        "--video-codecs",
        "vp8",
        "--audio-sink",
        sink,
        "--video-sink",
        sink,
    ];
    let mut args = vec!["--auto-answer", "--duration", "60", "--stats-json"];
    args.push(b_json.to_str().unwrap());
    args.extend(common);
    let mut b = phone_listen(port, &args);
    let mut call_args = vec!["--duration", "15", "--stats-json", a_json.to_str().unwrap()];
    call_args.extend(common);
    let mut a = phone_call(&format!("sip:ewindow@127.0.0.1:{port}"), &call_args);
    a.finish(Duration::from_secs(40));
    b.finish(Duration::from_secs(10));
    let (sa, sb) = (read_stats(&a_json), read_stats(&b_json));
    let marks = |s: &CallStats, d| {
        s.stream("audio", d)
            .map(|x| x.marks_us.clone())
            .unwrap_or_default()
    };
    let mut audio = click_latencies(
        &marks(&sa, StreamDirection::Send),
        &marks(&sb, StreamDirection::Recv),
    );
    audio.extend(click_latencies(
        &marks(&sb, StreamDirection::Send),
        &marks(&sa, StreamDirection::Recv),
    ));
    let video = [&sa, &sb]
        .iter()
        .filter_map(|s| s.stream("video", StreamDirection::Recv)?.latency_ms)
        .fold(None, |m: Option<f64>, v| Some(m.map_or(v, |m| m.max(v))));
    OursLatency {
        clicks: audio,
        frames: video,
        ntp: ntp_latency(&sb),
    }
}

fn ratio(a: f64, b: f64) -> String {
    if b > 0.0 {
        format!("{:.2}×", a / b)
    } else {
        "-".into()
    }
}

fn main() {
    println!(
        "bench media: {CALL_SECS} s call, VP8 500 kbit/s + Opus, SRTP, the same clip on both sides"
    );
    let clip = clip();
    let (baresip_bps, nominal_sent) = calibrate_baresip(&clip);
    println!(
        "baresip at video_bitrate {} sent {nominal_sent:.0} kbit/s of VP8: it runs at \
         video_bitrate {baresip_bps} here",
        VIDEO_KBPS * 1000
    );
    let (ours, their_callee, stats) = ours_to_baresip(&clip, baresip_bps);
    let (their_caller, their_callee2) = baresip_to_baresip(&clip, baresip_bps);
    println!();
    println!("| call            | side   | CPU %  | peak RSS MiB |");
    println!("|-----------------|--------|--------|--------------|");
    for (call, side, s) in [
        ("ours→baresip", "caller", ours),
        ("ours→baresip", "callee", their_callee),
        ("baresip→baresip", "caller", their_caller),
        ("baresip→baresip", "callee", their_callee2),
    ] {
        println!(
            "| {call:<15} | {side:<6} | {:>6.1} | {:>12.1} |",
            s.cpu_pct, s.rss_mib
        );
    }
    println!(
        "\nratios, our caller / baresip caller: CPU {} (goal ≤ 0.8×), peak RSS {}",
        ratio(ours.cpu_pct, their_caller.cpu_pct),
        ratio(ours.rss_mib, their_caller.rss_mib)
    );
    if let Some(v) = stats.stream("video", StreamDirection::Recv) {
        println!(
            "our caller received baresip's video at {:.1} fps, {}x{}, {:.0} kbit/s; decoded {} \
             frames",
            v.fps.unwrap_or(0.0),
            v.width.unwrap_or(0),
            v.height.unwrap_or(0),
            v.bitrate_kbps.unwrap_or(0.0),
            v.decoded
        );
    }
    for m in ["video", "audio"] {
        if let Some(s) = stats.stream(m, StreamDirection::Send) {
            println!(
                "our caller sent {m} at {:.0} kbit/s",
                s.bitrate_kbps.unwrap_or(0.0)
            );
        }
    }
    let ms = |v: Option<f64>| v.map_or("-".into(), |v| format!("{v:.1}"));
    let null = latency_ours("null");
    let clock = latency_ours("clock");
    let baresip_ntp = latency_from_baresip();
    println!("\none-way latency on loopback, ours↔ours (marked media, 15 s calls):");
    println!("| sinks | audio median ms | audio p95 ms | clicks | video median ms |");
    println!("|-------|-----------------|--------------|--------|-----------------|");
    for (name, l) in [
        ("null: taken when decoded", &null),
        (
            "clock: when a speaker/screen would present (sync=true)",
            &clock,
        ),
    ] {
        let mut audio = l.clicks.clone();
        println!(
            "| {name} | {} | {} | {} | {} |",
            ms(percentile(&mut audio.clone(), 0.5)),
            ms(percentile(&mut audio, 0.95)),
            l.clicks.len(),
            ms(l.frames)
        );
    }
    println!(
        "(audio: click at the encoder input → at the sink; video: frame at the encoder input → \
         at the sink. Goals with clock sinks: audio ≤ 60 ms, video ≤ 80 ms.)"
    );
    let ours_ntp = null.ntp;
    println!(
        "\none-way latency, capture (by the sender's RTCP sender-report clock) → out of our \
         decoder, median over a 15 s call:"
    );
    println!("| sender → our receiver | audio ms | video ms |");
    println!("|-----------------------|----------|----------|");
    println!(
        "| ours                  | {:>8} | {:>8} |",
        ms(ours_ntp.0),
        ms(ours_ntp.1)
    );
    println!(
        "| baresip               | {:>8} | {:>8} |",
        ms(baresip_ntp.0),
        ms(baresip_ntp.1)
    );
    println!(
        "(baresip's own receive path cannot be timed from outside: it has no hook to stamp a \
         frame or sample it plays; its jitter buffer holds 5 to 10 packets.)"
    );
}
