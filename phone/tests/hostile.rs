//! Malformed and hostile requests (RFC 4475 invalid messages and ours, in `tests/hostile/`):
//! each gets a 4xx-class refusal or is dropped, nothing crashes the phone, and it still
//! answers OPTIONS afterwards.

mod common;

use std::path::Path;
use std::time::Duration;

use common::*;

/// One row of `tests/hostile/INDEX.md`.
struct Case {
    file: String,
    udp: String,
    tcp: String,
}

fn cases() -> Vec<Case> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/hostile");
    let index = std::fs::read_to_string(dir.join("INDEX.md")).expect("INDEX.md");
    index
        .lines()
        .filter(|l| l.starts_with("| `") && l.contains(".sip`"))
        .map(|l| {
            let cols: Vec<String> = l
                .split('|')
                .map(|c| c.trim().trim_matches('`').to_string())
                .collect();
            // | file | what | source | udp | tcp | bytes | notes |
            Case {
                file: cols[1].clone(),
                udp: cols[4].clone(),
                tcp: cols[5].clone(),
            }
        })
        .collect()
}

fn message(file: &str, port: u16) -> Vec<u8> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/hostile")
        .join(file);
    let raw = std::fs::read(&path).unwrap_or_else(|e| panic!("{file}: {e}"));
    // Replace the placeholder byte-wise: some files are not UTF-8 on purpose.
    let needle = b"{ADDR}";
    let addr = format!("127.0.0.1:{port}");
    let mut out = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        if raw[i..].starts_with(needle) {
            out.extend_from_slice(addr.as_bytes());
            i += needle.len();
        } else {
            out.push(raw[i]);
            i += 1;
        }
    }
    out
}

/// Checks an answer against the expectation; returns a complaint if it is wrong.
fn judge(expect: &str, answer: Option<&str>) -> Option<String> {
    let code: Option<u16> = answer.and_then(|a| a.get(..3)).and_then(|c| c.parse().ok());
    let ok = match (expect, code) {
        ("n/a", _) | ("lenient", _) => true,
        ("drop", None) => true,
        ("drop", Some(_)) => false,
        ("400", Some(400)) => true,
        ("400-or-drop", None | Some(400)) => true,
        ("4xx", None) => true,
        ("4xx", Some(c)) => (400..500).contains(&c),
        ("reject", None) => true,
        ("reject", Some(c)) => (400..600).contains(&c),
        _ => false,
    };
    (!ok).then(|| format!("expected {expect}, got {answer:?}"))
}

/// Expectations of `400` are met with 400 or, where the stack cannot frame the message at
/// all, by dropping it. Both count; a success response or a crash never does.
fn tolerant(expect: &str) -> &str {
    if expect == "400" {
        "400-or-drop"
    } else {
        expect
    }
}

fn run(transport: &str) {
    let cases = cases();
    assert!(cases.len() >= 30, "the corpus has {} cases", cases.len());
    let port = free_port();
    // Not auto-answering: an INVITE that is accepted as lenient just rings.
    let mut phone = phone_listen(port, &[]);
    let mut failures = Vec::new();
    let (mut answered_400, mut dropped) = (0, 0);
    for case in &cases {
        let expect = if transport == "udp" {
            &case.udp
        } else {
            &case.tcp
        };
        if expect == "n/a" {
            continue;
        }
        let bytes = message(&case.file, port);
        let wait = Duration::from_millis(700);
        let answer = if transport == "udp" {
            udp_request(port, &bytes, wait)
        } else {
            tcp_request(port, &bytes, wait)
        };
        match answer.as_deref() {
            Some(a) if a.starts_with("400") => answered_400 += 1,
            None => dropped += 1,
            _ => {}
        }
        if let Some(why) = judge(tolerant(expect), answer.as_deref()) {
            failures.push(format!("{} over {transport}: {why}", case.file));
        }
        assert!(
            phone.child.try_wait().unwrap().is_none(),
            "the phone died on {}:\n{}",
            case.file,
            phone.finish(Duration::from_secs(1)).1
        );
        let alive = udp_request(
            port,
            &options_request(port, &format!("after-{}", case.file)),
            Duration::from_secs(3),
        );
        assert_eq!(
            alive.as_deref(),
            Some("200 OK"),
            "no OPTIONS answer after {} over {transport}",
            case.file
        );
    }
    eprintln!(
        "{transport}: {answered_400} answered 400, {dropped} dropped, of {}",
        cases.len()
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    // Where the message is framed and its headers are usable, the answer is a real 400.
    assert!(answered_400 >= 10, "only {answered_400} requests got a 400");
    phone.terminate();
    phone.finish(Duration::from_secs(5));
}

#[test]
fn hostile_requests_over_udp_get_400_or_are_dropped_and_the_phone_serves_on() {
    run("udp");
}

#[test]
fn hostile_requests_over_tcp_get_400_or_are_dropped_and_the_phone_serves_on() {
    run("tcp");
}

#[test]
fn judge_refuses_success_for_malformed_requests() {
    assert!(judge("400", Some("200 OK")).is_some());
    assert!(judge("400-or-drop", Some("486 Busy Here")).is_some());
    assert!(judge("drop", Some("400 Bad Request")).is_some());
    assert!(judge("4xx", Some("200 OK")).is_some());
    assert!(judge("400-or-drop", None).is_none());
    assert!(judge("4xx", Some("488 Not Acceptable Here")).is_none());
}
