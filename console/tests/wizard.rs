//! The first-boot wizard driven through a real terminal: `ewindow-console` in a tmux session
//! (80x25, as a serial console), keys sent with `send-keys`, the screen read with
//! `capture-pane`.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use ewindow_protocol::keys::PrivateKey;
use ewindow_protocol::window::{self, Member, Roster};

const CONSOLE: &str = env!("CARGO_BIN_EXE_ewindow-console");

struct Tmux {
    session: String,
    dir: PathBuf,
}

impl Tmux {
    fn start(name: &str, dir: &Path, args: &str) -> Tmux {
        let session = format!("ewin-{name}-{}", std::process::id());
        let _ = Command::new("tmux")
            .args(["kill-session", "-t", &session])
            .status();
        let cmd = format!("{CONSOLE} {args}; sleep 30");
        let ok = Command::new("tmux")
            .args([
                "new-session",
                "-d",
                "-s",
                &session,
                "-x",
                "80",
                "-y",
                "25",
                &cmd,
            ])
            .status()
            .expect("tmux must be installed")
            .success();
        assert!(ok, "tmux new-session");
        Tmux {
            session,
            dir: dir.to_owned(),
        }
    }

    fn keys(&self, keys: &[&str]) {
        for k in keys {
            let ok = Command::new("tmux")
                .args(["send-keys", "-t", &self.session])
                .arg(k)
                .status()
                .unwrap()
                .success();
            assert!(ok);
            std::thread::sleep(Duration::from_millis(150));
        }
    }

    /// Types text literally (no key names).
    fn type_text(&self, text: &str) {
        let ok = Command::new("tmux")
            .args(["send-keys", "-t", &self.session, "-l", text])
            .status()
            .unwrap()
            .success();
        assert!(ok);
        std::thread::sleep(Duration::from_millis(200));
    }

    /// The camera, microphone and speaker steps with their first device, then the SSH key
    /// step (the key typed, or skipped).
    fn devices_then_ssh_key(&self, key: Option<&str>) {
        for step in ["Camera", "Microphone", "Speaker"] {
            self.wait_for(step);
            self.keys(&["Enter"]);
        }
        self.wait_for("SSH");
        if let Some(k) = key {
            self.type_text(k);
        }
        self.keys(&["Enter"]);
    }

    fn screen(&self) -> String {
        let out = Command::new("tmux")
            .args(["capture-pane", "-p", "-t", &self.session])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn wait_for(&self, text: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let s = self.screen();
            if s.contains(text) {
                return s;
            }
            assert!(
                Instant::now() < deadline,
                "`{text}` never showed; screen:\n{s}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .args(["kill-session", "-t", &self.session])
            .status();
        if !std::thread::panicking() {
            let _ = fs::remove_dir_all(&self.dir);
        }
    }
}

/// A scratch directory with an identity key (the overlay makes it on a window).
fn setup(name: &str) -> (PathBuf, PrivateKey) {
    let dir = std::env::temp_dir().join(format!("ewindow-wizard-{name}-{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(dir.join("usb/STICK")).unwrap();
    let key = PrivateKey::generate().unwrap();
    fs::write(dir.join("identity.key"), format!("{}\n", key.to_base64())).unwrap();
    fs::set_permissions(dir.join("identity.key"), fs::Permissions::from_mode(0o600)).unwrap();
    (dir, key)
}

fn args(dir: &Path) -> String {
    format!(
        "--window {d}/window.toml --identity {d}/identity.key --authorized-keys {d}/authorized_keys \
         --usb-root {d}/usb --init-control {d}/init.sock --phone-control {d}/phone.sock \
         --overlay-control {d}/overlay.sock --overlay-bin /bin/false",
        d = dir.display()
    )
}

/// A binary of another package of the workspace (the overlay the wizard runs), built when
/// missing.
fn workspace_bin(name: &str) -> PathBuf {
    let bin = Path::new(CONSOLE).parent().unwrap().join(name);
    if !bin.exists() {
        let ok = Command::new(env!("CARGO"))
            .args(["build", "-p", name, "--bin", name])
            .status()
            .unwrap()
            .success();
        assert!(ok, "building {name}");
    }
    bin
}

const SSH_KEY: &str =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHfB8Ba4L8wjqNBtPfPzUiEAhWvjLNkzsgkJjYsbEuPG maker@lab";

/// Join with a roster file from a "USB stick": the wizard writes a valid window file (with
/// the chosen devices) and the SSH key (0600), then the console shows the status screen.
#[test]
fn roster_join_through_a_real_terminal_writes_a_valid_config() {
    let (dir, key) = setup("roster");
    let other = PrivateKey::generate().unwrap();
    let roster = Roster {
        version: 3,
        signed_by: None,
        signature: None,
        members: vec![
            Member {
                name: "lab-a".into(),
                public_key: other.public_key(),
                endpoints: vec!["192.0.2.1:51820".parse().unwrap()],
                relay: false,
            },
            Member {
                name: "lab-b".into(),
                public_key: key.public_key(),
                endpoints: vec![],
                relay: false,
            },
        ],
    };
    fs::write(
        dir.join("usb/STICK/roster.toml"),
        window::roster_to_toml(&roster),
    )
    .unwrap();
    let t = Tmux::start("roster", &dir, &args(&dir));
    t.wait_for("Welcome");
    t.keys(&["Enter"]);
    t.wait_for("name");
    t.type_text("lab-b");
    t.keys(&["Enter"]);
    t.wait_for("How to join");
    t.keys(&["2", "Enter"]);
    t.wait_for("roster.toml");
    t.keys(&["Enter"]);
    t.wait_for("Open hours");
    t.keys(&["C-u"]);
    t.type_text("08:00-20:00");
    t.keys(&["Enter"]);
    t.devices_then_ssh_key(Some(SSH_KEY));
    t.wait_for("Summary");
    assert!(
        !dir.join("window.toml").exists(),
        "nothing is written before confirming"
    );
    t.keys(&["Enter"]);
    // The status console takes over: no phone yet, so it says what it waits for.
    t.wait_for("Waiting for");
    let text = fs::read_to_string(dir.join("window.toml")).unwrap();
    let c = window::parse(Path::new("window.toml"), &text, Some(&key.public_key()))
        .unwrap_or_else(|e| panic!("{e}\n{text}"));
    assert_eq!(c.name, "lab-b");
    assert_eq!(c.open_hours.to_string(), "08:00-20:00");
    assert_eq!(c.roster.version, 3);
    assert_eq!(c.roster.members.len(), 2);
    assert_eq!(c.media.microphone.as_deref(), Some("default"));
    let keys = fs::read_to_string(dir.join("authorized_keys")).unwrap();
    assert_eq!(keys.trim(), SSH_KEY);
    let mode = fs::metadata(dir.join("authorized_keys"))
        .unwrap()
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o600);
}

/// The first window starts a new network: the wizard runs the real `ewindow-overlay found`,
/// and the window file has a roster of this window alone, version 1, signed by its own key;
/// the status screen then says how to invite.
#[test]
fn founding_a_network_through_a_real_terminal_writes_a_self_signed_roster() {
    let (dir, key) = setup("found");
    let overlay = workspace_bin("ewindow-overlay");
    let args = args(&dir).replace(
        "--overlay-bin /bin/false",
        &format!("--overlay-bin {}", overlay.display()),
    );
    let t = Tmux::start("found", &dir, &args);
    t.wait_for("Welcome");
    t.keys(&["Enter"]);
    t.wait_for("name");
    t.type_text("lab-a");
    t.keys(&["Enter"]);
    t.wait_for("How to join");
    t.keys(&["3"]);
    t.wait_for("> 3  Start a new network");
    t.keys(&["Enter"]);
    t.wait_for("Open hours");
    t.keys(&["Enter"]);
    t.devices_then_ssh_key(None);
    t.wait_for("a new network");
    t.keys(&["Enter"]);
    t.wait_for("Waiting for");
    let text = fs::read_to_string(dir.join("window.toml")).unwrap();
    let c = window::parse(Path::new("window.toml"), &text, Some(&key.public_key()))
        .unwrap_or_else(|e| panic!("{e}\n{text}"));
    assert_eq!(c.name, "lab-a");
    assert_eq!(c.roster.version, 1);
    assert_eq!(c.roster.members.len(), 1);
    assert_eq!(c.roster.signed_by.as_deref(), Some("lab-a"));
    let signed =
        ewindow_protocol::signed::update_signing_input(1, "lab-a", &c.roster.canonical_bytes());
    let sig = c.roster.signature.expect("a signature");
    assert!(
        ewindow_protocol::signed::verify(&key.public_key(), &signed, &sig),
        "signed with this window's own key"
    );
    assert!(!dir.join("window.redeemed").exists(), "no temporary left");
}

/// Bad answers get their message on the screen and nothing is written: an empty name, a
/// mistyped invitation code, an expired one.
#[test]
fn bad_answers_are_refused_with_a_message_and_nothing_is_written() {
    let (dir, _key) = setup("bad");
    let t = Tmux::start("bad", &dir, &args(&dir));
    t.wait_for("Welcome");
    t.keys(&["Enter"]);
    t.wait_for("name");
    t.keys(&["Enter"]);
    t.wait_for("cannot be empty");
    t.type_text("lab-c");
    t.keys(&["Enter"]);
    t.wait_for("How to join");
    t.keys(&["1", "Enter"]);
    t.wait_for("Invitation code");
    // A real code with one character changed.
    let inviter = PrivateKey::generate().unwrap();
    let inv = ewindow_protocol::invite::Invitation::new(
        inviter.public_key(),
        "192.0.2.1:51820".parse().unwrap(),
        Duration::from_secs(3600),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs(),
    )
    .unwrap();
    let code = inv.encode();
    let mut chars: Vec<char> = code.chars().collect();
    let at = chars.len() / 2;
    let at = if chars[at] == '-' { at + 1 } else { at };
    chars[at] = if chars[at] == 'Z' { 'Y' } else { 'Z' };
    t.type_text(&chars.into_iter().collect::<String>());
    t.keys(&["Enter"]);
    t.wait_for("typo");
    // An expired code (made an hour and a minute ago, valid one hour).
    let old = ewindow_protocol::invite::Invitation::new(
        inviter.public_key(),
        "192.0.2.1:51820".parse().unwrap(),
        Duration::from_secs(3600),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs()
            - 3660,
    )
    .unwrap();
    t.keys(&["C-u"]);
    t.type_text(&old.encode());
    t.keys(&["Enter"]);
    t.wait_for("expired");
    t.keys(&["C-c"]);
    std::thread::sleep(Duration::from_millis(300));
    assert!(!dir.join("window.toml").exists());
    assert!(!dir.join("authorized_keys").exists());
}

/// Once set up, the console shows the status and what it waits for; `s` opens a shell only
/// when the console was started with `--shell` (the serial console of a window that allows it).
#[test]
fn status_console_waits_for_sockets_and_opens_a_shell_only_when_allowed() {
    let (dir, key) = setup("status");
    let roster = Roster {
        version: 1,
        signed_by: None,
        signature: None,
        members: vec![Member {
            name: "lab-s".into(),
            public_key: key.public_key(),
            endpoints: vec![],
            relay: false,
        }],
    };
    fs::write(
        dir.join("window.toml"),
        format!(
            "[window]\nname = \"lab-s\"\n\n{}",
            window::roster_to_toml(&roster)
        ),
    )
    .unwrap();
    let t = Tmux::start("status", &dir, &args(&dir));
    let screen = t.wait_for("Waiting for");
    assert!(screen.contains("ewindow-phone"), "{screen}");
    t.keys(&["s"]);
    t.wait_for("no shell on this console");
    drop(t);

    let (dir, _) = setup("shell");
    fs::write(
        dir.join("window.toml"),
        format!(
            "[window]\nname = \"lab-s\"\n\n{}",
            window::roster_to_toml(&roster)
        ),
    )
    .unwrap();
    let t = Tmux::start("shell", &dir, &format!("{} --shell", args(&dir)));
    t.wait_for("Waiting for");
    t.keys(&["s"]);
    t.wait_for("exit to return to the console");
    t.type_text("echo marker-$((40+2))");
    t.keys(&["Enter"]);
    t.wait_for("marker-42");
}
