//! WireGuard X25519 keys: the window's identity.
//!
//! A [`PrivateKey`] is made on the device from the OS random source and never leaves it; no
//! `Debug` or `Display` prints it. A [`PublicKey`] names a window in the roster and in
//! WireGuard's configuration. Both are written the way WireGuard writes them (`wg genkey`,
//! `wg pubkey`): standard base64 with padding, 44 characters for 32 bytes.
//!
//! **Invariant:** a private key is used as an X25519 scalar only after clamping (RFC 7748 §5:
//! clear bits 0, 1, 2 and 255, set bit 254), as WireGuard does. [`PrivateKey::generate`]
//! stores the key already clamped, as `wg genkey` prints it; a key read from base64 is kept
//! as written (so it is written back unchanged) and clamped where it is used.

use std::fmt;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use curve25519_dalek::montgomery::MontgomeryPoint;
use curve25519_dalek::scalar::clamp_integer;
use zeroize::Zeroize;

/// Length of a key in bytes.
pub const KEY_LEN: usize = 32;

/// Length of a key in WireGuard's base64 form.
pub const KEY_BASE64_LEN: usize = 44;

/// Why a key could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyError {
    /// Not 44 characters of base64 (after surrounding whitespace is trimmed).
    WrongLength(usize),
    /// 44 characters, but not valid standard base64 of 32 bytes.
    NotBase64,
    /// The OS random source failed, so no key was made.
    NoRandomness(String),
}

impl fmt::Display for KeyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeyError::WrongLength(n) => write!(
                f,
                "a WireGuard key is {KEY_BASE64_LEN} characters of base64, this one has {n}"
            ),
            KeyError::NotBase64 => {
                write!(f, "a WireGuard key is base64 of 32 bytes, this one is not")
            }
            KeyError::NoRandomness(e) => write!(f, "the OS random source failed: {e}"),
        }
    }
}

impl std::error::Error for KeyError {}

/// Decodes WireGuard's base64 form of a 32-byte key.
fn decode_key(text: &str) -> Result<[u8; KEY_LEN], KeyError> {
    let text = text.trim();
    let chars = text.chars().count();
    if chars != KEY_BASE64_LEN {
        return Err(KeyError::WrongLength(chars));
    }
    let mut out = [0u8; KEY_LEN];
    // 44 base64 characters with one `=` decode to exactly 32 bytes; the engine refuses
    // non-canonical trailing bits, so each key has one text form.
    match STANDARD.decode_slice(text, &mut out) {
        Ok(KEY_LEN) => Ok(out),
        _ => {
            out.zeroize();
            Err(KeyError::NotBase64)
        }
    }
}

/// A WireGuard (X25519) private key. Zeroed when dropped; never printed.
#[derive(Clone)]
pub struct PrivateKey([u8; KEY_LEN]);

impl Drop for PrivateKey {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

impl PrivateKey {
    /// A new key from the OS random source, clamped as `wg genkey` does.
    pub fn generate() -> Result<PrivateKey, KeyError> {
        let mut bytes = [0u8; KEY_LEN];
        if let Err(e) = getrandom::fill(&mut bytes) {
            return Err(KeyError::NoRandomness(e.to_string()));
        }
        let key = PrivateKey::from_bytes(clamp_integer(bytes));
        bytes.zeroize();
        Ok(key)
    }

    /// The key made of these bytes, kept as they are (clamped where used).
    pub fn from_bytes(bytes: [u8; KEY_LEN]) -> PrivateKey {
        PrivateKey(bytes)
    }

    /// The key's bytes as stored (for the WireGuard configuration).
    pub fn as_bytes(&self) -> &[u8; KEY_LEN] {
        &self.0
    }

    /// The clamped scalar, as X25519 and XEdDSA use it.
    pub(crate) fn clamped(&self) -> [u8; KEY_LEN] {
        clamp_integer(self.0)
    }

    /// The matching public key: X25519 of the clamped key and the base point (u = 9).
    pub fn public_key(&self) -> PublicKey {
        PublicKey(MontgomeryPoint::mul_base_clamped(self.0).to_bytes())
    }

    /// Reads WireGuard's base64 form (surrounding whitespace is ignored).
    pub fn from_base64(text: &str) -> Result<PrivateKey, KeyError> {
        decode_key(text).map(PrivateKey)
    }

    /// WireGuard's base64 form. The returned `String` is not zeroed: write it and drop it.
    pub fn to_base64(&self) -> String {
        STANDARD.encode(self.0)
    }
}

impl fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PrivateKey(..)")
    }
}

pub use crate::window::PublicKey;

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Bytes from hex, for test vectors.
    pub(crate) fn hex32(s: &str) -> [u8; 32] {
        let v: Vec<u8> = (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect();
        v.try_into().unwrap()
    }

    // RFC 7748 §6.1: Alice's and Bob's keys (the private keys are not clamped as written).
    const ALICE_PRIV: &str = "77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a";
    const ALICE_PUB: &str = "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a";
    const BOB_PRIV: &str = "5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb";
    const BOB_PUB: &str = "de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f";

    #[test]
    fn public_key_matches_rfc7748_vectors() {
        let alice = PrivateKey::from_bytes(hex32(ALICE_PRIV));
        assert_eq!(alice.public_key().0, hex32(ALICE_PUB));
        let bob = PrivateKey::from_bytes(hex32(BOB_PRIV));
        assert_eq!(bob.public_key().0, hex32(BOB_PUB));
    }

    #[test]
    fn clamping_does_not_change_the_public_key() {
        let raw = hex32(ALICE_PRIV);
        let clamped = PrivateKey::from_bytes(clamp_integer(raw));
        assert_eq!(clamped.public_key().0, hex32(ALICE_PUB));
        assert_eq!(clamped.as_bytes()[0] & 7, 0);
        assert_eq!(clamped.as_bytes()[31] & 0xc0, 0x40);
    }

    #[test]
    fn generated_keys_are_clamped_and_distinct() {
        let a = PrivateKey::generate().unwrap();
        let b = PrivateKey::generate().unwrap();
        assert_ne!(a.as_bytes(), b.as_bytes());
        for k in [&a, &b] {
            assert_eq!(k.as_bytes()[0] & 7, 0);
            assert_eq!(k.as_bytes()[31] & 0xc0, 0x40);
        }
        assert_ne!(a.public_key(), b.public_key());
    }

    #[test]
    fn base64_round_trip_is_wireguard_format() {
        let k = PrivateKey::from_bytes(hex32(ALICE_PRIV));
        let text = k.to_base64();
        assert_eq!(text.len(), KEY_BASE64_LEN);
        assert!(text.ends_with('='));
        assert_eq!(
            PrivateKey::from_base64(&text).unwrap().as_bytes(),
            k.as_bytes()
        );

        let p = k.public_key();
        assert_eq!(
            p.to_base64(),
            "hSDwCYkwp1R0i33ctD73Wg2/Og0mOBr066SpjqqbTmo="
        );
        assert_eq!(p.to_string(), p.to_base64());
        assert_eq!(PublicKey::from_base64(&p.to_base64()).unwrap(), p);
        assert_eq!(format!("  {p}\n").parse::<PublicKey>().unwrap(), p);
    }

    #[test]
    fn bad_base64_is_refused() {
        assert!(PublicKey::from_base64("abc").is_err());
        assert!(PublicKey::from_base64("").is_err());
        // Right length, a character outside base64.
        let bad = format!("{}!=", "A".repeat(42));
        assert!(PublicKey::from_base64(&bad).is_err());
        // Right length, no padding: 44 characters decode to 33 bytes.
        assert!(PublicKey::from_base64(&"A".repeat(44)).is_err());
        // Non-canonical trailing bits ('B' before '=' leaves a 1 bit over).
        let noncanon = format!("{}B=", "A".repeat(42));
        assert!(PublicKey::from_base64(&noncanon).is_err());
        // Multi-byte characters never panic.
        assert!(PublicKey::from_base64(&"é".repeat(22)).is_err());
        assert!(PrivateKey::from_base64(&"€".repeat(15)).is_err());
    }

    #[test]
    fn private_key_is_never_printed() {
        let k = PrivateKey::from_bytes(hex32(ALICE_PRIV));
        assert_eq!(format!("{k:?}"), "PrivateKey(..)");
        assert_eq!(format!("{k:#?}"), "PrivateKey(..)");
        let p = k.public_key();
        assert_eq!(format!("{p:?}"), format!("PublicKey({p})"));
    }

    #[test]
    fn error_messages_are_clear() {
        assert_eq!(
            KeyError::WrongLength(3).to_string(),
            "a WireGuard key is 44 characters of base64, this one has 3"
        );
        assert_eq!(
            KeyError::NotBase64.to_string(),
            "a WireGuard key is base64 of 32 bytes, this one is not"
        );
    }
}
