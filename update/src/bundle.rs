//! The bundle format, version 1:
//!
//! ```text
//! ewindow-update 1\n
//! {"target":"qemu-x86_64","version":"0.2.0","files":[{"name":"ewindow.efi","size":31000000,"sha256":"…"}]}\n
//! <base64 Ed25519 signature of "ewindow-update-v1\0", the magic line and the header line>\n
//! the files' bytes, one after the other, in the header's order
//! ```
//!
//! The header is one JSON line of at most [`MAX_HEADER`] bytes. The signature covers it and,
//! through the files' SHA-256, every byte after it. [`verify`] checks the signature before
//! it parses the header (no JSON from an unknown signer is ever parsed), then the target,
//! the version, the length, and last the hashes; the first check that fails is the refusal.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::keys::{ReleaseKey, TrustedKeys};
use crate::version::Version;

/// The first line of every bundle.
pub const MAGIC: &[u8] = b"ewindow-update 1\n";
/// Domain separation: a signature over a bundle is never a signature over anything else.
const LABEL: &[u8] = b"ewindow-update-v1\0";
/// The longest header line.
pub const MAX_HEADER: usize = 64 * 1024;
/// The most files a bundle holds.
pub const MAX_FILES: usize = 64;
/// The longest file name.
pub const MAX_NAME: usize = 128;

/// What the header says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Header {
    /// The image target it is for (`qemu-x86_64`, `rpi-arm64`).
    pub target: String,
    /// Its version.
    pub version: String,
    /// The slot's files, in the order their bytes follow.
    pub files: Vec<FileEntry>,
}

/// One file of a slot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileEntry {
    /// Its path in the slot (`ewindow.efi`, `overlays/vc4-kms-v3d.dtbo`).
    pub name: String,
    /// Bytes.
    pub size: u64,
    /// SHA-256 of its bytes, lower-case hex.
    pub sha256: String,
}

/// Why a bundle is refused. Nothing is written for a refused bundle.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("not an ewindow update bundle")]
    NotABundle,
    #[error("the bundle's header is cut off or longer than {MAX_HEADER} bytes")]
    Header,
    #[error("not signed by a release key this window trusts")]
    Signature,
    #[error("bad header: {0}")]
    BadHeader(String),
    #[error("a bundle for {bundle}; this window is {device}")]
    Target { bundle: String, device: String },
    #[error("version {bundle} is not newer than the running {running} (force installs it anyway)")]
    NotNewer { bundle: String, running: String },
    #[error("truncated: {missing} bytes of its files are missing")]
    Truncated { missing: u64 },
    #[error("{extra} bytes after its last file")]
    Trailing { extra: u64 },
    #[error("{name}: its bytes do not match the signed hash")]
    Hash { name: String },
}

/// What the running window expects of a bundle.
#[derive(Debug, Clone)]
pub struct Expect<'a> {
    /// This window's image target.
    pub target: &'a str,
    /// The running version.
    pub running: &'a Version,
    /// Take a version that is not newer (a maintainer going back on purpose).
    pub force: bool,
}

/// A bundle that passed every check: its header and each file's bytes.
#[derive(Debug)]
pub struct Verified<'a> {
    pub header: Header,
    pub version: Version,
    /// The bytes of `header.files[i]`, borrowed from the bundle.
    bytes: Vec<&'a [u8]>,
}

impl<'a> Verified<'a> {
    /// Each file with its bytes, in the header's order.
    pub fn files(&self) -> impl Iterator<Item = (&FileEntry, &'a [u8])> + '_ {
        self.header.files.iter().zip(self.bytes.iter().copied())
    }
}

fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

fn signing_input(header_line: &[u8]) -> Vec<u8> {
    [LABEL, MAGIC, header_line, b"\n"].concat()
}

/// A file name a slot can hold: `/`-separated parts of letters, digits, `.`, `_`, `-`, no
/// empty part, no `.` or `..`.
fn check_name(name: &str) -> Result<(), String> {
    let ok_part = |p: &str| {
        !p.is_empty()
            && p != "."
            && p != ".."
            && p.bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-' | b'+'))
    };
    if name.len() > MAX_NAME || !name.split('/').all(ok_part) {
        return Err(format!("`{name}` is not a file name a slot can hold"));
    }
    Ok(())
}

fn check_header(header: &Header) -> Result<Version, String> {
    let version = Version::parse(&header.version)?;
    if header.target.is_empty() || header.target.len() > 64 {
        return Err("no target".into());
    }
    if header.files.is_empty() || header.files.len() > MAX_FILES {
        return Err(format!(
            "1 to {MAX_FILES} files, not {}",
            header.files.len()
        ));
    }
    let mut seen = std::collections::BTreeSet::new();
    for f in &header.files {
        check_name(&f.name)?;
        if !seen.insert(f.name.as_str()) {
            return Err(format!("`{}` twice", f.name));
        }
        if f.sha256.len() != 64 || !f.sha256.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(format!("`{}`: not a SHA-256", f.name));
        }
    }
    Ok(version)
}

/// Builds a bundle of `files` (name, bytes) for `target` at `version`, signed with `key`.
pub fn write(
    key: &ReleaseKey,
    target: &str,
    version: &Version,
    files: &[(String, Vec<u8>)],
) -> Result<Vec<u8>, Refusal> {
    let header = Header {
        target: target.to_owned(),
        version: version.to_string(),
        files: files
            .iter()
            .map(|(name, bytes)| FileEntry {
                name: name.clone(),
                size: bytes.len() as u64,
                sha256: sha256_hex(bytes),
            })
            .collect(),
    };
    check_header(&header).map_err(Refusal::BadHeader)?;
    let line = serde_json::to_vec(&header).map_err(|e| Refusal::BadHeader(e.to_string()))?;
    if line.len() > MAX_HEADER {
        return Err(Refusal::Header);
    }
    let signature = STANDARD.encode(key.sign(&signing_input(&line)));
    let mut out = Vec::with_capacity(
        MAGIC.len()
            + line.len()
            + signature.len()
            + 2
            + files.iter().map(|f| f.1.len()).sum::<usize>(),
    );
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&line);
    out.push(b'\n');
    out.extend_from_slice(signature.as_bytes());
    out.push(b'\n');
    for (_, bytes) in files {
        out.extend_from_slice(bytes);
    }
    Ok(out)
}

/// The line at the start of `bytes` (without its `\n`) and what follows it, if a `\n` comes
/// within `max` bytes.
fn line(bytes: &[u8], max: usize) -> Option<(&[u8], &[u8])> {
    let end = bytes.iter().take(max + 1).position(|&b| b == b'\n')?;
    Some((&bytes[..end], &bytes[end + 1..]))
}

/// Checks a bundle for this window; see the module doc for the order of the checks.
pub fn verify<'a>(
    bundle: &'a [u8],
    trusted: &TrustedKeys,
    expect: &Expect,
) -> Result<Verified<'a>, Refusal> {
    let rest = bundle.strip_prefix(MAGIC).ok_or(Refusal::NotABundle)?;
    let (header_line, rest) = line(rest, MAX_HEADER).ok_or(Refusal::Header)?;
    let (sig_line, mut payload) = line(rest, 128).ok_or(Refusal::Signature)?;
    let sig: [u8; 64] = STANDARD
        .decode(sig_line)
        .ok()
        .and_then(|s| s.try_into().ok())
        .ok_or(Refusal::Signature)?;
    let message = signing_input(header_line);
    if !trusted.0.iter().any(|k| k.verifies(&message, &sig)) {
        return Err(Refusal::Signature);
    }
    let header: Header =
        serde_json::from_slice(header_line).map_err(|e| Refusal::BadHeader(e.to_string()))?;
    let version = check_header(&header).map_err(Refusal::BadHeader)?;
    if header.target != expect.target {
        return Err(Refusal::Target {
            bundle: header.target,
            device: expect.target.to_owned(),
        });
    }
    if version <= *expect.running && !expect.force {
        return Err(Refusal::NotNewer {
            bundle: version.to_string(),
            running: expect.running.to_string(),
        });
    }
    let total = header
        .files
        .iter()
        .try_fold(0u64, |sum, f| sum.checked_add(f.size))
        .ok_or_else(|| Refusal::BadHeader("file sizes overflow".into()))?;
    let have = payload.len() as u64;
    if have < total {
        return Err(Refusal::Truncated {
            missing: total - have,
        });
    }
    if have > total {
        return Err(Refusal::Trailing {
            extra: have - total,
        });
    }
    let mut bytes = Vec::with_capacity(header.files.len());
    for f in &header.files {
        // Fits: the sizes add up to the payload's length.
        let (file, next) = payload.split_at(f.size as usize);
        if sha256_hex(file) != f.sha256.to_ascii_lowercase() {
            return Err(Refusal::Hash {
                name: f.name.clone(),
            });
        }
        bytes.push(file);
        payload = next;
    }
    Ok(Verified {
        header,
        version,
        bytes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::ReleaseKey;

    fn files() -> Vec<(String, Vec<u8>)> {
        vec![
            ("ewindow.efi".into(), vec![7u8; 5000]),
            ("overlays/a.dtbo".into(), b"dtb".to_vec()),
        ]
    }

    struct Case {
        key: ReleaseKey,
        trusted: TrustedKeys,
        running: Version,
    }

    fn case() -> Case {
        let key = ReleaseKey::generate().unwrap();
        let trusted = TrustedKeys(vec![key.public()]);
        Case {
            key,
            trusted,
            running: Version::parse("0.1.0").unwrap(),
        }
    }

    impl Case {
        fn bundle(&self, target: &str, version: &str) -> Vec<u8> {
            write(
                &self.key,
                target,
                &Version::parse(version).unwrap(),
                &files(),
            )
            .unwrap()
        }
        fn check(&self, bundle: &[u8], force: bool) -> Result<Vec<(String, Vec<u8>)>, Refusal> {
            let expect = Expect {
                target: "qemu-x86_64",
                running: &self.running,
                force,
            };
            verify(bundle, &self.trusted, &expect).map(|v| {
                v.files()
                    .map(|(f, b)| (f.name.clone(), b.to_vec()))
                    .collect()
            })
        }
    }

    #[test]
    fn a_bundle_round_trips_with_every_byte() {
        let c = case();
        let b = c.bundle("qemu-x86_64", "0.2.0");
        assert!(b.starts_with(MAGIC));
        assert_eq!(c.check(&b, false), Ok(files()));
    }

    #[test]
    fn each_fault_is_refused_with_its_reason() {
        let c = case();
        let good = c.bundle("qemu-x86_64", "0.2.0");
        let header_end = MAGIC.len()
            + good[MAGIC.len()..]
                .iter()
                .position(|&b| b == b'\n')
                .unwrap();

        assert_eq!(c.check(b"hello", false), Err(Refusal::NotABundle));
        let mut no_newline = MAGIC.to_vec();
        no_newline.extend(std::iter::repeat_n(b'{', MAX_HEADER + 10));
        assert_eq!(c.check(&no_newline, false), Err(Refusal::Header));

        // Another key; a changed header byte (the target's first letter).
        let other = ReleaseKey::generate().unwrap();
        let foreign = write(
            &other,
            "qemu-x86_64",
            &Version::parse("0.2.0").unwrap(),
            &files(),
        )
        .unwrap();
        assert_eq!(c.check(&foreign, false), Err(Refusal::Signature));
        let mut tampered = good.clone();
        let at = good.windows(4).position(|w| w == b"qemu").unwrap();
        tampered[at] = b'Q';
        assert_eq!(c.check(&tampered, false), Err(Refusal::Signature));
        let mut unsigned = good[..header_end + 1].to_vec();
        unsigned.extend_from_slice(b"\n");
        assert_eq!(c.check(&unsigned, false), Err(Refusal::Signature));

        assert_eq!(
            c.check(&c.bundle("rpi-arm64", "0.2.0"), false),
            Err(Refusal::Target {
                bundle: "rpi-arm64".into(),
                device: "qemu-x86_64".into()
            })
        );
        for old in ["0.1.0", "0.0.9", "0.1"] {
            assert!(
                matches!(
                    c.check(&c.bundle("qemu-x86_64", old), false),
                    Err(Refusal::NotNewer { .. })
                ),
                "{old}"
            );
            assert!(
                c.check(&c.bundle("qemu-x86_64", old), true).is_ok(),
                "{old} forced"
            );
        }

        assert_eq!(
            c.check(&good[..good.len() - 10], false),
            Err(Refusal::Truncated { missing: 10 })
        );
        let mut longer = good.clone();
        longer.extend_from_slice(b"xx");
        assert_eq!(c.check(&longer, false), Err(Refusal::Trailing { extra: 2 }));
        let mut flipped = good.clone();
        let last = flipped.len() - 1;
        flipped[last] ^= 1;
        assert_eq!(
            c.check(&flipped, false),
            Err(Refusal::Hash {
                name: "overlays/a.dtbo".into()
            })
        );
    }

    #[test]
    fn every_prefix_of_a_bundle_is_refused_without_a_panic() {
        let c = case();
        let small = [("k".to_string(), b"kernel".to_vec())];
        let good = write(&c.key, "qemu-x86_64", &Version::parse("1").unwrap(), &small).unwrap();
        for n in 0..good.len() {
            assert!(c.check(&good[..n], false).is_err(), "prefix of {n} bytes");
        }
    }

    #[test]
    fn names_a_slot_cannot_hold_are_refused_when_building() {
        let c = case();
        for bad in ["", "/abs", "a/../b", "a//b", ".", "sp ace", "a\\b"] {
            let r = write(
                &c.key,
                "qemu-x86_64",
                &Version::parse("1").unwrap(),
                &[(bad.to_string(), vec![1])],
            );
            assert!(matches!(r, Err(Refusal::BadHeader(_))), "{bad:?}");
        }
        let twice = [("a".to_string(), vec![1]), ("a".to_string(), vec![2])];
        assert!(write(&c.key, "t", &Version::parse("1").unwrap(), &twice).is_err());
    }
}
