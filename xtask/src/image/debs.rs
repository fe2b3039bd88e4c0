//! Debian packages: `apt-get download` into a cache, sha256 against the lock, `dpkg-deb -x`
//! into an unpacked tree per package version, and the index of what each one ships.
//!
//! The cache (`target/image/cache/`) is shared by builds; an unpacked tree is made in a
//! temporary directory and renamed into place, so an interrupted build leaves none half made.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};
use sha2::{Digest, Sha256};

use super::apt::Apt;
use super::target::canonical;

/// What a file in a package is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    /// A regular file.
    File,
    /// A symbolic link, with its target as shipped.
    Link(String),
}

/// One file a package ships.
#[derive(Debug, Clone)]
pub struct Entry {
    /// The package.
    pub package: String,
    /// Where the file is on the build machine.
    pub source: PathBuf,
    /// File or link.
    pub kind: Kind,
}

/// The download and unpack cache, and the apt that fills it.
pub struct Cache {
    dir: PathBuf,
    /// The apt of the target's architecture.
    pub apt: Apt,
}

/// One unpacked package.
pub struct Unpacked {
    /// Name.
    pub name: String,
    /// Version.
    pub version: String,
    /// The `.deb`.
    pub deb: PathBuf,
    /// The unpacked tree.
    pub root: PathBuf,
}

impl Cache {
    /// The cache in `dir`, filled by `apt`.
    pub fn new(dir: PathBuf, apt: Apt) -> Cache {
        Cache { dir, apt }
    }

    /// The `.deb` of `name` at `version` for the apt's architecture, downloaded when missing.
    pub fn fetch(&self, name: &str, version: &str) -> Result<PathBuf> {
        let arch = self.apt.arch.as_str();
        let debs = self.dir.join("debs");
        fs::create_dir_all(&debs).with_context(|| format!("creating {}", debs.display()))?;
        let find = || {
            [arch, "all"]
                .iter()
                .map(|a| debs.join(deb_name(name, version, a)))
                .find(|p| p.is_file())
        };
        if let Some(p) = find() {
            return Ok(p);
        }
        // Downloaded into a directory of its own, then renamed into the cache: a build
        // running beside this one never sees a half-written .deb.
        let tmp = debs.join(format!(".download-{}", unique()));
        fs::create_dir_all(&tmp)?;
        if self.apt.needs_update() {
            self.apt.update()?;
        }
        let run = || -> Result<bool> {
            let out = self
                .apt
                .command("apt-get")
                .args(["-q", "-o", "APT::Sandbox::User=root", "download"])
                .arg(format!("{name}:{arch}={version}"))
                .current_dir(&tmp)
                .output()
                .context("running apt-get download")?;
            if !out.status.success() {
                let err = String::from_utf8_lossy(&out.stderr);
                eprintln!("  apt-get download {name}={version}: {}", err.trim());
            }
            Ok(out.status.success())
        };
        let ok = run()? || {
            // A fresh machine may not have read the archive's indexes yet.
            if let Err(e) = self.apt.update() {
                eprintln!("  {e:#}");
            }
            run()?
        };
        if ok {
            for e in fs::read_dir(&tmp)?.flatten() {
                fs::rename(e.path(), debs.join(e.file_name()))?;
            }
        }
        let _ = fs::remove_dir_all(&tmp);
        if !ok {
            bail!(
                "apt-get download {name}={version} failed: the archive no longer has this \
                 version (refresh the lock: cargo xtask image lock) or apt cannot reach it"
            );
        }
        find().with_context(|| format!("apt-get download {name}={version} wrote no .deb"))
    }

    /// Whether `name` at `version` can still be had: its `.deb` is in the cache, or the
    /// archive still lists that version (`apt-cache show NAME:ARCH=VERSION`).
    pub fn available(&self, name: &str, version: &str) -> Result<bool> {
        let arch = self.apt.arch.as_str();
        let debs = self.dir.join("debs");
        if [arch, "all"]
            .iter()
            .any(|a| debs.join(deb_name(name, version, a)).is_file())
        {
            return Ok(true);
        }
        if self.apt.needs_update() {
            self.apt.update()?;
        }
        let out = self
            .apt
            .command("apt-cache")
            .args(["show", &format!("{name}:{arch}={version}")])
            .output()
            .context("running apt-cache show")?;
        Ok(out.status.success() && !out.stdout.is_empty())
    }

    /// Fetches, checks against `sha256` (when given) and unpacks.
    pub fn get(&self, name: &str, version: &str, sha256: Option<&str>) -> Result<Unpacked> {
        let deb = self.fetch(name, version)?;
        if let Some(want) = sha256 {
            let got = sha256_file(&deb)?;
            if got != want {
                bail!(
                    "{}: sha256 {got}, but the lock says {want} (a changed package: refresh \
                     the lock and review why)",
                    deb.display()
                );
            }
        }
        let root = self.unpack(&deb)?;
        Ok(Unpacked {
            name: name.to_string(),
            version: version.to_string(),
            deb,
            root,
        })
    }

    /// Unpacks a `.deb` into `unpacked/<name>_<version>_<arch>/` (once).
    fn unpack(&self, deb: &Path) -> Result<PathBuf> {
        let stem = deb
            .file_stem()
            .and_then(|s| s.to_str())
            .context("a .deb without a name")?;
        let dir = self.dir.join("unpacked").join(stem);
        if dir.is_dir() {
            return Ok(dir);
        }
        let tmp = dir.with_extension(format!("partial-{}", unique()));
        fs::create_dir_all(&tmp)?;
        let st = Command::new("dpkg-deb")
            .arg("-x")
            .arg(deb)
            .arg(&tmp)
            .status()
            .context("running dpkg-deb")?;
        if !st.success() {
            bail!("dpkg-deb -x {} failed ({st})", deb.display());
        }
        if fs::rename(&tmp, &dir).is_err() && dir.is_dir() {
            // another build unpacked it first
            let _ = fs::remove_dir_all(&tmp);
        }
        Ok(dir)
    }
}

/// A name no other download or unpack of this or another process uses.
fn unique() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    format!(
        "{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// The file name `apt-get download` writes (`:` of an epoch escaped as `%3a`).
pub fn deb_name(name: &str, version: &str, arch: &str) -> String {
    format!("{name}_{}_{arch}.deb", version.replace(':', "%3a"))
}

/// sha256 of a file, lower-case hex.
pub fn sha256_file(path: &Path) -> Result<String> {
    let mut f = fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let mut h = Sha256::new();
    std::io::copy(&mut f, &mut h)?;
    Ok(hex(&h.finalize()))
}

/// Lower-case hex.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Adds every file and link of an unpacked package to `index`, keyed by its canonical
/// (`/usr`-merged) path; the first package to ship a path keeps it.
pub fn index_package(index: &mut BTreeMap<String, Entry>, u: &Unpacked) -> Result<()> {
    let mut stack = vec![u.root.clone()];
    while let Some(dir) = stack.pop() {
        let mut entries = fs::read_dir(&dir)
            .with_context(|| format!("reading {}", dir.display()))?
            .collect::<std::io::Result<Vec<_>>>()?;
        // sorted: when a package ships both /bin/x and /usr/bin/x, the same one wins everywhere
        entries.sort_by_key(|e| e.file_name());
        for e in entries {
            let path = e.path();
            let ft = e.file_type()?;
            let rel = path
                .strip_prefix(&u.root)
                .unwrap_or(&path)
                .to_string_lossy()
                .into_owned();
            let kind = if ft.is_dir() {
                stack.push(path);
                continue;
            } else if ft.is_symlink() {
                Kind::Link(fs::read_link(&path)?.to_string_lossy().into_owned())
            } else if ft.is_file() {
                Kind::File
            } else {
                continue;
            };
            index.entry(canonical(&rel)).or_insert(Entry {
                package: u.name.clone(),
                source: path,
                kind,
            });
        }
    }
    Ok(())
}

/// The candidate version `apt` would download (`apt-cache policy`), if any.
pub fn candidate(apt: &Apt, name: &str) -> Result<Option<String>> {
    if apt.needs_update() {
        apt.update()?;
    }
    let out = apt
        .command("apt-cache")
        .args(["policy", &format!("{name}:{}", apt.arch)])
        .output()
        .context("running apt-cache policy")?;
    let text = String::from_utf8_lossy(&out.stdout);
    Ok(text
        .lines()
        .find_map(|l| l.trim().strip_prefix("Candidate:"))
        .map(|v| v.trim().to_string())
        .filter(|v| v != "(none)" && !v.is_empty()))
}

/// The package names a `.deb` depends on (Pre-Depends and Depends, every alternative).
pub fn depends(deb: &Path) -> Result<Vec<String>> {
    let out = Command::new("dpkg-deb")
        .arg("-f")
        .arg(deb)
        .args(["Pre-Depends", "Depends"])
        .output()
        .context("running dpkg-deb -f")?;
    Ok(parse_depends(&String::from_utf8_lossy(&out.stdout)))
}

/// The names in `Depends:`-style fields (`a (>= 1), b | c:any`).
pub fn parse_depends(fields: &str) -> Vec<String> {
    let mut names: Vec<String> = fields
        .lines()
        .map(|l| l.split_once(": ").map_or(l, |(_, v)| v))
        .flat_map(|l| l.split([',', '|']))
        .filter_map(|d| d.split_whitespace().next())
        .map(|n| n.trim_end_matches(":any").to_string())
        .filter(|n| !n.is_empty())
        .collect();
    names.sort();
    names.dedup();
    names
}

/// The paths a `.deb` ships (`dpkg-deb -c`), canonical.
pub fn contents(deb: &Path) -> Result<Vec<String>> {
    let out = Command::new("dpkg-deb")
        .arg("-c")
        .arg(deb)
        .output()
        .context("running dpkg-deb -c")?;
    Ok(String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().nth(5))
        .map(canonical)
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deb_names_escape_the_epoch() {
        assert_eq!(
            deb_name("busybox-static", "1:1.35.0-4+deb12u1+b1", "amd64"),
            "busybox-static_1%3a1.35.0-4+deb12u1+b1_amd64.deb"
        );
    }

    #[test]
    fn depends_fields() {
        let f = "Pre-Depends: libc6 (>= 2.34)\nDepends: libglib2.0-0 (>= 2.67.3), libgstreamer1.0-0 (= 1.22.0-2), libx264-164 | libx264-dev:any, libc6\n";
        assert_eq!(
            parse_depends(f),
            [
                "libc6",
                "libglib2.0-0",
                "libgstreamer1.0-0",
                "libx264-164",
                "libx264-dev"
            ]
        );
        assert!(parse_depends("").is_empty());
    }
}
