use std::net::{IpAddr, SocketAddr};

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;

use super::crypto::{is_secure_profile, parse_crypto};
use super::text::parse;
use super::*;

// The audio-only API of the first version, kept as thin test wrappers
// over the session functions so its tests still run unchanged: offers
// are plain (`Off`), answers and offers are handled in `Optional` mode
// (plain stays plain; an `RTP/SAVP` offer with a usable key is keyed).

// The first version's constructors, which only tests use (the phone builds
// these values field by field, in `call.rs`).

/// The suites of [`local_session`]: AES-128 with 80-bit, then 32-bit tags
/// (what every SDES peer supports).
const DEFAULT_SUITES: [CryptoSuite; 2] = [
    CryptoSuite::AesCm128HmacSha1_80,
    CryptoSuite::AesCm128HmacSha1_32,
];

/// Length of the SRTP authentication tag of a suite in bits (80 or 32).
fn auth_tag_bits(suite: CryptoSuite) -> u32 {
    match suite {
        CryptoSuite::AesCm128HmacSha1_80 | CryptoSuite::Aes256CmHmacSha1_80 => 80,
        CryptoSuite::AesCm128HmacSha1_32 | CryptoSuite::Aes256CmHmacSha1_32 => 32,
    }
}

/// An audio-only session without SRTP ([`SrtpMode::Off`]), [`DEFAULT_SUITES`],
/// and the given key material (used once SRTP is turned on).
fn local_session(audio: LocalAudio, keys: LocalKeys) -> LocalSession {
    LocalSession {
        audio,
        video: None,
        srtp: SrtpMode::Off,
        suites: DEFAULT_SUITES.to_vec(),
        keys,
    }
}

/// A `LocalVideo` with the usual defaults: `sendrecv`, no bandwidth, no
/// rtcp-mux.
fn local_video(port: u16, codecs: Vec<VideoCodec>) -> LocalVideo {
    LocalVideo {
        port,
        codecs,
        direction: Direction::SendRecv,
        bandwidth_kbps: None,
        rtcp_mux: false,
    }
}

/// An audio-only session around `local`.
fn audio_session(local: &LocalAudio, mode: SrtpMode) -> LocalSession {
    let mut s = local_session(local.clone(), keys(1));
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
    read_session_answer(remote_answer, &audio_session(local, SrtpMode::Optional)).map(|n| n.audio)
}

/// baresip with audio and video, plain RTP.
const BARESIP_OFFER: &str = include_str!("../../tests/fixtures/sdp/baresip-offer.sdp");

const CRYPTO: &str =
    "1 AES_CM_128_HMAC_SHA1_80 inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz|2^20|1:1";

/// linphone, audio only: Opus, Speex, telephone-event at three clock rates.
const LINPHONE_OFFER: &str = include_str!("../../tests/fixtures/sdp/linphone-offer.sdp");

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
    assert!(!is_secure_profile(&n.profile));
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
    assert!(is_secure_profile(&n.profile));
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
    let held = crlf(
        "v=0\no=- 1 1 IN IP4 198.51.100.1\ns=-\nc=IN IP4 0.0.0.0\nt=0 0\nm=audio 5000 RTP/AVP 0\n",
    );
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
const BARESIP_VIDEO_SAVP: &str =
    include_str!("../../tests/fixtures/sdp/baresip-video-srtp-mand.sdp");
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
    let mut s = local_session(all_codecs(), keys(1));
    s.srtp = mode;
    if !video.is_empty() {
        s.video = Some(local_video(40002, video.to_vec()));
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
        assert_eq!(auth_tag_bits(suite), bits);
        assert_eq!(CryptoSuite::from_name(name), Some(suite));
    }
    assert_eq!(CryptoSuite::from_name("F8_128_HMAC_SHA1_80"), None);
    assert_eq!(DEFAULT_SUITES, [AesCm128HmacSha1_80, AesCm128HmacSha1_32]);
    assert_eq!(
        local_session(all_codecs(), keys(0)).suites,
        DEFAULT_SUITES.to_vec()
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
    s.video = Some(local_video(40002, vec![]));
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
        let (answer, n) = answer_session(&offer, &session(mode, &VideoCodec::ALL), 1, 1).unwrap();
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
    assert!(is_secure_profile(&n.profile));
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
        let (answer, n) = answer_session(&offer, &session(mode, &[VideoCodec::Vp8]), 1, 1).unwrap();
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
        DEFAULT_SUITES.to_vec(),
        vec![CryptoSuite::Aes256CmHmacSha1_80],
    ] {
        let mut caller = session(SrtpMode::Required, &VideoCodec::ALL);
        caller.suites = suites.clone();
        let mut callee = local_session(
            LocalAudio::new(ip("198.51.100.20"), 30000, vec![AudioCodec::Pcma]),
            keys(0x40),
        );
        callee.srtp = SrtpMode::Optional;
        callee.suites = CryptoSuite::ALL.to_vec();
        callee.video = Some(local_video(30002, vec![VideoCodec::H264]));

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
    let n = read_session_answer(&answer, &session(SrtpMode::Required, &[VideoCodec::Vp8])).unwrap();
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
