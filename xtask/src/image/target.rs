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
    /// Debian architecture (`amd64`).
    pub arch: String,
    /// Multiarch triplet (`x86_64-linux-gnu`).
    pub triplet: String,
    /// The kernel metapackage (`linux-image-amd64`).
    pub kernel: String,
    /// The UEFI stub of the unified kernel image.
    pub efi_stub: PackagePath,
    /// Where the unified kernel image goes on the ESP.
    pub efi_boot: String,
    /// The kernel command line.
    pub cmdline: String,
    /// The services file baked in, relative to the repository.
    pub services: PathBuf,
    /// Our release binaries, installed in `/usr/bin`.
    pub binaries: Vec<String>,
    /// The disk layout.
    pub disk: Disk,
    /// What a window needs, per package.
    pub files: Vec<Files>,
}

/// One file of one package.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PackagePath {
    /// Debian package.
    pub package: String,
    /// Path inside it.
    pub path: String,
}

/// Fixed identifiers and sizes.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Disk {
    /// GPT disk GUID.
    pub disk_guid: String,
    /// The ESP's partition GUID.
    pub esp_guid: String,
    /// The data partition's GUID.
    pub data_guid: String,
    /// The ESP's FAT volume id (8 hex digits).
    pub esp_volume_id: String,
    /// Smallest ESP, MiB.
    pub esp_min_mib: u64,
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
    /// Reads `image/<name>.toml` under `repo`.
    pub fn load(repo: &Path, name: &str) -> Result<Target> {
        let path = repo.join("image").join(format!("{name}.toml"));
        let text = std::fs::read_to_string(&path).with_context(|| {
            format!(
                "reading {} (no such target? the targets are image/*.toml)",
                path.display()
            )
        })?;
        Self::parse(&text).with_context(|| format!("in {}", path.display()))
    }

    /// Parses a target definition.
    pub fn parse(text: &str) -> Result<Target> {
        let mut t: Target = toml::from_str(text)?;
        if t.files.is_empty() || t.binaries.is_empty() {
            bail!("a target needs [[files]] and binaries");
        }
        for f in &mut t.files {
            for p in &mut f.paths {
                *p = p.replace("{triplet}", &t.triplet);
                if p.starts_with('/') || p.split('/').any(|c| c == "..") {
                    bail!("{}: `{p}` must be relative, without `..`", f.package);
                }
            }
        }
        if u32::from_str_radix(&t.disk.esp_volume_id, 16).is_err()
            || t.disk.esp_volume_id.len() != 8
        {
            bail!("disk.esp_volume_id must be 8 hex digits");
        }
        Ok(t)
    }

    /// The lock file next to the definition.
    pub fn lock_path(&self, repo: &Path) -> PathBuf {
        repo.join("image").join(format!("{}.lock", self.name))
    }
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
        let t = Target::parse(include_str!("../../../image/qemu-x86_64.toml")).unwrap();
        assert_eq!(t.name, "qemu-x86_64");
        let all: Vec<&String> = t.files.iter().flat_map(|f| &f.paths).collect();
        assert!(all.iter().all(|p| !p.contains('{')));
        assert!(all.contains(&&"usr/lib/x86_64-linux-gnu/gstreamer-1.0/libgstsrtp.so".to_string()));
        assert!(t.binaries.contains(&"ewindow-init".to_string()));
    }

    #[test]
    fn bad_definitions_are_refused() {
        let good = include_str!("../../../image/qemu-x86_64.toml");
        let e =
            Target::parse(&good.replace("usr/bin/busybox\"", "/usr/bin/busybox\"")).unwrap_err();
        assert!(format!("{e:#}").contains("must be relative"), "{e:#}");
        let e = Target::parse(&good.replace("data_mib", "data_mb")).unwrap_err();
        assert!(format!("{e:#}").contains("data_mb"), "{e:#}");
    }
}
