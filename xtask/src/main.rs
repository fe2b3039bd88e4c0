//! `cargo xtask …`: the project's build, demo, tests and benchmarks, in Rust rather than shell.

mod bench;
mod debian;
mod demo;
mod flash;
mod fuzz;
mod image;
mod imagegst;
mod pair;
mod proc;
mod qemu;
mod tidy;

use std::path::PathBuf;
use std::process::{Command, ExitCode};

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "cargo xtask",
    about = "ewindow's build, demo, tests and benchmarks"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Two windows, each in a network namespace on one LAN, are set up from nothing (found,
    /// invite, redeem) and open to each other by themselves; live statistics, then a PNG
    /// contact sheet of what each received (needs root).
    Demo {
        /// Seconds the window stays open.
        #[arg(long, default_value_t = 10)]
        duration: u32,
        /// Audio codecs to offer, in preference order.
        #[arg(long, default_value = "opus")]
        codecs: String,
    },
    /// Install missing Debian packages, then fmt check, clippy -D warnings, every test, and
    /// the image: built twice and compared byte for byte, then booted under QEMU.
    Test {
        /// Skip the image (its two builds and its boot test: several minutes).
        #[arg(long)]
        no_image: bool,
        /// Extra arguments passed to `cargo test` (e.g. a test name filter).
        #[arg(trailing_var_arg = true)]
        args: Vec<String>,
    },
    /// Install the Debian packages the build, the tests and the demo need.
    Deps,
    /// Build the flashable disk image of a target (see docs/image.md).
    Image(image::ImageArgs),
    /// Write a built image to an SD card or USB stick with bmaptool (see docs/flash.md).
    Flash(flash::FlashArgs),
    /// Boot a built image under QEMU (TCG: OVMF for the PC, raspi3b for the Pi), serial on
    /// this terminal.
    Qemu {
        /// The target whose image to boot.
        #[arg(long, default_value = "qemu-x86_64")]
        target: String,
        /// Another image file.
        #[arg(long)]
        image: Option<PathBuf>,
        /// No window for the screen even when a display exists.
        #[arg(long)]
        headless: bool,
        /// The image's tests instead: the boot test (first boot, then a provisioned boot, the
        /// data partition checked with e2fsck after each), then the H.264 check with the
        /// image's own GStreamer.
        #[arg(long)]
        test: bool,
        /// Two copies of the PC image on one virtual LAN (with --test: both first runs
        /// through the serial consoles, the window opening, the button, a reboot).
        #[arg(long)]
        pair: bool,
    },
    /// The house rules the compiler does not check: every module in docs/architecture.md,
    /// no allow(dead_code) outside tests, no file over 1,500 lines of non-test code.
    Tidy,
    /// The coverage-guided fuzz targets (libFuzzer, stable toolchain): each runs for
    /// `--seconds`, seeded from the tests' inputs; a crash fails (its input is kept in
    /// target/fuzz/artifacts/TARGET/).
    Fuzz(fuzz::FuzzArgs),
    /// Benchmarks that print numbers (never pass/fail).
    Bench {
        #[command(subcommand)]
        what: bench::Bench,
    },
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> Result<()> {
    match cli.cmd {
        Cmd::Demo { duration, codecs } => {
            debian::ensure(&[debian::RUNTIME, debian::DEMO].concat())?;
            demo::run(duration, &codecs)
        }
        Cmd::Test { no_image, args } => test(&args, !no_image),
        Cmd::Deps => debian::ensure(&[debian::ALL, debian::IMAGE].concat()),
        Cmd::Image(args) => {
            debian::ensure(debian::IMAGE)?;
            image::run(args)
        }
        Cmd::Flash(args) => {
            debian::ensure(&["bmap-tools"])?;
            flash::run(args)
        }
        Cmd::Qemu {
            target,
            image,
            headless,
            test,
            pair,
        } => {
            debian::ensure(debian::IMAGE)?;
            if pair {
                if target != "qemu-x86_64" || image.is_some() {
                    anyhow::bail!("--pair boots two copies of the PC image (qemu-x86_64)");
                }
                return if test {
                    pair::test().map(|f| f.print())
                } else {
                    pair::interactive(headless)
                };
            }
            if test {
                qemu::boot_test(&target, true)?;
                imagegst::h264_check(&target)
            } else {
                qemu::interactive(&target, image, headless)
            }
        }
        Cmd::Tidy => tidy::run(),
        Cmd::Fuzz(args) => fuzz::run(&args).map(|_| ()),
        Cmd::Bench { what } => {
            debian::ensure(&[debian::ALL, debian::IMAGE].concat())?;
            bench::run(what)
        }
    }
}

/// The workspace root (the parent of `xtask/`).
pub fn root() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    dir.parent().map(PathBuf::from).unwrap_or(dir)
}

/// Runs `cargo ARGS` in the workspace root, failing on a non-zero exit.
pub fn cargo(args: &[&str]) -> Result<()> {
    cargo_env(args, &[])
}

/// [`cargo`] with extra environment variables.
pub fn cargo_env(args: &[&str], env: &[(&str, &str)]) -> Result<()> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    eprintln!("xtask: cargo {}", args.join(" "));
    let status = Command::new(&cargo)
        .args(args)
        .envs(env.iter().copied())
        .current_dir(root())
        .status()
        .with_context(|| format!("running {cargo}"))?;
    if !status.success() {
        bail!("`cargo {}` failed ({status})", args.join(" "));
    }
    Ok(())
}

/// How long `cargo xtask test` runs each fuzz target.
const FUZZ_SECONDS: u64 = 30;

fn test(extra: &[String], with_image: bool) -> Result<()> {
    debian::ensure(&[debian::ALL, debian::IMAGE].concat())?;
    cargo(&["fmt", "--all", "--", "--check"])?;
    tidy::run()?;
    cargo(&[
        "clippy",
        "--workspace",
        "--all-targets",
        "--",
        "-D",
        "warnings",
    ])?;
    let mut args = vec!["test", "--workspace", "--no-fail-fast"];
    args.extend(extra.iter().map(String::as_str));
    let tests = cargo(&args);
    // Every fuzz target for a bounded time: a crash fails the run.
    let tests = match (tests, fuzz::run(&fuzz::FuzzArgs::every(FUZZ_SECONDS))) {
        (Ok(()), f) => f.map(|_| ()),
        (Err(e), Ok(_)) => Err(e),
        (Err(e), Err(f)) => Err(e.context(format!("and fuzzing failed too: {f:#}"))),
    };
    if !with_image {
        return tests;
    }
    // The images even when a test failed: their result is worth having in the same run.
    let mut image = Ok(());
    for target in image::TARGETS {
        let r = image::run(image::ImageArgs::reproducibility_check(target))
            .and_then(|()| qemu::boot_test(target, false).map(|_| ()))
            .and_then(|()| imagegst::h264_check(target))
            // two windows from the PC image: the first run, the button, a reboot
            .and_then(|()| match *target {
                "qemu-x86_64" => pair::test().map(|f| f.print()),
                _ => Ok(()),
            })
            .with_context(|| format!("the {target} image"));
        if let Err(e) = r {
            eprintln!("xtask: {e:#}");
            if image.is_ok() {
                image = Err(e);
            }
        }
    }
    match (tests, image) {
        (Ok(()), Ok(())) => Ok(()),
        (Err(e), Ok(())) => Err(e),
        (Ok(()), Err(e)) => Err(e),
        (Err(t), Err(e)) => Err(t.context(format!("and the image failed too: {e:#}"))),
    }
}
