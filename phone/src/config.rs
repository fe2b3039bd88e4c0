//! The call configuration: the command line's flags ([`CommonArgs`], shared by `listen`,
//! `call` and `window`) become one typed [`CallConfig`] once; in window mode
//! [`CallConfig::for_window`] then applies the board's video profile and `window.toml`
//! `[media]`, once, at start. Every call gets the same `CallConfig` by reference, down to the
//! media pipeline. Pure.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{anyhow, Result};
use clap::Args;
use ewindow_protocol::window::Media;

use crate::media::{AudioSink, AudioSource, EchoCancel, VideoSink, VideoSource};
use crate::sdp::{AudioCodec, SrtpMode, VideoCodec};
use crate::sip::Transport;

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
    /// Audio sink: null (decoded and dropped), clock (dropped when a speaker would play it),
    /// default, or a PulseAudio/ALSA device name.
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
    /// Video sink: null (decoded and counted), clock (dropped when a screen would show it),
    /// auto (a desktop window), kms (fullscreen).
    #[arg(long, default_value = "null")]
    pub video_sink: VideoSink,
    /// Also keep the received pictures as DIR/frame-NNNNN.png (160 pixels wide, the last
    /// 300): what the window shows, for a contact sheet (`cargo xtask demo`).
    #[arg(long, value_name = "DIR")]
    pub snapshots: Option<PathBuf>,
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

pub fn parse_codecs(s: &str) -> Result<CodecList, String> {
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

pub fn parse_srtp(s: &str) -> Result<SrtpMode, String> {
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

/// What a call sends and how it receives audio.
#[derive(Debug, Clone, PartialEq)]
pub struct AudioSettings {
    /// Codecs in preference order.
    pub codecs: Vec<AudioCodec>,
    /// Packetization time, ms.
    pub ptime_ms: u32,
    /// Where the sound comes from.
    pub source: AudioSource,
    /// Where the peer's sound goes.
    pub sink: AudioSink,
    /// Echo cancellation.
    pub echo_cancel: EchoCancel,
}

/// What a call sends and how it shows video.
#[derive(Debug, Clone, PartialEq)]
pub struct VideoSettings {
    /// Codecs in preference order; empty: audio only.
    pub codecs: Vec<VideoCodec>,
    /// Where the picture comes from.
    pub source: VideoSource,
    /// Where the peer's picture goes.
    pub sink: VideoSink,
    /// Where PNGs of the peer's pictures go, if anywhere.
    pub snapshots: Option<PathBuf>,
    /// Picture size we send.
    pub size: (u32, u32),
    /// Frames per second we send.
    pub fps: u32,
    /// Encoder target, kbit/s (capped by the peer's b=AS / b=TIAS).
    pub kbps: u32,
    /// Encoder threads.
    pub threads: u32,
}

/// Everything a call needs, built once.
#[derive(Debug, Clone, PartialEq)]
pub struct CallConfig {
    /// Our SIP user name (the window's name in window mode).
    pub name: String,
    /// The window file, when the phone serves a window's members.
    pub window: Option<PathBuf>,
    /// SIP transport.
    pub transport: Transport,
    /// SRTP policy.
    pub srtp: SrtpMode,
    /// Audio.
    pub audio: AudioSettings,
    /// Video.
    pub video: VideoSettings,
    /// Jitter buffer latency (rtpbin), ms.
    pub jitter_ms: u32,
    /// Benchmarks: time-stamped clicks and frames.
    pub latency_marks: bool,
    /// A call ends when no RTP arrives for this long.
    pub rtp_timeout: Duration,
    /// A call ends after this long (`listen` then exits).
    pub duration: Option<Duration>,
    /// Where to write the call statistics when a call ends.
    pub stats_json: Option<PathBuf>,
    /// A statistics line every second.
    pub live_stats: bool,
}

impl From<CommonArgs> for CallConfig {
    fn from(a: CommonArgs) -> CallConfig {
        CallConfig {
            name: a.name,
            window: a.window,
            transport: a.transport,
            srtp: a.srtp,
            audio: AudioSettings {
                codecs: a.codecs.0,
                ptime_ms: a.ptime,
                source: a.audio_source,
                sink: a.audio_sink,
                echo_cancel: a.echo_cancel,
            },
            video: VideoSettings {
                codecs: a.video_codecs.0,
                source: a.video_source,
                sink: a.video_sink,
                snapshots: a.snapshots,
                size: a.video_size,
                fps: a.video_fps,
                kbps: a.video_kbps,
                threads: a.video_threads,
            },
            jitter_ms: a.jitter_ms,
            latency_marks: a.latency_marks,
            rtp_timeout: Duration::from_secs_f64(a.rtp_timeout.max(0.5)),
            duration: a.duration.map(|s| Duration::from_secs_f64(s.max(0.0))),
            stats_json: a.stats_json,
            live_stats: a.live_stats,
        }
    }
}

impl CallConfig {
    /// The configuration of the window `name` (window mode): the devices the wizard chose in
    /// `window.toml` `[media]` win over the command line's defaults; the video is the board's
    /// profile (from its device-tree `model`), then what `[media]` sets.
    pub fn for_window(
        mut self,
        window: PathBuf,
        name: String,
        media: &Media,
        model: Option<&str>,
    ) -> Result<CallConfig> {
        self.window = Some(window);
        self.name = name;
        if let Some(v) = &media.camera {
            self.video.source = v.parse().map_err(|e| anyhow!("[media] camera: {e}"))?;
        }
        if let Some(v) = &media.microphone {
            self.audio.source = v.parse().map_err(|e| anyhow!("[media] microphone: {e}"))?;
        }
        if let Some(v) = &media.speaker {
            self.audio.sink = v.parse().map_err(|e| anyhow!("[media] speaker: {e}"))?;
        }
        self.video.apply(model, media)?;
        Ok(self)
    }
}

impl VideoSettings {
    /// The board's profile, then `window.toml` `[media]` `video_*`.
    fn apply(&mut self, model: Option<&str>, media: &Media) -> Result<()> {
        if let Some(p) = model.and_then(crate::board::for_model) {
            tracing::info!(
                model = model.unwrap_or_default(),
                "video profile {}x{}@{} {} kbit/s, {} encoder threads",
                p.size.0,
                p.size.1,
                p.fps,
                p.kbps,
                p.threads
            );
            self.size = p.size;
            self.fps = p.fps;
            self.kbps = p.kbps;
            self.threads = p.threads;
            self.codecs = p.codecs;
        }
        let bad = |k: &str, e: String| anyhow!("window.toml [media] {k}: {e}");
        if let Some(v) = &media.video_size {
            self.size = parse_size(v).map_err(|e| bad("video_size", e))?;
        }
        if let Some(v) = &media.video_codecs {
            self.codecs = parse_video_codecs(v).map_err(|e| bad("video_codecs", e))?.0;
        }
        for (k, v, range, to) in [
            ("video_fps", media.video_fps, 1..=60, &mut self.fps),
            ("video_kbps", media.video_kbps, 50..=20000, &mut self.kbps),
            (
                "video_threads",
                media.video_threads,
                1..=8,
                &mut self.threads,
            ),
        ] {
            if let Some(v) = v {
                if !range.contains(&v) {
                    return Err(bad(
                        k,
                        format!("{v} is not in {}..={}", range.start(), range.end()),
                    ));
                }
                *to = v;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        common: CommonArgs,
    }

    fn defaults() -> VideoSettings {
        CallConfig::from(Cli::parse_from(["ewindow-phone"]).common).video
    }

    #[test]
    fn the_board_profile_then_window_toml_decide_the_video() {
        let mut a = defaults();
        a.apply(None, &Media::default()).unwrap();
        assert_eq!((a.size, a.fps, a.threads), ((640, 480), 30, 1));

        let mut a = defaults();
        a.apply(Some("Raspberry Pi 3 Model B Rev 1.2"), &Media::default())
            .unwrap();
        let pi3 = crate::board::for_model("Raspberry Pi 3 Model B Rev 1.2").unwrap();
        assert_eq!((a.size, a.fps, a.threads), (pi3.size, pi3.fps, pi3.threads));

        let media = Media {
            video_size: Some("480x270".into()),
            video_fps: Some(15),
            video_codecs: Some("h264".into()),
            ..Media::default()
        };
        let mut a = defaults();
        a.apply(Some("Raspberry Pi 3 Model B Rev 1.2"), &media)
            .unwrap();
        assert_eq!((a.size, a.fps), ((480, 270), 15));
        assert_eq!(a.codecs, [crate::sdp::VideoCodec::H264]);
        assert_eq!(a.threads, pi3.threads);

        let bad = Media {
            video_threads: Some(0),
            ..Media::default()
        };
        let e = defaults().apply(None, &bad).unwrap_err();
        assert!(
            e.to_string()
                .contains("[media] video_threads: 0 is not in 1..=8"),
            "{e}"
        );
        let bad = Media {
            video_size: Some("big".into()),
            ..Media::default()
        };
        let e = defaults().apply(None, &bad).unwrap_err();
        assert!(e.to_string().contains("video_size"), "{e}");
    }
}
