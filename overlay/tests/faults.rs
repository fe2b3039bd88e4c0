//! Faults a window on a wall meets, on real processes in network namespaces (the lab): the
//! phone killed mid-call (init restarts it), the link cut for 30 s, the peer rebooted, the
//! overlay killed while it writes its files. Each time the window must come back by itself;
//! how long it took is printed (`faults:` lines), not asserted: timings are for the
//! benchmarks and the notes, the tests assert that it happens at all.

mod lab;

use std::fs;
use std::time::{Duration, Instant};

use lab::*;
use serde_json::json;

/// The decoded audio of each side's running call, if both answer.
fn decoded_audio(lab: &Lab, a: usize, b: usize) -> Option<(u64, u64)> {
    let mut out = [0u64; 2];
    for (i, w) in [a, b].into_iter().enumerate() {
        let status = try_ask(&lab.windows[w].phone_sock(), &json!({"cmd": "status"})).ok()?;
        out[i] = decoded(&status["status"]["call"], "audio");
    }
    Some((out[0], out[1]))
}

/// Waits until audio is decoded on both sides and still growing half a second later (a call
/// that is up, not the counters of one that died); returns how long that took.
fn media_flows(lab: &Lab, a: usize, b: usize, secs: u64) -> Duration {
    let started = Instant::now();
    let mut last = String::new();
    while started.elapsed() < Duration::from_secs(secs) {
        if let Some(before) = decoded_audio(lab, a, b) {
            std::thread::sleep(Duration::from_millis(500));
            if let Some(after) = decoded_audio(lab, a, b) {
                if after.0 > before.0 && after.1 > before.1 {
                    return started.elapsed();
                }
                last = format!("decoded {before:?} → {after:?}");
            }
        } else {
            std::thread::sleep(Duration::from_millis(200));
        }
    }
    panic!(
        "no media both ways within {secs} s ({last}); a: {:?}, b: {:?}\n{}\n{}",
        lab.state(a),
        lab.state(b),
        lab.log(a, "init"),
        lab.log(b, "phone")
    );
}

/// The requests of a method in a capture of SIP on an overlay interface (inside WireGuard:
/// plain text).
fn requests(pcap: &std::path::Path, method: &str) -> usize {
    udp_datagrams(&fs::read(pcap).unwrap_or_default())
        .iter()
        .filter(|d| d.payload.starts_with(format!("{method} ").as_bytes()))
        .count()
}

/// a runs as a device does (ewindow-init as PID 1 of its namespace: wireguard-go, overlay,
/// phone in window mode); b in window mode. They are partners and open to each other; then,
/// one after the other: a's phone SIGKILLed, a's link cut for 30 s, b rebooted (every process
/// killed, then started again). After each the window is open again with media both ways,
/// and while the link is cut the phones do not storm each other with INVITEs.
#[test]
fn a_window_reopens_by_itself_after_its_phone_dies_its_link_is_cut_and_its_peer_reboots() {
    let mut lab = Lab::new('6');
    let a = lab.host("a");
    let b = lab.host("b");
    lab.roster_with(&[(a, true, false), (b, true, false)], &[(a, "b"), (b, "a")]);
    let win = &lab.windows[a];
    let phone_args = format!(
        "window --window-file {} --control {} --video-codecs none",
        win.window_file().display(),
        win.phone_sock().display()
    );
    let init_sock = lab.start_under_init(a, &phone_args);
    lab.start_window_mode(b);
    lab.wait_state(a, "open", "b", 60);
    let first = media_flows(&lab, a, b, 30);

    // 1. The phone killed mid-call: init restarts it, the policy calls again.
    let killed = Instant::now();
    must(&format!(
        "pkill -9 -f '[e]window-phone window --window-file {}'",
        lab.windows[a].window_file().display()
    ));
    let after_kill = media_flows(&lab, a, b, 60);
    let st = ask(&init_sock, json!({"cmd": "status"}));
    let phone = st["status"]["services"]
        .as_array()
        .and_then(|s| s.iter().find(|s| s["name"] == "phone").cloned())
        .unwrap_or_default();
    assert_eq!(phone["restarts"], 1, "init restarted the phone once: {st}");
    eprintln!(
        "faults: phone SIGKILLed → media both ways again after {:.1} s (first open: {:.1} s)",
        killed.elapsed().as_secs_f64(),
        first.as_secs_f64()
    );
    let _ = after_kill;

    // 2. The link cut for 30 s (everything on a's underlay interface dropped), then restored.
    let iface = lab.windows[a].iface.clone();
    let sip = lab.capture(a, &iface, "sip", "udp port 5060");
    let ns = lab.windows[a].ns.clone();
    must(&format!(
        "ip netns exec {ns} nft -f - <<'EOF'\n\
         table inet cut {{\n\
           chain in {{ type filter hook input priority -10; policy accept; iifname \"eth0\" drop; }}\n\
           chain out {{ type filter hook output priority -10; policy accept; oifname \"eth0\" drop; }}\n\
         }}\nEOF"
    ));
    let before_cut = (requests(&sip, "INVITE"), requests(&sip, "OPTIONS"));
    std::thread::sleep(Duration::from_secs(30));
    let during_cut = requests(&sip, "INVITE") - before_cut.0;
    let options = requests(&sip, "OPTIONS") - before_cut.1;
    assert!(
        options > 0,
        "the capture sees a's presence pings while the link is cut"
    );
    must(&format!("ip netns exec {ns} nft delete table inet cut"));
    let restored = Instant::now();
    let after_cut = media_flows(&lab, a, b, 90);
    eprintln!(
        "faults: link cut 30 s → {during_cut} INVITEs and {options} OPTIONS from a meanwhile; media both ways {:.1} s after it was restored",
        restored.elapsed().as_secs_f64()
    );
    let _ = after_cut;
    // One attempt every few seconds at most: the policy's backoff, not a storm.
    assert!(
        during_cut <= 15,
        "{during_cut} INVITEs in 30 s of a cut link"
    );

    // 3. b rebooted: every process killed, then started again.
    lab.kill_all(b);
    std::thread::sleep(Duration::from_secs(3));
    let rebooted = Instant::now();
    lab.start_window_mode(b);
    media_flows(&lab, a, b, 90);
    eprintln!(
        "faults: peer rebooted → media both ways {:.1} s after it started again",
        rebooted.elapsed().as_secs_f64()
    );
}
