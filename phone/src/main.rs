//! `ewindow-phone`: the window's SIP soft-phone.
//!
//! `listen` waits for calls (auto-answering them when asked); `call` places one. Both end with
//! one line saying how the call went and exit 0 only when it was established and ended as
//! asked. See `docs/architecture.md` for how the modules fit.

mod board;
mod call;
mod control;
mod media;
mod members;
mod netdev;
mod policy;
mod probe;
mod sdp;
mod sip;
mod window;

use std::io::IsTerminal;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use crate::media::{AudioSink, AudioSource, EchoCancel, VideoSink, VideoSource};
use crate::sdp::{AudioCodec, SrtpMode, VideoCodec};
use crate::sip::Transport;

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

/// Flags shared by `listen` and `call`.
#[derive(Args, Debug, Clone)]
pub struct CommonArgs {
    /// SIP transport.
    #[arg(long, default_value = "udp")]
    pub transport: Transport,
    /// Our SIP user name (the window's name; with --window, the window file's).
    #[arg(long, default_value = "ewindow")]
    pub name: String,
    /// The window file (window.toml): SIP on this window's overlay address, calls and OPTIONS
    /// from members only (403 for everyone else), presence pings to members; SIGHUP reloads it.
    #[arg(long, value_name = "FILE")]
    pub window: Option<PathBuf>,
    /// Audio source: test (a tone), default, or a PulseAudio/ALSA device name.
    #[arg(long, default_value = "test")]
    pub audio_source: AudioSource,
    /// Audio sink: null (decoded and dropped), default, or a PulseAudio/ALSA device name.
    #[arg(long, default_value = "null")]
    pub audio_sink: AudioSink,
    /// Echo cancellation (webrtcdsp): auto = on with real audio devices, off with test ones.
    #[arg(long, value_enum, default_value = "auto")]
    pub echo_cancel: EchoCancel,
    /// Audio codecs in preference order: opus, pcmu, pcma, speex (both rates), speex16, speex8.
    #[arg(long, default_value = "opus,pcmu,pcma,speex", value_parser = parse_codecs)]
    pub codecs: CodecList,
    /// Video codecs in preference order (vp8, vp9, h264), or `none` for an audio-only call.
    #[arg(long, default_value = "vp8,vp9,h264", value_parser = parse_video_codecs)]
    pub video_codecs: VideoCodecList,
    /// Video source: test (moving pattern with a clock), none, file:PATH (looped), /dev/videoN.
    #[arg(long, default_value = "test")]
    pub video_source: VideoSource,
    /// Video sink: null (decoded and counted), auto (a desktop window), kms (fullscreen).
    #[arg(long, default_value = "null")]
    pub video_sink: VideoSink,
    /// Picture size we send.
    #[arg(long, default_value = "640x480", value_parser = parse_size)]
    pub video_size: (u32, u32),
    /// Frames per second we send.
    #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u32).range(1..=60))]
    pub video_fps: u32,
    /// Video encoder threads (in window mode the board's profile or window.toml decide).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=8))]
    pub video_threads: u32,
    /// Video bitrate in kbit/s (capped by the peer's b=AS / b=TIAS).
    #[arg(long, default_value_t = 500, value_parser = clap::value_parser!(u32).range(50..=20000))]
    pub video_kbps: u32,
    /// SRTP (SDES keys): required (refuse plain RTP), optional (use it when offered), off.
    #[arg(long, default_value = "required", value_parser = parse_srtp)]
    pub srtp: SrtpMode,
    /// Jitter buffer latency in milliseconds.
    #[arg(long, default_value_t = 40)]
    pub jitter_ms: u32,
    /// Packetization time in milliseconds.
    #[arg(long, default_value_t = 20)]
    pub ptime: u32,
    /// End the call when no RTP arrives for SECS.
    #[arg(long, value_name = "SECS", default_value_t = 5.0)]
    pub rtp_timeout: f64,
    /// End the (first) call after SECS; `listen` then exits.
    #[arg(long, value_name = "SECS")]
    pub duration: Option<f64>,
    /// Write the call statistics as JSON to PATH when the call ends.
    #[arg(long, value_name = "PATH")]
    pub stats_json: Option<PathBuf>,
    /// Benchmarks: send clicks and time-stamped video frames, and record when they arrive
    /// (`marks_us` and `latency_ms` in the statistics).
    #[arg(long, hide = true)]
    pub latency_marks: bool,
    /// Print a statistics line every second during the call.
    #[arg(long)]
    pub live_stats: bool,
}

/// Codecs in preference order (a newtype so that clap takes one comma-separated value).
#[derive(Clone, Debug)]
pub struct CodecList(pub Vec<AudioCodec>);

fn parse_codecs(s: &str) -> Result<CodecList, String> {
    AudioCodec::parse_list(s)
        .map(CodecList)
        .map_err(|e| e.to_string())
}

/// Video codecs in preference order; empty for audio only.
#[derive(Clone, Debug)]
pub struct VideoCodecList(pub Vec<VideoCodec>);

pub fn parse_video_codecs(s: &str) -> Result<VideoCodecList, String> {
    if s == "none" {
        return Ok(VideoCodecList(Vec::new()));
    }
    VideoCodec::parse_list(s)
        .map(VideoCodecList)
        .map_err(|e| e.to_string())
}

fn parse_srtp(s: &str) -> Result<SrtpMode, String> {
    match s {
        "required" => Ok(SrtpMode::Required),
        "optional" => Ok(SrtpMode::Optional),
        "off" => Ok(SrtpMode::Off),
        _ => Err(format!("`{s}`: expected required, optional or off")),
    }
}

pub fn parse_size(s: &str) -> Result<(u32, u32), String> {
    let bad = || format!("`{s}` is not a size like 640x480");
    let (w, h) = s.split_once(['x', 'X']).ok_or_else(bad)?;
    let (w, h): (u32, u32) = (w.parse().map_err(|_| bad())?, h.parse().map_err(|_| bad())?);
    if !(16..=4096).contains(&w) || !(16..=4096).contains(&h) || w % 2 != 0 || h % 2 != 0 {
        return Err(format!("{s}: width and height must be even, 16 to 4096"));
    }
    Ok((w, h))
}

impl CommonArgs {
    fn rtp_timeout(&self) -> Duration {
        Duration::from_secs_f64(self.rtp_timeout.max(0.5))
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
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
        match cli.cmd {
            Cmd::Listen {
                sip,
                auto_answer,
                control,
                common,
            } => call::listen(sip, auto_answer, control.as_deref(), common).await,
            Cmd::Probe { .. } => Ok("probed".into()),
            Cmd::Window {
                window_file,
                control,
                common,
            } => window::run(&window_file, Some(&control), common).await,
            Cmd::Call {
                uri,
                sip,
                ring_timeout,
                common,
            } => {
                let loopback = SocketAddr::from(([127, 0, 0, 1], 0));
                let sip = sip.or(common.window.is_none().then_some(loopback));
                call::call(&uri, sip, Duration::from_secs_f64(ring_timeout), common).await
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
