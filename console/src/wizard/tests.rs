//! The wizard's tests: flows through the steps, the checks, the files, and the screens
//! against the snapshots in `src/snapshots/`.

use super::checks::utc;
use super::draw::wrap;
use super::*;
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use ewindow_protocol::invite::Invitation;
use ewindow_protocol::window::{Member, WindowConfig};
use ratatui::backend::TestBackend;
use ratatui::style::Color;
use ratatui::Terminal;
use std::path::Path;
use std::time::Duration;

/// 2026-01-01 00:00 UTC.
const NOW: u64 = 1_767_225_600;

fn own() -> PublicKey {
    PublicKey([11; 32])
}

fn inviter() -> PublicKey {
    PublicKey([22; 32])
}

fn wizard() -> Wizard {
    Wizard::new(own().to_base64())
}

fn dev(path: &str, name: &str) -> Device {
    Device {
        path: path.into(),
        name: name.into(),
    }
}

fn devices() -> Input {
    Input::Devices {
        cameras: vec![
            dev("/dev/video0", "USB Camera"),
            dev("/dev/video2", "Logitech C920"),
        ],
        microphones: vec![
            dev("hw:1,0", "Jabra Speak 410"),
            dev("hw:2,0", "USB Camera microphone"),
        ],
        speakers: vec![dev("hw:1,0", "Jabra Speak 410")],
    }
}

/// A real invitation, with a random secret.
fn invitation() -> Invitation {
    Invitation::new(
        inviter(),
        "203.0.113.7:51820".parse().unwrap(),
        Duration::from_secs(3600),
        NOW,
    )
    .unwrap()
}

/// The same every run, for the snapshots.
fn fixed_invitation() -> Invitation {
    Invitation {
        inviter_key: inviter(),
        endpoint: "203.0.113.7:51820".parse().unwrap(),
        secret: *b"twelve bytes",
        expires_unix: 1_767_312_000,
    }
}

/// A signed roster with this window as `fablab-nantes`.
fn roster() -> Roster {
    Roster {
        version: 4,
        signed_by: Some("fablab-lyon".into()),
        signature: Some([5; 64]),
        members: vec![
            Member {
                name: "fablab-lyon".into(),
                public_key: inviter(),
                endpoints: vec!["192.0.2.1:51820".parse().unwrap()],
                relay: false,
            },
            Member {
                name: "fablab-nantes".into(),
                public_key: own(),
                endpoints: vec![],
                relay: false,
            },
        ],
    }
}

fn usb_rosters() -> Input {
    Input::UsbRosters(vec![
        (
            PathBuf::from("/media/usb0/notes.toml"),
            "shopping = [\"glue\"]\n".into(),
        ),
        (
            PathBuf::from("/media/usb0/roster.toml"),
            window::roster_to_toml(&roster()),
        ),
    ])
}

/// An ed25519 OpenSSH public key blob, base64.
fn ed25519_blob(kind: &str, key_len: usize) -> String {
    let mut b = Vec::new();
    b.extend_from_slice(&(kind.len() as u32).to_be_bytes());
    b.extend_from_slice(kind.as_bytes());
    b.extend_from_slice(&(key_len as u32).to_be_bytes());
    b.extend(std::iter::repeat_n(7u8, key_len));
    BASE64.encode(b)
}

fn ssh_key() -> String {
    format!(
        "ssh-ed25519 {} maker@fablab",
        ed25519_blob("ssh-ed25519", 32)
    )
}

fn k(key: Key) -> Input {
    Input::Key(key)
}

fn enters(n: usize) -> Vec<Input> {
    (0..n).map(|_| k(Key::Enter)).collect()
}

fn typed(text: &str) -> Vec<Input> {
    text.chars().map(|c| Input::Key(Key::Char(c))).collect()
}

/// Feeds inputs; returns every action.
fn feed(w: &mut Wizard, inputs: impl IntoIterator<Item = Input>) -> Vec<Action> {
    inputs.into_iter().flat_map(|i| w.handle(i)).collect()
}

fn finishes(actions: &[Action]) -> usize {
    actions
        .iter()
        .filter(|a| matches!(a, Action::Finish(_)))
        .count()
}

/// A wizard driven to the invitation code step.
fn at_code() -> Wizard {
    let mut w = wizard();
    feed(&mut w, [Input::Now(NOW), devices(), k(Key::Enter)]);
    feed(&mut w, typed("fablab-nantes"));
    feed(&mut w, [k(Key::Enter), k(Key::Enter)]);
    assert_eq!(w.step(), Step::InvitationCode);
    w
}

/// A wizard driven to the open hours step with `code`.
fn at_hours(code: &str) -> Wizard {
    let mut w = at_code();
    feed(&mut w, [Input::Paste(code.into()), k(Key::Enter)]);
    assert_eq!(w.step(), Step::OpenHours, "{:?}", w.message());
    w
}

/// Text of the screen, trailing spaces cut.
fn screen(w: &Wizard, width: u16, height: u16) -> String {
    let mut term = Terminal::new(TestBackend::new(width, height)).unwrap();
    term.draw(|f| render(f, w)).unwrap();
    let buf = term.backend().buffer();
    let mut out = String::new();
    for y in 0..buf.area.height {
        let mut line = String::new();
        for x in 0..buf.area.width {
            line.push_str(buf.cell((x, y)).map_or(" ", |c| c.symbol()));
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

#[test]
fn joins_with_an_invitation_end_to_end() {
    let inv = invitation();
    let code = inv.encode();
    assert_eq!(code.len(), 119);
    let mut w = wizard();
    let mut all = feed(&mut w, [Input::Now(NOW), devices()]);
    assert!(screen(&w, 80, 25).contains(&own().to_base64()));
    all.extend(feed(&mut w, [k(Key::Enter)]));
    all.extend(feed(&mut w, typed("fablab-nantes")));
    all.extend(feed(&mut w, [k(Key::Enter)]));
    assert_eq!(w.step(), Step::JoinMethod);
    all.extend(feed(&mut w, [k(Key::Enter)]));
    assert_eq!(w.step(), Step::InvitationCode);
    // Typed key by key, in lower case with spaces instead of dashes: still the code.
    all.extend(feed(&mut w, typed(&code.to_lowercase().replace('-', " "))));
    let s = screen(&w, 80, 25);
    assert!(s.contains("203.0.113.7:51820"), "{s}");
    all.extend(feed(&mut w, [k(Key::Enter)]));
    assert_eq!(w.step(), Step::OpenHours);
    assert!(all.is_empty(), "{all:?}");

    feed(&mut w, [k(Key::ClearField)]);
    feed(&mut w, typed("08:00-20:00"));
    let a = feed(&mut w, [k(Key::Enter)]);
    assert_eq!(w.step(), Step::Camera);
    assert_eq!(a, [Action::ProbeCamera("/dev/video0".into())]);
    feed(&mut w, [Input::CameraProbe { fps: 29.97 }]);
    assert!(screen(&w, 80, 25).contains("test picture: 30 fps"));
    let a = feed(&mut w, [k(Key::Down)]);
    assert_eq!(a, [Action::ProbeCamera("/dev/video2".into())]);
    assert!(!screen(&w, 80, 25).contains("test picture: 30 fps"));

    let a = feed(&mut w, [k(Key::Enter)]);
    assert_eq!(w.step(), Step::Microphone);
    assert_eq!(a, [Action::StartLevel("hw:1,0".into())]);
    feed(&mut w, [Input::Level(-23.0)]);
    assert!(screen(&w, 80, 25).contains("-23 dBFS"));
    let a = feed(&mut w, [k(Key::Down)]);
    assert_eq!(a, [Action::StartLevel("hw:2,0".into())]);
    let a = feed(&mut w, [k(Key::Enter)]);
    assert_eq!(a, [Action::StopLevel]);
    assert_eq!(w.step(), Step::Speaker);
    let a = feed(&mut w, [k(Key::Char('t'))]);
    assert_eq!(a, [Action::PlayTone("hw:1,0".into())]);
    feed(&mut w, [k(Key::Enter)]);
    assert_eq!(w.step(), Step::SshKey);
    feed(&mut w, [Input::Paste(format!("  {}\n", ssh_key()))]);
    feed(&mut w, [k(Key::Enter)]);
    assert_eq!(w.step(), Step::Summary);
    let s = screen(&w, 80, 25);
    assert!(
        s.contains("08:00-20:00") && s.contains("Logitech C920"),
        "{s}"
    );

    let a = feed(&mut w, [k(Key::Enter)]);
    let want = Answers {
        name: "fablab-nantes".into(),
        join: Join::Invitation { code: code.clone() },
        open_hours: "08:00-20:00".parse().unwrap(),
        camera: Some("/dev/video2".into()),
        microphone: "hw:2,0".into(),
        speaker: "hw:1,0".into(),
        ssh_key: Some(ssh_key()),
    };
    assert_eq!(a, [Action::Finish(want.clone())]);
    assert_eq!(w.step(), Step::Joining);
    assert_eq!(w.join_state(), &JoinState::Working);
    // No way back while joining.
    assert!(feed(&mut w, [k(Key::Esc), k(Key::Enter)]).is_empty());
    assert_eq!(w.step(), Step::Joining);

    feed(
        &mut w,
        [Input::Outcome(Err(
            "cannot reach 203.0.113.7:51820: no answer".into(),
        ))],
    );
    assert!(screen(&w, 80, 25).contains("cannot reach 203.0.113.7:51820"));
    let a = feed(&mut w, [k(Key::Enter)]);
    assert_eq!(a, [Action::Finish(want.clone())]);
    feed(
        &mut w,
        [Input::Outcome(Ok("joined as fablab-nantes".into()))],
    );
    assert_eq!(
        w.join_state(),
        &JoinState::Joined("joined as fablab-nantes".into())
    );
    assert!(feed(&mut w, [k(Key::Esc), k(Key::Enter)]).is_empty());

    // The files: the overlay writes window.toml on redeem; the rest is here.
    let files = answers_to_files(&want, Some(&own())).unwrap();
    assert_eq!(files.window, None);
    assert_eq!(files.open_hours.to_string(), "08:00-20:00");
    assert_eq!(files.authorized_keys, Some(format!("{}\n", ssh_key())));
    assert_eq!(
        files.media.phone_args(),
        [
            "--video-source",
            "/dev/video2",
            "--audio-source",
            "hw:2,0",
            "--audio-sink",
            "hw:1,0"
        ]
    );
}

#[test]
fn joins_with_a_roster_file_end_to_end() {
    let mut w = wizard();
    let mut all = feed(&mut w, [devices(), k(Key::Enter)]);
    all.extend(feed(&mut w, typed("fablab-nantes")));
    all.extend(feed(&mut w, [k(Key::Enter), k(Key::Down), k(Key::Enter)]));
    assert_eq!(w.step(), Step::RosterFile);
    assert!(screen(&w, 80, 25).contains("Looking for USB sticks"));
    feed(&mut w, [k(Key::Enter)]);
    assert!(w.message().unwrap().starts_with("no roster file found"));
    feed(&mut w, [usb_rosters()]);
    // The first file is not a roster: its error shows, Enter does not go on.
    let s = screen(&w, 80, 25);
    assert!(s.contains("/media/usb0/notes.toml:1: key `member`"), "{s}");
    feed(&mut w, [k(Key::Enter)]);
    assert_eq!(w.step(), Step::RosterFile);
    feed(&mut w, [k(Key::Down)]);
    let s = screen(&w, 80, 25);
    assert!(
        s.contains("This roster has this window as fablab-nantes"),
        "{s}"
    );
    // The list is refreshed (a second stick): the choice stays on the same file.
    let Input::UsbRosters(mut files) = usb_rosters() else {
        unreachable!()
    };
    files.insert(0, (PathBuf::from("/media/usb1/a.toml"), "x".into()));
    feed(&mut w, [Input::UsbRosters(files)]);
    feed(&mut w, [k(Key::Enter)]);
    assert_eq!(w.step(), Step::OpenHours);
    all.extend(feed(&mut w, [k(Key::Enter)]));
    assert_eq!(w.step(), Step::Camera);
    // "No camera": no probe.
    let a = feed(&mut w, [k(Key::Down), k(Key::Down), k(Key::Down)]);
    assert_eq!(a, [Action::ProbeCamera("/dev/video2".into())]);
    assert!(screen(&w, 80, 25).contains("only sound"));
    all.extend(feed(&mut w, [k(Key::Enter), k(Key::Enter)]));
    all.extend(feed(&mut w, [k(Key::Enter)]));
    assert_eq!(w.step(), Step::SshKey);
    all.extend(feed(&mut w, [k(Key::Enter), k(Key::Enter)]));
    let answers = match all.last() {
        Some(Action::Finish(a)) => a.clone(),
        other => panic!("{other:?}"),
    };
    assert_eq!(finishes(&all), 1);
    assert_eq!(answers.camera, None);
    assert_eq!(answers.ssh_key, None);
    assert_eq!(answers.open_hours, OpenHours::Always);
    assert_eq!(
        answers.join,
        Join::Roster {
            path: "/media/usb0/roster.toml".into(),
            text: window::roster_to_toml(&roster())
        }
    );

    let files = answers_to_files(&answers, Some(&own())).unwrap();
    let config = files.window.unwrap();
    let toml = window_text(&config, Some(&own())).unwrap();
    assert_eq!(
        window::parse(Path::new("w"), &toml, Some(&own())).unwrap(),
        config
    );
    assert_eq!(config.name, "fablab-nantes");
    assert_eq!(
        config.roster,
        roster(),
        "the signed roster is kept as it came"
    );
    assert_eq!(files.authorized_keys, None);
    assert_eq!(files.media.phone_args()[1], "none");
    // The own key check is passed through.
    let e = answers_to_files(&answers, Some(&PublicKey([33; 32]))).unwrap_err();
    assert!(e.contains("made for another window"), "{e}");
}

#[test]
fn empty_and_malformed_names_are_refused() {
    let mut w = wizard();
    feed(&mut w, [k(Key::Enter)]);
    for (text, want) in [
        ("", "the name cannot be empty"),
        ("   ", "the name cannot be empty"),
        (
            "Fablab",
            "the name `Fablab` contains 'F' (names are lowercase)",
        ),
        ("-lab", "the name `-lab` starts with `-`"),
    ] {
        feed(&mut w, [k(Key::ClearField)]);
        feed(&mut w, typed(text));
        let a = feed(&mut w, [k(Key::Enter)]);
        assert!(a.is_empty());
        assert_eq!(w.step(), Step::Name);
        let m = w.message().unwrap();
        assert!(m.starts_with(want), "{m}");
        assert!(screen(&w, 80, 25).contains(want));
        // Typing clears the message.
        feed(&mut w, typed("x"));
        assert_eq!(w.message(), None);
    }
}

#[test]
fn a_mistyped_code_says_typo() {
    let code = invitation().encode();
    // One character changed in the middle.
    let mut chars: Vec<char> = code.chars().collect();
    chars[60] = if chars[60] == 'A' { 'B' } else { 'A' };
    let bad: String = chars.into_iter().collect();
    let mut w = at_code();
    feed(&mut w, typed(&bad));
    // No red while typing.
    assert!(!screen(&w, 80, 25).contains("typo"));
    let a = feed(&mut w, [k(Key::Enter)]);
    assert!(a.is_empty());
    assert_eq!(w.step(), Step::InvitationCode);
    assert_eq!(w.message(), Some("the code has a typo: check it again"));
    assert!(screen(&w, 80, 25).contains("the code has a typo: check it again"));

    let mut w = at_code();
    feed(&mut w, typed("EWIN1-ABCDE"));
    feed(&mut w, [k(Key::Enter)]);
    assert_eq!(
        w.message(),
        Some("the code is too short: part of it is missing, check it again")
    );
    let mut w = at_code();
    feed(&mut w, [k(Key::Enter)]);
    assert_eq!(
        w.message(),
        Some("type the invitation code: it starts with EWIN1-")
    );
    feed(&mut w, typed("hello"));
    feed(&mut w, [k(Key::Enter)]);
    assert_eq!(
        w.message(),
        Some("this is not an invitation code: those start with EWIN1-")
    );
}

#[test]
fn an_expired_code_is_refused_with_its_date() {
    let inv = invitation();
    let expiry = u64::from(inv.expires_unix);
    let mut w = at_code();
    feed(
        &mut w,
        [Input::Now(expiry + 60), Input::Paste(inv.encode())],
    );
    // A complete code is judged at once.
    assert!(screen(&w, 80, 25).contains("this invitation expired on"));
    let a = feed(&mut w, [k(Key::Enter)]);
    assert!(a.is_empty());
    assert_eq!(w.step(), Step::InvitationCode);
    assert_eq!(
        w.message(),
        Some(
            "this invitation expired on 2026-01-01 01:00 UTC (this window's clock says \
             2026-01-01 01:01 UTC): ask the inviting window for a new code"
        )
    );
    // Valid when typed, expired by the time of the summary: no Finish.
    let mut w = at_hours(&inv.encode());
    let mut all = feed(&mut w, enters(5));
    assert_eq!(w.step(), Step::Summary);
    all.extend(feed(&mut w, [Input::Now(expiry), k(Key::Enter)]));
    assert_eq!(finishes(&all), 0);
    assert_eq!(w.step(), Step::Summary);
    let m = w.message().unwrap();
    assert!(
        m.starts_with("step 4 (Invitation code): this invitation expired on"),
        "{m}"
    );
}

#[test]
fn bad_open_hours_are_refused() {
    let mut w = at_hours(&invitation().encode());
    for (text, want) in [
        (
            "8-20",
            "open hours `8-20`: expected \"always\" or \"HH:MM-HH:MM\"",
        ),
        ("08:00-24:00", "(hours 00 to 23, minutes 00 to 59"),
        ("10:00-10:00", "starts and ends at the same time"),
        ("", "the open hours cannot be empty"),
    ] {
        feed(&mut w, [k(Key::ClearField)]);
        feed(&mut w, typed(text));
        let a = feed(&mut w, [k(Key::Enter)]);
        assert!(a.is_empty());
        assert_eq!(w.step(), Step::OpenHours);
        let m = w.message().unwrap();
        assert!(m.contains(want), "{m}");
    }
    feed(&mut w, [k(Key::ClearField)]);
    feed(&mut w, typed(" Always "));
    feed(&mut w, [k(Key::Enter)]);
    assert_eq!(w.step(), Step::Camera);
}

#[test]
fn a_bad_ssh_key_is_refused() {
    let mut w = at_hours(&invitation().encode());
    let mut all = feed(&mut w, enters(4));
    assert_eq!(w.step(), Step::SshKey);
    feed(&mut w, typed("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5!!"));
    all.extend(feed(&mut w, [k(Key::Enter)]));
    assert_eq!(w.step(), Step::SshKey);
    assert!(w
        .message()
        .unwrap()
        .starts_with("the key is not valid base64"));
    assert_eq!(finishes(&all), 0);
}

#[test]
fn ssh_key_lines() {
    let blob = ed25519_blob("ssh-ed25519", 32);
    assert_eq!(check_ssh_key(""), Ok(None));
    assert_eq!(check_ssh_key("  \t "), Ok(None));
    assert_eq!(
        check_ssh_key(&format!(" ssh-ed25519   {blob}  a b \n")),
        Ok(Some(format!("ssh-ed25519 {blob} a b")))
    );
    assert_eq!(
        check_ssh_key(&format!("ssh-ed25519 {blob}")),
        Ok(Some(format!("ssh-ed25519 {blob}")))
    );
    let rsa = ed25519_blob("ssh-rsa", 257);
    assert!(check_ssh_key(&format!("ssh-rsa {rsa} me")).is_ok());
    let err = |s: &str| check_ssh_key(s).unwrap_err();
    assert!(err("ssh-dss AAAA").starts_with("`ssh-dss` is not an SSH public key type"));
    assert!(err(&blob).contains("is not an SSH public key type"));
    assert!(err("ssh-ed25519").starts_with("the key itself is missing"));
    assert!(err("ssh-ed25519 ****").starts_with("the key is not valid base64"));
    assert!(err(&format!("ssh-rsa {blob}")).contains("says \"ssh-ed25519\" inside"));
    assert!(err(&format!("ssh-ed25519 {}", ed25519_blob("ssh-ed25519", 31))).contains("32 bytes"));
    assert!(err("ssh-ed25519 AAAA").contains("too short"));
    assert!(
        err("-----BEGIN OPENSSH PRIVATE KEY----- b3BlbnNzaC1rZXktdjEAAAAA")
            .starts_with("this is a private key")
    );
}

#[test]
fn rosters_without_this_window_are_refused() {
    let path = Path::new("/media/usb0/roster.toml");
    let text = window::roster_to_toml(&roster());
    assert!(check_roster(path, &text, "fablab-nantes", Some(&own())).is_ok());
    assert!(check_roster(path, &text, "fablab-nantes", None).is_ok());
    let e = check_roster(path, &text, "makerspace-x", Some(&own())).unwrap_err();
    assert!(e.starts_with("this roster has this window's key under the name `fablab-nantes`"));
    let e = check_roster(path, &text, "makerspace-x", None).unwrap_err();
    assert!(
        e.starts_with(
            "this roster has no window called `makerspace-x` (it has fablab-lyon, fablab-nantes)"
        ),
        "{e}"
    );
    let e = check_roster(path, &text, "fablab-lyon", Some(&own())).unwrap_err();
    assert!(e.contains("made for another window"), "{e}");
    let bad = "[[member]]\nname = \"a\"\npublic_key = \"x\"\n";
    let e = check_roster(path, bad, "a", None).unwrap_err();
    assert!(
        e.starts_with("/media/usb0/roster.toml:3: key `member[0].public_key`"),
        "{e}"
    );

    // In the wizard: the name typed at step 2 is checked against the chosen roster.
    let mut w = wizard();
    feed(&mut w, [k(Key::Enter)]);
    feed(&mut w, typed("atelier"));
    feed(
        &mut w,
        [
            k(Key::Enter),
            k(Key::Char('2')),
            k(Key::Enter),
            usb_rosters(),
        ],
    );
    feed(&mut w, [k(Key::Down), k(Key::Enter)]);
    assert_eq!(w.step(), Step::RosterFile);
    assert!(w
        .message()
        .unwrap()
        .contains("name this window fablab-nantes"));
}

#[test]
fn patching_the_redeemed_window_file() {
    let config = WindowConfig {
        name: "fablab-nantes".into(),
        listen_port: 51820,
        open_hours: OpenHours::Always,
        partner: None,
        presence_interval_s: 10,
        roster: roster(),
        media: Default::default(),
        button: Default::default(),
    };
    let redeemed = window::to_toml(&config);
    let hours: OpenHours = "22:00-06:00".parse().unwrap();
    let back = patch_redeemed(&redeemed, hours, Some(&own())).unwrap();
    assert_eq!(back.open_hours, hours);
    assert_eq!(back.roster, config.roster);
    assert!(patch_redeemed(&redeemed, hours, Some(&inviter())).is_err());
    assert!(patch_redeemed("[window]\n", hours, None).is_err());
}

#[test]
fn going_back_keeps_the_answers() {
    let code = invitation().encode();
    let mut w = at_hours(&code);
    feed(&mut w, [k(Key::Enter), k(Key::Enter)]);
    assert_eq!(w.step(), Step::Microphone);
    let a = feed(&mut w, [k(Key::Esc)]);
    assert_eq!(
        a,
        [Action::StopLevel, Action::ProbeCamera("/dev/video0".into())]
    );
    let a = feed(&mut w, (0..5).map(|_| k(Key::Esc)));
    assert!(a.is_empty());
    assert_eq!(w.step(), Step::Welcome);
    assert!(feed(&mut w, [k(Key::Esc)]).is_empty());
    assert_eq!(w.step(), Step::Welcome);
    feed(&mut w, enters(3));
    assert_eq!(w.step(), Step::InvitationCode);
    assert!(screen(&w, 200, 60).contains(&code[code.len() - 20..]));
}

#[test]
fn devices_plugged_in_later() {
    let mut w = at_hours(&invitation().encode());
    // No devices yet: "no camera" is the only choice, and microphone/speaker wait.
    let mut w2 = wizard();
    feed(&mut w2, [Input::Now(NOW), k(Key::Enter)]);
    feed(&mut w2, typed("a"));
    feed(&mut w2, [k(Key::Enter), k(Key::Enter)]);
    feed(
        &mut w2,
        [Input::Paste(invitation().encode()), k(Key::Enter)],
    );
    let a = feed(&mut w2, [k(Key::Enter)]);
    assert!(a.is_empty());
    assert!(screen(&w2, 80, 25).contains("Looking for cameras"));
    // A camera appears while on the camera step: it is chosen and probed.
    let a = feed(&mut w2, [devices()]);
    assert_eq!(a, [Action::ProbeCamera("/dev/video0".into())]);
    feed(&mut w2, [k(Key::Enter)]);
    // The chosen microphone is unplugged: the next one is measured.
    let Input::Devices {
        cameras, speakers, ..
    } = devices()
    else {
        unreachable!()
    };
    let a = feed(
        &mut w2,
        [Input::Devices {
            cameras: cameras.clone(),
            microphones: vec![dev("hw:2,0", "USB Camera microphone")],
            speakers: speakers.clone(),
        }],
    );
    assert_eq!(a, [Action::StartLevel("hw:2,0".into())]);
    let a = feed(
        &mut w2,
        [Input::Devices {
            cameras,
            microphones: vec![],
            speakers: vec![],
        }],
    );
    assert_eq!(a, [Action::StopLevel]);
    feed(&mut w2, [k(Key::Enter)]);
    assert_eq!(w2.step(), Step::Microphone);
    assert_eq!(
        w2.message(),
        Some("no microphone was found: plug one in (USB); the list updates by itself")
    );

    // "No camera" chosen stays chosen when the list changes.
    feed(&mut w, [k(Key::Enter), k(Key::Down), k(Key::Down)]);
    feed(&mut w, [devices()]);
    feed(&mut w, [k(Key::Esc), k(Key::Enter)]);
    feed(
        &mut w,
        [k(Key::Enter), k(Key::Enter), k(Key::Enter), k(Key::Enter)],
    );
    assert_eq!(w.answers().unwrap().camera, None);
}

#[test]
fn text_fields_edit_and_scroll() {
    let mut f = TextField::default();
    for c in "abc".chars() {
        f.edit(Key::Char(c));
    }
    f.edit(Key::Left);
    f.edit(Key::Backspace);
    assert_eq!((f.text.as_str(), f.cursor), ("ac", 1));
    f.edit(Key::Delete);
    assert_eq!(f.text, "a");
    f.edit(Key::Home);
    f.edit(Key::Char('é'));
    f.edit(Key::End);
    f.edit(Key::Char('\u{7}'));
    assert_eq!((f.text.as_str(), f.cursor), ("éa", 2));
    f.edit(Key::ClearField);
    assert_eq!((f.text.as_str(), f.cursor), ("", 0));

    let f = TextField::with("0123456789");
    assert_eq!(f.visible(20), ("0123456789".into(), 10));
    assert_eq!(f.visible(5), ("…789".into(), 4));
    assert_eq!(f.visible(0), (String::new(), 0));
    let f = TextField {
        text: "0123456789".into(),
        cursor: 0,
    };
    assert_eq!(f.visible(5), ("0123…".into(), 0));

    // A pasted 119-character code on 80 columns: the end is shown.
    let code = invitation().encode();
    let mut w = at_code();
    feed(&mut w, [Input::Paste(code.clone())]);
    let s = screen(&w, 80, 25);
    let row = s.lines().find(|l| l.contains('…')).expect(&s);
    assert!(row.contains(&code[code.len() - 40..]), "{row}");
    assert!(!row.contains(&code[..20]), "{row}");
    let mut term = Terminal::new(TestBackend::new(80, 25)).unwrap();
    term.draw(|f| render(f, &w)).unwrap();
    let cursor = term.get_cursor_position().unwrap();
    assert_eq!((cursor.x, cursor.y), (77, 7));
}

#[test]
fn errors_are_drawn_in_red() {
    let mut w = wizard();
    feed(&mut w, [k(Key::Enter), k(Key::Enter)]);
    let mut term = Terminal::new(TestBackend::new(80, 25)).unwrap();
    term.draw(|f| render(f, &w)).unwrap();
    let buf = term.backend().buffer();
    let (x, y) = (0..25)
        .flat_map(|y| (0..80).map(move |x| (x, y)))
        .find(|&(x, y)| {
            buf.cell((x, y)).unwrap().symbol() == "t"
                && (x..x + 8)
                    .map(|x| buf.cell((x, y)).unwrap().symbol())
                    .collect::<String>()
                    == "the name"
        })
        .unwrap();
    assert_eq!(buf.cell((x, y)).unwrap().fg, Color::LightRed);
}

#[test]
fn wrapping() {
    assert_eq!(wrap("a bb ccc", 4), ["a bb", "ccc"]);
    assert_eq!(wrap("abcdefghij", 4), ["abcd", "efgh", "ij"]);
    assert_eq!(wrap("x abcdefghij", 4), ["x", "abcd", "efgh", "ij"]);
    assert_eq!(wrap("a\n\nb", 4), ["a", "", "b"]);
    assert!(wrap("abc", 0).is_empty());
    assert_eq!(utc(NOW), "2026-01-01 00:00 UTC");
    assert_eq!(utc(0), "1970-01-01 00:00 UTC");
    assert_eq!(utc(951_825_600 + 3661), "2000-02-29 13:01 UTC");
    assert_eq!(utc(u64::from(u32::MAX)), "2106-02-07 06:28 UTC");
}

/// Lines are measured in terminal columns, not characters: 日, 本, 語 and 🙂 take two each.
#[test]
fn wide_characters_wrap_by_width() {
    assert_eq!(wrap("日本語", 4), ["日本", "語"]);
    assert_eq!(wrap("a 日本", 4), ["a", "日本"]);
    assert_eq!(wrap("日本語 テスト", 6), ["日本語", "テスト"]);
    assert_eq!(wrap("🙂🙂🙂 ok", 5), ["🙂🙂", "🙂 ok"]);
    // A character wider than the line still gets a line of its own.
    assert_eq!(wrap("日本", 1), ["日", "本"]);
    assert_eq!(wrap("日本語\n\nab", 4), ["日本", "語", "", "ab"]);
    assert_eq!(crate::view::wrap_words("a 日本", 4), ["a", "日本"]);
}

#[test]
fn keys_from_crossterm() {
    let ev = |code, mods| KeyEvent::new(code, mods);
    assert_eq!(
        Key::from_crossterm(&ev(KeyCode::Char('a'), KeyModifiers::NONE)),
        Some(Key::Char('a'))
    );
    assert_eq!(
        Key::from_crossterm(&ev(KeyCode::Char('A'), KeyModifiers::SHIFT)),
        Some(Key::Char('A'))
    );
    assert_eq!(
        Key::from_crossterm(&ev(KeyCode::Char('u'), KeyModifiers::CONTROL)),
        Some(Key::ClearField)
    );
    assert_eq!(
        Key::from_crossterm(&ev(KeyCode::Char('c'), KeyModifiers::CONTROL)),
        None
    );
    assert_eq!(
        Key::from_crossterm(&ev(KeyCode::Enter, KeyModifiers::NONE)),
        Some(Key::Enter)
    );
    let mut release = ev(KeyCode::Enter, KeyModifiers::NONE);
    release.kind = KeyEventKind::Release;
    assert_eq!(Key::from_crossterm(&release), None);
}

#[test]
fn debug_never_shows_a_code() {
    let code = invitation().encode();
    let mut w = at_hours(&code);
    let a = feed(&mut w, enters(6));
    let printed = format!("{a:?} {:?}", Input::Paste(code.clone()));
    assert_eq!(finishes(&a), 1, "{printed}");
    let body = &code[6..30];
    assert!(!printed.contains(body), "{printed}");
    assert!(printed.contains("Invitation { code: .. }"), "{printed}");
}

/// A stand-in for the QR module's output: 37 columns by 19 rows of half blocks.
fn fake_qr() -> Vec<String> {
    let mut x: u32 = 0x2545_f491;
    (0..19)
        .map(|_| {
            (0..37)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 17;
                    x ^= x << 5;
                    [' ', '▀', '▄', '█'][(x % 4) as usize]
                })
                .collect()
        })
        .collect()
}

/// Every screen the snapshots show, by name.
fn screens() -> Vec<(&'static str, Wizard)> {
    let code = fixed_invitation().encode();
    let mut out = Vec::new();
    let mut w = wizard();
    w.qr = Some(fake_qr());
    feed(&mut w, [Input::Now(NOW), devices()]);
    out.push(("01_welcome", clone(&w, &[])));
    feed(&mut w, [k(Key::Enter), k(Key::Enter)]);
    out.push(("02_name_empty", clone(&w, &[])));
    feed(&mut w, typed("fablab-nantes"));
    feed(&mut w, [k(Key::Enter)]);
    out.push(("03_join_method", clone(&w, &[])));
    let mut r = clone(
        &w,
        &[k(Key::Down), k(Key::Enter), usb_rosters(), k(Key::Down)],
    );
    out.push(("04_roster_file", clone(&r, &[])));
    feed(&mut r, [k(Key::Up)]);
    out.push(("04_roster_file_bad", r));
    feed(&mut w, [k(Key::Enter)]);
    let mut typo: Vec<char> = code.chars().collect();
    typo[60] = if typo[60] == 'A' { 'B' } else { 'A' };
    let typo: String = typo.into_iter().collect();
    out.push((
        "04_invitation_typo",
        clone(&w, &[Input::Paste(typo), k(Key::Enter)]),
    ));
    feed(&mut w, [Input::Paste(code)]);
    out.push(("04_invitation_valid", clone(&w, &[])));
    out.push((
        "04_invitation_expired",
        clone(&w, &[Input::Now(1_767_312_000 + 3600), k(Key::Enter)]),
    ));
    feed(&mut w, [k(Key::Enter)]);
    out.push((
        "05_open_hours_bad",
        clone(&w, &[k(Key::ClearField)])
            .with(&typed("8:00-20:00"))
            .with(&[k(Key::Enter)]),
    ));
    feed(&mut w, [k(Key::ClearField)]);
    feed(&mut w, typed("08:00-20:00"));
    feed(&mut w, [k(Key::Enter), Input::CameraProbe { fps: 30.0 }]);
    out.push(("06_camera", clone(&w, &[])));
    feed(&mut w, [k(Key::Enter), Input::Level(-23.0)]);
    out.push(("07_microphone", clone(&w, &[])));
    feed(&mut w, [k(Key::Enter), k(Key::Char('t'))]);
    out.push(("08_speaker", clone(&w, &[])));
    feed(&mut w, [k(Key::Enter)]);
    out.push((
        "09_ssh_key_bad",
        clone(
            &w,
            &[
                Input::Paste("ssh-dss AAAAB3NzaC1kc3M me".into()),
                k(Key::Enter),
            ],
        ),
    ));
    feed(&mut w, [Input::Paste(ssh_key()), k(Key::Enter)]);
    out.push(("10_summary", clone(&w, &[])));
    feed(&mut w, [k(Key::Enter)]);
    out.push(("11_joining", clone(&w, &[])));
    out.push((
        "11_join_failed",
        clone(
            &w,
            &[Input::Outcome(Err(
                "the inviting window at 203.0.113.7:51820 did not answer within 30 s: \
                 check this window's network cable"
                    .into(),
            ))],
        ),
    ));
    out.push((
        "11_joined",
        clone(
            &w,
            &[Input::Outcome(Ok(
                "This window joined the network as fablab-nantes.".into(),
            ))],
        ),
    ));
    out
}

/// A wizard in the same state, with more inputs (the real one has no Clone: no copies of
/// codes lying around outside tests).
fn clone(w: &Wizard, more: &[Input]) -> Wizard {
    let mut c = Wizard {
        qr: w.qr.clone(),
        public_key: w.public_key.clone(),
        step: w.step,
        message: w.message.clone(),
        now_unix: w.now_unix,
        name: w.name.clone(),
        method: w.method,
        code: w.code.clone(),
        rosters: w
            .rosters
            .iter()
            .map(|r| RosterFile {
                path: r.path.clone(),
                text: r.text.clone(),
                parsed: r.parsed.clone(),
            })
            .collect(),
        rosters_seen: w.rosters_seen,
        roster_sel: w.roster_sel,
        hours: w.hours.clone(),
        devices_seen: w.devices_seen,
        cameras: w.cameras.clone(),
        camera_sel: w.camera_sel,
        fps: w.fps,
        microphones: w.microphones.clone(),
        microphone_sel: w.microphone_sel,
        level: w.level,
        speakers: w.speakers.clone(),
        speaker_sel: w.speaker_sel,
        tone_played: w.tone_played,
        ssh: w.ssh.clone(),
        joining: w.joining.clone(),
    };
    feed(&mut c, more.iter().cloned());
    c
}

impl Wizard {
    fn with(mut self, inputs: &[Input]) -> Wizard {
        feed(&mut self, inputs.iter().cloned());
        self
    }
}

/// Compares each screen at 80×25 and 200×60 with `src/snapshots/`; with
/// `UPDATE_SNAPSHOTS=1` writes them instead (review the files before committing).
#[test]
fn snapshots() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/snapshots");
    let update = std::env::var_os("UPDATE_SNAPSHOTS").is_some();
    let mut failed = Vec::new();
    for (name, w) in screens() {
        for (width, height) in [(80, 25), (200, 60)] {
            let got = screen(&w, width, height);
            let file = dir.join(format!("wizard_{name}_{width}x{height}.txt"));
            if update {
                std::fs::create_dir_all(&dir).unwrap();
                std::fs::write(&file, &got).unwrap();
            } else {
                let want = std::fs::read_to_string(&file).unwrap_or_default();
                if want != got {
                    failed.push(format!("{}:\n{got}", file.display()));
                }
            }
        }
    }
    assert!(
        failed.is_empty(),
        "screens differ from their snapshots (UPDATE_SNAPSHOTS=1 rewrites them):\n{}",
        failed.join("\n")
    );
}

#[test]
fn no_panic_at_any_small_size() {
    let screens = screens();
    for width in 0..=45 {
        for height in 0..=14 {
            for (_, w) in &screens {
                screen(w, width, height);
            }
        }
    }
    for (width, height) in [(1, 1), (1, 200), (300, 1), (2, 2), (19, 30), (20, 5)] {
        for (_, w) in &screens {
            screen(w, width, height);
        }
    }
}

#[test]
fn the_devices_go_into_media_and_the_video_settings_stay() {
    let mut config = WindowConfig {
        name: "fablab-nantes".into(),
        listen_port: 51820,
        open_hours: OpenHours::Always,
        partner: None,
        presence_interval_s: 10,
        roster: roster(),
        media: window::Media {
            camera: Some("/dev/video9".into()),
            video_size: Some("480x270".into()),
            ..Default::default()
        },
        button: Default::default(),
    };
    let devices = MediaSettings {
        camera: None,
        microphone: "hw:1".into(),
        speaker: "default".into(),
    };
    devices.apply(&mut config);
    assert_eq!(config.media.camera.as_deref(), Some("none"));
    assert_eq!(config.media.microphone.as_deref(), Some("hw:1"));
    assert_eq!(config.media.speaker.as_deref(), Some("default"));
    assert_eq!(config.media.video_size.as_deref(), Some("480x270"));
    let text = window_text(&config, Some(&own())).unwrap();
    assert!(text.contains("[media]"), "{text}");
}

#[test]
fn the_first_window_starts_a_new_network() {
    let mut w = wizard();
    feed(&mut w, [Input::Now(NOW), devices()]);
    feed(&mut w, [k(Key::Enter)]);
    feed(&mut w, typed("fablab-lyon"));
    feed(&mut w, [k(Key::Enter)]);
    assert_eq!(w.step(), Step::JoinMethod);
    // ↓ ↓ reaches the third choice and stays there; ↑ goes back one; 3 picks it
    feed(&mut w, [k(Key::Down), k(Key::Down), k(Key::Down)]);
    assert!(
        screen(&w, 80, 25).contains("> 3  Start a new network"),
        "{}",
        screen(&w, 80, 25)
    );
    feed(&mut w, [k(Key::Up)]);
    assert!(screen(&w, 80, 25).contains("> 2  Read a roster file"));
    feed(&mut w, [k(Key::Char('3'))]);
    // nothing to type or choose: on to the open hours, and back to the choice
    feed(&mut w, [k(Key::Enter)]);
    assert_eq!(w.step(), Step::OpenHours);
    feed(&mut w, [k(Key::Esc)]);
    assert_eq!(w.step(), Step::JoinMethod);
    feed(&mut w, [k(Key::Enter)]);
    assert_eq!(w.step(), Step::OpenHours);
    for _ in 0..5 {
        feed(&mut w, [k(Key::Enter)]);
    }
    assert_eq!(w.step(), Step::Summary);
    let s = screen(&w, 80, 25);
    assert!(s.contains("a new network"), "{s}");
    let a = feed(&mut w, [k(Key::Enter)]);
    let [Action::Finish(answers)] = &a[..] else {
        panic!("{a:?}")
    };
    assert_eq!(answers.join, Join::Found);
    assert_eq!(answers.name, "fablab-lyon");
    // the overlay writes the window file (`ewindow-overlay found`), the rest is here
    let files = answers_to_files(answers, Some(&own())).unwrap();
    assert_eq!(files.window, None);
    assert_eq!(files.name, "fablab-lyon");
}
