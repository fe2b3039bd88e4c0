//! The lock file (`image/<target>.lock`): every Debian package an image is made from, with its
//! exact version and the sha256 of its `.deb`. Pure: parsing and writing.
//!
//! ```text
//! # comment
//! kernel linux-image-6.1.0-56-amd64
//! package busybox-static 1:1.35.0-4+deb12u1+b1 3d3fdbe9…
//! sysroot libgstreamer1.0-dev 1.22.0-2+deb12u1 5e1c…
//! ```
//!
//! `sysroot` lines are the packages a cross build links against (build inputs, never in the
//! image).

use std::collections::BTreeMap;

use anyhow::{bail, Result};

/// A pinned package.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pin {
    /// Version, as apt spells it.
    pub version: String,
    /// sha256 of the `.deb`, lower-case hex.
    pub sha256: String,
}

/// The parsed lock.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Lock {
    /// The versioned kernel package (`linux-image-6.1.0-56-amd64`).
    pub kernel: String,
    /// Package name → pin.
    pub packages: BTreeMap<String, Pin>,
    /// The cross build's sysroot: package name → pin.
    pub sysroot: BTreeMap<String, Pin>,
}

impl Lock {
    /// Parses a lock file; errors name the line.
    pub fn parse(text: &str) -> Result<Lock> {
        let mut lock = Lock::default();
        for (n, line) in text.lines().enumerate() {
            let n = n + 1;
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let fields: Vec<&str> = line.split_whitespace().collect();
            match fields.as_slice() {
                ["kernel", pkg] => lock.kernel = pkg.to_string(),
                [kind @ ("package" | "sysroot"), name, version, sha] => {
                    if sha.len() != 64 || !sha.bytes().all(|b| b.is_ascii_hexdigit()) {
                        bail!("line {n}: `{sha}` is not a sha256");
                    }
                    let pin = Pin {
                        version: version.to_string(),
                        sha256: sha.to_ascii_lowercase(),
                    };
                    let map = if *kind == "package" {
                        &mut lock.packages
                    } else {
                        &mut lock.sysroot
                    };
                    if map.insert(name.to_string(), pin).is_some() {
                        bail!("line {n}: {name} is pinned twice");
                    }
                }
                _ => bail!(
                    "line {n}: expected `kernel PKG`, `package NAME VERSION SHA256` or `sysroot NAME VERSION SHA256`"
                ),
            }
        }
        if lock.kernel.is_empty() {
            bail!("no `kernel` line");
        }
        if !lock.packages.contains_key(&lock.kernel) {
            bail!("the kernel {} is not pinned", lock.kernel);
        }
        Ok(lock)
    }

    /// The file's text, sorted, with a header naming the target.
    pub fn render(&self, target: &str) -> String {
        let mut s = format!(
            "# ewindow image lock for {target}: every Debian package the image is made from,\n\
             # with the sha256 of its .deb. Refresh: cargo xtask image lock --target {target}\n\
             kernel {}\n",
            self.kernel
        );
        for (name, pin) in &self.packages {
            s.push_str(&format!("package {name} {} {}\n", pin.version, pin.sha256));
        }
        for (name, pin) in &self.sysroot {
            s.push_str(&format!("sysroot {name} {} {}\n", pin.version, pin.sha256));
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHA: &str = "3d3fdbe91d4660c873e14b092c213fe81c1da6362daa236eb25d0171eb108744";

    #[test]
    fn round_trip() {
        let text = format!(
            "# hi\nkernel linux-image-6.1.0-56-amd64\n\
             package linux-image-6.1.0-56-amd64 6.1.158-1 {SHA}\n\
             package busybox-static 1:1.35.0-4+deb12u1+b1 {SHA}\n\
             sysroot libglib2.0-dev 2.74.6-2+deb12u5 {SHA}\n\
             sysroot busybox-static 1:1.35.0-4+deb12u1+b1 {SHA}\n"
        );
        let lock = Lock::parse(&text).unwrap();
        assert_eq!(
            lock.packages["busybox-static"].version,
            "1:1.35.0-4+deb12u1+b1"
        );
        assert_eq!(lock.sysroot.len(), 2);
        assert_eq!(lock.packages.len(), 2);
        let again = Lock::parse(&lock.render("t")).unwrap();
        assert_eq!(again, lock);
        assert!(
            lock.render("t").find("busybox").unwrap()
                < lock.render("t").find("package linux").unwrap()
        );
    }

    #[test]
    fn errors_name_the_line() {
        let e = Lock::parse("kernel k\npackage a 1 nothex\n").unwrap_err();
        assert_eq!(e.to_string(), "line 2: `nothex` is not a sha256");
        let e = Lock::parse(&format!("package a 1 {SHA}\n")).unwrap_err();
        assert_eq!(e.to_string(), "no `kernel` line");
        let e =
            Lock::parse(&format!("kernel a\npackage a 1 {SHA}\npackage a 2 {SHA}\n")).unwrap_err();
        assert_eq!(e.to_string(), "line 3: a is pinned twice");
        let e = Lock::parse("kernel k\n").unwrap_err();
        assert_eq!(e.to_string(), "the kernel k is not pinned");
        let e = Lock::parse("kernel\n").unwrap_err();
        assert!(e.to_string().starts_with("line 1:"));
    }
}
