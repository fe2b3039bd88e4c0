//! Audio media with GStreamer: one `rtpbin` session that sends and receives the negotiated
//! codec over RTP, with RTCP, and counts what it encodes and decodes.
//!
//! The RTP and RTCP sockets are bound by us ([`RtpSockets::bind`]) before the SDP is written,
//! so the port in the SDP is the port that receives, and the same socket sends (symmetric RTP).
//! Everything here is IO; the codec tables are in [`codec_elements`] and tested without a
//! pipeline.

use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::os::fd::OwnedFd;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Instant;

use anyhow::{anyhow, bail, Context, Result};
use ewindow_protocol::{StreamDirection, StreamStats};
use gstreamer as gst;
use gstreamer::glib;
use gstreamer::prelude::*;

use crate::sdp::AudioCodec;

/// Where sent audio comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AudioSource {
    /// A 440 Hz tone (`audiotestsrc`).
    Test,
    /// The system's default capture device (`autoaudiosrc`).
    Default,
    /// A named device: ALSA (`hw:…`, `plughw:…`, `default:…`) or else PulseAudio.
    Device(String),
}

/// Where received audio goes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AudioSink {
    /// Decoded, counted and dropped.
    Null,
    /// The system's default playback device (`autoaudiosink`).
    Default,
    /// A named device: ALSA (`hw:…`, `plughw:…`) or else PulseAudio.
    Device(String),
}

impl std::str::FromStr for AudioSource {
    type Err = std::convert::Infallible;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "test" => AudioSource::Test,
            "default" => AudioSource::Default,
            other => AudioSource::Device(other.to_string()),
        })
    }
}

impl std::str::FromStr for AudioSink {
    type Err = std::convert::Infallible;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "null" => AudioSink::Null,
            "default" => AudioSink::Default,
            other => AudioSink::Device(other.to_string()),
        })
    }
}

fn is_alsa_device(name: &str) -> bool {
    [
        "hw:",
        "plughw:",
        "default:",
        "sysdefault:",
        "front:",
        "dsnoop:",
        "dmix:",
    ]
    .iter()
    .any(|p| name.starts_with(p))
}

/// The GStreamer element names that carry one codec.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CodecElements {
    /// Encoder factory name.
    pub encoder: &'static str,
    /// RTP payloader factory name.
    pub payloader: &'static str,
    /// RTP depayloader factory name.
    pub depayloader: &'static str,
    /// Decoder factory name.
    pub decoder: &'static str,
    /// `encoding-name` in RTP caps, as the depayloaders expect it.
    pub rtp_encoding_name: &'static str,
    /// Raw audio rate fed to the encoder.
    pub raw_rate: i32,
}

/// The elements for a codec.
pub fn codec_elements(codec: AudioCodec) -> CodecElements {
    match codec {
        AudioCodec::Opus => CodecElements {
            encoder: "opusenc",
            payloader: "rtpopuspay",
            depayloader: "rtpopusdepay",
            decoder: "opusdec",
            rtp_encoding_name: "OPUS",
            raw_rate: 48_000,
        },
        AudioCodec::Pcmu => CodecElements {
            encoder: "mulawenc",
            payloader: "rtppcmupay",
            depayloader: "rtppcmudepay",
            decoder: "mulawdec",
            rtp_encoding_name: "PCMU",
            raw_rate: 8_000,
        },
        AudioCodec::Pcma => CodecElements {
            encoder: "alawenc",
            payloader: "rtppcmapay",
            depayloader: "rtppcmadepay",
            decoder: "alawdec",
            rtp_encoding_name: "PCMA",
            raw_rate: 8_000,
        },
        AudioCodec::Speex16 | AudioCodec::Speex8 => CodecElements {
            encoder: "speexenc",
            payloader: "rtpspeexpay",
            depayloader: "rtpspeexdepay",
            decoder: "speexdec",
            rtp_encoding_name: "SPEEX",
            raw_rate: codec.clock_rate() as i32,
        },
    }
}

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
            let port = range.start + 2 * ((offset + i) % span);
            let port = port & !1;
            let Ok(rtp) = UdpSocket::bind(SocketAddr::new(ip, port)) else {
                continue;
            };
            let Ok(rtcp) = UdpSocket::bind(SocketAddr::new(ip, port + 1)) else {
                continue;
            };
            return Ok(RtpSockets { rtp, rtcp });
        }
        bail!("no free RTP port pair on {ip} in {range:?}")
    }

    /// The local RTP port.
    pub fn rtp_port(&self) -> u16 {
        self.rtp.local_addr().map(|a| a.port()).unwrap_or(0)
    }
}

/// Everything the audio pipeline needs to know about a negotiated stream.
#[derive(Debug)]
pub struct AudioStreamConfig {
    /// Negotiated codec.
    pub codec: AudioCodec,
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
    /// Packetization time in ms.
    pub ptime_ms: u32,
    /// Jitter buffer latency in ms.
    pub latency_ms: u32,
    /// Source of sent audio.
    pub source: AudioSource,
    /// Sink of received audio.
    pub sink: AudioSink,
}

/// Counters updated from streaming threads.
#[derive(Debug, Default)]
struct Counters {
    encoded_in: AtomicU64,
    decoded: AtomicU64,
    first_rtp: OnceLock<Instant>,
    first_decoded: OnceLock<Instant>,
}

/// A running audio session.
pub struct AudioSession {
    pipeline: gst::Pipeline,
    rtpbin: gst::Element,
    counters: Arc<Counters>,
    codec: AudioCodec,
}

fn make(factory: &str) -> Result<gst::Element> {
    gst::ElementFactory::make(factory)
        .build()
        .with_context(|| format!("GStreamer element `{factory}` is missing (install its plugin)"))
}

fn gio_socket(sock: UdpSocket) -> Result<gio::Socket> {
    sock.set_nonblocking(true)?;
    let fd: OwnedFd = sock.into();
    gio::Socket::from_fd(fd).map_err(|e| anyhow!("wrapping UDP socket for GStreamer: {e}"))
}

impl AudioSession {
    /// Builds and starts the pipeline on the given sockets.
    pub fn start(sockets: RtpSockets, cfg: &AudioStreamConfig) -> Result<Self> {
        gst::init().context("initialising GStreamer")?;
        let els = codec_elements(cfg.codec);
        let pipeline = gst::Pipeline::with_name("audio");
        let rtpbin = gst::ElementFactory::make("rtpbin")
            .property("latency", cfg.latency_ms)
            .build()
            .context("GStreamer element `rtpbin` is missing")?;
        pipeline.add(&rtpbin)?;
        let counters = Arc::new(Counters::default());

        let rtp_sock = gio_socket(sockets.rtp)?;
        let rtcp_sock = gio_socket(sockets.rtcp)?;

        // RTCP out, from the RTCP socket.
        let rtcp_sink = gst::ElementFactory::make("udpsink")
            .property("socket", &rtcp_sock)
            .property("host", cfg.remote_rtcp.ip().to_string())
            .property("port", cfg.remote_rtcp.port() as i32)
            .property("sync", false)
            .property("async", false)
            .property("close-socket", false)
            .build()?;
        // RTCP in.
        let rtcp_src = gst::ElementFactory::make("udpsrc")
            .property("socket", &rtcp_sock)
            .property("close-socket", false)
            .property("caps", gst::Caps::builder("application/x-rtcp").build())
            .build()?;
        pipeline.add_many([&rtcp_sink, &rtcp_src])?;
        rtcp_src.link_pads(Some("src"), &rtpbin, Some("recv_rtcp_sink_0"))?;
        rtpbin.link_pads(Some("send_rtcp_src_0"), &rtcp_sink, Some("sink"))?;

        // RTP in.
        let rtp_caps = gst::Caps::builder("application/x-rtp")
            .field("media", "audio")
            .field("clock-rate", cfg.codec.clock_rate() as i32)
            .field("encoding-name", els.rtp_encoding_name)
            .field("payload", cfg.pt as i32)
            .build();
        let rtp_src = gst::ElementFactory::make("udpsrc")
            .property("socket", &rtp_sock)
            .property("close-socket", false)
            .property("caps", &rtp_caps)
            .build()?;
        pipeline.add(&rtp_src)?;
        rtp_src.link_pads(Some("src"), &rtpbin, Some("recv_rtp_sink_0"))?;
        let c = counters.clone();
        rtp_src
            .static_pad("src")
            .context("udpsrc has no src pad")?
            .add_probe(gst::PadProbeType::BUFFER, move |_, _| {
                c.first_rtp.get_or_init(Instant::now);
                gst::PadProbeReturn::Ok
            });

        if cfg.send {
            Self::add_sender(&pipeline, &rtpbin, &rtp_sock, cfg, &els, &counters)?;
        }
        Self::add_receiver(&pipeline, &rtpbin, cfg, &els, &counters)?;

        pipeline
            .set_state(gst::State::Playing)
            .context("starting the audio pipeline")?;
        Ok(AudioSession {
            pipeline,
            rtpbin,
            counters,
            codec: cfg.codec,
        })
    }

    fn add_sender(
        pipeline: &gst::Pipeline,
        rtpbin: &gst::Element,
        rtp_sock: &gio::Socket,
        cfg: &AudioStreamConfig,
        els: &CodecElements,
        counters: &Arc<Counters>,
    ) -> Result<()> {
        let rate = els.raw_rate;
        let src = match &cfg.source {
            AudioSource::Test => gst::ElementFactory::make("audiotestsrc")
                .property("is-live", true)
                .property("freq", 440.0f64)
                .property("volume", 0.3f64)
                .property("samplesperbuffer", rate * cfg.ptime_ms as i32 / 1000)
                .build()?,
            AudioSource::Default => make("autoaudiosrc")?,
            AudioSource::Device(d) if is_alsa_device(d) => gst::ElementFactory::make("alsasrc")
                .property("device", d)
                .build()?,
            AudioSource::Device(d) => gst::ElementFactory::make("pulsesrc")
                .property("device", d)
                .build()?,
        };
        let convert = make("audioconvert")?;
        let resample = make("audioresample")?;
        let caps = gst::ElementFactory::make("capsfilter")
            .property(
                "caps",
                gst::Caps::builder("audio/x-raw")
                    .field("rate", rate)
                    .field("channels", 1i32)
                    .build(),
            )
            .build()?;
        let enc = make(els.encoder)?;
        if cfg.codec == AudioCodec::Opus {
            enc.set_property("bitrate", 32_000i32);
            enc.set_property_from_str("frame-size", &cfg.ptime_ms.to_string());
        }
        let pay = make(els.payloader)?;
        pay.set_property("pt", cfg.pt as u32);
        let ptime_ns = i64::from(cfg.ptime_ms) * 1_000_000;
        pay.set_property("max-ptime", ptime_ns);
        let rtp_sink = gst::ElementFactory::make("udpsink")
            .property("socket", rtp_sock)
            .property("host", cfg.remote_rtp.ip().to_string())
            .property("port", cfg.remote_rtp.port() as i32)
            .property("sync", false)
            .property("async", false)
            .property("close-socket", false)
            .build()?;
        pipeline.add_many([&src, &convert, &resample, &caps, &enc, &pay, &rtp_sink])?;
        gst::Element::link_many([&src, &convert, &resample, &caps, &enc, &pay])?;
        pay.link_pads(Some("src"), rtpbin, Some("send_rtp_sink_0"))?;
        rtpbin.link_pads(Some("send_rtp_src_0"), &rtp_sink, Some("sink"))?;

        let c = counters.clone();
        enc.static_pad("sink")
            .context("encoder has no sink pad")?
            .add_probe(gst::PadProbeType::BUFFER, move |_, _| {
                c.encoded_in.fetch_add(1, Ordering::Relaxed);
                gst::PadProbeReturn::Ok
            });
        Ok(())
    }

    fn add_receiver(
        pipeline: &gst::Pipeline,
        rtpbin: &gst::Element,
        cfg: &AudioStreamConfig,
        els: &CodecElements,
        counters: &Arc<Counters>,
    ) -> Result<()> {
        let depay = make(els.depayloader)?;
        let dec = make(els.decoder)?;
        let convert = make("audioconvert")?;
        let resample = make("audioresample")?;
        let sink = match &cfg.sink {
            AudioSink::Null => gst::ElementFactory::make("fakesink")
                .property("sync", false)
                .property("async", false)
                .build()?,
            AudioSink::Default => make("autoaudiosink")?,
            AudioSink::Device(d) if is_alsa_device(d) => gst::ElementFactory::make("alsasink")
                .property("device", d)
                .build()?,
            AudioSink::Device(d) => gst::ElementFactory::make("pulsesink")
                .property("device", d)
                .build()?,
        };
        pipeline.add_many([&depay, &dec, &convert, &resample, &sink])?;
        gst::Element::link_many([&depay, &dec, &convert, &resample, &sink])?;

        let c = counters.clone();
        dec.static_pad("src")
            .context("decoder has no src pad")?
            .add_probe(gst::PadProbeType::BUFFER, move |_, _| {
                c.first_decoded.get_or_init(Instant::now);
                c.decoded.fetch_add(1, Ordering::Relaxed);
                gst::PadProbeReturn::Ok
            });

        // rtpbin adds one `recv_rtp_src_0_SSRC_PT` pad per incoming SSRC. The first one feeds
        // the decoder; a later one (the peer restarted its stream) replaces it.
        let depay_sink = depay
            .static_pad("sink")
            .context("depayloader has no sink")?;
        let linked: Arc<Mutex<Option<gst::Pad>>> = Arc::new(Mutex::new(None));
        let pipeline_weak = pipeline.downgrade();
        rtpbin.connect_pad_added(move |_, pad| {
            if !pad.name().starts_with("recv_rtp_src_0_") {
                return;
            }
            let mut current = match linked.lock() {
                Ok(g) => g,
                Err(p) => p.into_inner(),
            };
            if let Some(old) = current.take() {
                let _ = old.unlink(&depay_sink);
            }
            match pad.link(&depay_sink) {
                Ok(_) => {
                    tracing::debug!(pad = %pad.name(), "receiving RTP");
                    *current = Some(pad.clone());
                }
                Err(e) => {
                    tracing::warn!(pad = %pad.name(), "cannot link incoming RTP: {e:?}");
                    if let Some(p) = pipeline_weak.upgrade() {
                        drop_pad(&p, pad);
                    }
                }
            }
        });
        Ok(())
    }

    /// The first error or end-of-stream on the pipeline's bus, if one is pending.
    pub fn poll_error(&self) -> Option<String> {
        let bus = self.pipeline.bus()?;
        while let Some(msg) = bus.pop_filtered(&[gst::MessageType::Error, gst::MessageType::Eos]) {
            match msg.view() {
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

    /// When the first RTP packet arrived.
    pub fn first_rtp(&self) -> Option<Instant> {
        self.counters.first_rtp.get().copied()
    }

    /// When the first buffer came out of the decoder.
    pub fn first_decoded(&self) -> Option<Instant> {
        self.counters.first_decoded.get().copied()
    }

    /// RTP packets received so far (for the media-timeout check).
    pub fn packets_received(&self) -> u64 {
        self.source_stats()
            .iter()
            .filter(|s| !s.internal)
            .map(|s| s.packets_received)
            .max()
            .unwrap_or(0)
    }

    fn source_stats(&self) -> Vec<SourceStats> {
        let session = self
            .rtpbin
            .emit_by_name::<Option<glib::Object>>("get-internal-session", &[&0u32]);
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

    /// Counters of both directions now.
    pub fn stats(&self) -> Vec<StreamStats> {
        let sources = self.source_stats();
        let clock = self.codec.clock_rate() as f64;
        let ms = |units: u64, rate: i32| {
            let r = if rate > 0 { rate as f64 } else { clock };
            units as f64 * 1000.0 / r
        };
        let ours = sources
            .iter()
            .filter(|s| s.internal && s.is_sender)
            .max_by_key(|s| s.packets_sent);
        let theirs = sources
            .iter()
            .filter(|s| !s.internal)
            .max_by_key(|s| s.packets_received);
        let send = StreamStats {
            media: "audio".into(),
            codec: self.codec.name().into(),
            direction: Some(StreamDirection::Send),
            packets: ours.map_or(0, |s| s.packets_sent),
            bytes: ours.map_or(0, |s| s.octets_sent),
            decoded: self.counters.encoded_in.load(Ordering::Relaxed),
            lost: ours.map_or(0, |s| s.rb_packets_lost.max(0)),
            jitter_ms: ours.map_or(0.0, |s| ms(s.rb_jitter, s.clock_rate)),
            rtt_ms: ours
                .filter(|s| s.rb_round_trip > 0)
                .map(|s| s.rb_round_trip as f64 * 1000.0 / 65536.0),
        };
        let recv = StreamStats {
            media: "audio".into(),
            codec: self.codec.name().into(),
            direction: Some(StreamDirection::Recv),
            packets: theirs.map_or(0, |s| s.packets_received),
            bytes: theirs.map_or(0, |s| s.octets_received),
            decoded: self.counters.decoded.load(Ordering::Relaxed),
            // RTCP counts duplicates as negative loss; a window reports real loss only.
            lost: theirs.map_or(0, |s| s.packets_lost.max(0)),
            jitter_ms: theirs.map_or(0.0, |s| ms(s.jitter, s.clock_rate)),
            rtt_ms: None,
        };
        vec![send, recv]
    }

    /// Stops the pipeline; the sockets close with it.
    pub fn stop(self) {
        let _ = self.pipeline.set_state(gst::State::Null);
    }
}

impl Drop for AudioSession {
    fn drop(&mut self) {
        let _ = self.pipeline.set_state(gst::State::Null);
    }
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
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_codec_has_distinct_payloader_and_matching_raw_rate() {
        for codec in [
            AudioCodec::Opus,
            AudioCodec::Pcmu,
            AudioCodec::Pcma,
            AudioCodec::Speex16,
            AudioCodec::Speex8,
        ] {
            let els = codec_elements(codec);
            assert_eq!(els.raw_rate as u32, codec.clock_rate(), "{codec:?}");
            assert!(els.payloader.starts_with("rtp") && els.payloader.ends_with("pay"));
            assert!(els.depayloader.ends_with("depay"));
        }
    }

    #[test]
    fn source_and_sink_names_parse_to_devices() {
        assert_eq!("test".parse::<AudioSource>().unwrap(), AudioSource::Test);
        assert_eq!("null".parse::<AudioSink>().unwrap(), AudioSink::Null);
        assert_eq!(
            "hw:1,0".parse::<AudioSink>().unwrap(),
            AudioSink::Device("hw:1,0".into())
        );
        assert!(is_alsa_device("plughw:CARD=Speaker"));
        assert!(!is_alsa_device("alsa_output.usb-Jabra.analog-stereo"));
    }

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
}
