//! Writing SDP: our session offer ([`build_session_offer`]), the session
//! part of everything we send, and the `m=` sections of offers and answers
//! (accepted or rejected with port 0).

use std::net::IpAddr;

use ::sdp::description::common::{Address, Attribute, Bandwidth, ConnectionInformation};
use ::sdp::description::media::{MediaDescription, MediaName, RangedPort};
use ::sdp::description::session::{Origin, TimeDescription, Timing};
use ::sdp::SessionDescription;

use super::codecs::{
    H264_MODE0_OFFER_FMTP, PT_H264_MODE0, TELEPHONE_EVENT, TELEPHONE_EVENT_EVENTS, VIDEO_FEEDBACK,
};
use super::{Direction, LocalAudio, LocalSession, VideoCodec, SDP_SESSION_NAME, SDP_USERNAME};

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
/// [`H264_OFFER_FMTP`](super::H264_OFFER_FMTP)), `a=rtcp-fb:PT nack`,
/// `nack pli` and `ccm fir` for every payload type, `a=rtcp:PORT+1` (plus
/// `a=rtcp-mux` if wanted), `b=AS`/`b=TIAS` when a bandwidth is set and a
/// direction attribute.
///
/// SRTP ([`LocalSession::srtp`]): `Required` writes profile `RTP/SAVP`,
/// `Optional` and `Off` write `RTP/AVP`; `Required` and `Optional` add one
/// `a=crypto:TAG SUITE inline:KEY` per suite of [`LocalSession::suites`]
/// (tags 1, 2... in that order) at the end of every m-line, the key being
/// the first [`CryptoSuite::key_len`](super::CryptoSuite::key_len) bytes of
/// that stream's [`LocalKeys`](super::LocalKeys) in padded standard base64.
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

/// A payload format line group to write: the format number, its
/// `a=rtpmap` value, optional `a=fmtp` value and `a=rtcp-fb` values (all
/// without the number).
pub(super) struct FormatLine {
    pub(super) pt: u8,
    pub(super) rtpmap: String,
    pub(super) fmtp: Option<String>,
    pub(super) feedback: Vec<&'static str>,
}

/// `PT encoding/rate[/channels]`, channels only when more than one.
pub(super) fn rtpmap_value(pt: u8, encoding: &str, rate: u32, channels: u32) -> String {
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
pub(super) fn base_session(
    local: &LocalAudio,
    session_id: u64,
    session_version: u64,
) -> SessionDescription {
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
pub(super) struct Section<'a> {
    /// `audio` or `video`.
    pub(super) media: &'static str,
    pub(super) port: u16,
    pub(super) profile: &'a str,
    pub(super) formats: &'a [FormatLine],
    /// Written as `b=AS:` (kbit/s), and as `b=TIAS:` (bit/s) if `tias`.
    pub(super) bandwidth_kbps: Option<u32>,
    pub(super) tias: bool,
    /// `a=ptime`; 0 leaves it out.
    pub(super) ptime_ms: u32,
    pub(super) direction: Direction,
    /// Whether to write `a=rtcp-mux`.
    pub(super) offer_rtcp_mux: bool,
    /// Whether RTCP is on the RTP port (`a=rtcp:PORT`, else `PORT+1`).
    pub(super) muxed: bool,
    /// `a=crypto` values.
    pub(super) crypto: Vec<String>,
}

/// Our `m=audio` or `m=video` section: per format `a=rtpmap`, `a=fmtp`,
/// `a=rtcp-fb`; then `a=rtcp`, `a=rtcp-mux`, `a=ptime`, the direction and
/// `a=crypto`.
pub(super) fn media_section(s: &Section) -> MediaDescription {
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
pub(super) fn rejected_media(offered: &MediaDescription) -> MediaDescription {
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
