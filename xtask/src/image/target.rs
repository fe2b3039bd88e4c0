//! Image target definitions (`image/<target>.toml`): the package roots, the kernel, the boot
//! stub, the disk layout. Pure: parsing and path patterns.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde::Deserialize;

/// One image target.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Target {
    /// `qemu-x86_64`.
    pub name: String,
    /// A line for people (the Raspberry Pi Imager entry, the manifest).
    #[serde(default)]
    pub description: String,
    /// Debian architecture (`amd64`).
    pub arch: String,
    /// Multiarch triplet (`x86_64-linux-gnu`).
    pub triplet: String,
    /// Rust's target triple when our binaries are cross-built (`aarch64-unknown-linux-gnu`);
    /// none: the build machine's own.
    #[serde(default)]
    pub rust_target: Option<String>,
    /// The `-dev` packages (of `arch`) a cross build links against: their pkg-config files,
    /// libraries and headers, and what they depend on, unpacked as the sysroot. Build inputs:
    /// pinned in the lock, never in the image.
    #[serde(default)]
    pub sysroot: Vec<String>,
    /// Dependencies of the sysroot packages left out: what only the libraries we do not link
    /// need (GStreamer's GL library and its GL, X11 and Wayland headers).
    #[serde(default)]
    pub sysroot_skip: Vec<String>,
    /// Archive components besides `main` (`non-free-firmware` for the Pi's boot firmware).
    #[serde(default)]
    pub components: Vec<String>,
    /// The kernel metapackage (`linux-image-amd64`).
    pub kernel: String,
    /// The kernel command line.
    pub cmdline: String,
    /// Directories copied into the root filesystem, in order (a later one may add files,
    /// never replace one), relative to the repository.
    pub overlays: Vec<PathBuf>,
    /// The services file baked in, relative to the repository (in one of the overlays).
    pub services: PathBuf,
    /// Our release binaries, installed in `/usr/bin` (the multi-call `ewindow` with a link
    /// for each of its programs, `ewindow_protocol::programs`).
    pub binaries: Vec<String>,
    /// How the machine starts the kernel.
    pub boot: Boot,
    /// The disk layout.
    pub disk: Disk,
    /// What a window needs, per package.
    pub files: Vec<Files>,
}

/// How the machine's firmware starts the kernel.
#[derive(Debug, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case", deny_unknown_fields)]
pub enum Boot {
    /// UEFI: one unified kernel image (stub + kernel + initramfs + command line) on the ESP.
    Uefi {
        /// The UEFI stub of the unified kernel image.
        stub: PackagePath,
        /// Where the unified kernel image goes on the ESP (`EFI/BOOT/BOOTX64.EFI`).
        path: String,
    },
    /// The Raspberry Pi's GPU firmware: it reads `config.txt` from the FAT boot partition,
    /// loads the kernel, the initramfs and the board's device tree, and starts the kernel.
    Raspi {
        /// The firmware files (`bootcode.bin`, `start*.elf`, `fixup*.dat`), copied to the top
        /// of the boot partition.
        firmware: Files,
        /// The device trees of the boards the image supports, relative to the kernel
        /// package's `usr/lib/linux-image-<release>/` (`broadcom/bcm2837-rpi-3-b.dtb`).
        dtbs: Vec<String>,
        /// The window's push button, added to every device tree as a `gpio-keys` device.
        button: Option<GpioButton>,
        /// `config.txt`, as written to the boot partition.
        config: String,
    },
}

/// A push button between a GPIO line and ground (pull-up on, active low): the kernel's
/// `gpio_keys` driver makes it an input device named [`GPIO_BUTTON_NAME`] that sends the
/// window's default button key (`ewindow_protocol::button::DEFAULT_KEY_CODE`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GpioButton {
    /// The GPIO line (BCM numbering: 17 is pin 11 of the 40-pin header).
    pub gpio: u32,
    /// The device-tree path of the GPIO controller (`/soc/gpio@7e200000`).
    pub controller: String,
}

/// The input device the GPIO button is (`[button] devices` can name it).
pub const GPIO_BUTTON_NAME: &str = "ewindow-button";

/// One file of one package.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PackagePath {
    /// Debian package.
    pub package: String,
    /// Path inside it.
    pub path: String,
}

/// The partition table's kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Table {
    /// GUID partition table (UEFI).
    Gpt,
    /// MBR (the Raspberry Pi firmware reads only this).
    Dos,
}

/// Fixed identifiers and sizes.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Disk {
    /// GPT or MBR.
    pub table: Table,
    /// The disk's identifier: a GUID (GPT) or `0x` and 8 hex digits (MBR).
    pub disk_id: String,
    /// GPT: the boot partition's (ESP's) partition GUID.
    #[serde(default)]
    pub boot_guid: Option<String>,
    /// GPT: the data partition's GUID.
    #[serde(default)]
    pub data_guid: Option<String>,
    /// The boot partition's FAT volume id (8 hex digits).
    pub boot_volume_id: String,
    /// Smallest boot partition, MiB.
    pub boot_min_mib: u64,
    /// The data partition, MiB.
    pub data_mib: u64,
}

/// Root files of one package: `*` matches within a path component, a trailing `**` matches
/// everything below.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Files {
    /// Debian package.
    pub package: String,
    /// Path patterns (`{triplet}` expanded), `/usr`-merged, without a leading `/`.
    pub paths: Vec<String>,
}

impl Target {
    /// Reads `image/<name>.toml` under `repo`, with the roots every target shares
    /// (`image/files.toml`).
    pub fn load(repo: &Path, name: &str) -> Result<Target> {
        let path = repo.join("image").join(format!("{name}.toml"));
        let text = std::fs::read_to_string(&path).with_context(|| {
            format!(
                "reading {} (no such target? the targets are image/*.toml)",
                path.display()
            )
        })?;
        let common = repo.join("image/files.toml");
        let files = std::fs::read_to_string(&common)
            .with_context(|| format!("reading {}", common.display()))?;
        Self::parse(&with_files(&text, &files))
            .with_context(|| format!("in {} (and {})", path.display(), common.display()))
    }

    /// Parses a target definition.
    pub fn parse(text: &str) -> Result<Target> {
        let mut t: Target = toml::from_str(text)?;
        if t.files.is_empty() || t.binaries.is_empty() {
            bail!("a target needs [[files]] and binaries");
        }
        let triplet = t.triplet.clone();
        let firmware = match &mut t.boot {
            Boot::Raspi { firmware, .. } => Some(firmware),
            Boot::Uefi { .. } => None,
        };
        for f in t.files.iter_mut().chain(firmware) {
            for p in &mut f.paths {
                *p = p.replace("{triplet}", &triplet);
                if p.starts_with('/') || p.split('/').any(|c| c == "..") {
                    bail!("{}: `{p}` must be relative, without `..`", f.package);
                }
            }
        }
        let hex8 = |s: &str| s.len() == 8 && u32::from_str_radix(s, 16).is_ok();
        let d = &t.disk;
        if !hex8(&d.boot_volume_id) {
            bail!("disk.boot_volume_id must be 8 hex digits");
        }
        match (&t.boot, d.table) {
            (Boot::Raspi { .. }, Table::Gpt) => {
                bail!("the Raspberry Pi firmware reads MBR disks only: disk.table = \"dos\"")
            }
            (Boot::Raspi { dtbs, .. }, _) if dtbs.is_empty() => {
                bail!("boot.dtbs names no device tree")
            }
            _ => {}
        }
        match d.table {
            Table::Dos => {
                if !d.disk_id.strip_prefix("0x").is_some_and(hex8) {
                    bail!("disk.disk_id of an MBR disk must be 0x and 8 hex digits");
                }
                if d.boot_guid.is_some() || d.data_guid.is_some() {
                    bail!("disk.boot_guid and disk.data_guid are for GPT disks");
                }
            }
            Table::Gpt => {
                if d.boot_guid.is_none() || d.data_guid.is_none() {
                    bail!("a GPT disk needs disk.boot_guid and disk.data_guid");
                }
            }
        }
        if t.overlays.is_empty() || !t.overlays.iter().any(|o| t.services.starts_with(o)) {
            bail!(
                "services ({}) must be in one of the overlays",
                t.services.display()
            );
        }
        if t.rust_target.is_some() && t.sysroot.is_empty() {
            bail!("a cross-built target (rust_target) needs its sysroot packages");
        }
        Ok(t)
    }

    /// The packages the boot partition takes files from (the UEFI stub, the Pi's firmware).
    pub fn boot_packages(&self) -> Vec<String> {
        match &self.boot {
            Boot::Uefi { stub, .. } => vec![stub.package.clone()],
            Boot::Raspi { firmware, .. } => vec![firmware.package.clone()],
        }
    }

    /// The `.dtb` files of a Raspberry Pi target (none for others).
    pub fn dtbs(&self) -> &[String] {
        match &self.boot {
            Boot::Raspi { dtbs, .. } => dtbs,
            Boot::Uefi { .. } => &[],
        }
    }

    /// The directory cargo puts our release binaries in, relative to the repository.
    pub fn release_dir(&self) -> PathBuf {
        match &self.rust_target {
            Some(t) => PathBuf::from("target").join(t).join("release"),
            None => PathBuf::from("target/release"),
        }
    }

    /// How the build machine runs a program of this target (`qemu-aarch64` for arm64 on an
    /// x86_64 build machine); `None`: directly.
    pub fn runner(&self) -> Option<String> {
        self.rust_target.as_ref().map(|_| {
            format!(
                "qemu-{}",
                self.triplet.split('-').next().unwrap_or(&self.triplet)
            )
        })
    }

    /// The lock file next to the definition.
    pub fn lock_path(&self, repo: &Path) -> PathBuf {
        repo.join("image").join(format!("{}.lock", self.name))
    }
}

/// The text [`Target::load`] parses for `name`, read from the repository (for tests).
#[cfg(test)]
pub fn test_target(name: &str) -> String {
    let image = crate::root().join("image");
    with_files(
        &std::fs::read_to_string(image.join(format!("{name}.toml"))).unwrap(),
        &std::fs::read_to_string(image.join("files.toml")).unwrap(),
    )
}

/// A target's definition followed by the shared `[[files]]` tables.
pub fn with_files(target: &str, files: &str) -> String {
    format!("{target}\n{files}")
}

/// `/usr`-merges a path relative to `/` and makes it canonical (no `.`, `..`, `//`).
pub fn canonical(path: &str) -> String {
    let mut out: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                out.pop();
            }
            p => out.push(p),
        }
    }
    if matches!(out.first(), Some(&("bin" | "sbin" | "lib" | "lib64"))) {
        out.insert(0, "usr");
    }
    out.join("/")
}

/// Whether `path` matches `pattern` (`*` within a component; a last component `**` matches
/// everything below).
pub fn matches(pattern: &str, path: &str) -> bool {
    let pat: Vec<&str> = pattern.split('/').collect();
    let comps: Vec<&str> = path.split('/').collect();
    for (i, p) in pat.iter().enumerate() {
        if *p == "**" && i + 1 == pat.len() {
            return comps.len() > i;
        }
        match comps.get(i) {
            Some(c) if component_matches(p, c) => {}
            _ => return false,
        }
    }
    comps.len() == pat.len()
}

fn component_matches(pat: &str, s: &str) -> bool {
    match pat.split_once('*') {
        None => pat == s,
        Some((head, rest)) => {
            let Some(tail) = s.strip_prefix(head) else {
                return false;
            };
            (0..=tail.len())
                .filter(|&k| tail.is_char_boundary(k))
                .any(|k| component_matches(rest, &tail[k..]))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_usr_merged_and_canonical() {
        assert_eq!(canonical("/bin/busybox"), "usr/bin/busybox");
        assert_eq!(
            canonical("lib64/ld-linux-x86-64.so.2"),
            "usr/lib64/ld-linux-x86-64.so.2"
        );
        assert_eq!(
            canonical("usr/lib/x86_64-linux-gnu/../x86_64-linux-gnu/./libc.so.6"),
            "usr/lib/x86_64-linux-gnu/libc.so.6"
        );
        assert_eq!(canonical("etc//mke2fs.conf"), "etc/mke2fs.conf");
        assert_eq!(canonical("libx/../lib/a"), "usr/lib/a");
    }

    #[test]
    fn patterns() {
        assert!(matches(
            "usr/share/alsa/**",
            "usr/share/alsa/cards/HDA.conf"
        ));
        assert!(!matches("usr/share/alsa/**", "usr/share/alsa"));
        assert!(!matches("usr/share/alsa/**", "usr/share/alsactl/x"));
        assert!(matches(
            "usr/lib/*/libgst*.so",
            "usr/lib/x86_64-linux-gnu/libgstapp.so"
        ));
        assert!(!matches("usr/lib/*/libgst*.so", "usr/lib/a/b/libgstapp.so"));
        assert!(!matches("usr/lib/*/libgst*.so", "usr/lib/a/libgstapp.so.0"));
        assert!(matches("usr/bin/busybox", "usr/bin/busybox"));
        assert!(!matches("usr/bin/busybox", "usr/bin/busybox2"));
    }

    #[test]
    fn the_qemu_target_parses_with_triplets_expanded() {
        let t = Target::parse(&super::test_target("qemu-x86_64")).unwrap();
        assert_eq!(t.name, "qemu-x86_64");
        let all: Vec<&String> = t.files.iter().flat_map(|f| &f.paths).collect();
        assert!(all.iter().all(|p| !p.contains('{')));
        assert!(all.contains(&&"usr/lib/x86_64-linux-gnu/gstreamer-1.0/libgstsrtp.so".to_string()));
        assert!(t.binaries.contains(&"ewindow-init".to_string()));
    }

    #[test]
    fn bad_definitions_are_refused() {
        let good = &super::test_target("qemu-x86_64");
        let e =
            Target::parse(&good.replace("usr/bin/busybox\"", "/usr/bin/busybox\"")).unwrap_err();
        assert!(format!("{e:#}").contains("must be relative"), "{e:#}");
        let e = Target::parse(&good.replace("data_mib", "data_mb")).unwrap_err();
        assert!(format!("{e:#}").contains("data_mb"), "{e:#}");
        let e = Target::parse(&good.replace("table = \"gpt\"", "table = \"dos\"")).unwrap_err();
        assert!(format!("{e:#}").contains("0x and 8 hex digits"), "{e:#}");
        let e = Target::parse(&good.replace("kind = \"uefi\"", "kind = \"bios\"")).unwrap_err();
        assert!(format!("{e:#}").contains("bios"), "{e:#}");
    }

    #[test]
    fn the_pi_target_is_a_cross_built_mbr_disk() {
        let t = Target::parse(&super::test_target("rpi-arm64")).unwrap();
        assert_eq!(t.disk.table, Table::Dos);
        assert_eq!(t.runner().as_deref(), Some("qemu-aarch64"));
        assert_eq!(
            t.release_dir(),
            PathBuf::from("target/aarch64-unknown-linux-gnu/release")
        );
        assert!(t
            .dtbs()
            .contains(&"broadcom/bcm2837-rpi-3-b.dtb".to_string()));
        let Boot::Raspi {
            config, firmware, ..
        } = &t.boot
        else {
            panic!("not a Pi boot");
        };
        assert!(config.contains("arm_64bit=1") && config.contains("followkernel"));
        assert!(firmware.paths.iter().all(|p| !p.contains('{')));
        let e = Target::parse(
            &super::test_target("rpi-arm64").replace("table = \"dos\"", "table = \"gpt\""),
        )
        .unwrap_err();
        assert!(format!("{e:#}").contains("MBR"), "{e:#}");
    }
}
