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
    media_flows(&lab, a, b, 60);
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
    media_flows(&lab, a, b, 90);
    eprintln!(
        "faults: link cut 30 s → {during_cut} INVITEs and {options} OPTIONS from a meanwhile; media both ways {:.1} s after it was restored",
        restored.elapsed().as_secs_f64()
    );
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

/// Unmounts a directory on drop.
struct Unmount(std::path::PathBuf);

impl Drop for Unmount {
    fn drop(&mut self) {
        let _ = sh(&format!("umount -l {}", self.0.display()));
    }
}

/// Sends a roster to `to`'s enrollment port from inside namespace `ns`; the reply line.
fn push_roster(ns: &str, to: &str, text: String) -> Option<serde_json::Value> {
    let to: std::net::SocketAddr = format!("[{to}]:5070").parse().unwrap();
    in_ns(ns, move || {
        use std::io::{BufRead, BufReader, Write};
        let mut s = std::net::TcpStream::connect_timeout(&to, Duration::from_secs(2)).ok()?;
        s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
        let line = json!({"roster": {"text": text}});
        writeln!(s, "{line}").ok()?;
        let mut reply = String::new();
        BufReader::new(s).read_line(&mut reply).ok()?;
        serde_json::from_str(&reply).ok()
    })
}

/// The roster version of a window file, which must be valid.
fn version_on_disk(window: &std::path::Path) -> u64 {
    let config = ewindow_protocol::window::load(window, None)
        .unwrap_or_else(|e| panic!("{} is not a valid window file: {e}", window.display()));
    config.roster.version
}

/// The overlay SIGKILLed 100 times at random moments while members push it new rosters (each
/// taken one rewrites `window.toml`) and its control socket makes invitations (each rewrites
/// `invitations.json`): after every kill both files are valid, each the old one or the new.
/// Then its data partition (a 1 MB tmpfs) is full: an invitation and a roster are refused with
/// an error that says so, the files keep what they had, the overlay keeps serving, and once
/// there is room it writes again.
#[test]
fn the_overlay_killed_while_writing_leaves_old_or_new_files_and_a_full_disk_loses_nothing() {
    use ewindow_overlay::{identity, roster};
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
    use std::sync::Arc;

    let mut lab = Lab::new('7');
    let a = lab.host("a");
    let b = lab.host("b");
    lab.roster(&[a, b], 2);
    let dir = lab.windows[a].dir.clone();
    let data = dir.join("data");
    fs::create_dir_all(&data).unwrap();
    must(&format!(
        "mount -t tmpfs -o size=1m,mode=0700 ewindow-data {}",
        data.display()
    ));
    let _unmount = Unmount(data.clone());
    let window = data.join("window.toml");
    let invitations = data.join("invitations.json");
    fs::copy(lab.windows[a].window_file(), &window).unwrap();
    let args = lab
        .overlay_args(a)
        .replace(
            &lab.windows[a].window_file().display().to_string(),
            &window.display().to_string(),
        )
        .replace(
            &dir.join("invitations.json").display().to_string(),
            &invitations.display().to_string(),
        );
    lab.start_wireguard(a);
    lab.start_overlay(b);
    let b_key = identity::load_or_create(&lab.windows[b].dir.join("identity.key")).unwrap();
    let base = ewindow_protocol::window::load(&window, None)
        .unwrap()
        .roster;
    let a_key = identity::load_or_create(&dir.join("identity.key")).unwrap();
    let a_addr = ewindow_protocol::window::overlay_v6(&a_key.public_key()).to_string();
    let b_ns = lab.windows[b].ns.clone();
    let sock = lab.windows[a].overlay_sock();
    let start_a = |lab: &mut Lab| {
        let _ = fs::remove_file(&sock);
        lab.spawn(a, "overlay", &format!("{OVERLAY} up {args}"));
        wait_for("a's overlay up", 20, || {
            try_ask(&sock, &json!({"cmd": "identity"}))
                .err()
                .map(|e| format!("{e}\n{}", lab.log(a, "overlay")))
        });
    };
    let sent = Arc::new(AtomicU64::new(base.version));
    let signed = |v: u64| {
        ewindow_protocol::window::roster_to_toml(&roster::sign(base.clone(), v, "b", &b_key))
    };
    let mut seed = u64::from(std::process::id());
    let mut taken_before = base.version;
    let (mut invites_made, mut rosters_taken) = (0u64, 0u64);
    for run in 0..100 {
        start_a(&mut lab);
        let stop = Arc::new(AtomicBool::new(false));
        let pusher = {
            let (stop, sent, ns, to) = (stop.clone(), sent.clone(), b_ns.clone(), a_addr.clone());
            let texts: Vec<(u64, String)> = (1..=40)
                .map(|i| {
                    let v = sent.load(Ordering::SeqCst) + i;
                    (v, signed(v))
                })
                .collect();
            std::thread::spawn(move || {
                for (v, text) in texts {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    sent.store(v, Ordering::SeqCst);
                    let _ = push_roster(&ns, &to, text);
                }
            })
        };
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let kill_after = Duration::from_millis(20 + (seed >> 33) % 400);
        let started = Instant::now();
        while started.elapsed() < kill_after {
            let name = format!("n{run}x{invites_made}");
            if let Ok(r) = try_ask(&sock, &json!({"cmd": "invite", "name": name})) {
                invites_made += u64::from(r["ok"] == true);
            }
        }
        lab.kill(a, Some("overlay"));
        stop.store(true, Ordering::SeqCst);
        pusher.join().unwrap();
        let on_disk = version_on_disk(&window);
        assert!(
            on_disk >= taken_before && on_disk <= sent.load(Ordering::SeqCst),
            "run {run}: version {on_disk} on disk, {taken_before} before, {} sent",
            sent.load(Ordering::SeqCst)
        );
        rosters_taken += on_disk - taken_before;
        taken_before = on_disk;
        if let Ok(text) = fs::read_to_string(&invitations) {
            let parsed: Result<Vec<serde_json::Value>, _> = serde_json::from_str(&text);
            assert!(
                parsed.is_ok(),
                "run {run}: invitations.json is torn: {text:?}"
            );
        }
    }
    eprintln!(
        "faults: overlay SIGKILLed 100 times while writing: {rosters_taken} rosters taken, \
         {invites_made} invitations made, every file valid after each kill"
    );
    assert!(
        rosters_taken > 0 && invites_made > 0,
        "the kills hit no writes"
    );

    // The data partition full.
    start_a(&mut lab);
    let _ = sh(&format!("dd if=/dev/zero of={}/fill bs=4k", data.display()));
    let (window_before, invitations_before) =
        (fs::read(&window).unwrap(), fs::read(&invitations).ok());
    let r = ask(&sock, json!({"cmd": "invite", "name": "full"}));
    assert_eq!(r["ok"], false, "{r}");
    assert!(
        r["error"].as_str().unwrap_or("").contains("No space left"),
        "{r}"
    );
    let v = sent.load(Ordering::SeqCst) + 1;
    let reply = push_roster(&b_ns, &a_addr, signed(v)).expect("a answers the roster");
    assert_eq!(reply["ok"], false, "{reply}");
    assert!(
        reply["error"]
            .as_str()
            .unwrap_or("")
            .contains("No space left"),
        "{reply}"
    );
    assert_eq!(
        fs::read(&window).unwrap(),
        window_before,
        "window.toml kept"
    );
    assert_eq!(
        fs::read(&invitations).ok(),
        invitations_before,
        "invitations kept"
    );
    assert!(
        lab.log(a, "overlay").contains("No space left"),
        "{}",
        lab.log(a, "overlay")
    );
    let r = ask(&sock, json!({"cmd": "members"}));
    assert_eq!(r["ok"], true, "the overlay keeps serving: {r}");
    // Room again: both are written.
    fs::remove_file(data.join("fill")).unwrap();
    let r = ask(&sock, json!({"cmd": "invite", "name": "room"}));
    assert_eq!(r["ok"], true, "{r}");
    let reply = push_roster(&b_ns, &a_addr, signed(v + 1)).expect("a answers the roster");
    assert_eq!(reply["ok"], true, "{reply}");
    assert_eq!(version_on_disk(&window), v + 1);
}

/// What window `w` has received in its running call so far.
#[derive(Debug, Clone, Copy, Default)]
struct Received {
    audio: u64,
    video: u64,
    concealed_ms: u64,
    keyframe_requests: u64,
    lost: i64,
    call_s: f64,
}

fn received(lab: &Lab, w: usize) -> Received {
    let call = live_call(lab, w);
    let audio = stream(&call, "audio", "recv");
    let video = stream(&call, "video", "recv");
    Received {
        audio: decoded(&call, "audio"),
        video: decoded(&call, "video"),
        concealed_ms: audio["concealed_ms"].as_u64().unwrap_or(0),
        keyframe_requests: video["keyframe_requests"].as_u64().unwrap_or(0),
        lost: audio["lost"].as_i64().unwrap_or(0) + video["lost"].as_i64().unwrap_or(0),
        call_s: call["duration_s"].as_f64().unwrap_or(0.0),
    }
}

/// Drops `percent` % of the UDP datagrams (WireGuard: media and SIP alike) into and out of
/// window `w`'s underlay interface, at random (nftables; this kernel has no netem), or none.
fn loss(lab: &Lab, w: usize, percent: u32) {
    let ns = &lab.windows[w].ns;
    let _ = sh(&format!("ip netns exec {ns} nft delete table inet loss"));
    if percent > 0 {
        must(&format!(
            "ip netns exec {ns} nft -f - <<'EOF'\n\
             table inet loss {{\n\
               chain in {{ type filter hook input priority -10; policy accept; iifname \"eth0\" meta l4proto udp numgen random mod 100 < {percent} drop; }}\n\
               chain out {{ type filter hook output priority -10; policy accept; oifname \"eth0\" meta l4proto udp numgen random mod 100 < {percent} drop; }}\n\
             }}\nEOF"
        ));
    }
}

/// Window `w`'s decoded video frames per second over each block of `block` seconds for
/// `blocks` blocks (the phone refreshes its counters about once a second: shorter blocks
/// measure that, not the video), and the last sample.
fn fps(lab: &Lab, w: usize, block: u64, blocks: u64, from: Received) -> (Vec<f64>, Received) {
    let mut out = Vec::new();
    let mut last = from;
    let start = Instant::now();
    for n in 1..=blocks {
        let due = start + Duration::from_secs(block * n);
        std::thread::sleep(due.saturating_duration_since(Instant::now()));
        let now = received(lab, w);
        out.push(now.video.saturating_sub(last.video) as f64 / block as f64);
        last = now;
    }
    (out, last)
}

fn mean(v: &[f64]) -> f64 {
    v.iter().sum::<f64>() / v.len().max(1) as f64
}

/// a and b in window mode with VP8 320x240@15 + Opus, open to each other; then 5 % of the
/// datagrams into and out of b dropped at random for 60 s, then 50 % for 2 s, then none. The
/// call stays up (the same call all along, never reopened), b's decoder conceals the lost
/// audio, b asks for keyframes, and b's video comes back to its frame rate.
#[test]
fn a_window_stays_open_through_packet_loss_and_its_video_recovers() {
    let mut lab = Lab::new('9');
    let a = lab.host("a");
    let b = lab.host("b");
    lab.roster_with(&[(a, true, false), (b, true, false)], &[(a, "b"), (b, "a")]);
    let media = "--video-codecs vp8 --video-size 320x240 --video-fps 15";
    lab.start_window_mode_with(a, media);
    lab.start_window_mode_with(b, media);
    lab.wait_state(a, "open", "b", 60);
    lab.wait_state(b, "open", "a", 30);
    decoded_both_ways(&lab, a, b);
    std::thread::sleep(Duration::from_secs(2));

    let start = received(&lab, b);
    let (clean, clean_end) = fps(&lab, b, 10, 1, start);
    loss(&lab, b, 5);
    let (lossy, lossy_end) = fps(&lab, b, 5, 12, clean_end);
    loss(&lab, b, 50);
    let (_, burst_end) = fps(&lab, b, 2, 1, lossy_end);
    loss(&lab, b, 0);
    let (after, end) = fps(&lab, b, 5, 3, burst_end);

    let audio_s = |from: Received, to: Received| (to.audio - from.audio) as f64 * 0.02;
    let fmt = |v: &[f64]| {
        v.iter()
            .map(|f| format!("{f:.1}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    eprintln!(
        "faults: b's decoded video fps (a sends 15): clean {}; 5 % loss for 60 s, by 5 s: {} \
         (mean {:.1}); after the 2 s of 50 %, by 5 s: {}",
        fmt(&clean),
        fmt(&lossy),
        mean(&lossy),
        fmt(&after)
    );
    eprintln!(
        "faults: b's audio under 5 % loss: {:.1} s decoded in 60 s, {} ms concealed, {} packets \
         lost (audio + video); the 2 s of 50 %: {} ms concealed; keyframe requests from b: {} \
         under 5 %, {} in the burst and after",
        audio_s(clean_end, lossy_end),
        lossy_end.concealed_ms - clean_end.concealed_ms,
        lossy_end.lost - clean_end.lost,
        burst_end.concealed_ms - lossy_end.concealed_ms,
        lossy_end.keyframe_requests - clean_end.keyframe_requests,
        end.keyframe_requests - lossy_end.keyframe_requests
    );

    // One call all along: established since before the loss, on both sides.
    let soaked = 10.0 + 60.0 + 2.0 + 15.0;
    assert!(
        end.call_s >= start.call_s + soaked - 1.0,
        "b's call was reopened: {start:?} → {end:?}"
    );
    assert_eq!(lab.state(a), ("open".into(), "b".into()));
    assert!(received(&lab, a).call_s >= soaked, "a's call was reopened");
    assert!(
        lossy_end.lost > clean_end.lost,
        "the loss reached b: {lossy_end:?}"
    );
    assert!(
        lossy_end.concealed_ms > clean_end.concealed_ms,
        "b concealed lost audio: {clean_end:?} → {lossy_end:?}"
    );
    assert!(
        end.keyframe_requests > clean_end.keyframe_requests,
        "b asked for keyframes: {end:?}"
    );
    // Audio kept coming under 5 % loss, and video is back to most of its rate.
    assert!(
        audio_s(clean_end, lossy_end) > 45.0,
        "audio under loss: {lossy_end:?}"
    );
    assert!(
        after[after.len() - 1] >= 10.0,
        "video recovered after the loss: {after:?}"
    );
}
