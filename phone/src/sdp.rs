//! SDP offer/answer (RFC 3264) for the phone's audio stream.
//!
//! Pure logic: no sockets, no clock, no randomness. The caller supplies the
//! local media description ([`LocalAudio`]), session ids and the remote SDP
//! text; this module returns SDP text to send and a [`NegotiatedAudio`] that
//! tells the media pipeline where to send RTP/RTCP, with which payload type,
//! and in which direction.
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
//! `telephone-event` for DTMF when both sides want it). Every other `m=` line
//! of an offer — video, application, T.38, extra audio streams — is answered
//! with port 0 in the same position, and never makes the call fail.
//!
//! SRTP is not done here yet, but the transport profile (`RTP/SAVP`...) and
//! the raw `a=crypto` values of the negotiated stream are exposed in
//! [`NegotiatedAudio`] so that it can be added without restructuring.

use std::fmt;
use std::io::Cursor;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::str::FromStr;

use ::sdp::description::common::{Address, Attribute, Bandwidth, ConnectionInformation};
use ::sdp::description::media::{MediaDescription, MediaName, RangedPort};
use ::sdp::description::session::{Origin, TimeDescription, Timing};
use ::sdp::SessionDescription;

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

    /// Checks what [`build_offer`] assumes and [`answer_offer`] /
    /// [`read_answer`] enforce: at least one codec, a non-zero port.
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

/// Result of a successful negotiation: what the media pipeline needs.
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
    /// Transport profile of the stream as written, e.g. `RTP/AVP` or
    /// `RTP/SAVP`. The caller must refuse (488) a secure profile as long as
    /// it cannot do SRTP; see [`NegotiatedAudio::is_secure`].
    pub profile: String,
    /// Raw values of the remote `a=crypto` lines of the stream (RFC 4568),
    /// e.g. `1 AES_CM_128_HMAC_SHA1_80 inline:...`, in their order.
    pub crypto: Vec<String>,
}

impl NegotiatedAudio {
    /// Whether the profile asks for SRTP (`RTP/SAVP`, `RTP/SAVPF`,
    /// `UDP/TLS/RTP/SAVP(F)`).
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
}

impl SdpError {
    /// SIP status code a UAS should answer an INVITE with for this error:
    /// 488 (Not Acceptable Here) for media it cannot use, 400 for broken SDP,
    /// 500 for a local configuration problem.
    pub fn sip_status(&self) -> u16 {
        match self {
            SdpError::NoAudio | SdpError::NoCommonCodec => 488,
            SdpError::Parse(_) | SdpError::Invalid(_) => 400,
            SdpError::UnknownCodec(_) => 500,
        }
    }
}

/// Builds our SDP offer: one `m=audio` line with all our codecs in
/// preference order (Opus 111, Speex 97/98, PCMU 0, PCMA 8, each with
/// `a=rtpmap`), `telephone-event` 101 at 8000 Hz (and 102 at 48000 Hz when
/// Opus is offered) if enabled, `a=rtcp:PORT+1`, `a=ptime`, `b=AS` when set
/// and an explicit direction attribute. Lines end with CRLF.
///
/// `local` should pass [`LocalAudio::validate`]; with no codec the `m=`
/// line would have no format.
pub fn build_offer(local: &LocalAudio, session_id: u64, session_version: u64) -> String {
    let formats: Vec<FormatLine> = local
        .offer_table()
        .into_iter()
        .map(|(pt, encoding, rate, channels)| FormatLine {
            pt,
            rtpmap: rtpmap_value(pt, encoding, rate, channels),
            fmtp: (encoding == TELEPHONE_EVENT).then(|| TELEPHONE_EVENT_EVENTS.to_string()),
        })
        .collect();
    let mut desc = base_session(local, session_id, session_version);
    desc.media_descriptions.push(audio_media(
        local,
        local.port,
        "RTP/AVP",
        &formats,
        local.direction,
        local.rtcp_mux,
        false,
    ));
    desc.marshal()
}

/// Answers a remote offer (RFC 3264).
///
/// Picks the first codec in OUR preference order that the offer has
/// (encoding name case-insensitively + clock rate + channels; static payload
/// types 0 and 8 are understood without `a=rtpmap`) and answers with the
/// offerer's payload type numbers: one codec, plus `telephone-event` if
/// offered and enabled. Our direction is ours intersected with the offer's,
/// reversed; an offer with `c=0.0.0.0` (RFC 2543 hold) means we do not send.
/// The answer has as many `m=` lines as the offer, in the same order: the
/// first audio stream with a common codec is accepted, every other one
/// (video, application, extra audio...) gets port 0. `rtcp-mux` is used if
/// both sides ask for it.
///
/// Errors: [`SdpError::Parse`] / [`SdpError::Invalid`] for broken input,
/// [`SdpError::NoAudio`] when there is no usable audio stream,
/// [`SdpError::NoCommonCodec`] (SIP 488) when no codec matches.
pub fn answer_offer(
    remote_offer: &str,
    local: &LocalAudio,
    session_id: u64,
    session_version: u64,
) -> Result<(String, NegotiatedAudio), SdpError> {
    local.validate()?;
    let offer = parse(remote_offer)?;

    let mut saw_audio = false;
    let mut chosen: Option<(usize, AudioFormat, Vec<RemoteFormat>)> = None;
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
        if let Some(format) = found {
            chosen = Some((index, format, formats));
            break;
        }
    }
    let (index, format, formats) = match chosen {
        Some(c) => c,
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
    }];
    if let Some(te) = te {
        answer_formats.push(FormatLine {
            pt: te.pt,
            rtpmap: rtpmap_value(te.pt, TELEPHONE_EVENT, te.clock_rate, 1),
            fmtp: Some(TELEPHONE_EVENT_EVENTS.to_string()),
        });
    }

    let mut desc = base_session(local, session_id, session_version);
    for (i, m) in offer.media_descriptions.iter().enumerate() {
        if i == index {
            desc.media_descriptions.push(audio_media(
                local,
                local.port,
                &profile,
                &answer_formats,
                direction,
                rtcp_mux,
                rtcp_mux,
            ));
        } else {
            desc.media_descriptions.push(rejected_media(m));
        }
    }

    let negotiated = NegotiatedAudio {
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
    };
    Ok((desc.marshal(), negotiated))
}

/// Reads the remote answer to the offer we built from `our_offer_local`.
///
/// Uses the first `m=audio` line. The codec is the first format in the
/// answer's order that we offered (a dynamic payload type the answer lists
/// without `a=rtpmap` is understood through our offer's numbering). A
/// rejected stream (port 0) is not an error: the result has direction
/// `Inactive`. `c=0.0.0.0` means we do not send; `a=inactive` gives
/// `Inactive`.
///
/// Errors: [`SdpError::Parse`] / [`SdpError::Invalid`] for broken input,
/// [`SdpError::NoAudio`] without an `m=audio` line,
/// [`SdpError::NoCommonCodec`] when the answer names no codec we offered.
pub fn read_answer(
    remote_answer: &str,
    our_offer_local: &LocalAudio,
) -> Result<NegotiatedAudio, SdpError> {
    let local = our_offer_local;
    local.validate()?;
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

    Ok(NegotiatedAudio {
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
    })
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
/// `a=rtpmap` value and optional `a=fmtp` value (without the number).
struct FormatLine {
    pt: u8,
    rtpmap: String,
    fmtp: Option<String>,
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

/// Our `m=audio` section.
fn audio_media(
    local: &LocalAudio,
    port: u16,
    profile: &str,
    formats: &[FormatLine],
    direction: Direction,
    offer_rtcp_mux: bool,
    muxed: bool,
) -> MediaDescription {
    let attr = |key: &str, value: Option<String>| Attribute::new(key.to_string(), value);
    let mut attributes = Vec::new();
    for f in formats {
        attributes.push(attr("rtpmap", Some(f.rtpmap.clone())));
        if let Some(fmtp) = &f.fmtp {
            attributes.push(attr("fmtp", Some(format!("{} {fmtp}", f.pt))));
        }
    }
    let rtcp_port = if muxed {
        Some(port)
    } else {
        port.checked_add(1)
    };
    if let Some(rtcp_port) = rtcp_port {
        attributes.push(attr("rtcp", Some(rtcp_port.to_string())));
    }
    if offer_rtcp_mux {
        attributes.push(attr("rtcp-mux", None));
    }
    if local.ptime_ms > 0 {
        attributes.push(attr("ptime", Some(local.ptime_ms.to_string())));
    }
    attributes.push(attr(direction.attribute(), None));
    MediaDescription {
        media_name: MediaName {
            media: "audio".to_string(),
            port: RangedPort {
                value: port as isize,
                range: None,
            },
            protos: vec![profile.to_string()],
            formats: formats.iter().map(|f| f.pt.to_string()).collect(),
        },
        bandwidth: local
            .bandwidth_kbps
            .map(|kbps| Bandwidth {
                experimental: false,
                bandwidth_type: "AS".to_string(),
                bandwidth: u64::from(kbps),
            })
            .into_iter()
            .collect(),
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
}

// TEMPORARY (replaced by the session SDP work): the video codecs media.rs builds for.
/// A video codec.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum VideoCodec {
    /// VP8.
    Vp8,
    /// VP9.
    Vp9,
    /// H.264.
    H264,
}

impl VideoCodec {
    /// Lowercase name for stats and the CLI.
    pub fn name(self) -> &'static str {
        match self {
            VideoCodec::Vp8 => "vp8",
            VideoCodec::Vp9 => "vp9",
            VideoCodec::H264 => "h264",
        }
    }
    /// RTP encoding name.
    pub fn encoding_name(self) -> &'static str {
        match self {
            VideoCodec::Vp8 => "VP8",
            VideoCodec::Vp9 => "VP9",
            VideoCodec::H264 => "H264",
        }
    }
}
