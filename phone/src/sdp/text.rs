//! Raw SDP text: a peer's SDP normalised so the `sdp` crate parses it (line
//! order, unknown line types, `m=` tokens the crate does not know; see the
//! module doc of `sdp`), error-message clipping, and attribute look-ups on
//! parsed sections.

use std::io::Cursor;

use ::sdp::description::common::Attribute;
use ::sdp::description::media::MediaDescription;
use ::sdp::SessionDescription;

use super::{SdpError, MAX_SDP_LEN};

/// Media tokens the `sdp` crate accepts on an `m=` line.
const CRATE_MEDIA: [&str; 6] = ["audio", "video", "text", "application", "message", "image"];
/// Transport sub-tokens the `sdp` crate accepts on an `m=` line.
const CRATE_PROTOS: [&str; 10] = [
    "UDP", "RTP", "AVP", "SAVP", "SAVPF", "TLS", "DTLS", "SCTP", "AVPF", "udptl",
];

/// Normalises `text` (see the module doc) and parses it with the `sdp` crate.
pub(super) fn parse(text: &str) -> Result<SessionDescription, SdpError> {
    let (normalized, renamed) = normalize(text)?;
    let mut cursor = Cursor::new(normalized.as_bytes());
    let mut desc = SessionDescription::unmarshal(&mut cursor)
        .map_err(|e| SdpError::Parse(clip(&e.to_string())))?;
    for (index, original) in renamed.into_iter().enumerate() {
        if let (Some((media, proto)), Some(m)) = (original, desc.media_descriptions.get_mut(index))
        {
            m.media_name.media = media;
            m.media_name.protos = vec![proto];
        }
    }
    Ok(desc)
}

/// Original media and transport tokens of `m=` lines renamed for the parser,
/// by `m=` line index.
type Renamed = Vec<Option<(String, String)>>;

/// Puts the lines of an SDP body into RFC 4566 order, drops lines of unknown
/// type, checks `m=` ports and renames `m=` tokens the crate would refuse.
fn normalize(text: &str) -> Result<(String, Renamed), SdpError> {
    if text.len() > MAX_SDP_LEN {
        return Err(SdpError::Parse(format!(
            "SDP of {} bytes is larger than {MAX_SDP_LEN}",
            text.len()
        )));
    }
    let mut session: Vec<(u8, String)> = Vec::new();
    let mut media: Vec<Vec<(u8, String)>> = Vec::new();
    let mut renamed: Renamed = Vec::new();
    for raw in text.split('\n') {
        let line = raw.trim_end();
        if line.trim_start().is_empty() {
            continue;
        }
        let bytes = line.as_bytes();
        if bytes.len() < 2 || bytes[1] != b'=' || !bytes[0].is_ascii_lowercase() {
            return Err(SdpError::Parse(format!("malformed line {:?}", clip(line))));
        }
        let kind = bytes[0];
        if kind == b'm' {
            let (m_line, original) = normalize_m_line(&line[2..])?;
            media.push(vec![(0, m_line)]);
            renamed.push(original);
            continue;
        }
        let (rank, section) = match media.last_mut() {
            None => (session_rank(kind), &mut session),
            Some(section) => (media_rank(kind), section),
        };
        match rank {
            Some(r) => section.push((r, line.to_string())),
            None if b"vosiuepcbtrzkam".contains(&kind) => {
                return Err(SdpError::Parse(format!(
                    "line {:?} is not allowed here",
                    clip(line)
                )));
            }
            None => {} // unknown type letter: ignored (RFC 4566 §5)
        }
    }
    session.sort_by_key(|(rank, _)| *rank);
    let mut out = String::with_capacity(text.len() + 64);
    for (_, line) in session.iter().chain(media.iter_mut().flat_map(|section| {
        section.sort_by_key(|(rank, _)| *rank);
        section.iter()
    })) {
        out.push_str(line);
        out.push_str("\r\n");
    }
    Ok((out, renamed))
}

/// Order of session-level line types (RFC 4566 §5); `t=` and `r=` share a
/// rank so repeat lines stay behind their `t=`.
fn session_rank(kind: u8) -> Option<u8> {
    Some(match kind {
        b'v' => 0,
        b'o' => 1,
        b's' => 2,
        b'i' => 3,
        b'u' => 4,
        b'e' => 5,
        b'p' => 6,
        b'c' => 7,
        b'b' => 8,
        b't' | b'r' => 9,
        b'z' => 10,
        b'k' => 11,
        b'a' => 12,
        _ => return None,
    })
}

/// Order of media-level line types; the `m=` line itself has rank 0.
fn media_rank(kind: u8) -> Option<u8> {
    Some(match kind {
        b'i' => 1,
        b'c' => 2,
        b'b' => 3,
        b'k' => 4,
        b'a' => 5,
        _ => return None,
    })
}

/// Checks the port of an `m=` line (value after `m=`) and renames media or
/// transport tokens the crate does not know, returning the original ones.
fn normalize_m_line(value: &str) -> Result<(String, Option<(String, String)>), SdpError> {
    let tokens: Vec<&str> = value.split_whitespace().collect();
    if let Some(port) = tokens.get(1).and_then(|p| p.split('/').next()) {
        if !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()) {
            let too_big = port
                .parse::<u64>()
                .map_or(true, |p| p > u64::from(u16::MAX));
            if too_big {
                return Err(SdpError::Invalid(format!(
                    "m= port {} out of range",
                    clip(port)
                )));
            }
        }
    }
    if tokens.len() >= 4 {
        let known_media = CRATE_MEDIA.contains(&tokens[0]);
        let known_proto = tokens[2].split('/').all(|p| CRATE_PROTOS.contains(&p));
        if !known_media || !known_proto {
            let line = format!("m=application {} UDP {}", tokens[1], tokens[3..].join(" "));
            return Ok((line, Some((tokens[0].to_string(), tokens[2].to_string()))));
        }
    }
    Ok((format!("m={}", tokens.join(" ")), None))
}

/// Shortens a string for an error message.
pub(super) fn clip(s: &str) -> String {
    const MAX: usize = 120;
    if s.len() <= MAX {
        return s.to_string();
    }
    let mut end = MAX;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...", &s[..end])
}

/// The transport profile of an `m=` line as written.
pub(super) fn profile_of(media: &MediaDescription) -> String {
    media.media_name.protos.join("/")
}

/// Whether an attribute is present (case-insensitive name).
pub(super) fn has_attr(attrs: &[Attribute], key: &str) -> bool {
    attrs.iter().any(|a| a.key.trim().eq_ignore_ascii_case(key))
}

/// The value of the first attribute with that name (empty if valueless).
pub(super) fn attr_value<'a>(attrs: &'a [Attribute], key: &str) -> Option<&'a str> {
    attrs
        .iter()
        .find(|a| a.key.trim().eq_ignore_ascii_case(key))
        .map(|a| a.value.as_deref().unwrap_or("").trim())
}

/// The values of all attributes with that name, in order.
pub(super) fn attr_values(attrs: &[Attribute], key: &str) -> Vec<String> {
    attrs
        .iter()
        .filter(|a| a.key.trim().eq_ignore_ascii_case(key))
        .map(|a| a.value.as_deref().unwrap_or("").trim().to_string())
        .collect()
}
