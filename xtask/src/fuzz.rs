//! `cargo xtask fuzz [TARGET] [--seconds N]`: the libFuzzer targets of `fuzz/`, built with
//! coverage instrumentation by the stable toolchain and run for a bounded time each.
//!
//! No nightly and no cargo-fuzz: the instrumentation cargo-fuzz asks rustc for is stable
//! codegen (`-Cpasses=sancov-module` and LLVM's `-sanitizer-coverage-*` options), and
//! `libfuzzer-sys` builds libFuzzer itself with the C++ compiler. What is left out is
//! AddressSanitizer (`-Zsanitizer`, nightly only): our code is safe Rust, so a crash here is a
//! panic (a failed assertion, an overflow, an index out of bounds), an abort, a timeout or
//! running out of memory. Built with `--target` so that build scripts and proc macros are not
//! instrumented, into `target/fuzz/`; corpora grow in `target/fuzz/corpus/TARGET/`, seeded
//! each run from the tests' own inputs; a crash leaves its input in
//! `target/fuzz/artifacts/TARGET/` and fails the run.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{bail, Context, Result};

use ewindow_protocol::invite::{Invitation, InviteEndpoint, SECRET_LEN};
use ewindow_protocol::keys::PrivateKey;
use ewindow_protocol::signed::sign_update;
use ewindow_protocol::window::{self, Member, OpenHours, Roster, WindowConfig};
use ewindow_protocol::{overlay, phone};

/// Every target, a binary of the `ewindow-fuzz` crate.
pub const TARGETS: &[&str] = &[
    "sip_request",
    "sdp_offer",
    "sdp_answer",
    "window_toml",
    "services",
    "invitation",
    "roster",
    "control_request",
];

/// The coverage instrumentation cargo-fuzz uses, minus the sanitizer.
const RUSTFLAGS: &str = "-Cpasses=sancov-module \
    -Cllvm-args=-sanitizer-coverage-level=4 \
    -Cllvm-args=-sanitizer-coverage-inline-8bit-counters \
    -Cllvm-args=-sanitizer-coverage-pc-table \
    -Cllvm-args=-sanitizer-coverage-trace-compares \
    -Cllvm-args=-sanitizer-coverage-stack-depth \
    --cfg fuzzing";

#[derive(clap::Args)]
pub struct FuzzArgs {
    /// One target (default: every target in turn).
    target: Option<String>,
    /// How long each target runs.
    #[arg(long, default_value_t = 60)]
    seconds: u64,
}

impl FuzzArgs {
    /// Every target, each for `seconds` (what `cargo xtask test` runs).
    pub fn every(seconds: u64) -> FuzzArgs {
        FuzzArgs {
            target: None,
            seconds,
        }
    }
}

/// What one target did.
pub struct Run {
    pub target: &'static str,
    pub seconds: f64,
    pub executions: u64,
    pub corpus: usize,
}

pub fn run(args: &FuzzArgs) -> Result<Vec<Run>> {
    let targets: Vec<&'static str> = match &args.target {
        None => TARGETS.to_vec(),
        Some(t) => match TARGETS.iter().find(|n| *n == t) {
            Some(n) => vec![*n],
            None => bail!("no fuzz target `{t}` (targets: {})", TARGETS.join(", ")),
        },
    };
    let root = crate::root();
    let bins = build(&root)?;
    let mut runs = Vec::new();
    for target in targets {
        runs.push(fuzz(&root, &bins, target, args.seconds)?);
    }
    print(&runs);
    Ok(runs)
}

fn host_triple() -> Result<String> {
    let out = Command::new("rustc")
        .arg("-vV")
        .output()
        .context("rustc -vV")?;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.lines()
        .find_map(|l| l.strip_prefix("host: "))
        .map(str::to_owned)
        .context("rustc -vV printed no host")
}

/// Builds every target; returns the directory of the binaries.
fn build(root: &Path) -> Result<PathBuf> {
    let triple = host_triple()?;
    let target_dir = root.join("target/fuzz");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = Command::new(cargo)
        .current_dir(root)
        .env("RUSTFLAGS", RUSTFLAGS)
        .args(["build", "--profile", "fuzz", "-p", "ewindow-fuzz", "--bins"])
        .args(["--locked", "--target", &triple, "--target-dir"])
        .arg(&target_dir)
        .status()
        .context("building the fuzz targets")?;
    if !status.success() {
        bail!("building the fuzz targets failed ({status})");
    }
    Ok(target_dir.join(triple).join("fuzz"))
}

fn fuzz(root: &Path, bins: &Path, target: &'static str, seconds: u64) -> Result<Run> {
    let corpus = root.join("target/fuzz/corpus").join(target);
    let artifacts = root.join("target/fuzz/artifacts").join(target);
    std::fs::create_dir_all(&corpus)?;
    std::fs::create_dir_all(&artifacts)?;
    for (i, seed) in seeds(root, target)?.iter().enumerate() {
        std::fs::write(corpus.join(format!("seed-{i:03}")), seed)?;
    }
    eprintln!("xtask: fuzzing {target} for {seconds} s");
    let started = Instant::now();
    let out = Command::new(bins.join(target))
        .arg(&corpus)
        .arg(format!("-max_total_time={seconds}"))
        .arg(format!("-artifact_prefix={}/", artifacts.display()))
        .args(["-print_final_stats=1", "-timeout=10", "-rss_limit_mb=2048"])
        .args(["-max_len=65536", "-close_fd_mask=1"])
        .output()
        .with_context(|| format!("running the fuzz target {target}"))?;
    let log = String::from_utf8_lossy(&out.stderr).into_owned();
    std::fs::write(artifacts.join("last-run.log"), &log)?;
    if !out.status.success() {
        let tail: Vec<&str> = log.lines().rev().take(40).collect();
        let tail: Vec<&str> = tail.into_iter().rev().collect();
        bail!(
            "fuzz target {target} crashed ({}); the input is in {}:\n{}",
            out.status,
            artifacts.display(),
            tail.join("\n")
        );
    }
    let stat = |name: &str| -> u64 {
        log.lines()
            .find_map(|l| l.strip_prefix(&format!("stat::{name}:")))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0)
    };
    Ok(Run {
        target,
        seconds: started.elapsed().as_secs_f64(),
        executions: stat("number_of_executed_units"),
        corpus: std::fs::read_dir(&corpus)?.count(),
    })
}

fn print(runs: &[Run]) {
    println!(
        "{:<16} {:>8} {:>14} {:>10} {:>8}",
        "target", "seconds", "executions", "exec/s", "corpus"
    );
    for r in runs {
        println!(
            "{:<16} {:>8.0} {:>14} {:>10.0} {:>8}",
            r.target,
            r.seconds,
            r.executions,
            r.executions as f64 / r.seconds.max(0.001),
            r.corpus
        );
    }
}

/// The files of `dir` whose name ends in `ext`, sorted.
fn files(dir: &Path, ext: &str) -> Result<Vec<Vec<u8>>> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.to_string_lossy().ends_with(ext))
        .collect();
    paths.sort();
    paths
        .iter()
        .map(|p| std::fs::read(p).with_context(|| format!("reading {}", p.display())))
        .collect()
}

/// The seeds of a target, from the tests' inputs (and, for keys, made now: never a key
/// from the tree).
fn seeds(root: &Path, target: &str) -> Result<Vec<Vec<u8>>> {
    let sdp = || files(&root.join("phone/tests/fixtures/sdp"), ".sdp");
    Ok(match target {
        "sip_request" => {
            let mut seeds: Vec<Vec<u8>> = files(&root.join("phone/tests/hostile"), ".sip")?
                .into_iter()
                .map(|b| {
                    String::from_utf8_lossy(&b)
                        .replace("{ADDR}", "127.0.0.1:5060")
                        .into_bytes()
                })
                .collect();
            for body in sdp()? {
                seeds.push(invite_with(&body));
            }
            seeds
        }
        "sdp_offer" | "sdp_answer" => {
            let mut seeds = Vec::new();
            for body in sdp()? {
                for mode in [0u8, 1, 2, 0x71] {
                    seeds.push([&[mode], body.as_slice()].concat());
                }
            }
            seeds
        }
        "window_toml" => vec![window::to_toml(&sample_window()?).into_bytes()],
        "roster" => {
            let config = sample_window()?;
            vec![window::roster_to_toml(&config.roster).into_bytes()]
        }
        "services" => vec![
            std::fs::read(root.join("overlays/qemu-x86_64/etc/ewindow/services.toml"))?,
            std::fs::read(root.join("overlays/rpi-arm64/etc/ewindow/services.toml"))?,
        ],
        "invitation" => {
            let mut secret = [0u8; SECRET_LEN];
            secret.copy_from_slice(&PrivateKey::generate()?.public_key().0[..SECRET_LEN]);
            let invitation = Invitation {
                inviter_key: PrivateKey::generate()?.public_key(),
                endpoint: "198.51.100.7:51820".parse::<InviteEndpoint>()?,
                secret,
                expires_unix: 1_900_000_000,
            };
            vec![invitation.encode().into_bytes()]
        }
        "control_request" => {
            let mut lines = Vec::new();
            for r in [
                phone::Request::Status,
                phone::Request::Call {
                    name: "beta".into(),
                },
                phone::Request::Curtain { on: Some(true) },
            ] {
                lines.push(serde_json::to_string(&r)?);
            }
            lines.push(serde_json::to_string(&overlay::Request::Invite {
                name: "gamma".into(),
                ttl_s: Some(600),
            })?);
            lines.push(serde_json::to_string(&overlay::PeerRequest::Relay {
                peer: "AAAA".into(),
                listen_port: 51820,
            })?);
            vec![lines.join("\n").into_bytes()]
        }
        other => bail!("no seeds for `{other}`"),
    })
}

/// A well-formed INVITE carrying `body`.
fn invite_with(body: &[u8]) -> Vec<u8> {
    let head = format!(
        "INVITE sip:ewindow@127.0.0.1:5060 SIP/2.0\r\n\
         Via: SIP/2.0/UDP 127.0.0.1:5062;branch=z9hG4bK-fuzz;rport\r\n\
         Max-Forwards: 70\r\n\
         From: <sip:alpha@127.0.0.1:5062>;tag=1\r\n\
         To: <sip:ewindow@127.0.0.1:5060>\r\n\
         Call-ID: fuzz@127.0.0.1\r\n\
         CSeq: 1 INVITE\r\n\
         Contact: <sip:alpha@127.0.0.1:5062>\r\n\
         User-Agent: baresip v1.0.0 (x86_64/linux)\r\n\
         Content-Type: application/sdp\r\n\
         Content-Length: {}\r\n\r\n",
        body.len()
    );
    [head.as_bytes(), body].concat()
}

/// A window of two members, its roster signed: keys made now.
fn sample_window() -> Result<WindowConfig> {
    let alpha = PrivateKey::generate()?;
    let beta = PrivateKey::generate()?;
    let member = |name: &str, key: &PrivateKey, relay| Member {
        name: name.into(),
        public_key: key.public_key(),
        endpoints: vec!["192.0.2.1:51820".parse().expect("endpoint")],
        relay,
    };
    let mut roster = Roster {
        version: 3,
        members: vec![member("alpha", &alpha, false), member("beta", &beta, true)],
        ..Roster::default()
    };
    let canonical = roster.canonical_bytes();
    roster.signature = Some(sign_update(&alpha, 3, "alpha", &canonical));
    roster.signed_by = Some("alpha".into());
    Ok(WindowConfig {
        name: "alpha".into(),
        listen_port: 51820,
        open_hours: OpenHours::Always,
        partner: Some("beta".into()),
        presence_interval_s: 5,
        roster,
        media: Default::default(),
        button: Default::default(),
    })
}
