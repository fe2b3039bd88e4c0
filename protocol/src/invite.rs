//! One-time invitation codes: how a new window joins the network.
//!
//! `ewindowctl invite NAME` on a member makes an [`Invitation`] and prints its code, which a
//! person types into the new window (or scans as a QR code). The code carries what the
//! newcomer needs to reach the inviter over the underlay, and a random secret from which
//! both sides derive a temporary WireGuard key pair ([`Invitation::temp_private_key`]): the
//! inviter adds the temporary public key as a peer; the newcomer uses the temporary private
//! key to reach the inviter. The inviter files the invitation under [`Invitation::id`].
//!
//! The text form is `EWIN1-` and then Crockford base32 (digits and capitals without
//! I, L, O, U: all in QR's alphanumeric mode) in groups of five:
//!
//! ```text
//! EWIN1-04QRS-...-XYZ
//! ```
//!
//! Reading is forgiving: lower case, spaces, missing or extra dashes and Crockford's
//! confusables (O for 0, I and L for 1) are accepted. A typo is caught by the checksum and
//! reported as such.
//!
//! Bytes of format version 1 (big-endian numbers):
//!
//! | bytes | what |
//! |---|---|
//! | 1 | format version, 1 |
//! | 32 | the inviter's WireGuard public key |
//! | 1 | endpoint tag: 1 = IPv4, 2 = IPv6, 3 = DNS name |
//! | 6, 18 or 1 + n + 2 | IPv4 + port, IPv6 + port, or name length n (1–63), name, port |
//! | 12 | the secret |
//! | 4 | expiry, unix seconds |
//! | 3 | checksum: the first 3 bytes of SHA-256 of all bytes before it |
//!
//! An invitation to an IPv4 endpoint is 59 bytes: 95 characters, 119 with prefix and dashes.
//!
//! **Invariant:** [`Invitation::decode`] returns a `Result` for every string, and an
//! [`Invitation`] that exists encodes without failing (its endpoint is validated on the way
//! in: [`DnsName`] is 1–63 bytes of a host name).

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::str::FromStr;
use std::time::Duration;

use curve25519_dalek::scalar::clamp_integer;
use sha2::{Digest, Sha256};
use zeroize::Zeroize;

use crate::keys::{PrivateKey, PublicKey};

/// The format version this module writes and reads.
pub const VERSION: u8 = 1;

/// The text prefix: "EWIN" and the format version.
pub const PREFIX: &str = "EWIN1-";

/// Length of the secret in bytes (96 bits).
pub const SECRET_LEN: usize = 12;

/// Longest DNS name an invitation carries, in bytes.
pub const MAX_DNS_LEN: usize = 63;

/// Crockford's base32 alphabet.
const ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";

/// Characters per group in the text form.
const GROUP: usize = 5;

/// Checksum length in bytes.
const CHECKSUM_LEN: usize = 3;

/// Domain separation for the temporary WireGuard key (differs from [`ID_LABEL`], so the id,
/// which is stored and logged, reveals nothing of the key).
const KEY_LABEL: &[u8] = b"ewindow-invite-v1/temp-key";

/// Domain separation for the invitation id.
const ID_LABEL: &[u8] = b"ewindow-invite-v1/id";

/// The shortest code in bytes: a one-letter DNS name.
const MIN_CODE_LEN: usize = 1 + 32 + 1 + (1 + 1 + 2) + SECRET_LEN + 4 + CHECKSUM_LEN;

const TAG_V4: u8 = 1;
const TAG_V6: u8 = 2;
const TAG_DNS: u8 = 3;

/// Why an invitation code could not be read or made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InviteError {
    /// The text does not start with `EWIN`.
    NotAnInvitation,
    /// A format version this window does not know (from the text or the bytes).
    UnsupportedVersion(u8),
    /// A character that cannot be in a code.
    BadCharacter(char),
    /// The checksum does not match: a character was mistyped, left out or added.
    Typo,
    /// The code is shorter than its contents need: part of it is missing.
    Truncated,
    /// The endpoint is not usable (unknown kind, bad DNS name, port 0, unspecified address).
    BadEndpoint(String),
    /// The OS random source failed, so no secret was made.
    NoRandomness(String),
}

impl fmt::Display for InviteError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            InviteError::NotAnInvitation => {
                write!(f, "this is not an invitation code: those start with EWIN1-")
            }
            InviteError::UnsupportedVersion(n) => write!(
                f,
                "this invitation code is of format version {n}, this window reads version \
                 {VERSION}: update the software of this window or of the inviting one"
            ),
            InviteError::BadCharacter(c) => write!(
                f,
                "the code has a typo: {c:?} is never in a code (only digits and letters \
                 without I, L, O, U): check it again"
            ),
            InviteError::Typo => write!(f, "the code has a typo: check it again"),
            InviteError::Truncated => {
                write!(
                    f,
                    "the code is too short: part of it is missing, check it again"
                )
            }
            InviteError::BadEndpoint(why) => {
                write!(f, "the invitation's address is not usable: {why}")
            }
            InviteError::NoRandomness(e) => write!(f, "the OS random source failed: {e}"),
        }
    }
}

impl std::error::Error for InviteError {}

/// A DNS name of 1 to 63 bytes: letters, digits, `-` and `.`, non-empty labels that neither
/// start nor end with `-`, an optional final `.`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct DnsName(String);

impl DnsName {
    /// Checks `name` and keeps it as written.
    pub fn new(name: &str) -> Result<DnsName, InviteError> {
        let bad = |why: &str| {
            Err(InviteError::BadEndpoint(format!(
                "DNS name {name:?}: {why}"
            )))
        };
        if name.is_empty() {
            return bad("empty");
        }
        if name.len() > MAX_DNS_LEN {
            return bad("longer than 63 bytes");
        }
        let labels = name.strip_suffix('.').unwrap_or(name);
        for label in labels.split('.') {
            if label.is_empty() {
                return bad("empty label");
            }
            if !label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-')
            {
                return bad("only letters, digits, '-' and '.' are allowed");
            }
            if label.starts_with('-') || label.ends_with('-') {
                return bad("a label starts or ends with '-'");
            }
        }
        Ok(DnsName(name.to_string()))
    }

    /// The name as written.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for DnsName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Where the newcomer reaches the inviter on the underlay (WireGuard's `Endpoint`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum InviteEndpoint {
    /// An IPv4 or IPv6 address and UDP port.
    Ip {
        /// The address.
        addr: IpAddr,
        /// The UDP port.
        port: u16,
    },
    /// A DNS name and UDP port.
    Dns {
        /// The name.
        name: DnsName,
        /// The UDP port.
        port: u16,
    },
}

impl InviteEndpoint {
    /// The port.
    pub fn port(&self) -> u16 {
        match self {
            InviteEndpoint::Ip { port, .. } | InviteEndpoint::Dns { port, .. } => *port,
        }
    }

    /// Refuses what cannot be reached: port 0, an unspecified or multicast address.
    fn check(&self) -> Result<(), InviteError> {
        if self.port() == 0 {
            return Err(InviteError::BadEndpoint(format!("{self}: port 0")));
        }
        if let InviteEndpoint::Ip { addr, .. } = self {
            if addr.is_unspecified() || addr.is_multicast() {
                return Err(InviteError::BadEndpoint(format!(
                    "{self}: not the address of one host"
                )));
            }
        }
        Ok(())
    }

    fn write(&self, out: &mut Vec<u8>) {
        match self {
            InviteEndpoint::Ip {
                addr: IpAddr::V4(a),
                port,
            } => {
                out.push(TAG_V4);
                out.extend_from_slice(&a.octets());
                out.extend_from_slice(&port.to_be_bytes());
            }
            InviteEndpoint::Ip {
                addr: IpAddr::V6(a),
                port,
            } => {
                out.push(TAG_V6);
                out.extend_from_slice(&a.octets());
                out.extend_from_slice(&port.to_be_bytes());
            }
            InviteEndpoint::Dns { name, port } => {
                out.push(TAG_DNS);
                // DnsName holds at most 63 bytes.
                out.push(name.0.len() as u8);
                out.extend_from_slice(name.0.as_bytes());
                out.extend_from_slice(&port.to_be_bytes());
            }
        }
    }
}

impl fmt::Display for InviteEndpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            InviteEndpoint::Ip { addr, port } => write!(f, "{}", SocketAddr::new(*addr, *port)),
            InviteEndpoint::Dns { name, port } => write!(f, "{name}:{port}"),
        }
    }
}

impl FromStr for InviteEndpoint {
    type Err = InviteError;

    /// Reads `1.2.3.4:51820`, `[2001:db8::1]:51820` or `host.example:51820`.
    fn from_str(s: &str) -> Result<InviteEndpoint, InviteError> {
        let ep = if let Ok(sa) = s.parse::<SocketAddr>() {
            InviteEndpoint::Ip {
                addr: sa.ip(),
                port: sa.port(),
            }
        } else {
            let Some((host, port)) = s.rsplit_once(':') else {
                return Err(InviteError::BadEndpoint(format!("{s:?}: no :PORT")));
            };
            let Ok(port) = port.parse::<u16>() else {
                return Err(InviteError::BadEndpoint(format!("{s:?}: bad port")));
            };
            InviteEndpoint::Dns {
                name: DnsName::new(host)?,
                port,
            }
        };
        ep.check()?;
        Ok(ep)
    }
}

/// An invitation: what a new window needs to reach the inviter and prove it was invited.
#[derive(Clone, PartialEq, Eq)]
pub struct Invitation {
    /// The inviter's WireGuard public key.
    pub inviter_key: PublicKey,
    /// Where to reach the inviter on the underlay.
    pub endpoint: InviteEndpoint,
    /// The one-time secret; never printed by `Debug`.
    pub secret: [u8; SECRET_LEN],
    /// When the invitation stops being valid, unix seconds.
    pub expires_unix: u32,
}

impl fmt::Debug for Invitation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Invitation")
            .field("id", &self.id())
            .field("inviter_key", &self.inviter_key)
            .field("endpoint", &self.endpoint)
            .field("secret", &format_args!(".."))
            .field("expires_unix", &self.expires_unix)
            .finish()
    }
}

impl Invitation {
    /// A new invitation, valid for `ttl` from `now_unix`, with a secret from the OS random
    /// source. The expiry saturates at `u32::MAX` (year 2106).
    pub fn new(
        inviter_key: PublicKey,
        endpoint: InviteEndpoint,
        ttl: Duration,
        now_unix: u64,
    ) -> Result<Invitation, InviteError> {
        endpoint.check()?;
        let mut secret = [0u8; SECRET_LEN];
        getrandom::fill(&mut secret).map_err(|e| InviteError::NoRandomness(e.to_string()))?;
        let expires = now_unix.saturating_add(ttl.as_secs());
        Ok(Invitation {
            inviter_key,
            endpoint,
            secret,
            expires_unix: u32::try_from(expires).unwrap_or(u32::MAX),
        })
    }

    /// Whether the invitation has expired at `now_unix`. The inviter decides this with its
    /// own clock; a new window's clock may be far off before it has reached the network.
    pub fn is_expired(&self, now_unix: u64) -> bool {
        now_unix >= u64::from(self.expires_unix)
    }

    /// The temporary WireGuard private key both sides derive from the secret:
    /// SHA-256(`"ewindow-invite-v1/temp-key"` ‖ secret), clamped.
    pub fn temp_private_key(&self) -> PrivateKey {
        let mut h = Sha256::new();
        h.update(KEY_LABEL);
        h.update(self.secret);
        let mut bytes: [u8; 32] = h.finalize().into();
        let key = PrivateKey::from_bytes(clamp_integer(bytes));
        bytes.zeroize();
        key
    }

    /// The id the inviter files the invitation under: the first 8 bytes of
    /// SHA-256(`"ewindow-invite-v1/id"` ‖ secret), 16 lower-case hex digits.
    pub fn id(&self) -> String {
        let mut h = Sha256::new();
        h.update(ID_LABEL);
        h.update(self.secret);
        let digest = h.finalize();
        digest[..8].iter().map(|b| format!("{b:02x}")).collect()
    }

    /// The bytes of the code, checksum included.
    fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(1 + 32 + 1 + 1 + MAX_DNS_LEN + 2 + SECRET_LEN + 7);
        out.push(VERSION);
        out.extend_from_slice(&self.inviter_key.0);
        self.endpoint.write(&mut out);
        out.extend_from_slice(&self.secret);
        out.extend_from_slice(&self.expires_unix.to_be_bytes());
        let sum = checksum(&out);
        out.extend_from_slice(&sum);
        out
    }

    /// The text form: `EWIN1-` and groups of five Crockford base32 characters.
    pub fn encode(&self) -> String {
        let mut bytes = self.to_bytes();
        let chars = base32_encode(&bytes);
        bytes.zeroize();
        let mut out = String::with_capacity(PREFIX.len() + chars.len() * 6 / 5 + 1);
        out.push_str(PREFIX);
        for (i, c) in chars.iter().enumerate() {
            if i > 0 && i % GROUP == 0 {
                out.push('-');
            }
            out.push(char::from(*c));
        }
        out
    }

    /// Reads a code as a person typed it (see the module's documentation for what is
    /// forgiven).
    pub fn decode(text: &str) -> Result<Invitation, InviteError> {
        let mut chars = text
            .chars()
            .filter(|c| !c.is_whitespace() && *c != '-')
            .map(|c| c.to_ascii_uppercase());

        // "EWIN" (I may be typed as 1 or L), then the format version as one digit.
        let prefix: [Option<char>; 4] = [chars.next(), chars.next(), chars.next(), chars.next()];
        let is_prefix = matches!(
            prefix,
            [Some('E'), Some('W'), Some('I' | '1' | 'L'), Some('N')]
        );
        if !is_prefix {
            return Err(InviteError::NotAnInvitation);
        }
        match chars.next().map(crockford_value) {
            None => return Err(InviteError::Truncated),
            Some(Some(1)) => {}
            Some(Some(n)) if n < 10 => return Err(InviteError::UnsupportedVersion(n)),
            Some(_) => return Err(InviteError::NotAnInvitation),
        }

        let mut values = Vec::new();
        for c in chars {
            match crockford_value(c) {
                Some(v) => values.push(v),
                None => return Err(InviteError::BadCharacter(c)),
            }
        }
        let (bytes, clean) = base32_decode(&values);
        decode_bytes(&bytes, clean)
    }
}

/// The first 3 bytes of SHA-256 of `data`.
fn checksum(data: &[u8]) -> [u8; CHECKSUM_LEN] {
    let d = Sha256::digest(data);
    [d[0], d[1], d[2]]
}

/// A Crockford character's value: the alphabet, and O → 0, I and L → 1. Upper case only.
fn crockford_value(c: char) -> Option<u8> {
    match c {
        'O' => Some(0),
        'I' | 'L' => Some(1),
        _ => ALPHABET
            .iter()
            .position(|&a| char::from(a) == c)
            .map(|i| i as u8),
    }
}

/// Base32 of `bytes`, most significant bit first, the last character padded with zero bits.
fn base32_encode(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len() * 8 / 5 + 1);
    let mut acc: u32 = 0;
    let mut bits = 0;
    for &b in bytes {
        acc = (acc << 8) | u32::from(b);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(ALPHABET[((acc >> bits) & 31) as usize]);
        }
    }
    if bits > 0 {
        out.push(ALPHABET[((acc << (5 - bits)) & 31) as usize]);
    }
    out
}

/// Bytes of 5-bit values, and whether the encoding was canonical: fewer than 5 bits left
/// over, all zero (what [`base32_encode`] writes).
fn base32_decode(values: &[u8]) -> (Vec<u8>, bool) {
    let mut out = Vec::with_capacity(values.len() * 5 / 8);
    let mut acc: u32 = 0;
    let mut bits = 0;
    for &v in values {
        acc = (acc << 5) | u32::from(v & 31);
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
        acc &= (1 << bits) - 1;
    }
    (out, bits < 5 && acc == 0)
}

/// Bytes needed by a version-1 code, as far as its first bytes tell (`None`: they tell
/// nothing, being damaged or too few).
fn expected_len(bytes: &[u8]) -> Option<usize> {
    if bytes.first() != Some(&VERSION) {
        return None;
    }
    let endpoint = match *bytes.get(33)? {
        TAG_V4 => 6,
        TAG_V6 => 18,
        TAG_DNS => {
            let n = usize::from(*bytes.get(34)?);
            if n == 0 || n > MAX_DNS_LEN {
                return None;
            }
            1 + n + 2
        }
        _ => return None,
    };
    Some(1 + 32 + 1 + endpoint + SECRET_LEN + 4 + CHECKSUM_LEN)
}

/// Reads the bytes of a code; `clean` tells whether its base32 was canonical.
fn decode_bytes(bytes: &[u8], clean: bool) -> Result<Invitation, InviteError> {
    let Some(body_len) = bytes.len().checked_sub(CHECKSUM_LEN).filter(|&n| n > 0) else {
        return Err(InviteError::Truncated);
    };
    let (body, sum) = bytes.split_at(body_len);
    if !clean || checksum(body) != sum {
        // A damaged code. "Too short" when it is shorter than any code, or when its length
        // is off (non-canonical base32) and its header asks for more bytes; else a typo.
        let short = bytes.len() < MIN_CODE_LEN
            || (!clean && expected_len(bytes).is_some_and(|n| bytes.len() < n));
        return Err(if short {
            InviteError::Truncated
        } else {
            InviteError::Typo
        });
    }
    if body[0] != VERSION {
        return Err(InviteError::UnsupportedVersion(body[0]));
    }
    let mut r = Reader(&body[1..]);
    let inviter_key = PublicKey(r.array()?);
    let endpoint = match r.array::<1>()?[0] {
        TAG_V4 => InviteEndpoint::Ip {
            addr: IpAddr::V4(Ipv4Addr::from(r.array::<4>()?)),
            port: u16::from_be_bytes(r.array()?),
        },
        TAG_V6 => InviteEndpoint::Ip {
            addr: IpAddr::V6(Ipv6Addr::from(r.array::<16>()?)),
            port: u16::from_be_bytes(r.array()?),
        },
        TAG_DNS => {
            let n = usize::from(r.array::<1>()?[0]);
            let raw = r.take(n)?;
            let Ok(name) = std::str::from_utf8(raw) else {
                return Err(InviteError::BadEndpoint("DNS name is not text".into()));
            };
            InviteEndpoint::Dns {
                name: DnsName::new(name)?,
                port: u16::from_be_bytes(r.array()?),
            }
        }
        t => {
            return Err(InviteError::BadEndpoint(format!(
                "unknown kind of address ({t})"
            )))
        }
    };
    endpoint.check()?;
    let secret = r.array()?;
    let expires_unix = u32::from_be_bytes(r.array()?);
    if !r.0.is_empty() {
        // Bytes left over under a valid checksum: not from a typo, but not ours either.
        return Err(InviteError::Typo);
    }
    Ok(Invitation {
        inviter_key,
        endpoint,
        secret,
        expires_unix,
    })
}

/// Reads fields off the front of a byte slice; running out is [`InviteError::Truncated`].
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], InviteError> {
        if self.0.len() < n {
            return Err(InviteError::Truncated);
        }
        let (head, tail) = self.0.split_at(n);
        self.0 = tail;
        Ok(head)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], InviteError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: u64 = 1_767_225_600; // 2026-01-01T00:00:00Z

    fn key() -> PublicKey {
        PublicKey::from_base64("hSDwCYkwp1R0i33ctD73Wg2/Og0mOBr066SpjqqbTmo=").unwrap()
    }

    fn v4() -> InviteEndpoint {
        "203.0.113.7:51820".parse().unwrap()
    }

    fn v6() -> InviteEndpoint {
        "[2001:db8::1]:51820".parse().unwrap()
    }

    fn dns() -> InviteEndpoint {
        "window.example.org:51820".parse().unwrap()
    }

    /// A fixed invitation, so that every test reproduces.
    fn fixed(endpoint: InviteEndpoint) -> Invitation {
        Invitation {
            inviter_key: key(),
            endpoint,
            secret: *b"twelve bytes",
            expires_unix: 1_767_312_000,
        }
    }

    /// The groups of a code without prefix or dashes.
    fn payload(code: &str) -> String {
        code[PREFIX.len()..].replace('-', "")
    }

    #[test]
    fn round_trip_every_endpoint_kind() {
        let longest = "a".repeat(61) + ".b";
        let endpoints = [
            v4(),
            v6(),
            dns(),
            format!("{longest}:1").parse().unwrap(),
            "x:65535".parse().unwrap(),
            "fqdn.example.:443".parse().unwrap(),
        ];
        for ep in endpoints {
            let inv = fixed(ep);
            let code = inv.encode();
            assert_eq!(Invitation::decode(&code), Ok(inv.clone()), "{code}");
            let fresh =
                Invitation::new(key(), inv.endpoint.clone(), Duration::from_secs(60), NOW).unwrap();
            assert_eq!(Invitation::decode(&fresh.encode()), Ok(fresh));
        }
    }

    #[test]
    fn text_form_is_prefix_and_groups_of_five() {
        let code = fixed(v4()).encode();
        assert!(code.starts_with(PREFIX));
        let groups: Vec<&str> = code[PREFIX.len()..].split('-').collect();
        assert!(groups[..groups.len() - 1].iter().all(|g| g.len() == 5));
        assert!(!groups.last().unwrap().is_empty() && groups.last().unwrap().len() <= 5);
        // QR alphanumeric mode: digits, capitals, and '-'.
        assert!(code
            .chars()
            .all(|c| c.is_ascii_digit() || c.is_ascii_uppercase() || c == '-'));
        for c in ['I', 'L', 'O', 'U'] {
            assert!(!payload(&code).contains(c));
        }
    }

    #[test]
    fn code_lengths() {
        // IPv4: 59 bytes = 95 characters; 119 with "EWIN1-" and 18 dashes.
        let code = fixed(v4()).encode();
        assert_eq!(payload(&code).len(), 95);
        assert_eq!(code.len(), 119);
        // IPv6: 71 bytes = 114 characters, 142 in all.
        assert_eq!(fixed(v6()).encode().len(), 142);
        // window.example.org (18 bytes): 74 bytes = 119 characters, 148 in all.
        assert_eq!(fixed(dns()).encode().len(), 148);
    }

    #[test]
    fn every_single_character_typo_is_caught() {
        let code = fixed(v4()).encode();
        let body = payload(&code);
        let mut tried = 0;
        for (i, orig) in body.chars().enumerate() {
            for &c in ALPHABET {
                let c = char::from(c);
                if c == orig {
                    continue;
                }
                let mut typo: Vec<char> = body.chars().collect();
                typo[i] = c;
                let typo: String = typo.into_iter().collect();
                let got = Invitation::decode(&format!("EWIN1-{typo}"));
                assert_eq!(got, Err(InviteError::Typo), "position {i}: {orig} -> {c}");
                tried += 1;
            }
        }
        assert_eq!(tried, 95 * 31);
    }

    #[test]
    fn left_out_added_and_swapped_characters_are_caught() {
        let code = fixed(v4()).encode();
        let body: Vec<char> = payload(&code).chars().collect();
        for i in 0..body.len() {
            let mut short = body.clone();
            short.remove(i);
            let short: String = short.into_iter().collect();
            let got = Invitation::decode(&format!("EWIN1-{short}"));
            assert!(
                got == Err(InviteError::Typo) || got == Err(InviteError::Truncated),
                "left out {i}: {got:?}"
            );

            let mut long = body.clone();
            long.insert(i, '7');
            let long: String = long.into_iter().collect();
            assert_eq!(
                Invitation::decode(&format!("EWIN1-{long}")),
                Err(InviteError::Typo),
                "added at {i}"
            );

            if i + 1 < body.len() && body[i] != body[i + 1] {
                let mut swapped = body.clone();
                swapped.swap(i, i + 1);
                let swapped: String = swapped.into_iter().collect();
                assert_eq!(
                    Invitation::decode(&format!("EWIN1-{swapped}")),
                    Err(InviteError::Typo),
                    "swapped at {i}"
                );
            }
        }
    }

    #[test]
    fn missing_tail_is_truncated() {
        let code = fixed(v4()).encode();
        for cut in [5, 20, 40] {
            let short = &code[..code.len() - cut];
            assert_eq!(
                Invitation::decode(short),
                Err(InviteError::Truncated),
                "{short}"
            );
        }
        assert_eq!(Invitation::decode("EWIN1-"), Err(InviteError::Truncated));
        assert_eq!(Invitation::decode("EWIN"), Err(InviteError::Truncated));
        assert_eq!(Invitation::decode("EWIN1-0"), Err(InviteError::Truncated));
    }

    #[test]
    fn forgiving_reading() {
        let inv = fixed(v4());
        let code = inv.encode();
        let body = payload(&code);
        // Lower case, spaces instead of dashes, no dashes at all, extra dashes, newlines.
        let variants = [
            code.to_lowercase(),
            code.replace('-', " "),
            format!("EWIN1{body}"),
            format!(
                "  ewin1 -- {}\n",
                body.chars().map(|c| format!("{c}-")).collect::<String>()
            ),
            code.replacen("EWIN", "EW1N", 1),
            code.replacen("EWIN", "ewln", 1),
        ];
        for v in variants {
            assert_eq!(Invitation::decode(&v), Ok(inv.clone()), "{v}");
        }
    }

    #[test]
    fn confusables_are_accepted() {
        let inv = fixed(v4());
        let code = inv.encode();
        let body = payload(&code);
        assert!(body.contains('0') && body.contains('1'), "{body}");
        let confused = body.replace('0', "O").replace('1', "I");
        assert_eq!(
            Invitation::decode(&format!("EWIN1-{confused}")),
            Ok(inv.clone())
        );
        let confused = body.replace('0', "o").replace('1', "l");
        assert_eq!(
            Invitation::decode(&format!("ewin1-{confused}")),
            Ok(inv.clone())
        );
        let confused = body.replace('1', "L");
        assert_eq!(Invitation::decode(&format!("EWINI-{confused}")), Ok(inv));
    }

    #[test]
    fn not_an_invitation() {
        for s in [
            "",
            "hello",
            "EWAN1-00000",
            "WG1-000",
            "1234567890",
            "ÉWIN1-0",
            "E",
        ] {
            assert_eq!(
                Invitation::decode(s),
                Err(InviteError::NotAnInvitation),
                "{s}"
            );
        }
        assert_eq!(
            Invitation::decode("EWINX-000"),
            Err(InviteError::NotAnInvitation)
        );
    }

    #[test]
    fn unsupported_version() {
        let code = fixed(v4()).encode();
        let v2 = code.replacen("EWIN1", "EWIN2", 1);
        assert_eq!(
            Invitation::decode(&v2),
            Err(InviteError::UnsupportedVersion(2))
        );
        assert_eq!(
            Invitation::decode("EWIN9-ABC"),
            Err(InviteError::UnsupportedVersion(9))
        );
        // A version byte of 2 under a valid checksum.
        let mut bytes = fixed(v4()).to_bytes();
        bytes[0] = 2;
        let n = bytes.len() - CHECKSUM_LEN;
        let sum = checksum(&bytes[..n]);
        bytes[n..].copy_from_slice(&sum);
        assert_eq!(
            decode_bytes(&bytes, true),
            Err(InviteError::UnsupportedVersion(2))
        );
    }

    #[test]
    fn bad_characters() {
        let code = fixed(v4()).encode();
        for bad in ['U', 'u', '#', '*', 'é', '_'] {
            let s = format!("{}{}{}", &code[..10], bad, &code[10..]);
            assert_eq!(
                Invitation::decode(&s),
                Err(InviteError::BadCharacter(bad.to_ascii_uppercase())),
                "{s}"
            );
        }
    }

    /// Re-seals bytes with a valid checksum, to reach the checks behind it.
    fn sealed(mut body: Vec<u8>) -> Vec<u8> {
        let sum = checksum(&body);
        body.extend_from_slice(&sum);
        body
    }

    #[test]
    fn bad_endpoints_under_a_valid_checksum() {
        let good = fixed(v4()).to_bytes();
        let body = &good[..good.len() - CHECKSUM_LEN];
        // Unknown tag.
        let mut b = body.to_vec();
        b[33] = 9;
        assert!(matches!(
            decode_bytes(&sealed(b), true),
            Err(InviteError::BadEndpoint(_))
        ));
        // Port 0.
        let mut b = body.to_vec();
        b[38] = 0;
        b[39] = 0;
        assert!(matches!(
            decode_bytes(&sealed(b), true),
            Err(InviteError::BadEndpoint(_))
        ));
        // 0.0.0.0.
        let mut b = body.to_vec();
        b[34..38].copy_from_slice(&[0, 0, 0, 0]);
        assert!(matches!(
            decode_bytes(&sealed(b), true),
            Err(InviteError::BadEndpoint(_))
        ));
        // DNS name that is not a host name, and one that is not UTF-8.
        for name in [&b"bad name"[..], b"\xff\xfe", b"-x"] {
            let mut b = body[..33].to_vec();
            b.push(TAG_DNS);
            b.push(name.len() as u8);
            b.extend_from_slice(name);
            b.extend_from_slice(&443u16.to_be_bytes());
            b.extend_from_slice(&[0; SECRET_LEN + 4]);
            assert!(matches!(
                decode_bytes(&sealed(b), true),
                Err(InviteError::BadEndpoint(_))
            ));
        }
        // Trailing bytes and short bodies under a valid checksum.
        let mut b = body.to_vec();
        b.push(0);
        assert_eq!(decode_bytes(&sealed(b), true), Err(InviteError::Typo));
        assert_eq!(
            decode_bytes(&sealed(body[..50].to_vec()), true),
            Err(InviteError::Truncated)
        );
        assert_eq!(
            decode_bytes(&sealed(vec![1]), true),
            Err(InviteError::Truncated)
        );
        assert_eq!(decode_bytes(&[1, 2, 3], true), Err(InviteError::Truncated));
    }

    #[test]
    fn endpoint_parsing_and_checks() {
        assert_eq!(v4().to_string(), "203.0.113.7:51820");
        assert_eq!(v6().to_string(), "[2001:db8::1]:51820");
        assert_eq!(dns().to_string(), "window.example.org:51820");
        for bad in [
            "203.0.113.7",
            "203.0.113.7:0",
            "0.0.0.0:51820",
            "[::]:51820",
            "224.0.0.1:51820",
            "host:99999",
            "host:",
            ":51820",
            "bad_name:1",
            "a..b:1",
            "-a:1",
            "a-.b:1",
            ".:1",
            "ünï.example:1",
        ] {
            assert!(
                matches!(
                    bad.parse::<InviteEndpoint>(),
                    Err(InviteError::BadEndpoint(_))
                ),
                "{bad}"
            );
        }
        let too_long = "a".repeat(64);
        assert!(DnsName::new(&too_long).is_err());
        assert!(DnsName::new(&"a".repeat(63)).is_ok());
        let inv = Invitation::new(
            key(),
            InviteEndpoint::Ip {
                addr: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
                port: 1,
            },
            Duration::from_secs(1),
            NOW,
        );
        assert!(matches!(inv, Err(InviteError::BadEndpoint(_))));
    }

    #[test]
    fn expiry() {
        let inv = Invitation::new(key(), v4(), Duration::from_secs(3600), NOW).unwrap();
        assert_eq!(u64::from(inv.expires_unix), NOW + 3600);
        assert!(!inv.is_expired(NOW));
        assert!(!inv.is_expired(NOW + 3599));
        assert!(inv.is_expired(NOW + 3600));
        assert!(inv.is_expired(u64::MAX));
        // Saturates rather than wrapping.
        let far = Invitation::new(key(), v4(), Duration::from_secs(u64::MAX), NOW).unwrap();
        assert_eq!(far.expires_unix, u32::MAX);
        let far = Invitation::new(key(), v4(), Duration::ZERO, u64::MAX).unwrap();
        assert_eq!(far.expires_unix, u32::MAX);
        // Expiry survives the code.
        let back = Invitation::decode(&inv.encode()).unwrap();
        assert!(back.is_expired(NOW + 3600) && !back.is_expired(NOW));
    }

    #[test]
    fn secrets_are_random() {
        let a = Invitation::new(key(), v4(), Duration::from_secs(60), NOW).unwrap();
        let b = Invitation::new(key(), v4(), Duration::from_secs(60), NOW).unwrap();
        assert_ne!(a.secret, b.secret);
        assert_ne!(a.id(), b.id());
        assert_ne!(a.encode(), b.encode());
    }

    #[test]
    fn temp_key_and_id_are_derived_from_the_secret_alone() {
        let a = fixed(v4());
        let b = fixed(dns());
        // Both sides (the inviter's stored invitation, the newcomer's decoded one) agree.
        let decoded = Invitation::decode(&a.encode()).unwrap();
        assert_eq!(
            a.temp_private_key().as_bytes(),
            decoded.temp_private_key().as_bytes()
        );
        assert_eq!(
            a.temp_private_key().as_bytes(),
            b.temp_private_key().as_bytes()
        );
        assert_eq!(a.id(), decoded.id());
        // Clamped like a WireGuard key; id is 16 lower-case hex digits.
        let k = a.temp_private_key();
        assert_eq!(k.as_bytes()[0] & 7, 0);
        assert_eq!(k.as_bytes()[31] & 0xc0, 0x40);
        assert_eq!(a.id().len(), 16);
        assert!(a
            .id()
            .chars()
            .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()));
        // The id is not a piece of the key (different labels).
        let key_hex: String = k.as_bytes().iter().map(|b| format!("{b:02x}")).collect();
        assert!(!key_hex.contains(&a.id()));
        // A different secret gives a different key and id.
        let mut c = fixed(v4());
        c.secret[0] ^= 1;
        assert_ne!(c.temp_private_key().as_bytes(), k.as_bytes());
        assert_ne!(c.id(), a.id());
    }

    #[test]
    fn derivations_are_pinned() {
        // Pinned so that both ends of a version-1 invitation, built apart, stay in step.
        let a = fixed(v4());
        let mut h = Sha256::new();
        h.update(b"ewindow-invite-v1/id");
        h.update(b"twelve bytes");
        let expected: String = h.finalize()[..8]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(a.id(), expected);
        let mut h = Sha256::new();
        h.update(b"ewindow-invite-v1/temp-key");
        h.update(b"twelve bytes");
        let raw: [u8; 32] = h.finalize().into();
        assert_eq!(a.temp_private_key().as_bytes(), &clamp_integer(raw));
    }

    #[test]
    fn debug_hides_the_secret() {
        let inv = fixed(v4());
        let dbg = format!("{inv:?}");
        assert!(dbg.contains("secret: .."), "{dbg}");
        assert!(!dbg.contains("twelve"), "{dbg}");
        assert!(!dbg.contains(&format!("{:?}", inv.secret)), "{dbg}");
        assert!(dbg.contains(&inv.id()));
    }

    #[test]
    fn base32_matches_known_values() {
        // Crockford base32, MSB first: 0xff -> 11111 111(00) -> "ZW".
        assert_eq!(base32_encode(&[0xff]), b"ZW");
        assert_eq!(base32_encode(&[0, 0, 0, 0, 0]), b"00000000");
        assert_eq!(base32_encode(b"foobar"), b"CSQPYRK1E8");
        assert_eq!(base32_decode(&[31, 28]), (vec![0xff], true));
        // Non-zero pad bits are not canonical.
        assert_eq!(base32_decode(&[31, 29]), (vec![0xff], false));
        // 5 bits left over: one character too many.
        assert!(!base32_decode(&[31, 28, 0]).1);
    }

    #[test]
    fn random_strings_never_panic() {
        let alphabet: Vec<char> = "0123456789ABCDEFGHJKMNPQRSTVWXYZabcxyzOILU -_#é€\u{0}\n"
            .chars()
            .collect();
        let mut rnd = [0u8; 256];
        for round in 0..3000 {
            getrandom::fill(&mut rnd).unwrap();
            let len = usize::from(rnd[0]) % 200;
            let body: String = rnd[1..=len]
                .iter()
                .map(|&b| alphabet[usize::from(b) % alphabet.len()])
                .collect();
            let s = if round % 2 == 0 {
                format!("EWIN1-{body}")
            } else {
                body
            };
            let _ = Invitation::decode(&s);
            // Raw bytes under a valid checksum reach the field parser.
            let raw = sealed(rnd[..len].to_vec());
            let _ = decode_bytes(&raw, true);
            let mut v1 = rnd[..len].to_vec();
            if let Some(b) = v1.first_mut() {
                *b = VERSION;
            }
            let _ = decode_bytes(&sealed(v1), true);
        }
    }

    #[test]
    fn error_messages_are_clear() {
        assert_eq!(
            InviteError::Typo.to_string(),
            "the code has a typo: check it again"
        );
        assert_eq!(
            InviteError::NotAnInvitation.to_string(),
            "this is not an invitation code: those start with EWIN1-"
        );
        assert_eq!(
            InviteError::Truncated.to_string(),
            "the code is too short: part of it is missing, check it again"
        );
        assert!(InviteError::UnsupportedVersion(2)
            .to_string()
            .contains("version 2"));
        assert!(InviteError::BadCharacter('U').to_string().contains("'U'"));
        let e = "bad_name:1".parse::<InviteEndpoint>().unwrap_err();
        assert_eq!(
            e.to_string(),
            "the invitation's address is not usable: DNS name \"bad_name\": only letters, \
             digits, '-' and '.' are allowed"
        );
    }
}
