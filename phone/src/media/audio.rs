//! The audio branches: source → encoder → payloader, and depayloader → decoder → sink, with
//! echo cancellation (`webrtcdsp` + `webrtcechoprobe`) for real devices.

use std::sync::Arc;

use anyhow::{Context, Result};
use gstreamer as gst;
use gstreamer::prelude::*;

use super::marks::{self, Marks, Presented};
use super::{dropping_sink, make, AudioStreamConfig, Counters};
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
    /// Decoded, counted and dropped at the moment a speaker would play it, by the pipeline
    /// clock (jitter buffer and pipeline latency included): for latency benchmarks.
    Clock,
    /// The system's default playback device (`autoaudiosink`).
    Default,
    /// A named device: ALSA (`hw:…`, `plughw:…`) or else PulseAudio.
    Device(String),
}

/// Echo cancellation setting.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum EchoCancel {
    /// On when both source and sink are real devices (a speakerphone), off with test ones.
    Auto,
    /// Always (needs a real sink to probe).
    On,
    /// Never.
    Off,
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
            "clock" => AudioSink::Clock,
            "default" => AudioSink::Default,
            other => AudioSink::Device(other.to_string()),
        })
    }
}

impl AudioSink {
    /// Whether it plays on a device (not dropped).
    pub fn is_device(&self) -> bool {
        !matches!(self, AudioSink::Null | AudioSink::Clock)
    }
}

impl EchoCancel {
    /// Whether to cancel echo for this source and sink.
    pub fn enabled(self, source: &AudioSource, sink: &AudioSink) -> bool {
        match self {
            EchoCancel::On => sink.is_device(),
            EchoCancel::Off => false,
            EchoCancel::Auto => *source != AudioSource::Test && sink.is_device(),
        }
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

/// The caps of the incoming audio RTP.
pub fn rtp_caps(cfg: &AudioStreamConfig) -> gst::Caps {
    gst::Caps::builder("application/x-rtp")
        .field("media", "audio")
        .field("clock-rate", cfg.codec.clock_rate() as i32)
        .field("encoding-name", codec_elements(cfg.codec).rtp_encoding_name)
        .field("payload", cfg.rtp.pt as i32)
        .build()
}

/// Source → (echo canceller) → encoder → payloader → `send_rtp_sink_SESSION`.
pub fn add_sender(
    pipeline: &gst::Pipeline,
    rtpbin: &gst::Element,
    session: u32,
    cfg: &AudioStreamConfig,
    counters: &Arc<Counters>,
    marks: &Arc<Marks>,
) -> Result<()> {
    let els = codec_elements(cfg.codec);
    let rate = els.raw_rate;
    let src = match &cfg.source {
        // Clicks, one a second, whose onsets the latency benchmark times.
        AudioSource::Test if cfg.latency_marks => gst::ElementFactory::make("audiotestsrc")
            .property("is-live", true)
            .property_from_str("wave", "ticks")
            .property("freq", 1000.0f64)
            .property("volume", 0.8f64)
            .property("samplesperbuffer", rate * cfg.ptime_ms as i32 / 1000)
            .build()?,
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
    let mut chain = vec![src, make("audioconvert")?, make("audioresample")?];
    if cfg.echo_cancel.enabled(&cfg.source, &cfg.sink) {
        // webrtcdsp works on 48 kHz here and finds the probe in the playback path by name.
        chain.push(
            gst::ElementFactory::make("capsfilter")
                .property(
                    "caps",
                    gst::Caps::builder("audio/x-raw")
                        .field("rate", 48_000i32)
                        .field("channels", 1i32)
                        .build(),
                )
                .build()?,
        );
        chain.push(
            gst::ElementFactory::make("webrtcdsp")
                .property("probe", "echoprobe")
                .build()
                .context("GStreamer element `webrtcdsp` is missing (gstreamer1.0-plugins-bad)")?,
        );
        chain.push(make("audioconvert")?);
        chain.push(make("audioresample")?);
    }
    chain.push(
        gst::ElementFactory::make("capsfilter")
            .property(
                "caps",
                gst::Caps::builder("audio/x-raw")
                    .field("format", "S16LE")
                    .field("rate", rate)
                    .field("channels", 1i32)
                    .build(),
            )
            .build()?,
    );
    let enc = make(els.encoder)?;
    if cfg.codec == AudioCodec::Opus {
        enc.set_property("bitrate", 32_000i32);
        enc.set_property_from_str("frame-size", &cfg.ptime_ms.to_string());
    }
    let pay = make(els.payloader)?;
    pay.set_property("pt", u32::from(cfg.rtp.pt));
    pay.set_property("max-ptime", i64::from(cfg.ptime_ms) * 1_000_000);
    chain.push(enc.clone());
    chain.push(pay.clone());
    pipeline.add_many(&chain)?;
    gst::Element::link_many(&chain)?;
    pay.link_pads(
        Some("src"),
        rtpbin,
        Some(&format!("send_rtp_sink_{session}")),
    )?;
    let enc_sink = enc.static_pad("sink").context("encoder has no sink pad")?;
    let c = counters.clone();
    enc_sink.add_probe(gst::PadProbeType::BUFFER, move |_, _| {
        c.count_encoded();
        gst::PadProbeReturn::Ok
    });
    if cfg.latency_marks {
        marks::audio_onsets(&Presented::Pad(enc_sink), marks.clone(), true);
    }
    Ok(())
}

/// Depayloader → decoder → (echo probe) → sink; returns the depayloader's sink pad.
pub fn add_receiver(
    pipeline: &gst::Pipeline,
    cfg: &AudioStreamConfig,
    counters: &Arc<Counters>,
    marks: &Arc<Marks>,
) -> Result<gst::Pad> {
    let els = codec_elements(cfg.codec);
    let depay = make(els.depayloader)?;
    let dec = make(els.decoder)?;
    // Packet loss concealment: the jitter buffer reports each lost packet (rtpbin's
    // `do-lost`), the depayloader turns it into a gap, and the decoder fills the gap with
    // audio that continues the last frames (Opus's PLC; G.711 repeats) instead of silence.
    if dec.has_property("plc") {
        dec.set_property("plc", true);
    }
    let mut chain = vec![
        depay.clone(),
        dec.clone(),
        make("audioconvert")?,
        make("audioresample")?,
    ];
    if cfg.echo_cancel.enabled(&cfg.source, &cfg.sink) && cfg.rtp.send {
        chain.push(
            gst::ElementFactory::make("webrtcechoprobe")
                .name("echoprobe")
                .build()
                .context("GStreamer element `webrtcechoprobe` is missing")?,
        );
        chain.push(make("audioconvert")?);
        chain.push(make("audioresample")?);
    }
    let sink = match &cfg.sink {
        AudioSink::Null => dropping_sink(false)?,
        AudioSink::Clock => dropping_sink(true)?,
        AudioSink::Default => make("autoaudiosink")?,
        AudioSink::Device(d) if is_alsa_device(d) => gst::ElementFactory::make("alsasink")
            .property("device", d)
            .build()?,
        AudioSink::Device(d) => gst::ElementFactory::make("pulsesink")
            .property("device", d)
            .build()?,
    };
    chain.push(sink.clone());
    pipeline.add_many(&chain)?;
    gst::Element::link_many(&chain)?;
    let dec_src = dec.static_pad("src").context("decoder has no src pad")?;
    let c = counters.clone();
    dec_src.add_probe(gst::PadProbeType::BUFFER, move |_, _| {
        c.count_decoded();
        gst::PadProbeReturn::Ok
    });
    let dec_sink = dec.static_pad("sink").context("decoder has no sink pad")?;
    let c = counters.clone();
    dec_sink.add_probe(gst::PadProbeType::EVENT_DOWNSTREAM, move |_, info| {
        if let Some(gst::PadProbeData::Event(ev)) = &info.data {
            if let gst::EventView::Gap(gap) = ev.view() {
                let (_, duration) = gap.get();
                c.count_concealed(duration.unwrap_or(gst::ClockTime::ZERO));
            }
        }
        gst::PadProbeReturn::Ok
    });
    if cfg.latency_marks {
        let at = Presented::choose(cfg.sink == AudioSink::Clock, &sink, dec_src);
        marks::audio_onsets(&at, marks.clone(), false);
        marks::ntp_latency(&at, marks.clone(), false);
    }
    depay.static_pad("sink").context("depayloader has no sink")
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
        assert_eq!("clock".parse::<AudioSink>().unwrap(), AudioSink::Clock);
        assert_eq!(
            "hw:1,0".parse::<AudioSink>().unwrap(),
            AudioSink::Device("hw:1,0".into())
        );
        assert!(is_alsa_device("plughw:CARD=Speaker"));
        assert!(!is_alsa_device("alsa_output.usb-Jabra.analog-stereo"));
    }

    #[test]
    fn echo_cancellation_is_on_for_devices_and_off_for_test_sources() {
        let dev = AudioSource::Device("hw:1".into());
        let spk = AudioSink::Device("hw:1".into());
        assert!(EchoCancel::Auto.enabled(&dev, &spk));
        assert!(EchoCancel::Auto.enabled(&AudioSource::Default, &AudioSink::Default));
        assert!(!EchoCancel::Auto.enabled(&AudioSource::Test, &spk));
        assert!(!EchoCancel::Auto.enabled(&dev, &AudioSink::Null));
        assert!(!EchoCancel::Off.enabled(&dev, &spk));
        assert!(!EchoCancel::On.enabled(&dev, &AudioSink::Null));
        assert!(!EchoCancel::On.enabled(&dev, &AudioSink::Clock));
    }
}
