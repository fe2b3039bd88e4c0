//! A roster update from a member (`parse_roster`, then `overlay::roster::accept` against a
//! roster of two members): whatever the text, an answer and no panic; and any roster that
//! parses, signed by a member as the next version, is accepted.
#![no_main]

use std::path::Path;
use std::sync::OnceLock;

use ewindow_overlay::roster;
use ewindow_protocol::keys::PrivateKey;
use ewindow_protocol::window::{parse_roster, Member, Roster};

/// The current roster and its first member's key: made once per run, fuzz-only keys.
fn current() -> &'static (Roster, PrivateKey) {
    static CURRENT: OnceLock<(Roster, PrivateKey)> = OnceLock::new();
    CURRENT.get_or_init(|| {
        let alpha = PrivateKey::from_bytes([0x11; 32]);
        let beta = PrivateKey::from_bytes([0x22; 32]);
        let member = |name: &str, key: &PrivateKey| Member {
            name: name.into(),
            public_key: key.public_key(),
            endpoints: Vec::new(),
            relay: false,
        };
        let roster = Roster {
            version: 7,
            members: vec![member("alpha", &alpha), member("beta", &beta)],
            ..Roster::default()
        };
        (roster::sign(roster, 7, "alpha", &alpha), alpha)
    })
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (current, alpha) = current();
    let Ok(update) = parse_roster(Path::new("roster"), text) else {
        return;
    };
    let _ = roster::accept(current, "beta", &update);
    // The same members, signed by alpha as the next version, keeping beta's entry.
    let mut next = update.clone();
    next.members.retain(|m| m.name != "beta");
    next.members.push(current.members[1].clone());
    let signed = roster::sign(next, current.version + 1, "alpha", alpha);
    roster::accept(current, "beta", &signed).expect("a roster signed by a member is taken");
});
