//! The SDP module's tests: the shared peers' SDPs and helpers here; the tests by what
//! they cover in [`audio`] (the first version's audio offer/answer), [`sessions`] (video and
//! SDES-SRTP sessions), [`keying`] (choosing an `a=crypto` line) and [`answers`] (reading
//! session answers, round trips, robustness).

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
const BARESIP_OFFER: &str = include_str!("../../../tests/fixtures/sdp/baresip-offer.sdp");

const CRYPTO: &str =
    "1 AES_CM_128_HMAC_SHA1_80 inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz|2^20|1:1";

/// linphone, audio only: Opus, Speex, telephone-event at three clock rates.
const LINPHONE_OFFER: &str = include_str!("../../../tests/fixtures/sdp/linphone-offer.sdp");

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

mod answers;
mod audio;
mod keying;
mod sessions;

// =======================================================================
// Sessions: video and SDES-SRTP
// =======================================================================

/// baresip 1.0 with video, `mediaenc=srtp-mand` (keys are real base64:
/// 30, 30, 46 and 30 bytes).
const BARESIP_VIDEO_SAVP: &str =
    include_str!("../../../tests/fixtures/sdp/baresip-video-srtp-mand.sdp");
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
