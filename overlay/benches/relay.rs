//! `cargo xtask bench relay`: windows behind NAT in the overlay tests' lab (namespaces on this
//! machine, nftables NAT routers, wireguard-go; release builds of the overlay and the phone,
//! VP8 640x480@30 + Opus both ways). In one run: seconds from overlay start to window open
//! straight through two home routers, and through a relay member past a symmetric NAT; then,
//! in that relayed call and again after it moved to the direct path, the overlay round trip
//! and the CPU of the relay (its wireguard-go and overlay) next to a caller's phone. Prints a
//! table; asserts only that each step happened.

#[path = "../tests/lab/mod.rs"]
mod lab;

use std::time::{Duration, Instant};

use lab::*;

const MEDIA: &str = "--video-codecs vp8 --video-size 640x480 --video-fps 30";
const SECS: f64 = 20.0;

/// Starts c (overlay only), then a and b in window mode; seconds until a opens to b.
fn open(lab: &mut Lab, a: usize, b: usize, c: usize) -> f64 {
    let t0 = Instant::now();
    lab.start_overlay(c);
    lab.start_window_mode_with(a, MEDIA);
    lab.start_window_mode_with(b, MEDIA);
    lab.wait_state(a, "open", "b", 120);
    let opened = t0.elapsed().as_secs_f64();
    lab.wait_state(b, "open", "a", 15);
    decoded_both_ways(lab, a, b);
    opened
}

fn main() {
    require_root();
    let (direct_open, direct_rtt) = {
        let mut lab = Lab::new('N');
        let (a, b, c) = lab.behind_nats(false, false);
        let opened = open(&mut lab, a, b, c);
        assert_eq!(lab.peer(a, "b")["path"], "direct");
        (opened, udp_rtt_ms(&lab, a, b))
    };

    let mut lab = Lab::new('R');
    let (a, b, c) = lab.behind_nats(true, true);
    let relayed_open = open(&mut lab, a, b, c);
    assert_eq!(lab.peer(a, "b")["path"], "relay");
    let procs = [(c, "wireguard-go"), (c, "overlay"), (a, "phone")];
    std::thread::sleep(Duration::from_secs(5));
    let relayed_cpu = cpu(&lab, &procs, SECS);
    let relayed_rtt = udp_rtt_ms(&lab, a, b);

    let t1 = Instant::now();
    lab.router_renewed_as_home_router(b);
    wait_for("a direct to b", 60, || {
        let p = lab.peer(a, "b");
        (p["path"] != "direct").then(|| p.to_string())
    });
    let switched = t1.elapsed().as_secs_f64();
    std::thread::sleep(Duration::from_secs(5));
    let direct_cpu = cpu(&lab, &procs, SECS);
    let after_rtt = udp_rtt_ms(&lab, a, b);

    println!("\nwindows behind NAT (this machine, namespaces; VP8 640x480@30 + Opus both ways)\n");
    println!(
        "| | direct (two home routers) | through relay c (b behind a symmetric NAT) | the same call after it moved direct |"
    );
    println!("|---|---|---|---|");
    println!(
        "| overlay start → window open | {direct_open:.1} s | {relayed_open:.1} s | NAT change → direct path {switched:.1} s |"
    );
    println!(
        "| overlay round trip a→b (median of 21) | {direct_rtt:.2} ms | {relayed_rtt:.2} ms | {after_rtt:.2} ms |"
    );
    println!(
        "| c's wireguard-go, % of a core ({SECS:.0} s) | – | {:.1} | {:.1} |",
        relayed_cpu[0], direct_cpu[0]
    );
    println!(
        "| c's ewindow-overlay (the relay port), % of a core | – | {:.1} | {:.1} |",
        relayed_cpu[1], direct_cpu[1]
    );
    println!(
        "| a's ewindow-phone (for scale), % of a core | – | {:.1} | {:.1} |",
        relayed_cpu[2], direct_cpu[2]
    );
    println!(
        "\nadded one-way latency through the relay: {:.2} ms; the relay's cost per relayed call: {:.1} % of a core",
        (relayed_rtt - after_rtt) / 2.0,
        relayed_cpu[0] + relayed_cpu[1] - direct_cpu[0] - direct_cpu[1]
    );
}
