//! Latency marks (`--latency-marks`, for benchmarks): the sender paints each video frame's
//! capture time into blocks of its luma plane and timestamps the onsets of audio clicks;
//! the receiver reads the time back out of decoded frames and timestamps the clicks it
//! decodes. Both processes run on one machine, so the wall clock is shared.
//!
//! The block code survives lossy video coding: 16x16 blocks, black or white, 64 bits =
//! a 16-bit sync word, the 40-bit time in units of 10 µs, and an 8-bit checksum.

use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_video as gst_video;
use gstreamer_video::prelude::*;

const BLOCK: usize = 16;
const BITS: usize = 64;
const SYNC: u64 = 0xE5A1;

/// Microseconds since the Unix epoch.
pub fn now_us() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as i64)
        .unwrap_or(0)
}

fn checksum(v: u64) -> u64 {
    (v.to_le_bytes().iter().fold(0u8, |a, b| a.wrapping_add(*b)) ^ 0x5A) as u64
}

fn word(time_us: i64) -> u64 {
    let t = ((time_us / 10) as u64) & ((1 << 40) - 1);
    (SYNC << 48) | (t << 8) | checksum(t)
}

/// Paints `time_us` into the top left of a luma plane (`stride` bytes a row).
/// Returns false when the picture is too small to hold the code.
pub fn paint(luma: &mut [u8], stride: usize, width: usize, height: usize, time_us: i64) -> bool {
    let per_row = width / BLOCK;
    if per_row == 0 || per_row * (height / BLOCK) < BITS {
        return false;
    }
    let w = word(time_us);
    for bit in 0..BITS {
        let value = if (w >> (BITS - 1 - bit)) & 1 == 1 {
            235
        } else {
            16
        };
        let (bx, by) = (bit % per_row, bit / per_row);
        for y in by * BLOCK..(by + 1) * BLOCK {
            let row = y * stride + bx * BLOCK;
            if let Some(px) = luma.get_mut(row..row + BLOCK) {
                px.fill(value);
            }
        }
    }
    true
}

/// Reads a time painted by [`paint`], if the code is intact. `now_us` resolves the 40-bit
/// wrap (about 127 days).
pub fn read(luma: &[u8], stride: usize, width: usize, height: usize, now_us: i64) -> Option<i64> {
    let per_row = width / BLOCK;
    if per_row == 0 || per_row * (height / BLOCK) < BITS {
        return None;
    }
    let mut w = 0u64;
    for bit in 0..BITS {
        let (bx, by) = (bit % per_row, bit / per_row);
        // The block's centre, away from edges that coding smears.
        let mut sum = 0u32;
        for y in by * BLOCK + 4..by * BLOCK + 12 {
            let row = y * stride + bx * BLOCK + 4;
            sum += luma
                .get(row..row + 8)?
                .iter()
                .map(|&p| u32::from(p))
                .sum::<u32>();
        }
        w = (w << 1) | u64::from(sum / 64 > 125);
    }
    if w >> 48 != SYNC {
        return None;
    }
    let t = (w >> 8) & ((1 << 40) - 1);
    if checksum(t) != w & 0xff {
        return None;
    }
    // Put the 40-bit value (10 µs units) back next to `now`.
    let span = 1i64 << 40;
    let now = now_us / 10;
    let base = now - (now & (span - 1));
    let mut full = base + t as i64;
    if full > now + span / 2 {
        full -= span;
    }
    Some(full * 10)
}

/// The index of the first click onset in 16-bit samples (interleaved, `channels`), given
/// whether the previous buffer ended in silence. A click is a jump above a quarter of full
/// scale after silence.
pub fn click_onset(samples: &[i16], channels: usize, quiet_before: bool) -> (Option<usize>, bool) {
    let channels = channels.max(1);
    let mut quiet = quiet_before;
    let mut run = 0usize;
    let mut onset = None;
    for (i, frame) in samples.chunks(channels).enumerate() {
        let loud = frame.iter().any(|s| s.unsigned_abs() > 8192);
        if loud {
            if quiet && onset.is_none() {
                onset = Some(i);
            }
            quiet = false;
            run = 0;
        } else {
            run += 1;
            // 5 ms of silence at 48 kHz (fewer at lower rates is still silence).
            if run > 240 {
                quiet = true;
            }
        }
    }
    (onset, quiet)
}

/// Times (µs since the epoch) collected by probes.
#[derive(Debug, Default)]
pub struct Marks {
    /// Video: one-way latency of each marked frame read back, in ms.
    pub video_latency_ms: Mutex<Vec<f64>>,
    /// Audio: onsets of clicks we sent, at the encoder input.
    pub audio_sent_us: Mutex<Vec<i64>>,
    /// Audio: onsets of clicks we received, at the decoder output.
    pub audio_received_us: Mutex<Vec<i64>>,
    /// Audio: capture (by the sender's RTCP clock) → our decoder output, ms.
    pub audio_ntp_latency_ms: Mutex<Vec<f64>>,
    /// Video: capture (by the sender's RTCP clock) → our decoder output, ms.
    pub video_ntp_latency_ms: Mutex<Vec<f64>>,
}

/// Where received buffers are timed: a pad, as each buffer passes it, or a clock-synchronised
/// `fakesink` ([`super::dropping_sink`]) that signals each buffer at the moment it presents it.
pub enum Presented {
    /// Each buffer as it passes this pad (out of the decoder).
    Pad(gst::Pad),
    /// Each buffer as this `fakesink` takes it (`handoff`).
    Sink(gst::Element),
}

impl Presented {
    /// At `sink` when it is a clock-synchronised one (`clock`), else out of the decoder.
    pub fn choose(clock: bool, sink: &gst::Element, decoder_src: gst::Pad) -> Presented {
        if clock {
            Presented::Sink(sink.clone())
        } else {
            Presented::Pad(decoder_src)
        }
    }
}

/// Calls `f` with every buffer at `at`, and the pad that carries its caps.
fn each_buffer(at: &Presented, f: impl Fn(&gst::Pad, &gst::BufferRef) + Send + Sync + 'static) {
    match at {
        Presented::Pad(pad) => {
            pad.add_probe(gst::PadProbeType::BUFFER, move |pad, info| {
                if let Some(buffer) = info.buffer() {
                    f(pad, buffer);
                }
                gst::PadProbeReturn::Ok
            });
        }
        Presented::Sink(sink) => {
            sink.set_property("signal-handoffs", true);
            sink.connect("handoff", false, move |args| {
                let buffer = args.get(1).and_then(|v| v.get::<gst::Buffer>().ok());
                let pad = args.get(2).and_then(|v| v.get::<gst::Pad>().ok());
                if let (Some(buffer), Some(pad)) = (buffer, pad) {
                    f(&pad, &buffer);
                }
                None
            });
        }
    }
}

/// Seconds from the NTP epoch (1900) to the Unix epoch (1970).
const NTP_UNIX_OFFSET_S: i64 = 2_208_988_800;

/// Records, for every buffer at `at` that carries the sender's capture time (rtpbin's
/// `add-reference-timestamp-meta`, mapped through the sender's RTCP sender reports), how long
/// ago that was. Works with any sender whose SRs are right, baresip included.
pub fn ntp_latency(at: &Presented, list: Arc<Marks>, video: bool) {
    each_buffer(at, move |_, buffer| {
        for meta in buffer.iter_meta::<gst::ReferenceTimestampMeta>() {
            let is_ntp = meta
                .reference()
                .structure(0)
                .is_some_and(|s| s.name() == "timestamp/x-ntp");
            if !is_ntp {
                continue;
            }
            let captured_us = meta.timestamp().useconds() as i64 - NTP_UNIX_OFFSET_S * 1_000_000;
            let ms = (now_us() - captured_us) as f64 / 1000.0;
            // Before the first SR the mapping is a guess; keep plausible values only.
            if (0.0..2000.0).contains(&ms) {
                push(
                    if video {
                        &list.video_ntp_latency_ms
                    } else {
                        &list.audio_ntp_latency_ms
                    },
                    ms,
                );
            }
            break;
        }
    });
}

/// A copy of a list of marks.
pub fn snapshot<T: Clone>(v: &Mutex<Vec<T>>) -> Vec<T> {
    match v.lock() {
        Ok(g) => g.clone(),
        Err(p) => p.into_inner().clone(),
    }
}

fn push<T>(v: &Mutex<Vec<T>>, x: T) {
    let mut g = match v.lock() {
        Ok(g) => g,
        Err(p) => p.into_inner(),
    };
    if g.len() < 100_000 {
        g.push(x);
    }
}

fn video_info(pad: &gst::Pad) -> Option<gst_video::VideoInfo> {
    let caps = pad.current_caps()?;
    gst_video::VideoInfo::from_caps(&caps).ok()
}

/// Paints the capture time into every raw frame passing `pad` (before the encoder).
pub fn paint_video(pad: &gst::Pad) {
    pad.add_probe(gst::PadProbeType::BUFFER, |pad, info| {
        let Some(vinfo) = video_info(pad) else {
            return gst::PadProbeReturn::Ok;
        };
        if let Some(buffer) = info.buffer_mut() {
            let buffer = buffer.make_mut();
            if let Ok(mut frame) =
                gst_video::VideoFrameRef::from_buffer_ref_writable(buffer, &vinfo)
            {
                let stride = frame.plane_stride()[0] as usize;
                if let Ok(luma) = frame.plane_data_mut(0) {
                    paint(
                        luma,
                        stride,
                        vinfo.width() as usize,
                        vinfo.height() as usize,
                        now_us(),
                    );
                }
            }
        }
        gst::PadProbeReturn::Ok
    });
}

/// Reads the time out of every decoded frame at `at` and records the latency.
pub fn read_video(at: &Presented, marks: Arc<Marks>) {
    each_buffer(at, move |pad, buffer| {
        let Some(vinfo) = video_info(pad) else {
            return;
        };
        if let Ok(frame) = gst_video::VideoFrameRef::from_buffer_ref_readable(buffer, &vinfo) {
            let stride = frame.plane_stride()[0] as usize;
            if let Ok(luma) = frame.plane_data(0) {
                let now = now_us();
                let w = vinfo.width() as usize;
                let h = vinfo.height() as usize;
                if let Some(sent) = read(luma, stride, w, h, now) {
                    push(&marks.video_latency_ms, (now - sent) as f64 / 1000.0);
                }
            }
        }
    });
}

/// Records click onsets in 16-bit audio at `at`. `sender`: the samples were captured over
/// the buffer's duration up to now; receiver: they play from now on.
pub fn audio_onsets(at: &Presented, marks: Arc<Marks>, sender: bool) {
    let quiet = Arc::new(Mutex::new(true));
    each_buffer(at, move |pad, buffer| {
        let caps = pad.current_caps();
        let s = caps.as_ref().and_then(|c| c.structure(0));
        let rate = s
            .and_then(|s| s.get::<i32>("rate").ok())
            .unwrap_or(48_000)
            .max(1) as i64;
        let channels = s
            .and_then(|s| s.get::<i32>("channels").ok())
            .unwrap_or(1)
            .max(1) as usize;
        let is_s16 = s
            .and_then(|s| s.get::<&str>("format").ok())
            .is_some_and(|f| f == "S16LE");
        if !is_s16 {
            return;
        }
        let now = now_us();
        if let Ok(map) = buffer.map_readable() {
            let samples: Vec<i16> = map
                .as_slice()
                .chunks_exact(2)
                .map(|b| i16::from_le_bytes([b[0], b[1]]))
                .collect();
            let frames = (samples.len() / channels) as i64;
            let mut q = match quiet.lock() {
                Ok(g) => g,
                Err(p) => p.into_inner(),
            };
            let (onset, now_quiet) = click_onset(&samples, channels, *q);
            *q = now_quiet;
            if let Some(i) = onset {
                let at = if sender {
                    now - (frames - i as i64) * 1_000_000 / rate
                } else {
                    now + i as i64 * 1_000_000 / rate
                };
                let list = if sender {
                    &marks.audio_sent_us
                } else {
                    &marks.audio_received_us
                };
                push(list, at);
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn painted_time_reads_back_exactly_to_10_us() {
        let (w, h) = (640, 480);
        let mut luma = vec![100u8; w * h];
        let t = 1_795_000_000_123_450i64;
        assert!(paint(&mut luma, w, w, h, t));
        assert_eq!(read(&luma, w, w, h, t + 50_000), Some(t));
    }

    #[test]
    fn painted_time_survives_noise_and_fails_cleanly_when_damaged() {
        let (w, h, stride) = (320, 240, 336);
        let mut luma = vec![128u8; stride * h];
        let t = 1_795_000_000_000_000i64;
        assert!(paint(&mut luma, stride, w, h, t));
        for (i, p) in luma.iter_mut().enumerate() {
            *p = p.saturating_add((i % 7) as u8 * 6).saturating_sub(18);
        }
        assert_eq!(read(&luma, stride, w, h, t), Some(t));
        // Flip one block of the time field (bit 30: row 1, column 10 at 20 blocks a row):
        // the checksum catches it.
        let flip = |luma: &mut Vec<u8>, bx: usize, by: usize| {
            for y in by * BLOCK..(by + 1) * BLOCK {
                for x in bx * BLOCK..(bx + 1) * BLOCK {
                    luma[y * stride + x] = 255 - luma[y * stride + x];
                }
            }
        };
        let mut damaged = luma.clone();
        flip(&mut damaged, 10, 1);
        assert_eq!(read(&damaged, stride, w, h, t), None);
        // A damaged sync word (bit 5) is caught too.
        let mut damaged = luma.clone();
        flip(&mut damaged, 5, 0);
        assert_eq!(read(&damaged, stride, w, h, t), None);
        // An unmarked picture reads as nothing; a tiny one cannot hold the code.
        assert_eq!(read(&vec![0u8; 640 * 480], 640, 640, 480, t), None);
        assert!(!paint(&mut [0u8; 64 * 64], 64, 64, 64, t));
    }

    #[test]
    fn click_onsets_are_found_after_silence_only() {
        let mut s = vec![0i16; 960];
        s[500] = 20_000;
        s[501] = -20_000;
        assert_eq!(click_onset(&s, 1, true), (Some(500), true));
        // A click continuing from the previous buffer is not a new onset.
        assert_eq!(click_onset(&[20_000, 20_000, 0], 1, false).0, None);
        // Stereo: frame index, not sample index.
        let mut st = vec![0i16; 200];
        st[101] = 30_000;
        assert_eq!(click_onset(&st, 2, true).0, Some(50));
    }
}
