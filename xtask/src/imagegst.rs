//! The built image's own GStreamer, run on the build machine: its root filesystem is
//! unpacked from the image's boot partition (the Pi's `initrd.img`, the PC's unified kernel
//! image's `.initrd`), Debian's `gst-launch-1.0` of the same GStreamer version is added, and
//! pipelines run with the image's dynamic loader and libraries (the PC) or under
//! `qemu-aarch64` with the image as its prefix (the Pi). Nothing of the build machine's
//! GStreamer takes part.
//!
//! Two uses: the H.264 check of `cargo xtask test` (every image decodes an H.264 stream made
//! the way baresip's avcodec makes it: x264, baseline, ultrafast, zerolatency, slices under
//! the MTU, packetization mode 0), and `cargo xtask bench video` (what each video candidate
//! costs to encode and decode, the Pi's arm64 code next to the PC's).

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};

use crate::image::{tool, Boot, Target};

/// An unpacked image root and how to run its programs.
pub struct ImageRoot {
    /// The unpacked root filesystem.
    pub root: PathBuf,
    target: Target,
}

/// One pipeline run: what it printed, and the CPU time it took (user + system, seconds).
pub struct Run {
    /// stdout and stderr.
    pub output: String,
    /// User + system CPU seconds of the whole process.
    pub cpu_s: f64,
}

impl ImageRoot {
    /// Unpacks the built image of `target` into `target/image/gst/<target>/root` (anew) and
    /// adds `gst-launch-1.0`.
    pub fn unpack(target_name: &str) -> Result<ImageRoot> {
        let repo = crate::root();
        let target = Target::load(&repo, target_name)?;
        let img = crate::qemu::image_path(target_name);
        if !img.exists() {
            bail!(
                "{} does not exist: cargo xtask image --target {target_name}",
                img.display()
            );
        }
        let dir = repo.join("target/image/gst").join(target_name);
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir)?;
        let mcopy = |name: &str, out: &Path| crate::qemu::boot_partition_file(&img, name, out);
        let initrd = dir.join("initrd.cpio.zst");
        match &target.boot {
            Boot::Raspi { .. } => mcopy("initrd.img", &initrd)?,
            Boot::Uefi { path, .. } => {
                let uki = dir.join("uki.efi");
                mcopy(path, &uki)?;
                tool(
                    Command::new("objcopy")
                        .args(["-O", "binary", "--only-section=.initrd"])
                        .arg(&uki)
                        .arg(&initrd),
                )?;
            }
        }
        let root = dir.join("root");
        fs::create_dir_all(&root)?;
        let st = Command::new("sh")
            .arg("-c")
            .arg(format!(
                "zstd -dc '{}' | cpio -idm --quiet --no-absolute-filenames",
                initrd.display()
            ))
            .current_dir(&root)
            .status()
            .context("unpacking the initramfs (zstd, cpio)")?;
        if !st.success() || !root.join("usr/bin/ewindow-init").exists() {
            bail!("the initramfs of {} did not unpack ({st})", img.display());
        }
        // gst-launch-1.0 of the image's GStreamer version (the same source package as its
        // libgstreamer1.0-0); the image itself has none
        let lock = fs::read_to_string(target.lock_path(&repo))?;
        let version = lock
            .lines()
            .find_map(|l| l.strip_prefix("package libgstreamer1.0-0 "))
            .and_then(|l| l.split_whitespace().next())
            .context("the lock pins no libgstreamer1.0-0")?
            .to_string();
        let cache = crate::image::cache(&repo, &target)?;
        let tools = cache.get("gstreamer1.0-tools", &version, None)?;
        fs::copy(
            tools.root.join("usr/bin/gst-launch-1.0"),
            root.join("usr/bin/gst-launch-1.0"),
        )?;
        Ok(ImageRoot { root, target })
    }

    /// The triplet's library directory in the root.
    fn libdir(&self) -> PathBuf {
        self.root.join("usr/lib").join(&self.target.triplet)
    }

    /// Runs `gst-launch-1.0 ARGS` of the image, its registry in the image's
    /// directory (scanned in-process: an emulated process cannot start the scanner).
    pub fn gst_launch(&self, args: &[&str]) -> Result<Run> {
        let gst = self.root.join("usr/bin/gst-launch-1.0");
        let mut c = match self.target.runner() {
            Some(r) => {
                let mut c = Command::new(r);
                c.arg("-L").arg(&self.root).arg(&gst);
                c
            }
            None => {
                let loader = fs::read_dir(self.root.join("usr/lib64"))
                    .ok()
                    .and_then(|d| {
                        d.flatten()
                            .map(|e| e.path())
                            .find(|p| p.to_string_lossy().contains("ld-linux"))
                    })
                    .context("the image has no dynamic loader in /usr/lib64")?;
                let mut c = Command::new(loader);
                c.arg("--library-path").arg(self.libdir()).arg(&gst);
                c
            }
        };
        c.args(args);
        c.env_clear()
            .env("PATH", "/usr/bin:/bin")
            .env(
                "GST_PLUGIN_SYSTEM_PATH_1_0",
                self.libdir().join("gstreamer-1.0"),
            )
            .env("GST_PLUGIN_PATH_1_0", "")
            .env("GST_REGISTRY_1_0", self.root.join("../registry.bin"))
            .env("GST_REGISTRY_FORK", "no")
            .env("HOME", self.root.join(".."));
        // user + system time of the child, from bash's `time` (no extra crate)
        let line = std::iter::once(c.get_program())
            .chain(c.get_args())
            .map(|a| format!("'{}'", a.to_string_lossy().replace('\'', r"'\''")))
            .collect::<Vec<_>>()
            .join(" ");
        let mut b = Command::new("bash");
        b.arg("-c")
            .arg(format!("TIMEFORMAT='CPU %U %S'; time {line}"))
            .env_clear();
        for (k, v) in c.get_envs() {
            if let Some(v) = v {
                b.env(k, v);
            }
        }
        let out = b.output().context("running bash")?;
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let cpu_s = text
            .lines()
            .rev()
            .find_map(|l| l.strip_prefix("CPU "))
            .map(|t| {
                t.split_whitespace()
                    .filter_map(|x| x.parse::<f64>().ok())
                    .sum()
            })
            .context("no CPU time from bash")?;
        if !out.status.success() {
            bail!("gst-launch-1.0 {} failed:\n{text}", args.join(" "));
        }
        Ok(Run {
            output: text,
            cpu_s,
        })
    }
}

/// The pipeline of an H.264 stream made as baresip's avcodec makes it (libx264 through
/// libavcodec without global headers: baseline, ultrafast, zerolatency, SPS and PPS in-band
/// before every IDR, slices of at most 1200 bytes, one NAL unit per RTP packet: packetization
/// mode 0), depacketized and decoded by the image's decoder, `frames` frames of `WxH`, an IDR
/// every second.
///
/// (Not `rtph264pay config-interval=-1`: GStreamer 1.22's openh264dec decodes nothing of a
/// stream whose parameter sets the payloader re-inserts, while avdec_h264 decodes it; no
/// peer we know sends that, and our own sender does not.)
pub fn h264_as_baresip_sends(frames: u32, w: u32, h: u32) -> String {
    format!(
        "videotestsrc num-buffers={frames} pattern=smpte horizontal-speed=4 \
         ! video/x-raw,format=I420,width={w},height={h},framerate=30/1 \
         ! x264enc speed-preset=ultrafast tune=zerolatency bitrate=800 key-int-max=30 \
           byte-stream=true option-string=slice-max-size=1200 \
         ! video/x-h264,profile=baseline,stream-format=byte-stream \
         ! rtph264pay mtu=1300 aggregate-mode=none \
         ! application/x-rtp,media=video,encoding-name=H264,clock-rate=90000 \
         ! rtph264depay ! h264parse ! openh264dec \
         ! fakesink sync=false silent=false"
    )
}

/// The pipeline of the H.264 stream our phone sends (`phone/src/media/video.rs`: x264
/// constrained baseline in byte-stream format, slices of at most 1200 bytes, rtph264pay in
/// zero-latency aggregation), decoded by the image's decoder.
pub fn h264_as_we_send(frames: u32, w: u32, h: u32) -> String {
    format!(
        "videotestsrc num-buffers={frames} pattern=smpte horizontal-speed=4 \
         ! video/x-raw,format=I420,width={w},height={h},framerate=30/1 \
         ! x264enc speed-preset=ultrafast tune=zerolatency bitrate=800 key-int-max=30 \
           threads=1 byte-stream=true option-string=slice-max-size=1200 \
         ! video/x-h264,profile=constrained-baseline,stream-format=byte-stream \
         ! rtph264pay mtu=1300 aggregate-mode=zero-latency \
         ! application/x-rtp,media=video,encoding-name=H264,clock-rate=90000 \
         ! rtph264depay ! h264parse ! openh264dec \
         ! fakesink sync=false silent=false"
    )
}

/// Frames that reached the fakesink of a `-v` run.
pub fn frames_at_sink(output: &str) -> usize {
    output
        .lines()
        .filter(|l| l.contains("fakesink0: last-message = chain"))
        .count()
}

/// The H.264 check of `cargo xtask test`: the image's own x264enc, rtph264pay/depay,
/// h264parse and openh264dec carry 90 frames made as baresip makes them; every frame must
/// come out decoded.
pub fn h264_check(target: &str) -> Result<()> {
    let root = ImageRoot::unpack(target)?;
    let frames = 90;
    for (who, pipeline) in [
        (
            "baresip's (avcodec: packetization mode 0)",
            h264_as_baresip_sends(frames, 640, 480),
        ),
        ("ours (another window's)", h264_as_we_send(frames, 640, 480)),
    ] {
        let mut args: Vec<&str> = vec!["-v"];
        args.extend(pipeline.split_whitespace());
        let run = root.gst_launch(&args)?;
        let got = frames_at_sink(&run.output);
        if got != frames as usize {
            bail!(
                "{target}: the image's openh264dec decoded {got} of {frames} frames of {who} H.264:\n{}",
                run.output.lines().rev().take(15).collect::<Vec<_>>().join("\n")
            );
        }
        eprintln!(
            "{target}: the image's own GStreamer decoded all {frames} frames of {who} H.264 \
             with openh264dec ({:.1} s CPU)",
            run.cpu_s
        );
    }
    Ok(())
}

/// One video candidate of `cargo xtask bench video`.
struct Candidate {
    codec: &'static str,
    w: u32,
    h: u32,
    fps: u32,
    threads: u32,
}

/// The phone's encoder and the image's decoder for a candidate (the settings of
/// `phone/src/media/video.rs`), kbit/s scaled with the picture.
fn codec_pipeline(c: &Candidate) -> String {
    let kbps = (c.w * c.h * c.fps / 18_432).clamp(200, 1500);
    let gop = c.fps * 3;
    match c.codec {
        "vp8" => format!(
            "vp8enc deadline=1 cpu-used=16 threads={} target-bitrate={} end-usage=cbr \
             lag-in-frames=0 keyframe-max-dist={gop} error-resilient=default ! vp8dec",
            c.threads,
            kbps * 1000
        ),
        _ => format!(
            "x264enc speed-preset=ultrafast tune=zerolatency bitrate={kbps} key-int-max={gop} \
             threads={} option-string=slice-max-size=1200 \
             ! video/x-h264,profile=constrained-baseline ! h264parse ! openh264dec",
            c.threads
        ),
    }
}

/// `cargo xtask bench video`: what each candidate costs to encode and decode (CPU ms per
/// frame, the test source's own cost taken off), with the PC image's x86 GStreamer natively
/// and the Pi image's arm64 GStreamer under qemu-aarch64, in one run; and the estimate for a
/// Pi 3 (see the printed method).
pub fn bench_video(frames: u32, a53_factor: f64) -> Result<()> {
    anyhow::ensure!(frames >= 10, "--frames: at least 10 (the cost is a slope)");
    let pc = ImageRoot::unpack("qemu-x86_64")?;
    let pi = ImageRoot::unpack("rpi-arm64")?;
    let candidates = [
        Candidate {
            codec: "vp8",
            w: 640,
            h: 480,
            fps: 30,
            threads: 1,
        },
        Candidate {
            codec: "vp8",
            w: 640,
            h: 360,
            fps: 25,
            threads: 1,
        },
        Candidate {
            codec: "vp8",
            w: 480,
            h: 270,
            fps: 25,
            threads: 1,
        },
        Candidate {
            codec: "vp8",
            w: 320,
            h: 240,
            fps: 25,
            threads: 1,
        },
        Candidate {
            codec: "h264",
            w: 640,
            h: 480,
            fps: 30,
            threads: 1,
        },
        Candidate {
            codec: "h264",
            w: 640,
            h: 360,
            fps: 25,
            threads: 1,
        },
        Candidate {
            codec: "h264",
            w: 480,
            h: 270,
            fps: 25,
            threads: 1,
        },
        Candidate {
            codec: "h264",
            w: 320,
            h: 240,
            fps: 25,
            threads: 1,
        },
    ];
    let source = |c: &Candidate, n: u32| {
        format!(
            "videotestsrc num-buffers={n} pattern=smpte horizontal-speed=4 \
             ! video/x-raw,format=I420,width={},height={},framerate={}/1",
            c.w, c.h, c.fps
        )
    };
    // CPU of a pipeline per frame: the slope between a run of `frames` and one of a fifth of
    // them, so what a run costs once (loading, registry, an encoder's set-up: seconds under
    // the emulator) drops out.
    let short = (frames / 5).max(1);
    let slope = |root: &ImageRoot, tail: &str, c: &Candidate| -> Result<f64> {
        let cpu = |n: u32| -> Result<f64> {
            let line = format!("{} ! {tail}", source(c, n));
            Ok(root
                .gst_launch(&line.split_whitespace().collect::<Vec<_>>())?
                .cpu_s)
        };
        Ok((cpu(frames)? - cpu(short)?) * 1000.0 / f64::from(frames - short))
    };
    let per_frame = |root: &ImageRoot, c: &Candidate| -> Result<f64> {
        let base = slope(root, "fakesink sync=false", c)?;
        let full = slope(
            root,
            &format!("{} ! fakesink sync=false", codec_pipeline(c)),
            c,
        )?;
        Ok((full - base).max(0.0))
    };
    println!(
        "\nvideo encode + decode, {frames} frames of a moving test picture, CPU ms per frame \
         (slope between {short} and {frames} frames, the source's own cost taken off), one \
         encoder thread, same run:"
    );
    println!(
        "| candidate | x86, PC image, native | arm64, Pi image, qemu-aarch64 | qemu / native | \
         Pi 3 estimate (x86 × {a53_factor}) | Pi 3: share of 4 cores at that fps |"
    );
    println!("|---|---|---|---|---|---|");
    for c in &candidates {
        let x86 = per_frame(&pc, c)?;
        let arm = per_frame(&pi, c)?;
        let pi3 = x86 * a53_factor;
        let share = pi3 * f64::from(c.fps) / 1000.0 / 4.0 * 100.0;
        println!(
            "| {} {}x{}@{} | {x86:.2} | {arm:.1} | {:.1} | {pi3:.1} | {share:.0} % |",
            c.codec,
            c.w,
            c.h,
            c.fps,
            arm / x86.max(1e-6)
        );
    }
    println!(
        "\nPi 3 estimate: the x86 figure times {a53_factor} (`--a53-factor`), the assumed \
         ratio of one 1.2 GHz Cortex-A53 to one core of this machine for SIMD codec code; the \
         qemu-aarch64 column runs the Pi's own arm64 libvpx/x264/openh264 (NEON paths) \
         through TCG: its ratios between candidates check the ranking, its absolute times \
         are the emulator's, not a Pi's. The share is encode + decode at the candidate's \
         rate on 4 cores (the receive side decodes the peer's stream of the same size)."
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_are_counted_at_the_sink() {
        let out = "/GstPipeline:pipeline0/GstFakeSink:fakesink0: last-message = chain   ******* (fakesink0:sink) (460800 bytes)\n\
                   /GstPipeline:pipeline0/GstFakeSink:fakesink0: last-message = event   ******* (fakesink0:sink) E (type: eos)\n\
                   /GstPipeline:pipeline0/GstFakeSink:fakesink0: last-message = chain   ******* (fakesink0:sink) (460800 bytes)\n";
        assert_eq!(frames_at_sink(out), 2);
        assert_eq!(frames_at_sink(""), 0);
    }

    #[test]
    fn the_baresip_stream_is_mode_0_baseline_with_small_slices() {
        let p = h264_as_baresip_sends(10, 640, 480);
        assert!(p.contains("num-buffers=10"));
        assert!(p.contains("slice-max-size=1200"));
        assert!(p.contains("aggregate-mode=none"));
        assert!(p.contains("openh264dec"));
    }
}
