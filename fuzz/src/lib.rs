//! What the fuzz targets share (the targets are `src/bin/`). Our side of a call as the SDP
//! targets use it: every audio codec, every video codec, SRTP by the first input byte,
//! fixed (fuzz-only) key material.

use std::net::{IpAddr, Ipv4Addr};

use ewindow_phone::sdp::{
    AudioCodec, CryptoSuite, Direction, LocalAudio, LocalKeys, LocalSession, LocalVideo, SrtpMode,
    VideoCodec,
};

/// The session, and the rest of the input as text.
pub fn session(data: &[u8]) -> Option<(LocalSession, &str)> {
    let (&mode, rest) = data.split_first()?;
    let text = std::str::from_utf8(rest).ok()?;
    let srtp = match mode % 3 {
        0 => SrtpMode::Required,
        1 => SrtpMode::Optional,
        _ => SrtpMode::Off,
    };
    let codecs = vec![
        AudioCodec::Opus,
        AudioCodec::Pcmu,
        AudioCodec::Pcma,
        AudioCodec::Speex16,
        AudioCodec::Speex8,
    ];
    let mut audio = LocalAudio::new(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)), 40000, codecs);
    audio.rtcp_mux = mode & 0x10 != 0;
    audio.telephone_event = mode & 0x20 != 0;
    let video = LocalVideo {
        port: 40002,
        codecs: VideoCodec::ALL.to_vec(),
        direction: Direction::SendRecv,
        bandwidth_kbps: Some(800),
        rtcp_mux: mode & 0x40 != 0,
    };
    let session = LocalSession {
        audio,
        video: Some(video),
        srtp,
        suites: CryptoSuite::ALL.to_vec(),
        keys: LocalKeys {
            audio: [7; 46],
            video: [9; 46],
        },
    };
    Some((session, text))
}
