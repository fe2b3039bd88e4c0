//! Windows behind NAT (the lab: `lab/mod.rs`; routers are namespaces with nftables
//! `masquerade`): endpoints learned through a member and hole punching, the relay member, the
//! switch from the relay to a direct path during a call, roster updates through a member, and
//! an outsider who knows every endpoint. The figures (seconds to open, the relay's cost, the
//! outage of a switch) are printed, never asserted.

mod lab;

use std::fs;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

use lab::*;
use serde_json::json;

const VIDEO: &str = "--video-codecs vp8 --video-size 320x240 --video-fps 15";

/// Two windows each behind its own home router (`masquerade`), a third member on the
/// underlay with a reachable endpoint: the two know only the third's endpoint, learn each
/// other's public mapping from it, punch through their NATs and open to each other directly.
#[test]
fn behind_two_nats_the_window_opens_directly_with_endpoints_learned_through_a_member() {
    let mut lab = Lab::new('n');
    let (a, b, c) = lab.behind_nats(false, false);
    let t0 = Instant::now();
    lab.start_overlay(c);
    lab.start_window_mode_with(a, VIDEO);
    lab.start_window_mode_with(b, VIDEO);
    wait_for("a direct to b", 90, || {
        let p = lab.peer(a, "b");
        (p["path"] != "direct").then(|| p.to_string())
    });
    let path = t0.elapsed();
    lab.wait_state(a, "open", "b", 90);
    let opened = t0.elapsed();
    lab.wait_state(b, "open", "a", 15);

    // Straight to B's router's public mapping: not through C, not B's LAN address.
    for (w, other) in [(a, b), (b, a)] {
        let p = lab.peer(w, &lab.windows[other].name);
        assert_eq!(p["path"], "direct", "{p}\n{}", lab.log(w, "overlay"));
        let router = lab.windows[other].v4();
        let endpoint = p["endpoint"].as_str().unwrap_or("");
        assert!(endpoint.starts_with(&format!("{router}:")), "{p}");
    }
    decoded_both_ways(&lab, a, b);
    eprintln!(
        "figure: topology 1 (two home routers): overlay start → direct session {:.1} s, \
         → window open {:.1} s; overlay round trip a→b during the call {:.2} ms",
        path.as_secs_f64(),
        opened.as_secs_f64(),
        udp_rtt_ms(&lab, a, b)
    );
}

/// B behind a symmetric NAT (`masquerade random`): punching cannot work, so after
/// `RELAY_AFTER_S` the two go through C (`relay = true`). C's underlay carries WireGuard only,
/// and what C's overlay sees of the pair is their own WireGuard session (no SIP, no SDP key, no
/// RTP). An outsider on the underlay that knows every endpoint gets nothing from anyone, nor
/// from the relay. Then B's router becomes a home router and forgets its mappings (as after a
/// new lease): the running call moves to the direct path without ending.
#[test]
fn a_symmetric_nat_opens_through_the_relay_which_sees_only_wireguard_and_the_call_moves_direct() {
    let mut lab = Lab::new('r');
    let a = lab.behind_nat("a", false);
    let b = lab.behind_nat("b", true);
    let c = lab.host("c");
    let x = lab.host("x");
    // The outsider's own window file lists everyone with their public endpoints (it knows
    // them all); the members' files (written second) do not list it.
    lab.roster_with(
        &[
            (a, true, false),
            (b, true, false),
            (c, true, true),
            (x, true, false),
        ],
        &[],
    );
    lab.roster_with(
        &[(a, false, false), (b, false, false), (c, true, true)],
        &[(a, "b"), (b, "a")],
    );
    let underlay = lab.capture(c, "eth0", "c-eth0", "udp");
    lab.start_overlay(c);
    let c_iface = lab.windows[c].iface.clone();
    wait_for("c's overlay", 20, || {
        UnixStream::connect(lab.windows[c].overlay_sock())
            .is_err()
            .then(|| lab.log(c, "overlay"))
    });
    let inner = lab.capture(c, &c_iface, "c-overlay", "");
    let t0 = Instant::now();
    lab.start_window_mode_with(a, VIDEO);
    lab.start_window_mode_with(b, VIDEO);
    wait_for("a through the relay to b", 120, || {
        let p = lab.peer(a, "b");
        let session = p["last_handshake_age_s"].as_u64().is_some_and(|a| a < 10);
        (p["path"] != "relay" || !session).then(|| p.to_string())
    });
    let path = t0.elapsed();
    lab.wait_state(a, "open", "b", 120);
    let opened = t0.elapsed();
    lab.wait_state(b, "open", "a", 15);

    let c_addr = lab.windows[c].overlay_addr();
    let pb = lab.peer(a, "b");
    assert_eq!(
        (&pb["path"], &pb["via"]),
        (&json!("relay"), &json!("c")),
        "{pb}"
    );
    let relay_at: SocketAddr = pb["endpoint"].as_str().unwrap().parse().unwrap();
    assert_eq!(relay_at.ip().to_string(), c_addr, "{pb}");
    let pa = lab.peer(b, "a");
    assert_eq!(pa["path"], "relay", "{pa}");
    decoded_both_ways(&lab, a, b);

    // The relay's cost, and the latency it adds (SIP OPTIONS round trips).
    let relay_cpu = overlay_cpu(&lab, c, 10.0);
    let rtt_relayed = udp_rtt_ms(&lab, a, b);

    // What C saw: on the underlay, WireGuard only; on its overlay, the pair's WireGuard
    // through the relay port, and nothing of the call in clear.
    let under = udp_datagrams(&fs::read(&underlay).unwrap());
    let wg_port = |d: &Datagram| d.from.port() == 51820 || d.to.port() == 51820;
    assert!(
        under.len() > 500,
        "{} datagrams on c's underlay",
        under.len()
    );
    let not_wg: Vec<&Datagram> = under.iter().filter(|d| !is_wireguard(d)).collect();
    assert!(
        not_wg.is_empty(),
        "not WireGuard on c's underlay: {:?}",
        &not_wg[..not_wg.len().min(3)]
    );
    assert!(under.iter().all(wg_port));
    let seen = udp_datagrams(&fs::read(&inner).unwrap());
    let relayed: Vec<&Datagram> = seen
        .iter()
        .filter(|d| d.from == relay_at || d.to == relay_at)
        .collect();
    assert!(
        relayed.len() > 500,
        "{} datagrams through the relay port",
        relayed.len()
    );
    assert!(
        relayed.iter().all(|d| is_wireguard(d)),
        "the relay carried something else"
    );
    // Every byte C's overlay carried (fragments too): none of the call's SIP, SDP or keys.
    let raw = String::from_utf8_lossy(&fs::read(&inner).unwrap()).into_owned();
    for clear in ["INVITE", "RTP/SAVP", "a=crypto", "inline:"] {
        assert!(!raw.contains(clear), "`{clear}` crossed the relay in clear");
    }

    // An outsider, routing to C's overlay address over the underlay with A's overlay address
    // as its source:
    // the relay port and the enrollment port are not there (bound to the overlay device).
    let xs = lab.windows[x].ns.clone();
    let a_addr = lab.windows[a].overlay_addr();
    must(&format!(
        "ip -n {xs} -6 addr add {a_addr}/128 dev lo nodad && \
         ip -n {xs} -6 route add {c_addr}/128 via 2001:db8:77::{}",
        lab.windows[c].n
    ));
    let spoof = b"OUTSIDER-SPOOF-0123456789";
    let (from, to) = (format!("[{a_addr}]:51820"), relay_at);
    in_ns(&xs, move || {
        let s = UdpSocket::bind(&from).unwrap();
        for _ in 0..5 {
            s.send_to(spoof, to).unwrap();
        }
    });
    let enroll: SocketAddr = format!("[{c_addr}]:5070").parse().unwrap();
    let tcp = in_ns(&xs, move || {
        TcpStream::connect_timeout(&enroll, Duration::from_secs(3)).map(|mut s| {
            let _ = s.write_all(b"{\"relay\":{\"peer\":\"x\",\"listen_port\":1}}\n");
            let mut answer = String::new();
            let _ = s.read_to_string(&mut answer);
            answer
        })
    });
    assert!(
        tcp.is_err(),
        "the outsider reached the enrollment port: {tcp:?}"
    );
    std::thread::sleep(Duration::from_secs(1));
    let has_spoof = |file: &std::path::Path| {
        udp_datagrams(&fs::read(file).unwrap())
            .iter()
            .any(|d| d.payload.windows(spoof.len()).any(|w| w == spoof))
    };
    assert!(
        has_spoof(&underlay),
        "the spoofed datagrams did not reach c"
    );
    assert!(
        !has_spoof(&inner),
        "the relay passed the outsider's datagrams on"
    );

    // With a WireGuard of its own and every endpoint: its handshakes go unanswered, SIP over
    // it gets nothing.
    lab.start_overlay(x);
    std::thread::sleep(Duration::from_secs(12));
    for m in ["a", "b", "c"] {
        let p = lab.peer(x, m);
        assert_eq!(
            p["name"],
            m,
            "the outsider's overlay: {}",
            lab.log(x, "overlay")
        );
        assert!(
            p["last_handshake_age_s"].is_null(),
            "{m} answered the outsider: {p}"
        );
    }
    for w in [a, b] {
        let addr = lab.windows[w].overlay_addr();
        assert_eq!(udp_probe_from(&xs, &addr), "no answer");
    }

    // B's router turns into a home router and forgets its mappings (its address goes and
    // comes back, as on a new lease): C sees B somewhere new, A and B try the direct path
    // together, and the call goes on over it.
    // Audio packets A lost so far (RTP sequence numbers: 50 a second, 20 ms each).
    let audio_lost = |lab: &Lab| {
        stream(&live_call(lab, a), "audio", "recv")["lost"]
            .as_u64()
            .unwrap_or(0)
    };
    let calm_from = Instant::now();
    let mut calm = vec![(0.0, audio_lost(&lab))];
    std::thread::sleep(Duration::from_secs(5));
    calm.push((calm_from.elapsed().as_secs_f64(), audio_lost(&lab)));
    let call_before = live_call(&lab, a)["duration_s"].as_f64().unwrap();
    let public_b = lab.windows[b].v4();
    let t1 = Instant::now();
    lab.router_renewed_as_home_router(b);
    let mut samples: Vec<(f64, u64)> = Vec::new();
    let mut switched = None;
    while t1.elapsed() < Duration::from_secs(60) {
        samples.push((t1.elapsed().as_secs_f64(), audio_lost(&lab)));
        if switched.is_none() && lab.peer(a, "b")["path"] == "direct" {
            switched = Some(t1.elapsed());
        }
        if switched.is_some_and(|s| t1.elapsed() > s + Duration::from_secs(3)) {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let switched = switched.unwrap_or_else(|| {
        panic!(
            "a never went direct to b: {}\n{}",
            lab.peer(a, "b"),
            lab.log(a, "overlay")
        )
    });
    let pb = lab.peer(a, "b");
    assert!(
        pb["endpoint"]
            .as_str()
            .unwrap_or("")
            .starts_with(&format!("{public_b}:")),
        "{pb}"
    );
    assert_eq!(lab.peer(b, "a")["path"], "direct");
    // The same call, still open, still decoding.
    assert_eq!(lab.state(a), ("open".to_owned(), "b".to_owned()));
    let call = live_call(&lab, a);
    assert!(call["duration_s"].as_f64().unwrap() > call_before, "{call}");
    let before = decoded(&call, "audio");
    wait_for("a still decodes b's audio", 5, || {
        let now = decoded(&live_call(&lab, a), "audio");
        (now < before + 50).then(|| format!("{before} → {now}\n{}", lab.log(a, "overlay")))
    });
    // The outage: the audio A lost from the NAT change until 3 s after the switch, against
    // 5 s of the call before the change.
    let missing_ms = |samples: &[(f64, u64)]| {
        (samples[samples.len() - 1].1.saturating_sub(samples[0].1)) as f64 * 20.0
    };
    let outage = missing_ms(&samples);
    let calm = missing_ms(&calm);
    let rtt_direct = udp_rtt_ms(&lab, a, b);
    let unrelayed_cpu = overlay_cpu(&lab, c, 10.0);
    eprintln!(
        "figure: topology 2 (symmetric NAT): overlay start → session through the relay {:.1} s, \
         → window open {:.1} s; \
         c's WireGuard + overlay during the relayed call {relay_cpu:.1} % of a core, \
         once the call went direct {unrelayed_cpu:.1} %; \
         overlay round trip a→b relayed {rtt_relayed:.2} ms, direct {rtt_direct:.2} ms; \
         NAT change → direct {:.1} s, audio missing at a across it {outage:.0} ms \
         (5 s before the change: {calm:.0} ms)",
        path.as_secs_f64(),
        opened.as_secs_f64(),
        switched.as_secs_f64(),
    );
}

/// A and B both behind symmetric NATs and no relay: they never reach each other, yet a roster
/// change made on A reaches B through C, which passes it on.
#[test]
fn a_roster_change_reaches_a_member_with_no_path_through_another() {
    let mut lab = Lab::new('o');
    let a = lab.behind_nat("a", true);
    let b = lab.behind_nat("b", true);
    let c = lab.host("c");
    lab.roster_with(
        &[(a, false, false), (b, false, false), (c, true, false)],
        &[],
    );
    for w in [c, a, b] {
        lab.start_overlay(w);
    }
    for w in [a, b] {
        wait_for("a session with c", 30, || {
            let p = lab.peer(w, "c");
            (p["path"] != "direct").then(|| p.to_string())
        });
    }
    wait_for("a gives up on b", 40, || {
        let p = lab.peer(a, "b");
        (p["path"] != "unreachable").then(|| p.to_string())
    });

    let d_key = lab.windows[a].dir.join("d.key");
    let d_pub = must(&format!(
        "{OVERLAY} identity --identity {}",
        d_key.display()
    ));
    let file = lab.windows[a].window_file();
    let mut text = fs::read_to_string(&file).unwrap();
    text.push_str(&format!(
        "\n[[member]]\nname = \"d\"\npublic_key = \"{}\"\nendpoints = []\n",
        d_pub.trim()
    ));
    fs::write(&file, text).unwrap();
    let t0 = Instant::now();
    let r = ask(&lab.windows[a].overlay_sock(), json!({"cmd": "reload"}));
    assert_eq!(r["ok"], true, "{r}");
    let b_file = lab.windows[b].window_file();
    wait_for("b has a's roster", 60, || {
        let t = fs::read_to_string(&b_file).unwrap_or_default();
        (!t.contains("name = \"d\"")).then_some(t)
    });
    let took = t0.elapsed();
    assert!(fs::read_to_string(&b_file).unwrap().contains("version = 2"));
    let c_addr = lab.windows[c].overlay_addr();
    let log = lab.log(b, "overlay");
    assert!(
        log.lines()
            .any(|l| l.contains("roster updated") && l.contains(&c_addr)),
        "{log}"
    );
    assert_ne!(lab.peer(a, "b")["path"], "direct");
    eprintln!(
        "figure: roster change on a → at b (no path between them) {:.1} s",
        took.as_secs_f64()
    );
}
