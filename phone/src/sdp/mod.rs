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
//!
//! This module itself holds the types that describe our side of a session and the
//! negotiated result ([`LocalSession`], [`Negotiated`], [`Direction`],
//! [`SdpError`]...); the work is in the submodules, whose public items are
//! re-exported here:
//!
//! * `codecs`: [`AudioCodec`], [`VideoCodec`], our payload types, the
//!   `a=rtpmap` / `a=fmtp` details (H.264 packetization mode and profile),
//!   RTCP feedback and `telephone-event`;
//! * `crypto`: SDES — [`SrtpMode`], [`CryptoSuite`], [`Srtp`],
//!   [`LocalKeys`], `a=crypto` lines written and read;
//! * `text`: raw SDP text normalised for the `sdp` crate, attribute look-ups;
//! * `read`: answering an offer and reading an answer;
//! * `write`: our offer and the `m=` sections we write.

mod codecs;
mod crypto;
mod read;
mod text;
mod write;

use std::net::{IpAddr, SocketAddr};

pub use codecs::{
    h264_single_nal, AudioCodec, VideoCodec, H264_MODE0_OFFER_FMTP, H264_OFFER_FMTP, PT_H264,
    PT_H264_MODE0, PT_OPUS, PT_SPEEX16, PT_SPEEX8, PT_TELEPHONE_EVENT, PT_TELEPHONE_EVENT_48K,
    PT_VP8, PT_VP9, TELEPHONE_EVENT_EVENTS, VIDEO_CLOCK_RATE,
};
pub use crypto::{CryptoSuite, LocalKeys, Srtp, SrtpMode};
pub use read::{answer_session, read_session_answer};
pub use write::build_session_offer;

use codecs::TELEPHONE_EVENT;
use crypto::Sdes;

/// User name written in the `o=` line of every SDP we produce.
pub const SDP_USERNAME: &str = "ewindow";
/// Session name written in the `s=` line of every SDP we produce.
pub const SDP_SESSION_NAME: &str = "ewindow";

/// Largest SDP body accepted; anything longer is refused before parsing.
pub const MAX_SDP_LEN: usize = 64 * 1024;

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
    /// `RTP/AVP` or `RTP/SAVP`. A secure profile (`SAVP` in it) always
    /// comes with `srtp` set: the session functions refuse it otherwise.
    pub profile: String,
    /// Raw values of the remote `a=crypto` lines of the stream (RFC 4568),
    /// e.g. `1 AES_CM_128_HMAC_SHA1_80 inline:...`, in their order.
    pub crypto: Vec<String>,
    /// The SRTP keys agreed for this stream; `None` means plain RTP.
    pub srtp: Option<Srtp>,
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
    /// The peer requires SRTP (`RTP/SAVP`) and ours is off (`--srtp off`). SIP 488.
    #[error("the peer requires SRTP (RTP/SAVP) and this phone has it off (--srtp off)")]
    SrtpOff,
    /// The peer's media address is of the other family (IPv6 where our media sockets are
    /// IPv4, or the reverse): we cannot send to it. SIP 488.
    #[error("media address {remote} is {}, this phone's media is {} only", family(*.remote), family(*.local))]
    AddressFamily {
        /// The peer's `c=` address.
        remote: IpAddr,
        /// Our media address.
        local: IpAddr,
    },
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
            | SdpError::SrtpOff
            | SdpError::AddressFamily { .. }
            | SdpError::BadCrypto(_) => 488,
            SdpError::Parse(_) | SdpError::Invalid(_) => 400,
            SdpError::UnknownCodec(_) => 500,
        }
    }

    /// The RFC 3261 `Warning` code (section 20.43) that says why an offer is refused: 301
    /// incompatible address format, 302 incompatible transport protocol (`RTP/SAVP` against
    /// `RTP/AVP`, SRTP keys), 304 no usable media type, 305 no common format, 399 otherwise.
    pub fn warning_code(&self) -> u16 {
        match self {
            SdpError::AddressFamily { .. } => 301,
            SdpError::SrtpRequired | SdpError::SrtpOff | SdpError::BadCrypto(_) => 302,
            SdpError::NoAudio => 304,
            SdpError::NoCommonCodec => 305,
            SdpError::Parse(_) | SdpError::Invalid(_) | SdpError::UnknownCodec(_) => 399,
        }
    }

    /// Whether SRTP is what could not be agreed.
    pub fn is_srtp(&self) -> bool {
        matches!(
            self,
            SdpError::SrtpRequired | SdpError::SrtpOff | SdpError::BadCrypto(_)
        )
    }
}

/// `IPv4` or `IPv6`, for messages.
fn family(ip: IpAddr) -> &'static str {
    if ip.is_ipv4() {
        "IPv4"
    } else {
        "IPv6"
    }
}

/// Refuses a peer media address we cannot send to from a socket bound to `local`.
/// The unspecified address (a stream on hold) is accepted: nothing is sent to it.
pub(crate) fn same_family(local: IpAddr, remote: IpAddr) -> Result<(), SdpError> {
    if remote.is_unspecified() || remote.is_ipv4() == local.is_ipv4() {
        Ok(())
    } else {
        Err(SdpError::AddressFamily { remote, local })
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
    /// Duplicates are ignored.
    pub suites: Vec<CryptoSuite>,
    /// Our key material, one per stream.
    pub keys: LocalKeys,
}

impl LocalSession {
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

#[cfg(test)]
mod tests;
