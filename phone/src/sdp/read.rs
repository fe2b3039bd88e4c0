//! Reading remote SDP: answering an offer ([`answer_session`]) and reading
//! the answer to our offer ([`read_session_answer`]) — which streams are
//! taken, where RTP and RTCP go, direction, `ptime` and bandwidth.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::str::FromStr;

use ::sdp::description::common::{Attribute, Bandwidth, ConnectionInformation};
use ::sdp::description::media::MediaDescription;
use ::sdp::SessionDescription;

use super::codecs::{
    h264_answer_fmtp, packetization_mode, pick_telephone_event, remote_feedback, remote_formats,
    RemoteFormat, TELEPHONE_EVENT, TELEPHONE_EVENT_EVENTS,
};
use super::crypto::{answer_crypto, read_crypto, Sdes};
use super::text::{attr_value, attr_values, clip, has_attr, parse, profile_of};
use super::write::{
    base_session, media_section, rejected_media, rtpmap_value, FormatLine, Section,
};
use super::{
    same_family, AudioFormat, Direction, LocalSession, LocalVideo, Negotiated, NegotiatedAudio,
    NegotiatedVideo, SdpError, Srtp, VideoCodec,
};

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
    let mut srtp_refused: Option<SdpError> = None;
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
        let srtp = match answer_crypto(media, &sdes, false) {
            Ok(srtp) => srtp,
            Err(e) => {
                srtp_refused.get_or_insert(e);
                continue;
            }
        };
        chosen = Some((index, format, formats, srtp));
        break;
    }
    let (index, format, formats, srtp) = match chosen {
        Some(c) => c,
        None if srtp_refused.is_some() => {
            return Err(srtp_refused.unwrap_or(SdpError::SrtpRequired))
        }
        None if saw_audio => return Err(SdpError::NoCommonCodec),
        None => return Err(SdpError::NoAudio),
    };
    let media = &offer.media_descriptions[index];

    let rtcp_mux = local.rtcp_mux && has_attr(&media.attributes, "rtcp-mux");
    let transport = remote_transport(&offer, media, rtcp_mux)?;
    same_family(local.addr, transport.rtp.ip())?;
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
            .find_map(|(i, m)| {
                answer_video(&offer, m, video, &sdes, local.addr).map(|(s, n)| (i, s, n))
            })
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
    addr: IpAddr,
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
    same_family(addr, transport.rtp.ip()).ok()?;
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
/// [`build_session_offer`](super::build_session_offer) from the same `local`.
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
    if !rejected {
        same_family(local.addr, transport.rtp.ip())?;
    }
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
        read_video(&answer, m, v, &sdes, local.addr)
    });
    Ok(Negotiated { audio, video })
}

/// Reads the answer's video stream; `None` when it is rejected or unusable.
fn read_video(
    answer: &SessionDescription,
    media: &MediaDescription,
    local: &LocalVideo,
    sdes: &Sdes,
    addr: IpAddr,
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
    same_family(addr, transport.rtp.ip()).ok()?;
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
