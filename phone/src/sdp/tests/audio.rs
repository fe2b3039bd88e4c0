use super::*;

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
        "v=0\no=- 1 1 IN IP4 198.51.100.1\ns=-\nt=0 0\nm=audio 4000 RTP/AVP 0\nc=IN IP4 203.0.113.9\n",
    );
    let n = answer_offer(&offer, &all_codecs(), 1, 1).unwrap().1;
    assert_eq!(n.remote_rtp, sock("203.0.113.9:4000"));
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
