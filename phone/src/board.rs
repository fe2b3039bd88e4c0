//! The video a board sends by default: picture size, frame rate, bitrate, encoder threads and
//! codec preference, chosen from the device tree's model (`/proc/device-tree/model`; on a PC
//! the firmware's maker and product: a QEMU machine gets a small picture, other PCs none). A Pi encodes in software (Debian's kernel has no `bcm2835-codec`), so its profile
//! is what its cores keep up with beside the decoder and the audio; the figures behind each
//! default are in `docs/image.md` ("Video on a Pi"). `window.toml` `[media]` overrides any of
//! them. Pure but for [`model`].

use crate::sdp::VideoCodec;

/// What the window sends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VideoProfile {
    /// Picture width and height.
    pub size: (u32, u32),
    /// Frames per second.
    pub fps: u32,
    /// Encoder target, kbit/s.
    pub kbps: u32,
    /// Encoder threads.
    pub threads: u32,
    /// Codecs in preference order.
    pub codecs: Vec<VideoCodec>,
}

/// The board's name in the device tree (NUL-terminated there), else the PC's maker and
/// product from its firmware (DMI: "QEMU Standard PC (Q35 + ICH9, 2009)"), if it has one.
pub fn model() -> Option<String> {
    let read = |p: &str| {
        std::fs::read(p).ok().map(|raw| {
            String::from_utf8_lossy(&raw)
                .trim_end_matches('\0')
                .trim()
                .to_string()
        })
    };
    let s = read("/proc/device-tree/model").unwrap_or_else(|| {
        let vendor = read("/sys/class/dmi/id/sys_vendor").unwrap_or_default();
        let product = read("/sys/class/dmi/id/product_name").unwrap_or_default();
        format!("{vendor} {product}").trim().to_string()
    });
    (!s.is_empty()).then_some(s)
}

/// The profile of a board (`None`: not a board we know; the phone's own defaults then, as
/// on a PC).
pub fn for_model(model: &str) -> Option<VideoProfile> {
    use VideoCodec::{Vp8, Vp9, H264};
    // Pi 3 B/B+, Zero 2 W: four Cortex-A53 at 1.2–1.4 GHz (1 GHz on the Zero 2 W). H.264
    // (x264 ultrafast + openh264dec) first: a third of VP8's encode + decode cost at every
    // size measured (`cargo xtask bench video`, docs/image.md "Video on a Pi"); 640x360 at
    // 25 fps is an estimated 7 % of the four cores in H.264 and 20 % in VP8, which leaves
    // the capture, the screen and the audio room even if the estimate is off by two. VP9 is
    // several times dearer and last.
    let a53 = VideoProfile {
        size: (640, 360),
        fps: 25,
        kbps: 600,
        threads: 2,
        codecs: vec![H264, Vp8, Vp9],
    };
    // Pi 4 B / 400: four Cortex-A72 at 1.5–1.8 GHz, about three times a Pi 3: VP8 (the PC's
    // first codec) at 640x480, 30 fps is then about a tenth of its cores.
    let a72 = VideoProfile {
        size: (640, 480),
        fps: 30,
        kbps: 800,
        threads: 2,
        codecs: vec![Vp8, H264, Vp9],
    };
    // A QEMU machine (the images' tests, `cargo xtask qemu`): emulated without KVM, a
    // core does a small fraction of a real one's work, so a small picture; what a VM
    // window shows is that media flows, not its quality.
    let vm = VideoProfile {
        size: (320, 240),
        fps: 10,
        kbps: 250,
        threads: 1,
        codecs: vec![Vp8, H264, Vp9],
    };
    if model.starts_with("QEMU") {
        return Some(vm);
    }
    if !model.starts_with("Raspberry Pi") {
        return None;
    }
    if model.contains("Pi 4") || model.contains("Pi 400") || model.contains("Compute Module 4") {
        Some(a72)
    } else if model.contains("Pi 3")
        || model.contains("Zero 2")
        || model.contains("Compute Module 3")
    {
        Some(a53)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn boards_by_model() {
        let pi3 = for_model("Raspberry Pi 3 Model B Rev 1.2").unwrap();
        assert_eq!(pi3.size, (640, 360));
        assert_eq!(pi3.codecs[0], VideoCodec::H264);
        assert_eq!(
            for_model("Raspberry Pi 3 Model B Plus Rev 1.3"),
            Some(pi3.clone())
        );
        assert_eq!(
            for_model("Raspberry Pi Zero 2 W Rev 1.0"),
            Some(pi3.clone())
        );
        let pi4 = for_model("Raspberry Pi 4 Model B Rev 1.4").unwrap();
        assert_eq!(pi4.size, (640, 480));
        assert_eq!(pi4.codecs[0], VideoCodec::Vp8);
        assert_eq!(for_model("Raspberry Pi 400 Rev 1.0"), Some(pi4));
        assert_eq!(for_model("Raspberry Pi Model B Rev 2"), None);
        assert_eq!(
            for_model("QEMU Standard PC (i440FX + PIIX, 1996)").map(|p| p.size),
            Some((320, 240))
        );
        assert_eq!(for_model("Dell Inc. OptiPlex 3080"), None);
    }
}
