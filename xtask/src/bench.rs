//! `cargo xtask bench …`: benchmarks that print tables of measured numbers, never pass/fail.
//!
//! Each benchmark is a `harness = false` bench target of the crate it measures, so it shares
//! that crate's test harness for real peers (baresip); xtask only builds it in release mode
//! and runs it.

use anyhow::Result;
use clap::Subcommand;

/// The benchmarks.
#[derive(Subcommand, Clone)]
pub enum Bench {
    /// Call setup, CPU and peak RSS of a 20 s Opus call: ours→baresip against baresip→baresip.
    Phone,
    /// VP8 + Opus from the same clip for 30 s: CPU and RSS against baresip, and latency.
    Media,
    /// Windows behind NAT (namespaces, nftables NAT, wireguard-go): seconds to open directly
    /// and through a relay member, the relay's CPU and the latency it adds.
    Relay,
    /// Two windows open to each other for N minutes: RSS, FDs, threads and CPU of each side's
    /// phone, overlay and wireguard-go, every minute.
    Soak {
        /// How long the windows stay open.
        #[arg(long, default_value_t = 60)]
        minutes: u32,
    },
    /// ewindow-init: exec → first service started, RSS, idle wake-ups (with and without a
    /// watchdog).
    Init,
    /// The image under QEMU TCG: boot to "all services up", next to a busybox-only
    /// initramfs of the same kernel (needs `cargo xtask image` first).
    Boot {
        /// The image target.
        #[arg(long, default_value = "qemu-x86_64")]
        target: String,
    },
    /// Video candidates (VP8/H.264 at 640x480@30 … 320x240@25): encode + decode CPU per
    /// frame with the PC image's GStreamer natively and the Pi image's under qemu-aarch64,
    /// and the Pi 3 estimate (needs both images built).
    Video {
        /// Frames per candidate.
        #[arg(long, default_value_t = 150)]
        frames: u32,
        /// The assumed speed ratio of this machine's core to a Pi 3's Cortex-A53.
        #[arg(long, default_value_t = 10.0)]
        a53_factor: f64,
    },
}

/// Runs one benchmark.
pub fn run(what: Bench) -> Result<()> {
    match what {
        Bench::Phone => crate::cargo(&["bench", "-p", "ewindow-phone", "--bench", "phone"]),
        Bench::Media => crate::cargo(&["bench", "-p", "ewindow-phone", "--bench", "media"]),
        Bench::Init => crate::cargo(&["bench", "-p", "ewindow-init", "--bench", "init"]),
        Bench::Relay => lab_bench("relay", &[]),
        Bench::Soak { minutes } => lab_bench("soak", &["--minutes", &minutes.to_string()]),
        Bench::Boot { target } => crate::qemu::bench(&target),
        Bench::Video { frames, a53_factor } => crate::imagegst::bench_video(frames, a53_factor),
    }
}

/// A benchmark in the overlay's lab: the phone it runs is built first (release), so a
/// benchmark never measures a stale binary.
fn lab_bench(name: &str, args: &[&str]) -> Result<()> {
    crate::cargo(&[
        "build",
        "--release",
        "-p",
        "ewindow-phone",
        "-p",
        "ewindow-init",
    ])?;
    let mut all = vec!["bench", "-p", "ewindow-overlay", "--bench", name, "--"];
    all.extend_from_slice(args);
    crate::cargo(&all)
}
