//! The video branches: source → scale/rate → encoder → payloader, and depayloader → decoder →
//! sink; encoders tuned for real time, hardware H.264 (`v4l2h264enc`/`dec`) when present.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use gstreamer as gst;
use gstreamer::prelude::*;

use super::marks::{self, Marks, Presented};
use super::{dropping_sink, make, Counters, VideoStreamConfig};
use crate::sdp::VideoCodec;

/// Where sent video comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum VideoSource {
    /// A moving test pattern with a clock.
    Test,
    /// A media file, looped.
    File(PathBuf),
    /// A V4L2 camera (`/dev/videoN`).
    Camera(String),
    /// Send no video.
    None,
}

/// Where received video goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VideoSink {
    /// Decoded, counted and dropped.
    Null,
    /// Decoded, counted and dropped at the moment a screen would show it, by the pipeline
    /// clock (jitter buffer and pipeline latency included): for latency benchmarks.
    Clock,
    /// A desktop window (`autovideosink`).
    Auto,
    /// Fullscreen on DRM/KMS, for the appliance.
    Kms,
}

impl std::str::FromStr for VideoSource {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "test" => Ok(VideoSource::Test),
            "none" => Ok(VideoSource::None),
            _ if s.starts_with("file:") && s.len() > 5 => {
                Ok(VideoSource::File(PathBuf::from(&s[5..])))
            }
            _ if s.starts_with("/dev/video") => Ok(VideoSource::Camera(s.to_string())),
            _ => Err(format!(
                "unknown video source `{s}`: expected test, none, file:PATH or /dev/videoN"
            )),
        }
    }
}

impl std::str::FromStr for VideoSink {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "null" => Ok(VideoSink::Null),
            "clock" => Ok(VideoSink::Clock),
            "auto" => Ok(VideoSink::Auto),
            "kms" => Ok(VideoSink::Kms),
            _ => Err(format!(
                "unknown video sink `{s}`: expected null, clock, auto or kms"
            )),
        }
    }
}

fn exists(factory: &str) -> bool {
    gst::ElementFactory::find(factory).is_some()
}

/// The caps of the incoming video RTP.
pub fn rtp_caps(cfg: &VideoStreamConfig) -> gst::Caps {
    gst::Caps::builder("application/x-rtp")
        .field("media", "video")
        .field("clock-rate", 90_000i32)
        .field("encoding-name", cfg.codec.encoding_name())
        .field("payload", i32::from(cfg.rtp.pt))
        .field("rtcp-fb-nack-pli", cfg.keyframe_requests)
        .field("rtcp-fb-ccm-fir", cfg.keyframe_requests)
        .build()
}

fn raw_caps(cfg: &VideoStreamConfig) -> gst::Caps {
    gst::Caps::builder("video/x-raw")
        .field("format", "I420")
        .field("width", cfg.width as i32)
        .field("height", cfg.height as i32)
        .field("framerate", gst::Fraction::new(cfg.fps as i32, 1))
        .build()
}

fn capsfilter(caps: gst::Caps) -> Result<gst::Element> {
    Ok(gst::ElementFactory::make("capsfilter")
        .property("caps", caps)
        .build()?)
}

/// The encoder for a codec, tuned for real time on a small CPU, and for x264 the caps that
/// keep it to the constrained baseline profile we offer.
fn encoder(cfg: &VideoStreamConfig) -> Result<Vec<gst::Element>> {
    let bps = cfg.kbps.saturating_mul(1000);
    let gop = (cfg.fps * 3).max(1);
    Ok(vec![match cfg.codec {
        VideoCodec::Vp8 | VideoCodec::Vp9 => {
            let name = if cfg.codec == VideoCodec::Vp8 {
                "vp8enc"
            } else {
                "vp9enc"
            };
            let enc = make(name)?;
            enc.set_property("deadline", 1i64);
            // Real time at the fastest fixed speed (baresip's too). Below 16 a positive value
            // is a time budget: libvpx slows down to use the CPU it finds free, which on a Pi
            // starves the decoder; measured on 1,200 frames of the bench clip, 0.90 s at 16
            // against 3.35 s at 8 for the same bitrate and SSIM (0.9997 against 0.9998).
            enc.set_property("cpu-used", 16i32);
            // Two threads under contention collapsed to 10 fps on a 2-core PC: one by
            // default; a Pi's profile gives its four cores two.
            enc.set_property("threads", cfg.threads.min(8) as i32);
            enc.set_property("target-bitrate", bps.min(i32::MAX as u32) as i32);
            enc.set_property_from_str("end-usage", "cbr");
            enc.set_property("lag-in-frames", 0i32);
            enc.set_property("keyframe-max-dist", gop as i32);
            enc.set_property_from_str("error-resilient", "default");
            enc
        }
        VideoCodec::H264 if exists("v4l2h264enc") => {
            let enc = make("v4l2h264enc")?;
            // SPS/PPS before every IDR from the encoder itself (see `payloader`)
            if let Ok(c) = "controls,repeat_sequence_header=1".parse::<gst::Structure>() {
                enc.set_property("extra-controls", c);
            }
            enc
        }
        VideoCodec::H264 if exists("x264enc") => {
            let enc = make("x264enc")?;
            enc.set_property_from_str("speed-preset", "ultrafast");
            enc.set_property_from_str("tune", "zerolatency");
            enc.set_property("bitrate", cfg.kbps);
            enc.set_property("key-int-max", gop);
            enc.set_property("threads", cfg.threads);
            // Slices under the MTU: packetization mode 0 needs one NAL unit per packet,
            // and small NAL units lose less on a lossy link in mode 1 too.
            enc.set_property("option-string", "slice-max-size=1200");
            // byte-stream: x264 repeats SPS/PPS in-band before every IDR (see `payloader`)
            enc.set_property("byte-stream", true);
            let caps = capsfilter(
                gst::Caps::builder("video/x-h264")
                    .field("profile", "constrained-baseline")
                    .field("stream-format", "byte-stream")
                    .build(),
            )?;
            return Ok(vec![enc, caps]);
        }
        VideoCodec::H264 => {
            if cfg.h264_single_nal {
                tracing::warn!(
                    "H.264 packetization mode 0 without x264enc: openh264enc cannot limit NAL \
                     size, large frames will be fragmented"
                );
            }
            let enc = make("openh264enc")?;
            enc.set_property("bitrate", bps);
            enc.set_property("gop-size", gop);
            enc.set_property_from_str("rate-control", "bitrate");
            enc.set_property_from_str("complexity", "low");
            enc.set_property_from_str("usage-type", "camera");
            enc.set_property("multi-thread", cfg.threads);
            enc
        }
    }])
}

fn payloader(cfg: &VideoStreamConfig) -> Result<gst::Element> {
    let pay = match cfg.codec {
        VideoCodec::Vp8 => make("rtpvp8pay")?,
        VideoCodec::Vp9 => make("rtpvp9pay")?,
        VideoCodec::H264 => {
            let p = make("rtph264pay")?;
            // SPS/PPS come with every IDR from the encoder itself (x264 in byte-stream
            // format, openh264, v4l2 with repeat_sequence_header), so a peer that joins late
            // or lost them can decode. Not the payloader's `config-interval=-1`: openh264dec
            // (the H.264 decoder of the images) decodes nothing of a stream whose parameter
            // sets rtph264pay re-inserts (GStreamer 1.22; shown by the images' H.264 check).
            p.set_property_from_str("aggregate-mode", "zero-latency");
            p
        }
    };
    if cfg.codec != VideoCodec::H264 {
        pay.set_property_from_str("picture-id-mode", "15-bit");
    }
    pay.set_property("pt", u32::from(cfg.rtp.pt));
    if cfg.codec == VideoCodec::Vp9 && cfg.vp9_clear_p {
        fn clear(buffer: &mut gst::BufferRef) {
            if let Ok(mut map) = buffer.map_writable() {
                vp9_clear_p(map.as_mut_slice());
            }
        }
        if let Some(src) = pay.static_pad("src") {
            src.add_probe(
                gst::PadProbeType::BUFFER | gst::PadProbeType::BUFFER_LIST,
                |_, info| {
                    match &mut info.data {
                        Some(gst::PadProbeData::Buffer(b)) => clear(b.make_mut()),
                        Some(gst::PadProbeData::BufferList(l)) => {
                            l.make_mut().foreach_mut(|mut b, _| {
                                clear(b.make_mut());
                                std::ops::ControlFlow::Continue(Some(b))
                            });
                        }
                        _ => {}
                    }
                    gst::PadProbeReturn::Ok
                },
            );
        }
    }
    Ok(pay)
}

/// Clears the P (inter-picture predicted) bit of a VP9 payload descriptor in non-flexible
/// mode, for peers that misread it (see `call::Quirks`). Leaves anything else alone.
pub fn vp9_clear_p(pkt: &mut [u8]) {
    if pkt.len() < 13 || pkt[0] >> 6 != 2 {
        return;
    }
    let mut off = 12 + 4 * usize::from(pkt[0] & 0x0f);
    if pkt[0] & 0x10 != 0 {
        let Some(ext) = pkt.get(off + 2..off + 4) else {
            return;
        };
        off += 4 + 4 * usize::from(u16::from_be_bytes([ext[0], ext[1]]));
    }
    if let Some(d) = pkt.get_mut(off) {
        // Flexible mode (F) really carries P_DIFF bytes after P: never touch it.
        if *d & 0x10 == 0 {
            *d &= !0x40;
        }
    }
}

fn depayloader_and_decoder(cfg: &VideoStreamConfig) -> Result<Vec<gst::Element>> {
    let depay = make(match cfg.codec {
        VideoCodec::Vp8 => "rtpvp8depay",
        VideoCodec::Vp9 => "rtpvp9depay",
        VideoCodec::H264 => "rtph264depay",
    })?;
    for prop in ["request-keyframe", "wait-for-keyframe"] {
        if depay.has_property(prop) {
            depay.set_property(prop, true);
        }
    }
    Ok(match cfg.codec {
        VideoCodec::Vp8 => vec![depay, make("vp8dec")?],
        VideoCodec::Vp9 => vec![depay, make("vp9dec")?],
        VideoCodec::H264 => {
            // The images have openh264dec only (avdec_h264's libav closure is ~200 MB); it
            // decodes baresip's stream and ours (tests: baresip.rs, the images' H.264 check).
            let dec = ["v4l2h264dec", "avdec_h264", "openh264dec"]
                .into_iter()
                .find(|f| exists(f))
                .context("no H.264 decoder (openh264dec, avdec_h264 or v4l2h264dec)")?;
            tracing::info!("H.264 decoder {dec}");
            vec![depay, make("h264parse")?, make(dec)?]
        }
    })
}

/// A media file played in a pipeline of its own, in real time and looped, feeding the call's
/// pipeline through `intervideosink`/`intervideosrc`.
pub struct FilePlayer {
    pipeline: gst::Pipeline,
    stop: Arc<AtomicBool>,
}

impl FilePlayer {
    fn start(path: &std::path::Path, channel: &str, cfg: &VideoStreamConfig) -> Result<Self> {
        if !path.is_file() {
            bail!("video file {} does not exist", path.display());
        }
        let pipeline = gst::Pipeline::with_name("file-player");
        let src = gst::ElementFactory::make("filesrc")
            .property("location", path.to_string_lossy().to_string())
            .build()?;
        let decode = make("decodebin")?;
        let tail = [
            make("videoconvert")?,
            make("videoscale")?,
            make("videorate")?,
            capsfilter(raw_caps(cfg))?,
            gst::ElementFactory::make("intervideosink")
                .property("channel", channel)
                .build()
                .context("GStreamer element `intervideosink` is missing")?,
        ];
        pipeline.add_many([&src, &decode])?;
        pipeline.add_many(&tail)?;
        src.link(&decode)?;
        gst::Element::link_many(&tail)?;
        let first = tail[0].clone();
        decode.connect_pad_added(move |_, pad| {
            let is_video = pad
                .current_caps()
                .and_then(|c| c.structure(0).map(|s| s.name().starts_with("video/")))
                .unwrap_or(false);
            if let (true, Some(sink)) = (is_video, first.static_pad("sink")) {
                if !sink.is_linked() {
                    let _ = pad.link(&sink);
                }
            }
        });
        pipeline.set_state(gst::State::Playing)?;
        let stop = Arc::new(AtomicBool::new(false));
        let (p, s) = (pipeline.clone(), stop.clone());
        std::thread::Builder::new()
            .name("file-player".into())
            .spawn(move || loop_file(p, s))?;
        Ok(FilePlayer { pipeline, stop })
    }
}

fn loop_file(pipeline: gst::Pipeline, stop: Arc<AtomicBool>) {
    let Some(bus) = pipeline.bus() else { return };
    while !stop.load(Ordering::Relaxed) {
        let Some(msg) = bus.timed_pop_filtered(
            gst::ClockTime::from_mseconds(200),
            &[gst::MessageType::Eos, gst::MessageType::Error],
        ) else {
            continue;
        };
        match msg.view() {
            gst::MessageView::Eos(_) => {
                if let Err(e) = pipeline.seek_simple(
                    gst::SeekFlags::FLUSH | gst::SeekFlags::KEY_UNIT,
                    gst::ClockTime::ZERO,
                ) {
                    tracing::warn!("looping the video file: {e}");
                    std::thread::sleep(Duration::from_secs(1));
                }
            }
            gst::MessageView::Error(e) => {
                tracing::error!("video file: {}", e.error());
                return;
            }
            _ => {}
        }
    }
}

impl Drop for FilePlayer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = self.pipeline.set_state(gst::State::Null);
    }
}

/// Source → encoder → payloader → `send_rtp_sink_SESSION`. Returns the file player when the
/// source is a file.
pub fn add_sender(
    pipeline: &gst::Pipeline,
    rtpbin: &gst::Element,
    session: u32,
    cfg: &VideoStreamConfig,
    counters: &Arc<Counters>,
) -> Result<Option<FilePlayer>> {
    let mut player = None;
    let mut chain: Vec<gst::Element> = match &cfg.source {
        VideoSource::Test => {
            let mut v = vec![gst::ElementFactory::make("videotestsrc")
                .property("is-live", true)
                .property_from_str("pattern", "ball")
                .build()?];
            if exists("timeoverlay") {
                v.push(make("timeoverlay")?);
            }
            v
        }
        VideoSource::Camera(dev) => vec![
            gst::ElementFactory::make("v4l2src")
                .property("device", dev)
                .build()?,
            make("decodebin")?,
        ],
        VideoSource::File(path) => {
            let channel = format!("ewindow-file-{}-{session}", std::process::id());
            player = Some(FilePlayer::start(path, &channel, cfg)?);
            vec![gst::ElementFactory::make("intervideosrc")
                .property("channel", channel)
                .build()
                .context("GStreamer element `intervideosrc` is missing")?]
        }
        VideoSource::None => return Ok(None),
    };
    let decodebin = chain.iter().position(|e| {
        e.factory()
            .is_some_and(|f| f.name().as_str() == "decodebin")
    });
    let mut rest = vec![
        make("videoconvert")?,
        make("videoscale")?,
        make("videorate")?,
        capsfilter(raw_caps(cfg))?,
    ];
    let encoder = encoder(cfg)?;
    let enc = encoder[0].clone();
    rest.extend(encoder);
    let pay = payloader(cfg)?;
    rest.push(pay.clone());
    pipeline.add_many(&chain)?;
    pipeline.add_many(&rest)?;
    gst::Element::link_many(&rest)?;
    match decodebin {
        // A camera may give MJPEG or raw: decodebin links when it knows.
        Some(i) => {
            gst::Element::link_many(&chain[..=i])?;
            let first = rest[0].clone();
            chain[i].connect_pad_added(move |_, pad| {
                if let Some(sink) = first.static_pad("sink") {
                    if !sink.is_linked() {
                        let _ = pad.link(&sink);
                    }
                }
            });
        }
        None => {
            chain.push(rest[0].clone());
            gst::Element::link_many(&chain)?;
        }
    }
    pay.link_pads(
        Some("src"),
        rtpbin,
        Some(&format!("send_rtp_sink_{session}")),
    )?;
    counters
        .sent_width
        .store(cfg.width, std::sync::atomic::Ordering::Relaxed);
    counters
        .sent_height
        .store(cfg.height, std::sync::atomic::Ordering::Relaxed);
    let enc_sink = enc.static_pad("sink").context("encoder has no sink pad")?;
    if cfg.latency_marks {
        marks::paint_video(&enc_sink);
    }
    let c = counters.clone();
    enc_sink.add_probe(gst::PadProbeType::BUFFER, move |_, _| {
        c.count_encoded();
        gst::PadProbeReturn::Ok
    });
    Ok(player)
}

/// A leaky queue, 160 pixels wide, PNG, the last 300 frames in `dir` (received video has no
/// fixed frame rate for `videorate` to thin out: the files are few and small anyway).
fn snapshot_branch(dir: &std::path::Path) -> Result<Vec<gst::Element>> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let location = dir.join("frame-%05d.png");
    Ok(vec![
        gst::ElementFactory::make("queue")
            .property_from_str("leaky", "downstream")
            .property("max-size-buffers", 2u32)
            .build()?,
        make("videoconvert")?,
        make("videoscale")?,
        capsfilter(
            gst::Caps::builder("video/x-raw")
                .field("width", 160i32)
                .field("pixel-aspect-ratio", gst::Fraction::new(1, 1))
                .build(),
        )?,
        make("pngenc")?,
        gst::ElementFactory::make("multifilesink")
            .property("location", location.to_string_lossy().as_ref())
            .property("max-files", 300u32)
            .property("sync", false)
            .property("async", false)
            .build()?,
    ])
}

/// What kmssink needs to know of the first display card.
struct KmsCard {
    /// Its DRM bus id when it is a PCI device.
    bus_id: Option<String>,
    /// The screen's mode, when the driver has no plane that scales (pictures must be
    /// scaled to it before the sink).
    software_scale_to: Option<(u32, u32)>,
}

/// The first display card (`/sys/class/drm/cardN`) and its first connected screen.
fn kms_card() -> Option<KmsCard> {
    let entries: Vec<std::path::PathBuf> = std::fs::read_dir("/sys/class/drm")
        .ok()?
        .flatten()
        .map(|e| e.path())
        .collect();
    let name = |p: &std::path::Path| {
        p.file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default()
            .to_string()
    };
    let mut cards: Vec<&std::path::PathBuf> = entries
        .iter()
        .filter(|p| name(p).starts_with("card") && !name(p).contains('-'))
        .collect();
    cards.sort();
    let card = cards.first()?;
    let uevent = std::fs::read_to_string(card.join("device/uevent")).unwrap_or_default();
    let driver = uevent
        .lines()
        .find_map(|l| l.strip_prefix("DRIVER="))
        .unwrap_or_default();
    let mode = || {
        let mut connectors: Vec<&std::path::PathBuf> = entries
            .iter()
            .filter(|p| name(p).starts_with(&format!("{}-", name(card))))
            .collect();
        connectors.sort();
        connectors.iter().find_map(|c| {
            let connected =
                std::fs::read_to_string(c.join("status")).is_ok_and(|s| s.trim() == "connected");
            connected
                .then(|| std::fs::read_to_string(c.join("modes")).ok())
                .flatten()
                .and_then(|m| first_mode(&m))
        })
    };
    Some(KmsCard {
        bus_id: pci_bus_id(&uevent),
        software_scale_to: (!scales_in_hardware(driver)).then(mode).flatten(),
    })
}

/// Pure: whether a DRM driver has a plane that scales a picture to the screen. The ones
/// without are the emulated and the firmware-framebuffer displays.
fn scales_in_hardware(driver: &str) -> bool {
    !matches!(
        driver,
        "bochs-drm" | "cirrus" | "qxl" | "vmwgfx" | "simple-framebuffer" | "simpledrm"
    )
}

/// Pure: the first (preferred) mode of a connector's `modes` file, `1280x800`.
fn first_mode(modes: &str) -> Option<(u32, u32)> {
    let (w, h) = modes.lines().next()?.trim().split_once('x')?;
    let h: String = h.chars().take_while(char::is_ascii_digit).collect();
    Some((w.parse().ok()?, h.parse().ok()?))
}

/// Pure: the DRM bus id of a device from its sysfs `uevent` text, if it is a PCI device.
fn pci_bus_id(uevent: &str) -> Option<String> {
    uevent
        .lines()
        .find_map(|l| l.strip_prefix("PCI_SLOT_NAME="))
        .map(|slot| format!("pci:{}", slot.trim()))
}

/// Depayloader → decoder → sink; returns the depayloader's sink pad.
pub fn add_receiver(
    pipeline: &gst::Pipeline,
    cfg: &VideoStreamConfig,
    counters: &Arc<Counters>,
    marks: &Arc<Marks>,
) -> Result<gst::Pad> {
    let mut chain = depayloader_and_decoder(cfg)?;
    let depay = chain[0].clone();
    let dec = chain[chain.len() - 1].clone();
    // decoder → tee → queue → the sink, and tee → the snapshots (linked once in the pipeline)
    let mut snapshots = None;
    if let Some(dir) = &cfg.snapshots {
        let tee = make("tee")?;
        chain.push(tee.clone());
        let snap = snapshot_branch(dir)?;
        pipeline.add_many(&snap)?;
        gst::Element::link_many(&snap)?;
        snapshots = Some((tee, snap[0].clone()));
        chain.push(make("queue")?);
    }
    match cfg.sink {
        VideoSink::Null => chain.push(dropping_sink(false)?),
        VideoSink::Clock => chain.push(dropping_sink(true)?),
        VideoSink::Auto => {
            chain.push(make("videoconvert")?);
            chain.push(
                gst::ElementFactory::make("autovideosink")
                    .property("sync", false)
                    .build()?,
            );
        }
        VideoSink::Kms => {
            chain.push(make("videoconvert")?);
            let card = kms_card();
            // a display without a scaling plane (QEMU's bochs-drm) shows only pictures of
            // the screen's size: scale them in software (nearest neighbour: cheap), keeping
            // the aspect ratio with borders
            if let Some((w, h)) = card.as_ref().and_then(|c| c.software_scale_to) {
                chain.push(
                    gst::ElementFactory::make("videoscale")
                        .property_from_str("method", "nearest-neighbour")
                        .build()?,
                );
                chain.push(capsfilter(
                    gst::Caps::builder("video/x-raw")
                        .field("width", w as i32)
                        .field("height", h as i32)
                        .field("pixel-aspect-ratio", gst::Fraction::new(1, 1))
                        .build(),
                )?);
            }
            let mut sink = gst::ElementFactory::make("kmssink").property("sync", false);
            if card.as_ref().is_some_and(|c| c.software_scale_to.is_some()) {
                // such a display has no vertical blank to wait for either (kmssink 1.22
                // fails each frame on it): set the screen's mode and page-flip instead
                sink = sink.property("force-modesetting", true);
            }
            // kmssink finds a GPU by a list of driver names (vc4, i915, virtio_gpu …); a PC's
            // other GPUs (bochs-drm among them) it finds by their PCI bus id
            if let Some(bus) = card.and_then(|c| c.bus_id) {
                sink = sink.property("bus-id", bus);
            }
            chain.push(
                sink.build()
                    .context("GStreamer element `kmssink` is missing")?,
            );
        }
    }
    pipeline.add_many(&chain)?;
    gst::Element::link_many(&chain)?;
    if let Some((tee, first)) = snapshots {
        tee.link(&first)?;
    }
    let c = counters.clone();
    dec.static_pad("src")
        .context("decoder has no src pad")?
        .add_probe(
            gst::PadProbeType::BUFFER | gst::PadProbeType::EVENT_DOWNSTREAM,
            move |_, info| {
                match &info.data {
                    Some(gst::PadProbeData::Buffer(_)) => c.count_decoded(),
                    Some(gst::PadProbeData::Event(ev)) => {
                        if let gst::EventView::Caps(caps) = ev.view() {
                            if let Some(s) = caps.caps().structure(0) {
                                let w = s.get::<i32>("width").unwrap_or(0).max(0) as u32;
                                let h = s.get::<i32>("height").unwrap_or(0).max(0) as u32;
                                c.width.store(w, Ordering::Relaxed);
                                c.height.store(h, Ordering::Relaxed);
                            }
                        }
                    }
                    _ => {}
                }
                gst::PadProbeReturn::Ok
            },
        );
    if cfg.latency_marks {
        if let (Some(sink), Some(src)) = (chain.last(), dec.static_pad("src")) {
            let at = Presented::choose(cfg.sink == VideoSink::Clock, sink, src);
            marks::read_video(&at, marks.clone());
            marks::ntp_latency(&at, marks.clone(), true);
        }
    }
    depay.static_pad("sink").context("depayloader has no sink")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vp9_p_bit_is_cleared_only_in_non_flexible_descriptors() {
        let rtp = |d: u8| {
            let mut p = vec![0x80, 98, 0, 1, 0, 0, 0, 1, 0, 0, 0, 2, d, 0x85, 0xbe, 0x86];
            vp9_clear_p(&mut p);
            p[12]
        };
        assert_eq!(rtp(0b1100_1100), 0b1000_1100); // I P B E → I B E
        assert_eq!(rtp(0b1101_1100), 0b1101_1100); // flexible: untouched
        assert_eq!(rtp(0b1000_1110), 0b1000_1110); // keyframe: nothing to clear
        let mut short = vec![0x80, 98, 0, 1];
        vp9_clear_p(&mut short); // too short: untouched, no panic
        assert_eq!(short, vec![0x80, 98, 0, 1]);
    }

    #[test]
    fn a_pci_display_is_found_by_its_bus_id() {
        let bochs =
            "DRIVER=bochs-drm\nPCI_CLASS=30000\nPCI_ID=1234:1111\nPCI_SLOT_NAME=0000:00:02.0\n";
        assert_eq!(pci_bus_id(bochs).as_deref(), Some("pci:0000:00:02.0"));
        // a Pi's vc4 is a platform device: kmssink's own list finds it
        assert_eq!(pci_bus_id("DRIVER=vc4-drm\nOF_NAME=gpu\n"), None);
        assert!(!scales_in_hardware("bochs-drm"));
        assert!(scales_in_hardware("vc4-drm") && scales_in_hardware("i915"));
        assert_eq!(first_mode("1024x768\n800x600\n"), Some((1024, 768)));
        assert_eq!(first_mode("1920x1080i\n"), Some((1920, 1080)));
        assert_eq!(first_mode(""), None);
        assert_eq!(first_mode("garbage"), None);
    }

    #[test]
    fn video_sources_and_sinks_parse_with_clear_errors() {
        assert_eq!("test".parse::<VideoSource>().unwrap(), VideoSource::Test);
        assert_eq!(
            "file:/tmp/a.mkv".parse::<VideoSource>().unwrap(),
            VideoSource::File("/tmp/a.mkv".into())
        );
        assert_eq!(
            "/dev/video2".parse::<VideoSource>().unwrap(),
            VideoSource::Camera("/dev/video2".into())
        );
        assert!("file:".parse::<VideoSource>().is_err());
        let err = "webcam".parse::<VideoSource>().unwrap_err();
        assert!(err.contains("webcam") && err.contains("file:PATH"), "{err}");
        assert_eq!("kms".parse::<VideoSink>().unwrap(), VideoSink::Kms);
        assert_eq!("clock".parse::<VideoSink>().unwrap(), VideoSink::Clock);
        assert!("hdmi".parse::<VideoSink>().is_err());
    }
}
