//! SDES-SRTP keying (RFC 4568): our SRTP policy ([`SrtpMode`]), the suites
//! ([`CryptoSuite`]), our key material ([`LocalKeys`]), the `a=crypto` lines
//! we write and read, and what is agreed per stream ([`Srtp`]); the profile
//! predicates (`RTP/SAVP`, SDES-capable profiles).

use std::fmt;

use ::sdp::description::media::MediaDescription;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig, STANDARD};
use base64::engine::DecodePaddingMode;
use base64::Engine as _;

use super::text::{attr_values, clip, profile_of};
use super::SdpError;

/// Whether and how we use SRTP (SDES, RFC 4568).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SrtpMode {
    /// Only SRTP: we offer `RTP/SAVP` with `a=crypto`, and refuse (488)
    /// offers and answers without usable crypto (baresip `srtp-mand`).
    Required,
    /// SRTP when the peer wants it: we offer `RTP/AVP` plus `a=crypto`
    /// (baresip `srtp`), accept crypto in offers, fall back to plain RTP.
    Optional,
    /// Plain RTP only: no `a=crypto` offered; `RTP/SAVP` offers get 488,
    /// `a=crypto` in `RTP/AVP` offers is ignored.
    Off,
}

impl SrtpMode {
    /// Name used on the command line: `required`, `optional`, `off`.
    pub fn name(self) -> &'static str {
        match self {
            SrtpMode::Required => "required",
            SrtpMode::Optional => "optional",
            SrtpMode::Off => "off",
        }
    }
}

impl fmt::Display for SrtpMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// An SRTP crypto suite usable with SDES (RFC 4568, RFC 6188).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CryptoSuite {
    /// `AES_CM_128_HMAC_SHA1_80`: AES-128 counter mode, 80-bit auth tag.
    AesCm128HmacSha1_80,
    /// `AES_CM_128_HMAC_SHA1_32`: AES-128 counter mode, 32-bit auth tag.
    AesCm128HmacSha1_32,
    /// `AES_256_CM_HMAC_SHA1_80`: AES-256 counter mode, 80-bit auth tag.
    Aes256CmHmacSha1_80,
    /// `AES_256_CM_HMAC_SHA1_32`: AES-256 counter mode, 32-bit auth tag.
    Aes256CmHmacSha1_32,
}

impl CryptoSuite {
    /// Every supported suite.
    pub const ALL: [CryptoSuite; 4] = [
        CryptoSuite::AesCm128HmacSha1_80,
        CryptoSuite::AesCm128HmacSha1_32,
        CryptoSuite::Aes256CmHmacSha1_80,
        CryptoSuite::Aes256CmHmacSha1_32,
    ];

    /// The SDES suite name, as written in `a=crypto`.
    pub fn name(self) -> &'static str {
        match self {
            CryptoSuite::AesCm128HmacSha1_80 => "AES_CM_128_HMAC_SHA1_80",
            CryptoSuite::AesCm128HmacSha1_32 => "AES_CM_128_HMAC_SHA1_32",
            CryptoSuite::Aes256CmHmacSha1_80 => "AES_256_CM_HMAC_SHA1_80",
            CryptoSuite::Aes256CmHmacSha1_32 => "AES_256_CM_HMAC_SHA1_32",
        }
    }

    /// The suite with that SDES name (compared case-insensitively).
    pub fn from_name(name: &str) -> Option<CryptoSuite> {
        CryptoSuite::ALL
            .into_iter()
            .find(|s| s.name().eq_ignore_ascii_case(name))
    }

    /// Length in bytes of the `inline:` key material: master key plus
    /// 14-byte master salt (30 for AES-128, 46 for AES-256).
    pub fn key_len(self) -> usize {
        match self {
            CryptoSuite::AesCm128HmacSha1_80 | CryptoSuite::AesCm128HmacSha1_32 => 16 + 14,
            CryptoSuite::Aes256CmHmacSha1_80 | CryptoSuite::Aes256CmHmacSha1_32 => 32 + 14,
        }
    }
}

impl fmt::Display for CryptoSuite {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// SRTP parameters agreed for one stream.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Srtp {
    /// The crypto suite, the same in both directions.
    pub suite: CryptoSuite,
    /// The `a=crypto` tag of the agreed line (the offerer's numbering).
    pub tag: u32,
    /// Master key followed by master salt that we encrypt with
    /// ([`CryptoSuite::key_len`] bytes), as sent in our `a=crypto`.
    pub local_key: Vec<u8>,
    /// Master key followed by master salt the peer encrypts with, from its
    /// `a=crypto` (decrypt what it sends with this).
    pub remote_key: Vec<u8>,
}

/// Key material for our a=crypto lines: 46 random bytes per m-line, supplied
/// by the caller (the module has no RNG); each suite uses its first
/// [`CryptoSuite::key_len`] bytes. Use fresh random bytes for every offer or
/// answer that carries new keys.
#[derive(Clone)]
pub struct LocalKeys {
    /// Key material for the audio stream.
    pub audio: [u8; 46],
    /// Key material for the video stream.
    pub video: [u8; 46],
}

impl std::fmt::Debug for LocalKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Keys never reach a log.
        f.write_str("LocalKeys { .. }")
    }
}

/// Our SDES parameters for one negotiation: the mode, the suites we offer
/// (deduplicated, empty when off; tag = index + 1) and our key material.
pub(super) struct Sdes<'a> {
    pub(super) mode: SrtpMode,
    pub(super) suites: Vec<CryptoSuite>,
    pub(super) keys: &'a LocalKeys,
}

impl Sdes<'_> {
    /// Our key material for the audio or the video stream.
    fn key(&self, video: bool) -> &[u8; 46] {
        if video {
            &self.keys.video
        } else {
            &self.keys.audio
        }
    }

    /// Profile of our offered m-lines.
    pub(super) fn offer_profile(&self) -> &'static str {
        if self.mode == SrtpMode::Required {
            "RTP/SAVP"
        } else {
            "RTP/AVP"
        }
    }

    /// The `a=crypto` values of our offer for a stream, tags 1, 2...
    pub(super) fn offer_crypto(&self, video: bool) -> Vec<String> {
        self.suites
            .iter()
            .enumerate()
            .map(|(i, suite)| crypto_value(i as u32 + 1, *suite, self.key(video)))
            .collect()
    }
}

/// Base64 decoder for `inline:` keys: standard alphabet, padding optional
/// (some peers leave it out).
const KEY_BASE64: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// A usable `a=crypto` line.
#[derive(Debug)]
pub(super) struct CryptoLine {
    tag: u32,
    suite: CryptoSuite,
    key: Vec<u8>,
}

/// The value of an `a=crypto` attribute: `TAG SUITE inline:KEY`, the key
/// being the first `key_len()` bytes of `key` in padded standard base64.
fn crypto_value(tag: u32, suite: CryptoSuite, key: &[u8]) -> String {
    let key = key.get(..suite.key_len()).unwrap_or(key);
    format!("{tag} {} inline:{}", suite.name(), STANDARD.encode(key))
}

impl Srtp {
    /// Our `a=crypto` value answering with these parameters.
    pub(super) fn answer_crypto(&self) -> String {
        crypto_value(self.tag, self.suite, &self.local_key)
    }
}

/// Parses an `a=crypto` value `TAG SUITE inline:KEY[|LIFETIME][|MKI:LEN]
/// [SESSION-PARAMS]`. Only the first key parameter is used; lifetime, MKI
/// and session parameters are ignored. Errors say why the line is unusable.
pub(super) fn parse_crypto(value: &str) -> Result<CryptoLine, String> {
    let mut tokens = value.split_whitespace();
    let tag_token = tokens.next().ok_or("empty a=crypto")?;
    let tag = Some(tag_token)
        .filter(|t| t.len() <= 9 && t.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|t| t.parse::<u32>().ok())
        .ok_or_else(|| format!("bad a=crypto tag {:?}", clip(tag_token)))?;
    let suite_token = tokens.next().ok_or("a=crypto without suite")?;
    let suite = CryptoSuite::from_name(suite_token)
        .ok_or_else(|| format!("unsupported crypto suite {:?}", clip(suite_token)))?;
    let params = tokens.next().ok_or("a=crypto without key")?;
    let first = params.split(';').next().unwrap_or("");
    let info = first
        .split_once(':')
        .filter(|(method, _)| method.eq_ignore_ascii_case("inline"))
        .map(|(_, info)| info)
        .ok_or_else(|| format!("a=crypto key method is not inline: {:?}", clip(first)))?;
    let encoded = info.split('|').next().unwrap_or("");
    let key = KEY_BASE64
        .decode(encoded)
        .map_err(|_| format!("a=crypto key {:?} is not base64", clip(encoded)))?;
    if key.len() != suite.key_len() {
        return Err(format!(
            "{suite} key of {} bytes, expected {}",
            key.len(),
            suite.key_len()
        ));
    }
    Ok(CryptoLine { tag, suite, key })
}

/// Whether a profile asks for SRTP (`SAVP` in it).
pub(super) fn is_secure_profile(profile: &str) -> bool {
    profile.to_ascii_uppercase().contains("SAVP")
}

/// Whether SDES keys can be used with a profile: plain `RTP/(S)AVP(F)`, not
/// the DTLS profiles behind `UDP/TLS/`.
fn is_sdes_profile(profile: &str) -> bool {
    ["RTP/AVP", "RTP/AVPF", "RTP/SAVP", "RTP/SAVPF"]
        .iter()
        .any(|p| p.eq_ignore_ascii_case(profile))
}

/// SRTP for an offered stream we answer: `Ok(None)` is plain RTP,
/// `Err(SrtpRequired)` means the stream cannot be accepted.
pub(super) fn answer_crypto(
    media: &MediaDescription,
    sdes: &Sdes,
    video: bool,
) -> Result<Option<Srtp>, SdpError> {
    let profile = profile_of(media);
    let secure = is_secure_profile(&profile);
    if sdes.mode == SrtpMode::Off {
        return if secure {
            Err(SdpError::SrtpOff)
        } else {
            Ok(None)
        };
    }
    let found = if is_sdes_profile(&profile) {
        media
            .attributes
            .iter()
            .filter(|a| a.key.trim().eq_ignore_ascii_case("crypto"))
            .filter_map(|a| parse_crypto(a.value.as_deref()?).ok())
            .find(|c| sdes.suites.contains(&c.suite))
    } else {
        None
    };
    match found {
        Some(c) => Ok(Some(Srtp {
            suite: c.suite,
            tag: c.tag,
            local_key: sdes.key(video)[..c.suite.key_len()].to_vec(),
            remote_key: c.key,
        })),
        None if secure || sdes.mode == SrtpMode::Required => Err(SdpError::SrtpRequired),
        None => Ok(None),
    }
}

/// SRTP for a stream of an answer to our offer: `Ok(None)` is plain RTP.
pub(super) fn read_crypto(
    media: &MediaDescription,
    sdes: &Sdes,
    video: bool,
) -> Result<Option<Srtp>, SdpError> {
    let profile = profile_of(media);
    let mut problem: Option<String> = None;
    if is_sdes_profile(&profile) {
        for value in attr_values(&media.attributes, "crypto") {
            match parse_crypto(&value) {
                Ok(c) => {
                    let offered = usize::try_from(c.tag)
                        .ok()
                        .and_then(|t| t.checked_sub(1))
                        .and_then(|i| sdes.suites.get(i));
                    if offered == Some(&c.suite) {
                        return Ok(Some(Srtp {
                            suite: c.suite,
                            tag: c.tag,
                            local_key: sdes.key(video)[..c.suite.key_len()].to_vec(),
                            remote_key: c.key,
                        }));
                    }
                    problem.get_or_insert_with(|| {
                        format!("tag {} with {} was not offered", c.tag, c.suite)
                    });
                }
                Err(e) => {
                    problem.get_or_insert(e);
                }
            }
        }
    }
    if sdes.mode == SrtpMode::Off && is_secure_profile(&profile) {
        return Err(SdpError::SrtpOff);
    }
    if sdes.mode == SrtpMode::Required || is_secure_profile(&profile) {
        return Err(match problem {
            Some(p) => SdpError::BadCrypto(p),
            None => SdpError::SrtpRequired,
        });
    }
    Ok(None)
}
