//! Snapshot and property tests of the console's view.
//!
//! Snapshots are the rendered buffer as text (trailing spaces trimmed) in
//! `src/view/snapshots/NAME_WxH.txt`. A missing snapshot is written and the test fails, so
//! a new one is always looked at; `UPDATE_SNAPSHOTS=1 cargo test` rewrites them all (then
//! review the diff).

use std::path::PathBuf;

use ratatui::backend::TestBackend;
use ratatui::buffer::Cell;
use ratatui::Terminal;

use super::*;

const KEY: &str = "yAnz5TF+lXXJte14tji3zlMNq+hd2rYUIgJBgB3fBmk=";

/// An invitation code to an IPv4 endpoint: 95 Crockford characters (not a valid one:
/// the view does not read it).
fn invitation_code() -> String {
    const ALPHABET: &[u8] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";
    let mut x: u32 = 12345;
    let chars: Vec<u8> = (0..95)
        .map(|_| {
            x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
            ALPHABET[(x >> 16) as usize % 32]
        })
        .collect();
    let groups: Vec<String> = chars
        .chunks(5)
        .map(|c| String::from_utf8(c.to_vec()).unwrap())
        .collect();
    format!("EWIN1-{}", groups.join("-"))
}

fn member(name: &str, online: bool, rtt: Option<f64>, hs: Option<u64>) -> MemberView {
    MemberView {
        name: name.into(),
        online,
        rtt_ms: rtt,
        handshake_age_s: hs,
        path: None,
    }
}

fn service(name: &str, state: &str, restarts: u32) -> ServiceView {
    ServiceView {
        name: name.into(),
        state: state.into(),
        restarts,
    }
}

fn open() -> Model {
    Model {
        window_name: Some("lab-paris".into()),
        state: WindowState::Open {
            with: "fablab-nantes".into(),
        },
        members: vec![
            MemberView {
                path: Some("direct".into()),
                ..member("fablab-nantes", true, Some(23.4), Some(4))
            },
            MemberView {
                path: Some("via relay fablab-nantes".into()),
                ..member("hackerspace-gent", true, Some(41.0), Some(95))
            },
            MemberView {
                path: Some("unreachable".into()),
                ..member("tetalab", false, None, Some(7_300))
            },
        ],
        call: Some(CallView {
            peer: "fablab-nantes".into(),
            audio_codec: Some("opus".into()),
            video_codec: Some("vp8".into()),
            width: Some(1280),
            height: Some(720),
            fps: Some(29.97),
            bitrate_kbps: Some(1850.0),
            loss_pct: Some(0.2),
            rtt_ms: Some(23.0),
            duration_s: 754.0,
        }),
        services: vec![
            service("wireguard-go", "running", 0),
            service("overlay", "running", 0),
            service("phone", "running", 1),
            service("console", "running", 0),
            service("sshd", "running", 0),
        ],
        logs: (0..14)
            .map(|i| {
                let what = [
                    "phone: OPTIONS to tetalab: timeout",
                    "overlay: roster v12 pushed to 3 members",
                    "phone: call with fablab-nantes established (opus, vp8 1280x720)",
                    "init: console started (pid 412)",
                ][i % 4];
                let t = i * 23;
                format!("14:{:02}:{:02} {what}", t / 60, t % 60)
            })
            .collect(),
        waiting_for: Vec::new(),
        clock: "14:05".into(),
        public_key: Some(KEY.into()),
        invitation: None,
        message: None,
    }
}

fn connecting() -> Model {
    Model {
        state: WindowState::Connecting {
            to: "hackerspace-gent".into(),
        },
        call: None,
        message: Some("calling hackerspace-gent...".into()),
        ..open()
    }
}

fn waiting() -> Model {
    Model {
        state: WindowState::Waiting,
        call: None,
        members: vec![
            member("fablab-nantes", false, None, Some(400)),
            member("tetalab", false, None, None),
        ],
        ..open()
    }
}

fn closed() -> Model {
    Model {
        state: WindowState::ClosedUntil { hh: 8, mm: 0 },
        call: None,
        ..open()
    }
}

fn curtain() -> Model {
    Model {
        state: WindowState::Curtain,
        call: None,
        message: Some("curtain closed".into()),
        ..open()
    }
}

fn setting_up() -> Model {
    Model {
        window_name: None,
        state: WindowState::SettingUp,
        members: Vec::new(),
        call: None,
        logs: vec![
            "14:01:07 init: overlay started (pid 233)".into(),
            "14:01:07 overlay: identity key made".into(),
            "14:01:07 overlay: no window.toml yet, waiting for an invitation".into(),
        ],
        ..open()
    }
}

fn setting_up_no_key() -> Model {
    Model {
        public_key: None,
        waiting_for: vec!["ewindow-overlay (/run/ewindow/overlay.sock)".into()],
        ..setting_up()
    }
}

/// An invitation on the screen for makerspace-lyon, until 15:00 UTC.
fn shown(code: String) -> ShownInvitation {
    ShownInvitation {
        code,
        name: "makerspace-lyon".into(),
        expires_unix: 1_700_000_000 / 86_400 * 86_400 + 15 * 3600,
    }
}

fn invitation() -> Model {
    Model {
        invitation: Some(shown(invitation_code())),
        message: Some("invitation for makerspace-lyon, valid 24 h".into()),
        ..open()
    }
}

fn failing() -> Model {
    Model {
        state: WindowState::Waiting,
        call: None,
        members: vec![member("fablab-nantes", false, None, None)],
        services: vec![
            service("wireguard-go", "running", 0),
            service("overlay", "running", 0),
            service("phone", "failed", 5),
            service("console", "running", 0),
            service("sshd", "backoff", 2),
        ],
        ..open()
    }
}

fn sockets_missing() -> Model {
    Model {
        state: WindowState::Waiting,
        call: None,
        members: Vec::new(),
        services: Vec::new(),
        logs: Vec::new(),
        waiting_for: vec![
            "ewindow-init (/run/ewindow/init.sock)".into(),
            "ewindow-phone (/run/ewindow/phone.sock)".into(),
            "ewindow-overlay (/run/ewindow/overlay.sock)".into(),
        ],
        ..open()
    }
}

/// Every snapshot case: name, model, screen.
fn cases() -> Vec<(&'static str, Model, Screen)> {
    vec![
        ("main_open", open(), Screen::Main),
        ("main_connecting", connecting(), Screen::Main),
        ("main_waiting", waiting(), Screen::Main),
        ("main_closed", closed(), Screen::Main),
        ("main_curtain", curtain(), Screen::Main),
        ("main_setting_up", setting_up(), Screen::Main),
        ("main_setting_up_no_key", setting_up_no_key(), Screen::Main),
        ("main_invitation", invitation(), Screen::Main),
        ("main_failing", failing(), Screen::Main),
        ("main_sockets_missing", sockets_missing(), Screen::Main),
        ("logs", open(), Screen::Logs),
        ("logs_sockets_missing", sockets_missing(), Screen::Logs),
        ("help", open(), Screen::Help),
    ]
}

fn draw(model: &Model, screen: Screen, w: u16, h: u16) -> Buffer {
    let mut terminal = Terminal::new(TestBackend::new(w, h)).unwrap();
    terminal.draw(|f| render(f, model, screen)).unwrap();
    terminal.backend().buffer().clone()
}

/// The buffer as text, one line a row, trailing spaces trimmed.
fn text(buf: &Buffer) -> String {
    let mut out = String::new();
    for y in 0..buf.area.height {
        let mut line = String::new();
        for x in 0..buf.area.width {
            line.push_str(buf[(x, y)].symbol());
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

fn snapshot_path(name: &str, w: u16, h: u16) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("src/view/snapshots")
        .join(format!("{name}_{w}x{h}.txt"))
}

fn check_snapshots(w: u16, h: u16, names: Option<&[&str]>) {
    let update = std::env::var_os("UPDATE_SNAPSHOTS").is_some();
    let mut failures = Vec::new();
    for (name, model, screen) in cases() {
        if names.is_some_and(|n| !n.contains(&name)) {
            continue;
        }
        let got = text(&draw(&model, screen, w, h));
        let path = snapshot_path(name, w, h);
        match std::fs::read_to_string(&path) {
            Ok(want) if !update => {
                if want != got {
                    failures.push(format!("{}: differs; got:\n{got}", path.display()));
                }
            }
            read => {
                std::fs::write(&path, &got).unwrap();
                if read.is_err() {
                    failures.push(format!(
                        "{}: new snapshot written, review it",
                        path.display()
                    ));
                }
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn snapshots_80x25() {
    check_snapshots(80, 25, None);
}

#[test]
fn snapshots_200x60() {
    check_snapshots(200, 60, None);
}

#[test]
fn snapshots_of_other_sizes() {
    check_snapshots(
        120,
        40,
        Some(&["main_open", "main_waiting", "main_setting_up"]),
    );
    check_snapshots(
        20,
        5,
        Some(&["main_open", "main_waiting", "main_setting_up", "help"]),
    );
}

fn contains(buf: &Buffer, needle: &str) -> bool {
    text(buf).contains(needle)
}

#[test]
fn the_headline_says_the_state_at_80x25() {
    for (model, want) in [
        (open(), "Open to fablab-nantes"),
        (connecting(), "Connecting to hackerspace-gent"),
        (waiting(), "Waiting for a window to come online"),
        (closed(), "Closed until 08:00"),
        (curtain(), "Curtain"),
        (setting_up(), "Setting up"),
    ] {
        let buf = draw(&model, Screen::Main, 80, 25);
        // The headline is in the box under the top bar.
        let head: String = (2..4)
            .map(|y| (0..80).map(|x| buf[(x, y)].symbol()).collect::<String>())
            .collect();
        assert!(head.contains(want), "{want}:\n{}", text(&buf));
        assert!(contains(&buf, "next window"));
        assert!(contains(&buf, "14:05"));
    }
}

#[test]
fn the_main_screen_shows_members_call_services_and_log() {
    let buf = draw(&open(), Screen::Main, 80, 25);
    for want in [
        "■ fablab-nantes",
        "online",
        "23 ms",
        "offline",
        "hs 4s",
        "hs 2h",
        "Call with fablab-nantes · 12:34",
        "audio opus",
        "video vp8 1280x720 30 fps",
        "1850 kbit/s",
        "loss 0.2%",
        "rtt 23 ms",
        "wireguard-go  running",
        "phone         running  1 restart",
        "14:04:59 overlay: roster v12 pushed to 3 members",
        " n  next window",
        " ?  help",
    ] {
        assert!(contains(&buf, want), "{want}:\n{}", text(&buf));
    }
    // Wide: the handshake in words.
    let buf = draw(&open(), Screen::Main, 200, 60);
    assert!(contains(&buf, "handshake 4s ago"), "{}", text(&buf));
}

/// Cells of block letters or QR modules in rows `rows`.
fn blocks(buf: &Buffer, rows: std::ops::Range<u16>) -> usize {
    rows.flat_map(|y| (0..buf.area.width).map(move |x| (x, y)))
        .filter(|&(x, y)| matches!(buf[(x, y)].symbol(), "█" | "▀" | "▄"))
        .count()
}

#[test]
fn large_terminals_get_block_letters() {
    for (w, h) in [(120, 40), (200, 60), (240, 67)] {
        for model in [open(), waiting(), closed(), curtain(), connecting()] {
            let buf = draw(&model, Screen::Main, w, h);
            assert!(blocks(&buf, 1..h / 3 + 2) > 100, "{w}x{h}:\n{}", text(&buf));
            // The plain words are there too, under the letters.
            assert!(contains(&buf, &subline(&model)), "{}", text(&buf));
        }
    }
    // Below that, a box.
    let buf = draw(&open(), Screen::Main, 119, 40);
    assert_eq!(blocks(&buf, 0..40), 0);
    assert!(contains(&buf, "╔════"));
}

#[test]
fn a_44_character_key_is_a_version_3_qr_code_that_fits_80x25() {
    let code = make_qr(KEY).unwrap();
    assert_eq!(code.version(), qrcode::Version::Normal(3));
    assert_eq!(code.width(), 29);
    // With the full quiet zone: 37 columns, 19 rows.
    assert_eq!(qr_cells(29, 4), (37, 19));
    // The invitation (dashes dropped) is version 4 at L.
    let dense = format!("EWIN1-{}", invitation_code()[6..].replace('-', ""));
    assert_eq!(dense.len(), 101);
    assert_eq!(
        make_qr(&dense).unwrap().version(),
        qrcode::Version::Normal(4)
    );
}

/// Reads the screen as a camera would: QR cells as they are drawn, everything else the
/// terminal's dark background; 4 pixels a module; and decodes every QR code in it.
fn decode_screen(buf: &Buffer) -> Vec<String> {
    let (w, h) = (usize::from(buf.area.width), usize::from(buf.area.height));
    let mut dark = vec![true; w * 2 * h];
    for y in 0..h {
        for x in 0..w {
            let cell = &buf[(x as u16, y as u16)];
            let is_dark = |c: Color| c != QR_LIGHT;
            let (top, bottom) = match (cell.symbol(), cell.bg) {
                (s, bg) if bg == QR_LIGHT => match s {
                    "█" => (is_dark(cell.fg), is_dark(cell.fg)),
                    "▀" => (is_dark(cell.fg), false),
                    "▄" => (false, is_dark(cell.fg)),
                    _ => (false, false),
                },
                ("▀", _) if cell.fg == QR_LIGHT => (false, true),
                _ => (true, true),
            };
            dark[2 * y * w + x] = top;
            dark[(2 * y + 1) * w + x] = bottom;
        }
    }
    const S: usize = 4;
    let mut img = rqrr::PreparedImage::prepare_from_bitmap(w * S, 2 * h * S, |x, y| {
        dark[(y / S) * w + x / S]
    });
    img.detect_grids()
        .into_iter()
        .filter_map(|g| g.decode().ok().map(|(_, content)| content))
        .collect()
}

#[test]
fn the_public_key_qr_code_decodes_from_the_screen() {
    for (w, h) in [(80, 25), (120, 40), (200, 60)] {
        let buf = draw(&setting_up(), Screen::Main, w, h);
        assert!(blocks(&buf, 0..h) > 100);
        assert_eq!(
            decode_screen(&buf),
            vec![KEY.to_string()],
            "{w}x{h}:\n{}",
            text(&buf)
        );
        assert!(contains(&buf, "yAnz5TF+lXXJte14tji3zl"), "{}", text(&buf));
    }
    // With the message line too.
    let model = Model {
        message: Some("invitation code accepted".into()),
        ..setting_up()
    };
    let buf = draw(&model, Screen::Main, 80, 25);
    assert_eq!(decode_screen(&buf), vec![KEY.to_string()], "{}", text(&buf));
}

#[test]
fn the_invitation_qr_code_decodes_from_the_screen() {
    let code = invitation_code();
    let dense = format!("EWIN1-{}", code[6..].replace('-', ""));
    for (w, h) in [(80, 25), (120, 40), (200, 60)] {
        let buf = draw(&invitation(), Screen::Main, w, h);
        assert_eq!(
            decode_screen(&buf),
            vec![dense.clone()],
            "{w}x{h}:\n{}",
            text(&buf)
        );
        // The code as text, in lines that break after a dash.
        assert!(contains(&buf, &code[..30]), "{}", text(&buf));
    }
}

#[test]
fn without_room_for_the_qr_code_the_key_is_still_there() {
    let buf = draw(&setting_up(), Screen::Main, 58, 25);
    assert!(decode_screen(&buf).is_empty());
    assert!(
        contains(&buf, "a larger terminal shows a QR code"),
        "{}",
        text(&buf)
    );
    let key: String = text(&buf).split_whitespace().collect();
    assert!(key.contains(KEY), "{}", text(&buf));
}

fn all_models() -> Vec<Model> {
    let mut models: Vec<Model> = cases().into_iter().map(|(_, m, _)| m).collect();
    models.push(Model::default());
    models.push(Model {
        window_name: Some("a-very-long-window-name-that-goes-on-and-on".repeat(3)),
        state: WindowState::Open {
            with: "x".repeat(300),
        },
        members: (0..40)
            .map(|i| {
                member(
                    &format!("member-{i}-{}", "y".repeat(i)),
                    i % 2 == 0,
                    Some(f64::NAN),
                    Some(u64::MAX),
                )
            })
            .collect(),
        call: Some(CallView {
            peer: "z".repeat(100),
            duration_s: f64::INFINITY,
            loss_pct: Some(-1.0),
            fps: Some(f64::NAN),
            ..CallView::default()
        }),
        clock: "99:99:99:99".into(),
        logs: vec!["é漢字\u{1b}[2J\ttab".repeat(40); 200],
        message: Some("m".repeat(500)),
        invitation: Some(shown("EWIN1-".to_string() + &"ABCDE-".repeat(60))),
        public_key: Some("k".repeat(2000)),
        ..open()
    });
    models.push(Model {
        state: WindowState::SettingUp,
        window_name: Some("漢".repeat(50)),
        public_key: Some("漢字".repeat(30)),
        invitation: Some(shown("EWIN1-漢字-".repeat(30))),
        ..Model::default()
    });
    models
}

#[test]
fn every_screen_renders_at_every_size() {
    // Through a terminal at the sizes asked for...
    for model in all_models() {
        for screen in [Screen::Main, Screen::Logs, Screen::Help] {
            for (w, h) in [(1, 1), (20, 5), (80, 25), (200, 60)] {
                draw(&model, screen, w, h);
            }
        }
    }
    // ...and straight into buffers of many more.
    let mut sizes = vec![(0, 0), (1, 60), (200, 1), (119, 40), (120, 39), (120, 40)];
    for w in (1..=241).step_by(24) {
        for h in (1..=67).step_by(9) {
            sizes.push((w, h));
        }
    }
    for model in all_models() {
        for screen in [Screen::Main, Screen::Logs, Screen::Help] {
            for &(w, h) in &sizes {
                let mut buf = Buffer::empty(Rect::new(0, 0, w, h));
                Console {
                    model: &model,
                    screen,
                }
                .render(buf.area, &mut buf);
            }
        }
    }
}

#[test]
fn nothing_is_written_outside_the_area() {
    let whole = Rect::new(0, 0, 220, 70);
    let areas = [
        Rect::new(7, 3, 1, 1),
        Rect::new(7, 3, 20, 5),
        Rect::new(11, 5, 80, 25),
        Rect::new(13, 7, 200, 60),
        Rect::new(5, 2, 130, 45),
        // Partly outside the buffer: clipped.
        Rect::new(150, 50, 100, 40),
    ];
    for model in all_models() {
        for screen in [Screen::Main, Screen::Logs, Screen::Help] {
            for area in areas {
                let mut buf = Buffer::filled(whole, Cell::new("¤"));
                Console {
                    model: &model,
                    screen,
                }
                .render(area, &mut buf);
                let inside = area.intersection(whole);
                for pos in whole.positions() {
                    if !inside.contains(pos) {
                        assert_eq!(buf[pos].symbol(), "¤", "{area:?} wrote at {pos:?}");
                    }
                }
            }
        }
    }
}

#[test]
fn control_characters_never_reach_the_terminal() {
    let model = Model {
        window_name: Some("evil\u{1b}]0;x\u{7}".into()),
        logs: vec!["\u{1b}[2Jcleared\r\n\u{9b}31m".into()],
        message: Some("\u{1b}c".into()),
        ..open()
    };
    for screen in [Screen::Main, Screen::Logs] {
        let buf = draw(&model, screen, 80, 25);
        assert!(
            buf.content()
                .iter()
                .all(|c| !c.symbol().chars().any(char::is_control)),
            "{}",
            text(&buf)
        );
        assert!(contains(&buf, "?[2Jcleared??"), "{}", text(&buf));
    }
}

#[test]
fn a_failed_service_is_highlighted() {
    let buf = draw(&failing(), Screen::Main, 80, 25);
    let t = text(&buf);
    let (y, line) = t
        .lines()
        .enumerate()
        .find(|(_, l)| l.contains("phone") && l.contains("FAILED  5 restarts"))
        .expect(&t);
    let x = line.chars().position(|c| c == 'F').unwrap();
    let cell = &buf[(x as u16, y as u16)];
    assert_eq!((cell.fg, cell.bg), (Color::White, Color::Red));
    assert!(t.contains("backoff  2 restarts"), "{t}");
}

#[test]
fn missing_sockets_are_waited_for_not_failed() {
    let buf = draw(&sockets_missing(), Screen::Main, 80, 25);
    let t = text(&buf);
    // Wrapped in their columns.
    for want in [
        "Waiting for ewindow-init",
        "(/run/ewindow/init.sock)...",
        "Waiting for ewindow-phone",
        "(/run/ewindow/phone.sock)...",
        "Waiting for ewindow-overlay (/run/ewindow/overlay.sock)...",
    ] {
        assert!(t.contains(want), "{want}:\n{t}");
    }
    assert!(!t.contains("No services"), "{t}");
    assert!(!t.contains("No other windows"), "{t}");
}

#[test]
fn the_logs_screen_shows_the_newest_lines_that_fit() {
    let model = open();
    let buf = draw(&model, Screen::Logs, 80, 10);
    let t = text(&buf);
    // Top bar, log rule, 7 lines, footer.
    let shown: Vec<&String> = model
        .logs
        .iter()
        .filter(|l| t.contains(l.as_str()))
        .collect();
    assert_eq!(
        shown,
        model.logs[model.logs.len() - 7..]
            .iter()
            .collect::<Vec<_>>(),
        "{t}"
    );
    assert!(t.contains(" l  back"), "{t}");
}

#[test]
fn the_help_screen_explains_the_keys_in_plain_words() {
    let buf = draw(&open(), Screen::Help, 80, 25);
    let t = text(&buf);
    for want in [
        "What is this?",
        "say hello",
        " n   next window",
        " c   curtain",
        " h   hang up",
        " l   logs",
        " ?   help",
        " ?  back",
    ] {
        assert!(t.contains(want), "{want}:\n{t}");
    }
}

#[test]
fn tiny_terminals_still_show_the_state() {
    let buf = draw(&open(), Screen::Main, 20, 5);
    assert!(contains(&buf, "Open to"), "{}", text(&buf));
    let buf = draw(&closed(), Screen::Main, 20, 1);
    assert!(contains(&buf, "Closed until 08:00"), "{}", text(&buf));
}

#[test]
fn text_helpers() {
    assert_eq!(
        wrap_words("Open to fablab-nantes", 10),
        ["Open to", "fablab-nan", "tes"]
    );
    assert_eq!(wrap_words("a b", 0), Vec::<String>::new());
    assert_eq!(wrap_code(KEY, 41), [&KEY[..22], &KEY[22..]]);
    assert_eq!(
        wrap_code("EWIN1-ABCDE-FGHJK", 12),
        ["EWIN1-ABCDE-", "FGHJK"]
    );
    assert_eq!(
        wrap_code("EWIN1-ABCDE-FGHJK", 3),
        ["EWI", "N1-", "ABC", "DE-", "FGH", "JK"]
    );
    assert_eq!(wrap_code("漢字-漢", 1), ["漢", "字", "-", "漢"]);
    assert_eq!(wrap_words("漢字", 1), ["漢", "字"]);
    assert_eq!(age(4), "4s");
    assert_eq!(age(95), "1m");
    assert_eq!(age(7_300), "2h");
    assert_eq!(age(u64::MAX), format!("{}d", u64::MAX / 86_400));
    assert_eq!(duration(754.0), "12:34");
    assert_eq!(duration(3_661.5), "1:01:01");
    assert_eq!(duration(f64::NAN), "0:00");
    assert_eq!(ms(3.25), "3.2 ms");
    assert_eq!(ms(f64::INFINITY), "? ms");
    assert_eq!(clean("a\tb\u{1b}"), "a b?");
}

#[test]
fn a_window_alone_in_its_network_says_how_to_invite() {
    let alone = Model {
        state: WindowState::Waiting,
        members: Vec::new(),
        waiting_for: Vec::new(),
        ..open()
    };
    assert!(
        subline(&alone).contains("ewindowctl invite NAME"),
        "{}",
        subline(&alone)
    );
    let with_others = Model {
        state: WindowState::Waiting,
        ..open()
    };
    assert!(subline(&with_others).contains("connects by itself"));
    // members unknown because the phone is not there yet: not "alone"
    let unknown = Model {
        waiting_for: vec!["ewindow-phone (/run/ewindow/phone.sock)".into()],
        ..alone.clone()
    };
    assert!(!subline(&unknown).contains("invite"));
}
