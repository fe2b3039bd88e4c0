//! `cargo xtask demo`: two windows on loopback open to each other.
//!
//! Window B listens and auto-answers; window A calls it. Both use test sources and print
//! live call statistics every second; A hangs up after the duration; both write their final
//! statistics, which the demo prints as a short summary.

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use anyhow::{bail, Context, Result};

use crate::proc;

/// The phone binary of the workspace, built in the dev profile.
pub fn phone_binary() -> Result<PathBuf> {
    crate::cargo(&["build", "--quiet", "-p", "ewindow-phone"])?;
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| crate::root().join("target"));
    let bin = target.join("debug").join("ewindow-phone");
    if !bin.exists() {
        bail!("{} was not built", bin.display());
    }
    Ok(bin)
}

/// Runs the demo.
pub fn run(duration: u32, codecs: &str, transport: &str) -> Result<()> {
    let bin = phone_binary()?;
    let dir = std::env::temp_dir().join(format!("ewindow-demo-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let stats_a = dir.join("window-a.json");
    let stats_b = dir.join("window-b.json");
    let port_b = free_port()?;
    let port_a = free_port()?;

    let mut b = Command::new(&bin);
    b.args(["listen", "--sip", &format!("127.0.0.1:{port_b}")])
        .args(["--transport", transport, "--auto-answer", "--live-stats"])
        .args(["--name", "window-b", "--codecs", codecs])
        .args(["--audio-source", "test", "--audio-sink", "null"])
        .args(["--duration", &(duration + 5).to_string()])
        .arg("--stats-json")
        .arg(&stats_b);
    let mut b = proc::spawn("window-b", b, true)?;
    b.wait_for("listening", Duration::from_secs(10))
        .context("window-b did not start")?;

    let uri = format!("sip:window-b@127.0.0.1:{port_b};transport={transport}");
    let mut a = Command::new(&bin);
    a.args(["call", &uri, "--sip", &format!("127.0.0.1:{port_a}")])
        .args(["--transport", transport, "--live-stats"])
        .args(["--name", "window-a", "--codecs", codecs])
        .args(["--audio-source", "test", "--audio-sink", "null"])
        .args(["--duration", &duration.to_string()])
        .arg("--stats-json")
        .arg(&stats_a);
    let mut a = proc::spawn("window-a", a, true)?;
    let status_a = a.finish(Duration::from_secs(u64::from(duration) + 30))?;
    let status_b = b.finish(Duration::from_secs(10))?;

    println!();
    for (name, path) in [("window-a", &stats_a), ("window-b", &stats_b)] {
        match std::fs::read_to_string(path) {
            Ok(text) => println!("{name}: {}", summary(&text)),
            Err(e) => println!("{name}: no statistics ({e})"),
        }
    }
    if !status_a.success() || !status_b.success() {
        bail!("the call did not complete: window-a {status_a}, window-b {status_b}");
    }
    println!("\ndemo: the two windows opened to each other and closed cleanly");
    Ok(())
}

/// One line from a `--stats-json` file.
fn summary(text: &str) -> String {
    let Ok(v) = serde_json::from_str::<serde_json::Value>(text) else {
        return format!("unreadable statistics: {text}");
    };
    let mut line = format!(
        "ended {}, setup {} ms",
        v["end_reason"].as_str().unwrap_or("?"),
        v["setup_ms"].as_u64().map_or("-".into(), |n| n.to_string())
    );
    for s in v["streams"].as_array().into_iter().flatten() {
        line.push_str(&format!(
            "; {} {} {} {} packets, {} decoded, {} lost, jitter {:.2} ms",
            s["media"].as_str().unwrap_or("?"),
            s["codec"].as_str().unwrap_or("?"),
            s["direction"].as_str().unwrap_or("?"),
            s["packets"],
            s["decoded"],
            s["lost"],
            s["jitter_ms"].as_f64().unwrap_or(0.0)
        ));
    }
    line
}

/// A port that was free a moment ago on 127.0.0.1 (UDP and TCP).
pub fn free_port() -> Result<u16> {
    for _ in 0..50 {
        let udp = std::net::UdpSocket::bind("127.0.0.1:0")?;
        let port = udp.local_addr()?.port();
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return Ok(port);
        }
    }
    bail!("no free port on 127.0.0.1")
}
