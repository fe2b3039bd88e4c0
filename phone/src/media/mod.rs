//! Media with GStreamer: one pipeline and one `rtpbin` per call, RTP session 0 for audio and
//! session 1 for video, each optionally SRTP, with counters of what is encoded and decoded.
//!
//! The RTP and RTCP sockets are bound by us ([`RtpSockets::bind`]) before the SDP is written,
//! so the port in the SDP is the port that receives, and the same socket sends (symmetric RTP).
//! `audio.rs` and `video.rs` add the branches of each medium, `srtp.rs` the SRTP elements;
//! this file owns the pipeline, the RTP sessions and the statistics.

mod audio;
mod marks;
mod srtp;
mod video;

use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::os::fd::OwnedFd;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Instant;

use anyhow::{anyhow, bail, Context, Result};
use ewindow_protocol::{StreamDirection, StreamStats};
use gstreamer as gst;
use gstreamer::glib;
use gstreamer::prelude::*;

pub use audio::{AudioSink, AudioSource, EchoCancel};
pub use srtp::SrtpParams;
pub use video::{VideoSink, VideoSource};

use crate::sdp::{AudioCodec, VideoCodec};

/// RTP session ids inside the `rtpbin`.
const AUDIO_SESSION: u32 = 0;
const VIDEO_SESSION: u32 = 1;

/// An RTP socket and its RTCP neighbour (port + 1), bound before the SDP is written.
#[derive(Debug)]
pub struct RtpSockets {
    /// Even port, RTP.
    pub rtp: UdpSocket,
    /// `rtp + 1`, RTCP.
    pub rtcp: UdpSocket,
}

impl RtpSockets {
    /// Binds an even RTP port and the next odd one on `ip`, trying ports in `range`
    /// from a random start.
    pub fn bind(ip: IpAddr, range: std::ops::Range<u16>) -> Result<Self> {
        let span = (range.end - range.start) / 2;
        if span == 0 {
            bail!("RTP port range {range:?} holds no even/odd pair");
        }
        let offset = rand::random::<u16>() % span;
        for i in 0..span {
            let port = (range.start + 2 * ((offset + i) % span)) & !1;
            let Ok(rtp) = UdpSocket::bind(SocketAddr::new(ip, port)) else {
                continue;
            };
            let Ok(rtcp) = UdpSocket::bind(SocketAddr::new(ip, port + 1)) else {
                continue;
            };
            crate::netdev::pin(&rtp)?;
            crate::netdev::pin(&rtcp)?;
            return Ok(RtpSockets { rtp, rtcp });
        }
        bail!("no free RTP port pair on {ip} in {range:?}")
    }

    /// The local RTP port.
    pub fn rtp_port(&self) -> u16 {
        self.rtp.local_addr().map(|a| a.port()).unwrap_or(0)
    }
}

/// What both media share about their RTP transport.
#[derive(Debug, Clone)]
pub struct RtpParams {
    /// Negotiated payload type.
    pub pt: u8,
    /// Where the peer receives RTP.
    pub remote_rtp: SocketAddr,
    /// Where the peer receives RTCP.
    pub remote_rtcp: SocketAddr,
    /// Whether we send.
    pub send: bool,
    /// Whether we receive.
    pub recv: bool,
    /// SRTP keys, or `None` for plain RTP.
    pub srtp: Option<SrtpParams>,
}

/// The audio stream of a call.
#[derive(Debug, Clone)]
pub struct AudioStreamConfig {
    /// Negotiated codec.
    pub codec: AudioCodec,
    /// Transport.
    pub rtp: RtpParams,
    /// Packetization time in ms.
    pub ptime_ms: u32,
    /// Source of sent audio.
    pub source: AudioSource,
    /// Sink of received audio.
    pub sink: AudioSink,
    /// Echo cancellation.
    pub echo_cancel: EchoCancel,
    /// Send clicks and timestamp click onsets (benchmarks).
    pub latency_marks: bool,
}

/// The video stream of a call.
#[derive(Debug, Clone)]
pub struct VideoStreamConfig {
    /// Negotiated codec.
    pub codec: VideoCodec,
    /// Transport.
    pub rtp: RtpParams,
    /// Picture width.
    pub width: u32,
    /// Picture height.
    pub height: u32,
    /// Frames per second.
    pub fps: u32,
    /// Encoder target bitrate, kbit/s.
    pub kbps: u32,
    /// Encoder threads.
    pub threads: u32,
    /// Source of sent video.
    pub source: VideoSource,
    /// Sink of received video.
    pub sink: VideoSink,
    /// PNGs of the received pictures into this directory (the last 300).
    pub snapshots: Option<std::path::PathBuf>,
    /// Whether the peer takes RTCP PLI / FIR keyframe requests from us.
    pub keyframe_requests: bool,
    /// H.264 packetization mode 0: every NAL unit must fit one RTP packet.
    pub h264_single_nal: bool,
    /// Paint capture times into sent frames and read them from received ones (benchmarks).
    pub latency_marks: bool,
    /// Peer quirk: clear the VP9 payload descriptor's P bit (see `call::Quirks`).
    pub vp9_clear_p: bool,
}

/// Counters of one medium, updated from streaming threads.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    encoded_in: AtomicU64,
    decoded: AtomicU64,
    /// Audio the decoder concealed for lost packets, nanoseconds.
    concealed_ns: AtomicU64,
    first_rtp: OnceLock<Instant>,
    first_decoded: OnceLock<Instant>,
    width: AtomicU32,
    height: AtomicU32,
    sent_width: AtomicU32,
    sent_height: AtomicU32,
}

impl Counters {
    fn count_encoded(&self) {
        self.encoded_in.fetch_add(1, Ordering::Relaxed);
    }
    fn count_decoded(&self) {
        self.first_decoded.get_or_init(Instant::now);
        self.decoded.fetch_add(1, Ordering::Relaxed);
    }
    fn count_concealed(&self, t: gst::ClockTime) {
        self.concealed_ns.fetch_add(t.nseconds(), Ordering::Relaxed);
    }
}

/// A running media session.
pub struct MediaSession {
    pipeline: gst::Pipeline,
    rtpbin: gst::Element,
    audio: (AudioCodec, Arc<Counters>, bool),
    video: Option<(VideoCodec, Arc<Counters>, bool)>,
    started: Instant,
    marks: Arc<marks::Marks>,
    /// A looping file source runs in a pipeline of its own.
    _file_player: Option<video::FilePlayer>,
}

pub(crate) fn make(factory: &str) -> Result<gst::Element> {
    gst::ElementFactory::make(factory)
        .build()
        .with_context(|| format!("GStreamer element `{factory}` is missing (install its plugin)"))
}

/// The end of a receive branch that drops what it decodes: a `fakesink` that takes each
/// buffer at once, or with `clock` at the moment a real sink would present it (by the
/// pipeline clock, after the pipeline's latency: jitter buffer and all).
pub(crate) fn dropping_sink(clock: bool) -> Result<gst::Element> {
    Ok(gst::ElementFactory::make("fakesink")
        .property("sync", clock)
        .property("async", false)
        .build()?)
}

fn gio_socket(sock: UdpSocket) -> Result<gio::Socket> {
    sock.set_nonblocking(true)?;
    let fd: OwnedFd = sock.into();
    gio::Socket::from_fd(fd).map_err(|e| anyhow!("wrapping UDP socket for GStreamer: {e}"))
}

/// The sending end of one RTP session: its socket and, with SRTP, its encoder.
struct SessionOut {
    socket: gio::Socket,
    srtpenc: Option<gst::Element>,
}

/// Adds the UDP (and SRTP) elements of one RTP session and links them to `rtpbin`.
fn wire_session(
    pipeline: &gst::Pipeline,
    rtpbin: &gst::Element,
    session: u32,
    sockets: RtpSockets,
    rtp: &RtpParams,
    rtp_caps: gst::Caps,
    counters: &Arc<Counters>,
) -> Result<SessionOut> {
    let rtp_sock = gio_socket(sockets.rtp)?;
    let rtcp_sock = gio_socket(sockets.rtcp)?;
    let (rtp_caps, rtcp_caps) = match &rtp.srtp {
        Some(keys) => (keys.srtp_caps(&rtp_caps), keys.srtcp_caps()),
        None => (rtp_caps, gst::Caps::builder("application/x-rtcp").build()),
    };
    let rtcp_sink = gst::ElementFactory::make("udpsink")
        .property("socket", &rtcp_sock)
        .property("host", rtp.remote_rtcp.ip().to_string())
        .property("port", rtp.remote_rtcp.port() as i32)
        .property("sync", false)
        .property("async", false)
        .property("close-socket", false)
        .build()?;
    let rtcp_src = gst::ElementFactory::make("udpsrc")
        .property("socket", &rtcp_sock)
        .property("close-socket", false)
        .property("caps", &rtcp_caps)
        .build()?;
    let rtp_src = gst::ElementFactory::make("udpsrc")
        .property("socket", &rtp_sock)
        .property("close-socket", false)
        .property("caps", &rtp_caps)
        .build()?;
    pipeline.add_many([&rtcp_sink, &rtcp_src, &rtp_src])?;
    let recv_rtp = format!("recv_rtp_sink_{session}");
    let recv_rtcp = format!("recv_rtcp_sink_{session}");
    let send_rtcp = format!("send_rtcp_src_{session}");
    let srtpenc = match &rtp.srtp {
        Some(keys) => {
            let dec = keys.decoder()?;
            let enc = keys.encoder()?;
            pipeline.add_many([&dec, &enc])?;
            rtp_src.link_pads(Some("src"), &dec, Some("rtp_sink"))?;
            dec.link_pads(Some("rtp_src"), rtpbin, Some(&recv_rtp))?;
            rtcp_src.link_pads(Some("src"), &dec, Some("rtcp_sink"))?;
            dec.link_pads(Some("rtcp_src"), rtpbin, Some(&recv_rtcp))?;
            let rtcp_in = format!("rtcp_sink_{session}");
            rtpbin.link_pads(Some(&send_rtcp), &enc, Some(&rtcp_in))?;
            enc.link_pads(
                Some(&format!("rtcp_src_{session}")),
                &rtcp_sink,
                Some("sink"),
            )?;
            Some(enc)
        }
        None => {
            rtp_src.link_pads(Some("src"), rtpbin, Some(&recv_rtp))?;
            rtcp_src.link_pads(Some("src"), rtpbin, Some(&recv_rtcp))?;
            rtpbin.link_pads(Some(&send_rtcp), &rtcp_sink, Some("sink"))?;
            None
        }
    };
    let c = counters.clone();
    rtp_src
        .static_pad("src")
        .context("udpsrc has no src pad")?
        .add_probe(gst::PadProbeType::BUFFER, move |_, _| {
            c.first_rtp.get_or_init(Instant::now);
            gst::PadProbeReturn::Ok
        });
    Ok(SessionOut {
        socket: rtp_sock,
        srtpenc,
    })
}

/// Adds the `udpsink` that sends a session's RTP from its socket, through SRTP if keyed.
fn rtp_sender(
    pipeline: &gst::Pipeline,
    rtpbin: &gst::Element,
    session: u32,
    out: &SessionOut,
    rtp: &RtpParams,
) -> Result<()> {
    let sink = gst::ElementFactory::make("udpsink")
        .property("socket", &out.socket)
        .property("host", rtp.remote_rtp.ip().to_string())
        .property("port", rtp.remote_rtp.port() as i32)
        .property("sync", false)
        .property("async", false)
        .property("close-socket", false)
        .build()?;
    pipeline.add(&sink)?;
    let send_rtp = format!("send_rtp_src_{session}");
    match &out.srtpenc {
        Some(enc) => {
            rtpbin.link_pads(Some(&send_rtp), enc, Some(&format!("rtp_sink_{session}")))?;
            enc.link_pads(Some(&format!("rtp_src_{session}")), &sink, Some("sink"))?;
        }
        None => rtpbin.link_pads(Some(&send_rtp), &sink, Some("sink"))?,
    }
    Ok(())
}

/// Links the first `recv_rtp_src_SESSION_*` pad rtpbin adds to `sink`; a later one (the peer
/// restarted its stream with a new SSRC) replaces it.
fn route_incoming(rtpbin: &gst::Element, session: u32, sink: gst::Pad) {
    let prefix = format!("recv_rtp_src_{session}_");
    let linked: Arc<Mutex<Option<gst::Pad>>> = Arc::new(Mutex::new(None));
    rtpbin.connect_pad_added(move |bin, pad| {
        if !pad.name().starts_with(&prefix) {
            return;
        }
        let mut current = match linked.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        if let Some(old) = current.take() {
            let _ = old.unlink(&sink);
        }
        match pad.link(&sink) {
            Ok(_) => {
                tracing::debug!(pad = %pad.name(), "receiving RTP");
                *current = Some(pad.clone());
            }
            Err(e) => {
                tracing::warn!(pad = %pad.name(), "cannot link incoming RTP: {e:?}");
                if let Some(p) = bin
                    .parent()
                    .and_then(|p| p.downcast::<gst::Pipeline>().ok())
                {
                    drop_pad(&p, pad);
                }
            }
        }
    });
}

impl MediaSession {
    /// Builds and starts the pipeline.
    pub fn start(
        audio_sockets: RtpSockets,
        audio: &AudioStreamConfig,
        video: Option<(RtpSockets, &VideoStreamConfig)>,
        latency_ms: u32,
    ) -> Result<Self> {
        gst::init().context("initialising GStreamer")?;
        let pipeline = gst::Pipeline::with_name("call");
        let rtpbin = gst::ElementFactory::make("rtpbin")
            .property("latency", latency_ms)
            // Lost packets become events downstream: audio decoders conceal them, video
            // depayloaders ask for a keyframe.
            .property("do-lost", true)
            .build()
            .context("GStreamer element `rtpbin` is missing")?;
        pipeline.add(&rtpbin)?;
        if audio.latency_marks {
            rtpbin.set_property("add-reference-timestamp-meta", true);
        }
        let audio_counters = Arc::new(Counters::default());
        let marks = Arc::new(marks::Marks::default());
        let out = wire_session(
            &pipeline,
            &rtpbin,
            AUDIO_SESSION,
            audio_sockets,
            &audio.rtp,
            audio::rtp_caps(audio),
            &audio_counters,
        )?;
        if audio.rtp.send {
            audio::add_sender(
                &pipeline,
                &rtpbin,
                AUDIO_SESSION,
                audio,
                &audio_counters,
                &marks,
            )?;
            rtp_sender(&pipeline, &rtpbin, AUDIO_SESSION, &out, &audio.rtp)?;
        }
        let sink = audio::add_receiver(&pipeline, audio, &audio_counters, &marks)?;
        route_incoming(&rtpbin, AUDIO_SESSION, sink);

        let mut file_player = None;
        let video_state = match video {
            Some((sockets, v)) => {
                let counters = Arc::new(Counters::default());
                let out = wire_session(
                    &pipeline,
                    &rtpbin,
                    VIDEO_SESSION,
                    sockets,
                    &v.rtp,
                    video::rtp_caps(v),
                    &counters,
                )?;
                if v.rtp.send && v.source != VideoSource::None {
                    file_player =
                        video::add_sender(&pipeline, &rtpbin, VIDEO_SESSION, v, &counters)?;
                    rtp_sender(&pipeline, &rtpbin, VIDEO_SESSION, &out, &v.rtp)?;
                }
                let sink = video::add_receiver(&pipeline, v, &counters, &marks)?;
                route_incoming(&rtpbin, VIDEO_SESSION, sink);
                Some((v.codec, counters, v.rtp.srtp.is_some()))
            }
            None => None,
        };

        if let Err(e) = pipeline.set_state(gst::State::Playing) {
            // The element that failed says why on the bus.
            let why = pipeline
                .bus()
                .and_then(|bus| bus.pop_filtered(&[gst::MessageType::Error]))
                .and_then(|msg| match msg.view() {
                    gst::MessageView::Error(err) => Some(format!(
                        "{}: {} ({})",
                        err.src()
                            .map(|s| s.path_string().to_string())
                            .unwrap_or_default(),
                        err.error(),
                        err.debug().map(|d| d.to_string()).unwrap_or_default()
                    )),
                    _ => None,
                });
            let _ = pipeline.set_state(gst::State::Null);
            match why {
                Some(why) => bail!("starting the media pipeline: {e}: {why}"),
                None => bail!("starting the media pipeline: {e}"),
            }
        }
        Ok(MediaSession {
            pipeline,
            rtpbin,
            audio: (audio.codec, audio_counters, audio.rtp.srtp.is_some()),
            video: video_state,
            started: Instant::now(),
            marks,
            _file_player: file_player,
        })
    }

    /// The first error or end-of-stream on the pipeline's bus, if one is pending. On the way
    /// it applies latency changes: a receive branch added while playing (rtpbin's pads appear
    /// with the first packet of a stream) reports its latency (the jitter buffer's), and only
    /// the application recalculates the pipeline's; without that, clock-synchronised sinks
    /// (a speaker, the `clock` sinks) would get every buffer late.
    pub fn poll_error(&self) -> Option<String> {
        let bus = self.pipeline.bus()?;
        while let Some(msg) = bus.pop_filtered(&[
            gst::MessageType::Error,
            gst::MessageType::Eos,
            gst::MessageType::Latency,
        ]) {
            match msg.view() {
                gst::MessageView::Latency(_) => {
                    if let Err(e) = self.pipeline.recalculate_latency() {
                        tracing::debug!("recalculating the pipeline latency: {e}");
                    }
                }
                gst::MessageView::Error(e) => {
                    return Some(format!(
                        "{} ({})",
                        e.error(),
                        e.debug().map(|d| d.to_string()).unwrap_or_default()
                    ))
                }
                gst::MessageView::Eos(_) => return Some("end of stream".into()),
                _ => {}
            }
        }
        None
    }

    /// When the first RTP packet (audio or video) arrived.
    pub fn first_rtp(&self) -> Option<Instant> {
        let a = self.audio.1.first_rtp.get().copied();
        let v = self
            .video
            .as_ref()
            .and_then(|v| v.1.first_rtp.get().copied());
        a.into_iter().chain(v).min()
    }

    /// When the first audio buffer came out of the decoder.
    pub fn first_decoded(&self) -> Option<Instant> {
        self.audio.1.first_decoded.get().copied()
    }

    /// RTP packets received so far on all sessions (for the media-timeout check).
    pub fn packets_received(&self) -> u64 {
        let mut n = 0;
        for session in [
            Some(AUDIO_SESSION),
            self.video.as_ref().map(|_| VIDEO_SESSION),
        ]
        .into_iter()
        .flatten()
        {
            n += self
                .source_stats(session)
                .iter()
                .filter(|s| !s.internal)
                .map(|s| s.packets_received)
                .max()
                .unwrap_or(0);
        }
        n
    }

    fn source_stats(&self, session: u32) -> Vec<SourceStats> {
        let session = self
            .rtpbin
            .emit_by_name::<Option<glib::Object>>("get-internal-session", &[&session]);
        let Some(session) = session else {
            return Vec::new();
        };
        let stats = session.property::<gst::Structure>("stats");
        let Ok(arr) = stats.get::<glib::ValueArray>("source-stats") else {
            return Vec::new();
        };
        arr.iter()
            .filter_map(|v| v.get::<gst::Structure>().ok())
            .map(|s| SourceStats::from_structure(&s))
            .collect()
    }

    /// Counters of every stream and direction now.
    pub fn stats(&self) -> Vec<StreamStats> {
        let elapsed = self.started.elapsed().as_secs_f64();
        let mut out = Vec::new();
        let (codec, counters, srtp) = &self.audio;
        let mut audio = self.session_stats(
            AUDIO_SESSION,
            "audio",
            codec.name(),
            codec.clock_rate(),
            counters,
            *srtp,
            elapsed,
        );
        audio[0].marks_us = marks::snapshot(&self.marks.audio_sent_us);
        audio[1].marks_us = marks::snapshot(&self.marks.audio_received_us);
        audio[1].ntp_latency_ms = median(&self.marks.audio_ntp_latency_ms);
        out.extend(audio);
        if let Some((codec, counters, srtp)) = &self.video {
            let mut v = self.session_stats(
                VIDEO_SESSION,
                "video",
                codec.name(),
                90_000,
                counters,
                *srtp,
                elapsed,
            );
            for s in &mut v {
                let (frames, w, h, since) = match s.direction {
                    Some(StreamDirection::Recv) => (
                        counters.decoded.load(Ordering::Relaxed),
                        counters.width.load(Ordering::Relaxed),
                        counters.height.load(Ordering::Relaxed),
                        counters.first_decoded.get().copied(),
                    ),
                    _ => (
                        counters.encoded_in.load(Ordering::Relaxed),
                        counters.sent_width.load(Ordering::Relaxed),
                        counters.sent_height.load(Ordering::Relaxed),
                        Some(self.started),
                    ),
                };
                let secs = since.map_or(0.0, |t| t.elapsed().as_secs_f64());
                s.fps = (secs > 0.5).then(|| frames as f64 / secs);
                if s.direction == Some(StreamDirection::Recv) {
                    s.latency_ms = median(&self.marks.video_latency_ms);
                    s.ntp_latency_ms = median(&self.marks.video_ntp_latency_ms);
                }
                s.width = (w > 0).then_some(w);
                s.height = (h > 0).then_some(h);
            }
            out.extend(v);
        }
        out
    }

    #[allow(clippy::too_many_arguments)]
    fn session_stats(
        &self,
        session: u32,
        media: &str,
        codec: &str,
        clock_rate: u32,
        counters: &Counters,
        srtp: bool,
        elapsed: f64,
    ) -> [StreamStats; 2] {
        let sources = self.source_stats(session);
        let ms = |units: u64, rate: i32| {
            let r = if rate > 0 {
                rate as f64
            } else {
                clock_rate as f64
            };
            units as f64 * 1000.0 / r
        };
        let kbps = |bytes: u64| (elapsed > 0.5).then(|| bytes as f64 * 8.0 / elapsed / 1000.0);
        let ours = sources
            .iter()
            .filter(|s| s.internal && s.is_sender)
            .max_by_key(|s| s.packets_sent);
        let theirs = sources
            .iter()
            .filter(|s| !s.internal)
            .max_by_key(|s| s.packets_received);
        // The report blocks the peer sends about our stream (loss, jitter, round trip) are
        // kept on the peer's source.
        let rtt_ms = theirs
            .filter(|s| s.rb_round_trip > 0)
            .map(|s| s.rb_round_trip as f64 * 1000.0 / 65536.0);
        let send = StreamStats {
            media: media.into(),
            codec: codec.into(),
            direction: Some(StreamDirection::Send),
            packets: ours.map_or(0, |s| s.packets_sent),
            bytes: ours.map_or(0, |s| s.octets_sent),
            decoded: counters.encoded_in.load(Ordering::Relaxed),
            lost: theirs.map_or(0, |s| s.rb_packets_lost.max(0)),
            jitter_ms: theirs.map_or(0.0, |s| ms(s.rb_jitter, s.clock_rate)),
            rtt_ms,
            bitrate_kbps: kbps(ours.map_or(0, |s| s.octets_sent)),
            keyframe_requests: (media == "video")
                .then(|| ours.map_or(0, |s| s.recv_pli_count + s.recv_fir_count)),
            srtp,
            ..StreamStats::default()
        };
        let recv = StreamStats {
            media: media.into(),
            codec: codec.into(),
            direction: Some(StreamDirection::Recv),
            packets: theirs.map_or(0, |s| s.packets_received),
            bytes: theirs.map_or(0, |s| s.octets_received),
            decoded: counters.decoded.load(Ordering::Relaxed),
            // RTCP counts duplicates as negative loss; a window reports real loss only.
            lost: theirs.map_or(0, |s| s.packets_lost.max(0)),
            jitter_ms: theirs.map_or(0.0, |s| ms(s.jitter, s.clock_rate)),
            rtt_ms,
            bitrate_kbps: kbps(theirs.map_or(0, |s| s.octets_received)),
            keyframe_requests: (media == "video")
                .then(|| theirs.map_or(0, |s| s.sent_pli_count + s.sent_fir_count)),
            concealed_ms: (media == "audio")
                .then(|| counters.concealed_ns.load(Ordering::Relaxed) / 1_000_000),
            srtp,
            ..StreamStats::default()
        };
        [send, recv]
    }

    /// Stops the pipeline; the sockets close with it.
    pub fn stop(self) {
        let _ = self.pipeline.set_state(gst::State::Null);
    }
}

impl Drop for MediaSession {
    fn drop(&mut self) {
        let _ = self.pipeline.set_state(gst::State::Null);
    }
}

fn median(values: &Mutex<Vec<f64>>) -> Option<f64> {
    let mut v = marks::snapshot(values);
    if v.is_empty() {
        return None;
    }
    v.sort_by(|a, b| a.total_cmp(b));
    Some(v[v.len() / 2])
}

fn drop_pad(pipeline: &gst::Pipeline, pad: &gst::Pad) {
    let Ok(sink) = gst::ElementFactory::make("fakesink")
        .property("async", false)
        .build()
    else {
        return;
    };
    if pipeline.add(&sink).is_ok() {
        let _ = sink.sync_state_with_parent();
        if let Some(sp) = sink.static_pad("sink") {
            let _ = pad.link(&sp);
        }
    }
}

/// The fields we read from one `RTPSource` statistics structure.
#[derive(Debug, Default, Clone, PartialEq)]
struct SourceStats {
    internal: bool,
    is_sender: bool,
    packets_sent: u64,
    octets_sent: u64,
    packets_received: u64,
    octets_received: u64,
    packets_lost: i64,
    jitter: u64,
    clock_rate: i32,
    rb_packets_lost: i64,
    rb_jitter: u64,
    rb_round_trip: u64,
    sent_pli_count: u64,
    sent_fir_count: u64,
    recv_pli_count: u64,
    recv_fir_count: u64,
}

impl SourceStats {
    fn from_structure(s: &gst::StructureRef) -> Self {
        let u = |k: &str| {
            s.get::<u64>(k)
                .or_else(|_| s.get::<u32>(k).map(u64::from))
                .unwrap_or(0)
        };
        let i = |k: &str| {
            s.get::<i64>(k)
                .or_else(|_| s.get::<i32>(k).map(i64::from))
                .unwrap_or(0)
        };
        SourceStats {
            internal: s.get::<bool>("internal").unwrap_or(false),
            is_sender: s.get::<bool>("is-sender").unwrap_or(false),
            packets_sent: u("packets-sent"),
            octets_sent: u("octets-sent"),
            packets_received: u("packets-received"),
            octets_received: u("octets-received"),
            packets_lost: i("packets-lost"),
            jitter: u("jitter"),
            clock_rate: s.get::<i32>("clock-rate").unwrap_or(-1),
            rb_packets_lost: i("rb-packetslost"),
            rb_jitter: u("rb-jitter"),
            rb_round_trip: u("rb-round-trip"),
            // Kept on the source a request is about: the peer's for those we sent, ours for
            // those we received.
            sent_pli_count: u("sent-pli-count"),
            sent_fir_count: u("sent-fir-count"),
            recv_pli_count: u("recv-pli-count"),
            recv_fir_count: u("recv-fir-count"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rtp_sockets_bind_an_even_odd_pair_in_range() {
        let s = RtpSockets::bind("127.0.0.1".parse().unwrap(), 30000..30100).unwrap();
        let rtp = s.rtp.local_addr().unwrap().port();
        let rtcp = s.rtcp.local_addr().unwrap().port();
        assert_eq!(rtp % 2, 0);
        assert_eq!(rtcp, rtp + 1);
        assert!((30000..30100).contains(&rtp));
    }

    #[test]
    fn rtp_sockets_refuse_an_empty_range() {
        assert!(RtpSockets::bind("127.0.0.1".parse().unwrap(), 30000..30001).is_err());
    }

    #[test]
    fn source_stats_read_gstreamer_field_types() {
        gst::init().unwrap();
        let s = gst::Structure::builder("application/x-rtp-source-stats")
            .field("internal", false)
            .field("packets-received", 250u64)
            .field("octets-received", 20_000u64)
            .field("packets-lost", -1i32)
            .field("jitter", 48u32)
            .field("clock-rate", 48_000i32)
            .field("sent-pli-count", 3u32)
            .build();
        let st = SourceStats::from_structure(&s);
        assert_eq!(st.sent_pli_count, 3);
        assert_eq!(st.packets_received, 250);
        assert_eq!(st.octets_received, 20_000);
        assert_eq!(st.packets_lost, -1);
        assert_eq!(st.jitter, 48);
        assert_eq!(st.clock_rate, 48_000);
    }
}
