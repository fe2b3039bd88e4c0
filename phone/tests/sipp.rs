//! SIPp (`sip-tester`) as a peer on loopback, for what no well-behaved phone does: a caller
//! that never sends its ACK, a CANCEL while ringing, a BYE before the 200. Every transaction
//! must end, no dialog stay behind (the phone's `sip` control command counts them), the FDs
//! and threads come back to what they were, and the phone must take the next call.

mod common;
#[path = "sipp/run.rs"]
mod sipp;

use std::path::Path;
use std::time::{Duration, Instant};

use common::*;
use serde_json::Value;
use sipp::Sipp;

fn ask(sock: &Path, line: &str) -> Value {
    use std::io::{BufRead, BufReader, Write};
    let mut s = std::os::unix::net::UnixStream::connect(sock).expect("control socket");
    s.write_all(format!("{line}\n").as_bytes()).unwrap();
    let mut reply = String::new();
    BufReader::new(s).read_line(&mut reply).unwrap();
    serde_json::from_str(&reply).expect("a JSON reply")
}

/// Transactions, ACK waits and dialogs the phone holds (0 when it is idle).
fn held(sock: &Path) -> (u64, u64, u64) {
    let sip = &ask(sock, r#"{"cmd":"sip"}"#)["sip"];
    let n = |k: &str| sip[k].as_u64().expect("a counter");
    (n("transactions"), n("waiting_ack"), n("dialogs"))
}

/// Open file descriptors and threads of a process.
fn fds_and_threads(pid: u32) -> (usize, usize) {
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |d| d.count());
    let threads = std::fs::read_dir(format!("/proc/{pid}/task")).map_or(0, |d| d.count());
    (fds, threads)
}

/// A 2 s call from our own phone: the listener takes calls and decodes them.
fn a_real_call_works(port: u16, dir: &Path) {
    let stats = dir.join(format!("call-{port}.json"));
    let mut caller = phone_call(
        &format!("sip:ewindow@127.0.0.1:{port}"),
        &["--duration", "2", "--stats-json", stats.to_str().unwrap()],
    );
    let (ok, out) = caller.finish(Duration::from_secs(30));
    assert!(ok, "a normal call after the scenarios: {out}");
    let stats = read_stats(&stats);
    let decoded = stats.streams.iter().map(|s| s.decoded).max().unwrap_or(0);
    assert!(decoded > 50, "the call decoded media: {stats:?}");
}

#[test]
fn calls_never_acked_cancelled_or_ended_by_an_early_bye_leave_nothing_behind() {
    let dir = temp_dir("sipp");
    let ring_port = free_port();
    let ring_sock = dir.join("ring.sock");
    let ringing = phone_listen(ring_port, &["--control", ring_sock.to_str().unwrap()]);
    let answer_port = free_port();
    let answer_sock = dir.join("answer.sock");
    let answering = phone_listen(
        answer_port,
        &["--auto-answer", "--control", answer_sock.to_str().unwrap()],
    );
    // One call first, so what a first call starts once (GStreamer's threads) is in the
    // baseline.
    a_real_call_works(answer_port, &dir);
    std::thread::sleep(Duration::from_secs(1));
    let before = [
        fds_and_threads(ringing.child.id()),
        fds_and_threads(answering.child.id()),
    ];

    let remote = |port: u16| format!("127.0.0.1:{port}");
    let run = |scenario, port: u16, calls, rate| {
        let local = free_port();
        Sipp {
            scenario,
            local: ("127.0.0.1", local),
            remote: &remote(port),
            caller: "sipp",
            calls,
            rate,
            netns: None,
            dir: &dir,
        }
        .run()
    };
    for scenario in ["cancel-ringing.xml", "bye-before-200.xml"] {
        // One at a time: the listener rings one call and refuses others with 486.
        let got = run(scenario, ring_port, 20, 4);
        assert_eq!(
            (got.successful, got.failed),
            (20, 0),
            "{scenario}: {}",
            got.output
        );
    }
    let got = run("invite-no-ack.xml", answer_port, 1, 1);
    assert_eq!((got.successful, got.failed), (1, 0), "{}", got.output);

    // The unacknowledged 200 is resent for 64*T1 = 32 s, then the stack sends BYE, resent
    // for another 32 s when nobody answers it.
    let t0 = Instant::now();
    for sock in [&ring_sock, &answer_sock] {
        loop {
            let now = held(sock);
            if now == (0, 0, 0) {
                break;
            }
            assert!(
                t0.elapsed() < Duration::from_secs(100),
                "{}: transactions, ACK waits and dialogs still held: {now:?}",
                sock.display()
            );
            std::thread::sleep(Duration::from_millis(500));
        }
    }
    eprintln!(
        "sipp: 20 CANCELs while ringing, 20 BYEs before the 200 and a 200 never ACKed: all \
         transactions and dialogs gone {:.1} s after the last scenario",
        t0.elapsed().as_secs_f64()
    );
    // The control connections just made close on the phone's side a moment later.
    std::thread::sleep(Duration::from_secs(1));
    let after = [
        fds_and_threads(ringing.child.id()),
        fds_and_threads(answering.child.id()),
    ];
    for ((fds0, threads0), (fds1, threads1)) in before.iter().zip(&after) {
        assert!(
            fds1 == fds0 && threads1 <= threads0,
            "FDs and threads of the ringing and the answering phone: {before:?} → {after:?}"
        );
    }
    let reply = udp_request(
        ring_port,
        &options_request(ring_port, "after"),
        Duration::from_secs(2),
    );
    assert_eq!(
        reply.as_deref(),
        Some("200 OK"),
        "the ringing phone answers OPTIONS"
    );
    a_real_call_works(answer_port, &dir);
}
