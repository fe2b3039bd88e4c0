//! Windows in network namespaces on this machine (the lab: `lab/mod.rs`): calls, invitations,
//! `ewindow-init` as a window's PID 1, the window policy, the first-run story.

mod lab;

use std::fs;
use std::os::unix::net::UnixStream;
use std::process::Stdio;
use std::time::{Duration, Instant};

use lab::*;
use serde_json::{json, Value};

/// Two members call each other with audio and video over the overlay (SRTP inside
/// WireGuard); presence and handshakes show in the sockets; a namespace that is not a member
/// cannot reach the SIP port over UDP, and whoever is not a member (or lies about its name)
/// gets 403.
#[test]
fn two_windows_call_over_the_overlay_and_outsiders_are_refused() {
    let mut lab = Lab::new('1');
    let a = lab.host("a");
    let b = lab.host("b");
    let x = lab.host("x");
    lab.roster(&[a, b], 1);
    lab.start_window(a);
    lab.start_window(b);

    let (ok, out, stats) = lab.call(a, "b", 4.0);
    assert!(ok, "call a → b failed: {out}\n{}", lab.log(b, "phone"));
    assert!(decoded(&stats, "audio") > 100, "{stats}");
    assert!(decoded(&stats, "video") > 20, "{stats}");
    assert_eq!(stream(&stats, "audio", "recv")["srtp"], true, "{stats}");

    // Presence over SIP and the WireGuard view.
    let sock = lab.windows[a].phone_sock();
    wait_for("b reachable from a", 10, || {
        let r = ask(&sock, json!({"cmd": "members"}));
        let m = &r["members"][0];
        (m["name"] != "b" || m["reachable"] != true).then(|| r.to_string())
    });
    let peers = ask(&lab.windows[a].overlay_sock(), json!({"cmd": "members"}));
    let pb = &peers["members"][0];
    assert_eq!(pb["name"], "b", "{peers}");
    assert!(pb["last_handshake_age_s"].as_u64().unwrap() < 60, "{peers}");

    // The outsider routes the overlay prefix to a over the underlay (a accepts packets for
    // any of its addresses on any interface): UDP finds no socket (bound to the overlay
    // device), TCP meets the access policy.
    let a_addr = lab.windows[a].overlay_addr();
    let outsider = &lab.windows[x];
    must(&format!(
        "ip -n {} -6 route add fd77:696e:646f::/64 via 2001:db8:77::{}",
        outsider.ns, lab.windows[a].n
    ));
    let said = udp_probe_from(&outsider.ns, &a_addr);
    assert_eq!(said, "no answer", "outsider reached SIP over UDP");

    let phone = workspace_bin("ewindow-phone", "ewindow-phone");
    let tcp = outsider
        .exec(&format!(
            "{} call 'sip:a@[{a_addr}]:5060;transport=tcp' --transport tcp --sip '[2001:db8:77::3]:0' --name a --ring-timeout 5",
            phone.display()
        ))
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&tcp.stdout);
    assert!(!tcp.status.success() && said.contains("403"), "{said}");

    // From a member's namespace, over the overlay, under another name: 403.
    let b_addr = lab.windows[b].overlay_addr();
    let liar = lab.windows[b]
        .exec(&format!(
            "{} call 'sip:a@[{a_addr}]:5060' --sip '[{b_addr}]:0' --name mallory --ring-timeout 5",
            phone.display()
        ))
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&liar.stdout);
    assert!(!liar.status.success() && said.contains("403"), "{said}");
    assert!(
        lab.log(a, "phone").contains("not a member"),
        "{}",
        lab.log(a, "phone")
    );
}

/// A member invites a new window while a call runs between two others: the newcomer redeems
/// the code, the roster (signed, versioned) spreads, every member can call the newcomer, and
/// the running call loses nothing. A used or expired code is refused with a clear message.
#[test]
fn invitation_end_to_end_without_interrupting_a_call() {
    let mut lab = Lab::new('2');
    let a = lab.host("a");
    let b = lab.host("b");
    let c = lab.host("c");
    let d = lab.host("d");
    lab.roster(&[a, b], 2);
    lab.start_window(a);
    lab.start_window(b);

    // A long call a → b runs through everything below.
    let phone = workspace_bin("ewindow-phone", "ewindow-phone");
    let long_stats = lab.windows[a].dir.join("long.json");
    let long_call = lab.windows[a]
        .exec(&format!(
            "{} call b --window {} --duration 20 --stats-json {} --video-codecs none",
            phone.display(),
            lab.windows[a].window_file().display(),
            long_stats.display()
        ))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_secs(2));

    // The invitation, made with the maintenance tool.
    let ctl = workspace_bin("ewindowctl", "ewindow-console");
    let code = must(&format!(
        "{} --overlay-control {} invite c",
        ctl.display(),
        lab.windows[a].overlay_sock().display()
    ))
    .trim()
    .to_owned();
    assert!(code.starts_with("EWIN1-"), "{code}");

    lab.start_wireguard(c);
    let (ok, said) = lab.redeem(c, &code);
    assert!(ok, "redeem: {said}\n{}", lab.log(a, "overlay"));
    assert!(said.contains("joined as c; members: a, b, c"), "{said}");
    lab.start_window_after_redeem(c);

    // The roster spread: b has version 2, signed by a, with c.
    let bfile = lab.windows[b].window_file();
    wait_for("b takes the new roster", 15, || {
        let t = fs::read_to_string(&bfile).unwrap();
        (!(t.contains("version = 2")
            && t.contains("name = \"c\"")
            && t.contains("signed_by = \"a\"")))
        .then_some(t)
    });

    // Every member can call the newcomer.
    for from in [a, b] {
        let (ok, out, stats) = lab.call(from, "c", 3.0);
        assert!(
            ok,
            "{} → c failed: {out}\n{}",
            lab.windows[from].name,
            lab.log(c, "phone")
        );
        assert!(decoded(&stats, "audio") > 50, "{stats}");
    }
    // And the newcomer can call back.
    let (ok, out, _) = lab.call(c, "a", 2.0);
    assert!(ok, "c → a: {out}");

    // The same code again, from another new window: refused by the inviter, with the reason.
    lab.start_wireguard(d);
    let (ok, said) = lab.redeem(d, &code);
    assert!(!ok, "{said}");
    assert!(
        said.contains("the inviter refused") && said.contains("already used"),
        "{said}"
    );

    // An expired code.
    let expired = must(&format!(
        "{} --overlay-control {} invite e --ttl-s 1",
        ctl.display(),
        lab.windows[a].overlay_sock().display()
    ));
    std::thread::sleep(Duration::from_millis(2100));
    let (ok, said) = lab.redeem(d, expired.trim());
    assert!(!ok && said.contains("expired"), "{said}");
    // A mistyped code.
    // One character of the body changed (every single substitution is caught).
    let mut chars: Vec<char> = code.chars().collect();
    let at = chars.len() / 2;
    let at = if chars[at] == '-' { at + 1 } else { at };
    chars[at] = if chars[at] == 'Z' { 'Y' } else { 'Z' };
    let typo: String = chars.into_iter().collect();
    let (ok, said) = lab.redeem(d, &typo);
    assert!(!ok && said.contains("typo"), "{said}");

    // A roster edited on a member (c removed by hand) is signed there and spreads.
    let afile = lab.windows[a].window_file();
    let text = fs::read_to_string(&afile).unwrap();
    let start = text
        .find("[[member]]\nname = \"c\"")
        .expect("c in a's roster");
    let end = text[start + 1..]
        .find("[[member]]")
        .map_or(text.len(), |e| start + 1 + e);
    fs::write(&afile, format!("{}{}", &text[..start], &text[end..])).unwrap();
    let r = ask(&lab.windows[a].overlay_sock(), json!({"cmd": "reload"}));
    assert_eq!(r["ok"], true, "{r}");
    wait_for("b takes a's hand edit", 15, || {
        let t = fs::read_to_string(&bfile).unwrap();
        (!t.contains("version = 3") || t.contains("name = \"c\"")).then_some(t)
    });

    // The long call ran to its end, without a gap.
    let out = long_call.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let stats: Value = serde_json::from_str(&fs::read_to_string(&long_stats).unwrap()).unwrap();
    assert_eq!(stats["end_reason"], "local-bye", "{stats}");
    let sent = stream(&stats, "audio", "send")["packets"]
        .as_u64()
        .unwrap_or(0);
    let got = stream(&stats, "audio", "recv")["packets"]
        .as_u64()
        .unwrap_or(0);
    assert!(sent > 900 && got as f64 >= sent as f64 * 0.97, "{stats}");
}

impl Lab {
    /// `ewindow-overlay redeem CODE` on window `w` (wireguard-go runs): whether it worked, and
    /// what it said.
    fn redeem(&self, w: usize, code: &str) -> (bool, String) {
        let args = self.overlay_args(w);
        let out = self.windows[w]
            .exec(&format!("{OVERLAY} redeem {code} --timeout-s 20 {args}"))
            .output()
            .unwrap();
        let said = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (out.status.success(), said)
    }

    /// After `redeem`: the overlay (wireguard-go already runs) and the phone.
    fn start_window_after_redeem(&mut self, w: usize) {
        self.start_window_after_redeem_with(w, "listen");
    }

    /// The overlay (wireguard-go already runs), then the phone: `listen` (auto-answer) or
    /// `window` (the window policy).
    fn start_window_after_redeem_with(&mut self, w: usize, mode: &str) {
        let args = self.overlay_args(w);
        self.spawn(w, "overlay", &format!("{OVERLAY} up {args}"));
        let sock = self.windows[w].overlay_sock();
        let deadline = Instant::now() + Duration::from_secs(20);
        while UnixStream::connect(&sock).is_err() {
            assert!(Instant::now() < deadline, "{}", self.log(w, "overlay"));
            std::thread::sleep(Duration::from_millis(50));
        }
        if mode == "listen" {
            self.start_phone(w);
            return;
        }
        let phone = workspace_bin("ewindow-phone", "ewindow-phone");
        let win = &self.windows[w];
        let cmd = format!(
            "{} window --window-file {} --control {} --video-codecs vp8 --video-size 320x240 \
             --video-fps 15",
            phone.display(),
            win.window_file().display(),
            win.phone_sock().display()
        );
        self.spawn(w, "phone", &cmd);
    }
}

/// A window as the image runs it: `ewindow-init` as PID 1 of the window's namespace starts
/// wireguard-go, then the overlay (ready when the interface is configured), then the phone;
/// another member calls it.
#[test]
fn a_window_under_ewindow_init_starts_in_order_and_takes_calls() {
    let mut lab = Lab::new('3');
    let a = lab.host("a");
    let b = lab.host("b");
    lab.roster(&[a, b], 2);
    let win = &lab.windows[a];
    let phone_args = format!(
        "listen --window {} --auto-answer --control {} --video-codecs none",
        win.window_file().display(),
        win.phone_sock().display()
    );
    let init_sock = lab.start_under_init(a, &phone_args);
    let st = ask(&init_sock, json!({"cmd": "status"}));
    let names: Vec<&str> = st["status"]["services"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["wireguard-go", "overlay", "phone"]);
    assert!(
        st["status"]["services"]
            .as_array()
            .unwrap()
            .iter()
            .all(|s| s["restarts"] == 0),
        "{st}"
    );
    lab.start_window(b);
    let (ok, out, stats) = lab.call(b, "a", 3.0);
    assert!(ok, "b → a: {out}\n{}", lab.log(a, "init"));
    assert!(decoded(&stats, "audio") > 50, "{stats}");
}

/// Three windows in window mode: the partners open to each other by themselves; `next` moves
/// a window on to the next online member; a closed curtain ends the call and declines, and the
/// others open to each other instead; opening the curtain brings the window back.
#[test]
fn windows_open_by_themselves_and_obey_next_and_the_curtain() {
    let mut lab = Lab::new('4');
    let a = lab.host("a");
    let b = lab.host("b");
    let c = lab.host("c");
    lab.roster(&[a, b, c], 1);
    for (w, partner) in [(a, "b"), (b, "a"), (c, "a")] {
        let f = lab.windows[w].window_file();
        let text = fs::read_to_string(&f).unwrap().replacen(
            "presence_interval_s",
            &format!("partner = \"{partner}\"\npresence_interval_s"),
            1,
        );
        fs::write(&f, text).unwrap();
    }
    // a and b first: partners, they open to each other.
    lab.start_window_mode(a);
    lab.start_window_mode(b);
    lab.wait_state(a, "open", "b", 30);
    lab.wait_state(b, "open", "a", 10);
    // c comes online; its partner a is busy (486), so c waits.
    lab.start_window_mode(c);
    let sock = lab.windows[a].phone_sock();
    wait_for("a sees c online", 15, || {
        let r = ask(&sock, json!({"cmd": "members"}));
        let online = r["members"]
            .as_array()
            .is_some_and(|m| m.iter().any(|m| m["name"] == "c" && m["reachable"] == true));
        (!online).then(|| r.to_string())
    });
    assert_eq!(lab.state(a), ("open".to_owned(), "b".to_owned()));

    lab.ctl(a, "next");
    lab.wait_state(a, "open", "c", 15);
    lab.wait_state(c, "open", "a", 5);

    lab.ctl(a, "curtain on");
    lab.wait_state(a, "curtain", "", 5);
    lab.wait_state(b, "open", "c", 30);
    lab.wait_state(c, "open", "b", 5);

    lab.ctl(a, "curtain off");
    wait_for("a reopens", 10, || {
        let (k, p) = lab.state(a);
        (k == "curtain").then(|| format!("{k} {p}"))
    });
}

/// The first-run story without a hand-made roster: window a founds a network
/// (`ewindow-overlay found`), its status console (in a tmux terminal) makes an invitation
/// with the `i` key and shows it; b redeems the code read off a's screen; the screen then
/// says b joined, and a calls b over the overlay.
#[test]
fn a_founded_window_invites_from_its_console_and_the_newcomer_joins() {
    let mut lab = Lab::new('5');
    let a = lab.host("a");
    let b = lab.host("b");
    // out of the box: no endpoint configured anywhere; the invitation carries the LAN
    // address the overlay finds
    lab.windows[a].lan_only = true;
    lab.windows[b].lan_only = true;
    let awin = &lab.windows[a];
    let out = awin
        .exec(&format!(
            "{OVERLAY} found a --window {} --identity {}",
            awin.window_file().display(),
            awin.dir.join("identity.key").display(),
        ))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let founded = fs::read_to_string(awin.window_file()).unwrap();
    assert!(
        founded.contains("version = 1")
            && founded.contains("signed_by = \"a\"")
            && founded.contains(&format!("endpoints = [\"{}:51820\"]", lab.windows[a].v4())),
        "the founder's own entry has its LAN address: {founded}"
    );
    // a runs as a window does: wireguard-go, the overlay, the phone in window mode
    lab.start_wireguard(a);
    lab.start_window_after_redeem_with(a, "window");

    let console = workspace_bin("ewindow-console", "ewindow-console");
    let w = &lab.windows[a];
    let session = format!("ewl5-{}", std::process::id());
    let _ = sh(&format!("tmux kill-session -t {session}"));
    let cmd = format!(
        "{} --window {} --identity {} --init-control {d}/init.sock --phone-control {} \
         --overlay-control {}; sleep 30",
        console.display(),
        w.window_file().display(),
        w.dir.join("identity.key").display(),
        w.phone_sock().display(),
        w.overlay_sock().display(),
        d = w.dir.display()
    );
    must(&format!(
        "tmux new-session -d -s {session} -x 160 -y 50 '{cmd}'"
    ));
    struct Kill(String);
    impl Drop for Kill {
        fn drop(&mut self) {
            let _ = sh(&format!("tmux kill-session -t {}", self.0));
        }
    }
    let _kill = Kill(session.clone());
    let screen = || must(&format!("tmux capture-pane -p -t {session}"));
    let keys = |k: &str| {
        must(&format!("tmux send-keys -t {session} {k}"));
        std::thread::sleep(Duration::from_millis(200));
    };
    wait_for("the status console of a window alone", 20, || {
        let s = screen();
        (!s.contains("only member of its network")).then_some(s)
    });
    keys("i");
    keys("b");
    wait_for("the name prompt", 5, || {
        let s = screen();
        (!s.contains("Invite a new window named: b_")).then_some(s)
    });
    keys("Enter");
    wait_for("the invitation on the screen", 15, || {
        let s = screen();
        (!s.contains("For b: on the new window")).then_some(s)
    });
    // The code as a person reads it off the screen: from `EWIN1-`, line by line, the
    // leading run of code characters (the QR code stands to its right).
    let s = screen();
    let mut code = String::new();
    for line in s
        .lines()
        .skip_while(|l| !l.trim_start().starts_with("EWIN1-"))
    {
        let run: String = line
            .trim_start()
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '-')
            .collect();
        if run.is_empty() {
            break;
        }
        code.push_str(&run);
    }
    assert!(code.starts_with("EWIN1-") && code.len() > 60, "{code}\n{s}");
    let inv = ewindow_protocol::invite::Invitation::decode(&code).expect("the code on the screen");
    assert_eq!(
        inv.endpoint.to_string(),
        format!("{}:51820", lab.windows[a].v4()),
        "the invitation carries a's LAN address"
    );

    lab.start_wireguard(b);
    let (ok, said) = lab.redeem(b, &code);
    assert!(ok, "redeem: {said}\n{}", lab.log(a, "overlay"));
    assert!(said.contains("joined as b; members: a, b"), "{said}");
    lab.start_window_after_redeem(b);
    // With no further input the window opens to b (a's policy calls the member that came
    // online), and the console, which polls the overlay every 15 s, says who joined.
    wait_for(
        "a's window opens to b, and the console says b joined",
        60,
        || {
            let s = screen();
            (!(s.contains("You see and hear b") && s.contains("b joined"))).then_some(s)
        },
    );
    assert!(!screen().contains("For b: on the new window"));
    let st = ask(&lab.windows[a].phone_sock(), json!({"cmd": "status"}));
    assert_eq!(st["status"]["state"]["kind"], "open", "{st}");
}
