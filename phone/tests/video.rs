//! Video and SRTP between our phones: VP8, VP9 and H.264 over SRTP (required, the default),
//! refusal of plain RTP with a clear reason, and the RTP timeout.

mod common;

use std::sync::Mutex;
use std::time::{Duration, Instant};

use common::*;
use ewindow_protocol::{CallStats, EndReason, StreamDirection};

/// Video calls encode and decode 640x480 at 30 fps on both sides; two at once on a 2-core
/// machine starve each other, so they take turns.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner())
}

/// Frames decoded on one side against frames the other side encoded.
fn assert_video_flowed(name: &str, receiver: &CallStats, sender: &CallStats, codec: &str) {
    let recv = receiver
        .stream("video", StreamDirection::Recv)
        .unwrap_or_else(|| panic!("{name}: no video received"));
    let sent = sender
        .stream("video", StreamDirection::Send)
        .unwrap_or_else(|| panic!("{name}: the peer sent no video"));
    assert_eq!(recv.codec, codec, "{name}");
    assert!(recv.srtp && sent.srtp, "{name}: video was not SRTP");
    assert!(
        sent.decoded >= 200,
        "{name}: the peer encoded only {} frames in 10 s",
        sent.decoded
    );
    assert!(
        recv.decoded * 100 >= sent.decoded * 80,
        "{name}: decoded {} of {} frames sent",
        recv.decoded,
        sent.decoded
    );
    assert_eq!((recv.width, recv.height), (Some(640), Some(480)), "{name}");
}

fn video_call(codec: &str) {
    let _turn = serial();
    let dir = temp_dir(&format!("video-{codec}"));
    let (a_json, b_json) = (dir.join("a.json"), dir.join("b.json"));
    let port = free_port();
    let mut b = Proc::spawn("phone-listen", {
        let mut c = std::process::Command::new(phone_bin());
        c.args(["listen", "--sip", &format!("127.0.0.1:{port}")])
            .args(["--auto-answer", "--video-codecs", codec, "--duration", "60"])
            .arg("--stats-json")
            .arg(&b_json)
            // Show SIP messages so the test can see the SDP on the wire.
            .env("EWINDOW_LOG", "info,rsipstack=info");
        c
    });
    assert!(b
        .wait_for("listening on", Duration::from_secs(10))
        .is_some());
    let mut a = phone_call(
        &format!("sip:ewindow@127.0.0.1:{port}"),
        &[
            "--video-codecs",
            codec,
            "--duration",
            "10",
            "--stats-json",
            a_json.to_str().unwrap(),
        ],
    );
    let (a_ok, a_out) = a.finish(Duration::from_secs(40));
    let (b_ok, b_out) = b.finish(Duration::from_secs(10));
    assert!(a_ok, "caller failed:\n{a_out}");
    assert!(b_ok, "callee failed:\n{b_out}");
    // The offer on the wire: RTP/SAVP with a=crypto on both m-lines.
    assert!(
        b_out.contains("m=audio") && b_out.contains("RTP/SAVP"),
        "{b_out}"
    );
    assert!(
        b_out.matches("a=crypto:").count() >= 2,
        "no a=crypto in:\n{b_out}"
    );
    let (sa, sb) = (read_stats(&a_json), read_stats(&b_json));
    assert_video_flowed(&format!("{codec} caller"), &sa, &sb, codec);
    assert_video_flowed(&format!("{codec} callee"), &sb, &sa, codec);
    for s in [&sa, &sb] {
        let audio = s.stream("audio", StreamDirection::Recv).unwrap();
        assert!(audio.srtp, "audio was not SRTP");
        assert!(audio.decoded >= 450, "audio decoded {}", audio.decoded);
    }
}

#[test]
fn vp8_video_over_srtp_between_phones() {
    video_call("vp8");
}

#[test]
fn vp9_video_over_srtp_between_phones() {
    video_call("vp9");
}

#[test]
fn h264_video_over_srtp_between_phones() {
    video_call("h264");
}

/// Calls a listener with the given SRTP modes; returns the caller's exit status and output.
fn srtp_mismatch(listener_mode: &str, caller_mode: &str) -> (bool, String, CallStats) {
    let dir = temp_dir("srtp-mismatch");
    let json = dir.join("a.json");
    let port = free_port();
    let b = phone_listen(port, &["--auto-answer", "--srtp", listener_mode]);
    let mut a = phone_call(
        &format!("sip:ewindow@127.0.0.1:{port}"),
        &[
            "--srtp",
            caller_mode,
            "--duration",
            "2",
            "--stats-json",
            json.to_str().unwrap(),
        ],
    );
    let (ok, out) = a.finish(Duration::from_secs(20));
    b.terminate();
    (ok, out, read_stats(&json))
}

#[test]
fn a_plain_rtp_offer_is_refused_with_488_when_srtp_is_required() {
    let (ok, out, stats) = srtp_mismatch("required", "off");
    assert!(!ok, "a plain call must fail:\n{out}");
    assert!(
        out.contains("488 Not Acceptable Here (302 ewindow") && out.contains("SRTP required"),
        "the caller names the refusal and the listener's Warning, once:\n{out}"
    );
    assert!(!out.contains("488 488"), "{out}");
    assert_eq!(stats.sip_status, Some(488));
    assert_eq!(stats.end_reason, Some(EndReason::SrtpMismatch));
}

#[test]
fn a_peer_that_refuses_srtp_fails_the_call_with_a_clear_reason() {
    // The listener will not do SRTP; our caller requires it.
    let (ok, out, stats) = srtp_mismatch("off", "required");
    assert!(!ok, "the call must fail:\n{out}");
    // The listener says it is its own SRTP that is off, not that SRTP is required.
    assert!(
        out.contains("488") && out.contains("--srtp off") && !out.contains("SRTP required"),
        "the caller says why:\n{out}"
    );
    assert_eq!(stats.sip_status, Some(488));
    assert_eq!(stats.end_reason, Some(EndReason::SrtpMismatch));
}

#[test]
fn optional_srtp_falls_back_to_plain_rtp_with_a_peer_that_has_none() {
    let dir = temp_dir("srtp-optional");
    let json = dir.join("a.json");
    let port = free_port();
    let b = phone_listen(
        port,
        &["--auto-answer", "--srtp", "off", "--video-codecs", "none"],
    );
    let mut a = phone_call(
        &format!("sip:ewindow@127.0.0.1:{port}"),
        &[
            "--srtp",
            "optional",
            "--video-codecs",
            "none",
            "--duration",
            "3",
            "--stats-json",
            json.to_str().unwrap(),
        ],
    );
    let (ok, out) = a.finish(Duration::from_secs(20));
    b.terminate();
    assert!(ok, "{out}");
    let recv = read_stats(&json);
    let recv = recv.stream("audio", StreamDirection::Recv).unwrap();
    assert!(!recv.srtp);
    assert!(recv.decoded >= 120, "decoded {}", recv.decoded);
}

#[test]
fn a_peer_that_stops_sending_ends_the_call_with_rtp_timeout_in_5_to_7_s() {
    let _turn = serial();
    let dir = temp_dir("rtp-timeout");
    let json = dir.join("a.json");
    let port = free_port();
    let b = phone_listen(port, &["--auto-answer", "--video-codecs", "none"]);
    let mut a = phone_call(
        &format!("sip:ewindow@127.0.0.1:{port}"),
        &[
            "--video-codecs",
            "none",
            "--duration",
            "60",
            "--stats-json",
            json.to_str().unwrap(),
        ],
    );
    assert!(
        a.wait_for("call established", Duration::from_secs(10))
            .is_some(),
        "no call"
    );
    std::thread::sleep(Duration::from_secs(2));
    // Freeze the peer: no more RTP, and no answer to our BYE either.
    let frozen_at = Instant::now();
    let stopped = std::process::Command::new("kill")
        .args(["-STOP", &b.child.id().to_string()])
        .status()
        .unwrap();
    assert!(stopped.success());
    assert!(
        a.wait_for("no RTP for", Duration::from_secs(12)).is_some(),
        "the caller did not notice the silence:\n{}",
        a.seen.join("\n")
    );
    let noticed = frozen_at.elapsed();
    let (ok, out) = a.finish(Duration::from_secs(15));
    let _ = std::process::Command::new("kill")
        .args(["-CONT", &b.child.id().to_string()])
        .status();
    assert!(!ok, "an RTP timeout is not a call ended as asked:\n{out}");
    let stats = read_stats(&json);
    assert_eq!(stats.end_reason, Some(EndReason::RtpTimeout));
    assert!(
        noticed >= Duration::from_secs(5) && noticed <= Duration::from_secs(7),
        "noticed after {noticed:?}"
    );
}
