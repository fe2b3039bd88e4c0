//! `ewindowctl` against a running `ewindow-init` (as a child subreaper, the same code path
//! PID 1 runs): status in both forms, restart, a refused request, a missing socket.

use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

fn ctl() -> &'static str {
    env!("CARGO_BIN_EXE_ewindowctl")
}

/// `ewindow-init`, built next to `ewindowctl` (cargo test --workspace builds it; a lone
/// `cargo test -p ewindow-console` builds it here).
fn init_binary() -> PathBuf {
    let bin = PathBuf::from(ctl()).with_file_name("ewindow-init");
    if !bin.exists() {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let ok = Command::new(cargo)
            .args(["build", "-q", "-p", "ewindow-init"])
            .status()
            .expect("cargo build -p ewindow-init");
        assert!(ok.success(), "building ewindow-init failed");
    }
    bin
}

struct Init {
    child: Child,
    socket: PathBuf,
}

impl Drop for Init {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_init(name: &str) -> Init {
    let dir = std::env::temp_dir().join(format!("ewindowctl-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let config = dir.join("services.toml");
    std::fs::write(
        &config,
        "[[service]]\n\
         name = \"sleeper\"\n\
         exec = [\"/bin/sleep\", \"1000\"]\n\
         ready = \"started\"\n\
         restart = \"always\"\n\
         stop_timeout_s = 2\n",
    )
    .unwrap();
    let socket = dir.join("init.sock");
    let child = Command::new(init_binary())
        .arg("--config")
        .arg(&config)
        .arg("--control")
        .arg(&socket)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start ewindow-init");
    let init = Init { child, socket };
    let deadline = Instant::now() + Duration::from_secs(10);
    while !init.socket.exists() {
        assert!(
            Instant::now() < deadline,
            "ewindow-init made no control socket"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    init
}

fn run(socket: &std::path::Path, args: &[&str]) -> Output {
    Command::new(ctl())
        .arg("--control")
        .arg(socket)
        .args(args)
        .output()
        .expect("run ewindowctl")
}

fn sleeper(socket: &std::path::Path) -> serde_json::Value {
    let out = run(socket, &["status", "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("status --json is JSON");
    v["services"]
        .as_array()
        .and_then(|a| a.iter().find(|s| s["name"] == "sleeper").cloned())
        .expect("the sleeper service is listed")
}

fn wait_running(socket: &std::path::Path) -> serde_json::Value {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let s = sleeper(socket);
        if s["state"] == "running" {
            return s;
        }
        assert!(Instant::now() < deadline, "sleeper never ran: {s}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn status_shows_the_running_service_as_text_and_json() {
    let init = start_init("status");
    let s = wait_running(&init.socket);
    assert!(s["pid"].as_i64().unwrap_or(0) > 1, "{s}");
    let out = run(&init.socket, &["status"]);
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    let row = text
        .lines()
        .find(|l| l.starts_with("sleeper"))
        .unwrap_or_else(|| panic!("no sleeper row in:\n{text}"));
    assert!(row.contains("running"), "{row}");
}

#[test]
fn restart_gives_the_service_a_new_pid() {
    let init = start_init("restart");
    let before = wait_running(&init.socket)["pid"].as_i64();
    let out = run(&init.socket, &["restart", "sleeper"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let s = sleeper(&init.socket);
        if s["state"] == "running" && s["pid"].as_i64() != before {
            break;
        }
        assert!(Instant::now() < deadline, "no new pid after restart: {s}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn an_unknown_service_is_refused_with_exit_1_and_a_reason() {
    let init = start_init("refused");
    wait_running(&init.socket);
    let out = run(&init.socket, &["stop", "nope"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("nope"), "{err}");
}

#[test]
fn a_missing_socket_is_exit_3_with_a_clear_message_not_a_backtrace() {
    let out = run(std::path::Path::new("/nonexistent/init.sock"), &["status"]);
    assert_eq!(out.status.code(), Some(3));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("cannot reach ewindow-init at /nonexistent/init.sock"),
        "{err}"
    );
    assert!(!err.contains("panicked"), "{err}");
}
