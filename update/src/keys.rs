//! Release keys: Ed25519 (RFC 8032, `ed25519-dalek`). The signing key is made once by a
//! maintainer (`ReleaseKey::generate`), kept outside the repository and every image, and
//! handed to the build by path or environment; tests make throwaway ones. An image carries
//! the public keys it trusts, one per line of base64, `#` comments allowed
//! ([`TrustedKeys::parse`]). More than one lets a new release key take over from an old one.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use ed25519_dalek::{Signer, SigningKey, Verifier, VerifyingKey};
use zeroize::Zeroize;

/// A key problem, with what was wrong.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum KeyError {
    /// Not 32 bytes of base64.
    #[error("not a key: {0}")]
    Malformed(String),
    /// A line of a trusted-keys file.
    #[error("line {line}: {why}")]
    Line { line: usize, why: String },
    /// The file has no key.
    #[error("no release key in it")]
    Empty,
    /// The system's random source failed.
    #[error("no randomness for a new key: {0}")]
    Random(String),
}

fn key_bytes(text: &str) -> Result<[u8; 32], KeyError> {
    let mut bytes = STANDARD
        .decode(text.trim())
        .map_err(|e| KeyError::Malformed(e.to_string()))?;
    let out: Result<[u8; 32], _> = bytes.as_slice().try_into();
    bytes.zeroize();
    out.map_err(|_| KeyError::Malformed("a key is 32 bytes".into()))
}

/// The private release key that signs bundles.
pub struct ReleaseKey(SigningKey);

impl ReleaseKey {
    /// A new key from the OS random source.
    pub fn generate() -> Result<ReleaseKey, KeyError> {
        let mut seed = [0u8; 32];
        getrandom::fill(&mut seed).map_err(|e| KeyError::Random(e.to_string()))?;
        let key = ReleaseKey(SigningKey::from_bytes(&seed));
        seed.zeroize();
        Ok(key)
    }

    /// A key from its base64 text (a key file's content).
    pub fn from_base64(text: &str) -> Result<ReleaseKey, KeyError> {
        let mut seed = key_bytes(text)?;
        let key = ReleaseKey(SigningKey::from_bytes(&seed));
        seed.zeroize();
        Ok(key)
    }

    /// The base64 text of the key, for its (0600) file.
    pub fn to_base64(&self) -> String {
        STANDARD.encode(self.0.to_bytes())
    }

    /// The public half, for the images' trusted keys.
    pub fn public(&self) -> TrustedKey {
        TrustedKey(self.0.verifying_key())
    }

    pub(crate) fn sign(&self, message: &[u8]) -> [u8; 64] {
        self.0.sign(message).to_bytes()
    }
}

impl std::fmt::Debug for ReleaseKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ReleaseKey({})", self.public().to_base64())
    }
}

/// A public release key an image trusts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TrustedKey(VerifyingKey);

impl TrustedKey {
    pub fn from_base64(text: &str) -> Result<TrustedKey, KeyError> {
        VerifyingKey::from_bytes(&key_bytes(text)?)
            .map(TrustedKey)
            .map_err(|e| KeyError::Malformed(e.to_string()))
    }

    pub fn to_base64(&self) -> String {
        STANDARD.encode(self.0.to_bytes())
    }

    /// Whether `sig` is this key's signature of `message` (strict RFC 8032 verification:
    /// no malleable or small-order signatures).
    pub(crate) fn verifies(&self, message: &[u8], sig: &[u8; 64]) -> bool {
        let sig = ed25519_dalek::Signature::from_bytes(sig);
        self.0.verify_strict(message, &sig).is_ok() && self.0.verify(message, &sig).is_ok()
    }
}

/// The keys of a trusted-keys file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TrustedKeys(pub Vec<TrustedKey>);

impl TrustedKeys {
    /// One base64 key per line; blank lines and `#` comments are skipped. An error names
    /// the line.
    pub fn parse(text: &str) -> Result<TrustedKeys, KeyError> {
        let mut keys = Vec::new();
        for (i, raw) in text.lines().enumerate() {
            let line = raw.split('#').next().unwrap_or("").trim();
            if line.is_empty() {
                continue;
            }
            keys.push(TrustedKey::from_base64(line).map_err(|e| KeyError::Line {
                line: i + 1,
                why: e.to_string(),
            })?);
        }
        if keys.is_empty() {
            return Err(KeyError::Empty);
        }
        Ok(TrustedKeys(keys))
    }

    /// The file's text.
    pub fn to_text(&self) -> String {
        self.0
            .iter()
            .map(|k| format!("{}\n", k.to_base64()))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_round_trip_through_their_text() {
        let key = ReleaseKey::generate().unwrap();
        let again = ReleaseKey::from_base64(&key.to_base64()).unwrap();
        assert_eq!(key.public(), again.public());
        let trusted = TrustedKeys::parse(&format!(
            "# release keys\n\n{}  # 2026\n",
            key.public().to_base64()
        ))
        .unwrap();
        assert_eq!(trusted.0, vec![key.public()]);
        assert_eq!(TrustedKeys::parse(&trusted.to_text()).unwrap(), trusted);
        let sig = key.sign(b"m");
        assert!(key.public().verifies(b"m", &sig));
        assert!(!key.public().verifies(b"n", &sig));
    }

    #[test]
    fn a_bad_trusted_keys_file_names_its_line() {
        let good = ReleaseKey::generate().unwrap().public().to_base64();
        let err = TrustedKeys::parse(&format!("{good}\nnot-base64!\n")).unwrap_err();
        assert!(matches!(err, KeyError::Line { line: 2, .. }), "{err}");
        assert_eq!(TrustedKeys::parse("# none\n"), Err(KeyError::Empty));
        assert!(TrustedKeys::parse("AAAA\n").is_err());
    }

    #[test]
    fn the_private_key_is_not_printed() {
        let key = ReleaseKey::generate().unwrap();
        assert!(!format!("{key:?}").contains(&key.to_base64()));
    }
}
