//! `cargo xtask bench phone`: a 20 s Opus call, ours→baresip against baresip→baresip, in one
//! run. Prints call setup time, CPU % and peak RSS per side, and the ratios. Numbers only:
//! nothing here passes or fails.

#[path = "../tests/common/mod.rs"]
mod common;

use std::time::{Duration, Instant};

use common::*;

const CALL_SECS: u64 = 20;

#[derive(Default, Clone, Copy)]
struct Side {
    /// INVITE/dial → first RTP packet received.
    rtp_ms: Option<f64>,
    /// INVITE → first decoded audio (ours only: baresip does not say).
    setup_ms: Option<f64>,
    cpu_pct: f64,
    rss_mib: f64,
}

/// CPU % over the middle of the call (from 1 s to 1 s before the end) and peak RSS.
fn measure(pids: &[u32], from: Instant) -> Vec<Side> {
    let window = Duration::from_secs(CALL_SECS - 2);
    cpu_and_rss(pids, from, Duration::from_secs(1), window)
        .into_iter()
        .map(|(cpu_pct, rss_mib)| Side {
            cpu_pct,
            rss_mib,
            ..Side::default()
        })
        .collect()
}

fn ours_to_baresip() -> (Side, Side) {
    let mut peer = Baresip::start("bench-callee", BaresipCodec::Opus);
    let json = temp_dir("bench").join("ours.json");
    let mut a = phone_call(
        &peer.uri(),
        &[
            "--codecs",
            "opus",
            // The same work as baresip's audio-only peers.
            "--video-codecs",
            "none",
            "--duration",
            &CALL_SECS.to_string(),
            "--stats-json",
            json.to_str().unwrap(),
        ],
    );
    a.wait_for("call established", Duration::from_secs(10))
        .expect("our call to baresip was not established");
    let est = Instant::now();
    let sides = measure(&[a.child.id(), peer.proc.child.id()], est);
    let (ok, out) = a.finish(Duration::from_secs(15));
    assert!(ok, "the benchmark call failed:\n{out}");
    peer.wait_call_end(Duration::from_secs(10));
    let mut ours = sides[0];
    let stats = read_stats(&json);
    ours.setup_ms = stats.setup_ms.map(|v| v as f64);
    ours.rtp_ms = stats.first_rtp_ms.map(|v| v as f64);
    (ours, sides[1])
}

fn baresip_to_baresip() -> (Side, Side) {
    let mut callee = Baresip::start("bench-b2", BaresipCodec::Opus);
    let mut caller = Baresip::start("bench-a2", BaresipCodec::Opus);
    let t0 = Instant::now();
    caller.command("dial", &callee.uri());
    caller
        .proc
        .wait_for(
            "incoming rtp for 'audio' established",
            Duration::from_secs(10),
        )
        .expect("baresip→baresip call did not carry RTP");
    let setup = t0.elapsed().as_secs_f64() * 1000.0;
    let sides = measure(&[caller.proc.child.id(), callee.proc.child.id()], t0);
    caller.command("hangup", "");
    callee.wait_call_end(Duration::from_secs(10));
    let mut c = sides[0];
    c.rtp_ms = Some(setup);
    (c, sides[1])
}

fn ratio(a: f64, b: f64) -> String {
    if b > 0.0 {
        format!("{:.2}×", a / b)
    } else {
        "-".into()
    }
}

fn main() {
    println!("bench phone: {CALL_SECS} s Opus call on loopback, test tone, null sink");
    let (ours, their_callee) = ours_to_baresip();
    let (their_caller, their_callee2) = baresip_to_baresip();
    let ms = |v: Option<f64>| v.map_or("-".into(), |v| format!("{v:.0}"));
    let fmt = |s: &Side| {
        format!(
            "{:>14} | {:>16} | {:>6.1} | {:>7.1}",
            ms(s.rtp_ms),
            ms(s.setup_ms),
            s.cpu_pct,
            s.rss_mib
        )
    };
    println!();
    println!("| call               | side    | to first RTP ms | to first decoded ms | CPU %  | RSS MiB |");
    println!(
        "|--------------------|---------|----------------|------------------|--------|---------|"
    );
    println!("| ours→baresip       | caller  | {} |", fmt(&ours));
    println!("| ours→baresip       | callee  | {} |", fmt(&their_callee));
    println!("| baresip→baresip    | caller  | {} |", fmt(&their_caller));
    println!("| baresip→baresip    | callee  | {} |", fmt(&their_callee2));
    println!();
    println!(
        "ratios, our caller / baresip caller: to first RTP {}, CPU {}, peak RSS {}",
        ratio(
            ours.rtp_ms.unwrap_or(0.0),
            their_caller.rtp_ms.unwrap_or(0.0)
        ),
        ratio(ours.cpu_pct, their_caller.cpu_pct),
        ratio(ours.rss_mib, their_caller.rss_mib)
    );
    println!(
        "to first RTP: INVITE sent (ours) / dial command (baresip) → first RTP packet received. \
         to first decoded: INVITE → first buffer out of our decoder, after the {} ms jitter \
         buffer; baresip does not report it.",
        40
    );
}
