use super::*;

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
            Err(if mode == SrtpMode::Off {
                SdpError::SrtpOff
            } else {
                SdpError::SrtpRequired
            }),
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
            Err(if mode == SrtpMode::Off {
                SdpError::SrtpOff
            } else {
                SdpError::SrtpRequired
            }),
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
