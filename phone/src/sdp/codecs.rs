//! The codecs we speak and how they are written in SDP: [`AudioCodec`] and
//! [`VideoCodec`] with our payload types, `a=rtpmap` / `a=fmtp` reading
//! (H.264 packetization mode and `profile-level-id`), video RTCP feedback
//! (`a=rtcp-fb`), `telephone-event`, and the payload formats of a remote
//! `m=` line.

use std::fmt;

use ::sdp::description::media::MediaDescription;

use super::text::attr_values;
use super::{AudioFormat, SdpError};

/// Dynamic payload type we offer for Opus.
pub const PT_OPUS: u8 = 111;
/// Dynamic payload type we offer for Speex at 16 kHz.
pub const PT_SPEEX16: u8 = 97;
/// Dynamic payload type we offer for Speex at 8 kHz.
pub const PT_SPEEX8: u8 = 98;
/// Dynamic payload type we offer for `telephone-event/8000` (RFC 4733 DTMF).
pub const PT_TELEPHONE_EVENT: u8 = 101;
/// Dynamic payload type we offer for `telephone-event/48000`, only when Opus
/// is among our codecs (RFC 4733 wants the event clock to match the audio).
pub const PT_TELEPHONE_EVENT_48K: u8 = 102;
/// `a=fmtp` value we give for `telephone-event`: DTMF digits 0-9, *, #, A-D.
pub const TELEPHONE_EVENT_EVENTS: &str = "0-15";

/// Dynamic payload type we offer for VP8.
pub const PT_VP8: u8 = 96;
/// Dynamic payload type we offer for VP9.
pub const PT_VP9: u8 = 98;
/// Dynamic payload type we offer for H.264.
pub const PT_H264: u8 = 100;
/// Our offered payload type for H.264 in packetization mode 0 (single NAL unit), which
/// baresip 1.0's avcodec module speaks.
pub const PT_H264_MODE0: u8 = 99;
/// Our offered `a=fmtp` for H.264 in packetization mode 0.
pub const H264_MODE0_OFFER_FMTP: &str = "packetization-mode=0;profile-level-id=42e01f";
/// RTP clock rate of every video codec.
pub const VIDEO_CLOCK_RATE: u32 = 90000;
/// `a=fmtp` value we offer for H.264 (RFC 6184): non-interleaved mode,
/// Constrained Baseline level 3.1, and we accept any level the peer sends.
pub const H264_OFFER_FMTP: &str =
    "packetization-mode=1;profile-level-id=42e01f;level-asymmetry-allowed=1";
/// RTCP feedback we offer and accept for every video payload type, as
/// written after `a=rtcp-fb:PT `: generic NACK, PLI and FIR (RFC 4585/5104).
pub(super) const VIDEO_FEEDBACK: [&str; 3] = ["nack", "nack pli", "ccm fir"];

/// The `a=rtpmap` encoding name of RFC 4733 events (DTMF).
pub(super) const TELEPHONE_EVENT: &str = "telephone-event";

/// An audio codec the phone can send and receive.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AudioCodec {
    /// Opus (RFC 7587), 48 kHz, signalled as `opus/48000/2`.
    Opus,
    /// G.711 µ-law, static payload type 0.
    Pcmu,
    /// G.711 A-law, static payload type 8.
    Pcma,
    /// Speex wideband, 16 kHz.
    Speex16,
    /// Speex narrowband, 8 kHz.
    Speex8,
}

impl AudioCodec {
    /// Every codec, in the default preference order.
    pub const ALL: [AudioCodec; 5] = [
        AudioCodec::Opus,
        AudioCodec::Speex16,
        AudioCodec::Speex8,
        AudioCodec::Pcmu,
        AudioCodec::Pcma,
    ];

    /// Short lower-case name used in statistics and on the command line.
    pub fn name(self) -> &'static str {
        match self {
            AudioCodec::Opus => "opus",
            AudioCodec::Pcmu => "pcmu",
            AudioCodec::Pcma => "pcma",
            AudioCodec::Speex16 => "speex16",
            AudioCodec::Speex8 => "speex8",
        }
    }

    /// Encoding name as written in `a=rtpmap` (matched case-insensitively).
    pub fn encoding_name(self) -> &'static str {
        match self {
            AudioCodec::Opus => "opus",
            AudioCodec::Pcmu => "PCMU",
            AudioCodec::Pcma => "PCMA",
            AudioCodec::Speex16 | AudioCodec::Speex8 => "speex",
        }
    }

    /// RTP clock rate in Hz.
    pub fn clock_rate(self) -> u32 {
        match self {
            AudioCodec::Opus => 48000,
            AudioCodec::Pcmu | AudioCodec::Pcma | AudioCodec::Speex8 => 8000,
            AudioCodec::Speex16 => 16000,
        }
    }

    /// Channel count as written in `a=rtpmap`: 2 for Opus (RFC 7587 always
    /// signals `/2`), 1 for the others.
    pub fn channels(self) -> u32 {
        match self {
            AudioCodec::Opus => 2,
            _ => 1,
        }
    }

    /// Static payload type from RFC 3551, if the codec has one.
    pub fn static_pt(self) -> Option<u8> {
        match self {
            AudioCodec::Pcmu => Some(0),
            AudioCodec::Pcma => Some(8),
            _ => None,
        }
    }

    /// Payload type we use for this codec in our own offers.
    pub fn offer_pt(self) -> u8 {
        match self {
            AudioCodec::Opus => PT_OPUS,
            AudioCodec::Pcmu => 0,
            AudioCodec::Pcma => 8,
            AudioCodec::Speex16 => PT_SPEEX16,
            AudioCodec::Speex8 => PT_SPEEX8,
        }
    }

    /// Whether an `a=rtpmap` entry (`encoding/clock_rate/channels`, channels
    /// 1 when absent) describes this codec. The encoding name is compared
    /// case-insensitively. Opus also accepts 1 channel, for old peers that
    /// wrote `opus/48000`.
    pub fn matches(self, encoding: &str, clock_rate: u32, channels: u32) -> bool {
        self.encoding_name().eq_ignore_ascii_case(encoding)
            && self.clock_rate() == clock_rate
            && (channels == self.channels() || (self == AudioCodec::Opus && channels == 1))
    }

    /// Parses a comma-separated codec list from the command line, e.g.
    /// `"opus,pcmu,pcma,speex"`. Names are those of [`AudioCodec::name`],
    /// case-insensitive; `speex` expands to `[Speex16, Speex8]`. Duplicates
    /// keep their first position. An unknown name gives
    /// [`SdpError::UnknownCodec`], an empty list [`SdpError::Invalid`].
    pub fn parse_list(s: &str) -> Result<Vec<AudioCodec>, SdpError> {
        let mut out: Vec<AudioCodec> = Vec::new();
        for token in s.split(',').map(str::trim).filter(|t| !t.is_empty()) {
            let found: &[AudioCodec] = match token.to_ascii_lowercase().as_str() {
                "opus" => &[AudioCodec::Opus],
                "pcmu" => &[AudioCodec::Pcmu],
                "pcma" => &[AudioCodec::Pcma],
                "speex" => &[AudioCodec::Speex16, AudioCodec::Speex8],
                "speex16" => &[AudioCodec::Speex16],
                "speex8" => &[AudioCodec::Speex8],
                _ => return Err(SdpError::UnknownCodec(token.to_string())),
            };
            for codec in found {
                if !out.contains(codec) {
                    out.push(*codec);
                }
            }
        }
        if out.is_empty() {
            return Err(SdpError::Invalid("empty codec list".to_string()));
        }
        Ok(out)
    }
}

impl fmt::Display for AudioCodec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A video codec the phone can send and receive.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum VideoCodec {
    /// VP8 (RFC 7741).
    Vp8,
    /// VP9 (RFC 9628).
    Vp9,
    /// H.264 (RFC 6184), packetization mode 1 (non-interleaved) preferred, mode 0 (single
    /// NAL unit) accepted.
    H264,
}

impl VideoCodec {
    /// Every video codec, in the default preference order.
    pub const ALL: [VideoCodec; 3] = [VideoCodec::Vp8, VideoCodec::Vp9, VideoCodec::H264];

    /// Short lower-case name used in statistics and on the command line.
    pub fn name(self) -> &'static str {
        match self {
            VideoCodec::Vp8 => "vp8",
            VideoCodec::Vp9 => "vp9",
            VideoCodec::H264 => "h264",
        }
    }

    /// Encoding name as written in `a=rtpmap` (matched case-insensitively).
    pub fn encoding_name(self) -> &'static str {
        match self {
            VideoCodec::Vp8 => "VP8",
            VideoCodec::Vp9 => "VP9",
            VideoCodec::H264 => "H264",
        }
    }

    /// RTP clock rate in Hz: always 90000.
    pub fn clock_rate(self) -> u32 {
        VIDEO_CLOCK_RATE
    }

    /// Payload type we use for this codec in our own offers: VP8 96, VP9 98,
    /// H.264 100.
    pub fn offer_pt(self) -> u8 {
        match self {
            VideoCodec::Vp8 => PT_VP8,
            VideoCodec::Vp9 => PT_VP9,
            VideoCodec::H264 => PT_H264,
        }
    }

    /// `a=fmtp` value we offer for this codec, if any
    /// ([`H264_OFFER_FMTP`] for H.264).
    pub fn offer_fmtp(self) -> Option<&'static str> {
        match self {
            VideoCodec::H264 => Some(H264_OFFER_FMTP),
            _ => None,
        }
    }

    /// Parses a comma-separated codec list from the command line, e.g.
    /// `"vp8,h264"`. Names are those of [`VideoCodec::name`],
    /// case-insensitive. Duplicates keep their first position. An unknown
    /// name gives [`SdpError::UnknownCodec`], an empty list
    /// [`SdpError::Invalid`].
    pub fn parse_list(s: &str) -> Result<Vec<VideoCodec>, SdpError> {
        let mut out: Vec<VideoCodec> = Vec::new();
        for token in s.split(',').map(str::trim).filter(|t| !t.is_empty()) {
            let codec = VideoCodec::ALL
                .into_iter()
                .find(|c| c.name().eq_ignore_ascii_case(token))
                .ok_or_else(|| SdpError::UnknownCodec(token.to_string()))?;
            if !out.contains(&codec) {
                out.push(codec);
            }
        }
        if out.is_empty() {
            return Err(SdpError::Invalid("empty codec list".to_string()));
        }
        Ok(out)
    }

    /// Whether a remote payload format can be used as this codec: encoding
    /// name (case-insensitive) and clock rate match, and for H.264 the
    /// packetization mode is 1 or 0 (0 is the default when absent, RFC 6184);
    /// interleaved mode 2 is not supported.
    pub(super) fn accepts(self, format: &RemoteFormat, _answer: bool) -> bool {
        let mode_ok = || {
            matches!(
                packetization_mode(format.fmtp.as_deref()),
                None | Some("0") | Some("1")
            )
        };
        format
            .encoding
            .as_deref()
            .is_some_and(|e| e.eq_ignore_ascii_case(self.encoding_name()))
            && format.clock_rate == self.clock_rate()
            && (self != VideoCodec::H264 || mode_ok())
    }
}

impl fmt::Display for VideoCodec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The value of a `key=value` parameter of an `a=fmtp` value
/// (`;`-separated, key case-insensitive).
fn fmtp_param<'a>(fmtp: &'a str, key: &str) -> Option<&'a str> {
    fmtp.split(';').find_map(|p| {
        let (k, v) = p.split_once('=')?;
        k.trim().eq_ignore_ascii_case(key).then(|| v.trim())
    })
}

/// H.264 `packetization-mode` of an `a=fmtp` value, as written.
pub(super) fn packetization_mode(fmtp: Option<&str>) -> Option<&str> {
    fmtp.and_then(|f| fmtp_param(f, "packetization-mode"))
}

/// Our H.264 `a=fmtp` answer: the offer's packetization mode (0 when absent)
/// and its `profile-level-id` when it is well-formed (6 hex digits).
pub(super) fn h264_answer_fmtp(offer_fmtp: Option<&str>) -> String {
    let mode = packetization_mode(offer_fmtp).unwrap_or("0");
    let plid = offer_fmtp
        .and_then(|f| fmtp_param(f, "profile-level-id"))
        .filter(|p| p.len() == 6 && p.bytes().all(|b| b.is_ascii_hexdigit()));
    match plid {
        Some(p) => format!("packetization-mode={mode};profile-level-id={p}"),
        None => format!("packetization-mode={mode}"),
    }
}

/// Whether a negotiated H.264 `a=fmtp` is packetization mode 0 (single NAL unit per
/// packet): then the encoder must keep every NAL unit under the MTU.
pub fn h264_single_nal(fmtp: Option<&str>) -> bool {
    packetization_mode(fmtp).unwrap_or("0") == "0"
}

/// The video RTCP feedback a remote side announces for a payload type.
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct Feedback {
    pub(super) nack: bool,
    pub(super) pli: bool,
    pub(super) fir: bool,
}

impl Feedback {
    /// The `a=rtcp-fb` values (after the payload type) for what is on.
    pub(super) fn lines(self) -> Vec<&'static str> {
        let on = [self.nack, self.pli, self.fir];
        VIDEO_FEEDBACK
            .iter()
            .zip(on)
            .filter(|(_, on)| *on)
            .map(|(line, _)| *line)
            .collect()
    }
}

/// Reads `a=rtcp-fb:PT ...` and `a=rtcp-fb:* ...` lines for `pt`.
pub(super) fn remote_feedback(media: &MediaDescription, pt: u8) -> Feedback {
    let mut fb = Feedback::default();
    for value in attr_values(&media.attributes, "rtcp-fb") {
        let mut tokens = value.split_whitespace();
        let applies = match tokens.next() {
            Some("*") => true,
            Some(p) => p.parse::<u8>().ok() == Some(pt),
            None => false,
        };
        if !applies {
            continue;
        }
        let kind: Vec<String> = tokens.map(str::to_ascii_lowercase).collect();
        match kind
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>()
            .as_slice()
        {
            ["nack"] => fb.nack = true,
            ["nack", "pli"] => fb.pli = true,
            ["ccm", "fir"] => fb.fir = true,
            _ => {}
        }
    }
    fb
}

/// A payload format of a remote `m=` line.
#[derive(Clone, Debug)]
pub(super) struct RemoteFormat {
    pub(super) pt: u8,
    encoding: Option<String>,
    pub(super) clock_rate: u32,
    channels: u32,
    pub(super) fmtp: Option<String>,
}

impl RemoteFormat {
    pub(super) fn is_codec(&self, codec: AudioCodec) -> bool {
        self.encoding
            .as_deref()
            .is_some_and(|e| codec.matches(e, self.clock_rate, self.channels))
    }

    fn is_telephone_event(&self) -> bool {
        self.encoding
            .as_deref()
            .is_some_and(|e| e.eq_ignore_ascii_case(TELEPHONE_EVENT))
    }

    pub(super) fn audio_format(&self, codec: AudioCodec) -> AudioFormat {
        AudioFormat {
            codec,
            pt: self.pt,
            fmtp: self.fmtp.clone(),
        }
    }
}

/// The payload formats of an `m=` line, in its order, with their rtpmap and
/// fmtp. Static payload types 0 and 8 are known without `a=rtpmap`; other
/// payload types without one are looked up in `fallback` (our own offer
/// table, when reading an answer) or left unknown.
pub(super) fn remote_formats(
    media: &MediaDescription,
    fallback: Option<&[(u8, &'static str, u32, u32)]>,
) -> Vec<RemoteFormat> {
    let mut out: Vec<RemoteFormat> = Vec::new();
    for token in &media.media_name.formats {
        let Ok(pt) = token.parse::<u8>() else {
            continue;
        };
        if pt > 127 || out.iter().any(|f| f.pt == pt) {
            continue;
        }
        let rtpmap = media
            .attributes
            .iter()
            .filter(|a| a.key.eq_ignore_ascii_case("rtpmap"))
            .filter_map(|a| parse_rtpmap(a.value.as_deref()?))
            .find(|r| r.0 == pt);
        let (encoding, clock_rate, channels) = match rtpmap {
            Some((_, e, r, c)) => (Some(e), r, c),
            None => match pt {
                0 => (Some("PCMU".to_string()), 8000, 1),
                8 => (Some("PCMA".to_string()), 8000, 1),
                _ => match fallback.and_then(|t| t.iter().find(|e| e.0 == pt)) {
                    Some(&(_, e, r, c)) => (Some(e.to_string()), r, c),
                    None => (None, 0, 0),
                },
            },
        };
        let fmtp = media
            .attributes
            .iter()
            .filter(|a| a.key.eq_ignore_ascii_case("fmtp"))
            .filter_map(|a| {
                let (p, rest) = split_first_token(a.value.as_deref()?)?;
                (p.parse::<u8>().ok()? == pt).then(|| rest.to_string())
            })
            .next();
        out.push(RemoteFormat {
            pt,
            encoding,
            clock_rate,
            channels,
            fmtp,
        });
    }
    out
}

/// Parses an `a=rtpmap` value `PT encoding/rate[/channels]`.
fn parse_rtpmap(value: &str) -> Option<(u8, String, u32, u32)> {
    let (pt, rest) = split_first_token(value)?;
    let pt = pt.parse::<u8>().ok()?;
    let mut parts = rest.split('/');
    let encoding = parts.next()?.trim();
    if encoding.is_empty() {
        return None;
    }
    let rate = parts.next()?.trim().parse::<u32>().ok()?;
    let channels = match parts.next() {
        Some(c) => c.trim().parse::<u32>().ok()?,
        None => 1,
    };
    Some((pt, encoding.to_string(), rate, channels))
}

/// Splits `"first rest..."` at the first run of whitespace.
fn split_first_token(value: &str) -> Option<(&str, &str)> {
    let value = value.trim();
    let (first, rest) = value.split_once(|c: char| c.is_ascii_whitespace())?;
    Some((first, rest.trim()))
}

/// Chooses the telephone-event format: same clock rate as the codec, else
/// 8000 Hz, else the first one.
pub(super) fn pick_telephone_event(
    formats: &[RemoteFormat],
    clock_rate: u32,
) -> Option<&RemoteFormat> {
    let events: Vec<&RemoteFormat> = formats.iter().filter(|f| f.is_telephone_event()).collect();
    events
        .iter()
        .find(|f| f.clock_rate == clock_rate)
        .or_else(|| events.iter().find(|f| f.clock_rate == 8000))
        .or_else(|| events.first())
        .copied()
}
