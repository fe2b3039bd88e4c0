use super::*;

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
