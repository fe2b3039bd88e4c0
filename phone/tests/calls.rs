//! Our phone calling our phone on loopback: codecs, transports, and the ways a call ends.

mod common;

use std::time::Duration;

use common::*;
use ewindow_protocol::{EndReason, StreamDirection};

/// Calls a listening phone for `secs` and checks both sides decoded at least 90 % of the
/// frames the call should carry (50 a second at 20 ms ptime).
fn call_pair(codecs: &str, transport: &str, secs: u32) {
    let dir = temp_dir(&format!("pair-{codecs}-{transport}"));
    let (a_json, b_json) = (dir.join("a.json"), dir.join("b.json"));
    let port = free_port();
    let mut b = phone_listen(
        port,
        &[
            "--auto-answer",
            "--name",
            "window-b",
            "--codecs",
            codecs,
            "--duration",
            "60",
            "--stats-json",
            b_json.to_str().unwrap(),
        ],
    );
    let uri = format!("sip:window-b@127.0.0.1:{port}");
    let mut a = phone_call(
        &uri,
        &[
            "--transport",
            transport,
            "--name",
            "window-a",
            "--codecs",
            codecs,
            "--duration",
            &secs.to_string(),
            "--stats-json",
            a_json.to_str().unwrap(),
        ],
    );
    let (a_ok, a_out) = a.finish(Duration::from_secs(u64::from(secs) + 20));
    let (b_ok, b_out) = b.finish(Duration::from_secs(10));
    assert!(a_ok, "caller failed:\n{a_out}");
    assert!(b_ok, "callee failed:\n{b_out}");
    let (sa, sb) = (read_stats(&a_json), read_stats(&b_json));
    assert_eq!(sa.end_reason, Some(EndReason::LocalBye), "caller hung up");
    assert_eq!(sb.end_reason, Some(EndReason::RemoteBye), "callee saw BYE");
    let want = u64::from(secs) * 50 * 9 / 10;
    let expected_codec = codecs.split(',').next().unwrap();
    for (side, s) in [("caller", &sa), ("callee", &sb)] {
        let recv = s
            .stream("audio", StreamDirection::Recv)
            .unwrap_or_else(|| panic!("{side} has no recv stream"));
        assert!(
            recv.codec.starts_with(expected_codec),
            "{side} used {} not {expected_codec}",
            recv.codec
        );
        assert!(
            recv.decoded >= want,
            "{side} decoded {} of {} frames ({codecs} over {transport})",
            recv.decoded,
            u64::from(secs) * 50
        );
        let send = s.stream("audio", StreamDirection::Send).unwrap();
        assert!(send.packets >= want, "{side} sent only {}", send.packets);
        assert!(s.setup_ms.is_some(), "{side} never decoded audio");
    }
}

#[test]
fn phone_to_phone_over_udp_decodes_opus_both_ways() {
    call_pair("opus", "udp", 5);
}

#[test]
fn phone_to_phone_over_tcp_decodes_opus_both_ways() {
    call_pair("opus", "tcp", 5);
}

#[test]
fn phone_to_phone_pcmu_and_pcma() {
    call_pair("pcmu", "udp", 5);
    call_pair("pcma", "udp", 5);
}

#[test]
fn phone_to_phone_speex_wideband_and_narrowband() {
    call_pair("speex16", "udp", 5);
    call_pair("speex8", "tcp", 5);
}

#[test]
fn callee_bye_ends_the_caller_with_remote_bye() {
    let dir = temp_dir("callee-bye");
    let (a_json, b_json) = (dir.join("a.json"), dir.join("b.json"));
    let port = free_port();
    let mut b = phone_listen(
        port,
        &[
            "--auto-answer",
            "--duration",
            "2",
            "--stats-json",
            b_json.to_str().unwrap(),
        ],
    );
    let mut a = phone_call(
        &format!("sip:ewindow@127.0.0.1:{port}"),
        &["--duration", "30", "--stats-json", a_json.to_str().unwrap()],
    );
    let (a_ok, a_out) = a.finish(Duration::from_secs(20));
    let (b_ok, b_out) = b.finish(Duration::from_secs(10));
    assert!(a_ok && b_ok, "caller:\n{a_out}\ncallee:\n{b_out}");
    assert_eq!(read_stats(&a_json).end_reason, Some(EndReason::RemoteBye));
    let sb = read_stats(&b_json);
    assert_eq!(sb.end_reason, Some(EndReason::LocalBye));
    assert!(
        sb.duration_s >= 1.9 && sb.duration_s < 10.0,
        "{}",
        sb.duration_s
    );
}

#[test]
fn cancel_before_answer_ends_both_sides_with_cancel() {
    let dir = temp_dir("cancel");
    let (a_json, b_json) = (dir.join("a.json"), dir.join("b.json"));
    let port = free_port();
    // No --auto-answer: the call rings until the caller gives up.
    let mut b = phone_listen(
        port,
        &["--duration", "5", "--stats-json", b_json.to_str().unwrap()],
    );
    let mut a = phone_call(
        &format!("sip:ewindow@127.0.0.1:{port}"),
        &[
            "--ring-timeout",
            "1",
            "--stats-json",
            a_json.to_str().unwrap(),
        ],
    );
    let (a_ok, a_out) = a.finish(Duration::from_secs(15));
    let (b_ok, b_out) = b.finish(Duration::from_secs(10));
    assert!(!a_ok, "an unanswered call must not exit 0:\n{a_out}");
    assert!(a_out.contains("cancelled"), "caller says why:\n{a_out}");
    assert!(!b_ok, "a cancelled call is not a completed one:\n{b_out}");
    assert_eq!(read_stats(&a_json).end_reason, Some(EndReason::Cancel));
    assert_eq!(read_stats(&b_json).end_reason, Some(EndReason::Cancel));
}

#[test]
fn no_common_codec_is_refused_with_488() {
    let dir = temp_dir("488");
    let a_json = dir.join("a.json");
    let port = free_port();
    let b = phone_listen(port, &["--auto-answer", "--codecs", "pcma"]);
    let mut a = phone_call(
        &format!("sip:ewindow@127.0.0.1:{port}"),
        &[
            "--codecs",
            "opus,speex",
            "--stats-json",
            a_json.to_str().unwrap(),
        ],
    );
    let (a_ok, a_out) = a.finish(Duration::from_secs(15));
    assert!(!a_ok);
    assert!(
        a_out.contains("488 Not Acceptable Here (305 ewindow \"no common audio codec\")"),
        "caller names the code once and the listener's Warning:\n{a_out}"
    );
    let sa = read_stats(&a_json);
    assert_eq!(sa.sip_status, Some(488));
    assert_eq!(sa.end_reason, Some(EndReason::NoCommonCodec));
    // The listener keeps serving after refusing.
    let reply = udp_request(
        port,
        &options_request(port, "after488"),
        Duration::from_secs(3),
    );
    assert_eq!(reply.as_deref(), Some("200 OK"));
    b.terminate();
}

#[test]
fn a_second_call_while_busy_gets_486() {
    let port = free_port();
    let mut b = phone_listen(port, &["--auto-answer", "--duration", "30"]);
    let uri = format!("sip:ewindow@127.0.0.1:{port}");
    let mut first = phone_call(&uri, &["--duration", "6"]);
    std::thread::sleep(Duration::from_secs(2));
    let mut second = phone_call(&uri, &["--duration", "2"]);
    let (second_ok, second_out) = second.finish(Duration::from_secs(15));
    assert!(!second_ok);
    assert!(
        second_out.contains("486"),
        "busy is reported:\n{second_out}"
    );
    let (first_ok, first_out) = first.finish(Duration::from_secs(20));
    assert!(first_ok, "the first call is not disturbed:\n{first_out}");
    b.finish(Duration::from_secs(10));
}

#[test]
fn options_is_answered_200_with_allow_and_accept() {
    let port = free_port();
    let mut b = phone_listen(port, &[]);
    let sock = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
    sock.send_to(&options_request(port, "opt1"), ("127.0.0.1", port))
        .unwrap();
    let mut buf = [0u8; 4096];
    let n = sock.recv(&mut buf).expect("an answer to OPTIONS");
    let text = String::from_utf8_lossy(&buf[..n]);
    assert!(text.starts_with("SIP/2.0 200"), "{text}");
    assert!(
        text.contains("Allow: INVITE, ACK, CANCEL, BYE, OPTIONS"),
        "{text}"
    );
    assert!(text.contains("Accept: application/sdp"), "{text}");
    b.terminate();
    b.finish(Duration::from_secs(5));
}
