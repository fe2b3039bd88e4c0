use super::*;

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
    assert_eq!(off, Err(SdpError::SrtpOff));
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

/// linphone's default offer from a dual-stack host: `c=IN IP6 fd00::2` to a phone whose media
/// sockets are IPv4. Refused with 488 (Warning 301) before anything is answered, not taken
/// and then failed in GStreamer.
#[test]
fn an_offer_of_the_other_address_family_is_refused_with_488_naming_both() {
    let offer =
        crlf("v=0\no=- 1 1 IN IP6 fd00::2\ns=-\nc=IN IP6 fd00::2\nt=0 0\nm=audio 7078 RTP/AVP 0\n");
    let err = answer_session(&offer, &session(SrtpMode::Optional, &[]), 1, 1).unwrap_err();
    assert_eq!(
        err,
        SdpError::AddressFamily {
            remote: "fd00::2".parse().unwrap(),
            local: session(SrtpMode::Optional, &[]).audio.addr,
        }
    );
    assert_eq!((err.sip_status(), err.warning_code()), (488, 301));
    let text = err.to_string();
    assert!(
        text.contains("fd00::2 is IPv6") && text.contains("IPv4 only"),
        "{text}"
    );
    // The same offer at the session level but an IPv4 address on the m= line is served.
    let offer = crlf(
        "v=0\no=- 1 1 IN IP6 fd00::2\ns=-\nc=IN IP6 fd00::2\nt=0 0\nm=audio 7078 RTP/AVP 0\nc=IN IP4 192.0.2.7\n",
    );
    let (_, n) = answer_session(&offer, &session(SrtpMode::Optional, &[]), 1, 1).unwrap();
    assert_eq!(n.audio.remote_rtp, "192.0.2.7:7078".parse().unwrap());
    // An answer of the other family is refused too; a stream on hold (`::`) is not.
    let answer =
        crlf("v=0\no=- 1 1 IN IP6 ::1\ns=-\nc=IN IP6 fd00::2\nt=0 0\nm=audio 7078 RTP/AVP 0\n");
    assert!(matches!(
        read_session_answer(&answer, &session(SrtpMode::Optional, &[])),
        Err(SdpError::AddressFamily { .. })
    ));
    let hold = answer.replace("c=IN IP6 fd00::2", "c=IN IP6 ::");
    assert!(read_session_answer(&hold, &session(SrtpMode::Optional, &[])).is_ok());
}

/// Each refusal names its reason: SRTP ones say which side lacks it.
#[test]
fn srtp_refusals_say_which_side_lacks_it() {
    assert!(SdpError::SrtpOff.to_string().contains("--srtp off"));
    assert!(SdpError::SrtpRequired.to_string().contains("SRTP required"));
    for e in [
        SdpError::SrtpOff,
        SdpError::SrtpRequired,
        SdpError::BadCrypto("x".into()),
    ] {
        assert!(e.is_srtp());
        assert_eq!((e.sip_status(), e.warning_code()), (488, 302));
    }
    assert!(!SdpError::NoCommonCodec.is_srtp());
    assert_eq!(SdpError::NoCommonCodec.warning_code(), 305);
}
