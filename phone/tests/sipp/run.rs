//! Runs the SIPp scenarios of this directory (`sip-tester`'s `sipp`) and reads what they
//! counted. Shared by `phone/tests/sipp.rs` (loopback) and `overlay/tests/sipp.rs` (a member
//! of the lab's overlay), so not every item is used by both.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

/// A scenario file of this directory.
pub fn scenario(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the workspace")
        .join("phone/tests/sipp")
        .join(name)
}

/// One run of a scenario.
pub struct Sipp<'a> {
    /// The scenario file's name.
    pub scenario: &'a str,
    /// Our address (IPv4 or IPv6, no brackets) and port.
    pub local: (&'a str, u16),
    /// The phone's `ADDR:PORT` (IPv6 in brackets).
    pub remote: &'a str,
    /// The caller's SIP user name (`[field0]` in the scenarios).
    pub caller: &'a str,
    /// Calls to place.
    pub calls: u64,
    /// Calls per second.
    pub rate: u32,
    /// Run inside this network namespace.
    pub netns: Option<&'a str>,
    /// A directory for the injection file and SIPp's error log.
    pub dir: &'a Path,
}

/// What SIPp counted: calls that ran the scenario to its end, calls that did not (an
/// unexpected response, a timeout), and its output.
#[derive(Debug)]
pub struct Counted {
    pub successful: u64,
    pub failed: u64,
    pub output: String,
}

impl Sipp<'_> {
    pub fn run(&self) -> Counted {
        let inf = self.dir.join(format!("{}.csv", self.caller));
        std::fs::write(&inf, format!("SEQUENTIAL\n{};\n", self.caller)).expect("writing -inf");
        let errors = self.dir.join(format!("{}-errors.log", self.scenario));
        let mut cmd = match self.netns {
            Some(ns) => {
                let mut c = Command::new("ip");
                c.args(["netns", "exec", ns, "sipp"]);
                c
            }
            None => Command::new("sipp"),
        };
        let out = cmd
            .arg("-sf")
            .arg(scenario(self.scenario))
            .arg("-inf")
            .arg(&inf)
            .args(["-i", self.local.0, "-p", &self.local.1.to_string()])
            .args(["-s", "ewindow", "-m", &self.calls.to_string()])
            .args(["-r", &self.rate.to_string(), "-rp", "1000"])
            // A call waits at most 10 s for a response; the whole run at most 5 min.
            .args(["-recv_timeout", "10000", "-timeout", "300", "-nostdin"])
            .arg("-trace_err")
            .arg("-error_file")
            .arg(&errors)
            .arg(self.remote)
            .output()
            .expect("running sipp (sip-tester)");
        let output = format!(
            "{}{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            std::fs::read_to_string(&errors)
                .unwrap_or_default()
                .chars()
                .take(4000)
                .collect::<String>()
        );
        Counted {
            successful: last_count(&output, "Successful call"),
            failed: last_count(&output, "Failed call"),
            output,
        }
    }
}

/// The cumulative column of a row of SIPp's final screen (`  Successful call | 0 | 20`).
fn last_count(screen: &str, row: &str) -> u64 {
    screen
        .lines()
        .rfind(|l| l.trim_start().starts_with(row))
        .and_then(|l| l.rsplit('|').next())
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or(0)
}

#[test]
fn reads_the_cumulative_column() {
    let screen =
        "  Successful call        |        0                  |        3                 \n";
    assert_eq!(last_count(screen, "Successful call"), 3);
    assert_eq!(last_count(screen, "Failed call"), 0);
}
