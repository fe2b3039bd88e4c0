//! `ewindow-init`, the window's PID 1: mounts, reaping, ordered services with readiness and
//! restart backoff, a control socket, and an orderly shutdown.
//!
//! The same code path runs as PID 1 and, for development and tests, as an ordinary process
//! (then a child subreaper that skips the mounts and exits 0 after a shutdown).
//!
//! **Invariant:** as PID 1 this process never exits on its own: bad arguments fall back to the
//! defaults, set-up errors and panics end in a loop that keeps reaping.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use nix::sys::reboot::RebootMode;
use tracing::{error, info, warn};
use tracing_subscriber::filter::Targets;
use tracing_subscriber::prelude::*;

use ewindow_init::runtime::{Options, ShutdownKind, Supervisor};
use ewindow_init::{early, mounts};

/// Command line of `ewindow-init`.
#[derive(Debug, Parser)]
#[command(version, about = "The window's PID 1")]
struct Cli {
    /// The services file.
    #[arg(long, default_value = "/etc/ewindow/services.toml")]
    config: PathBuf,
    /// Services file to use when --config is broken at start-up.
    #[arg(long)]
    fallback: Option<PathBuf>,
    /// The control socket (line-delimited JSON).
    #[arg(long, default_value = ewindow_io::paths::INIT_SOCKET)]
    control: PathBuf,
    /// As PID 1, do not mount /proc, /sys, /dev, /run, /tmp nor remount / read-only (always
    /// so as PID 1 of a PID namespace: a container, a test).
    #[arg(long)]
    no_mounts: bool,
    /// Act as the machine's init even as PID 1 of a PID namespace (mounts, clock, hostname,
    /// read-only / and reboot(2) at shutdown). Without it, only PID 1 of the initial PID
    /// namespace does; PID 1 of another stops its services at shutdown and exits.
    #[arg(long)]
    system: bool,
    /// As PID 1, set this hostname (default: /etc/hostname on a real boot; in a PID
    /// namespace only when given, and only in a UTS namespace of its own).
    #[arg(long)]
    hostname: Option<String>,
    /// Seconds leftover processes get between SIGTERM and SIGKILL at shutdown.
    #[arg(long, default_value_t = 3)]
    final_grace_s: u64,
}

fn main() -> ExitCode {
    let pid1 = nix::unistd::getpid().as_raw() == 1;
    if pid1 && std::env::var_os("PATH").is_none() {
        // The kernel starts init with HOME and TERM only; services inherit this.
        std::env::set_var("PATH", "/usr/sbin:/usr/bin:/sbin:/bin");
    }
    // `EWINDOW_LOG` as `target=level` directives (`info,ewindow_init::modules=debug`), read by
    // `Targets` rather than `EnvFilter`: no regular expressions in PID 1 (smaller, less RSS).
    let filter = std::env::var("EWINDOW_LOG")
        .ok()
        .and_then(|v| v.parse::<Targets>().ok())
        .unwrap_or_else(|| Targets::new().with_default(tracing::Level::INFO));
    tracing_subscriber::registry()
        .with(
            tracing_subscriber::fmt::layer()
                .with_ansi(false)
                .with_writer(std::io::stderr),
        )
        .with(filter)
        .init();

    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) if !pid1 => e.exit(),
        Err(e) => {
            // The kernel hands init the unknown parts of its command line: never die of them.
            warn!("ignoring arguments: {e}");
            Cli::parse_from(["ewindow-init"])
        }
    };
    // Only the machine's init touches the machine (mounts, hostname, clock, read-only /,
    // reboot(2)); PID 1 of a namespace is a container's init, like tini.
    let system = pid1 && (cli.system || early::machine_init());
    let no_mounts = cli.no_mounts || !system;
    let result = std::panic::catch_unwind(|| run(cli, pid1, system));
    match result {
        Ok(Ok(kind)) if !pid1 => {
            info!("{kind:?} done; exiting (not PID 1)");
            ExitCode::SUCCESS
        }
        Ok(Ok(kind)) if !system => {
            info!("{kind:?} done; exiting (PID 1 of a namespace, not the machine's init)");
            ExitCode::SUCCESS
        }
        Ok(Ok(kind)) => finish(kind, no_mounts),
        Ok(Err(e)) if !system => {
            eprintln!("ewindow-init: {e:#}");
            ExitCode::from(1)
        }
        Ok(Err(e)) => {
            error!("{e:#}");
            reap_forever()
        }
        Err(_) if !system => ExitCode::from(1),
        Err(_) => {
            error!("panic outside the main loop");
            reap_forever()
        }
    }
}

/// Sets up the process (mounts or subreaper) and runs the supervisor until a shutdown is done.
fn run(cli: Cli, pid1: bool, system: bool) -> anyhow::Result<ShutdownKind> {
    let no_mounts = cli.no_mounts || !system;
    if pid1 {
        if !system {
            info!("PID 1 of a PID namespace: the machine is left alone (no mounts, no clock, no reboot)");
        }
        if !no_mounts {
            for failure in mounts::mount_early() {
                error!("{failure}");
            }
            // Ctrl-Alt-Del sends SIGINT to init instead of rebooting at once.
            if let Err(e) = nix::sys::reboot::set_cad_enabled(false) {
                warn!("cannot route Ctrl-Alt-Del to init: {e}");
            }
        }
        // In a namespace only an explicit --hostname is set, never /etc/hostname, and only
        // in a UTS namespace of its own: the machine's name is the machine's init's.
        let etc = std::path::Path::new("/etc/hostname");
        let name = if system && !cli.no_mounts {
            early::hostname_to_set(cli.hostname.as_deref(), etc)
        } else if system || early::own_uts_namespace() {
            cli.hostname.clone()
        } else {
            if let Some(name) = &cli.hostname {
                warn!(hostname = %name, "not set: no UTS namespace of its own");
            }
            None
        };
        if let Some(name) = name {
            match early::set_hostname(&name) {
                Ok(()) => info!(hostname = %name, "hostname set"),
                Err(e) => error!("{e}"),
            }
        }
        if let Err(e) = early::loopback_up() {
            error!("{e}");
        }
    } else {
        nix::sys::prctl::set_child_subreaper(true).context("becoming a child subreaper")?;
    }
    info!(pid1, config = %cli.config.display(), "ewindow-init starting");
    let mut sup = Supervisor::new(Options {
        config: cli.config,
        fallback: cli.fallback,
        control: cli.control,
        pid1,
        final_grace: Duration::from_secs(cli.final_grace_s),
        set_clock: system && !no_mounts,
    })?;
    Ok(sup.run())
}

/// The end of an orderly shutdown as PID 1: sync, remount read-only, reboot(2).
fn finish(kind: ShutdownKind, no_mounts: bool) -> ExitCode {
    nix::unistd::sync();
    if !no_mounts {
        if let Err(e) = mounts::remount_root_readonly() {
            warn!("remounting / read-only: {e}");
        }
    }
    let mode = match kind {
        ShutdownKind::Reboot => RebootMode::RB_AUTOBOOT,
        ShutdownKind::Poweroff => RebootMode::RB_POWER_OFF,
        ShutdownKind::Halt => RebootMode::RB_HALT_SYSTEM,
    };
    info!("{kind:?}");
    let Err(e) = nix::sys::reboot::reboot(mode);
    error!("reboot(2): {e}");
    if no_mounts {
        // PID 1 of a namespace or container without CAP_SYS_BOOT: ending is the shutdown.
        return ExitCode::SUCCESS;
    }
    reap_forever()
}

/// What PID 1 does when it cannot do anything better: keep reaping, never exit.
fn reap_forever() -> ! {
    loop {
        match nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(-1), None) {
            Ok(_) | Err(nix::errno::Errno::EINTR) => {}
            Err(_) => std::thread::sleep(Duration::from_secs(60)),
        }
    }
}
