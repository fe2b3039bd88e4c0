//! `ewindow-phone`: the window's SIP soft-phone.
//!
//! `listen` waits for calls (auto-answering them when asked); `call` places one. Both end with
//! one line saying how the call went and exit 0 only when it was established and ended as
//! asked. See `docs/architecture.md` for how the modules fit.

use std::io::IsTerminal;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use crate::config::CommonArgs;
use crate::media::{AudioSink, AudioSource, VideoSource};
use crate::{call, probe, window};
use clap::{Parser, Subcommand};

#[derive(Parser, Debug)]
#[command(
    name = "ewindow-phone",
    version,
    about = "The Electronic Window's SIP soft-phone"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Wait for calls on ADDR:PORT.
    Listen {
        /// Local SIP address to listen on (default with --window: the overlay address, 5060).
        #[arg(long, value_name = "ADDR:PORT")]
        sip: Option<SocketAddr>,
        /// Answer incoming calls at once (otherwise they ring until cancelled).
        #[arg(long)]
        auto_answer: bool,
        /// Serve the control socket (members, reload) at PATH.
        #[arg(long, value_name = "PATH")]
        control: Option<PathBuf>,
        #[command(flatten)]
        common: CommonArgs,
    },
    /// Run as the window: open to members by the window policy (partner, next online member,
    /// open hours, curtain, redial), controlled over --control.
    Window {
        /// The window file.
        #[arg(
            long = "window-file",
            value_name = "FILE",
            default_value = ewindow_io::paths::WINDOW_FILE
        )]
        window_file: PathBuf,
        /// The control socket (status, call, next, hangup, curtain, subscribe, members).
        #[arg(long, value_name = "PATH", default_value = ewindow_io::paths::PHONE_SOCKET)]
        control: PathBuf,
        #[command(flatten)]
        common: CommonArgs,
    },
    /// Device checks for the first-boot wizard (one result per line on stdout).
    Probe {
        #[command(subcommand)]
        what: Probe,
    },
    /// Call SIP-URI.
    Call {
        /// Whom to call, e.g. sip:window@10.0.0.2:5060;transport=tcp, or with --window a
        /// member's name.
        #[arg(value_name = "SIP-URI")]
        uri: String,
        /// Local SIP address (default: an ephemeral port on 127.0.0.1, or with --window on the
        /// overlay address).
        #[arg(long, value_name = "ADDR:PORT")]
        sip: Option<SocketAddr>,
        /// Give up (CANCEL) when the call is not answered within SECS.
        #[arg(long, value_name = "SECS", default_value_t = 30.0)]
        ring_timeout: f64,
        #[command(flatten)]
        common: CommonArgs,
    },
}

#[derive(Subcommand, Debug)]
enum Probe {
    /// Print `level DBFS` ten times a second.
    Level {
        /// test, default, or an ALSA/PulseAudio device.
        #[arg(long, default_value = "default")]
        audio_source: AudioSource,
        /// Stop after SECS (default: run until killed).
        #[arg(long, value_name = "SECS")]
        duration: Option<f64>,
    },
    /// Count a camera's frames for two seconds and print `fps N`.
    Camera {
        /// test or /dev/videoN.
        #[arg(long)]
        video_source: VideoSource,
    },
    /// Play a one-second tone.
    Tone {
        /// null, default, or an ALSA/PulseAudio device.
        #[arg(long, default_value = "default")]
        audio_sink: AudioSink,
    },
}

/// The program, with its command line (`std::env::args_os()` from a `main`).
pub fn main(args: Vec<std::ffi::OsString>) -> ExitCode {
    let cli = Cli::parse_from(args);
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("EWINDOW_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,rsipstack=warn")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_target(false)
        .init();
    if let Cmd::Probe { what } = &cli.cmd {
        let result = match what {
            Probe::Level {
                audio_source,
                duration,
            } => probe::level(audio_source, duration.map(Duration::from_secs_f64)),
            Probe::Camera { video_source } => probe::camera(video_source),
            Probe::Tone { audio_sink } => probe::tone(audio_sink),
        };
        return match result {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                println!("error {e:#}");
                ExitCode::FAILURE
            }
        };
    }
    // Load GStreamer, and the plugins every call uses (libsrtp initialises on its first
    // element), now rather than between the answer and the first packet.
    if let Err(e) = gstreamer::init() {
        eprintln!("ewindow-phone: cannot initialise GStreamer: {e}");
        return ExitCode::FAILURE;
    }
    for factory in [
        "rtpbin", "srtpenc", "srtpdec", "opusenc", "opusdec", "udpsrc",
    ] {
        let _ = gstreamer::ElementFactory::make(factory).build();
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("ewindow-phone: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        tokio::spawn(crate::memory::trim_forever());
        match cli.cmd {
            Cmd::Listen {
                sip,
                auto_answer,
                control,
                common,
            } => call::listen(sip, auto_answer, control.as_deref(), common.into()).await,
            Cmd::Probe { .. } => Ok("probed".into()),
            Cmd::Window {
                window_file,
                control,
                common,
            } => window::run(&window_file, Some(&control), common.into()).await,
            Cmd::Call {
                uri,
                sip,
                ring_timeout,
                common,
            } => {
                let loopback = SocketAddr::from(([127, 0, 0, 1], 0));
                let sip = sip.or(common.window.is_none().then_some(loopback));
                call::call(
                    &uri,
                    sip,
                    Duration::from_secs_f64(ring_timeout),
                    common.into(),
                )
                .await
            }
        }
    });
    // Leave without waiting for lingering transport tasks.
    runtime.shutdown_timeout(Duration::from_millis(200));
    match result {
        Ok(summary) => {
            println!("{summary}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            println!("ewindow-phone: {e:#}");
            ExitCode::FAILURE
        }
    }
}
