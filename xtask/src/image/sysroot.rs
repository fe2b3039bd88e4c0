//! The cross build of our binaries: a sysroot of the target architecture's `-dev` packages
//! (their pkg-config files, headers and libraries, from the lock's `sysroot` pins) and the
//! environment that points cargo, pkg-config and the linker at it. The C library and the
//! compiler runtime come from Debian's cross toolchain (`gcc-aarch64-linux-gnu`), not from the
//! sysroot.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};

use super::debs::{self, Cache, Unpacked};
use super::lock::Pin;
use super::target::Target;

/// Packages the cross toolchain brings (`libc6-dev-arm64-cross`, `libgcc-12-dev-arm64-cross`
/// …): never taken into the sysroot, where a second C library would confuse the linker.
const TOOLCHAIN: &[&str] = &[
    "libc6",
    "libc6-dev",
    "libgcc-s1",
    "libgcc-12-dev",
    "libstdc++6",
    "libstdc++-12-dev",
    "libcrypt1",
    "libcrypt-dev",
    "libnsl-dev",
    "libtirpc-dev",
    "linux-libc-dev",
    "gcc-12-base",
];

/// Whether a dependency of a sysroot package belongs in the sysroot: libraries and their
/// `-dev` packages, not programs (`libglib2.0-dev-bin` would bring Python) nor the toolchain's.
pub fn wanted(name: &str) -> bool {
    (name.starts_with("lib") || name.starts_with("zlib"))
        && !name.ends_with("-bin")
        && !name.ends_with("-doc")
        && !TOOLCHAIN.contains(&name)
}

/// `cargo xtask image lock`: the sysroot's packages at the archive's current versions — the
/// target's `sysroot` roots and, recursively, the dependencies [`wanted`] keeps, less the
/// target's `sysroot_skip`.
pub fn resolve(cache: &Cache, target: &Target) -> Result<BTreeMap<String, Pin>> {
    let mut out = BTreeMap::new();
    let mut work: Vec<String> = target.sysroot.iter().rev().cloned().collect();
    let mut seen = BTreeSet::new();
    while let Some(name) = work.pop() {
        if !seen.insert(name.clone()) {
            continue;
        }
        // a virtual package or an alternative the archive lacks has no candidate
        let Some(v) = debs::candidate(&cache.apt, &name)? else {
            if target.sysroot.contains(&name) {
                bail!("the sysroot package {name} is not in the archive");
            }
            continue;
        };
        let deb = cache.fetch(&name, &v)?;
        for d in debs::depends(&deb)? {
            if wanted(&d) && !seen.contains(&d) && !target.sysroot_skip.contains(&d) {
                work.push(d);
            }
        }
        out.insert(
            name,
            Pin {
                version: v,
                sha256: debs::sha256_file(&deb)?,
            },
        );
    }
    Ok(out)
}

/// Unpacks the lock's sysroot packages into `dir` (made anew when the pins change).
pub fn assemble(cache: &Cache, pins: &BTreeMap<String, Pin>, dir: &Path) -> Result<()> {
    let stamp: String = pins
        .iter()
        .map(|(n, p)| format!("{n} {} {}\n", p.version, p.sha256))
        .collect();
    let stamp_file = dir.join(".ewindow-sysroot");
    if fs::read_to_string(&stamp_file).ok().as_deref() == Some(stamp.as_str()) {
        return Ok(());
    }
    let _ = fs::remove_dir_all(dir);
    fs::create_dir_all(dir)?;
    for (name, pin) in pins {
        let u: Unpacked = cache.get(name, &pin.version, Some(&pin.sha256))?;
        let st = Command::new("dpkg-deb")
            .arg("-x")
            .arg(&u.deb)
            .arg(dir)
            .status()
            .context("running dpkg-deb")?;
        if !st.success() {
            bail!("dpkg-deb -x {} failed ({st})", u.deb.display());
        }
    }
    fs::write(&stamp_file, stamp)?;
    eprintln!("  sysroot: {} packages in {}", pins.len(), dir.display());
    Ok(())
}

/// The environment of `cargo build --target …` against the sysroot `dir`: the cross linker,
/// pkg-config looking only into the sysroot, the linker finding the libraries' own
/// dependencies there (`-rpath-link`). `rustflags` are the build's other flags.
pub fn cargo_env(target: &Target, dir: &Path, rustflags: &[String]) -> Vec<(String, String)> {
    let Some(rust) = &target.rust_target else {
        return Vec::new();
    };
    let t = &target.triplet;
    let key = rust.to_uppercase().replace('-', "_");
    let libdirs: Vec<PathBuf> = [format!("usr/lib/{t}"), format!("lib/{t}")]
        .iter()
        .map(|d| dir.join(d))
        .collect();
    let mut flags = rustflags.to_vec();
    for l in &libdirs {
        flags.push(format!("-Clink-arg=-Wl,-rpath-link,{}", l.display()));
    }
    let pc = [
        dir.join(format!("usr/lib/{t}/pkgconfig")),
        dir.join("usr/share/pkgconfig"),
    ]
    .iter()
    .map(|p| p.display().to_string())
    .collect::<Vec<_>>()
    .join(":");
    vec![
        (format!("CARGO_TARGET_{key}_LINKER"), format!("{t}-gcc")),
        (format!("CC_{}", rust.replace('-', "_")), format!("{t}-gcc")),
        ("CARGO_ENCODED_RUSTFLAGS".into(), flags.join("\u{1f}")),
        ("PKG_CONFIG_ALLOW_CROSS".into(), "1".into()),
        ("PKG_CONFIG_SYSROOT_DIR".into(), dir.display().to_string()),
        ("PKG_CONFIG_LIBDIR".into(), pc),
        ("PKG_CONFIG_PATH".into(), String::new()),
    ]
}

/// Adds the Rust target with rustup when the toolchain lacks it.
pub fn ensure_rust_target(rust: &str) -> Result<()> {
    let out = Command::new("rustc")
        .args(["--print", "sysroot"])
        .output()
        .context("running rustc --print sysroot")?;
    let sysroot = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
    if sysroot.join("lib/rustlib").join(rust).is_dir() {
        return Ok(());
    }
    eprintln!("xtask: rustup target add {rust}");
    let st = Command::new("rustup")
        .args(["target", "add", rust])
        .status()
        .context("running rustup (the toolchain has no {rust} standard library)")?;
    if !st.success() {
        bail!("rustup target add {rust} failed");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn libraries_but_not_programs_or_the_c_library() {
        assert!(wanted("libglib2.0-dev"));
        assert!(wanted("libgstreamer1.0-0"));
        assert!(wanted("zlib1g-dev"));
        assert!(!wanted("libglib2.0-dev-bin"));
        assert!(!wanted("libc6-dev"));
        assert!(!wanted("python3"));
        assert!(!wanted("pkgconf"));
    }

    #[test]
    fn the_cross_environment_points_into_the_sysroot() {
        let t = Target::parse(&super::super::target::test_target("rpi-arm64")).unwrap();
        let env: BTreeMap<String, String> = cargo_env(
            &t,
            Path::new("/s"),
            &["--remap-path-prefix=/r=/ewindow".into()],
        )
        .into_iter()
        .collect();
        assert_eq!(
            env["CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER"],
            "aarch64-linux-gnu-gcc"
        );
        assert_eq!(env["PKG_CONFIG_SYSROOT_DIR"], "/s");
        assert!(env["PKG_CONFIG_LIBDIR"].starts_with("/s/usr/lib/aarch64-linux-gnu/pkgconfig"));
        let flags: Vec<&str> = env["CARGO_ENCODED_RUSTFLAGS"].split('\u{1f}').collect();
        assert_eq!(flags[0], "--remap-path-prefix=/r=/ewindow");
        assert!(flags.contains(&"-Clink-arg=-Wl,-rpath-link,/s/usr/lib/aarch64-linux-gnu"));
        let pc = Target::parse(&super::super::target::test_target("qemu-x86_64")).unwrap();
        assert!(cargo_env(&pc, Path::new("/s"), &[]).is_empty());
    }
}
