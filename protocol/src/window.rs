//! The window file, `/data/ewindow/window.toml`: who this window is, which windows it knows
//! (the roster) and how they are reached; and the overlay addresses every window derives from a
//! member's WireGuard public key.
//!
//! Pure: [`parse`] takes the file name, its text and (optionally) this window's own public key
//! and does no IO; [`load`] only adds the read. Every error names the file, the line and the key
//! (``window.toml:12: key `member[2].public_key`: decodes to 31 bytes, a WireGuard key has 32``),
//! so a mistake on a window on the wall can be found from a log. [`to_toml`] writes a config
//! back; `parse(to_toml(c))` gives `c` again.
//!
//! ```toml
//! [window]
//! name = "fablab-lyon"           # this window's member name
//! listen_port = 51820            # WireGuard UDP port (default 51820)
//! open_hours = "08:00-20:00"     # or "always" (default); "22:00-06:00" runs over midnight
//! partner = "coworking-nantes"   # optional: the member this window calls
//! presence_interval_s = 10       # optional, 1 to 3600 (default 10)
//!
//! [roster]                       # optional; defaults: version 0, unsigned
//! version = 3
//! signed_by = "fablab-lyon"      # present if and only if signature is
//! signature = "base64 of 64 bytes"
//!
//! [[member]]
//! name = "fablab-lyon"
//! public_key = "HIgo9xNzJMWLKASShiTqIybxZ0U3wGLiUeJ1PKf8ykw="
//! endpoints = ["192.0.2.1:51820", "lyon.example.org:51820", "[2001:db8::1]:51820"]
//! relay = false                  # optional
//!
//! [[member]]
//! name = "coworking-nantes"
//! public_key = "..."
//! ```
//!
//! Names ([`validate_name`]) are 1 to 32 of `a-z`, `0-9` and `-`, starting with a letter or a
//! digit: they are SIP user names and appear in messages.
//!
//! **Invariant:** a [`WindowConfig`] that [`parse`] returned is valid: every name is
//! well-formed, member names and public keys are unique, no two members share an IPv4 overlay
//! address, `window.name` is a member (whose key is the window's own key when that was given),
//! `partner` is another member, `signed_by` is a member and comes with a 64-byte signature,
//! every endpoint has a host and a non-zero port. The signature itself is not checked here.
//!
//! **Protocol:** [`overlay_v6`], [`overlay_v4`] and [`Roster::canonical_bytes`] are computed
//! the same way by every window, forever; changing them is a protocol change.

use std::collections::HashMap;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::ops::Range;
use std::path::Path;
use std::str::FromStr;

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha2::{Digest, Sha256};

pub use crate::button::Button;
use crate::button::RawButton;
use crate::config::line_of;
pub use crate::config::ConfigError;
use toml::Spanned;

/// `window.listen_port` when the file does not say.
pub const DEFAULT_LISTEN_PORT: u16 = 51820;
/// `window.presence_interval_s` when the file does not say.
pub const DEFAULT_PRESENCE_INTERVAL_S: u32 = 10;
/// The largest `window.presence_interval_s`.
pub const MAX_PRESENCE_INTERVAL_S: u32 = 3600;
/// The longest member name, in characters.
pub const MAX_NAME_LEN: usize = 32;

/// The IPv6 overlay prefix `fd77:696e:646f:0::/64`: a unique local address (RFC 4193) whose
/// global id is the ASCII of `windo`, subnet 0.
pub const OVERLAY_V6_PREFIX: Ipv6Addr = Ipv6Addr::new(0xfd77, 0x696e, 0x646f, 0, 0, 0, 0, 0);
/// Length of [`OVERLAY_V6_PREFIX`] in bits.
pub const OVERLAY_V6_PREFIX_LEN: u8 = 64;
/// The IPv4 overlay prefix `10.77.0.0/16`.
pub const OVERLAY_V4_PREFIX: Ipv4Addr = Ipv4Addr::new(10, 77, 0, 0);
/// Length of [`OVERLAY_V4_PREFIX`] in bits.
pub const OVERLAY_V4_PREFIX_LEN: u8 = 16;
/// The first bytes of [`Roster::canonical_bytes`]: they say what the signed bytes are.
pub const ROSTER_CANONICAL_MAGIC: &[u8] = b"ewindow-roster-v1\0";

const OVERLAY_V6_DOMAIN: &[u8] = b"ewindow-overlay-v6\0";
const OVERLAY_V4_DOMAIN: &[u8] = b"ewindow-overlay-v4\0";

/// A WireGuard (Curve25519) public key: 32 bytes, written as 44 characters of standard base64
/// with `=` padding, as `wg pubkey` prints it. Display, `Debug` and serde use that form.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PublicKey(pub [u8; 32]);

/// Why a text is not a WireGuard public key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    /// Not standard base64 with padding.
    #[error("not base64: a WireGuard key is 44 characters of base64 ending in `=`, as `wg pubkey` prints it")]
    NotBase64,
    /// Base64, but not of 32 bytes.
    #[error("decodes to {0} bytes, a WireGuard key has 32")]
    WrongLength(usize),
}

impl PublicKey {
    /// Decodes a key from standard base64 (surrounding whitespace is ignored).
    pub fn from_base64(text: &str) -> Result<PublicKey, KeyError> {
        let bytes = BASE64
            .decode(text.trim())
            .map_err(|_| KeyError::NotBase64)?;
        let bytes: [u8; 32] = bytes
            .as_slice()
            .try_into()
            .map_err(|_| KeyError::WrongLength(bytes.len()))?;
        Ok(PublicKey(bytes))
    }

    /// The 44-character standard base64 form.
    pub fn to_base64(&self) -> String {
        BASE64.encode(self.0)
    }
}

impl FromStr for PublicKey {
    type Err = KeyError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        PublicKey::from_base64(s)
    }
}

impl fmt::Display for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_base64())
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey({})", self.to_base64())
    }
}

impl Serialize for PublicKey {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_base64())
    }
}

impl<'de> Deserialize<'de> for PublicKey {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        PublicKey::from_base64(&text).map_err(serde::de::Error::custom)
    }
}

/// The IPv6 overlay address of a key: [`OVERLAY_V6_PREFIX`] followed by an interface id of the
/// first 8 bytes of SHA-256(`"ewindow-overlay-v6\0"` ‖ the 32 key bytes).
///
/// Stable forever (every window computes every member's address this way). Two distinct keys
/// sharing an address (a 2⁻⁶⁴ chance per pair) is not checked.
pub fn overlay_v6(key: &PublicKey) -> Ipv6Addr {
    let h = Sha256::new()
        .chain_update(OVERLAY_V6_DOMAIN)
        .chain_update(key.0)
        .finalize();
    let mut octets = OVERLAY_V6_PREFIX.octets();
    for (o, b) in octets[8..].iter_mut().zip(h.iter()) {
        *o = *b;
    }
    Ipv6Addr::from(octets)
}

/// The IPv4 overlay address of a key: `10.77.a.b` where, with h = SHA-256(
/// `"ewindow-overlay-v4\0"` ‖ the 32 key bytes), `a = h[0]` and `b = 1 + h[1] mod 254`.
///
/// So `b` is never 0 or 255 (no address ends like a network or a broadcast address) and there
/// are 256 × 254 = 65 024 addresses: collisions are possible (about 1 in 340 for a roster of 20
/// windows), so roster validation refuses two members with the same address and the second one
/// must generate a new key. Stable forever.
pub fn overlay_v4(key: &PublicKey) -> Ipv4Addr {
    let h = Sha256::new()
        .chain_update(OVERLAY_V4_DOMAIN)
        .chain_update(key.0)
        .finalize();
    Ipv4Addr::new(10, 77, h[0], 1 + h[1] % 254)
}

/// Checks a window (member) name: 1 to [`MAX_NAME_LEN`] characters of `a-z`, `0-9` and `-`,
/// the first a letter or a digit (`[a-z0-9][a-z0-9-]{0,31}`). The error says what is wrong,
/// without naming a key.
pub fn validate_name(name: &str) -> Result<(), String> {
    const RULE: &str = "a name is 1 to 32 of a-z, 0-9 and `-`, starting with a letter or digit";
    if name.is_empty() {
        return Err(format!("is empty; {RULE}"));
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-'))
    {
        let hint = if c.is_ascii_uppercase() {
            " (names are lowercase)"
        } else {
            ""
        };
        return Err(format!("`{name}` contains {c:?}{hint}; {RULE}"));
    }
    if name.starts_with('-') {
        return Err(format!("`{name}` starts with `-`; {RULE}"));
    }
    if name.len() > MAX_NAME_LEN {
        return Err(format!(
            "`{name}` is {} characters long; {RULE}",
            name.len()
        ));
    }
    Ok(())
}

/// Where a member can be reached: `host:port`. The host is an IPv4 address, an IPv6 address
/// (written in brackets, `[2001:db8::1]:51820`, and stored here without them) or a DNS name.
///
/// Parsing stores hosts in a canonical form: addresses as Rust prints them
/// (`2001:db8::1`), DNS names in lowercase. Display gives back `host:port`, with brackets
/// for IPv6; serde uses that string.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Endpoint {
    /// IPv4 address, IPv6 address (no brackets) or DNS name.
    pub host: String,
    /// UDP port, never 0.
    pub port: u16,
}

impl Endpoint {
    /// The host as an address, when it is one (not a DNS name).
    pub fn ip(&self) -> Option<IpAddr> {
        self.host.parse().ok()
    }
}

impl FromStr for Endpoint {
    type Err = String;
    /// Parses `host:port`; the error says what is wrong and shows the accepted forms.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        const FORMS: &str =
            "\"192.0.2.1:51820\", \"lyon.example.org:51820\" or \"[2001:db8::1]:51820\"";
        if s.is_empty() {
            return Err(format!("is empty; expected host:port, e.g. {FORMS}"));
        }
        let (host, port) = if let Some(rest) = s.strip_prefix('[') {
            let Some((inner, after)) = rest.split_once(']') else {
                return Err(format!(
                    "`{s}` has `[` without `]`; an IPv6 endpoint is written [2001:db8::1]:51820"
                ));
            };
            let Ok(addr) = inner.parse::<Ipv6Addr>() else {
                return Err(format!("`{inner}` in brackets is not an IPv6 address"));
            };
            let Some(port) = after.strip_prefix(':') else {
                return Err(format!(
                    "`{s}` has no port; write [{inner}]:port, e.g. [{inner}]:51820"
                ));
            };
            (addr.to_string(), port)
        } else {
            let Some((host, port)) = s.rsplit_once(':') else {
                return Err(format!(
                    "`{s}` has no port; write host:port, e.g. {s}:51820"
                ));
            };
            if host.contains(':') {
                return Err(format!(
                    "`{s}`: an IPv6 address needs brackets, e.g. [2001:db8::1]:51820"
                ));
            }
            let host = if let Ok(addr) = host.parse::<Ipv4Addr>() {
                addr.to_string()
            } else if is_dns_name(host) {
                host.to_ascii_lowercase()
            } else {
                return Err(format!(
                    "`{host}` is neither an IPv4 address nor a host name (letters, digits, `-` and `.`); expected e.g. {FORMS}"
                ));
            };
            (host, port)
        };
        let port = match port.parse::<u16>() {
            Ok(p) if p != 0 && port.bytes().all(|b| b.is_ascii_digit()) => p,
            _ => {
                return Err(format!(
                    "port `{port}` of `{s}` is not a number from 1 to 65535"
                ))
            }
        };
        Ok(Endpoint { host, port })
    }
}

/// A DNS host name: at most 253 characters, labels of 1 to 63 letters, digits and `-` not
/// starting or ending with `-`, and a last label that is not all digits (so that a mistyped
/// IPv4 address such as `192.0.2.300` is not taken for a name).
fn is_dns_name(host: &str) -> bool {
    if host.is_empty() || host.len() > 253 {
        return false;
    }
    let label_ok = |l: &str| {
        !l.is_empty()
            && l.len() <= 63
            && !l.starts_with('-')
            && !l.ends_with('-')
            && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
    };
    host.split('.').all(label_ok)
        && !host
            .rsplit('.')
            .next()
            .is_some_and(|last| last.bytes().all(|b| b.is_ascii_digit()))
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

impl Serialize for Endpoint {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Endpoint {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// When the window is open for calls, in local time. Written `"always"` or `"HH:MM-HH:MM"`;
/// serde uses that string.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OpenHours {
    /// Open day and night.
    #[default]
    Always,
    /// Open from `start_min` (included) to `end_min` (excluded), minutes after midnight
    /// (0..=1439). An end before the start runs over midnight; the two are never equal.
    Between {
        /// First open minute of the day.
        start_min: u16,
        /// First closed minute after the open period.
        end_min: u16,
    },
}

impl OpenHours {
    /// Whether the window is open at `minute_of_day` (minutes after local midnight; values of
    /// 1440 and more are taken modulo 1440).
    pub fn is_open(&self, minute_of_day: u16) -> bool {
        let m = minute_of_day % 1440;
        match *self {
            OpenHours::Always => true,
            OpenHours::Between { start_min, end_min } if start_min < end_min => {
                start_min <= m && m < end_min
            }
            OpenHours::Between { start_min, end_min } => m >= start_min || m < end_min,
        }
    }
}

impl FromStr for OpenHours {
    type Err = String;
    /// Parses `"always"` or `"HH:MM-HH:MM"` (24-hour clock, two digits each).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        const FORM: &str = "expected \"always\" or \"HH:MM-HH:MM\" such as \"08:00-20:00\"";
        if s == "always" {
            return Ok(OpenHours::Always);
        }
        let Some((start, end)) = s.split_once('-') else {
            return Err(format!("`{s}`: {FORM}"));
        };
        let (Some(start_min), Some(end_min)) = (clock(start), clock(end)) else {
            return Err(format!(
                "`{s}`: {FORM} (hours 00 to 23, minutes 00 to 59; midnight is 00:00)"
            ));
        };
        if start_min == end_min {
            return Err(format!(
                "`{s}` starts and ends at the same time; write \"always\" for day and night"
            ));
        }
        Ok(OpenHours::Between { start_min, end_min })
    }
}

/// `HH:MM` → minutes after midnight.
fn clock(s: &str) -> Option<u16> {
    let b = s.as_bytes();
    if b.len() != 5 || b[2] != b':' {
        return None;
    }
    let two = |hi: u8, lo: u8| {
        (hi.is_ascii_digit() && lo.is_ascii_digit())
            .then(|| u16::from(hi - b'0') * 10 + u16::from(lo - b'0'))
    };
    let (h, m) = (two(b[0], b[1])?, two(b[3], b[4])?);
    (h < 24 && m < 60).then_some(h * 60 + m)
}

impl fmt::Display for OpenHours {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            OpenHours::Always => f.write_str("always"),
            OpenHours::Between { start_min, end_min } => write!(
                f,
                "{:02}:{:02}-{:02}:{:02}",
                start_min / 60,
                start_min % 60,
                end_min / 60,
                end_min % 60
            ),
        }
    }
}

impl Serialize for OpenHours {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for OpenHours {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// One window of the network.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Member {
    /// Unique name ([`validate_name`]).
    pub name: String,
    /// Unique WireGuard public key; the overlay addresses derive from it.
    pub public_key: PublicKey,
    /// Where it can be reached, in order of preference (may be empty: it calls out).
    pub endpoints: Vec<Endpoint>,
    /// Whether it relays traffic between members that cannot reach each other.
    pub relay: bool,
}

impl Member {
    /// This member's IPv6 overlay address ([`overlay_v6`]).
    pub fn overlay_v6(&self) -> Ipv6Addr {
        overlay_v6(&self.public_key)
    }

    /// This member's IPv4 overlay address ([`overlay_v4`]).
    pub fn overlay_v4(&self) -> Ipv4Addr {
        overlay_v4(&self.public_key)
    }
}

/// The windows of the network, with the version and signature of the list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Default)]
pub struct Roster {
    /// Grows with every change of the list; a window keeps the newest it has seen.
    pub version: u64,
    /// The member who signed this version.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signed_by: Option<String>,
    /// The signature over [`Roster::canonical_bytes`] (serde: standard base64).
    #[serde(
        serialize_with = "serialize_signature",
        skip_serializing_if = "Option::is_none"
    )]
    pub signature: Option<[u8; 64]>,
    /// The members, in file order.
    pub members: Vec<Member>,
}

fn serialize_signature<S: Serializer>(sig: &Option<[u8; 64]>, s: S) -> Result<S::Ok, S::Error> {
    match sig {
        Some(sig) => s.serialize_str(&BASE64.encode(sig)),
        None => s.serialize_none(),
    }
}

impl Roster {
    /// The member called `name`.
    pub fn member(&self, name: &str) -> Option<&Member> {
        self.members.iter().find(|m| m.name == name)
    }

    /// The member whose public key is `key`.
    pub fn by_key(&self, key: &PublicKey) -> Option<&Member> {
        self.members.iter().find(|m| m.public_key == *key)
    }

    /// The member whose IPv4 or IPv6 overlay address is `addr` (an IPv4-mapped IPv6 address,
    /// `::ffff:10.77.a.b`, counts as the IPv4 address).
    pub fn by_overlay_addr(&self, addr: IpAddr) -> Option<&Member> {
        let v4 = match addr {
            IpAddr::V4(a) => Some(a),
            IpAddr::V6(a) => a.to_ipv4_mapped(),
        };
        self.members.iter().find(|m| match (v4, addr) {
            (Some(a), _) => m.overlay_v4() == a,
            (None, IpAddr::V6(a)) => m.overlay_v6() == a,
            (None, IpAddr::V4(_)) => false,
        })
    }

    /// The bytes a roster signature covers: the version and the members, never `signed_by` or
    /// `signature`. Deterministic and independent of the members' order in the file:
    ///
    /// ```text
    /// "ewindow-roster-v1\0"                    18 bytes, ROSTER_CANONICAL_MAGIC
    /// version                                  u64, big-endian
    /// number of members                        u32, big-endian
    /// for each member, sorted by name (bytewise; then by key):
    ///   length of name                         u32, big-endian
    ///   name                                   UTF-8
    ///   public key                             32 bytes
    ///   number of endpoints                    u32, big-endian
    ///   for each endpoint, in the given order:
    ///     length of text                       u32, big-endian
    ///     text                                 Endpoint's Display: host:port, [v6]:port
    ///   relay                                  1 byte, 0 or 1
    /// ```
    ///
    /// A protocol: it never changes (a new format gets a new magic).
    pub fn canonical_bytes(&self) -> Vec<u8> {
        fn put_len(out: &mut Vec<u8>, n: usize) {
            out.extend_from_slice(&u32::try_from(n).unwrap_or(u32::MAX).to_be_bytes());
        }
        fn put_str(out: &mut Vec<u8>, s: &str) {
            put_len(out, s.len());
            out.extend_from_slice(s.as_bytes());
        }
        let mut members: Vec<&Member> = self.members.iter().collect();
        members.sort_by(|a, b| {
            a.name
                .as_bytes()
                .cmp(b.name.as_bytes())
                .then(a.public_key.cmp(&b.public_key))
        });
        let mut out = Vec::with_capacity(32 + members.len() * 96);
        out.extend_from_slice(ROSTER_CANONICAL_MAGIC);
        out.extend_from_slice(&self.version.to_be_bytes());
        put_len(&mut out, members.len());
        for m in members {
            put_str(&mut out, &m.name);
            out.extend_from_slice(&m.public_key.0);
            put_len(&mut out, m.endpoints.len());
            for e in &m.endpoints {
                put_str(&mut out, &e.to_string());
            }
            out.push(u8::from(m.relay));
        }
        out
    }
}

/// A validated window file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WindowConfig {
    /// This window's member name.
    pub name: String,
    /// WireGuard UDP port, never 0.
    pub listen_port: u16,
    /// When the window takes calls.
    pub open_hours: OpenHours,
    /// The member this window calls, never itself.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub partner: Option<String>,
    /// Seconds between presence messages, 1 to [`MAX_PRESENCE_INTERVAL_S`].
    pub presence_interval_s: u32,
    /// The windows of the network, this one included.
    pub roster: Roster,
    /// The devices this window uses (the first-boot wizard picks them).
    pub media: Media,
    /// The window's button (`[button]`; absent: [`Button::default`]).
    pub button: Button,
}

/// `[media]`: the window's camera, microphone and speaker, as `ewindow-phone` takes them
/// (`--video-source`, `--audio-source`, `--audio-sink`). Absent keys: the phone's defaults.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Media {
    /// `/dev/videoN`, `test` or `none`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub camera: Option<String>,
    /// `default`, `test` or an ALSA/PulseAudio device name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub microphone: Option<String>,
    /// `default`, `null` or an ALSA/PulseAudio device name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub speaker: Option<String>,
    /// The picture sent, `WIDTHxHEIGHT` (default: the board's profile, 640x480 on a PC).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub video_size: Option<String>,
    /// Frames per second sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub video_fps: Option<u32>,
    /// Video bitrate sent, kbit/s.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub video_kbps: Option<u32>,
    /// Video codecs in preference order (`vp8,h264,vp9`), or `none`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub video_codecs: Option<String>,
    /// Video encoder threads.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub video_threads: Option<u32>,
}

impl WindowConfig {
    /// This window's own roster entry (always present in a parsed config).
    pub fn own(&self) -> Option<&Member> {
        self.roster.member(&self.name)
    }
}

/// Reads and parses a window file; see [`parse`].
pub fn load(path: &Path, own_key: Option<&PublicKey>) -> Result<WindowConfig, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        file: path.to_owned(),
        source,
    })?;
    parse(path, &text, own_key)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    window: Option<Spanned<RawWindow>>,
    roster: Option<RawRoster>,
    #[serde(default)]
    member: Vec<Spanned<RawMember>>,
    #[serde(default)]
    media: Media,
    button: Option<RawButton>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawWindow {
    name: Option<Spanned<String>>,
    listen_port: Option<Spanned<i64>>,
    open_hours: Option<Spanned<String>>,
    partner: Option<Spanned<String>>,
    presence_interval_s: Option<Spanned<i64>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRoster {
    version: Option<Spanned<i64>>,
    signed_by: Option<Spanned<String>>,
    signature: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMember {
    name: Option<Spanned<String>>,
    public_key: Option<Spanned<String>>,
    #[serde(default)]
    endpoints: Vec<Spanned<String>>,
    #[serde(default)]
    relay: bool,
}

/// Parses and validates the text of a window file; `file` is only used in messages.
///
/// With `own_key` (this window's identity key, when it has one), the member named by
/// `window.name` must have that key.
pub fn parse(
    file: &Path,
    text: &str,
    own_key: Option<&PublicKey>,
) -> Result<WindowConfig, ConfigError> {
    let cx = Cx { file, text };
    let raw: RawFile = toml::from_str(text).map_err(|e| {
        let span = e.span().unwrap_or(0..0);
        cx.invalid(
            span.clone(),
            key_at(text, span.start, e.message()),
            tidy(e.message()),
        )
    })?;
    let Some(window) = raw.window else {
        return Err(cx.invalid(
            0..0,
            "window".into(),
            "missing: the file needs a [window] table with this window's name, e.g. name = \"fablab-lyon\"".into(),
        ));
    };
    let w = cx.window(window)?;
    let RosterHeader {
        version,
        signed_by,
        signature,
    } = cx.roster_header(raw.roster)?;
    let m = cx.members(raw.member)?;
    let button = crate::button::validate(raw.button, |span, key, message| {
        cx.invalid(span, key, message)
    })?;
    // Cross references.
    let Some(&own) = m.by_name.get(&w.name) else {
        return Err(cx.invalid(
            w.name_span,
            "window.name".into(),
            format!(
                "own entry missing: add a [[member]] named {} with this window's public key",
                w.name
            ),
        ));
    };
    if let (Some(own_key), Some(member)) = (own_key, m.members.get(own)) {
        if member.public_key != *own_key {
            return Err(cx.invalid(
                m.key_spans.get(own).cloned().unwrap_or(0..0),
                format!("member[{own}].public_key"),
                format!(
                    "member {} has key {} but this window's identity key is {own_key}",
                    w.name, member.public_key
                ),
            ));
        }
    }
    let partner = match w.partner {
        None => None,
        Some(p) => {
            let (span, p) = (p.span(), p.into_inner());
            if p == w.name {
                return Err(cx.invalid(
                    span,
                    "window.partner".into(),
                    format!("`{p}` is this window itself; the partner is another member"),
                ));
            }
            if !m.by_name.contains_key(&p) {
                return Err(cx.invalid(
                    span,
                    "window.partner".into(),
                    format!("`{p}` is not a member: add a [[member]] named {p} or fix the name"),
                ));
            }
            Some(p)
        }
    };
    let signed_by = match signed_by {
        None => None,
        Some(s) => {
            let (span, s) = (s.span(), s.into_inner());
            if !m.by_name.contains_key(&s) {
                return Err(cx.invalid(
                    span,
                    "roster.signed_by".into(),
                    format!("`{s}` is not a member; the roster is signed by one of its members"),
                ));
            }
            Some(s)
        }
    };
    Ok(WindowConfig {
        name: w.name,
        listen_port: w.listen_port,
        open_hours: w.open_hours,
        partner,
        presence_interval_s: w.presence_interval_s,
        roster: Roster {
            version,
            signed_by,
            signature,
            members: m.members,
        },
        media: raw.media,
        button,
    })
}

/// The file being parsed, for the errors' file and line.
struct Cx<'a> {
    file: &'a Path,
    text: &'a str,
}

/// `[window]`, each value checked on its own.
struct WindowPart {
    name: String,
    name_span: Range<usize>,
    listen_port: u16,
    open_hours: OpenHours,
    partner: Option<Spanned<String>>,
    presence_interval_s: u32,
}

/// `[roster]`.
struct RosterHeader {
    version: u64,
    signed_by: Option<Spanned<String>>,
    signature: Option<[u8; 64]>,
}

/// `[[member]]`, each checked on its own and against the ones before.
struct MembersPart {
    members: Vec<Member>,
    by_name: HashMap<String, usize>,
    key_spans: Vec<Range<usize>>,
}

impl Cx<'_> {
    fn invalid(&self, span: Range<usize>, key: String, message: String) -> ConfigError {
        ConfigError::at(self.file, self.text, span.start, key, message)
    }

    fn window(&self, window: Spanned<RawWindow>) -> Result<WindowPart, ConfigError> {
        let invalid = |span, key, message| self.invalid(span, key, message);
        let window_span = window.span();
        let w = window.into_inner();
        let Some(name) = w.name else {
            return Err(invalid(
                window_span,
                "window.name".into(),
                "missing: name this window, e.g. name = \"fablab-lyon\"".into(),
            ));
        };
        let (name_span, name) = (name.span(), name.into_inner());
        validate_name(&name).map_err(|m| invalid(name_span.clone(), "window.name".into(), m))?;
        let listen_port = match w.listen_port {
            None => DEFAULT_LISTEN_PORT,
            Some(p) => match u16::try_from(*p.get_ref()) {
                Ok(port) if port != 0 => port,
                _ => {
                    return Err(invalid(
                        p.span(),
                        "window.listen_port".into(),
                        format!("{} is not a UDP port from 1 to 65535", p.get_ref()),
                    ))
                }
            },
        };
        let open_hours = match w.open_hours {
            None => OpenHours::Always,
            Some(h) => h
                .get_ref()
                .parse()
                .map_err(|m| invalid(h.span(), "window.open_hours".into(), m))?,
        };
        let partner = match w.partner {
            None => None,
            Some(p) => {
                validate_name(p.get_ref())
                    .map_err(|m| invalid(p.span(), "window.partner".into(), m))?;
                Some(p)
            }
        };
        let presence_interval_s = match w.presence_interval_s {
            None => DEFAULT_PRESENCE_INTERVAL_S,
            Some(s) => match u32::try_from(*s.get_ref()) {
                Ok(v) if (1..=MAX_PRESENCE_INTERVAL_S).contains(&v) => v,
                _ => {
                    return Err(invalid(
                        s.span(),
                        "window.presence_interval_s".into(),
                        format!(
                        "{} is out of range: expected seconds from 1 to {MAX_PRESENCE_INTERVAL_S}",
                        s.get_ref()
                    ),
                    ))
                }
            },
        };
        Ok(WindowPart {
            name,
            name_span,
            listen_port,
            open_hours,
            partner,
            presence_interval_s,
        })
    }

    /// `[roster]`: version, signer and signature (the signer is checked against the members
    /// by the caller).
    fn roster_header(&self, roster: Option<RawRoster>) -> Result<RosterHeader, ConfigError> {
        let invalid = |span, key, message| self.invalid(span, key, message);
        let (version, signed_by, signature) = match roster {
            None => (None, None, None),
            Some(r) => (r.version, r.signed_by, r.signature),
        };
        let version = match version {
            None => 0,
            Some(v) => u64::try_from(*v.get_ref()).map_err(|_| {
                invalid(
                    v.span(),
                    "roster.version".into(),
                    format!("{} is negative: versions count up from 0", v.get_ref()),
                )
            })?,
        };
        if let Some(s) = &signed_by {
            validate_name(s.get_ref())
                .map_err(|m| invalid(s.span(), "roster.signed_by".into(), m))?;
        }
        let signature = match signature {
            None => None,
            Some(s) => {
                let sig = decode_signature(s.get_ref())
                    .map_err(|m| invalid(s.span(), "roster.signature".into(), m))?;
                Some((s.span(), sig))
            }
        };
        match (&signed_by, &signature) {
            (Some(s), None) => {
                return Err(invalid(
                    s.span(),
                    "roster.signed_by".into(),
                    "signed_by without signature: add the signature or remove signed_by".into(),
                ))
            }
            (None, Some((span, _))) => {
                return Err(invalid(
                    span.clone(),
                    "roster.signature".into(),
                    "signature without signed_by: name the member who signed".into(),
                ))
            }
            _ => {}
        }
        let signature = signature.map(|(_, sig)| sig);
        Ok(RosterHeader {
            version,
            signed_by,
            signature,
        })
    }

    fn members(&self, raw: Vec<Spanned<RawMember>>) -> Result<MembersPart, ConfigError> {
        let (text, invalid) = (self.text, |span, key, message| {
            self.invalid(span, key, message)
        });
        let mut members = Vec::with_capacity(raw.len());
        let mut name_spans = Vec::with_capacity(raw.len());
        let mut key_spans = Vec::with_capacity(raw.len());
        let mut by_name: HashMap<String, usize> = HashMap::new();
        let mut by_key: HashMap<PublicKey, usize> = HashMap::new();
        let mut by_v4: HashMap<Ipv4Addr, usize> = HashMap::new();
        for (i, m) in raw.into_iter().enumerate() {
            let table = m.span();
            let m = m.into_inner();
            let key = |k: &str| format!("member[{i}].{k}");
            let Some(mname) = m.name else {
                return Err(invalid(
                    table,
                    key("name"),
                    "missing: every [[member]] has a name".into(),
                ));
            };
            let (mname_span, mname) = (mname.span(), mname.into_inner());
            validate_name(&mname).map_err(|e| invalid(mname_span.clone(), key("name"), e))?;
            if let Some(&first) = by_name.get(&mname) {
                return Err(invalid(
                    mname_span,
                    key("name"),
                    format!(
                        "duplicate member name `{mname}` (first defined on line {})",
                        line_of(
                            text,
                            name_spans.get(first).map_or(0, |s: &Range<usize>| s.start)
                        )
                    ),
                ));
            }
            let Some(pk) = m.public_key else {
                return Err(invalid(
                    table,
                    key("public_key"),
                    format!(
                        "missing: member `{mname}` needs its WireGuard public key (`wg pubkey`)"
                    ),
                ));
            };
            let pk_span = pk.span();
            let public_key = PublicKey::from_base64(pk.get_ref())
                .map_err(|e| invalid(pk_span.clone(), key("public_key"), e.to_string()))?;
            if let Some(&first) = by_key.get(&public_key) {
                return Err(invalid(
                    pk_span,
                    key("public_key"),
                    format!(
                        "member `{mname}` has the same public key as `{}` (line {}); every window has its own key",
                        members.get(first).map_or("?", |m: &Member| m.name.as_str()),
                        line_of(text, key_spans.get(first).map_or(0, |s: &Range<usize>| s.start))
                    ),
                ));
            }
            let v4 = overlay_v4(&public_key);
            if let Some(&first) = by_v4.get(&v4) {
                return Err(invalid(
                    pk_span,
                    key("public_key"),
                    format!(
                        "members {} and {mname} have the same overlay address {v4}; generate a new key for {mname}",
                        members.get(first).map_or("?", |m: &Member| m.name.as_str())
                    ),
                ));
            }
            let mut endpoints = Vec::with_capacity(m.endpoints.len());
            for (j, e) in m.endpoints.into_iter().enumerate() {
                let endpoint = e
                    .get_ref()
                    .parse()
                    .map_err(|msg| invalid(e.span(), key(&format!("endpoints[{j}]")), msg))?;
                endpoints.push(endpoint);
            }
            by_name.insert(mname.clone(), i);
            by_key.insert(public_key, i);
            by_v4.insert(v4, i);
            name_spans.push(mname_span);
            key_spans.push(pk_span);
            members.push(Member {
                name: mname,
                public_key,
                endpoints,
                relay: m.relay,
            });
        }
        Ok(MembersPart {
            members,
            by_name,
            key_spans,
        })
    }
}

fn decode_signature(text: &str) -> Result<[u8; 64], String> {
    let bytes = BASE64
        .decode(text.trim())
        .map_err(|_| "not base64: a signature is 88 characters of standard base64".to_owned())?;
    bytes
        .as_slice()
        .try_into()
        .map_err(|_| format!("decodes to {} bytes, a signature has 64", bytes.len()))
}

/// Writes a config as a window file; [`parse`] reads it back to the same config.
pub fn to_toml(config: &WindowConfig) -> String {
    #[derive(Serialize)]
    struct File<'a> {
        window: WindowOut<'a>,
        #[serde(skip_serializing_if = "is_default_media")]
        media: &'a Media,
        #[serde(skip_serializing_if = "is_default_button")]
        button: &'a Button,
    }
    #[derive(Serialize)]
    struct WindowOut<'a> {
        name: &'a str,
        listen_port: u16,
        open_hours: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        partner: Option<&'a str>,
        presence_interval_s: u32,
    }
    fn is_default_media(m: &&Media) -> bool {
        **m == Media::default()
    }
    fn is_default_button(b: &&Button) -> bool {
        **b == Button::default()
    }
    let file = File {
        window: WindowOut {
            name: &config.name,
            listen_port: config.listen_port,
            open_hours: config.open_hours.to_string(),
            partner: config.partner.as_deref(),
            presence_interval_s: config.presence_interval_s,
        },
        media: &config.media,
        button: &config.button,
    };
    let mut out = toml_text(&file);
    out.push('\n');
    out.push_str(&roster_to_toml(&config.roster));
    out
}

/// The text of `config` as the window file `file`, checked as that file: it parses back
/// (with `own_key`, when given). A config built in code is validated like one read from disk.
pub fn validated_text(
    file: &Path,
    config: &WindowConfig,
    own_key: Option<&PublicKey>,
) -> Result<String, ConfigError> {
    let text = to_toml(config);
    parse(file, &text, own_key)?;
    Ok(text)
}

/// A value as TOML text (our types always serialize: no maps with non-string keys, no
/// values TOML cannot hold).
fn toml_text<T: Serialize>(value: &T) -> String {
    toml::to_string(value).unwrap_or_default()
}

/// Reads a roster sent by another member (the text [`roster_to_toml`] writes), with every
/// check of [`parse`] that concerns the roster. `file` names the sender in messages.
pub fn parse_roster(file: &Path, text: &str) -> Result<Roster, ConfigError> {
    // Any member will do as the window the checks run for: the first one named.
    let table: toml::Table = toml::from_str(text).map_err(|e| ConfigError::Invalid {
        file: file.to_owned(),
        line: line_of(text, e.span().map_or(0, |s| s.start)),
        key: "-".into(),
        message: tidy(e.message()),
    })?;
    if table.contains_key("window") {
        return Err(ConfigError::Invalid {
            file: file.to_owned(),
            line: 1,
            key: "window".into(),
            message: "a roster has no [window] table".into(),
        });
    }
    let first = table
        .get("member")
        .and_then(|m| m.as_array())
        .and_then(|a| a.first())
        .and_then(|m| m.get("name"))
        .and_then(|n| n.as_str())
        .ok_or_else(|| ConfigError::Invalid {
            file: file.to_owned(),
            line: 1,
            key: "member".into(),
            message: "a roster has at least one [[member]] with a name".into(),
        })?;
    let head = format!("[window]\nname = {}\n", toml::Value::String(first.into()));
    let shift = 2;
    parse(file, &format!("{head}{text}"), None)
        .map(|c| c.roster)
        .map_err(|e| match e {
            ConfigError::Invalid {
                file,
                line,
                key,
                message,
            } => ConfigError::Invalid {
                file,
                line: line.saturating_sub(shift).max(1),
                key,
                message,
            },
            other => other,
        })
}

/// The `[roster]` and `[[member]]` part of a window file: what members send each other.
pub fn roster_to_toml(r: &Roster) -> String {
    #[derive(Serialize)]
    struct RosterFile<'a> {
        roster: Header<'a>,
        member: Vec<MemberOut>,
    }
    #[derive(Serialize)]
    struct Header<'a> {
        version: u64,
        #[serde(skip_serializing_if = "Option::is_none")]
        signed_by: Option<&'a str>,
        #[serde(skip_serializing_if = "Option::is_none")]
        signature: Option<String>,
    }
    #[derive(Serialize)]
    struct MemberOut {
        name: String,
        public_key: String,
        endpoints: Vec<String>,
        relay: bool,
    }
    toml_text(&RosterFile {
        roster: Header {
            version: r.version,
            signed_by: r.signed_by.as_deref(),
            signature: r.signature.map(|s| BASE64.encode(s)),
        },
        member: r
            .members
            .iter()
            .map(|m| MemberOut {
                name: m.name.clone(),
                public_key: m.public_key.to_base64(),
                endpoints: m.endpoints.iter().map(ToString::to_string).collect(),
                relay: m.relay,
            })
            .collect(),
    })
}

/// A toml/serde message without the names of our private types.
fn tidy(message: &str) -> String {
    message
        .trim()
        .replace("struct RawFile", "a table")
        .replace("struct RawWindow", "a table")
        .replace("struct RawRoster", "a table")
        .replace("struct RawMember", "a table")
        .replace("expected i64", "expected an integer")
}

/// The key path a toml error at byte `pos` is about: the table the position is in
/// (`window`, `member[2]`) joined to the field the message names (missing/unknown field), else
/// to the key assigned on the nearest line above; `-` when nothing is known.
fn key_at(text: &str, pos: usize, message: &str) -> String {
    let field = ["missing field `", "unknown field `"]
        .iter()
        .find_map(|prefix| {
            let rest = &message[message.find(prefix)? + prefix.len()..];
            Some(rest[..rest.find('`')?].to_owned())
        });
    let mut table: Option<String> = None;
    let mut header_name: Option<String> = None;
    let mut last_key: Option<String> = None;
    let mut on_header = false;
    let mut counts: HashMap<String, usize> = HashMap::new();
    let mut start = 0;
    for line in text.split_inclusive('\n') {
        let t = line.split('#').next().unwrap_or("").trim();
        on_header = false;
        if let Some(name) = t.strip_prefix("[[").and_then(|t| t.strip_suffix("]]")) {
            let name = name.trim().to_owned();
            let n = counts.entry(name.clone()).or_insert(0);
            table = Some(format!("{name}[{n}]"));
            *n += 1;
            header_name = Some(name);
            last_key = None;
            on_header = true;
        } else if let Some(name) = t.strip_prefix('[').and_then(|t| t.strip_suffix(']')) {
            table = Some(name.trim().to_owned());
            header_name = Some(name.trim().to_owned());
            last_key = None;
            on_header = true;
        } else if let Some((k, _)) = line.split_once('=') {
            let k = k.trim();
            let k = k
                .strip_prefix('"')
                .and_then(|k| k.strip_suffix('"'))
                .unwrap_or(k);
            if !k.is_empty()
                && k.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
            {
                last_key = Some(k.to_owned());
            }
        }
        start += line.len();
        if start > pos {
            break;
        }
    }
    if on_header {
        // An unknown or duplicate table: the key is the table itself.
        return field.or(header_name).unwrap_or_else(|| "-".to_owned());
    }
    match (table, field.or(last_key)) {
        (Some(t), Some(k)) => format!("{t}.{k}"),
        (None, Some(k)) => k,
        (Some(t), None) => t,
        (None, None) => "-".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A key made of one repeated byte.
    fn pk(i: u8) -> PublicKey {
        PublicKey([i; 32])
    }

    fn b64(i: u8) -> String {
        pk(i).to_base64()
    }

    fn ok(text: &str) -> WindowConfig {
        parse(Path::new("window.toml"), text, None).unwrap_or_else(|e| panic!("{e}"))
    }

    /// The error as the log shows it.
    fn err_with(text: &str, own_key: Option<&PublicKey>) -> String {
        match parse(Path::new("window.toml"), text, own_key) {
            Ok(c) => panic!("accepted: {c:?}"),
            Err(e) => e.to_string(),
        }
    }

    fn err(text: &str) -> String {
        err_with(text, None)
    }

    /// `[window]` naming `a` and one member `a` with key 1, after `window_extra` lines.
    fn minimal(window_extra: &str) -> String {
        format!(
            "[window]\nname = \"a\"\n{window_extra}\n[[member]]\nname = \"a\"\npublic_key = \"{}\"\n",
            b64(1)
        )
    }

    fn example() -> String {
        format!(
            r#"# The window on the wall of the fablab.
[window]
name = "fablab-lyon"
listen_port = 51821
open_hours = "08:00-20:00"
partner = "coworking-nantes"
presence_interval_s = 30

[roster]
version = 3
signed_by = "fablab-lyon"
signature = "{sig}"

[[member]]
name = "fablab-lyon"
public_key = "{k1}"
endpoints = ["192.0.2.1:51820", "Lyon.Example.org:51820", "[2001:DB8::1]:51820"]

[[member]]
name = "coworking-nantes"
public_key = "{k2}"
endpoints = [
  "nantes.example.org:4500",
]
relay = true

[[member]]
name = "atelier-3"
public_key = "{k3}"
"#,
            sig = BASE64.encode([7u8; 64]),
            k1 = b64(1),
            k2 = b64(2),
            k3 = b64(3),
        )
    }

    #[test]
    fn the_example_parses() {
        let c = ok(&example());
        assert_eq!(c.name, "fablab-lyon");
        assert_eq!(c.listen_port, 51821);
        assert_eq!(
            c.open_hours,
            OpenHours::Between {
                start_min: 8 * 60,
                end_min: 20 * 60
            }
        );
        assert_eq!(c.partner.as_deref(), Some("coworking-nantes"));
        assert_eq!(c.presence_interval_s, 30);
        let r = &c.roster;
        assert_eq!(r.version, 3);
        assert_eq!(r.signed_by.as_deref(), Some("fablab-lyon"));
        assert_eq!(r.signature, Some([7u8; 64]));
        assert_eq!(r.members.len(), 3);
        let lyon = &r.members[0];
        assert_eq!(lyon.public_key, pk(1));
        assert!(!lyon.relay);
        let hosts: Vec<(&str, u16)> = lyon
            .endpoints
            .iter()
            .map(|e| (e.host.as_str(), e.port))
            .collect();
        assert_eq!(
            hosts,
            vec![
                ("192.0.2.1", 51820),
                ("lyon.example.org", 51820),
                ("2001:db8::1", 51820)
            ]
        );
        assert_eq!(lyon.endpoints[2].to_string(), "[2001:db8::1]:51820");
        assert_eq!(
            lyon.endpoints[0].ip(),
            Some(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)))
        );
        assert_eq!(lyon.endpoints[1].ip(), None);
        assert!(r.members[1].relay);
        assert_eq!(
            r.members[1].endpoints[0].to_string(),
            "nantes.example.org:4500"
        );
        assert!(r.members[2].endpoints.is_empty());
        assert_eq!(c.own(), Some(lyon));
    }

    #[test]
    fn defaults_fill_in_what_is_left_out() {
        let c = ok(&minimal(""));
        assert_eq!(c.listen_port, DEFAULT_LISTEN_PORT);
        assert_eq!(c.open_hours, OpenHours::Always);
        assert_eq!(c.partner, None);
        assert_eq!(c.presence_interval_s, DEFAULT_PRESENCE_INTERVAL_S);
        assert_eq!(
            c.roster,
            Roster {
                version: 0,
                signed_by: None,
                signature: None,
                members: vec![Member {
                    name: "a".into(),
                    public_key: pk(1),
                    endpoints: vec![],
                    relay: false
                }],
            }
        );
        // An empty [roster] table is the same as none.
        assert_eq!(ok(&format!("[roster]\n{}", minimal(""))), c);
    }

    #[test]
    fn syntax_errors_name_file_and_line() {
        let e = err("[window]\nname = \"a\n");
        assert!(e.starts_with("window.toml:2: key `window.name`"), "{e}");
        let e = err("[window\n");
        assert!(e.starts_with("window.toml:1: key `-`"), "{e}");
        let e = err(&minimal("listen_port = 1\nlisten_port = 2"));
        assert!(
            e.starts_with("window.toml:4: key `window.listen_port`"),
            "{e}"
        );
        assert!(e.contains("duplicate key"), "{e}");
        let e = err(&format!("{}[window]\n", minimal("")));
        assert!(e.starts_with("window.toml:7: key `window`"), "{e}");
    }

    #[test]
    fn wrong_types_name_the_key_path_and_line() {
        let e = err(&minimal("listen_port = \"51820\""));
        assert!(
            e.starts_with("window.toml:3: key `window.listen_port`"),
            "{e}"
        );
        assert!(e.contains("expected an integer"), "{e}");
        let e = err(&format!(
            "{}endpoints = [\n  \"a:1\",\n  5,\n]\n",
            minimal("")
        ));
        assert!(
            e.starts_with("window.toml:9: key `member[0].endpoints`"),
            "{e}"
        );
        let e = err(&format!("{}relay = \"yes\"\n", minimal("")));
        assert!(e.starts_with("window.toml:7: key `member[0].relay`"), "{e}");
        let e = err("window = 3\n");
        assert!(e.starts_with("window.toml:1: key `window`"), "{e}");
        assert!(e.contains("expected a table"), "{e}");
        assert!(!e.contains("Raw"), "{e}");
    }

    #[test]
    fn unknown_keys_are_named_with_their_table() {
        let e = err(&minimal("nmae = \"b\""));
        assert!(e.starts_with("window.toml:3: key `window.nmae`"), "{e}");
        assert!(e.contains("unknown field `nmae`"), "{e}");
        let e = err(&minimal("ssh_authorized_keys = []"));
        assert!(
            e.starts_with("window.toml:3: key `window.ssh_authorized_keys`"),
            "{e}"
        );
        let e = err(&format!("{}\n[windw]\nname = \"a\"\n", minimal("")));
        assert!(e.starts_with("window.toml:8: key `windw`"), "{e}");
        let e = err(&format!("foo = 1\n{}", minimal("")));
        assert!(e.starts_with("window.toml:1: key `foo`"), "{e}");
        let e = err(&format!(
            "{}\n[[member]]\nname = \"b\"\ncolour = \"red\"\n",
            minimal("")
        ));
        assert!(
            e.starts_with("window.toml:10: key `member[1].colour`"),
            "{e}"
        );
        let e = err(&format!("{}\n[roster]\nversoin = 1\n", minimal("")));
        assert!(e.starts_with("window.toml:9: key `roster.versoin`"), "{e}");
    }

    #[test]
    fn missing_keys_are_named() {
        let e = err("");
        assert!(e.starts_with("window.toml:1: key `window`: missing"), "{e}");
        let e = err("\n[window]\nlisten_port = 1\n");
        assert!(
            e.starts_with("window.toml:2: key `window.name`: missing"),
            "{e}"
        );
        let e = err(&format!(
            "{}\n[[member]]\npublic_key = \"{}\"\n",
            minimal(""),
            b64(2)
        ));
        assert!(
            e.starts_with("window.toml:8: key `member[1].name`: missing"),
            "{e}"
        );
        let e = err("[window]\nname = \"a\"\n[[member]]\nname = \"a\"\n");
        assert!(
            e.starts_with("window.toml:3: key `member[0].public_key`: missing"),
            "{e}"
        );
    }

    #[test]
    fn validate_name_accepts_the_rule_and_nothing_else() {
        for good in ["a", "0", "a-", "fablab-lyon", "9-lives", &"x".repeat(32)] {
            assert_eq!(validate_name(good), Ok(()), "{good}");
        }
        for (bad, says) in [
            ("", "is empty"),
            ("-a", "starts with `-`"),
            ("Fablab", "lowercase"),
            ("é", "contains 'é'"),
            ("a_b", "contains '_'"),
            ("a.b", "contains '.'"),
            ("a b", "contains ' '"),
            ("a\n", "contains '\\n'"),
            (&"x".repeat(33), "is 33 characters long"),
        ] {
            let e = validate_name(bad).unwrap_err();
            assert!(e.contains(says), "{bad:?}: {e}");
            assert!(e.contains("a-z, 0-9 and `-`"), "{e}");
        }
    }

    #[test]
    fn bad_names_are_refused_where_they_are() {
        let e = err("[window]\nname = \"Lyon\"\n");
        assert!(
            e.starts_with("window.toml:2: key `window.name`: `Lyon`"),
            "{e}"
        );
        let e = err(&format!("{}\n[[member]]\nname = \"b c\"\n", minimal("")));
        assert!(e.starts_with("window.toml:9: key `member[1].name`"), "{e}");
        let e = err(&minimal("partner = \"-b\""));
        assert!(e.starts_with("window.toml:3: key `window.partner`"), "{e}");
        let e = err(&format!("[roster]\nsigned_by = \"\"\n{}", minimal("")));
        assert!(
            e.starts_with("window.toml:2: key `roster.signed_by`: is empty"),
            "{e}"
        );
    }

    #[test]
    fn duplicate_members_are_refused_on_the_second() {
        let e = err(&format!(
            "{}\n[[member]]\nname = \"a\"\npublic_key = \"{}\"\n",
            minimal(""),
            b64(2)
        ));
        assert!(e.starts_with("window.toml:9: key `member[1].name`"), "{e}");
        assert!(
            e.contains("duplicate member name `a` (first defined on line 5)"),
            "{e}"
        );
        let e = err(&format!(
            "{}\n[[member]]\nname = \"b\"\npublic_key = \"{}\"\n",
            minimal(""),
            b64(1)
        ));
        assert!(
            e.starts_with("window.toml:10: key `member[1].public_key`"),
            "{e}"
        );
        assert!(e.contains("same public key as `a` (line 6)"), "{e}");
    }

    #[test]
    fn keys_decode_from_base64_of_32_bytes() {
        let text = "HIgo9xNzJMWLKASShiTqIybxZ0U3wGLiUeJ1PKf8ykw=";
        let key = PublicKey::from_base64(text).unwrap();
        assert_eq!(key.to_base64(), text);
        assert_eq!(key.to_string(), text);
        assert_eq!(format!("{key:?}"), format!("PublicKey({text})"));
        assert_eq!(text.parse::<PublicKey>(), Ok(key));
        assert_eq!(PublicKey::from_base64(&format!(" {text}\n")), Ok(key));
        assert_eq!(PublicKey::from_base64(""), Err(KeyError::WrongLength(0)));
        assert_eq!(
            PublicKey::from_base64(&BASE64.encode([0u8; 31])),
            Err(KeyError::WrongLength(31))
        );
        assert_eq!(
            PublicKey::from_base64(&BASE64.encode([0u8; 33])),
            Err(KeyError::WrongLength(33))
        );
        for bad in [
            "HIgo9xNzJMWLKASShiTqIybxZ0U3wGLiUeJ1PKf8ykw", // no padding
            "HIgo9xNzJMWLKASShiTqIybxZ0U3wGLiUeJ1PKf8ykx=", // trailing bits set
            "HIgo9xNzJMWLKASShiTqIybxZ0U3wGLiUeJ1PKf8yk-=", // URL-safe alphabet
            "not a key",
            "é",
        ] {
            assert_eq!(
                PublicKey::from_base64(bad),
                Err(KeyError::NotBase64),
                "{bad}"
            );
        }
        assert_eq!(
            KeyError::WrongLength(31).to_string(),
            "decodes to 31 bytes, a WireGuard key has 32"
        );
        assert!(KeyError::NotBase64.to_string().starts_with("not base64"));
    }

    #[test]
    fn bad_keys_in_the_file_name_the_member() {
        let text = format!(
            "[window]\nname = \"a\"\n[[member]]\nname = \"a\"\npublic_key = \"{}\"\n",
            BASE64.encode([1u8; 31])
        );
        let e = err(&text);
        assert_eq!(
            e,
            "window.toml:5: key `member[0].public_key`: decodes to 31 bytes, a WireGuard key has 32"
        );
        let e = err("[window]\nname = \"a\"\n[[member]]\nname = \"a\"\npublic_key = \"!!\"\n");
        assert!(
            e.starts_with("window.toml:5: key `member[0].public_key`: not base64"),
            "{e}"
        );
    }

    #[test]
    fn endpoints_parse_in_three_forms() {
        for (text, host, port, shown) in [
            ("192.0.2.1:51820", "192.0.2.1", 51820, "192.0.2.1:51820"),
            (
                "lyon.example.org:1",
                "lyon.example.org",
                1,
                "lyon.example.org:1",
            ),
            (
                "LYON.example.org:1",
                "lyon.example.org",
                1,
                "lyon.example.org:1",
            ),
            ("localhost:65535", "localhost", 65535, "localhost:65535"),
            (
                "[2001:db8::1]:51820",
                "2001:db8::1",
                51820,
                "[2001:db8::1]:51820",
            ),
            ("[2001:0DB8:0::1]:5", "2001:db8::1", 5, "[2001:db8::1]:5"),
            (
                "[::ffff:192.0.2.1]:5",
                "::ffff:192.0.2.1",
                5,
                "[::ffff:192.0.2.1]:5",
            ),
            ("a-1.b2:7", "a-1.b2", 7, "a-1.b2:7"),
        ] {
            let e: Endpoint = text.parse().unwrap_or_else(|e| panic!("{text}: {e}"));
            assert_eq!((e.host.as_str(), e.port), (host, port), "{text}");
            assert_eq!(e.to_string(), shown);
            assert_eq!(shown.parse::<Endpoint>(), Ok(e));
        }
        for (bad, says) in [
            ("", "is empty"),
            ("192.0.2.1", "has no port"),
            ("192.0.2.1:", "port `` "),
            ("192.0.2.1:0", "port `0`"),
            ("192.0.2.1:65536", "port `65536`"),
            ("192.0.2.1:+80", "port `+80`"),
            ("192.0.2.1:8x", "port `8x`"),
            ("192.0.2.300:1", "`192.0.2.300` is neither"),
            ("010.0.0.1:1", "is neither"),
            ("1234:1", "is neither"),
            (":1", "`` is neither"),
            ("a..b:1", "is neither"),
            ("-a.b:1", "is neither"),
            ("a-.b:1", "is neither"),
            ("a_b:1", "is neither"),
            ("a b:1", "is neither"),
            ("é.org:1", "is neither"),
            ("example.org.:1", "is neither"),
            (&format!("{}:1", "a".repeat(64)), "is neither"),
            (&format!("{}.org:1", "abcdefg.".repeat(32)), "is neither"),
            ("2001:db8::1:51820", "needs brackets"),
            ("[2001:db8::1]", "has no port"),
            ("[2001:db8::1]51820", "has no port"),
            ("[2001:db8::1:51820", "without `]`"),
            ("[192.0.2.1]:1", "not an IPv6 address"),
            ("[fe80::1%eth0]:1", "not an IPv6 address"),
            ("[]:1", "not an IPv6 address"),
        ] {
            let e = bad.parse::<Endpoint>().unwrap_err();
            assert!(e.contains(says), "{bad:?}: {e}");
        }
    }

    #[test]
    fn bad_endpoints_are_refused_with_their_index() {
        let e = err(&format!(
            "{}endpoints = [\"192.0.2.1:1\",\n  \"lyon.example.org\"]\n",
            minimal("")
        ));
        assert!(
            e.starts_with(
                "window.toml:8: key `member[0].endpoints[1]`: `lyon.example.org` has no port"
            ),
            "{e}"
        );
    }

    #[test]
    fn the_window_must_be_a_member_with_its_own_key() {
        let e = err(&format!(
            "[window]\nname = \"a\"\n[[member]]\nname = \"b\"\npublic_key = \"{}\"\n",
            b64(1)
        ));
        assert_eq!(
            e,
            "window.toml:2: key `window.name`: own entry missing: add a [[member]] named a with this window's public key"
        );
        let e = err("[window]\nname = \"a\"\n");
        assert!(e.contains("own entry missing"), "{e}");
        let text = format!(
            "{}\n[[member]]\nname = \"b\"\npublic_key = \"{}\"\n",
            minimal(""),
            b64(2)
        );
        let good = parse(Path::new("window.toml"), &text, Some(&pk(1))).unwrap();
        assert_eq!(good, ok(&text));
        let e = err_with(&text, Some(&pk(2)));
        assert_eq!(
            e,
            format!(
                "window.toml:6: key `member[0].public_key`: member a has key {} but this window's identity key is {}",
                b64(1),
                b64(2)
            )
        );
    }

    #[test]
    fn the_partner_is_another_member() {
        let two = |partner: &str| {
            format!(
                "{}\n[[member]]\nname = \"b\"\npublic_key = \"{}\"\n",
                minimal(&format!("partner = \"{partner}\"")),
                b64(2)
            )
        };
        assert_eq!(ok(&two("b")).partner.as_deref(), Some("b"));
        let e = err(&two("a"));
        assert!(
            e.starts_with("window.toml:3: key `window.partner`: `a` is this window itself"),
            "{e}"
        );
        let e = err(&two("c"));
        assert!(
            e.starts_with("window.toml:3: key `window.partner`: `c` is not a member"),
            "{e}"
        );
    }

    #[test]
    fn the_roster_signature_is_checked_for_form() {
        let sig = BASE64.encode([9u8; 64]);
        let roster = |body: &str| format!("{}\n[roster]\n{body}\n", minimal(""));
        let c = ok(&roster(&format!(
            "signed_by = \"a\"\nsignature = \"{sig}\""
        )));
        assert_eq!(c.roster.signature, Some([9u8; 64]));
        let e = err(&roster(&format!(
            "signed_by = \"b\"\nsignature = \"{sig}\""
        )));
        assert!(
            e.starts_with("window.toml:9: key `roster.signed_by`: `b` is not a member"),
            "{e}"
        );
        let e = err(&roster("signed_by = \"a\""));
        assert!(
            e.starts_with("window.toml:9: key `roster.signed_by`: signed_by without signature"),
            "{e}"
        );
        let e = err(&roster(&format!("version = 2\nsignature = \"{sig}\"")));
        assert!(
            e.starts_with("window.toml:10: key `roster.signature`: signature without signed_by"),
            "{e}"
        );
        let e = err(&roster(&format!(
            "signed_by = \"a\"\nsignature = \"{}\"",
            BASE64.encode([9u8; 63])
        )));
        assert!(
            e.starts_with(
                "window.toml:10: key `roster.signature`: decodes to 63 bytes, a signature has 64"
            ),
            "{e}"
        );
        let e = err(&roster("signed_by = \"a\"\nsignature = \"%%\""));
        assert!(
            e.starts_with("window.toml:10: key `roster.signature`: not base64"),
            "{e}"
        );
    }

    #[test]
    fn numbers_out_of_range_are_refused() {
        for bad in ["0", "65536", "-1", "99999999999"] {
            let e = err(&minimal(&format!("listen_port = {bad}")));
            assert!(
                e.starts_with("window.toml:3: key `window.listen_port`"),
                "{e}"
            );
            assert!(e.contains(&format!("{bad} is not a UDP port")), "{e}");
        }
        assert_eq!(ok(&minimal("listen_port = 65535")).listen_port, 65535);
        assert_eq!(ok(&minimal("listen_port = 1")).listen_port, 1);
        for bad in ["0", "3601", "-5", "4294967297"] {
            let e = err(&minimal(&format!("presence_interval_s = {bad}")));
            assert!(
                e.starts_with("window.toml:3: key `window.presence_interval_s`"),
                "{e}"
            );
        }
        assert_eq!(
            ok(&minimal("presence_interval_s = 3600")).presence_interval_s,
            3600
        );
        assert_eq!(
            ok(&minimal("presence_interval_s = 1")).presence_interval_s,
            1
        );
        let e = err(&format!("[roster]\nversion = -1\n{}", minimal("")));
        assert!(
            e.starts_with("window.toml:2: key `roster.version`: -1 is negative"),
            "{e}"
        );
        let big = ok(&format!(
            "[roster]\nversion = {}\n{}",
            i64::MAX,
            minimal("")
        ));
        assert_eq!(big.roster.version, i64::MAX as u64);
        let e = err(&minimal("listen_port = 1.5"));
        assert!(
            e.starts_with("window.toml:3: key `window.listen_port`"),
            "{e}"
        );
    }

    #[test]
    fn open_hours_parse_and_tell_the_time() {
        assert_eq!("always".parse(), Ok(OpenHours::Always));
        let day: OpenHours = "08:00-20:00".parse().unwrap();
        assert_eq!(
            day,
            OpenHours::Between {
                start_min: 480,
                end_min: 1200
            }
        );
        assert!(!day.is_open(479) && day.is_open(480) && day.is_open(1199) && !day.is_open(1200));
        assert!(day.is_open(480 + 1440), "minutes past a day wrap");
        let night: OpenHours = "22:30-06:00".parse().unwrap();
        assert!(
            night.is_open(1350) && night.is_open(1439) && night.is_open(0) && night.is_open(359)
        );
        assert!(!night.is_open(360) && !night.is_open(1349) && !night.is_open(720));
        let from_midnight: OpenHours = "00:00-00:01".parse().unwrap();
        assert!(
            from_midnight.is_open(0) && !from_midnight.is_open(1) && !from_midnight.is_open(1439)
        );
        let to_midnight: OpenHours = "23:59-00:00".parse().unwrap();
        assert!(to_midnight.is_open(1439) && !to_midnight.is_open(0));
        assert!((0..u16::MAX).all(|m| OpenHours::Always.is_open(m)));
        for text in ["always", "08:00-20:00", "22:30-06:05", "00:00-23:59"] {
            assert_eq!(text.parse::<OpenHours>().unwrap().to_string(), text);
        }
        for (bad, says) in [
            ("", "expected \"always\""),
            ("Always", "expected \"always\""),
            ("8:00-20:00", "hours 00 to 23"),
            ("08:00-24:00", "hours 00 to 23"),
            ("08:60-20:00", "minutes 00 to 59"),
            ("08:00 - 20:00", "expected"),
            ("08:00-20:00-21:00", "expected"),
            ("08h00-20h00", "expected"),
            ("+8:00-20:00", "expected"),
            ("é:00-20:00", "expected"),
            ("10:00-10:00", "same time"),
        ] {
            let e = bad.parse::<OpenHours>().unwrap_err();
            assert!(e.contains(says), "{bad:?}: {e}");
        }
        let e = err(&minimal("open_hours = \"9-17\""));
        assert!(
            e.starts_with("window.toml:3: key `window.open_hours`: `9-17`"),
            "{e}"
        );
    }

    /// Pinned overlay addresses; computed independently with Python's hashlib:
    /// `sha256(b"ewindow-overlay-v6\0" + key)`, `sha256(b"ewindow-overlay-v4\0" + key)`.
    #[test]
    fn overlay_addresses_match_the_test_vectors() {
        for (key, v6, v4) in [
            (
                "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
                "fd77:696e:646f:0:f322:10f1:7ef2:95b8",
                "10.77.179.219",
            ),
            (
                "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=",
                "fd77:696e:646f:0:3ad2:187c:65e3:4984",
                "10.77.18.177",
            ),
            (
                "HIgo9xNzJMWLKASShiTqIybxZ0U3wGLiUeJ1PKf8ykw=",
                "fd77:696e:646f:0:3ce0:f70f:542d:e7b6",
                "10.77.35.242",
            ),
        ] {
            let key = PublicKey::from_base64(key).unwrap();
            assert_eq!(overlay_v6(&key), v6.parse::<Ipv6Addr>().unwrap(), "{key}");
            assert_eq!(overlay_v4(&key), v4.parse::<Ipv4Addr>().unwrap(), "{key}");
        }
        assert_eq!(OVERLAY_V6_PREFIX.to_string(), "fd77:696e:646f::");
        assert_eq!(&OVERLAY_V6_PREFIX.octets()[1..6], b"windo");
    }

    #[test]
    fn overlay_addresses_stay_in_their_prefixes_and_differ() {
        let mut v6s = std::collections::HashSet::new();
        for i in 0..=255u8 {
            let key = pk(i);
            assert_eq!(overlay_v6(&key), overlay_v6(&pk(i)));
            assert_eq!(overlay_v4(&key), overlay_v4(&pk(i)));
            let v6 = overlay_v6(&key).octets();
            assert_eq!(v6[..8], OVERLAY_V6_PREFIX.octets()[..8]);
            assert!(v6s.insert(v6), "{key}");
            let v4 = overlay_v4(&key).octets();
            assert_eq!(v4[..2], [10, 77]);
            assert!((1..=254).contains(&v4[3]), "{key}");
        }
        assert_ne!(overlay_v4(&pk(1)), overlay_v4(&pk(2)));
    }

    /// Two keys whose IPv4 overlay addresses collide, found by search over counting keys.
    fn colliding_keys() -> (PublicKey, PublicKey) {
        let mut seen: HashMap<Ipv4Addr, PublicKey> = HashMap::new();
        for i in 0u32.. {
            let mut bytes = [0x42u8; 32];
            bytes[..4].copy_from_slice(&i.to_be_bytes());
            let key = PublicKey(bytes);
            if let Some(first) = seen.insert(overlay_v4(&key), key) {
                return (first, key);
            }
        }
        unreachable!("65 024 addresses")
    }

    #[test]
    fn members_with_the_same_v4_overlay_address_are_refused() {
        let (a, b) = colliding_keys();
        assert_ne!(a, b);
        assert_eq!(overlay_v4(&a), overlay_v4(&b));
        assert_ne!(overlay_v6(&a), overlay_v6(&b));
        let e = err(&format!(
            "[window]\nname = \"a\"\n[[member]]\nname = \"a\"\npublic_key = \"{a}\"\n[[member]]\nname = \"b\"\npublic_key = \"{b}\"\n"
        ));
        assert_eq!(
            e,
            format!(
                "window.toml:8: key `member[1].public_key`: members a and b have the same overlay address {}; generate a new key for b",
                overlay_v4(&a)
            )
        );
    }

    #[test]
    fn lookups_by_name_key_and_overlay_address() {
        let c = ok(&example());
        let r = &c.roster;
        let nantes = r.member("coworking-nantes").unwrap();
        assert_eq!(nantes.public_key, pk(2));
        assert_eq!(r.member("paris"), None);
        assert_eq!(r.by_key(&pk(3)).unwrap().name, "atelier-3");
        assert_eq!(r.by_key(&pk(4)), None);
        for m in &r.members {
            assert_eq!(r.by_overlay_addr(IpAddr::V4(m.overlay_v4())), Some(m));
            assert_eq!(r.by_overlay_addr(IpAddr::V6(m.overlay_v6())), Some(m));
            let mapped = m.overlay_v4().to_ipv6_mapped();
            assert_eq!(r.by_overlay_addr(IpAddr::V6(mapped)), Some(m));
        }
        assert_eq!(r.by_overlay_addr(IpAddr::V4(overlay_v4(&pk(4)))), None);
        assert_eq!(r.by_overlay_addr(IpAddr::V6(overlay_v6(&pk(4)))), None);
        assert_eq!(r.by_overlay_addr("10.77.0.0".parse().unwrap()), None);
    }

    #[test]
    fn canonical_bytes_have_the_documented_format() {
        let roster = Roster {
            version: 1,
            signed_by: Some("a".into()),
            signature: Some([5; 64]),
            members: vec![
                Member {
                    name: "b".into(),
                    public_key: pk(2),
                    endpoints: vec!["[2001:db8::1]:5".parse().unwrap()],
                    relay: true,
                },
                Member {
                    name: "a".into(),
                    public_key: pk(1),
                    endpoints: vec![],
                    relay: false,
                },
            ],
        };
        let mut want = b"ewindow-roster-v1\0".to_vec();
        want.extend([0, 0, 0, 0, 0, 0, 0, 1]);
        want.extend([0, 0, 0, 2]);
        want.extend([0, 0, 0, 1, b'a']);
        want.extend([1; 32]);
        want.extend([0, 0, 0, 0]);
        want.push(0);
        want.extend([0, 0, 0, 1, b'b']);
        want.extend([2; 32]);
        want.extend([0, 0, 0, 1]);
        want.extend([0, 0, 0, 15]);
        want.extend(b"[2001:db8::1]:5");
        want.push(1);
        assert_eq!(roster.canonical_bytes(), want);
        assert_eq!(
            Roster::default().canonical_bytes(),
            [ROSTER_CANONICAL_MAGIC, &[0; 12]].concat()
        );
    }

    #[test]
    fn canonical_bytes_ignore_member_order_and_the_signature_but_nothing_else() {
        let base = ok(&example()).roster;
        let bytes = base.canonical_bytes();
        let mut reordered = base.clone();
        reordered.members.reverse();
        assert_eq!(reordered.canonical_bytes(), bytes);
        reordered.members.swap(0, 1);
        assert_eq!(reordered.canonical_bytes(), bytes);
        let mut unsigned = base.clone();
        unsigned.signed_by = None;
        unsigned.signature = None;
        assert_eq!(unsigned.canonical_bytes(), bytes);

        type Change = fn(&mut Roster);
        let changes: [(&str, Change); 10] = [
            ("version", |r| r.version += 1),
            ("name", |r| r.members[2].name.push('x')),
            ("key", |r| r.members[0].public_key.0[31] ^= 1),
            ("endpoint host", |r| {
                r.members[1].endpoints[0].host.push('x')
            }),
            ("endpoint port", |r| r.members[1].endpoints[0].port += 1),
            ("endpoint order", |r| r.members[0].endpoints.swap(0, 2)),
            ("endpoint removed", |r| {
                r.members[0].endpoints.pop();
            }),
            ("relay", |r| r.members[0].relay = true),
            ("member removed", |r| {
                r.members.pop();
            }),
            ("member added", |r| {
                r.members.push(Member {
                    name: "z".into(),
                    public_key: pk(9),
                    endpoints: vec![],
                    relay: false,
                })
            }),
        ];
        let mut all = std::collections::HashSet::new();
        all.insert(bytes.clone());
        for (what, change) in changes {
            let mut r = base.clone();
            change(&mut r);
            assert!(
                all.insert(r.canonical_bytes()),
                "{what} did not change the bytes"
            );
        }
        // Names are length-prefixed: moving a character between fields changes the bytes.
        let mut a = base.clone();
        a.members[0].endpoints = vec!["ab:1".parse().unwrap()];
        let mut b = base.clone();
        b.members[0].endpoints = vec!["a:1".parse().unwrap(), "b:1".parse().unwrap()];
        assert_ne!(a.canonical_bytes(), b.canonical_bytes());
    }

    #[test]
    fn the_media_table_round_trips_and_refuses_unknown_keys() {
        let text = format!(
            "{}\n[media]\ncamera = \"/dev/video0\"\nspeaker = \"default\"\nvideo_size = \"640x360\"\nvideo_fps = 25\n",
            minimal("")
        );
        let c = ok(&text);
        assert_eq!(c.media.camera.as_deref(), Some("/dev/video0"));
        assert_eq!(c.media.microphone, None);
        let again = parse(Path::new("w"), &to_toml(&c), None).unwrap();
        assert_eq!(again, c);
        let bad = format!("{}\n[media]\nwebcam = \"x\"\n", minimal(""));
        let e = err(&bad);
        assert!(e.contains("webcam"), "{e}");
    }

    #[test]
    fn the_button_table_round_trips_and_names_what_is_wrong() {
        let c = ok(&minimal(""));
        assert_eq!(c.button, Button::default());
        assert!(
            !to_toml(&c).contains("[button]"),
            "the default is not written"
        );
        let text = format!(
            "{}\n[button]\nkey = \"BTN_0\"\ndevices = [\"/dev/input/event3\", \"Foot Switch\"]\nlong_press_ms = 2000\ndebounce_ms = 10\n",
            minimal("")
        );
        let c = ok(&text);
        assert_eq!(c.button.key(), Some("BTN_0"));
        assert_eq!(c.button.devices.len(), 2);
        assert_eq!((c.button.long_press_ms, c.button.debounce_ms), (2000, 10));
        assert_eq!(parse(Path::new("w"), &to_toml(&c), None).unwrap(), c);
        let off = ok(&format!("{}\n[button]\nkey = \"none\"\n", minimal("")));
        assert_eq!(off.button.key(), None);
        assert_eq!(parse(Path::new("w"), &to_toml(&off), None).unwrap(), off);
        let line = minimal("").lines().count() + 3;
        for (table, key, words) in [
            ("key = \"space\"", "button.key", "not a Linux key name"),
            ("key = 57", "button.key", "string"),
            (
                "long_press_ms = 100",
                "button.long_press_ms",
                "from 300 to 10000",
            ),
            ("long_press_ms = -1", "button.long_press_ms", "out of range"),
            ("debounce_ms = 500", "button.debounce_ms", "from 0 to 200"),
            (
                "long_press_ms = 300\ndebounce_ms = 200",
                "button.long_press_ms",
                "twice the debounce",
            ),
            ("devices = [\"\"]", "button.devices[0]", "is empty"),
            (
                "devices = [\"/etc/passwd\"]",
                "button.devices[0]",
                "outside /dev",
            ),
            ("presses = 2", "presses", "unknown field"),
        ] {
            let e = err(&format!("{}\n[button]\n{table}\n", minimal("")));
            assert!(e.contains(key) && e.contains(words), "{table}: {e}");
            assert!(
                e.contains(&format!(":{line}")),
                "{table}: the line of the table's key: {e}"
            );
        }
    }

    #[test]
    fn rosters_travel_as_their_toml_part() {
        let c = ok(&example());
        let text = roster_to_toml(&c.roster);
        assert!(!text.contains("[window]"), "{text}");
        let back = parse_roster(Path::new("from-bob"), &text).unwrap();
        assert_eq!(back, c.roster);
        assert_eq!(back.canonical_bytes(), c.roster.canonical_bytes());
        // Errors point into the roster text itself.
        let broken = text.replacen("public_key = \"", "public_key = \"x", 1);
        let e = parse_roster(Path::new("from-bob"), &broken)
            .unwrap_err()
            .to_string();
        let line = broken
            .lines()
            .position(|l| l.starts_with("public_key = \"x"))
            .unwrap()
            + 1;
        assert!(
            e.starts_with(&format!("from-bob:{line}: key `member[0].public_key`")),
            "{e}"
        );
        for bad in [
            "",
            "[window]\nname = \"a\"\n",
            "[roster]\nversion = 1\n",
            "[[member]]\n",
        ] {
            assert!(parse_roster(Path::new("x"), bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn to_toml_round_trips() {
        let sig = BASE64.encode([3u8; 64]);
        let texts = [
            example(),
            minimal(""),
            minimal("open_hours = \"22:00-06:30\""),
            format!(
                "[roster]\nversion = 9\nsigned_by = \"a\"\nsignature = \"{sig}\"\n{}",
                minimal("")
            ),
        ];
        for text in texts {
            let c = ok(&text);
            let written = to_toml(&c);
            let again = parse(Path::new("w"), &written, Some(&c.own().unwrap().public_key))
                .unwrap_or_else(|e| panic!("{e}\n{written}"));
            assert_eq!(again, c, "{written}");
            assert_eq!(to_toml(&again), written);
        }
        let written = to_toml(&ok(&example()));
        assert!(
            written.starts_with("[window]\nname = \"fablab-lyon\"\nlisten_port = 51821\n"),
            "{written}"
        );
        assert!(written.contains("endpoints = [\"192.0.2.1:51820\", \"lyon.example.org:51820\", \"[2001:db8::1]:51820\"]\n"), "{written}");
    }

    #[test]
    fn to_toml_quotes_what_a_hand_made_config_holds() {
        let mut c = ok(&minimal(""));
        for name in ["quote\" # [x]", "a\"b\\c\n\u{7f}é", "it's \t'tab'"] {
            c.name = name.into();
            let back: toml::Table = toml::from_str(&to_toml(&c)).unwrap();
            assert_eq!(back["window"]["name"].as_str(), Some(name));
        }
    }

    #[test]
    fn the_value_types_serialize_as_their_text() {
        #[derive(Serialize, Deserialize, PartialEq, Debug)]
        struct Values {
            key: PublicKey,
            endpoint: Endpoint,
            hours: OpenHours,
        }
        let v = Values {
            key: pk(1),
            endpoint: "[2001:db8::1]:5".parse().unwrap(),
            hours: "22:00-06:00".parse().unwrap(),
        };
        let text = toml::to_string(&v).unwrap();
        assert_eq!(
            text,
            format!(
                "key = \"{}\"\nendpoint = \"[2001:db8::1]:5\"\nhours = \"22:00-06:00\"\n",
                b64(1)
            )
        );
        assert_eq!(toml::from_str::<Values>(&text).unwrap(), v);
        let bad = text.replace("22:00", "25:00");
        assert!(toml::from_str::<Values>(&bad).is_err());
        // The whole config serializes too (e.g. for status messages), signature as base64.
        let c = ok(&example());
        let t: toml::Table = toml::from_str(&toml::to_string(&c).unwrap()).unwrap();
        assert_eq!(t["open_hours"].as_str(), Some("08:00-20:00"));
        assert_eq!(
            t["roster"]["signature"].as_str(),
            Some(BASE64.encode([7u8; 64]).as_str())
        );
        assert_eq!(
            t["roster"]["members"][0]["public_key"].as_str(),
            Some(b64(1).as_str())
        );
    }

    /// A small deterministic generator for the fuzz tests.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
        fn below(&mut self, n: usize) -> usize {
            (self.next() % n.max(1) as u64) as usize
        }
    }

    /// Every error is well-formed; every success writes back to itself. True when it parsed.
    fn check_any(text: &str) -> bool {
        match parse(Path::new("window.toml"), text, None) {
            Ok(c) => {
                let again = parse(Path::new("w"), &to_toml(&c), None)
                    .unwrap_or_else(|e| panic!("{e}\n{text:?}"));
                assert_eq!(again, c, "{text:?}");
                true
            }
            Err(ConfigError::Invalid {
                line, key, message, ..
            }) => {
                assert!(
                    line >= 1 && line <= text.lines().count() + 1,
                    "{line} {text:?}"
                );
                assert!(!key.is_empty() && !message.is_empty(), "{text:?}");
                false
            }
            Err(e) => panic!("{e}"),
        }
    }

    #[test]
    fn fuzz_truncated_files() {
        let text = example();
        for (i, _) in text.char_indices() {
            let _ = check_any(&text[..i]) | check_any(&text[i..]);
        }
    }

    #[test]
    fn fuzz_mutated_files() {
        const TOKENS: &[&str] = &[
            "[",
            "]",
            "[[member]]\n",
            "[window]\n",
            "[roster]\n",
            "=",
            "\"",
            "'",
            "\n",
            "#",
            ",",
            "{",
            "}",
            ".",
            "-",
            ":",
            "0",
            "65536",
            "99999999999999999999",
            "é",
            "\\",
            "'''",
            "\"\"\"",
            "\t",
            "\u{0}",
            "\r",
            "name = \"b\"\n",
            "relay = true\n",
            "AAAA",
            "=\n",
            "[::1]:1",
            "true",
            "1e9",
            "-0",
            "_",
            " ",
        ];
        let base: Vec<char> = example().chars().collect();
        let mut rng = Rng(0x5eed_1234_abcd_ef01);
        let mut parsed = 0;
        for _ in 0..4000 {
            let mut t = base.clone();
            for _ in 0..1 + rng.below(3) {
                let at = rng.below(t.len() + 1);
                match rng.below(3) {
                    0 => {
                        let end = (at + rng.below(8)).min(t.len());
                        t.drain(at..end);
                    }
                    1 => {
                        let token = TOKENS[rng.below(TOKENS.len())];
                        t.splice(at..at, token.chars());
                    }
                    _ => {
                        let end = (at + 1).min(t.len());
                        let c = char::from_u32(rng.below(0x250) as u32).unwrap_or('?');
                        t.splice(at..end, [c]);
                    }
                }
            }
            parsed += usize::from(check_any(&t.iter().collect::<String>()));
        }
        // Both paths are exercised: mutations that still parse, and refusals.
        assert!((100..3900).contains(&parsed), "{parsed} of 4000 parsed");
    }

    #[test]
    fn fuzz_value_parsers() {
        let mut rng = Rng(0x0dd_ba11);
        let alphabet: Vec<char> = "0123456789abcdefAZ:[]-.%=+/ é\u{0}_".chars().collect();
        for _ in 0..20_000 {
            let len = rng.below(24);
            let s: String = (0..len)
                .map(|_| alphabet[rng.below(alphabet.len())])
                .collect();
            if let Ok(e) = s.parse::<Endpoint>() {
                assert_ne!(e.port, 0);
                assert_eq!(e.to_string().parse::<Endpoint>(), Ok(e.clone()), "{s:?}");
            }
            if let Ok(h) = s.parse::<OpenHours>() {
                assert_eq!(h.to_string().parse::<OpenHours>(), Ok(h), "{s:?}");
            }
            if let Ok(k) = PublicKey::from_base64(&s) {
                assert_eq!(PublicKey::from_base64(&k.to_base64()), Ok(k));
            }
            if validate_name(&s).is_ok() {
                assert!(!s.is_empty() && s.len() <= MAX_NAME_LEN && !s.starts_with('-'));
            }
            let _ = decode_signature(&s);
        }
    }

    #[test]
    fn load_names_a_missing_file() {
        let e = load(Path::new("/nonexistent/window.toml"), None).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("/nonexistent/window.toml: cannot read"),
            "{e}"
        );
    }

    #[test]
    fn line_and_key_helpers() {
        assert_eq!(line_of("a\nb\nc", 0), 1);
        assert_eq!(line_of("a\nb\nc", 2), 2);
        assert_eq!(line_of("a\nb\nc", 99), 3);
        assert_eq!(key_at("x = 1\n  y = 2\n", 8, "bad"), "y");
        assert_eq!(key_at("[window]\nx = [\n 1,\n 2]\n", 18, "bad"), "window.x");
        assert_eq!(
            key_at("[[member]]\n[[member]]\nx = 1\n", 22, "bad"),
            "member[1].x"
        );
        assert_eq!(
            key_at("[[member]] # c\n", 2, "unknown field `member`"),
            "member"
        );
        assert_eq!(key_at("", 0, "missing field `window`"), "window");
        assert_eq!(key_at("", 0, "bad"), "-");
        assert_eq!(key_at("é", 1, "bad"), "-");
    }
}
