//! SDP offer/answer (RFC 3264) for the phone's audio and video streams,
//! with SDES-SRTP keying (RFC 4568).
//!
//! Pure logic: no sockets, no clock, no randomness. The caller supplies the
//! local media description ([`LocalSession`]: audio, optional video, SRTP
//! policy and key material), session ids and the remote SDP text; this
//! module returns SDP text to send and a [`Negotiated`] that tells the media
//! pipeline where to send RTP/RTCP, with which payload type, in which
//! direction and with which SRTP keys.
//!
//! Parsing and serialising go through the `sdp` crate (webrtc-rs). It keeps
//! every attribute as a raw key/value pair (so `a=crypto`, `a=rtcp`,
//! `a=label` or vendor attributes survive untouched) and keeps every `m=`
//! line in order, which RFC 3264 answers need. Two things are added on top
//! of it, both before the crate sees the text, to be lenient with real peers:
//!
//! * lines are put back into RFC 4566 order (the crate's parser is a strict
//!   state machine) and lines with an unknown type letter are dropped, as
//!   RFC 4566 asks parsers to ignore them;
//! * an `m=` line whose media or transport token the crate does not know
//!   (`m=message 9 TCP/MSRP *`, `UDP/BFCP`...) is parsed under a neutral name
//!   and restored afterwards, so it can be rejected (port 0) instead of
//!   failing the whole call.
//!
//! What is negotiated: one audio stream with exactly one codec (plus
//! `telephone-event` for DTMF when both sides want it) and, when we have
//! video, one video stream with exactly one codec (VP8, VP9 or H.264 in
//! packetization mode 1). Every other `m=` line of an offer — extra audio or
//! video streams, application, T.38 — is answered with port 0 in the same
//! position. Video never makes a call fail: a video stream we cannot take
//! (no common codec, no usable crypto) is answered with port 0.
//!
//! SRTP is keyed with SDES `a=crypto` lines ([`SrtpMode`], [`CryptoSuite`],
//! [`Srtp`]); DTLS-SRTP (`UDP/TLS/RTP/SAVP(F)`) is not supported and such
//! streams are refused.
//!
//! Entry points: [`build_session_offer`], [`answer_session`],
//! [`read_session_answer`].

use std::fmt;
use std::io::Cursor;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::str::FromStr;

use ::sdp::description::common::{Address, Attribute, Bandwidth, ConnectionInformation};
use ::sdp::description::media::{MediaDescription, MediaName, RangedPort};
use ::sdp::description::session::{Origin, TimeDescription, Timing};
use ::sdp::SessionDescription;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig, STANDARD};
use base64::engine::DecodePaddingMode;
use base64::Engine as _;

/// User name written in the `o=` line of every SDP we produce.
pub const SDP_USERNAME: &str = "ewindow";
/// Session name written in the `s=` line of every SDP we produce.
pub const SDP_SESSION_NAME: &str = "ewindow";
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
/// Largest SDP body accepted; anything longer is refused before parsing.
pub const MAX_SDP_LEN: usize = 64 * 1024;
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
const VIDEO_FEEDBACK: [&str; 3] = ["nack", "nack pli", "ccm fir"];

const TELEPHONE_EVENT: &str = "telephone-event";

/// Media tokens the `sdp` crate accepts on an `m=` line.
const CRATE_MEDIA: [&str; 6] = ["audio", "video", "text", "application", "message", "image"];
/// Transport sub-tokens the `sdp` crate accepts on an `m=` line.
const CRATE_PROTOS: [&str; 10] = [
    "UDP", "RTP", "AVP", "SAVP", "SAVPF", "TLS", "DTLS", "SCTP", "AVPF", "udptl",
];

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

/// Media direction (RFC 3264 §5.1), always seen from the side that writes it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    /// Send and receive.
    SendRecv,
    /// Send only.
    SendOnly,
    /// Receive only.
    RecvOnly,
    /// Neither send nor receive (e.g. on hold).
    Inactive,
}

impl Direction {
    /// The direction seen from the other side: `sendonly` ⇄ `recvonly`.
    pub fn reverse(self) -> Direction {
        match self {
            Direction::SendOnly => Direction::RecvOnly,
            Direction::RecvOnly => Direction::SendOnly,
            other => other,
        }
    }

    /// Whether this direction includes sending.
    pub fn sends(self) -> bool {
        matches!(self, Direction::SendRecv | Direction::SendOnly)
    }

    /// Whether this direction includes receiving.
    pub fn receives(self) -> bool {
        matches!(self, Direction::SendRecv | Direction::RecvOnly)
    }

    /// Builds a direction from its send and receive halves.
    pub fn from_flags(send: bool, recv: bool) -> Direction {
        match (send, recv) {
            (true, true) => Direction::SendRecv,
            (true, false) => Direction::SendOnly,
            (false, true) => Direction::RecvOnly,
            (false, false) => Direction::Inactive,
        }
    }

    /// What both directions allow (both seen from the same side).
    pub fn intersect(self, other: Direction) -> Direction {
        Direction::from_flags(
            self.sends() && other.sends(),
            self.receives() && other.receives(),
        )
    }

    /// The SDP attribute name: `sendrecv`, `sendonly`, `recvonly`, `inactive`.
    pub fn attribute(self) -> &'static str {
        match self {
            Direction::SendRecv => "sendrecv",
            Direction::SendOnly => "sendonly",
            Direction::RecvOnly => "recvonly",
            Direction::Inactive => "inactive",
        }
    }

    /// Parses an SDP direction attribute name (case-insensitive).
    pub fn from_attribute(name: &str) -> Option<Direction> {
        [
            Direction::SendRecv,
            Direction::SendOnly,
            Direction::RecvOnly,
            Direction::Inactive,
        ]
        .into_iter()
        .find(|d| d.attribute().eq_ignore_ascii_case(name))
    }
}

/// Our side of the audio stream: what we offer, or what we accept when
/// answering.
#[derive(Clone, Debug, PartialEq)]
pub struct LocalAudio {
    /// Address written in `o=` and `c=` (where we receive RTP).
    pub addr: IpAddr,
    /// Local RTP port; RTCP is announced on `port + 1`.
    pub port: u16,
    /// Codecs in preference order (first is preferred). Must not be empty.
    pub codecs: Vec<AudioCodec>,
    /// Packet time announced in `a=ptime` (usually 20); 0 leaves it out.
    pub ptime_ms: u32,
    /// Direction we want (`SendRecv` for a normal call).
    pub direction: Direction,
    /// Bandwidth announced as `b=AS:` in kbit/s, if any.
    pub bandwidth_kbps: Option<u32>,
    /// Whether to offer/accept `telephone-event` (RFC 4733 DTMF).
    pub telephone_event: bool,
    /// Whether we offer/accept RTP and RTCP on one port (`a=rtcp-mux`,
    /// RFC 5761). Only used when the other side says so too.
    pub rtcp_mux: bool,
}

impl LocalAudio {
    /// A `LocalAudio` with the usual defaults: 20 ms ptime, `sendrecv`, no
    /// `b=AS`, telephone-event on, no rtcp-mux.
    pub fn new(addr: IpAddr, port: u16, codecs: Vec<AudioCodec>) -> LocalAudio {
        LocalAudio {
            addr,
            port,
            codecs,
            ptime_ms: 20,
            direction: Direction::SendRecv,
            bandwidth_kbps: None,
            telephone_event: true,
            rtcp_mux: false,
        }
    }

    /// Checks what [`build_session_offer`] assumes and [`answer_session`] /
    /// [`read_session_answer`] enforce: at least one codec, a non-zero port.
    pub fn validate(&self) -> Result<(), SdpError> {
        if self.codecs.is_empty() {
            return Err(SdpError::Invalid("no local codec configured".to_string()));
        }
        if self.port == 0 {
            return Err(SdpError::Invalid("local RTP port is 0".to_string()));
        }
        Ok(())
    }

    /// Payload table of our offer: `(pt, encoding, clock rate, channels)`,
    /// codecs first in preference order, then telephone-event entries.
    fn offer_table(&self) -> Vec<(u8, &'static str, u32, u32)> {
        let mut table: Vec<(u8, &'static str, u32, u32)> = Vec::new();
        for codec in &self.codecs {
            if table.iter().all(|e| e.0 != codec.offer_pt()) {
                table.push((
                    codec.offer_pt(),
                    codec.encoding_name(),
                    codec.clock_rate(),
                    codec.channels(),
                ));
            }
        }
        if self.telephone_event && !self.codecs.is_empty() {
            table.push((PT_TELEPHONE_EVENT, TELEPHONE_EVENT, 8000, 1));
            if self.codecs.contains(&AudioCodec::Opus) {
                table.push((PT_TELEPHONE_EVENT_48K, TELEPHONE_EVENT, 48000, 1));
            }
        }
        table
    }
}

/// One payload format of the negotiated stream.
#[derive(Clone, Debug, PartialEq)]
pub struct AudioFormat {
    /// The codec.
    pub codec: AudioCodec,
    /// RTP payload type number the remote side uses for it (the offerer's
    /// number when we answer; the answerer's number when we read an answer).
    pub pt: u8,
    /// The remote side's `a=fmtp` value for this payload type, if any
    /// (e.g. `stereo=1;sprop-stereo=1` for Opus).
    pub fmtp: Option<String>,
}

/// Result of a successful audio negotiation: what the media pipeline needs.
#[derive(Clone, Debug, PartialEq)]
pub struct NegotiatedAudio {
    /// Where to send RTP. The IP is unspecified (`0.0.0.0`) when the remote
    /// holds the call the RFC 2543 way or rejected the stream.
    pub remote_rtp: SocketAddr,
    /// Where to send RTCP: `a=rtcp` if given, else RTP port + 1; equal to
    /// `remote_rtp` when rtcp-mux was agreed.
    pub remote_rtcp: SocketAddr,
    /// Whether both sides agreed on RTP/RTCP multiplexing (RFC 5761).
    pub rtcp_mux: bool,
    /// The one codec used in both directions.
    pub format: AudioFormat,
    /// Remote payload type for `telephone-event`, if both sides want DTMF
    /// events. Prefers the clock rate of `format`, then 8000 Hz.
    pub telephone_event_pt: Option<u8>,
    /// OUR direction after negotiation (what the pipeline should do).
    pub direction: Direction,
    /// Remote `a=ptime` (media level, else session level), if any.
    pub ptime_ms: Option<u32>,
    /// Remote `b=AS` in kbit/s (media level, else session level), if any.
    pub remote_bandwidth_kbps: Option<u32>,
    /// Transport profile of the stream as written by the remote side, e.g.
    /// `RTP/AVP` or `RTP/SAVP` (see [`NegotiatedAudio::is_secure`]). A
    /// secure profile always comes with `srtp` set: the session functions
    /// refuse it otherwise.
    pub profile: String,
    /// Raw values of the remote `a=crypto` lines of the stream (RFC 4568),
    /// e.g. `1 AES_CM_128_HMAC_SHA1_80 inline:...`, in their order.
    pub crypto: Vec<String>,
    /// The SRTP keys agreed for this stream; `None` means plain RTP.
    pub srtp: Option<Srtp>,
}

impl NegotiatedAudio {
    /// Whether the profile asks for SRTP (`RTP/SAVP`, `RTP/SAVPF`,
    /// `UDP/TLS/RTP/SAVP(F)`).
    #[cfg_attr(not(test), allow(dead_code))] // used by tests and later callers
    pub fn is_secure(&self) -> bool {
        self.profile.to_ascii_uppercase().contains("SAVP")
    }
}

/// Why an SDP could not be used.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SdpError {
    /// The text is not SDP the parser understands (syntax, line order,
    /// missing mandatory `v=`/`o=`/`s=`/`t=` lines, oversized body...).
    #[error("SDP parse error: {0}")]
    Parse(String),
    /// No usable audio stream (no RTP `m=audio` line with a non-zero port).
    #[error("no usable audio stream in SDP")]
    NoAudio,
    /// Audio is there but no codec in common; the caller answers SIP 488.
    #[error("no common audio codec")]
    NoCommonCodec,
    /// Syntactically SDP, but a value is unusable: port out of range,
    /// missing `c=`, unparsable address, bad local configuration.
    #[error("invalid SDP: {0}")]
    Invalid(String),
    /// A codec name (command line) that is not known.
    #[error("unknown codec: {0}")]
    UnknownCodec(String),
    /// SRTP is needed but cannot be agreed: we require it and the peer
    /// offers or answers plain RTP, the peer requires it (`RTP/SAVP`) and we
    /// have it off, or no `a=crypto` line is usable. SIP 488.
    #[error("SRTP required but no usable crypto agreed")]
    SrtpRequired,
    /// The remote answer has `a=crypto` lines but none matches what we
    /// offered (unknown tag, other suite, key of the wrong length, not
    /// base64...). SIP 488.
    #[error("unusable a=crypto in answer: {0}")]
    BadCrypto(String),
}

impl SdpError {
    /// SIP status code a UAS should answer an INVITE with for this error:
    /// 488 (Not Acceptable Here) for media it cannot use, 400 for broken SDP,
    /// 500 for a local configuration problem.
    pub fn sip_status(&self) -> u16 {
        match self {
            SdpError::NoAudio
            | SdpError::NoCommonCodec
            | SdpError::SrtpRequired
            | SdpError::BadCrypto(_) => 488,
            SdpError::Parse(_) | SdpError::Invalid(_) => 400,
            SdpError::UnknownCodec(_) => 500,
        }
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
    fn accepts(self, format: &RemoteFormat, _answer: bool) -> bool {
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

/// Our side of the video stream.
#[derive(Clone, Debug, PartialEq)]
pub struct LocalVideo {
    /// Local RTP port (the address is [`LocalAudio::addr`]); RTCP is
    /// announced on `port + 1`. 0 disables video.
    pub port: u16,
    /// Codecs in preference order (first is preferred). Empty disables
    /// video.
    pub codecs: Vec<VideoCodec>,
    /// Direction we want (`SendRecv` for a normal call).
    pub direction: Direction,
    /// Bandwidth announced as `b=AS:` (kbit/s) and `b=TIAS:` (bit/s).
    pub bandwidth_kbps: Option<u32>,
    /// Whether we offer/accept `a=rtcp-mux` (RFC 5761) for video.
    pub rtcp_mux: bool,
}

impl LocalVideo {
    /// A `LocalVideo` with the usual defaults: `sendrecv`, no bandwidth, no
    /// rtcp-mux.
    #[cfg_attr(not(test), allow(dead_code))] // used by tests and later callers
    pub fn new(port: u16, codecs: Vec<VideoCodec>) -> LocalVideo {
        LocalVideo {
            port,
            codecs,
            direction: Direction::SendRecv,
            bandwidth_kbps: None,
            rtcp_mux: false,
        }
    }

    /// Whether this describes usable video: a non-zero port and at least
    /// one codec. Disabled video is left out of offers and refused (port 0)
    /// in answers.
    pub fn is_enabled(&self) -> bool {
        self.port != 0 && !self.codecs.is_empty()
    }

    /// Payload table of our offer: `(pt, encoding, clock rate, channels)`.
    fn offer_table(&self) -> Vec<(u8, &'static str, u32, u32)> {
        let mut table: Vec<(u8, &'static str, u32, u32)> = Vec::new();
        for codec in &self.codecs {
            if table.iter().all(|e| e.0 != codec.offer_pt()) {
                table.push((
                    codec.offer_pt(),
                    codec.encoding_name(),
                    codec.clock_rate(),
                    1,
                ));
            }
        }
        table
    }
}

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

    /// The default [`LocalSession::suites`]: AES-128 with 80-bit, then
    /// 32-bit tags (what every SDES peer supports).
    #[cfg_attr(not(test), allow(dead_code))] // used by tests and later callers
    pub const DEFAULT: [CryptoSuite; 2] = [
        CryptoSuite::AesCm128HmacSha1_80,
        CryptoSuite::AesCm128HmacSha1_32,
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

    /// Length of the SRTP authentication tag in bits (80 or 32).
    #[cfg_attr(not(test), allow(dead_code))] // used by tests and later callers
    pub fn auth_tag_bits(self) -> u32 {
        match self {
            CryptoSuite::AesCm128HmacSha1_80 | CryptoSuite::Aes256CmHmacSha1_80 => 80,
            CryptoSuite::AesCm128HmacSha1_32 | CryptoSuite::Aes256CmHmacSha1_32 => 32,
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

/// Everything we offer, or accept when answering, for one call.
#[derive(Clone, Debug)]
pub struct LocalSession {
    /// The audio stream (mandatory). Its `addr` is also used for video.
    pub audio: LocalAudio,
    /// The video stream, if we do video. `None` (or a disabled
    /// [`LocalVideo`]) leaves video out of offers and refuses it (port 0)
    /// in answers.
    pub video: Option<LocalVideo>,
    /// Our SRTP policy.
    pub srtp: SrtpMode,
    /// SRTP suites in preference order, offered with tags 1, 2...;
    /// [`CryptoSuite::DEFAULT`] by default. Duplicates are ignored.
    pub suites: Vec<CryptoSuite>,
    /// Our key material, one per stream.
    pub keys: LocalKeys,
}

impl LocalSession {
    /// An audio-only session without SRTP ([`SrtpMode::Off`]), default
    /// suites, and the given key material (used once SRTP is turned on).
    #[cfg_attr(not(test), allow(dead_code))] // used by tests and later callers
    pub fn new(audio: LocalAudio, keys: LocalKeys) -> LocalSession {
        LocalSession {
            audio,
            video: None,
            srtp: SrtpMode::Off,
            suites: CryptoSuite::DEFAULT.to_vec(),
            keys,
        }
    }

    /// Checks what [`build_session_offer`] assumes and [`answer_session`] /
    /// [`read_session_answer`] enforce: valid audio
    /// ([`LocalAudio::validate`]) and at least one suite when SRTP is
    /// [`SrtpMode::Required`]. Video is not checked (disabled video is just
    /// left out).
    pub fn validate(&self) -> Result<(), SdpError> {
        self.audio.validate()?;
        if self.srtp == SrtpMode::Required && self.suites.is_empty() {
            return Err(SdpError::Invalid(
                "SRTP required but no crypto suite configured".to_string(),
            ));
        }
        Ok(())
    }

    /// The enabled video stream, if any.
    fn enabled_video(&self) -> Option<&LocalVideo> {
        self.video.as_ref().filter(|v| v.is_enabled())
    }

    /// Our SDES parameters.
    fn sdes(&self) -> Sdes<'_> {
        let mut suites: Vec<CryptoSuite> = Vec::new();
        if self.srtp != SrtpMode::Off {
            for suite in &self.suites {
                if !suites.contains(suite) {
                    suites.push(*suite);
                }
            }
        }
        Sdes {
            mode: self.srtp,
            suites,
            keys: &self.keys,
        }
    }
}

/// Result of a successful video negotiation.
#[derive(Clone, Debug, PartialEq)]
pub struct NegotiatedVideo {
    /// Where to send RTP.
    pub remote_rtp: SocketAddr,
    /// Where to send RTCP: `a=rtcp` if given, else RTP port + 1; equal to
    /// `remote_rtp` when rtcp-mux was agreed.
    pub remote_rtcp: SocketAddr,
    /// Whether both sides agreed on RTP/RTCP multiplexing (RFC 5761).
    pub rtcp_mux: bool,
    /// The one codec used in both directions.
    pub codec: VideoCodec,
    /// RTP payload type number the remote side uses for it (the offerer's
    /// when we answer, the answerer's when we read an answer).
    pub pt: u8,
    /// The remote side's `a=fmtp` value for `pt`, if any.
    pub fmtp: Option<String>,
    /// OUR direction after negotiation.
    pub direction: Direction,
    /// Remote bandwidth in kbit/s: `b=AS`, else `b=TIAS` / 1000 (media
    /// level, else session level).
    pub remote_bandwidth_kbps: Option<u32>,
    /// Generic NACK (`a=rtcp-fb:PT nack`) agreed: retransmission requests.
    pub nack: bool,
    /// Picture Loss Indication (`a=rtcp-fb:PT nack pli`) agreed.
    pub pli: bool,
    /// Full Intra Request (`a=rtcp-fb:PT ccm fir`) agreed.
    pub fir: bool,
    /// Transport profile of the stream as written by the remote side.
    pub profile: String,
    /// The SRTP keys agreed for this stream; `None` is plain RTP.
    pub srtp: Option<Srtp>,
}

/// Result of a successful session negotiation.
#[derive(Clone, Debug, PartialEq)]
pub struct Negotiated {
    /// The audio stream (always there; `Inactive` if the peer rejected it
    /// in its answer).
    pub audio: NegotiatedAudio,
    /// The video stream, if both sides agreed on one.
    pub video: Option<NegotiatedVideo>,
}

/// Our SDES parameters for one negotiation: the mode, the suites we offer
/// (deduplicated, empty when off; tag = index + 1) and our key material.
struct Sdes<'a> {
    mode: SrtpMode,
    suites: Vec<CryptoSuite>,
    keys: &'a LocalKeys,
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
    fn offer_profile(&self) -> &'static str {
        if self.mode == SrtpMode::Required {
            "RTP/SAVP"
        } else {
            "RTP/AVP"
        }
    }

    /// The `a=crypto` values of our offer for a stream, tags 1, 2...
    fn offer_crypto(&self, video: bool) -> Vec<String> {
        self.suites
            .iter()
            .enumerate()
            .map(|(i, suite)| crypto_value(i as u32 + 1, *suite, self.key(video)))
            .collect()
    }
}

/// Builds our session offer. Lines end with CRLF.
///
/// Audio: one `m=audio` line with all our codecs in preference order
/// (Opus 111, Speex 97/98, PCMU 0, PCMA 8, each with `a=rtpmap`),
/// `telephone-event` 101 at 8000 Hz (and 102 at 48000 Hz when Opus is
/// offered) if enabled, `a=rtcp:PORT+1` (plus `a=rtcp-mux` if wanted),
/// `a=ptime`, `b=AS` when set and an explicit direction attribute.
///
/// Video, when [`LocalSession::video`] is enabled: an `m=video` line with
/// our video codecs in preference order (VP8 96, VP9 98, H.264 100 with
/// [`H264_OFFER_FMTP`]), `a=rtcp-fb:PT nack`, `nack pli` and `ccm fir` for
/// every payload type, `a=rtcp:PORT+1` (plus `a=rtcp-mux` if wanted),
/// `b=AS`/`b=TIAS` when a bandwidth is set and a direction attribute.
///
/// SRTP ([`LocalSession::srtp`]): `Required` writes profile `RTP/SAVP`,
/// `Optional` and `Off` write `RTP/AVP`; `Required` and `Optional` add one
/// `a=crypto:TAG SUITE inline:KEY` per suite of [`LocalSession::suites`]
/// (tags 1, 2... in that order) at the end of every m-line, the key being
/// the first [`CryptoSuite::key_len`] bytes of that stream's [`LocalKeys`]
/// in padded standard base64.
///
/// `local` should pass [`LocalSession::validate`]; with no audio codec the
/// `m=` line would have no format.
pub fn build_session_offer(local: &LocalSession, session_id: u64, session_version: u64) -> String {
    let sdes = local.sdes();
    let video = local.enabled_video();
    let audio = &local.audio;
    let profile = sdes.offer_profile();
    let formats: Vec<FormatLine> = audio
        .offer_table()
        .into_iter()
        .map(|(pt, encoding, rate, channels)| FormatLine {
            pt,
            rtpmap: rtpmap_value(pt, encoding, rate, channels),
            fmtp: (encoding == TELEPHONE_EVENT).then(|| TELEPHONE_EVENT_EVENTS.to_string()),
            feedback: Vec::new(),
        })
        .collect();
    let mut desc = base_session(audio, session_id, session_version);
    desc.media_descriptions.push(media_section(&Section {
        media: "audio",
        port: audio.port,
        profile,
        formats: &formats,
        bandwidth_kbps: audio.bandwidth_kbps,
        tias: false,
        ptime_ms: audio.ptime_ms,
        direction: audio.direction,
        offer_rtcp_mux: audio.rtcp_mux,
        muxed: false,
        crypto: sdes.offer_crypto(false),
    }));
    if let Some(video) = video {
        let mut formats: Vec<FormatLine> = Vec::new();
        for codec in &video.codecs {
            let pt = codec.offer_pt();
            if formats.iter().any(|f| f.pt == pt) {
                continue;
            }
            formats.push(FormatLine {
                pt,
                rtpmap: rtpmap_value(pt, codec.encoding_name(), codec.clock_rate(), 1),
                fmtp: codec.offer_fmtp().map(str::to_string),
                feedback: VIDEO_FEEDBACK.to_vec(),
            });
            if *codec == VideoCodec::H264 {
                formats.push(FormatLine {
                    pt: PT_H264_MODE0,
                    rtpmap: rtpmap_value(
                        PT_H264_MODE0,
                        codec.encoding_name(),
                        codec.clock_rate(),
                        1,
                    ),
                    fmtp: Some(H264_MODE0_OFFER_FMTP.to_string()),
                    feedback: VIDEO_FEEDBACK.to_vec(),
                });
            }
        }
        desc.media_descriptions.push(media_section(&Section {
            media: "video",
            port: video.port,
            profile,
            formats: &formats,
            bandwidth_kbps: video.bandwidth_kbps,
            tias: true,
            ptime_ms: 0,
            direction: video.direction,
            offer_rtcp_mux: video.rtcp_mux,
            muxed: false,
            crypto: sdes.offer_crypto(true),
        }));
    }
    desc.marshal()
}

/// Answers a remote offer (RFC 3264) with audio, video and SDES-SRTP.
///
/// The answer has as many `m=` lines as the offer, in the same order; every
/// line we do not take (extra audio or video streams, application, T.38,
/// unknown media) gets port 0.
///
/// Audio: the first RTP `m=audio` line with a codec of ours (and acceptable
/// SRTP, see below). We pick the first codec in OUR preference order that
/// the offer has (encoding name case-insensitively + clock rate + channels;
/// static payload types 0 and 8 are understood without `a=rtpmap`) and
/// answer with the offerer's payload type numbers: one codec, plus
/// `telephone-event` if offered and enabled. Our direction is ours
/// intersected with the offer's, reversed; an offer with `c=0.0.0.0`
/// (RFC 2543 hold) means we do not send. `rtcp-mux` is used if both sides
/// ask for it.
///
/// Video, when we have it: the first RTP `m=video` line holding a codec of
/// ours, picking the first codec in OUR preference order (H.264 only from a
/// payload type whose `a=fmtp` has `packetization-mode=1`), answered with
/// the offerer's payload type; H.264 is answered with
/// `packetization-mode=1` and the offer's `profile-level-id`. `nack`,
/// `pli`, `fir` are on only where the offer has that `a=rtcp-fb` for the
/// payload type (or `*`), and are echoed. A video stream we cannot take (no
/// local video, no common codec, no usable crypto, bad address) gets port
/// 0; video never fails the call.
///
/// SRTP per stream (RFC 4568): the first `a=crypto` in the offer's order
/// with a suite in [`LocalSession::suites`] and a key of the right length
/// (lifetime and MKI parameters after `|` are tolerated, unknown suites and
/// broken lines skipped) is answered with the same tag and suite and our
/// own key; the profile is echoed. Without such a line: an `RTP/SAVP(F)`
/// offer is refused, as is any offer when we are `Required`; `Optional` and
/// `Off` answer plain `RTP/AVP`. `Off` never uses crypto and refuses
/// `RTP/SAVP(F)`. DTLS profiles (`UDP/TLS/...`) are always refused.
///
/// Errors: [`SdpError::Parse`] / [`SdpError::Invalid`] for broken input or
/// local configuration, [`SdpError::NoAudio`] when there is no usable audio
/// stream, [`SdpError::NoCommonCodec`] when no audio codec matches,
/// [`SdpError::SrtpRequired`] when the audio stream cannot be secured as
/// required (all SIP 488 except the first two).
pub fn answer_session(
    remote_offer: &str,
    local: &LocalSession,
    session_id: u64,
    session_version: u64,
) -> Result<(String, Negotiated), SdpError> {
    local.validate()?;
    let sdes = local.sdes();
    let video = local.enabled_video();
    let local = &local.audio;
    let offer = parse(remote_offer)?;

    let mut saw_audio = false;
    let mut srtp_refused = false;
    let mut chosen: Option<(usize, AudioFormat, Vec<RemoteFormat>, Option<Srtp>)> = None;
    for (index, media) in offer.media_descriptions.iter().enumerate() {
        if !is_usable_audio(media) {
            continue;
        }
        saw_audio = true;
        let formats = remote_formats(media, None);
        let found = local.codecs.iter().find_map(|codec| {
            formats
                .iter()
                .find(|f| f.is_codec(*codec))
                .map(|f| f.audio_format(*codec))
        });
        let Some(format) = found else {
            continue;
        };
        let Ok(srtp) = answer_crypto(media, &sdes, false) else {
            srtp_refused = true;
            continue;
        };
        chosen = Some((index, format, formats, srtp));
        break;
    }
    let (index, format, formats, srtp) = match chosen {
        Some(c) => c,
        None if srtp_refused => return Err(SdpError::SrtpRequired),
        None if saw_audio => return Err(SdpError::NoCommonCodec),
        None => return Err(SdpError::NoAudio),
    };
    let media = &offer.media_descriptions[index];

    let rtcp_mux = local.rtcp_mux && has_attr(&media.attributes, "rtcp-mux");
    let transport = remote_transport(&offer, media, rtcp_mux)?;
    let offered = stream_direction(&offer, media);
    let mut direction = local.direction.intersect(offered.reverse());
    if transport.rtp.ip().is_unspecified() {
        direction = direction.intersect(Direction::RecvOnly);
    }
    let te = if local.telephone_event {
        pick_telephone_event(&formats, format.codec.clock_rate())
    } else {
        None
    };
    let profile = profile_of(media);

    let mut answer_formats = vec![FormatLine {
        pt: format.pt,
        rtpmap: rtpmap_value(
            format.pt,
            format.codec.encoding_name(),
            format.codec.clock_rate(),
            format.codec.channels(),
        ),
        fmtp: None,
        feedback: Vec::new(),
    }];
    if let Some(te) = te {
        answer_formats.push(FormatLine {
            pt: te.pt,
            rtpmap: rtpmap_value(te.pt, TELEPHONE_EVENT, te.clock_rate, 1),
            fmtp: Some(TELEPHONE_EVENT_EVENTS.to_string()),
            feedback: Vec::new(),
        });
    }
    let audio_section = media_section(&Section {
        media: "audio",
        port: local.port,
        profile: &profile,
        formats: &answer_formats,
        bandwidth_kbps: local.bandwidth_kbps,
        tias: false,
        ptime_ms: local.ptime_ms,
        direction,
        offer_rtcp_mux: rtcp_mux,
        muxed: rtcp_mux,
        crypto: srtp.iter().map(Srtp::answer_crypto).collect(),
    });

    let video_answer = video.and_then(|video| {
        offer
            .media_descriptions
            .iter()
            .enumerate()
            .filter(|(i, _)| *i != index)
            .find_map(|(i, m)| answer_video(&offer, m, video, &sdes).map(|(s, n)| (i, s, n)))
    });

    let (video_index, mut video_section, negotiated_video) = match video_answer {
        Some((i, section, n)) => (Some(i), Some(section), Some(n)),
        None => (None, None, None),
    };
    let mut audio_section = Some(audio_section);
    let mut desc = base_session(local, session_id, session_version);
    for (i, m) in offer.media_descriptions.iter().enumerate() {
        let section = if i == index {
            audio_section.take()
        } else if Some(i) == video_index {
            video_section.take()
        } else {
            None
        };
        desc.media_descriptions
            .push(section.unwrap_or_else(|| rejected_media(m)));
    }

    let audio = NegotiatedAudio {
        remote_rtp: transport.rtp,
        remote_rtcp: transport.rtcp,
        rtcp_mux,
        format,
        telephone_event_pt: te.map(|t| t.pt),
        direction,
        ptime_ms: ptime(&offer, media),
        remote_bandwidth_kbps: bandwidth_as(&offer, media),
        profile,
        crypto: attr_values(&media.attributes, "crypto"),
        srtp,
    };
    Ok((
        desc.marshal(),
        Negotiated {
            audio,
            video: negotiated_video,
        },
    ))
}

/// Answers one offered `m=` line as our video stream, if it is an RTP
/// video stream we can take; `None` means it gets port 0.
fn answer_video(
    offer: &SessionDescription,
    media: &MediaDescription,
    local: &LocalVideo,
    sdes: &Sdes,
) -> Option<(MediaDescription, NegotiatedVideo)> {
    if !is_usable_video(media) {
        return None;
    }
    let formats = remote_formats(media, None);
    // Our codec order first; among H.264 payload types, mode 1 before mode 0.
    let (codec, format) = local.codecs.iter().find_map(|codec| {
        formats
            .iter()
            .filter(|f| codec.accepts(f, false))
            .min_by_key(|f| packetization_mode(f.fmtp.as_deref()) != Some("1"))
            .map(|f| (*codec, f))
    })?;
    let srtp = answer_crypto(media, sdes, true).ok()?;
    let rtcp_mux = local.rtcp_mux && has_attr(&media.attributes, "rtcp-mux");
    let transport = remote_transport(offer, media, rtcp_mux).ok()?;
    let mut direction = local
        .direction
        .intersect(stream_direction(offer, media).reverse());
    if transport.rtp.ip().is_unspecified() {
        direction = direction.intersect(Direction::RecvOnly);
    }
    let feedback = remote_feedback(media, format.pt);
    let profile = profile_of(media);
    let line = FormatLine {
        pt: format.pt,
        rtpmap: rtpmap_value(format.pt, codec.encoding_name(), codec.clock_rate(), 1),
        fmtp: (codec == VideoCodec::H264).then(|| h264_answer_fmtp(format.fmtp.as_deref())),
        feedback: feedback.lines(),
    };
    let section = media_section(&Section {
        media: "video",
        port: local.port,
        profile: &profile,
        formats: std::slice::from_ref(&line),
        bandwidth_kbps: local.bandwidth_kbps,
        tias: true,
        ptime_ms: 0,
        direction,
        offer_rtcp_mux: rtcp_mux,
        muxed: rtcp_mux,
        crypto: srtp.iter().map(Srtp::answer_crypto).collect(),
    });
    let negotiated = NegotiatedVideo {
        remote_rtp: transport.rtp,
        remote_rtcp: transport.rtcp,
        rtcp_mux,
        codec,
        pt: format.pt,
        fmtp: format.fmtp.clone(),
        direction,
        remote_bandwidth_kbps: bandwidth_video(offer, media),
        nack: feedback.nack,
        pli: feedback.pli,
        fir: feedback.fir,
        profile,
        srtp,
    };
    Some((section, negotiated))
}

/// Reads the remote answer to the offer we built with
/// [`build_session_offer`] from the same `local`.
///
/// Audio: the first `m=audio` line. The codec is the first format in the
/// answer's order that we offered (a dynamic payload type the answer lists
/// without `a=rtpmap` is understood through our offer's numbering). A
/// rejected stream (port 0) is not an error: the result has direction
/// `Inactive` (and needs no crypto). `c=0.0.0.0` means we do not send;
/// `a=inactive` gives `Inactive`.
///
/// Video: the first `m=video` line; absent, port 0, no codec we offered
/// (H.264 with an explicit packetization mode other than 1), a bad address
/// or unusable crypto give `video: None`, never an error. `nack`/`pli`/`fir`
/// follow the answer's `a=rtcp-fb`.
///
/// SRTP per stream: the answer's `a=crypto` must carry a tag we offered
/// with the same suite and a key of that suite's length; its key becomes
/// [`Srtp::remote_key`], ours for that suite [`Srtp::local_key`]. Without
/// one the stream is plain RTP when we are `Optional` (or `Off`) and the
/// answer's profile is not `RTP/SAVP(F)`; otherwise audio fails with
/// [`SdpError::SrtpRequired`] (no `a=crypto` at all) or
/// [`SdpError::BadCrypto`] (only unusable ones).
///
/// Errors: [`SdpError::Parse`] / [`SdpError::Invalid`] for broken input or
/// local configuration, [`SdpError::NoAudio`] without an `m=audio` line,
/// [`SdpError::NoCommonCodec`] when the answer names no audio codec we
/// offered, and the SRTP errors above.
pub fn read_session_answer(
    remote_answer: &str,
    local: &LocalSession,
) -> Result<Negotiated, SdpError> {
    local.validate()?;
    let sdes = local.sdes();
    let video = local.enabled_video();
    let local = &local.audio;
    let answer = parse(remote_answer)?;
    let media = answer
        .media_descriptions
        .iter()
        .find(|m| m.media_name.media.eq_ignore_ascii_case("audio"))
        .ok_or(SdpError::NoAudio)?;
    let rejected = media.media_name.port.value == 0;
    let table = local.offer_table();
    let formats = remote_formats(media, Some(&table));

    let picked = formats.iter().find_map(|f| {
        local
            .codecs
            .iter()
            .find(|c| f.is_codec(**c))
            .map(|c| f.audio_format(*c))
    });
    let format = match picked {
        Some(f) => f,
        None if rejected => AudioFormat {
            codec: local.codecs[0],
            pt: local.codecs[0].offer_pt(),
            fmtp: None,
        },
        None => return Err(SdpError::NoCommonCodec),
    };
    let srtp = if rejected {
        None
    } else {
        read_crypto(media, &sdes, false)?
    };

    let rtcp_mux = !rejected && local.rtcp_mux && has_attr(&media.attributes, "rtcp-mux");
    let transport = match remote_transport(&answer, media, rtcp_mux) {
        Ok(t) => t,
        Err(_) if rejected => {
            let ip = match local.addr {
                IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
                IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
            };
            Transport {
                rtp: SocketAddr::new(ip, 0),
                rtcp: SocketAddr::new(ip, 0),
            }
        }
        Err(e) => return Err(e),
    };
    let direction = if rejected {
        Direction::Inactive
    } else {
        let mut d = local
            .direction
            .intersect(stream_direction(&answer, media).reverse());
        if transport.rtp.ip().is_unspecified() {
            d = d.intersect(Direction::RecvOnly);
        }
        d
    };
    let telephone_event_pt = if local.telephone_event && !rejected {
        pick_telephone_event(&formats, format.codec.clock_rate()).map(|t| t.pt)
    } else {
        None
    };

    let audio = NegotiatedAudio {
        remote_rtp: transport.rtp,
        remote_rtcp: transport.rtcp,
        rtcp_mux,
        format,
        telephone_event_pt,
        direction,
        ptime_ms: ptime(&answer, media),
        remote_bandwidth_kbps: bandwidth_as(&answer, media),
        profile: profile_of(media),
        crypto: attr_values(&media.attributes, "crypto"),
        srtp,
    };
    let video = video.and_then(|v| {
        let m = answer
            .media_descriptions
            .iter()
            .find(|m| m.media_name.media.eq_ignore_ascii_case("video"))?;
        read_video(&answer, m, v, &sdes)
    });
    Ok(Negotiated { audio, video })
}

/// Reads the answer's video stream; `None` when it is rejected or unusable.
fn read_video(
    answer: &SessionDescription,
    media: &MediaDescription,
    local: &LocalVideo,
    sdes: &Sdes,
) -> Option<NegotiatedVideo> {
    if !is_usable_video(media) {
        return None;
    }
    let table = local.offer_table();
    let formats = remote_formats(media, Some(&table));
    let (codec, format) = formats.iter().find_map(|f| {
        local
            .codecs
            .iter()
            .find(|c| c.accepts(f, true))
            .map(|c| (*c, f))
    })?;
    let srtp = read_crypto(media, sdes, true).ok()?;
    let rtcp_mux = local.rtcp_mux && has_attr(&media.attributes, "rtcp-mux");
    let transport = remote_transport(answer, media, rtcp_mux).ok()?;
    let mut direction = local
        .direction
        .intersect(stream_direction(answer, media).reverse());
    if transport.rtp.ip().is_unspecified() {
        direction = direction.intersect(Direction::RecvOnly);
    }
    let feedback = remote_feedback(media, format.pt);
    Some(NegotiatedVideo {
        remote_rtp: transport.rtp,
        remote_rtcp: transport.rtcp,
        rtcp_mux,
        codec,
        pt: format.pt,
        fmtp: format.fmtp.clone(),
        direction,
        remote_bandwidth_kbps: bandwidth_video(answer, media),
        nack: feedback.nack,
        pli: feedback.pli,
        fir: feedback.fir,
        profile: profile_of(media),
        srtp,
    })
}

// ---------------------------------------------------------------------------
// SDES (RFC 4568)
// ---------------------------------------------------------------------------

/// Base64 decoder for `inline:` keys: standard alphabet, padding optional
/// (some peers leave it out).
const KEY_BASE64: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// A usable `a=crypto` line.
#[derive(Debug)]
struct CryptoLine {
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
    fn answer_crypto(&self) -> String {
        crypto_value(self.tag, self.suite, &self.local_key)
    }
}

/// Parses an `a=crypto` value `TAG SUITE inline:KEY[|LIFETIME][|MKI:LEN]
/// [SESSION-PARAMS]`. Only the first key parameter is used; lifetime, MKI
/// and session parameters are ignored. Errors say why the line is unusable.
fn parse_crypto(value: &str) -> Result<CryptoLine, String> {
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
fn is_secure_profile(profile: &str) -> bool {
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
fn answer_crypto(
    media: &MediaDescription,
    sdes: &Sdes,
    video: bool,
) -> Result<Option<Srtp>, SdpError> {
    let profile = profile_of(media);
    let secure = is_secure_profile(&profile);
    if sdes.mode == SrtpMode::Off {
        return if secure {
            Err(SdpError::SrtpRequired)
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
fn read_crypto(
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
    if sdes.mode == SrtpMode::Required || is_secure_profile(&profile) {
        return Err(match problem {
            Some(p) => SdpError::BadCrypto(p),
            None => SdpError::SrtpRequired,
        });
    }
    Ok(None)
}

// ---------------------------------------------------------------------------
// Video helpers
// ---------------------------------------------------------------------------

/// The value of a `key=value` parameter of an `a=fmtp` value
/// (`;`-separated, key case-insensitive).
fn fmtp_param<'a>(fmtp: &'a str, key: &str) -> Option<&'a str> {
    fmtp.split(';').find_map(|p| {
        let (k, v) = p.split_once('=')?;
        k.trim().eq_ignore_ascii_case(key).then(|| v.trim())
    })
}

/// H.264 `packetization-mode` of an `a=fmtp` value, as written.
fn packetization_mode(fmtp: Option<&str>) -> Option<&str> {
    fmtp.and_then(|f| fmtp_param(f, "packetization-mode"))
}

/// Our H.264 `a=fmtp` answer: the offer's packetization mode (0 when absent)
/// and its `profile-level-id` when it is well-formed (6 hex digits).
fn h264_answer_fmtp(offer_fmtp: Option<&str>) -> String {
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
struct Feedback {
    nack: bool,
    pli: bool,
    fir: bool,
}

impl Feedback {
    /// The `a=rtcp-fb` values (after the payload type) for what is on.
    fn lines(self) -> Vec<&'static str> {
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
fn remote_feedback(media: &MediaDescription, pt: u8) -> Feedback {
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

/// An RTP video stream we could accept: `m=video`, non-zero port, RTP
/// profile.
fn is_usable_video(media: &MediaDescription) -> bool {
    media.media_name.media.eq_ignore_ascii_case("video")
        && media.media_name.port.value != 0
        && is_rtp_profile(&profile_of(media))
}

/// Video bandwidth in kbit/s: `b=AS`, else `b=TIAS` / 1000, media level
/// then session level.
fn bandwidth_video(session: &SessionDescription, media: &MediaDescription) -> Option<u32> {
    let find = |bws: &[Bandwidth]| {
        let get = |kind: &str| {
            bws.iter()
                .find(|b| !b.experimental && b.bandwidth_type.eq_ignore_ascii_case(kind))
                .map(|b| b.bandwidth)
        };
        get("AS")
            .and_then(|v| u32::try_from(v).ok())
            .or_else(|| get("TIAS").and_then(|v| u32::try_from(v / 1000).ok()))
    };
    find(&media.bandwidth).or_else(|| find(&session.bandwidth))
}

// ---------------------------------------------------------------------------
// Parsing
// ---------------------------------------------------------------------------

/// Normalises `text` (see the module doc) and parses it with the `sdp` crate.
fn parse(text: &str) -> Result<SessionDescription, SdpError> {
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
fn clip(s: &str) -> String {
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

// ---------------------------------------------------------------------------
// Reading parsed SDP
// ---------------------------------------------------------------------------

/// A payload format of a remote `m=` line.
#[derive(Clone, Debug)]
struct RemoteFormat {
    pt: u8,
    encoding: Option<String>,
    clock_rate: u32,
    channels: u32,
    fmtp: Option<String>,
}

impl RemoteFormat {
    fn is_codec(&self, codec: AudioCodec) -> bool {
        self.encoding
            .as_deref()
            .is_some_and(|e| codec.matches(e, self.clock_rate, self.channels))
    }

    fn is_telephone_event(&self) -> bool {
        self.encoding
            .as_deref()
            .is_some_and(|e| e.eq_ignore_ascii_case(TELEPHONE_EVENT))
    }

    fn audio_format(&self, codec: AudioCodec) -> AudioFormat {
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
fn remote_formats(
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
fn pick_telephone_event(formats: &[RemoteFormat], clock_rate: u32) -> Option<&RemoteFormat> {
    let events: Vec<&RemoteFormat> = formats.iter().filter(|f| f.is_telephone_event()).collect();
    events
        .iter()
        .find(|f| f.clock_rate == clock_rate)
        .or_else(|| events.iter().find(|f| f.clock_rate == 8000))
        .or_else(|| events.first())
        .copied()
}

/// An RTP audio stream we could accept: `m=audio`, non-zero port, RTP
/// profile.
fn is_usable_audio(media: &MediaDescription) -> bool {
    media.media_name.media.eq_ignore_ascii_case("audio")
        && media.media_name.port.value != 0
        && is_rtp_profile(&profile_of(media))
}

/// Whether a transport profile carries RTP (`RTP/AVP`, `RTP/AVPF`,
/// `RTP/SAVP`, `RTP/SAVPF`, also behind `UDP/TLS/`).
fn is_rtp_profile(profile: &str) -> bool {
    let p = profile.to_ascii_uppercase();
    ["RTP/AVP", "RTP/AVPF", "RTP/SAVP", "RTP/SAVPF"]
        .iter()
        .any(|suffix| p.ends_with(suffix))
}

/// The transport profile of an `m=` line as written.
fn profile_of(media: &MediaDescription) -> String {
    media.media_name.protos.join("/")
}

/// Whether an attribute is present (case-insensitive name).
fn has_attr(attrs: &[Attribute], key: &str) -> bool {
    attrs.iter().any(|a| a.key.trim().eq_ignore_ascii_case(key))
}

/// The value of the first attribute with that name (empty if valueless).
fn attr_value<'a>(attrs: &'a [Attribute], key: &str) -> Option<&'a str> {
    attrs
        .iter()
        .find(|a| a.key.trim().eq_ignore_ascii_case(key))
        .map(|a| a.value.as_deref().unwrap_or("").trim())
}

/// The values of all attributes with that name, in order.
fn attr_values(attrs: &[Attribute], key: &str) -> Vec<String> {
    attrs
        .iter()
        .filter(|a| a.key.trim().eq_ignore_ascii_case(key))
        .map(|a| a.value.as_deref().unwrap_or("").trim().to_string())
        .collect()
}

/// The direction written for a stream: media level, else session level,
/// else `sendrecv`.
fn stream_direction(session: &SessionDescription, media: &MediaDescription) -> Direction {
    let find = |attrs: &[Attribute]| {
        attrs
            .iter()
            .find_map(|a| Direction::from_attribute(a.key.trim()))
    };
    find(&media.attributes)
        .or_else(|| find(&session.attributes))
        .unwrap_or(Direction::SendRecv)
}

/// `a=ptime` of a stream (media level, else session level).
fn ptime(session: &SessionDescription, media: &MediaDescription) -> Option<u32> {
    attr_value(&media.attributes, "ptime")
        .or_else(|| attr_value(&session.attributes, "ptime"))
        .and_then(|v| v.parse::<u32>().ok())
        .filter(|p| *p > 0)
}

/// `b=AS` of a stream (media level, else session level), in kbit/s.
fn bandwidth_as(session: &SessionDescription, media: &MediaDescription) -> Option<u32> {
    let find = |bws: &[Bandwidth]| {
        bws.iter()
            .find(|b| !b.experimental && b.bandwidth_type.eq_ignore_ascii_case("AS"))
            .and_then(|b| u32::try_from(b.bandwidth).ok())
    };
    find(&media.bandwidth).or_else(|| find(&session.bandwidth))
}

/// Remote RTP and RTCP addresses of a stream.
struct Transport {
    rtp: SocketAddr,
    rtcp: SocketAddr,
}

/// Works out where to send RTP and RTCP: `c=` (media level, else session
/// level), the `m=` port, `a=rtcp` (port and optional address) or port + 1.
fn remote_transport(
    session: &SessionDescription,
    media: &MediaDescription,
    rtcp_mux: bool,
) -> Result<Transport, SdpError> {
    let connection = media
        .connection_information
        .as_ref()
        .or(session.connection_information.as_ref())
        .ok_or_else(|| SdpError::Invalid("missing c= line".to_string()))?;
    let ip = parse_connection_address(connection)?;
    let port = u16::try_from(media.media_name.port.value)
        .map_err(|_| SdpError::Invalid("m= port out of range".to_string()))?;
    let rtp = SocketAddr::new(ip, port);
    if rtcp_mux {
        return Ok(Transport { rtp, rtcp: rtp });
    }
    let rtcp = match attr_value(&media.attributes, "rtcp") {
        Some(value) => {
            let tokens: Vec<&str> = value.split_whitespace().collect();
            let port_token = tokens.first().copied().unwrap_or("");
            let rtcp_port = port_token
                .parse::<u64>()
                .ok()
                .and_then(|p| u16::try_from(p).ok())
                .filter(|p| *p != 0)
                .ok_or_else(|| {
                    SdpError::Invalid(format!("a=rtcp port {:?} out of range", clip(port_token)))
                })?;
            let rtcp_ip = match tokens.get(3) {
                Some(addr) => parse_ip(addr)?,
                None => ip,
            };
            SocketAddr::new(rtcp_ip, rtcp_port)
        }
        // An odd port 65535 leaves no room for RTCP: use the RTP port.
        None => SocketAddr::new(ip, port.checked_add(1).unwrap_or(port)),
    };
    Ok(Transport { rtp, rtcp })
}

/// The IP address of a `c=` line (a multicast `/ttl` suffix is dropped).
fn parse_connection_address(connection: &ConnectionInformation) -> Result<IpAddr, SdpError> {
    let address = connection
        .address
        .as_ref()
        .ok_or_else(|| SdpError::Invalid("c= line without address".to_string()))?;
    parse_ip(&address.address)
}

/// Parses an SDP address token as an IP address; host names are refused.
fn parse_ip(token: &str) -> Result<IpAddr, SdpError> {
    let host = token.split('/').next().unwrap_or("");
    IpAddr::from_str(host)
        .map_err(|_| SdpError::Invalid(format!("unparsable address {:?}", clip(host))))
}

// ---------------------------------------------------------------------------
// Writing SDP
// ---------------------------------------------------------------------------

/// A payload format line group to write: the format number, its
/// `a=rtpmap` value, optional `a=fmtp` value and `a=rtcp-fb` values (all
/// without the number).
struct FormatLine {
    pt: u8,
    rtpmap: String,
    fmtp: Option<String>,
    feedback: Vec<&'static str>,
}

/// `PT encoding/rate[/channels]`, channels only when more than one.
fn rtpmap_value(pt: u8, encoding: &str, rate: u32, channels: u32) -> String {
    if channels > 1 {
        format!("{pt} {encoding}/{rate}/{channels}")
    } else {
        format!("{pt} {encoding}/{rate}")
    }
}

/// `IP4` or `IP6` for an address.
fn address_type(addr: IpAddr) -> &'static str {
    match addr {
        IpAddr::V4(_) => "IP4",
        IpAddr::V6(_) => "IP6",
    }
}

/// The session part of our SDP: `v=`, `o=`, `s=`, `c=`, `t=0 0`.
fn base_session(local: &LocalAudio, session_id: u64, session_version: u64) -> SessionDescription {
    SessionDescription {
        version: 0,
        origin: Origin {
            username: SDP_USERNAME.to_string(),
            session_id,
            session_version,
            network_type: "IN".to_string(),
            address_type: address_type(local.addr).to_string(),
            unicast_address: local.addr.to_string(),
        },
        session_name: SDP_SESSION_NAME.to_string(),
        connection_information: Some(ConnectionInformation {
            network_type: "IN".to_string(),
            address_type: address_type(local.addr).to_string(),
            address: Some(Address {
                address: local.addr.to_string(),
                ttl: None,
                range: None,
            }),
        }),
        time_descriptions: vec![TimeDescription {
            timing: Timing {
                start_time: 0,
                stop_time: 0,
            },
            repeat_times: vec![],
        }],
        ..SessionDescription::default()
    }
}

/// What to write in one of our `m=` sections.
struct Section<'a> {
    /// `audio` or `video`.
    media: &'static str,
    port: u16,
    profile: &'a str,
    formats: &'a [FormatLine],
    /// Written as `b=AS:` (kbit/s), and as `b=TIAS:` (bit/s) if `tias`.
    bandwidth_kbps: Option<u32>,
    tias: bool,
    /// `a=ptime`; 0 leaves it out.
    ptime_ms: u32,
    direction: Direction,
    /// Whether to write `a=rtcp-mux`.
    offer_rtcp_mux: bool,
    /// Whether RTCP is on the RTP port (`a=rtcp:PORT`, else `PORT+1`).
    muxed: bool,
    /// `a=crypto` values.
    crypto: Vec<String>,
}

/// Our `m=audio` or `m=video` section: per format `a=rtpmap`, `a=fmtp`,
/// `a=rtcp-fb`; then `a=rtcp`, `a=rtcp-mux`, `a=ptime`, the direction and
/// `a=crypto`.
fn media_section(s: &Section) -> MediaDescription {
    let attr = |key: &str, value: Option<String>| Attribute::new(key.to_string(), value);
    let mut attributes = Vec::new();
    for f in s.formats {
        attributes.push(attr("rtpmap", Some(f.rtpmap.clone())));
        if let Some(fmtp) = &f.fmtp {
            attributes.push(attr("fmtp", Some(format!("{} {fmtp}", f.pt))));
        }
        for fb in &f.feedback {
            attributes.push(attr("rtcp-fb", Some(format!("{} {fb}", f.pt))));
        }
    }
    let rtcp_port = if s.muxed {
        Some(s.port)
    } else {
        s.port.checked_add(1)
    };
    if let Some(rtcp_port) = rtcp_port {
        attributes.push(attr("rtcp", Some(rtcp_port.to_string())));
    }
    if s.offer_rtcp_mux {
        attributes.push(attr("rtcp-mux", None));
    }
    if s.ptime_ms > 0 {
        attributes.push(attr("ptime", Some(s.ptime_ms.to_string())));
    }
    attributes.push(attr(s.direction.attribute(), None));
    for crypto in &s.crypto {
        attributes.push(attr("crypto", Some(crypto.clone())));
    }
    let mut bandwidth = Vec::new();
    if let Some(kbps) = s.bandwidth_kbps {
        bandwidth.push(Bandwidth {
            experimental: false,
            bandwidth_type: "AS".to_string(),
            bandwidth: u64::from(kbps),
        });
        if s.tias {
            bandwidth.push(Bandwidth {
                experimental: false,
                bandwidth_type: "TIAS".to_string(),
                bandwidth: u64::from(kbps) * 1000,
            });
        }
    }
    MediaDescription {
        media_name: MediaName {
            media: s.media.to_string(),
            port: RangedPort {
                value: s.port as isize,
                range: None,
            },
            protos: vec![s.profile.to_string()],
            formats: s.formats.iter().map(|f| f.pt.to_string()).collect(),
        },
        bandwidth,
        attributes,
        ..MediaDescription::default()
    }
}

/// A rejected `m=` line for the answer: same media, transport and formats,
/// port 0, no attributes (RFC 3264 §6).
fn rejected_media(offered: &MediaDescription) -> MediaDescription {
    let mut formats = offered.media_name.formats.clone();
    if formats.is_empty() {
        formats.push("0".to_string());
    }
    MediaDescription {
        media_name: MediaName {
            media: offered.media_name.media.clone(),
            port: RangedPort {
                value: 0,
                range: None,
            },
            protos: offered.media_name.protos.clone(),
            formats,
        },
        ..MediaDescription::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // The audio-only API of the first version, kept as thin test wrappers
    // over the session functions so its tests still run unchanged: offers
    // are plain (`Off`), answers and offers are handled in `Optional` mode
    // (plain stays plain; an `RTP/SAVP` offer with a usable key is keyed).

    /// An audio-only session around `local`.
    fn audio_session(local: &LocalAudio, mode: SrtpMode) -> LocalSession {
        let mut s = LocalSession::new(local.clone(), keys(1));
        s.srtp = mode;
        s
    }

    fn build_offer(local: &LocalAudio, session_id: u64, session_version: u64) -> String {
        build_session_offer(
            &audio_session(local, SrtpMode::Off),
            session_id,
            session_version,
        )
    }

    fn answer_offer(
        remote_offer: &str,
        local: &LocalAudio,
        session_id: u64,
        session_version: u64,
    ) -> Result<(String, NegotiatedAudio), SdpError> {
        let session = audio_session(local, SrtpMode::Optional);
        answer_session(remote_offer, &session, session_id, session_version)
            .map(|(sdp, n)| (sdp, n.audio))
    }

    fn read_answer(remote_answer: &str, local: &LocalAudio) -> Result<NegotiatedAudio, SdpError> {
        read_session_answer(remote_answer, &audio_session(local, SrtpMode::Optional))
            .map(|n| n.audio)
    }

    const BARESIP_OFFER: &str = "v=0
o=- 3920146740 3920146740 IN IP4 127.0.0.1
s=-
c=IN IP4 127.0.0.1
t=0 0
m=audio 21000 RTP/AVP 96 0 8 101
b=AS:128
a=rtpmap:96 opus/48000/2
a=fmtp:96 stereo=1;sprop-stereo=1
a=rtpmap:0 PCMU/8000
a=rtpmap:8 PCMA/8000
a=rtpmap:101 telephone-event/8000
a=fmtp:101 0-15
a=rtcp:21001
a=sendrecv
a=label:1
a=ssrc:123 cname:x
m=video 21002 RTP/AVP 100
a=rtpmap:100 VP8/90000
a=sendrecv
";

    const CRYPTO: &str =
        "1 AES_CM_128_HMAC_SHA1_80 inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz|2^20|1:1";

    const LINPHONE_OFFER: &str = "v=0
o=alice 2890 2890 IN IP4 198.51.100.7
s=Talk
c=IN IP4 198.51.100.7
t=0 0
a=rtcp-xr:rcvr-rtt=all:10000 stat-summary=loss,dup,jitt,TTL voip-metrics
a=record:off
m=audio 7078 RTP/AVP 96 97 98 0 8 18 101 99 100
a=rtpmap:96 opus/48000/2
a=fmtp:96 useinbandfec=1
a=rtpmap:97 speex/16000
a=fmtp:97 vbr=on
a=rtpmap:98 speex/8000
a=fmtp:98 vbr=on
a=fmtp:18 annexb=yes
a=rtpmap:101 telephone-event/48000
a=rtpmap:99 telephone-event/16000
a=rtpmap:100 telephone-event/8000
a=rtcp-fb:* trr-int 1000
a=rtcp-fb:* ccm tmmbr
";

    /// Turns the LF test fixtures into CRLF, as they travel in SIP.
    fn crlf(s: &str) -> String {
        s.replace('\n', "\r\n")
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn sock(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    fn local(codecs: &[AudioCodec]) -> LocalAudio {
        LocalAudio::new(ip("192.0.2.10"), 40000, codecs.to_vec())
    }

    fn all_codecs() -> LocalAudio {
        local(&[
            AudioCodec::Opus,
            AudioCodec::Pcmu,
            AudioCodec::Pcma,
            AudioCodec::Speex16,
            AudioCodec::Speex8,
        ])
    }

    /// A minimal offer with one audio m-line; `media` is inserted after the
    /// session part (with c=).
    fn offer_with(media: &str) -> String {
        crlf(&format!(
            "v=0\no=- 1 1 IN IP4 198.51.100.1\ns=-\nc=IN IP4 198.51.100.1\nt=0 0\n{media}"
        ))
    }

    fn baresip_savp() -> String {
        crlf(&BARESIP_OFFER.replace("RTP/AVP 96", "RTP/SAVP 96").replace(
            "a=ssrc:123 cname:x\n",
            &format!("a=ssrc:123 cname:x\na=crypto:{CRYPTO}\n"),
        ))
    }

    fn media_lines(sdp: &str) -> Vec<&str> {
        sdp.lines().filter(|l| l.starts_with("m=")).collect()
    }

    // --- codecs and directions ------------------------------------------

    #[test]
    fn codec_table_matches_rtp_registrations() {
        let rows = [
            (AudioCodec::Opus, "opus", "opus", 48000, 2, None, 111),
            (AudioCodec::Pcmu, "pcmu", "PCMU", 8000, 1, Some(0), 0),
            (AudioCodec::Pcma, "pcma", "PCMA", 8000, 1, Some(8), 8),
            (AudioCodec::Speex16, "speex16", "speex", 16000, 1, None, 97),
            (AudioCodec::Speex8, "speex8", "speex", 8000, 1, None, 98),
        ];
        for (codec, name, enc, rate, ch, spt, opt) in rows {
            assert_eq!(codec.name(), name);
            assert_eq!(codec.to_string(), name);
            assert_eq!(codec.encoding_name(), enc);
            assert_eq!(codec.clock_rate(), rate);
            assert_eq!(codec.channels(), ch);
            assert_eq!(codec.static_pt(), spt);
            assert_eq!(codec.offer_pt(), opt);
        }
    }

    #[test]
    fn codec_matching_is_case_insensitive_and_checks_rate_and_channels() {
        assert!(AudioCodec::Opus.matches("OPUS", 48000, 2));
        assert!(
            AudioCodec::Opus.matches("opus", 48000, 1),
            "old opus/48000 tolerated"
        );
        assert!(!AudioCodec::Opus.matches("opus", 16000, 2));
        assert!(AudioCodec::Pcmu.matches("pcmu", 8000, 1));
        assert!(!AudioCodec::Pcmu.matches("PCMU", 8000, 2));
        assert!(AudioCodec::Speex16.matches("Speex", 16000, 1));
        assert!(!AudioCodec::Speex16.matches("speex", 8000, 1));
        assert!(!AudioCodec::Speex8.matches("speex", 32000, 1));
    }

    #[test]
    fn parse_list_expands_speex_and_keeps_order() {
        assert_eq!(
            AudioCodec::parse_list("opus,pcmu,pcma,speex").unwrap(),
            vec![
                AudioCodec::Opus,
                AudioCodec::Pcmu,
                AudioCodec::Pcma,
                AudioCodec::Speex16,
                AudioCodec::Speex8
            ]
        );
        assert_eq!(
            AudioCodec::parse_list(" PCMA , speex8,opus ").unwrap(),
            vec![AudioCodec::Pcma, AudioCodec::Speex8, AudioCodec::Opus]
        );
    }

    #[test]
    fn parse_list_drops_duplicates_keeping_first_position() {
        assert_eq!(
            AudioCodec::parse_list("speex8,speex,pcmu,pcmu").unwrap(),
            vec![AudioCodec::Speex8, AudioCodec::Speex16, AudioCodec::Pcmu]
        );
    }

    #[test]
    fn parse_list_rejects_unknown_and_empty() {
        assert_eq!(
            AudioCodec::parse_list("opus,g729"),
            Err(SdpError::UnknownCodec("g729".to_string()))
        );
        assert!(matches!(
            AudioCodec::parse_list(""),
            Err(SdpError::Invalid(_))
        ));
        assert!(matches!(
            AudioCodec::parse_list(" , ,"),
            Err(SdpError::Invalid(_))
        ));
    }

    #[test]
    fn direction_reverse_intersect_and_attribute_names() {
        use Direction::*;
        assert_eq!(SendOnly.reverse(), RecvOnly);
        assert_eq!(RecvOnly.reverse(), SendOnly);
        assert_eq!(SendRecv.reverse(), SendRecv);
        assert_eq!(Inactive.reverse(), Inactive);
        assert_eq!(SendRecv.intersect(RecvOnly), RecvOnly);
        assert_eq!(SendOnly.intersect(RecvOnly), Inactive);
        assert_eq!(SendOnly.intersect(SendRecv), SendOnly);
        for d in [SendRecv, SendOnly, RecvOnly, Inactive] {
            assert_eq!(Direction::from_attribute(d.attribute()), Some(d));
            assert_eq!(Direction::from_flags(d.sends(), d.receives()), d);
        }
        assert_eq!(Direction::from_attribute("SENDONLY"), Some(SendOnly));
        assert_eq!(Direction::from_attribute("label"), None);
    }

    #[test]
    fn local_audio_validate_rejects_empty_codecs_and_port_zero() {
        assert!(all_codecs().validate().is_ok());
        assert!(matches!(local(&[]).validate(), Err(SdpError::Invalid(_))));
        let mut l = all_codecs();
        l.port = 0;
        assert!(matches!(l.validate(), Err(SdpError::Invalid(_))));
        assert!(matches!(
            answer_offer(&crlf(BARESIP_OFFER), &local(&[]), 1, 1),
            Err(SdpError::Invalid(_))
        ));
    }

    #[test]
    fn errors_map_to_sip_status_codes() {
        assert_eq!(SdpError::NoCommonCodec.sip_status(), 488);
        assert_eq!(SdpError::NoAudio.sip_status(), 488);
        assert_eq!(SdpError::Parse("x".into()).sip_status(), 400);
        assert_eq!(SdpError::Invalid("x".into()).sip_status(), 400);
    }

    // --- building offers --------------------------------------------------

    #[test]
    fn offer_lists_all_codecs_in_preference_order_exactly() {
        let sdp = build_offer(&all_codecs(), 42, 1);
        let expected = "v=0\r\n\
o=ewindow 42 1 IN IP4 192.0.2.10\r\n\
s=ewindow\r\n\
c=IN IP4 192.0.2.10\r\n\
t=0 0\r\n\
m=audio 40000 RTP/AVP 111 0 8 97 98 101 102\r\n\
a=rtpmap:111 opus/48000/2\r\n\
a=rtpmap:0 PCMU/8000\r\n\
a=rtpmap:8 PCMA/8000\r\n\
a=rtpmap:97 speex/16000\r\n\
a=rtpmap:98 speex/8000\r\n\
a=rtpmap:101 telephone-event/8000\r\n\
a=fmtp:101 0-15\r\n\
a=rtpmap:102 telephone-event/48000\r\n\
a=fmtp:102 0-15\r\n\
a=rtcp:40001\r\n\
a=ptime:20\r\n\
a=sendrecv\r\n";
        assert_eq!(sdp, expected);
    }

    #[test]
    fn offer_with_bandwidth_ipv6_sendonly_and_no_dtmf() {
        let mut l = LocalAudio::new(ip("2001:db8::5"), 5004, vec![AudioCodec::Pcma]);
        l.bandwidth_kbps = Some(64);
        l.direction = Direction::SendOnly;
        l.telephone_event = false;
        l.ptime_ms = 30;
        let sdp = build_offer(&l, 9, 10);
        assert!(
            sdp.contains("o=ewindow 9 10 IN IP6 2001:db8::5\r\n"),
            "{sdp}"
        );
        assert!(sdp.contains("c=IN IP6 2001:db8::5\r\n"));
        assert!(
            sdp.contains("m=audio 5004 RTP/AVP 8\r\nb=AS:64\r\n"),
            "{sdp}"
        );
        assert!(sdp.contains("a=ptime:30\r\n"));
        assert!(sdp.contains("a=sendonly\r\n"));
        assert!(sdp.contains("a=rtcp:5005\r\n"));
        assert!(!sdp.contains("telephone-event"));
        assert!(!sdp.contains("a=sendrecv"));
    }

    #[test]
    fn offer_without_opus_has_no_48k_telephone_event() {
        let sdp = build_offer(&local(&[AudioCodec::Speex16, AudioCodec::Pcmu]), 1, 1);
        assert!(sdp.contains("m=audio 40000 RTP/AVP 97 0 101\r\n"), "{sdp}");
        assert!(!sdp.contains("telephone-event/48000"));
    }

    #[test]
    fn offer_with_rtcp_mux_announces_it() {
        let mut l = all_codecs();
        l.rtcp_mux = true;
        let sdp = build_offer(&l, 1, 1);
        assert!(sdp.contains("a=rtcp:40001\r\na=rtcp-mux\r\n"), "{sdp}");
    }

    #[test]
    fn offer_at_port_65535_omits_rtcp_attribute() {
        let mut l = all_codecs();
        l.port = 65535;
        let sdp = build_offer(&l, 1, 1);
        assert!(!sdp.contains("a=rtcp:"), "{sdp}");
    }

    #[test]
    fn offer_carries_session_id_and_version() {
        let sdp = build_offer(&all_codecs(), 77, 3);
        assert!(sdp.contains("o=ewindow 77 3 IN IP4"), "{sdp}");
    }

    // --- answering: baresip, linphone -------------------------------------

    #[test]
    fn baresip_offer_answer_text_is_exact() {
        let (answer, _) = answer_offer(&crlf(BARESIP_OFFER), &all_codecs(), 7, 8).unwrap();
        let expected = "v=0\r\n\
o=ewindow 7 8 IN IP4 192.0.2.10\r\n\
s=ewindow\r\n\
c=IN IP4 192.0.2.10\r\n\
t=0 0\r\n\
m=audio 40000 RTP/AVP 96 101\r\n\
a=rtpmap:96 opus/48000/2\r\n\
a=rtpmap:101 telephone-event/8000\r\n\
a=fmtp:101 0-15\r\n\
a=rtcp:40001\r\n\
a=ptime:20\r\n\
a=sendrecv\r\n\
m=video 0 RTP/AVP 100\r\n";
        assert_eq!(answer, expected);
    }

    #[test]
    fn baresip_offer_negotiates_opus_with_offerer_numbers() {
        let (_, n) = answer_offer(&crlf(BARESIP_OFFER), &all_codecs(), 7, 8).unwrap();
        assert_eq!(
            n,
            NegotiatedAudio {
                remote_rtp: sock("127.0.0.1:21000"),
                remote_rtcp: sock("127.0.0.1:21001"),
                rtcp_mux: false,
                format: AudioFormat {
                    codec: AudioCodec::Opus,
                    pt: 96,
                    fmtp: Some("stereo=1;sprop-stereo=1".to_string()),
                },
                telephone_event_pt: Some(101),
                direction: Direction::SendRecv,
                ptime_ms: None,
                remote_bandwidth_kbps: Some(128),
                profile: "RTP/AVP".to_string(),
                crypto: vec![],
                srtp: None,
            }
        );
        assert!(!n.is_secure());
    }

    #[test]
    fn baresip_offer_follows_our_preference_not_theirs() {
        let l = local(&[AudioCodec::Pcma, AudioCodec::Pcmu, AudioCodec::Opus]);
        let (answer, n) = answer_offer(&crlf(BARESIP_OFFER), &l, 1, 1).unwrap();
        assert_eq!(n.format.codec, AudioCodec::Pcma);
        assert_eq!(n.format.pt, 8);
        assert_eq!(n.format.fmtp, None);
        assert!(
            answer.contains("m=audio 40000 RTP/AVP 8 101\r\na=rtpmap:8 PCMA/8000\r\n"),
            "{answer}"
        );
    }

    #[test]
    fn baresip_savp_offer_exposes_profile_and_crypto() {
        let (answer, n) = answer_offer(&baresip_savp(), &all_codecs(), 1, 1).unwrap();
        assert_eq!(n.profile, "RTP/SAVP");
        assert!(n.is_secure());
        assert_eq!(n.crypto, vec![CRYPTO.to_string()]);
        assert_eq!(n.srtp.map(|s| s.tag), Some(1));
        assert_eq!(n.format.codec, AudioCodec::Opus);
        assert_eq!(
            media_lines(&answer),
            vec!["m=audio 40000 RTP/SAVP 96 101", "m=video 0 RTP/AVP 100"]
        );
    }

    #[test]
    fn linphone_offer_picks_speex16_with_matching_telephone_event_clock() {
        let l = local(&[AudioCodec::Speex16, AudioCodec::Opus]);
        let (answer, n) = answer_offer(&crlf(LINPHONE_OFFER), &l, 1, 1).unwrap();
        assert_eq!(
            n.format,
            AudioFormat {
                codec: AudioCodec::Speex16,
                pt: 97,
                fmtp: Some("vbr=on".into())
            }
        );
        assert_eq!(n.telephone_event_pt, Some(99));
        assert_eq!(n.remote_rtp, sock("198.51.100.7:7078"));
        assert_eq!(
            n.remote_rtcp,
            sock("198.51.100.7:7079"),
            "no a=rtcp: port + 1"
        );
        assert!(
            answer.contains("m=audio 40000 RTP/AVP 97 99\r\n"),
            "{answer}"
        );
        assert!(answer.contains("a=rtpmap:99 telephone-event/16000\r\n"));
    }

    #[test]
    fn linphone_offer_with_opus_uses_48k_telephone_event() {
        let (_, n) = answer_offer(&crlf(LINPHONE_OFFER), &all_codecs(), 1, 1).unwrap();
        assert_eq!(n.format.codec, AudioCodec::Opus);
        assert_eq!(n.telephone_event_pt, Some(101));
    }

    #[test]
    fn telephone_event_left_out_when_disabled_locally() {
        let mut l = all_codecs();
        l.telephone_event = false;
        let (answer, n) = answer_offer(&crlf(BARESIP_OFFER), &l, 1, 1).unwrap();
        assert_eq!(n.telephone_event_pt, None);
        assert!(answer.contains("m=audio 40000 RTP/AVP 96\r\n"));
        assert!(!answer.contains("telephone-event"));
    }

    #[test]
    fn static_payload_types_without_rtpmap_are_understood() {
        let offer = offer_with("m=audio 4000 RTP/AVP 18 8 0\n");
        let (answer, n) =
            answer_offer(&offer, &local(&[AudioCodec::Pcmu, AudioCodec::Pcma]), 1, 1).unwrap();
        assert_eq!(n.format.codec, AudioCodec::Pcmu);
        assert_eq!(n.format.pt, 0);
        assert_eq!(n.telephone_event_pt, None);
        assert!(
            answer.contains("m=audio 40000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n"),
            "{answer}"
        );
    }

    #[test]
    fn encoding_names_match_case_insensitively() {
        let offer = offer_with(
            "m=audio 4000 RTP/AVP 120 121\na=rtpmap:120 SPEEX/16000\na=rtpmap:121 OPUS/48000/2\n",
        );
        let (_, n) = answer_offer(&offer, &local(&[AudioCodec::Speex16]), 1, 1).unwrap();
        assert_eq!((n.format.codec, n.format.pt), (AudioCodec::Speex16, 120));
        let (_, n) = answer_offer(&offer, &local(&[AudioCodec::Opus]), 1, 1).unwrap();
        assert_eq!((n.format.codec, n.format.pt), (AudioCodec::Opus, 121));
    }

    #[test]
    fn clock_rate_mismatch_is_no_common_codec() {
        let offer = offer_with("m=audio 4000 RTP/AVP 97\na=rtpmap:97 speex/32000\n");
        assert_eq!(
            answer_offer(
                &offer,
                &local(&[AudioCodec::Speex16, AudioCodec::Speex8]),
                1,
                1
            ),
            Err(SdpError::NoCommonCodec)
        );
    }

    #[test]
    fn unknown_codecs_only_is_no_common_codec() {
        let offer = offer_with("m=audio 4000 RTP/AVP 18 96\na=rtpmap:96 AMR/8000\n");
        let err = answer_offer(&offer, &all_codecs(), 1, 1).unwrap_err();
        assert_eq!(err, SdpError::NoCommonCodec);
        assert_eq!(err.sip_status(), 488);
    }

    #[test]
    fn dynamic_payload_type_without_rtpmap_is_not_guessed_in_offers() {
        let offer = offer_with("m=audio 4000 RTP/AVP 111\n");
        assert_eq!(
            answer_offer(&offer, &all_codecs(), 1, 1),
            Err(SdpError::NoCommonCodec)
        );
    }

    #[test]
    fn video_only_offer_is_no_audio() {
        let offer = offer_with("m=video 4000 RTP/AVP 100\na=rtpmap:100 VP8/90000\n");
        assert_eq!(
            answer_offer(&offer, &all_codecs(), 1, 1),
            Err(SdpError::NoAudio)
        );
    }

    #[test]
    fn audio_with_port_zero_in_offer_is_no_audio() {
        let offer = offer_with("m=audio 0 RTP/AVP 0\n");
        assert_eq!(
            answer_offer(&offer, &all_codecs(), 1, 1),
            Err(SdpError::NoAudio)
        );
    }

    #[test]
    fn offer_without_media_is_no_audio() {
        assert_eq!(
            answer_offer(&offer_with(""), &all_codecs(), 1, 1),
            Err(SdpError::NoAudio)
        );
    }

    #[test]
    fn extra_audio_and_other_media_are_rejected_in_place() {
        let offer = offer_with(
            "m=video 5000 RTP/AVP 100\n\
a=rtpmap:100 H264/90000\n\
m=audio 4000 RTP/AVP 0\n\
m=application 6000 UDP/DTLS/SCTP webrtc-datachannel\n\
m=audio 4010 RTP/AVP 8\n\
m=image 6002 udptl t38\n\
a=T38FaxVersion:0\n\
m=message 9 TCP/MSRP *\n\
a=accept-types:text/plain\n",
        );
        let (answer, n) = answer_offer(&offer, &all_codecs(), 1, 1).unwrap();
        assert_eq!(
            media_lines(&answer),
            vec![
                "m=video 0 RTP/AVP 100",
                "m=audio 40000 RTP/AVP 0",
                "m=application 0 UDP/DTLS/SCTP webrtc-datachannel",
                "m=audio 0 RTP/AVP 8",
                "m=image 0 udptl t38",
                "m=message 0 TCP/MSRP *",
            ]
        );
        assert_eq!(n.remote_rtp, sock("198.51.100.1:4000"));
    }

    #[test]
    fn second_audio_stream_is_used_when_first_has_no_common_codec() {
        let offer = offer_with("m=audio 4000 RTP/AVP 18\nm=audio 4010 RTP/AVP 8\n");
        let (answer, n) = answer_offer(&offer, &all_codecs(), 1, 1).unwrap();
        assert_eq!(
            media_lines(&answer),
            vec!["m=audio 0 RTP/AVP 18", "m=audio 40000 RTP/AVP 8"]
        );
        assert_eq!(n.format.codec, AudioCodec::Pcma);
        assert_eq!(n.remote_rtp.port(), 4010);
    }

    #[test]
    fn non_rtp_audio_stream_is_rejected_not_used() {
        let offer = offer_with("m=audio 4000 UDP 0\nm=audio 4010 RTP/AVP 0\n");
        let (answer, n) = answer_offer(&offer, &all_codecs(), 1, 1).unwrap();
        assert_eq!(
            media_lines(&answer),
            vec!["m=audio 0 UDP 0", "m=audio 40000 RTP/AVP 0"]
        );
        assert_eq!(n.remote_rtp.port(), 4010);
    }

    #[test]
    fn answer_carries_our_bandwidth_and_ptime() {
        let mut l = all_codecs();
        l.bandwidth_kbps = Some(80);
        l.ptime_ms = 40;
        let (answer, _) = answer_offer(&crlf(BARESIP_OFFER), &l, 1, 1).unwrap();
        assert!(
            answer.contains("m=audio 40000 RTP/AVP 96 101\r\nb=AS:80\r\n"),
            "{answer}"
        );
        assert!(answer.contains("a=ptime:40\r\n"));
    }

    #[test]
    fn remote_ptime_media_level_then_session_level() {
        let offer = offer_with("m=audio 4000 RTP/AVP 0\na=ptime:30\n");
        assert_eq!(
            answer_offer(&offer, &all_codecs(), 1, 1)
                .unwrap()
                .1
                .ptime_ms,
            Some(30)
        );
        let offer = crlf(
            "v=0\no=- 1 1 IN IP4 198.51.100.1\ns=-\nc=IN IP4 198.51.100.1\nb=AS:99\nt=0 0\na=ptime:40\nm=audio 4000 RTP/AVP 0\n",
        );
        let n = answer_offer(&offer, &all_codecs(), 1, 1).unwrap().1;
        assert_eq!(n.ptime_ms, Some(40));
        assert_eq!(
            n.remote_bandwidth_kbps,
            Some(99),
            "session-level b=AS fallback"
        );
    }

    // --- directions ---------------------------------------------------------

    fn answered_direction(attr: &str, ours: Direction) -> (Direction, String) {
        let offer = offer_with(&format!("m=audio 4000 RTP/AVP 0\n{attr}"));
        let mut l = all_codecs();
        l.direction = ours;
        let (answer, n) = answer_offer(&offer, &l, 1, 1).unwrap();
        (n.direction, answer)
    }

    #[test]
    fn answer_direction_is_reverse_of_offer() {
        use Direction::*;
        let cases = [
            ("a=sendrecv\n", SendRecv),
            ("a=sendonly\n", RecvOnly),
            ("a=recvonly\n", SendOnly),
            ("a=inactive\n", Inactive),
            ("", SendRecv),
        ];
        for (attr, expected) in cases {
            let (d, answer) = answered_direction(attr, SendRecv);
            assert_eq!(d, expected, "offer {attr:?}");
            assert!(
                answer.contains(&format!("a={}\r\n", expected.attribute())),
                "{answer}"
            );
        }
    }

    #[test]
    fn answer_direction_also_respects_our_wish() {
        use Direction::*;
        assert_eq!(answered_direction("a=sendonly\n", SendOnly).0, Inactive);
        assert_eq!(answered_direction("a=sendrecv\n", RecvOnly).0, RecvOnly);
        assert_eq!(answered_direction("", Inactive).0, Inactive);
    }

    #[test]
    fn session_level_direction_applies_when_media_has_none() {
        let offer = crlf(
            "v=0\no=- 1 1 IN IP4 198.51.100.1\ns=-\nc=IN IP4 198.51.100.1\nt=0 0\na=sendonly\nm=audio 4000 RTP/AVP 0\n",
        );
        assert_eq!(
            answer_offer(&offer, &all_codecs(), 1, 1)
                .unwrap()
                .1
                .direction,
            Direction::RecvOnly
        );
    }

    #[test]
    fn hold_with_zero_address_means_we_do_not_send() {
        let offer = crlf(
            "v=0\no=- 1 2 IN IP4 198.51.100.1\ns=-\nc=IN IP4 0.0.0.0\nt=0 0\nm=audio 4000 RTP/AVP 0\na=sendonly\n",
        );
        let (answer, n) = answer_offer(&offer, &all_codecs(), 1, 1).unwrap();
        assert_eq!(n.direction, Direction::RecvOnly);
        assert!(n.remote_rtp.ip().is_unspecified());
        assert!(answer.contains("a=recvonly\r\n"));
        let inactive = offer.replace("a=sendonly", "a=inactive");
        assert_eq!(
            answer_offer(&inactive, &all_codecs(), 1, 1)
                .unwrap()
                .1
                .direction,
            Direction::Inactive
        );
    }

    // --- addresses and ports ------------------------------------------------

    #[test]
    fn media_level_connection_overrides_session_level() {
        let offer = offer_with("m=audio 4000 RTP/AVP 0\nc=IN IP4 203.0.113.9\n");
        let n = answer_offer(&offer, &all_codecs(), 1, 1).unwrap().1;
        assert_eq!(n.remote_rtp, sock("203.0.113.9:4000"));
        assert_eq!(n.remote_rtcp, sock("203.0.113.9:4001"));
    }

    #[test]
    fn media_level_connection_alone_is_enough() {
        let offer = crlf(
            "v=0\no=- 1 1 IN IP4 198.51.100.1\ns=-\nt=0 0\nm=audio 4000 RTP/AVP 0\nc=IN IP6 2001:db8::9\n",
        );
        let n = answer_offer(&offer, &all_codecs(), 1, 1).unwrap().1;
        assert_eq!(n.remote_rtp, sock("[2001:db8::9]:4000"));
    }

    #[test]
    fn missing_connection_line_is_invalid() {
        let offer = crlf("v=0\no=- 1 1 IN IP4 198.51.100.1\ns=-\nt=0 0\nm=audio 4000 RTP/AVP 0\n");
        assert!(matches!(
            answer_offer(&offer, &all_codecs(), 1, 1),
            Err(SdpError::Invalid(_))
        ));
    }

    #[test]
    fn hostname_or_bad_ip_in_connection_is_invalid() {
        for c in ["pbx.example.com", "999.1.1.1", "1.2.3"] {
            let offer = crlf(&format!(
                "v=0\no=- 1 1 IN IP4 198.51.100.1\ns=-\nc=IN IP4 {c}\nt=0 0\nm=audio 4000 RTP/AVP 0\n"
            ));
            assert!(
                matches!(
                    answer_offer(&offer, &all_codecs(), 1, 1),
                    Err(SdpError::Invalid(_))
                ),
                "{c}"
            );
        }
    }

    #[test]
    fn port_above_65535_is_invalid() {
        for port in ["65536", "99999", "18446744073709551616000"] {
            let offer = offer_with(&format!("m=audio {port} RTP/AVP 0\n"));
            assert!(
                matches!(
                    answer_offer(&offer, &all_codecs(), 1, 1),
                    Err(SdpError::Invalid(_))
                ),
                "{port}"
            );
        }
        let offer = offer_with("m=audio 4000 RTP/AVP 0\na=rtcp:70000\n");
        assert!(matches!(
            answer_offer(&offer, &all_codecs(), 1, 1),
            Err(SdpError::Invalid(_))
        ));
    }

    #[test]
    fn rtcp_attribute_with_address_is_used() {
        let offer = offer_with("m=audio 4000 RTP/AVP 0\na=rtcp:5999 IN IP4 203.0.113.4\n");
        let n = answer_offer(&offer, &all_codecs(), 1, 1).unwrap().1;
        assert_eq!(n.remote_rtcp, sock("203.0.113.4:5999"));
        assert_eq!(n.remote_rtp, sock("198.51.100.1:4000"));
    }

    #[test]
    fn rtcp_mux_only_when_both_sides_want_it() {
        let offer = offer_with("m=audio 4000 RTP/AVP 0\na=rtcp:4001\na=rtcp-mux\n");
        let (answer, n) = answer_offer(&offer, &all_codecs(), 1, 1).unwrap();
        assert!(!n.rtcp_mux);
        assert_eq!(n.remote_rtcp.port(), 4001);
        assert!(!answer.contains("rtcp-mux"));

        let mut l = all_codecs();
        l.rtcp_mux = true;
        let (answer, n) = answer_offer(&offer, &l, 1, 1).unwrap();
        assert!(n.rtcp_mux);
        assert_eq!(n.remote_rtcp, n.remote_rtp);
        assert!(
            answer.contains("a=rtcp:40000\r\na=rtcp-mux\r\n"),
            "{answer}"
        );

        let no_mux_offer = offer_with("m=audio 4000 RTP/AVP 0\n");
        let n = answer_offer(&no_mux_offer, &l, 1, 1).unwrap().1;
        assert!(!n.rtcp_mux);
        assert_eq!(n.remote_rtcp.port(), 4001);
    }

    // --- leniency -----------------------------------------------------------

    #[test]
    fn lf_only_line_endings_and_blank_lines_are_accepted() {
        let offer = format!("\n{}\n\n", BARESIP_OFFER);
        let (_, n) = answer_offer(&offer, &all_codecs(), 1, 1).unwrap();
        assert_eq!(n.format.pt, 96);
    }

    #[test]
    fn out_of_order_lines_and_unknown_line_types_are_tolerated() {
        let offer = crlf(
            "v=0\no=- 1 1 IN IP4 198.51.100.1\ns=-\nt=0 0\na=group:BUNDLE 0\nc=IN IP4 198.51.100.1\ny=0123456789\n\
m=audio 4000 RTP/AVP 0 101\na=rtpmap:101 telephone-event/8000\nb=AS:64\nc=IN IP4 203.0.113.7\nx=custom\n",
        );
        let n = answer_offer(&offer, &all_codecs(), 1, 1).unwrap().1;
        assert_eq!(n.remote_rtp, sock("203.0.113.7:4000"));
        assert_eq!(n.remote_bandwidth_kbps, Some(64));
        assert_eq!(n.telephone_event_pt, Some(101));
    }

    #[test]
    fn unknown_attributes_are_tolerated() {
        let offer = offer_with(
            "m=audio 4000 RTP/AVP 0\na=zrtp-hash:1.10 abcdef\na=X-nat:0\na=ice-ufrag:x\na=candidate:1 1 UDP 1 1.2.3.4 4000 typ host\na=\na=:\n",
        );
        assert!(answer_offer(&offer, &all_codecs(), 1, 1).is_ok());
    }

    #[test]
    fn baresip_offer_still_parses_after_answering_itself() {
        // Our own answer must be readable by our own parser (and so by the
        // crate) and give back the same codec.
        let (answer, _) = answer_offer(&crlf(BARESIP_OFFER), &all_codecs(), 1, 1).unwrap();
        let parsed = parse(&answer).unwrap();
        assert_eq!(parsed.media_descriptions.len(), 2);
        let their_side = LocalAudio::new(
            ip("127.0.0.1"),
            21000,
            vec![AudioCodec::Opus, AudioCodec::Pcmu],
        );
        let n = read_answer(&answer, &their_side).unwrap();
        assert_eq!(n.format.pt, 96);
        assert_eq!(n.remote_rtp, sock("192.0.2.10:40000"));
    }

    // --- reading answers ----------------------------------------------------

    #[test]
    fn our_offer_answered_by_ourselves_round_trips() {
        let caller = all_codecs();
        let callee = LocalAudio::new(
            ip("198.51.100.20"),
            30000,
            vec![AudioCodec::Speex16, AudioCodec::Pcmu],
        );
        let offer = build_offer(&caller, 1, 1);
        let (answer, callee_view) = answer_offer(&offer, &callee, 5, 5).unwrap();
        assert_eq!(
            callee_view.format,
            AudioFormat {
                codec: AudioCodec::Speex16,
                pt: 97,
                fmtp: None
            }
        );
        assert_eq!(callee_view.telephone_event_pt, Some(101));
        assert_eq!(callee_view.remote_rtp, sock("192.0.2.10:40000"));
        assert_eq!(callee_view.remote_rtcp, sock("192.0.2.10:40001"));
        let caller_view = read_answer(&answer, &caller).unwrap();
        assert_eq!(
            caller_view.format,
            AudioFormat {
                codec: AudioCodec::Speex16,
                pt: 97,
                fmtp: None
            }
        );
        assert_eq!(caller_view.telephone_event_pt, Some(101));
        assert_eq!(caller_view.remote_rtp, sock("198.51.100.20:30000"));
        assert_eq!(caller_view.remote_rtcp, sock("198.51.100.20:30001"));
        assert_eq!(caller_view.direction, Direction::SendRecv);
        assert_eq!(caller_view.ptime_ms, Some(20));
    }

    #[test]
    fn read_answer_uses_first_codec_in_answer_order() {
        let answer = offer_with("m=audio 5000 RTP/AVP 0 111 101\na=rtpmap:111 opus/48000/2\na=rtpmap:101 telephone-event/8000\n");
        let n = read_answer(&answer, &all_codecs()).unwrap();
        assert_eq!(n.format.codec, AudioCodec::Pcmu);
        assert_eq!(n.telephone_event_pt, Some(101));
    }

    #[test]
    fn read_answer_prefers_telephone_event_at_codec_rate() {
        let answer = offer_with(
            "m=audio 5000 RTP/AVP 111 101 102\na=rtpmap:111 opus/48000/2\na=rtpmap:101 telephone-event/8000\na=rtpmap:102 telephone-event/48000\n",
        );
        assert_eq!(
            read_answer(&answer, &all_codecs())
                .unwrap()
                .telephone_event_pt,
            Some(102)
        );
    }

    #[test]
    fn read_answer_maps_dynamic_pt_without_rtpmap_through_our_offer() {
        let answer = offer_with("m=audio 5000 RTP/AVP 111 101\n");
        let n = read_answer(&answer, &all_codecs()).unwrap();
        assert_eq!(
            n.format,
            AudioFormat {
                codec: AudioCodec::Opus,
                pt: 111,
                fmtp: None
            }
        );
        assert_eq!(n.telephone_event_pt, Some(101));
    }

    #[test]
    fn read_answer_keeps_answerer_payload_number() {
        let answer =
            offer_with("m=audio 5000 RTP/AVP 120\na=rtpmap:120 speex/8000\na=fmtp:120 vbr=on\n");
        let n = read_answer(&answer, &all_codecs()).unwrap();
        assert_eq!(
            n.format,
            AudioFormat {
                codec: AudioCodec::Speex8,
                pt: 120,
                fmtp: Some("vbr=on".into())
            }
        );
    }

    #[test]
    fn read_answer_with_port_zero_is_inactive_not_error() {
        let answer = offer_with("m=audio 0 RTP/AVP 111\n");
        let n = read_answer(&answer, &all_codecs()).unwrap();
        assert_eq!(n.direction, Direction::Inactive);
        assert_eq!(n.remote_rtp.port(), 0);
        assert_eq!(n.telephone_event_pt, None);
        // Even without c= and with a codec we never offered.
        let answer = crlf("v=0\no=- 1 1 IN IP4 198.51.100.1\ns=-\nt=0 0\nm=audio 0 RTP/AVP 18\n");
        let n = read_answer(&answer, &all_codecs()).unwrap();
        assert_eq!(n.direction, Direction::Inactive);
        assert_eq!(n.format.codec, AudioCodec::Opus);
    }

    #[test]
    fn read_answer_with_zero_address_or_inactive() {
        let held = crlf("v=0\no=- 1 1 IN IP4 198.51.100.1\ns=-\nc=IN IP4 0.0.0.0\nt=0 0\nm=audio 5000 RTP/AVP 0\n");
        assert_eq!(
            read_answer(&held, &all_codecs()).unwrap().direction,
            Direction::RecvOnly
        );
        let inactive = offer_with("m=audio 5000 RTP/AVP 0\na=inactive\n");
        assert_eq!(
            read_answer(&inactive, &all_codecs()).unwrap().direction,
            Direction::Inactive
        );
        let recvonly = offer_with("m=audio 5000 RTP/AVP 0\na=recvonly\n");
        assert_eq!(
            read_answer(&recvonly, &all_codecs()).unwrap().direction,
            Direction::SendOnly
        );
    }

    #[test]
    fn read_answer_errors_for_foreign_codec_or_no_audio() {
        let foreign = offer_with("m=audio 5000 RTP/AVP 3\n");
        assert_eq!(
            read_answer(&foreign, &all_codecs()),
            Err(SdpError::NoCommonCodec)
        );
        let pcmu_only = offer_with("m=audio 5000 RTP/AVP 0\n");
        assert_eq!(
            read_answer(&pcmu_only, &local(&[AudioCodec::Opus])),
            Err(SdpError::NoCommonCodec)
        );
        let video = offer_with("m=video 5000 RTP/AVP 100\n");
        assert_eq!(read_answer(&video, &all_codecs()), Err(SdpError::NoAudio));
    }

    #[test]
    fn read_answer_reads_savp_crypto_and_rtcp_mux() {
        let answer = crlf(&format!(
            "v=0\no=- 1 1 IN IP4 198.51.100.1\ns=-\nc=IN IP4 198.51.100.1\nt=0 0\nm=audio 5000 RTP/SAVP 0\na=crypto:{CRYPTO}\na=rtcp-mux\n"
        ));
        let mut l = all_codecs();
        l.rtcp_mux = true;
        let n = read_answer(&answer, &l).unwrap();
        assert_eq!(n.profile, "RTP/SAVP");
        assert_eq!(n.crypto, vec![CRYPTO.to_string()]);
        assert!(n.rtcp_mux);
        assert_eq!(n.remote_rtcp, sock("198.51.100.1:5000"));
    }

    // --- robustness -----------------------------------------------------------

    #[test]
    fn broken_sdps_give_errors_not_panics() {
        let good_head =
            "v=0\r\no=- 1 1 IN IP4 198.51.100.1\r\ns=-\r\nc=IN IP4 198.51.100.1\r\nt=0 0\r\n";
        let huge = format!(
            "{good_head}m=audio 4000 RTP/AVP 0\r\n{}",
            "a=x:y\r\n".repeat(20_000)
        );
        let broken: Vec<String> = vec![
            String::new(),
            "garbage".into(),
            "\r\n\r\n   \r\n".into(),
            "v=0".into(),
            "v=1\r\no=- 1 1 IN IP4 1.2.3.4\r\ns=-\r\nc=IN IP4 1.2.3.4\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n".into(),
            "v=0\r\ns=-\r\nc=IN IP4 1.2.3.4\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n".into(),
            "v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\nc=IN IP4 1.2.3.4\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n".into(),
            "v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\ns=-\r\nc=IN IP4 1.2.3.4\r\nm=audio 4000 RTP/AVP 0\r\n".into(),
            "v=0\r\no=- 1 IN IP4\r\ns=-\r\nc=IN IP4 1.2.3.4\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n".into(),
            "v=0\r\no=- 999999999999999999999999 1 IN IP4 1.2.3.4\r\ns=-\r\nc=IN IP4 1.2.3.4\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n".into(),
            format!("{good_head}m=audio 99999 RTP/AVP 0\r\n"),
            format!("{good_head}m=audio 4294967296000 RTP/AVP 0\r\n"),
            format!("{good_head}m=audio abc RTP/AVP 0\r\n"),
            format!("{good_head}m=audio -1 RTP/AVP 0\r\n"),
            format!("{good_head}m=audio 4000\r\n"),
            format!("{good_head}m=aud"),
            "v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\ns=-\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n".into(),
            "v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\ns=-\r\nc=IN IP4 host.invalid\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n".into(),
            "v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\ns=-\r\nc=IN XX 1.2.3.4\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n".into(),
            format!("{good_head}m=audio 4000 RTP/AVP 0\r\na=rtcp:70000\r\n"),
            format!("{good_head}m=audio 4000 RTP/AVP 0\r\na=rtcp:abc\r\n"),
            format!("{good_head}m=audio 4000 RTP/AVP 0\r\nb=AS:lots\r\n"),
            format!("{good_head}hello world\r\nm=audio 4000 RTP/AVP 0\r\n"),
            "v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\ns=-\r\nt=now later\r\nm=audio 4000 RTP/AVP 0\r\n".into(),
            format!("{good_head}m=audio 4000 RTP/AVP 0\r\nv=0\r\n"),
            "\u{0}\u{1}\u{2}=\u{ff}\r\n\u{feff}v=0".into(),
            "m=audio 4000 RTP/AVP 0\r\nm=audio 4000 RTP/AVP 0\r\n".into(),
            huge,
        ];
        assert!(broken.len() >= 20);
        for (i, sdp) in broken.iter().enumerate() {
            let answered = answer_offer(sdp, &all_codecs(), 1, 1);
            assert!(answered.is_err(), "case {i} answered: {sdp:?}");
            let read = read_answer(sdp, &all_codecs());
            assert!(read.is_err(), "case {i} read: {sdp:?}");
        }
    }

    #[test]
    fn broken_sdp_error_kinds_are_specific() {
        let good_head =
            "v=0\r\no=- 1 1 IN IP4 198.51.100.1\r\ns=-\r\nc=IN IP4 198.51.100.1\r\nt=0 0\r\n";
        assert!(matches!(
            answer_offer("garbage", &all_codecs(), 1, 1),
            Err(SdpError::Parse(_))
        ));
        assert!(matches!(
            answer_offer(
                &format!("{good_head}m=audio 65536 RTP/AVP 0\r\n"),
                &all_codecs(),
                1,
                1
            ),
            Err(SdpError::Invalid(_))
        ));
        let long_garbage = "x".repeat(10_000);
        match answer_offer(&long_garbage, &all_codecs(), 1, 1) {
            Err(SdpError::Parse(msg)) => assert!(msg.len() < 300, "error message is clipped"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn truncated_and_mutated_offers_never_panic() {
        let offer = baresip_savp();
        // Every truncation.
        for (end, _) in offer.char_indices() {
            let _ = answer_offer(&offer[..end], &all_codecs(), 1, 1);
            let _ = read_answer(&offer[..end], &all_codecs());
        }
        // Deterministic pseudo-random single and double byte replacements.
        let alphabet = b"= \r\n:/0123456789x-aAm";
        let mut seed: u64 = 0x2545_f491_4f6c_dd1d;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let bytes = offer.as_bytes();
        for _ in 0..3000 {
            let mut mutated = bytes.to_vec();
            for _ in 0..(1 + next() % 2) {
                let pos = (next() % mutated.len() as u64) as usize;
                mutated[pos] = alphabet[(next() % alphabet.len() as u64) as usize];
            }
            let text = String::from_utf8_lossy(&mutated);
            let _ = answer_offer(&text, &all_codecs(), 1, 1);
            let _ = read_answer(&text, &all_codecs());
        }
    }

    // =======================================================================
    // Sessions: video and SDES-SRTP
    // =======================================================================

    /// baresip 1.0 with video, `mediaenc=srtp-mand` (keys are real base64:
    /// 30, 30, 46 and 30 bytes).
    const BARESIP_VIDEO_SAVP: &str = "v=0
o=- 1466399034 1466399034 IN IP4 127.0.0.1
s=-
c=IN IP4 127.0.0.1
t=0 0
m=audio 21000 RTP/SAVP 96 0 101
b=AS:128
a=rtpmap:96 opus/48000/2
a=fmtp:96 stereo=1;sprop-stereo=1
a=rtpmap:0 PCMU/8000
a=rtpmap:101 telephone-event/8000
a=fmtp:101 0-15
a=rtcp:21001
a=sendrecv
a=label:1
a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:pD6RcOxi0Pk0lJzU4IzLKlvHdgbz+/zOY3kQnSPO
a=crypto:2 AES_CM_128_HMAC_SHA1_32 inline:Aq9h2gvbv8fsVbdsCYlWbF6M3dJqu6M0nWCzZsRz
a=crypto:3 AES_256_CM_HMAC_SHA1_80 inline:ZGaBJqpc8EOa3VVPDsrWoVTZcs95k6mClEk6+9dM5aKDJyfpF2pdmd8lDz6vUQ==
m=video 21002 RTP/SAVP 100 101 102
b=AS:1000
a=rtpmap:100 H264/90000
a=fmtp:100 packetization-mode=0;profile-level-id=42002a
a=rtpmap:101 H264/90000
a=fmtp:101 packetization-mode=1;profile-level-id=42002a
a=rtpmap:102 VP8/90000
a=rtcp-fb:* nack
a=rtcp-fb:* nack pli
a=rtcp-fb:* ccm fir
a=rtcp:21003
a=sendrecv
a=label:2
a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:xJ0ZJvO4t0MT3I8s8SdUE3lLrCMhoaOhWlchjkmJ
";
    const BARESIP_AUDIO_KEY: &str = "pD6RcOxi0Pk0lJzU4IzLKlvHdgbz+/zOY3kQnSPO";
    const BARESIP_VIDEO_KEY: &str = "xJ0ZJvO4t0MT3I8s8SdUE3lLrCMhoaOhWlchjkmJ";

    /// The baresip video offer as `mediaenc=srtp-mand` (RTP/SAVP + crypto),
    /// `srtp` (RTP/AVP + crypto) or without encryption (`plain`).
    fn baresip_video(variant: &str) -> String {
        let text = match variant {
            "srtp-mand" => BARESIP_VIDEO_SAVP.to_string(),
            "srtp" => BARESIP_VIDEO_SAVP.replace("RTP/SAVP", "RTP/AVP"),
            "plain" => BARESIP_VIDEO_SAVP
                .replace("RTP/SAVP", "RTP/AVP")
                .lines()
                .filter(|l| !l.starts_with("a=crypto"))
                .map(|l| format!("{l}\n"))
                .collect(),
            other => panic!("variant {other}"),
        };
        crlf(&text)
    }

    fn unb64(s: &str) -> Vec<u8> {
        STANDARD.decode(s).unwrap()
    }

    fn b64(bytes: &[u8]) -> String {
        STANDARD.encode(bytes)
    }

    /// Distinct, recognisable key material.
    fn keys(seed: u8) -> LocalKeys {
        LocalKeys {
            audio: std::array::from_fn(|i| seed.wrapping_add(i as u8)),
            video: std::array::from_fn(|i| seed.wrapping_add(0x80).wrapping_add(i as u8)),
        }
    }

    /// Our session: all audio codecs, video with `video` codecs on port
    /// 40002 (none: no video), the given SRTP mode and `keys(1)`.
    fn session(mode: SrtpMode, video: &[VideoCodec]) -> LocalSession {
        let mut s = LocalSession::new(all_codecs(), keys(1));
        s.srtp = mode;
        if !video.is_empty() {
            s.video = Some(LocalVideo::new(40002, video.to_vec()));
        }
        s
    }

    /// The text of the first `m=MEDIA` section of an SDP (up to the next
    /// `m=` line).
    fn section<'a>(sdp: &'a str, media: &str) -> &'a str {
        let start = sdp
            .find(&format!("m={media} "))
            .unwrap_or_else(|| panic!("no m={media} in {sdp}"));
        let rest = &sdp[start..];
        match rest[2..].find("\r\nm=") {
            Some(end) => &rest[..end + 4],
            None => rest,
        }
    }

    fn crypto_lines(section: &str) -> Vec<&str> {
        section
            .lines()
            .filter(|l| l.starts_with("a=crypto:"))
            .collect()
    }

    // --- types --------------------------------------------------------------

    #[test]
    fn video_codec_table_and_parse_list() {
        use VideoCodec::*;
        for (codec, name, enc, pt) in [
            (Vp8, "vp8", "VP8", 96),
            (Vp9, "vp9", "VP9", 98),
            (H264, "h264", "H264", 100),
        ] {
            assert_eq!(codec.name(), name);
            assert_eq!(codec.to_string(), name);
            assert_eq!(codec.encoding_name(), enc);
            assert_eq!(codec.clock_rate(), 90000);
            assert_eq!(codec.offer_pt(), pt);
        }
        assert_eq!(VideoCodec::ALL, [Vp8, Vp9, H264]);
        assert_eq!(H264.offer_fmtp(), Some(H264_OFFER_FMTP));
        assert_eq!(Vp8.offer_fmtp(), None);
        assert_eq!(
            VideoCodec::parse_list(" H264 ,vp8,h264").unwrap(),
            vec![H264, Vp8]
        );
        assert_eq!(
            VideoCodec::parse_list("vp8,av1"),
            Err(SdpError::UnknownCodec("av1".to_string()))
        );
        assert!(matches!(
            VideoCodec::parse_list(" ,"),
            Err(SdpError::Invalid(_))
        ));
    }

    #[test]
    fn crypto_suite_names_key_lengths_and_tag_bits() {
        use CryptoSuite::*;
        let rows = [
            (AesCm128HmacSha1_80, "AES_CM_128_HMAC_SHA1_80", 30, 80),
            (AesCm128HmacSha1_32, "AES_CM_128_HMAC_SHA1_32", 30, 32),
            (Aes256CmHmacSha1_80, "AES_256_CM_HMAC_SHA1_80", 46, 80),
            (Aes256CmHmacSha1_32, "AES_256_CM_HMAC_SHA1_32", 46, 32),
        ];
        for (suite, name, len, bits) in rows {
            assert_eq!(suite.name(), name);
            assert_eq!(suite.to_string(), name);
            assert_eq!(suite.key_len(), len);
            assert!(suite.key_len() <= 46);
            assert_eq!(suite.auth_tag_bits(), bits);
            assert_eq!(CryptoSuite::from_name(name), Some(suite));
        }
        assert_eq!(CryptoSuite::from_name("F8_128_HMAC_SHA1_80"), None);
        assert_eq!(
            CryptoSuite::DEFAULT,
            [AesCm128HmacSha1_80, AesCm128HmacSha1_32]
        );
        assert_eq!(
            LocalSession::new(all_codecs(), keys(0)).suites,
            CryptoSuite::DEFAULT.to_vec()
        );
    }

    #[test]
    fn srtp_mode_names_and_srtp_errors_are_488() {
        let names = [SrtpMode::Required, SrtpMode::Optional, SrtpMode::Off].map(|m| m.to_string());
        assert_eq!(names, ["required", "optional", "off"]);
        assert_eq!(SdpError::SrtpRequired.sip_status(), 488);
        assert_eq!(SdpError::BadCrypto("x".into()).sip_status(), 488);
    }

    #[test]
    fn session_validate_needs_suites_when_srtp_required() {
        let mut s = session(SrtpMode::Required, &[]);
        assert!(s.validate().is_ok());
        s.suites.clear();
        assert!(matches!(s.validate(), Err(SdpError::Invalid(_))));
        assert!(matches!(
            answer_session(&baresip_video("srtp-mand"), &s, 1, 1),
            Err(SdpError::Invalid(_))
        ));
        s.srtp = SrtpMode::Optional;
        assert!(s.validate().is_ok());
        s.audio.codecs.clear();
        assert!(matches!(s.validate(), Err(SdpError::Invalid(_))));
    }

    // --- session offers -------------------------------------------------------

    #[test]
    fn session_offer_plain_with_video_is_exact() {
        let mut s = session(SrtpMode::Off, &VideoCodec::ALL);
        s.audio.codecs = vec![AudioCodec::Opus, AudioCodec::Pcmu];
        let sdp = build_session_offer(&s, 42, 1);
        let expected = "v=0\r\n\
o=ewindow 42 1 IN IP4 192.0.2.10\r\n\
s=ewindow\r\n\
c=IN IP4 192.0.2.10\r\n\
t=0 0\r\n\
m=audio 40000 RTP/AVP 111 0 101 102\r\n\
a=rtpmap:111 opus/48000/2\r\n\
a=rtpmap:0 PCMU/8000\r\n\
a=rtpmap:101 telephone-event/8000\r\n\
a=fmtp:101 0-15\r\n\
a=rtpmap:102 telephone-event/48000\r\n\
a=fmtp:102 0-15\r\n\
a=rtcp:40001\r\n\
a=ptime:20\r\n\
a=sendrecv\r\n\
m=video 40002 RTP/AVP 96 98 100 99\r\n\
a=rtpmap:96 VP8/90000\r\n\
a=rtcp-fb:96 nack\r\n\
a=rtcp-fb:96 nack pli\r\n\
a=rtcp-fb:96 ccm fir\r\n\
a=rtpmap:98 VP9/90000\r\n\
a=rtcp-fb:98 nack\r\n\
a=rtcp-fb:98 nack pli\r\n\
a=rtcp-fb:98 ccm fir\r\n\
a=rtpmap:100 H264/90000\r\n\
a=fmtp:100 packetization-mode=1;profile-level-id=42e01f;level-asymmetry-allowed=1\r\n\
a=rtcp-fb:100 nack\r\n\
a=rtcp-fb:100 nack pli\r\n\
a=rtcp-fb:100 ccm fir\r\n\
a=rtpmap:99 H264/90000\r\n\
a=fmtp:99 packetization-mode=0;profile-level-id=42e01f\r\n\
a=rtcp-fb:99 nack\r\n\
a=rtcp-fb:99 nack pli\r\n\
a=rtcp-fb:99 ccm fir\r\n\
a=rtcp:40003\r\n\
a=sendrecv\r\n";
        assert_eq!(sdp, expected);
    }

    #[test]
    fn session_offer_required_is_savp_with_crypto_per_suite_on_every_line() {
        let s = session(SrtpMode::Required, &[VideoCodec::Vp8]);
        let sdp = build_session_offer(&s, 1, 1);
        assert_eq!(
            media_lines(&sdp),
            vec![
                "m=audio 40000 RTP/SAVP 111 0 8 97 98 101 102",
                "m=video 40002 RTP/SAVP 96"
            ]
        );
        let audio_key = b64(&s.keys.audio[..30]);
        let video_key = b64(&s.keys.video[..30]);
        assert_eq!(audio_key.len(), 40);
        assert_ne!(audio_key, video_key);
        assert_eq!(
            crypto_lines(section(&sdp, "audio")),
            vec![
                format!("a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:{audio_key}"),
                format!("a=crypto:2 AES_CM_128_HMAC_SHA1_32 inline:{audio_key}"),
            ]
        );
        assert_eq!(
            crypto_lines(section(&sdp, "video")),
            vec![
                format!("a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:{video_key}"),
                format!("a=crypto:2 AES_CM_128_HMAC_SHA1_32 inline:{video_key}"),
            ]
        );
        // Crypto comes last in each section, after the direction.
        assert!(section(&sdp, "audio").contains("a=sendrecv\r\na=crypto:1 "));
    }

    #[test]
    fn session_offer_suite_order_dedup_and_256_bit_keys_padded() {
        let mut s = session(SrtpMode::Required, &[]);
        s.suites = vec![
            CryptoSuite::Aes256CmHmacSha1_80,
            CryptoSuite::AesCm128HmacSha1_80,
            CryptoSuite::Aes256CmHmacSha1_80,
        ];
        let sdp = build_session_offer(&s, 1, 1);
        let long = b64(&s.keys.audio);
        assert!(long.ends_with("=="), "{long}");
        assert_eq!(
            crypto_lines(&sdp),
            vec![
                format!("a=crypto:1 AES_256_CM_HMAC_SHA1_80 inline:{long}"),
                format!(
                    "a=crypto:2 AES_CM_128_HMAC_SHA1_80 inline:{}",
                    b64(&s.keys.audio[..30])
                ),
            ]
        );
    }

    #[test]
    fn session_offer_optional_is_avp_with_crypto_and_off_has_none() {
        let s = session(SrtpMode::Optional, &[VideoCodec::H264]);
        let sdp = build_session_offer(&s, 1, 1);
        assert_eq!(
            media_lines(&sdp),
            vec![
                "m=audio 40000 RTP/AVP 111 0 8 97 98 101 102",
                "m=video 40002 RTP/AVP 100 99"
            ]
        );
        assert_eq!(crypto_lines(section(&sdp, "audio")).len(), 2);
        assert_eq!(crypto_lines(section(&sdp, "video")).len(), 2);
        let off = build_session_offer(&session(SrtpMode::Off, &[VideoCodec::H264]), 1, 1);
        assert!(!off.contains("a=crypto"), "{off}");
        assert!(!off.contains("SAVP"), "{off}");
    }

    #[test]
    fn session_offer_video_bandwidth_rtcp_mux_direction_and_order() {
        let mut s = session(SrtpMode::Off, &[VideoCodec::H264, VideoCodec::Vp8]);
        let v = s.video.as_mut().unwrap();
        v.bandwidth_kbps = Some(1500);
        v.rtcp_mux = true;
        v.direction = Direction::SendOnly;
        let sdp = build_session_offer(&s, 1, 1);
        let video = section(&sdp, "video");
        assert!(
            video.starts_with("m=video 40002 RTP/AVP 100 99 96\r\nb=AS:1500\r\nb=TIAS:1500000\r\n"),
            "{video}"
        );
        assert!(
            video.contains("a=rtcp:40003\r\na=rtcp-mux\r\na=sendonly\r\n"),
            "{video}"
        );
        assert!(!section(&sdp, "audio").contains("TIAS"));
        // Our own parser reads it back.
        assert_eq!(parse(&sdp).unwrap().media_descriptions.len(), 2);
    }

    #[test]
    fn disabled_video_is_left_out_of_offers() {
        let mut s = session(SrtpMode::Off, &[VideoCodec::Vp8]);
        s.video.as_mut().unwrap().port = 0;
        assert_eq!(media_lines(&build_session_offer(&s, 1, 1)).len(), 1);
        s.video = Some(LocalVideo::new(40002, vec![]));
        assert_eq!(media_lines(&build_session_offer(&s, 1, 1)).len(), 1);
    }

    // --- answering baresip in each SRTP mode -------------------------------

    #[test]
    fn baresip_srtp_mand_offer_answer_text_is_exact() {
        let s = session(SrtpMode::Required, &VideoCodec::ALL);
        let (answer, _) = answer_session(&baresip_video("srtp-mand"), &s, 7, 8).unwrap();
        let expected = format!(
            "v=0\r\n\
o=ewindow 7 8 IN IP4 192.0.2.10\r\n\
s=ewindow\r\n\
c=IN IP4 192.0.2.10\r\n\
t=0 0\r\n\
m=audio 40000 RTP/SAVP 96 101\r\n\
a=rtpmap:96 opus/48000/2\r\n\
a=rtpmap:101 telephone-event/8000\r\n\
a=fmtp:101 0-15\r\n\
a=rtcp:40001\r\n\
a=ptime:20\r\n\
a=sendrecv\r\n\
a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:{}\r\n\
m=video 40002 RTP/SAVP 102\r\n\
a=rtpmap:102 VP8/90000\r\n\
a=rtcp-fb:102 nack\r\n\
a=rtcp-fb:102 nack pli\r\n\
a=rtcp-fb:102 ccm fir\r\n\
a=rtcp:40003\r\n\
a=sendrecv\r\n\
a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:{}\r\n",
            b64(&s.keys.audio[..30]),
            b64(&s.keys.video[..30]),
        );
        assert_eq!(answer, expected);
    }

    #[test]
    fn baresip_srtp_mand_offer_in_each_mode() {
        let offer = baresip_video("srtp-mand");
        for mode in [SrtpMode::Required, SrtpMode::Optional] {
            let s = session(mode, &VideoCodec::ALL);
            let (answer, n) = answer_session(&offer, &s, 1, 1).unwrap();
            assert_eq!(
                media_lines(&answer),
                vec![
                    "m=audio 40000 RTP/SAVP 96 101",
                    "m=video 40002 RTP/SAVP 102"
                ],
                "{mode}"
            );
            assert_eq!(
                n.audio.srtp,
                Some(Srtp {
                    suite: CryptoSuite::AesCm128HmacSha1_80,
                    tag: 1,
                    local_key: s.keys.audio[..30].to_vec(),
                    remote_key: unb64(BARESIP_AUDIO_KEY),
                })
            );
            assert_eq!(n.audio.profile, "RTP/SAVP");
            assert_eq!(n.audio.crypto.len(), 3, "raw lines still reported");
            let v = n.video.expect("video");
            assert_eq!((v.codec, v.pt), (VideoCodec::Vp8, 102));
            assert_eq!(
                v.srtp,
                Some(Srtp {
                    suite: CryptoSuite::AesCm128HmacSha1_80,
                    tag: 1,
                    local_key: s.keys.video[..30].to_vec(),
                    remote_key: unb64(BARESIP_VIDEO_KEY),
                })
            );
            assert_eq!(v.profile, "RTP/SAVP");
        }
        let off = answer_session(&offer, &session(SrtpMode::Off, &VideoCodec::ALL), 1, 1);
        assert_eq!(off, Err(SdpError::SrtpRequired));
        assert_eq!(off.unwrap_err().sip_status(), 488);
    }

    #[test]
    fn baresip_srtp_offer_avp_with_crypto_in_each_mode() {
        let offer = baresip_video("srtp");
        for mode in [SrtpMode::Required, SrtpMode::Optional] {
            let s = session(mode, &VideoCodec::ALL);
            let (answer, n) = answer_session(&offer, &s, 1, 1).unwrap();
            assert_eq!(
                media_lines(&answer),
                vec!["m=audio 40000 RTP/AVP 96 101", "m=video 40002 RTP/AVP 102"],
                "{mode}: profile echoed"
            );
            assert_eq!(crypto_lines(section(&answer, "audio")).len(), 1);
            assert_eq!(crypto_lines(section(&answer, "video")).len(), 1);
            assert_eq!(n.audio.srtp.as_ref().unwrap().tag, 1);
            assert_eq!(
                n.video.as_ref().unwrap().srtp.as_ref().unwrap().remote_key,
                unb64(BARESIP_VIDEO_KEY)
            );
        }
        // Off: plain answer, crypto ignored.
        let (answer, n) =
            answer_session(&offer, &session(SrtpMode::Off, &VideoCodec::ALL), 1, 1).unwrap();
        assert!(!answer.contains("a=crypto"), "{answer}");
        assert_eq!(
            media_lines(&answer),
            vec!["m=audio 40000 RTP/AVP 96 101", "m=video 40002 RTP/AVP 102"]
        );
        assert_eq!(n.audio.srtp, None);
        assert_eq!(n.video.unwrap().srtp, None);
    }

    #[test]
    fn baresip_plain_offer_in_each_mode() {
        let offer = baresip_video("plain");
        assert_eq!(
            answer_session(&offer, &session(SrtpMode::Required, &VideoCodec::ALL), 1, 1),
            Err(SdpError::SrtpRequired)
        );
        for mode in [SrtpMode::Optional, SrtpMode::Off] {
            let (answer, n) =
                answer_session(&offer, &session(mode, &VideoCodec::ALL), 1, 1).unwrap();
            assert!(!answer.contains("a=crypto"), "{mode}: {answer}");
            assert_eq!(n.audio.srtp, None);
            assert_eq!(n.audio.format.codec, AudioCodec::Opus);
            let v = n.video.expect("video");
            assert_eq!(v.srtp, None);
            assert_eq!(v.remote_rtp, sock("127.0.0.1:21002"));
            assert_eq!(v.remote_rtcp, sock("127.0.0.1:21003"));
            assert_eq!(v.remote_bandwidth_kbps, Some(1000));
            assert_eq!(v.direction, Direction::SendRecv);
            assert!(v.nack && v.pli && v.fir, "rtcp-fb:* applies");
        }
    }

    #[test]
    fn audio_only_session_rejects_video_of_a_keyed_offer() {
        let (answer, n) = answer_offer(&baresip_video("srtp-mand"), &all_codecs(), 1, 1).unwrap();
        assert_eq!(
            media_lines(&answer),
            vec![
                "m=audio 40000 RTP/SAVP 96 101",
                "m=video 0 RTP/SAVP 100 101 102"
            ]
        );
        assert_eq!(crypto_lines(&answer).len(), 1);
        assert!(n.is_secure());
        assert_eq!(n.srtp.map(|s| s.tag), Some(1));
        assert_eq!(n.crypto.len(), 3);
    }

    #[test]
    fn h264_picks_the_packetization_mode_1_payload_type() {
        let s = session(SrtpMode::Off, &[VideoCodec::H264, VideoCodec::Vp8]);
        let (answer, n) = answer_session(&baresip_video("plain"), &s, 1, 1).unwrap();
        let v = n.video.expect("video");
        assert_eq!((v.codec, v.pt), (VideoCodec::H264, 101));
        assert_eq!(
            v.fmtp.as_deref(),
            Some("packetization-mode=1;profile-level-id=42002a")
        );
        assert_eq!(
            section(&answer, "video"),
            "m=video 40002 RTP/AVP 101\r\n\
a=rtpmap:101 H264/90000\r\n\
a=fmtp:101 packetization-mode=1;profile-level-id=42002a\r\n\
a=rtcp-fb:101 nack\r\n\
a=rtcp-fb:101 nack pli\r\n\
a=rtcp-fb:101 ccm fir\r\n\
a=rtcp:40003\r\n\
a=sendrecv\r\n"
        );
    }

    #[test]
    fn h264_mode_0_is_taken_when_no_mode_1_is_offered() {
        let offer = offer_with(
            "m=audio 4000 RTP/AVP 0\n\
m=video 5000 RTP/AVP 100 101 102\n\
a=rtpmap:100 H264/90000\n\
a=fmtp:100 packetization-mode=0;profile-level-id=42e01f\n\
a=rtpmap:101 H264/90000\n\
a=rtpmap:102 h264/90000\n\
a=fmtp:102 profile-level-id=42e01f\n",
        );
        let s = session(SrtpMode::Off, &[VideoCodec::H264]);
        let (answer, n) = answer_session(&offer, &s, 1, 1).unwrap();
        let v = n
            .video
            .expect("mode 0 H.264 is accepted (baresip 1.0 offers only that)");
        assert_eq!(v.pt, 100);
        assert!(h264_single_nal(v.fmtp.as_deref()));
        assert!(
            answer.contains("a=fmtp:100 packetization-mode=0;profile-level-id=42e01f\r\n"),
            "{answer}"
        );
        // Interleaved mode 2 is not supported.
        let offer = offer_with(
            "m=audio 4000 RTP/AVP 0\nm=video 5000 RTP/AVP 98\na=rtpmap:98 H264/90000\na=fmtp:98 packetization-mode=2\n",
        );
        let (answer, n) = answer_session(&offer, &s, 1, 1).unwrap();
        assert_eq!(n.video, None);
        assert_eq!(
            media_lines(&answer),
            vec!["m=audio 40000 RTP/AVP 0", "m=video 0 RTP/AVP 98"]
        );
        // Mode 1 without profile-level-id: answered with the mode only.
        let offer = offer_with(
            "m=audio 4000 RTP/AVP 0\nm=video 5000 RTP/AVP 99\na=rtpmap:99 H264/90000\na=fmtp:99 packetization-mode=1\n",
        );
        let (answer, n) = answer_session(&offer, &s, 1, 1).unwrap();
        assert_eq!(n.video.unwrap().pt, 99);
        assert!(
            answer.contains("a=fmtp:99 packetization-mode=1\r\n"),
            "{answer}"
        );
    }

    #[test]
    fn no_common_video_codec_rejects_video_and_the_call_proceeds() {
        let offer = baresip_video("plain");
        for s in [
            session(SrtpMode::Off, &[VideoCodec::Vp9]),
            session(SrtpMode::Off, &[]),
        ] {
            let (answer, n) = answer_session(&offer, &s, 1, 1).unwrap();
            assert_eq!(n.video, None);
            assert_eq!(n.audio.format.codec, AudioCodec::Opus);
            assert_eq!(
                media_lines(&answer),
                vec![
                    "m=audio 40000 RTP/AVP 96 101",
                    "m=video 0 RTP/AVP 100 101 102"
                ]
            );
        }
    }

    #[test]
    fn extra_video_lines_are_rejected_first_usable_one_is_taken() {
        let offer = offer_with(
            "m=video 5000 RTP/AVP 120\n\
a=rtpmap:120 AV1/90000\n\
m=audio 4000 RTP/AVP 0\n\
m=video 5002 RTP/AVP 96\n\
a=rtpmap:96 VP8/90000\n\
m=video 5004 RTP/AVP 96\n\
a=rtpmap:96 VP8/90000\n",
        );
        let s = session(SrtpMode::Off, &VideoCodec::ALL);
        let (answer, n) = answer_session(&offer, &s, 1, 1).unwrap();
        assert_eq!(
            media_lines(&answer),
            vec![
                "m=video 0 RTP/AVP 120",
                "m=audio 40000 RTP/AVP 0",
                "m=video 40002 RTP/AVP 96",
                "m=video 0 RTP/AVP 96",
            ]
        );
        assert_eq!(n.video.unwrap().remote_rtp, sock("198.51.100.1:5002"));
    }

    #[test]
    fn rtcp_feedback_only_where_offered_for_that_payload_type() {
        let offer = offer_with(
            "m=audio 4000 RTP/AVP 0\n\
m=video 5000 RTP/AVP 96 97\n\
a=rtpmap:96 VP8/90000\n\
a=rtpmap:97 VP9/90000\n\
a=rtcp-fb:96 nack\n\
a=rtcp-fb:97 NACK PLI\n\
a=rtcp-fb:97 ccm fir\n\
a=rtcp-fb:* goog-remb\n\
a=rtcp-fb:* nack sli\n",
        );
        let (answer, n) =
            answer_session(&offer, &session(SrtpMode::Off, &[VideoCodec::Vp8]), 1, 1).unwrap();
        let v = n.video.unwrap();
        assert_eq!((v.nack, v.pli, v.fir), (true, false, false));
        let video = section(&answer, "video");
        assert!(video.contains("a=rtcp-fb:96 nack\r\n"), "{video}");
        assert!(!video.contains("pli") && !video.contains("fir") && !video.contains("remb"));

        let (answer, n) =
            answer_session(&offer, &session(SrtpMode::Off, &[VideoCodec::Vp9]), 1, 1).unwrap();
        let v = n.video.unwrap();
        assert_eq!((v.nack, v.pli, v.fir), (false, true, true));
        let video = section(&answer, "video");
        assert!(
            video.contains("a=rtcp-fb:97 nack pli\r\na=rtcp-fb:97 ccm fir\r\n"),
            "{video}"
        );
        assert!(!video.contains("a=rtcp-fb:97 nack\r\n"));
    }

    #[test]
    fn video_direction_hold_bandwidth_and_rtcp_mux() {
        let offer = offer_with(
            "m=audio 4000 RTP/AVP 0\n\
m=video 5000 RTP/AVP 96\n\
c=IN IP4 203.0.113.8\n\
b=TIAS:512000\n\
a=rtpmap:96 VP8/90000\n\
a=sendonly\n\
a=rtcp-mux\n",
        );
        let mut s = session(SrtpMode::Off, &[VideoCodec::Vp8]);
        let v = s.video.as_mut().unwrap();
        v.bandwidth_kbps = Some(800);
        v.rtcp_mux = true;
        let (answer, n) = answer_session(&offer, &s, 1, 1).unwrap();
        let nv = n.video.unwrap();
        assert_eq!(nv.direction, Direction::RecvOnly);
        assert_eq!(nv.remote_bandwidth_kbps, Some(512), "TIAS / 1000");
        assert!(nv.rtcp_mux);
        assert_eq!(nv.remote_rtp, sock("203.0.113.8:5000"));
        assert_eq!(nv.remote_rtcp, nv.remote_rtp);
        assert_eq!((nv.nack, nv.pli, nv.fir), (false, false, false));
        let video = section(&answer, "video");
        assert!(
            video.starts_with("m=video 40002 RTP/AVP 96\r\nb=AS:800\r\nb=TIAS:800000\r\n"),
            "{video}"
        );
        assert!(
            video.contains("a=rtcp:40002\r\na=rtcp-mux\r\na=recvonly\r\n"),
            "{video}"
        );
        assert!(!video.contains("rtcp-fb"));

        // Session-level hold address: we do not send video either.
        let held = crlf(
            "v=0\no=- 1 1 IN IP4 198.51.100.1\ns=-\nc=IN IP4 0.0.0.0\nt=0 0\nm=audio 4000 RTP/AVP 0\nm=video 5000 RTP/AVP 96\na=rtpmap:96 VP8/90000\n",
        );
        let n = answer_session(&held, &s, 1, 1).unwrap().1;
        assert_eq!(n.video.unwrap().direction, Direction::RecvOnly);
    }

    #[test]
    fn video_with_bad_rtcp_is_rejected_not_an_error() {
        let offer = offer_with(
            "m=audio 4000 RTP/AVP 0\nm=video 5000 RTP/AVP 96\na=rtpmap:96 VP8/90000\na=rtcp:99999\n",
        );
        let (answer, n) =
            answer_session(&offer, &session(SrtpMode::Off, &[VideoCodec::Vp8]), 1, 1).unwrap();
        assert_eq!(n.video, None);
        assert_eq!(media_lines(&answer)[1], "m=video 0 RTP/AVP 96");
    }

    // --- crypto selection ---------------------------------------------------------

    /// An offer with one audio m-line of `profile` and the given crypto
    /// values.
    fn crypto_offer(profile: &str, crypto: &[String]) -> String {
        let lines: String = crypto.iter().map(|c| format!("a=crypto:{c}\n")).collect();
        offer_with(&format!("m=audio 4000 {profile} 0\n{lines}"))
    }

    #[test]
    fn unknown_suite_then_known_one_picks_the_known_one() {
        let k30 = b64(&[7u8; 30]);
        let offer = crypto_offer(
            "RTP/SAVP",
            &[
                format!("1 F8_128_HMAC_SHA1_80 inline:{k30}"),
                format!("2 AEAD_AES_256_GCM inline:{k30}"),
                format!("3 AES_CM_128_HMAC_SHA1_32 inline:{k30}"),
            ],
        );
        let (answer, n) = answer_session(&offer, &session(SrtpMode::Required, &[]), 1, 1).unwrap();
        let srtp = n.audio.srtp.unwrap();
        assert_eq!(
            (srtp.tag, srtp.suite),
            (3, CryptoSuite::AesCm128HmacSha1_32)
        );
        assert_eq!(srtp.remote_key, vec![7u8; 30]);
        assert_eq!(
            crypto_lines(&answer),
            vec![format!(
                "a=crypto:3 AES_CM_128_HMAC_SHA1_32 inline:{}",
                b64(&keys(1).audio[..30])
            )]
        );
    }

    #[test]
    fn offerer_order_wins_over_our_suite_order() {
        let k30 = b64(&[9u8; 30]);
        let offer = crypto_offer(
            "RTP/SAVP",
            &[
                format!("5 AES_CM_128_HMAC_SHA1_32 inline:{k30}"),
                format!("6 AES_CM_128_HMAC_SHA1_80 inline:{k30}"),
            ],
        );
        let n = answer_session(&offer, &session(SrtpMode::Optional, &[]), 1, 1)
            .unwrap()
            .1;
        assert_eq!(n.audio.srtp.unwrap().tag, 5);
    }

    #[test]
    fn suites_we_do_not_want_and_wrong_key_lengths_are_skipped() {
        let k30 = b64(&[1u8; 30]);
        let k46 = b64(&[2u8; 46]);
        let offer = crypto_offer(
            "RTP/SAVP",
            &[
                format!("1 AES_256_CM_HMAC_SHA1_80 inline:{k46}"),
                format!("2 AES_CM_128_HMAC_SHA1_80 inline:{k46}"),
                format!("3 AES_CM_128_HMAC_SHA1_80 inline:{k30}"),
            ],
        );
        // Default suites: no AES-256; tag 2 has a 46-byte key for a 30-byte suite.
        let n = answer_session(&offer, &session(SrtpMode::Required, &[]), 1, 1)
            .unwrap()
            .1;
        assert_eq!(n.audio.srtp.unwrap().tag, 3);
        // With AES-256 allowed, tag 1 is taken, with a 46-byte local key.
        let mut s = session(SrtpMode::Required, &[]);
        s.suites = CryptoSuite::ALL.to_vec();
        let (answer, n) = answer_session(&offer, &s, 1, 1).unwrap();
        let srtp = n.audio.srtp.unwrap();
        assert_eq!(
            (srtp.tag, srtp.suite),
            (1, CryptoSuite::Aes256CmHmacSha1_80)
        );
        assert_eq!(srtp.local_key, s.keys.audio.to_vec());
        assert_eq!(srtp.remote_key, vec![2u8; 46]);
        assert!(answer.contains(&format!(
            "a=crypto:1 AES_256_CM_HMAC_SHA1_80 inline:{}\r\n",
            b64(&s.keys.audio)
        )));
    }

    #[test]
    fn lifetime_mki_session_params_and_missing_padding_are_tolerated() {
        let key = [3u8; 46];
        let unpadded = b64(&key).trim_end_matches('=').to_string();
        let mut s = session(SrtpMode::Required, &[]);
        s.suites = vec![CryptoSuite::Aes256CmHmacSha1_32];
        for value in [
            format!("1 AES_256_CM_HMAC_SHA1_32 inline:{}|2^31|1:4", b64(&key)),
            format!("1 AES_256_CM_HMAC_SHA1_32 inline:{}|2^20", b64(&key)),
            format!("1 AES_256_CM_HMAC_SHA1_32 inline:{unpadded}"),
            format!(
                "1 AES_256_CM_HMAC_SHA1_32 inline:{};inline:{} KDR=1 FEC_ORDER=FEC_SRTP",
                b64(&key),
                b64(&[4u8; 46])
            ),
        ] {
            let offer = crypto_offer("RTP/SAVP", std::slice::from_ref(&value));
            let n = answer_session(&offer, &s, 1, 1)
                .unwrap_or_else(|e| panic!("{value}: {e}"))
                .1;
            assert_eq!(n.audio.srtp.unwrap().remote_key, key.to_vec(), "{value}");
        }
    }

    #[test]
    fn broken_crypto_lines_are_skipped_without_panic() {
        let k30 = b64(&[5u8; 30]);
        let broken = [
            String::new(),
            "1".to_string(),
            "x AES_CM_128_HMAC_SHA1_80 inline:K".to_string(),
            format!("1234567890 AES_CM_128_HMAC_SHA1_80 inline:{k30}"),
            format!("-1 AES_CM_128_HMAC_SHA1_80 inline:{k30}"),
            "1 AES_CM_128_HMAC_SHA1_80".to_string(),
            "1 AES_CM_128_HMAC_SHA1_80 inline:".to_string(),
            "1 AES_CM_128_HMAC_SHA1_80 inline".to_string(),
            format!("1 AES_CM_128_HMAC_SHA1_80 uri:{k30}"),
            "1 AES_CM_128_HMAC_SHA1_80 inline:!!!!".to_string(),
            "1 AES_CM_128_HMAC_SHA1_80 inline:|||".to_string(),
            "1 AES_CM_128_HMAC_SHA1_80 inline:é€😀".to_string(),
            format!("1 AES_CM_128_HMAC_SHA1_80 inline:{k30}==="),
            format!("1 AES_CM_128_HMAC_SHA1_80 inline:{}", &k30[..39]),
            format!("1 AES_CM_128_HMAC_SHA1_80 inline:{}", b64(&[0u8; 31])),
            format!("1 AES_CM_128_HMAC_SHA1_80 inline:{}", b64(&[0u8; 29])),
        ];
        for b in &broken {
            assert!(parse_crypto(b).is_err(), "{b:?}");
        }
        let mut lines: Vec<String> = broken.to_vec();
        lines.push(format!("9 AES_CM_128_HMAC_SHA1_80 inline:{k30}"));
        let offer = crypto_offer("RTP/SAVP", &lines);
        let n = answer_session(&offer, &session(SrtpMode::Required, &[]), 1, 1)
            .unwrap()
            .1;
        assert_eq!(n.audio.srtp.unwrap().tag, 9);
        // Only broken lines: SAVP can't be answered.
        let offer = crypto_offer("RTP/SAVP", &broken);
        assert_eq!(
            answer_session(&offer, &session(SrtpMode::Optional, &[]), 1, 1),
            Err(SdpError::SrtpRequired)
        );
        // ... while AVP falls back to plain in Optional mode.
        let offer = crypto_offer("RTP/AVP", &broken);
        let n = answer_session(&offer, &session(SrtpMode::Optional, &[]), 1, 1)
            .unwrap()
            .1;
        assert_eq!(n.audio.srtp, None);
    }

    #[test]
    fn savp_offer_without_crypto_is_refused_in_every_mode() {
        let offer = crypto_offer("RTP/SAVP", &[]);
        for mode in [SrtpMode::Required, SrtpMode::Optional, SrtpMode::Off] {
            assert_eq!(
                answer_session(&offer, &session(mode, &[]), 1, 1),
                Err(SdpError::SrtpRequired),
                "{mode}"
            );
        }
    }

    #[test]
    fn dtls_srtp_offers_are_refused_even_with_crypto() {
        let k30 = b64(&[5u8; 30]);
        let offer = offer_with(&format!(
            "m=audio 4000 UDP/TLS/RTP/SAVPF 0\na=fingerprint:sha-256 AB:CD\na=setup:actpass\na=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:{k30}\n"
        ));
        for mode in [SrtpMode::Required, SrtpMode::Optional, SrtpMode::Off] {
            assert_eq!(
                answer_session(&offer, &session(mode, &[]), 1, 1),
                Err(SdpError::SrtpRequired),
                "{mode}"
            );
        }
    }

    #[test]
    fn second_audio_line_used_when_first_cannot_be_secured() {
        let k30 = b64(&[5u8; 30]);
        let offer = offer_with(&format!(
            "m=audio 4000 RTP/SAVP 0\nm=audio 4010 RTP/SAVP 0\na=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:{k30}\n"
        ));
        let (answer, n) = answer_session(&offer, &session(SrtpMode::Required, &[]), 1, 1).unwrap();
        assert_eq!(
            media_lines(&answer),
            vec!["m=audio 0 RTP/SAVP 0", "m=audio 40000 RTP/SAVP 0"]
        );
        assert_eq!(n.audio.remote_rtp.port(), 4010);
    }

    #[test]
    fn video_without_usable_crypto_is_rejected_but_audio_is_secured() {
        let k30 = b64(&[5u8; 30]);
        let offer = offer_with(&format!(
            "m=audio 4000 RTP/SAVP 0\na=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:{k30}\n\
m=video 5000 RTP/SAVP 96\na=rtpmap:96 VP8/90000\na=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:short\n"
        ));
        for mode in [SrtpMode::Required, SrtpMode::Optional] {
            let (answer, n) =
                answer_session(&offer, &session(mode, &[VideoCodec::Vp8]), 1, 1).unwrap();
            assert!(n.audio.srtp.is_some());
            assert_eq!(n.video, None);
            assert_eq!(
                media_lines(&answer),
                vec!["m=audio 40000 RTP/SAVP 0", "m=video 0 RTP/SAVP 96"]
            );
        }
        // Required + plain video: also port 0.
        let offer = offer_with(&format!(
            "m=audio 4000 RTP/AVP 0\na=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:{k30}\n\
m=video 5000 RTP/AVP 96\na=rtpmap:96 VP8/90000\n"
        ));
        let (_, n) = answer_session(
            &offer,
            &session(SrtpMode::Required, &[VideoCodec::Vp8]),
            1,
            1,
        )
        .unwrap();
        assert!(n.audio.srtp.is_some());
        assert_eq!(n.video, None);
        // Optional + plain video: plain video.
        let (_, n) = answer_session(
            &offer,
            &session(SrtpMode::Optional, &[VideoCodec::Vp8]),
            1,
            1,
        )
        .unwrap();
        assert_eq!(n.video.unwrap().srtp, None);
    }

    // --- reading session answers -------------------------------------------------

    /// An answer with an audio m-line (PCMU) of `profile` and `extra` lines.
    fn session_answer(profile: &str, extra: &str) -> String {
        offer_with(&format!("m=audio 5000 {profile} 0\n{extra}"))
    }

    #[test]
    fn required_offer_answered_plain_is_srtp_required() {
        let plain = session_answer("RTP/AVP", "");
        assert_eq!(
            read_session_answer(&plain, &session(SrtpMode::Required, &[])),
            Err(SdpError::SrtpRequired)
        );
        let n = read_session_answer(&plain, &session(SrtpMode::Optional, &[])).unwrap();
        assert_eq!(n.audio.srtp, None);
        let n = read_session_answer(&plain, &session(SrtpMode::Off, &[])).unwrap();
        assert_eq!(n.audio.srtp, None);
        // A rejected audio stream needs no crypto.
        let rejected = offer_with("m=audio 0 RTP/SAVP 0\n");
        let n = read_session_answer(&rejected, &session(SrtpMode::Required, &[])).unwrap();
        assert_eq!(n.audio.direction, Direction::Inactive);
    }

    #[test]
    fn answer_crypto_must_name_an_offered_tag_with_its_suite() {
        let k30 = b64(&[8u8; 30]);
        let s = session(SrtpMode::Required, &[]);
        // Our tags: 1 = AES_CM_128_HMAC_SHA1_80, 2 = AES_CM_128_HMAC_SHA1_32.
        let good = session_answer(
            "RTP/SAVP",
            &format!("a=crypto:2 AES_CM_128_HMAC_SHA1_32 inline:{k30}\n"),
        );
        let srtp = read_session_answer(&good, &s).unwrap().audio.srtp.unwrap();
        assert_eq!(
            srtp,
            Srtp {
                suite: CryptoSuite::AesCm128HmacSha1_32,
                tag: 2,
                local_key: s.keys.audio[..30].to_vec(),
                remote_key: vec![8u8; 30],
            }
        );
        for bad in [
            format!("2 AES_CM_128_HMAC_SHA1_80 inline:{k30}"),
            format!("3 AES_CM_128_HMAC_SHA1_80 inline:{k30}"),
            format!("0 AES_CM_128_HMAC_SHA1_80 inline:{k30}"),
            "1 AES_CM_128_HMAC_SHA1_80 inline:tooshort".to_string(),
            format!("1 F8_128_HMAC_SHA1_80 inline:{k30}"),
        ] {
            for profile in ["RTP/SAVP", "RTP/AVP"] {
                let answer = session_answer(profile, &format!("a=crypto:{bad}\n"));
                assert!(
                    matches!(
                        read_session_answer(&answer, &s),
                        Err(SdpError::BadCrypto(_))
                    ),
                    "{profile} {bad}"
                );
            }
            // Optional: plain RTP/AVP answer with an unusable line is plain...
            let answer = session_answer("RTP/AVP", &format!("a=crypto:{bad}\n"));
            let n = read_session_answer(&answer, &session(SrtpMode::Optional, &[])).unwrap();
            assert_eq!(n.audio.srtp, None, "{bad}");
            // ... but RTP/SAVP cannot be plain.
            let answer = session_answer("RTP/SAVP", &format!("a=crypto:{bad}\n"));
            assert!(matches!(
                read_session_answer(&answer, &session(SrtpMode::Optional, &[])),
                Err(SdpError::BadCrypto(_))
            ));
        }
        assert_eq!(
            read_session_answer(
                &session_answer("RTP/SAVP", ""),
                &session(SrtpMode::Optional, &[])
            ),
            Err(SdpError::SrtpRequired)
        );
    }

    #[test]
    fn keys_round_trip_between_caller_and_callee() {
        for suites in [
            CryptoSuite::DEFAULT.to_vec(),
            vec![CryptoSuite::Aes256CmHmacSha1_80],
        ] {
            let mut caller = session(SrtpMode::Required, &VideoCodec::ALL);
            caller.suites = suites.clone();
            let mut callee = LocalSession::new(
                LocalAudio::new(ip("198.51.100.20"), 30000, vec![AudioCodec::Pcma]),
                keys(0x40),
            );
            callee.srtp = SrtpMode::Optional;
            callee.suites = CryptoSuite::ALL.to_vec();
            callee.video = Some(LocalVideo::new(30002, vec![VideoCodec::H264]));

            let offer = build_session_offer(&caller, 1, 1);
            let (answer, callee_view) = answer_session(&offer, &callee, 2, 1).unwrap();
            let caller_view = read_session_answer(&answer, &caller).unwrap();

            let len = suites[0].key_len();
            let ca = callee_view.audio.srtp.clone().unwrap();
            let ra = caller_view.audio.srtp.clone().unwrap();
            assert_eq!((ca.tag, ca.suite), (1, suites[0]));
            assert_eq!((ra.tag, ra.suite), (1, suites[0]));
            assert_eq!(ra.local_key, caller.keys.audio[..len].to_vec());
            assert_eq!(ra.remote_key, callee.keys.audio[..len].to_vec());
            assert_eq!(ca.local_key, ra.remote_key);
            assert_eq!(ca.remote_key, ra.local_key);

            let cv = callee_view.video.clone().unwrap();
            let rv = caller_view.video.clone().unwrap();
            let (cvs, rvs) = (cv.srtp.unwrap(), rv.srtp.unwrap());
            assert_eq!(rvs.local_key, caller.keys.video[..len].to_vec());
            assert_eq!(rvs.remote_key, callee.keys.video[..len].to_vec());
            assert_eq!(cvs.local_key, rvs.remote_key);
            assert_eq!(cvs.remote_key, rvs.local_key);

            assert_eq!((cv.codec, cv.pt), (VideoCodec::H264, 100));
            assert_eq!((rv.codec, rv.pt), (VideoCodec::H264, 100));
            assert_eq!(
                cv.fmtp.as_deref(),
                Some(H264_OFFER_FMTP),
                "callee sees our offer's fmtp"
            );
            assert_eq!(
                rv.fmtp.as_deref(),
                Some("packetization-mode=1;profile-level-id=42e01f")
            );
            assert!(cv.nack && cv.pli && cv.fir && rv.nack && rv.pli && rv.fir);
            assert_eq!(rv.remote_rtp, sock("198.51.100.20:30002"));
            assert_eq!(rv.remote_rtcp, sock("198.51.100.20:30003"));
            assert_eq!(cv.remote_rtp, sock("192.0.2.10:40002"));
            assert_eq!(caller_view.audio.format.codec, AudioCodec::Pcma);
            assert_eq!(caller_view.audio.profile, "RTP/SAVP");
        }
    }

    #[test]
    fn plain_round_trip_with_video() {
        let caller = session(SrtpMode::Optional, &[VideoCodec::Vp9, VideoCodec::Vp8]);
        let callee = session(SrtpMode::Off, &[VideoCodec::Vp8, VideoCodec::Vp9]);
        let offer = build_session_offer(&caller, 1, 1);
        let (answer, callee_view) = answer_session(&offer, &callee, 1, 1).unwrap();
        assert!(!answer.contains("a=crypto"));
        assert_eq!(callee_view.video.as_ref().unwrap().codec, VideoCodec::Vp8);
        let caller_view = read_session_answer(&answer, &caller).unwrap();
        assert_eq!(caller_view.audio.srtp, None);
        let v = caller_view.video.unwrap();
        assert_eq!((v.codec, v.pt, v.srtp), (VideoCodec::Vp8, 96, None));
    }

    #[test]
    fn read_session_answer_video_absent_rejected_or_unusable_is_none() {
        let s = session(SrtpMode::Off, &VideoCodec::ALL);
        for extra in [
            "",
            "m=video 0 RTP/AVP 96\n",
            "m=video 6000 RTP/AVP 120\na=rtpmap:120 AV1/90000\n",
            "m=video 6000 RTP/AVP 100\na=rtpmap:100 H264/90000\na=fmtp:100 packetization-mode=2\n",
            "m=video 6000 RTP/AVP 96\na=rtcp:0\n",
            "m=video 6000 UDP 96\n",
        ] {
            let answer = session_answer("RTP/AVP", extra);
            let n = read_session_answer(&answer, &s).unwrap_or_else(|e| panic!("{extra}: {e}"));
            assert_eq!(n.video, None, "{extra}");
        }
        // We offered no video: whatever the answer says, no video.
        let answer = session_answer("RTP/AVP", "m=video 6000 RTP/AVP 96\n");
        let n = read_session_answer(&answer, &session(SrtpMode::Off, &[])).unwrap();
        assert_eq!(n.video, None);
    }

    #[test]
    fn read_session_answer_video_details() {
        let s = session(SrtpMode::Off, &VideoCodec::ALL);
        // Dynamic PT without rtpmap understood through our offer; H.264
        // without fmtp taken as agreement to our mode-1 offer.
        let answer = session_answer(
            "RTP/AVP",
            "m=video 6000 RTP/AVP 100\nb=AS:700\na=rtcp-fb:100 nack pli\na=recvonly\n",
        );
        let v = read_session_answer(&answer, &s).unwrap().video.unwrap();
        assert_eq!((v.codec, v.pt, v.fmtp), (VideoCodec::H264, 100, None));
        assert_eq!((v.nack, v.pli, v.fir), (false, true, false));
        assert_eq!(v.direction, Direction::SendOnly);
        assert_eq!(v.remote_bandwidth_kbps, Some(700));
        assert_eq!(v.remote_rtp, sock("198.51.100.1:6000"));
        assert_eq!(v.remote_rtcp, sock("198.51.100.1:6001"));
        assert!(!v.rtcp_mux);
        // Answer order decides among several.
        let answer = session_answer(
            "RTP/AVP",
            "m=video 6000 RTP/AVP 98 96\na=rtpmap:98 VP9/90000\na=rtpmap:96 VP8/90000\n",
        );
        let v = read_session_answer(&answer, &s).unwrap().video.unwrap();
        assert_eq!(v.codec, VideoCodec::Vp9);
    }

    #[test]
    fn read_session_answer_video_crypto_failure_drops_only_video() {
        let k30 = b64(&[8u8; 30]);
        let answer = session_answer(
            "RTP/SAVP",
            &format!(
                "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:{k30}\nm=video 6000 RTP/SAVP 96\na=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:bad\n"
            ),
        );
        let n =
            read_session_answer(&answer, &session(SrtpMode::Required, &[VideoCodec::Vp8])).unwrap();
        assert!(n.audio.srtp.is_some());
        assert_eq!(n.video, None);
    }

    #[test]
    fn session_functions_reject_broken_sdp_like_the_old_ones() {
        let s = session(SrtpMode::Optional, &VideoCodec::ALL);
        for sdp in ["", "garbage", "v=0"] {
            assert!(matches!(
                answer_session(sdp, &s, 1, 1),
                Err(SdpError::Parse(_))
            ));
            assert!(matches!(
                read_session_answer(sdp, &s),
                Err(SdpError::Parse(_))
            ));
        }
        let video_only = offer_with("m=video 4000 RTP/AVP 96\na=rtpmap:96 VP8/90000\n");
        assert_eq!(
            answer_session(&video_only, &s, 1, 1),
            Err(SdpError::NoAudio)
        );
    }

    #[test]
    fn truncated_and_mutated_session_offers_never_panic() {
        let our = session(SrtpMode::Required, &VideoCodec::ALL);
        let offers = [
            baresip_video("srtp-mand"),
            baresip_video("srtp"),
            build_session_offer(&our, 1, 1),
        ];
        let locals = [
            session(SrtpMode::Required, &VideoCodec::ALL),
            session(SrtpMode::Optional, &[VideoCodec::H264, VideoCodec::Vp8]),
            session(SrtpMode::Off, &VideoCodec::ALL),
        ];
        let alphabet = b"= \r\n:/|;*^+0123456789x-aAm";
        let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for offer in &offers {
            for (end, _) in offer.char_indices() {
                let local = &locals[end % locals.len()];
                let _ = answer_session(&offer[..end], local, 1, 1);
                let _ = read_session_answer(&offer[..end], local);
            }
            let bytes = offer.as_bytes();
            for round in 0..1500 {
                let mut mutated = bytes.to_vec();
                for _ in 0..(1 + next() % 3) {
                    let pos = (next() % mutated.len() as u64) as usize;
                    mutated[pos] = alphabet[(next() % alphabet.len() as u64) as usize];
                }
                let text = String::from_utf8_lossy(&mutated);
                let local = &locals[round % locals.len()];
                if let Ok((answer, _)) = answer_session(&text, local, 1, 1) {
                    // Whatever we answer, we can read ourselves.
                    assert!(parse(&answer).is_ok(), "{answer}");
                }
                let _ = read_session_answer(&text, local);
            }
        }
    }
}
