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
}

/// Runs one benchmark.
pub fn run(what: Bench) -> Result<()> {
    match what {
        Bench::Phone => crate::cargo(&["bench", "-p", "ewindow-phone", "--bench", "phone"]),
        Bench::Media => crate::cargo(&["bench", "-p", "ewindow-phone", "--bench", "media"]),
        Bench::Init => crate::cargo(&["bench", "-p", "ewindow-init", "--bench", "init"]),
        Bench::Boot { target } => crate::qemu::bench(&target),
    }
}
