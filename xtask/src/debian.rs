//! The Debian packages the project needs on the build/test machine, installed when missing.

use std::process::Command;

use anyhow::{bail, Context, Result};

/// What building the phone and running the demo needs.
pub const RUNTIME: &[&str] = &[
    "pkg-config",
    "libgstreamer1.0-dev",
    "libgstreamer-plugins-base1.0-dev",
    // opus, audiotestsrc, videotestsrc, videoconvert/scale/rate, decodebin
    "gstreamer1.0-plugins-base",
    // rtpbin, RTP (de)payloaders, vp8/vp9, mulaw/alaw, speex, udpsrc/udpsink, v4l2
    "gstreamer1.0-plugins-good",
    // srtpenc/srtpdec, openh264, webrtcdsp, intervideo, kmssink
    "gstreamer1.0-plugins-bad",
    // x264enc: H.264 with slice-size control (packetization mode 0)
    "gstreamer1.0-plugins-ugly",
    // timeoverlay on the test pattern
    "gstreamer1.0-x",
    // avdec_h264: openh264dec left some x264 streams undecoded here
    "gstreamer1.0-libav",
];

/// What the demo adds to the runtime: its two windows' WireGuard (in userspace) and their
/// network namespaces.
pub const DEMO: &[&str] = &["wireguard-go", "iproute2"];

/// The runtime plus the real peers the tests and benchmarks talk to (the image's tools are
/// [`IMAGE`]).
pub const ALL: &[&str] = &[
    "pkg-config",
    "libgstreamer1.0-dev",
    "libgstreamer-plugins-base1.0-dev",
    "gstreamer1.0-plugins-base",
    "gstreamer1.0-plugins-good",
    "gstreamer1.0-plugins-bad",
    "gstreamer1.0-plugins-ugly",
    "gstreamer1.0-x",
    "gstreamer1.0-libav",
    // gst-launch-1.0, used by the media benchmark to make its clip
    "gstreamer1.0-tools",
    "baresip",
    // baresip's avcodec (H.264) and avformat (file source) modules
    "baresip-ffmpeg",
    "sip-tester",
    // linphone 5.1's console client, the second SIP peer (phone/tests/linphone.rs)
    "linphone-cli",
    // The overlay tests: windows in network namespaces with wireguard-go (the host kernel
    // may have no WireGuard); iproute2 for `ip netns`; e2fsprogs and util-linux (losetup) for
    // the supervisor's data-partition tests.
    "wireguard-go",
    "iproute2",
    // the NAT tests: routers are namespaces with nftables masquerade; tcpdump shows what a
    // relay carries
    "nftables",
    "tcpdump",
    "e2fsprogs",
    "util-linux",
    "mount",
    // the console tests drive the first-boot wizard through a real terminal
    "tmux",
    // the maintenance-access test runs the image's sshd line (keys only)
    "dropbear-bin",
];

/// What `cargo xtask image` and `cargo xtask qemu` need besides the Rust build.
pub const IMAGE: &[&str] = &[
    "pkg-config",
    "libgstreamer1.0-dev",
    "libgstreamer-plugins-base1.0-dev",
    // dpkg-deb and apt-get download come with the system; these make the disk
    "binutils",
    "cpio",
    "dosfstools",
    "mtools",
    "fdisk",
    "zstd",
    "kmod",
    "bmap-tools",
    "e2fsprogs",
    // the Raspberry Pi image: our binaries cross-built for arm64 (the linker and strip of
    // Debian's cross toolchain), busybox's applet list run under user-mode emulation
    "gcc-aarch64-linux-gnu",
    // the cross C library and its crt files (only a Recommends of the cross gcc)
    "libc6-dev-arm64-cross",
    "qemu-user",
    // the Pi's GPIO button, added to its device trees (fdtget, fdtput)
    "device-tree-compiler",
    // booting them: QEMU with UEFI firmware, QEMU's raspi3b; the boot test's SSH client and
    // keys
    "qemu-system-x86",
    "ovmf",
    "qemu-system-arm",
    "dropbear-bin",
];

fn installed(pkg: &str) -> bool {
    Command::new("dpkg-query")
        .args(["-W", "-f=${Status}", pkg])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).contains("install ok installed"))
        .unwrap_or(false)
}

/// Installs the packages of `set` that are missing (as root, with `--no-install-recommends`).
pub fn ensure(set: &[&str]) -> Result<()> {
    let missing: Vec<&str> = set.iter().copied().filter(|p| !installed(p)).collect();
    if missing.is_empty() {
        return Ok(());
    }
    let is_root = Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false);
    if !is_root {
        bail!(
            "missing Debian packages: {}; install them as root: apt-get install --no-install-recommends {}",
            missing.join(" "),
            missing.join(" ")
        );
    }
    eprintln!("xtask: installing {}", missing.join(" "));
    let ok = Command::new("apt-get")
        .arg("update")
        .env("DEBIAN_FRONTEND", "noninteractive")
        .status()
        .context("running apt-get update")?
        .success();
    if !ok {
        bail!("apt-get update failed");
    }
    let ok = Command::new("apt-get")
        .args(["install", "-y", "--no-install-recommends"])
        .args(&missing)
        .env("DEBIAN_FRONTEND", "noninteractive")
        .status()
        .context("running apt-get install")?
        .success();
    if !ok {
        bail!("apt-get install {} failed", missing.join(" "));
    }
    Ok(())
}
