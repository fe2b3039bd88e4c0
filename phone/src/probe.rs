//! `ewindow-phone probe …`: quick device checks for the first-boot wizard, so the person
//! setting up a window knows the devices work: a microphone's level (dBFS, ten a second), a
//! camera's frame rate, a test tone on a speaker. One line per result on stdout.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use gstreamer as gst;
use gstreamer::prelude::*;

use crate::media::{AudioSink, AudioSource, VideoSource};

/// A GStreamer launch-line value, quoted.
fn quoted(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

fn is_alsa(d: &str) -> bool {
    d.starts_with("hw:") || d.starts_with("plughw:") || d.starts_with("default:")
}

fn audio_source(src: &AudioSource) -> String {
    match src {
        AudioSource::Test => "audiotestsrc is-live=true volume=0.3".into(),
        AudioSource::Default => "autoaudiosrc".into(),
        AudioSource::Device(d) if is_alsa(d) => format!("alsasrc device={}", quoted(d)),
        AudioSource::Device(d) => format!("pulsesrc device={}", quoted(d)),
    }
}

fn audio_sink(sink: &AudioSink) -> String {
    match sink {
        AudioSink::Null | AudioSink::Clock => "fakesink sync=true".into(),
        AudioSink::Default => "autoaudiosink".into(),
        AudioSink::Device(d) if is_alsa(d) => format!("alsasink device={}", quoted(d)),
        AudioSink::Device(d) => format!("pulsesink device={}", quoted(d)),
    }
}

fn run_until(
    pipeline: &gst::Pipeline,
    until: Option<Instant>,
    mut on: impl FnMut(&gst::Message),
) -> Result<()> {
    pipeline
        .set_state(gst::State::Playing)
        .map_err(|_| anyhow!("the device could not be started"))?;
    let bus = pipeline.bus().context("pipeline without a bus")?;
    let result = loop {
        let wait = until.map(|t| t.saturating_duration_since(Instant::now()));
        if wait == Some(Duration::ZERO) {
            break Ok(());
        }
        let timeout = wait.map(|d| gst::ClockTime::from_mseconds(d.as_millis() as u64));
        let Some(msg) = bus.timed_pop(timeout) else {
            if until.is_some() {
                continue;
            }
            break Ok(());
        };
        match msg.view() {
            gst::MessageView::Eos(..) => break Ok(()),
            gst::MessageView::Error(e) => break Err(anyhow!("{}", e.error())),
            _ => on(&msg),
        }
    };
    let _ = pipeline.set_state(gst::State::Null);
    result
}

fn launch(line: &str) -> Result<gst::Pipeline> {
    gst::parse::launch(line)
        .with_context(|| format!("GStreamer: {line}"))?
        .downcast::<gst::Pipeline>()
        .map_err(|_| anyhow!("not a pipeline"))
}

/// Prints `level DBFS` (the loudest channel's RMS) ten times a second, for `duration` or
/// until killed.
pub fn level(source: &AudioSource, duration: Option<Duration>) -> Result<()> {
    gst::init()?;
    let p = launch(&format!(
        "{} ! audioconvert ! level interval=100000000 post-messages=true ! fakesink sync=false",
        audio_source(source)
    ))?;
    let until = duration.map(|d| Instant::now() + d);
    run_until(&p, until, |msg| {
        if let gst::MessageView::Element(e) = msg.view() {
            let Some(s) = e.structure() else { return };
            if s.name() != "level" {
                return;
            }
            if let Ok(rms) = s.get::<gst::glib::ValueArray>("rms") {
                let db = rms
                    .iter()
                    .filter_map(|v| v.get::<f64>().ok())
                    .fold(f64::NEG_INFINITY, f64::max);
                println!("level {:.1}", db.max(-120.0));
            }
        }
    })
}

/// Counts frames for two seconds and prints `fps N`.
pub fn camera(source: &VideoSource) -> Result<()> {
    gst::init()?;
    let src = match source {
        VideoSource::Test => "videotestsrc is-live=true ! video/x-raw,framerate=30/1".to_owned(),
        VideoSource::Camera(dev) => format!("v4l2src device={}", quoted(dev)),
        other => bail!("{other:?} is not a camera"),
    };
    let p = launch(&format!(
        "{src} ! fakesink name=sink signal-handoffs=true sync=false"
    ))?;
    let frames = Arc::new(AtomicU64::new(0));
    let sink = p.by_name("sink").context("no sink")?;
    let f = frames.clone();
    sink.connect("handoff", false, move |_| {
        f.fetch_add(1, Ordering::Relaxed);
        None
    });
    let start = Instant::now();
    let window = Duration::from_secs(2);
    run_until(&p, Some(start + window), |_| {})?;
    let fps = frames.load(Ordering::Relaxed) as f64 / start.elapsed().as_secs_f64();
    println!("fps {fps:.1}");
    Ok(())
}

/// Plays a one-second 440 Hz tone.
pub fn tone(sink: &AudioSink) -> Result<()> {
    gst::init()?;
    let p = launch(&format!(
        "audiotestsrc num-buffers=50 samplesperbuffer=960 freq=440 volume=0.4 ! audio/x-raw,rate=48000 ! audioconvert ! audioresample ! {}",
        audio_sink(sink)
    ))?;
    run_until(&p, Some(Instant::now() + Duration::from_secs(5)), |_| {})?;
    println!("tone played");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn launch_values_are_quoted() {
        assert_eq!(quoted("hw:1,0"), "\"hw:1,0\"");
        assert_eq!(quoted("a\"b"), "\"a\\\"b\"");
        assert_eq!(
            audio_source(&AudioSource::Device("hw:1,0".into())),
            "alsasrc device=\"hw:1,0\""
        );
        assert_eq!(
            audio_sink(&AudioSink::Device("bluez_sink.x".into())),
            "pulsesink device=\"bluez_sink.x\""
        );
    }
}
