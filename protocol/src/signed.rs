//! Signed roster updates: XEdDSA signatures with the members' WireGuard keys, and the rule
//! by which a window accepts an update.
//!
//! A roster is versioned. Each update is signed by the member that made it, with that
//! member's WireGuard X25519 identity key, so the roster needs no second key per member.
//! A window accepts an update that is newer than its roster and signed by a member of its
//! current roster ([`accept_update`]).
//!
//! The signature is XEd25519 as specified by Signal, "The XEdDSA and VXEdDSA Signature
//! Schemes", revision 1 (<https://signal.org/docs/specifications/xeddsa/>), written here on
//! top of `curve25519-dalek`: `calculate_key_pair` and `convert_mont` (§2.3), `hash_i`
//! (hash functions, §2), `xeddsa_sign` and `xeddsa_verify` (§3), with Curve25519's
//! parameters (q, B, SHA-512, b = 256). [`sign`] reproduces the reference implementation's
//! signature vector (`xeddsa_fast_test` of libsignal-protocol-c). Two checks in [`verify`] are
//! stricter than the spec, and no honest signer ever meets them: `s` must be reduced (`s < q`,
//! as RFC 8032 §5.1.7 asks, where the spec asks `s < 2^253`), which makes signatures
//! non-malleable; and a public key of small order is refused (a private key that X25519 can
//! produce never has one).
//!
//! Signal's libsignal differs from the spec: it carries the Edwards sign bit in the top bit of
//! the signature. Half of its signatures fail a spec verifier; ours verify with libsignal.
//!
//! **Invariant:** [`verify`] and [`accept_update`] never panic, whatever the bytes.

use std::fmt;

use curve25519_dalek::edwards::EdwardsPoint;
use curve25519_dalek::montgomery::MontgomeryPoint;
use curve25519_dalek::scalar::Scalar;
use sha2::{Digest, Sha512};
use subtle::{Choice, ConditionallySelectable};
use zeroize::Zeroize;

use crate::keys::{PrivateKey, PublicKey};

/// Length of a signature: the Edwards point R (32 bytes), then the scalar s (32 bytes).
pub const SIGNATURE_LEN: usize = 64;

/// `hash_1`'s prefix: 2^256 − 1 − 1 as 32 little-endian bytes (spec §2, `hash_i`).
const HASH1_PREFIX: [u8; 32] = {
    let mut p = [0xffu8; 32];
    p[0] = 0xfe;
    p
};

/// Domain separation for roster updates (see [`update_signing_input`]).
const UPDATE_LABEL: &[u8] = b"ewindow-roster-update-v1\0";

/// Signs `message` with the X25519 private key (`xeddsa_sign`, spec §3).
///
/// The 64 random bytes `Z` come from the OS random source, as the spec asks. Should that
/// source fail, `Z` stays zero: the nonce then depends on the key and the message alone,
/// like Ed25519's deterministic nonces, which is still safe (Z only hedges against faults
/// and side channels).
pub fn sign(private: &PrivateKey, message: &[u8]) -> [u8; SIGNATURE_LEN] {
    let mut z = [0u8; 64];
    if getrandom::fill(&mut z).is_err() {
        z = [0u8; 64];
    }
    let sig = sign_with_random(private, message, &z);
    z.zeroize();
    sig
}

/// `calculate_key_pair(k)` (spec §2.3): the Edwards public key A with sign bit 0, and the
/// scalar a with A = aB (a = ±k mod q).
fn calculate_key_pair(private: &PrivateKey) -> ([u8; 32], Scalar) {
    let mut k_bytes = private.clamped();
    let k = Scalar::from_bytes_mod_order(k_bytes);
    k_bytes.zeroize();
    let mut a_point = EdwardsPoint::mul_base(&k).compress().to_bytes();
    let negative = Choice::from(a_point[31] >> 7);
    a_point[31] &= 0x7f;
    let a = Scalar::conditional_select(&k, &-k, negative);
    (a_point, a)
}

/// `xeddsa_sign(k, M, Z)` (spec §3) with the random bytes given.
fn sign_with_random(private: &PrivateKey, message: &[u8], z: &[u8; 64]) -> [u8; SIGNATURE_LEN] {
    let (a_point, mut a) = calculate_key_pair(private);
    let mut a_bytes = a.to_bytes();

    // r = hash_1(a || M || Z) (mod q)
    let mut h1 = Sha512::new();
    h1.update(HASH1_PREFIX);
    h1.update(a_bytes);
    h1.update(message);
    h1.update(z);
    let mut r_wide: [u8; 64] = h1.finalize().into();
    let mut r = Scalar::from_bytes_mod_order_wide(&r_wide);
    r_wide.zeroize();
    a_bytes.zeroize();

    // R = rB; h = hash(R || A || M) (mod q); s = r + ha (mod q)
    let big_r = EdwardsPoint::mul_base(&r).compress().to_bytes();
    let h = challenge(&big_r, &a_point, message);
    let s = r + h * a;
    r.zeroize();
    a.zeroize();

    let mut sig = [0u8; SIGNATURE_LEN];
    sig[..32].copy_from_slice(&big_r);
    sig[32..].copy_from_slice(s.as_bytes());
    sig
}

/// h = hash(R || A || M) (mod q).
fn challenge(big_r: &[u8; 32], a_point: &[u8; 32], message: &[u8]) -> Scalar {
    let mut h = Sha512::new();
    h.update(big_r);
    h.update(a_point);
    h.update(message);
    let wide: [u8; 64] = h.finalize().into();
    Scalar::from_bytes_mod_order_wide(&wide)
}

/// p = 2^255 − 19, little-endian.
const P: [u8; 32] = {
    let mut p = [0xffu8; 32];
    p[0] = 0xed;
    p[31] = 0x7f;
    p
};

/// Whether `u`, little-endian, is below p (a canonical field element).
fn below_p(u: &[u8; 32]) -> bool {
    for i in (0..32).rev() {
        if u[i] != P[i] {
            return u[i] < P[i];
        }
    }
    false
}

/// Checks a signature of `message` against the X25519 public key (`xeddsa_verify`, spec §3,
/// with the two stricter checks named in the module's documentation).
pub fn verify(public: &PublicKey, message: &[u8], sig: &[u8; SIGNATURE_LEN]) -> bool {
    verify_with_sign_bit(public, 0, message, sig)
}

/// `xeddsa_verify` with the Edwards sign bit of A chosen (the spec fixes it to 0; libsignal
/// carries it in the signature, which lets the tests check libsignal's vector).
fn verify_with_sign_bit(
    public: &PublicKey,
    sign_bit: u8,
    message: &[u8],
    sig: &[u8; SIGNATURE_LEN],
) -> bool {
    // if u ≥ p or R.y ≥ 2^|p| or s ≥ 2^|q|: return false. R.y < 2^255 always holds for
    // 32 bytes with the sign bit on top; `from_canonical_bytes` asks s < q < 2^253.
    if !below_p(&public.0) {
        return false;
    }
    let mut big_r = [0u8; 32];
    big_r.copy_from_slice(&sig[..32]);
    let mut s_bytes = [0u8; 32];
    s_bytes.copy_from_slice(&sig[32..]);
    let Some(s) = Option::<Scalar>::from(Scalar::from_canonical_bytes(s_bytes)) else {
        return false;
    };
    // A = convert_mont(u); if not on_curve(A): return false
    let Some(a) = MontgomeryPoint(public.0).to_edwards(sign_bit) else {
        return false;
    };
    if a.is_small_order() {
        return false;
    }
    let a_point = a.compress().to_bytes();
    // h = hash(R || A || M) (mod q); Rcheck = sB − hA; return R == Rcheck (as bytes)
    let h = challenge(&big_r, &a_point, message);
    let r_check = EdwardsPoint::vartime_double_scalar_mul_basepoint(&h, &-a, &s);
    r_check.compress().to_bytes() == big_r
}

/// Why a roster update was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// The update's version is not above the roster's.
    NotNewer {
        /// Version of our current roster.
        have: u64,
        /// Version of the update.
        got: u64,
    },
    /// The update names a signer who is not a member of our current roster.
    UnknownSigner(String),
    /// The signature does not match the named signer's key, or the bytes were changed.
    BadSignature(String),
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refusal::NotNewer { have, got } => write!(
                f,
                "roster update refused: its version {got} is not newer than ours ({have})"
            ),
            Refusal::UnknownSigner(name) => write!(
                f,
                "roster update refused: signed by {name:?}, who is not a member of our roster"
            ),
            Refusal::BadSignature(name) => write!(
                f,
                "roster update refused: the signature does not match {name:?}'s key \
                 (forged or damaged)"
            ),
        }
    }
}

impl std::error::Error for Refusal {}

/// The bytes a roster update's signature covers: a label, the version, the signer's name
/// and the update's canonical bytes, each length-prefixed, so that a signature can be moved
/// neither to another version nor to another signer, nor to another use of the same key.
pub fn update_signing_input(version: u64, signed_by: &str, canonical_bytes: &[u8]) -> Vec<u8> {
    let mut m =
        Vec::with_capacity(UPDATE_LABEL.len() + 24 + signed_by.len() + canonical_bytes.len());
    m.extend_from_slice(UPDATE_LABEL);
    m.extend_from_slice(&version.to_be_bytes());
    m.extend_from_slice(&(signed_by.len() as u64).to_be_bytes());
    m.extend_from_slice(signed_by.as_bytes());
    m.extend_from_slice(&(canonical_bytes.len() as u64).to_be_bytes());
    m.extend_from_slice(canonical_bytes);
    m
}

/// Signs a roster update as member `signed_by` (over [`update_signing_input`]).
pub fn sign_update(
    private: &PrivateKey,
    version: u64,
    signed_by: &str,
    canonical_bytes: &[u8],
) -> [u8; SIGNATURE_LEN] {
    sign(
        private,
        &update_signing_input(version, signed_by, canonical_bytes),
    )
}

/// Whether a window whose roster is at `current_version` with `current_members` accepts an
/// update to `update_version` signed by `signed_by`.
///
/// Checked in order: the update is newer; the signer is a member of the current roster;
/// the signature (made by [`sign_update`]) verifies with that member's key. Should the
/// roster name a member twice, a signature that verifies with either key is accepted.
pub fn accept_update(
    current_version: u64,
    current_members: &[(String, PublicKey)],
    update_version: u64,
    signed_by: &str,
    canonical_bytes: &[u8],
    signature: &[u8; SIGNATURE_LEN],
) -> Result<(), Refusal> {
    if update_version <= current_version {
        return Err(Refusal::NotNewer {
            have: current_version,
            got: update_version,
        });
    }
    let mut keys = current_members
        .iter()
        .filter(|(name, _)| name == signed_by)
        .map(|(_, key)| key)
        .peekable();
    if keys.peek().is_none() {
        return Err(Refusal::UnknownSigner(signed_by.to_string()));
    }
    let message = update_signing_input(update_version, signed_by, canonical_bytes);
    if keys.any(|key| verify(key, &message, signature)) {
        Ok(())
    } else {
        Err(Refusal::BadSignature(signed_by.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::tests::hex32;

    /// A fixed key (RFC 7748 §6.1, Alice), so failures reproduce.
    fn alice() -> PrivateKey {
        PrivateKey::from_bytes(hex32(
            "77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a",
        ))
    }

    fn bob() -> PrivateKey {
        PrivateKey::from_bytes(hex32(
            "5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb",
        ))
    }

    fn hex64(s: &str) -> [u8; 64] {
        let mut out = [0u8; 64];
        out[..32].copy_from_slice(&hex32(&s[..64]));
        out[32..].copy_from_slice(&hex32(&s[64..]));
        out
    }

    /// libsignal-protocol-c, `xeddsa_fast_test`: the reference implementation's vector.
    /// Key: zero bytes but byte 8 = 189, clamped; message: 200 zero bytes; Z: 64 zero bytes.
    #[test]
    fn reference_vector_signs_and_verifies() {
        let mut k = [0u8; 32];
        k[8] = 189;
        let private = PrivateKey::from_bytes(curve25519_dalek::scalar::clamp_integer(k));
        let msg = [0u8; 200];
        let expected = hex64(
            "11c7f3e6c4df9e8a5150e1db3b30f92de3a3b3aa438656545fa7390f4bcc7bb2\
             6c431d9e90643e4f0eaa0e9c557766fa69ada576d63dcaf2ac326c11d0b97702",
        );
        // E = kB has sign bit 1 here, so a = −k (mod q). (Where E's sign is 0 the reference
        // hashes k unreduced into r, the spec k mod q: both are secret, so both are sound,
        // and r is random anyway; only such a vector would tell them apart.)
        let e = EdwardsPoint::mul_base(&Scalar::from_bytes_mod_order(private.clamped()));
        assert_eq!(e.compress().to_bytes()[31] >> 7, 1);
        let sig = sign_with_random(&private, &msg, &[0u8; 64]);
        assert_eq!(sig, expected);
        assert!(verify(&private.public_key(), &msg, &sig));
        let mut bad = sig;
        bad[0] ^= 1;
        assert!(!verify(&private.public_key(), &msg, &bad));
        // "XEdDSA verify #3": a public key of 0xFF bytes (u ≥ p) is refused.
        assert!(!verify(&PublicKey([0xff; 32]), &msg, &sig));
    }

    /// libsignal's (Rust) `test_signature` vector: libsignal puts A's sign bit in the top
    /// bit of s. With that bit moved back, the equation checked here must accept it.
    #[test]
    fn libsignal_vector_verifies_with_its_sign_bit() {
        let public = PublicKey(hex32(
            "ab7e717d4a163b7d9a1d8071dfe9dcf8cdcd1cea3339b6356be84d887e322c64",
        ));
        let private = PrivateKey::from_bytes(hex32(
            "c097248412e58bf05df487968205132794178e367637f5818f81e0e6ce73e865",
        ));
        assert_eq!(private.public_key(), public);
        let mut msg = vec![0x05];
        msg.extend_from_slice(&hex32(
            "edce9d9c415ca78cb7252e72c2c4a554d3eb29485a0e1d503118d1a82d99fb4a",
        ));
        let mut sig = hex64(
            "5de88ca9a89b4a115da79109c67c9c7464a3e4180274f1cb8c63c2984e286dfb\
             ede82deb9dcd9fae0bfbb821569b3d9001bd8130cd11d486cef047bd60b86e88",
        );
        let sign_bit = sig[63] >> 7;
        assert_eq!(sign_bit, 1, "this vector has the sign bit set");
        // As sent, the spec verifier refuses it (s ≥ 2^253).
        assert!(!verify(&public, &msg, &sig));
        sig[63] &= 0x7f;
        assert!(verify_with_sign_bit(&public, sign_bit, &msg, &sig));
        assert!(!verify_with_sign_bit(&public, 0, &msg, &sig));
    }

    #[test]
    fn round_trip_and_montgomery_public_key() {
        for private in [alice(), bob(), PrivateKey::generate().unwrap()] {
            // The verifier has only the X25519 (Montgomery) public key, as WireGuard has.
            let public = private.public_key();
            for msg in [&b""[..], b"roster v2", &[0xa5; 1000]] {
                let sig = sign(&private, msg);
                assert!(verify(&public, msg, &sig));
            }
        }
    }

    #[test]
    fn signatures_are_randomized_but_all_verify() {
        let a = sign(&alice(), b"m");
        let b = sign(&alice(), b"m");
        assert_ne!(a, b);
        assert!(verify(&alice().public_key(), b"m", &a));
        assert!(verify(&alice().public_key(), b"m", &b));
    }

    #[test]
    fn unclamped_and_clamped_key_sign_alike() {
        // WireGuard clamps on use: a key written unclamped is the same key.
        let raw = alice();
        let clamped = PrivateKey::from_bytes(raw.clamped());
        let z = [7u8; 64];
        assert_eq!(
            sign_with_random(&raw, b"x", &z),
            sign_with_random(&clamped, b"x", &z)
        );
    }

    #[test]
    fn wrong_key_fails() {
        let sig = sign(&alice(), b"hello");
        assert!(!verify(&bob().public_key(), b"hello", &sig));
    }

    #[test]
    fn every_flipped_bit_of_message_or_signature_fails() {
        let private = alice();
        let public = private.public_key();
        let msg = b"roster version 7: hackerspace-a, makerspace-b".to_vec();
        let sig = sign(&private, &msg);
        assert!(verify(&public, &msg, &sig));
        for i in 0..msg.len() * 8 {
            let mut m = msg.clone();
            m[i / 8] ^= 1 << (i % 8);
            assert!(!verify(&public, &m, &sig), "message bit {i}");
        }
        for i in 0..SIGNATURE_LEN * 8 {
            let mut s = sig;
            s[i / 8] ^= 1 << (i % 8);
            assert!(!verify(&public, &msg, &s), "signature bit {i}");
        }
        for i in 0..32 * 8 {
            let mut p = public;
            p.0[i / 8] ^= 1 << (i % 8);
            assert!(!verify(&p, &msg, &sig), "public key bit {i}");
        }
    }

    #[test]
    fn malleated_s_is_refused() {
        // s + q verifies in the bare equation; we require s < q (RFC 8032 §5.1.7).
        let private = alice();
        let msg = b"m";
        let sig = sign(&private, msg);
        let q = hex32("edd3f55c1a631258d69cf7a2def9de1400000000000000000000000000000010");
        let mut s_plus_q = [0u8; 32];
        let mut carry = 0u16;
        for i in 0..32 {
            let v = sig[32 + i] as u16 + q[i] as u16 + carry;
            s_plus_q[i] = v as u8;
            carry = v >> 8;
        }
        let mut forged = sig;
        forged[32..].copy_from_slice(&s_plus_q);
        assert!(!verify(&private.public_key(), msg, &forged));
    }

    #[test]
    fn degenerate_public_keys_are_refused() {
        let sig = sign(&alice(), b"m");
        let mut p_minus_1 = [0xff; 32];
        p_minus_1[0] = 0xec;
        p_minus_1[31] = 0x7f;
        let mut p = p_minus_1;
        p[0] = 0xed;
        let mut one = [0u8; 32];
        one[0] = 1;
        for u in [[0u8; 32], one, p_minus_1, p, [0xff; 32]] {
            assert!(!verify(&PublicKey(u), b"m", &sig));
        }
        // u = 0 is a point of small order: anyone could "sign" for it; we refuse it.
        let zero_sig = [0u8; 64];
        assert!(!verify(&PublicKey([0u8; 32]), b"m", &zero_sig));
    }

    #[test]
    fn below_p_is_exact() {
        let mut p = [0xff; 32];
        p[0] = 0xed;
        p[31] = 0x7f;
        assert!(!below_p(&p));
        let mut pm1 = p;
        pm1[0] = 0xec;
        assert!(below_p(&pm1));
        assert!(below_p(&[0u8; 32]));
        let mut x = [0u8; 32];
        x[31] = 0x80;
        assert!(!below_p(&x));
        let mut y = p;
        y[5] = 0xfe;
        assert!(below_p(&y));
    }

    #[test]
    fn random_bytes_never_panic_verify() {
        let mut buf = [0u8; 32 + 64 + 16];
        for _ in 0..200 {
            getrandom::fill(&mut buf).unwrap();
            let mut p = [0u8; 32];
            p.copy_from_slice(&buf[..32]);
            let mut s = [0u8; 64];
            s.copy_from_slice(&buf[32..96]);
            assert!(!verify(&PublicKey(p), &buf[96..], &s));
        }
    }

    fn members() -> Vec<(String, PublicKey)> {
        vec![
            ("alpha".to_string(), alice().public_key()),
            ("beta".to_string(), bob().public_key()),
        ]
    }

    #[test]
    fn accepts_newer_update_signed_by_member() {
        let body = b"{\"members\":[...]}";
        let sig = sign_update(&bob(), 8, "beta", body);
        assert_eq!(accept_update(7, &members(), 8, "beta", body, &sig), Ok(()));
        // Skipping versions is fine: newer is newer.
        let sig = sign_update(&alice(), 100, "alpha", body);
        assert_eq!(
            accept_update(7, &members(), 100, "alpha", body, &sig),
            Ok(())
        );
    }

    #[test]
    fn refuses_same_or_older_version() {
        let body = b"x";
        for v in [0, 6, 7] {
            let sig = sign_update(&bob(), v, "beta", body);
            assert_eq!(
                accept_update(7, &members(), v, "beta", body, &sig),
                Err(Refusal::NotNewer { have: 7, got: v })
            );
        }
        let sig = sign_update(&bob(), u64::MAX, "beta", body);
        assert_eq!(
            accept_update(u64::MAX, &members(), u64::MAX, "beta", body, &sig),
            Err(Refusal::NotNewer {
                have: u64::MAX,
                got: u64::MAX
            })
        );
    }

    #[test]
    fn refuses_unknown_signer() {
        let outsider = PrivateKey::generate().unwrap();
        let sig = sign_update(&outsider, 8, "gamma", b"x");
        assert_eq!(
            accept_update(7, &members(), 8, "gamma", b"x", &sig),
            Err(Refusal::UnknownSigner("gamma".into()))
        );
        assert_eq!(
            accept_update(7, &[], 8, "alpha", b"x", &sig),
            Err(Refusal::UnknownSigner("alpha".into()))
        );
        // Names are compared exactly.
        let sig = sign_update(&alice(), 8, "Alpha", b"x");
        assert_eq!(
            accept_update(7, &members(), 8, "Alpha", b"x", &sig),
            Err(Refusal::UnknownSigner("Alpha".into()))
        );
    }

    #[test]
    fn refuses_bad_signature() {
        let body = b"members: alpha, beta";
        // Signed by someone else's key under a member's name.
        let outsider = PrivateKey::generate().unwrap();
        let sig = sign_update(&outsider, 8, "alpha", body);
        assert_eq!(
            accept_update(7, &members(), 8, "alpha", body, &sig),
            Err(Refusal::BadSignature("alpha".into()))
        );
        // A member's signature claimed for another member.
        let sig = sign_update(&bob(), 8, "beta", body);
        assert_eq!(
            accept_update(7, &members(), 8, "alpha", body, &sig),
            Err(Refusal::BadSignature("alpha".into()))
        );
        // Changed body, bumped version (replay as newer), garbage signature.
        assert_eq!(
            accept_update(7, &members(), 8, "beta", b"members: beta", &sig),
            Err(Refusal::BadSignature("beta".into()))
        );
        assert_eq!(
            accept_update(8, &members(), 9, "beta", body, &sig),
            Err(Refusal::BadSignature("beta".into()))
        );
        assert_eq!(
            accept_update(7, &members(), 8, "beta", body, &[0u8; 64]),
            Err(Refusal::BadSignature("beta".into()))
        );
        // A raw signature of the body alone (no label, version, signer) is refused.
        let raw = sign(&bob(), body);
        assert_eq!(
            accept_update(7, &members(), 8, "beta", body, &raw),
            Err(Refusal::BadSignature("beta".into()))
        );
    }

    #[test]
    fn duplicate_name_accepts_either_key() {
        let mut m = members();
        m.push(("alpha".to_string(), bob().public_key()));
        let sig = sign_update(&bob(), 8, "alpha", b"x");
        assert_eq!(accept_update(7, &m, 8, "alpha", b"x", &sig), Ok(()));
    }

    #[test]
    fn signing_input_separates_fields() {
        // "ab" + "c" and "a" + "bc" must differ: lengths are part of the input.
        assert_ne!(
            update_signing_input(1, "ab", b"c"),
            update_signing_input(1, "a", b"bc")
        );
        assert_ne!(
            update_signing_input(1, "a", b""),
            update_signing_input(2, "a", b"")
        );
        assert!(update_signing_input(1, "a", b"").starts_with(UPDATE_LABEL));
    }

    #[test]
    fn refusal_messages_are_clear() {
        assert_eq!(
            Refusal::NotNewer { have: 7, got: 5 }.to_string(),
            "roster update refused: its version 5 is not newer than ours (7)"
        );
        assert_eq!(
            Refusal::UnknownSigner("gamma".into()).to_string(),
            "roster update refused: signed by \"gamma\", who is not a member of our roster"
        );
        assert_eq!(
            Refusal::BadSignature("alpha".into()).to_string(),
            "roster update refused: the signature does not match \"alpha\"'s key \
             (forged or damaged)"
        );
    }
}
