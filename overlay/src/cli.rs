//! `ewindow-overlay`: the window's WireGuard overlay.
//!
//! - `up` (the `overlay` service): makes the identity key at first start, brings up the
//!   interface for the roster in `window.toml`, says READY, serves invitations and roster
//!   updates, and re-applies changes without taking the interface down.
//! - `redeem CODE`: a new window joins with an invitation (the first-boot wizard runs it).
//! - `found NAME`: a new window starts a network of its own (the first-boot wizard runs it).
//! - `identity`: prints this window's public key (making the key if there is none yet).

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use crate::{identity, service};
use clap::{Args, Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "ewindow-overlay",
    version,
    about = "The window's WireGuard overlay"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Args, Clone)]
struct Common {
    /// The window file (name and roster).
    #[arg(long, default_value = ewindow_io::paths::WINDOW_FILE)]
    window: PathBuf,
    /// The private key, made here at first start (0600).
    #[arg(long, default_value = ewindow_io::paths::IDENTITY_KEY)]
    identity: PathBuf,
    /// Open invitations (0600).
    #[arg(long, default_value = ewindow_io::paths::INVITATIONS)]
    invitations: PathBuf,
    /// The control socket.
    #[arg(long, default_value = ewindow_io::paths::OVERLAY_SOCKET)]
    control: PathBuf,
    /// The phone's control socket, told to reload when the roster changes.
    #[arg(long, default_value = ewindow_io::paths::PHONE_SOCKET)]
    phone_control: PathBuf,
    /// WireGuard interface.
    #[arg(long, default_value = "ewin0")]
    interface: String,
    /// WireGuard backend: auto (kernel when it has WireGuard), kernel, userspace (wireguard-go).
    #[arg(long, default_value = "auto")]
    backend: String,
    /// This window's underlay endpoint (HOST:PORT) for newcomers and the roster; repeatable.
    #[arg(long = "endpoint")]
    endpoints: Vec<String>,
}

#[derive(Subcommand)]
enum Cmd {
    /// Bring the overlay up and keep it in line with the roster (the `overlay` service).
    Up(Common),
    /// Join a network with an invitation code.
    Redeem {
        /// The code (`EWIN1-…`), as typed or scanned.
        code: String,
        /// The WireGuard port this window listens on.
        #[arg(long, default_value_t = 51820)]
        listen_port: u16,
        /// How long to keep trying to reach the inviter, in seconds.
        #[arg(long, default_value_t = 30)]
        timeout_s: u64,
        #[command(flatten)]
        common: Common,
    },
    /// Start a new network: this window its first member, its roster signed by itself.
    Found {
        /// This window's name.
        name: String,
        /// The WireGuard port this window listens on.
        #[arg(long, default_value_t = 51820)]
        listen_port: u16,
        #[command(flatten)]
        common: Common,
    },
    /// Print this window's public key (made now if there is none yet).
    Identity {
        /// The private key file.
        #[arg(long, default_value = ewindow_io::paths::IDENTITY_KEY)]
        identity: PathBuf,
    },
}

impl Common {
    fn options(self) -> service::Options {
        service::Options {
            window: self.window,
            identity: self.identity,
            invitations: self.invitations,
            control: self.control,
            phone_control: Some(self.phone_control),
            iface: self.interface,
            backend: self.backend,
            endpoints: self.endpoints,
        }
    }
}

/// The program, with its command line (`std::env::args_os()` from a `main`).
pub fn main(args: Vec<std::ffi::OsString>) -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("EWINDOW_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_ansi(false)
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse_from(args);
    // wireguard-control starts a daemonized wireguard-go by itself when it cannot reach one;
    // ours is a supervised service, so that must never happen (an orphan on PID 1).
    std::env::set_var("WG_USERSPACE_IMPLEMENTATION", "/bin/false");
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("ewindow-overlay: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match cli.cmd {
            Cmd::Up(common) => service::up(common.options()).await.map(|()| None),
            Cmd::Redeem {
                code,
                listen_port,
                timeout_s,
                common,
            } => service::redeem(
                &code,
                service::RedeemOptions {
                    overlay: common.options(),
                    listen_port,
                    timeout: Duration::from_secs(timeout_s),
                },
            )
            .await
            .map(|(name, members)| {
                Some(format!("joined as {name}; members: {}", members.join(", ")))
            }),
            Cmd::Found {
                name,
                listen_port,
                common,
            } => service::found(&common.options(), &name, listen_port)
                .map(|()| Some(format!("founded a new network; {name} is its first member"))),
            Cmd::Identity { identity } => {
                identity::load_or_create(&identity).map(|k| Some(k.public_key().to_base64()))
            }
        }
    });
    match result {
        Ok(Some(line)) => {
            println!("{line}");
            ExitCode::SUCCESS
        }
        Ok(None) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ewindow-overlay: {e:#}");
            ExitCode::FAILURE
        }
    }
}
