//! Call statistics: what `ewindow-phone --stats-json` writes when a call ends.

use serde::{Deserialize, Serialize};

/// Why a call ended. Serialized in kebab-case (`local-bye`, `rtp-timeout`, …).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
#[serde(rename_all = "kebab-case")]
pub enum EndReason {
    /// We hung up (duration reached, user, or signal).
    LocalBye,
    /// The peer sent BYE.
    RemoteBye,
    /// The caller cancelled before the call was answered.
    Cancel,
    /// No media arrived for the configured number of seconds.
    RtpTimeout,
    /// The peer refused the call with a final error response.
    Rejected,
    /// The peer did not answer in time.
    Timeout,
    /// No codec in common (488, `Warning: 305`, or a 488 of ours for that reason).
    NoCommonCodec,
    /// SRTP could not be agreed: one side requires it and the other has it off or offers
    /// plain RTP, or no key line is usable (488, `Warning: 302`).
    SrtpMismatch,
    /// Another 488: a media address family we cannot serve (`Warning: 301`), or a peer's
    /// 488 that does not say why.
    NotAcceptable,
    /// The media pipeline failed.
    MediaError,
    /// The transport failed (connection lost, unreachable).
    TransportError,
}

impl EndReason {
    /// The kebab-case name used in JSON and in log lines.
    pub fn as_str(self) -> &'static str {
        match self {
            EndReason::LocalBye => "local-bye",
            EndReason::RemoteBye => "remote-bye",
            EndReason::Cancel => "cancel",
            EndReason::RtpTimeout => "rtp-timeout",
            EndReason::Rejected => "rejected",
            EndReason::Timeout => "timeout",
            EndReason::NoCommonCodec => "no-common-codec",
            EndReason::SrtpMismatch => "srtp-mismatch",
            EndReason::NotAcceptable => "not-acceptable",
            EndReason::MediaError => "media-error",
            EndReason::TransportError => "transport-error",
        }
    }
}

/// Which way a stream flows, seen from the phone that writes the statistics.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
#[serde(rename_all = "lowercase")]
pub enum StreamDirection {
    /// Media we encode and send.
    Send,
    /// Media we receive and decode.
    Recv,
}

/// Counters of one RTP stream.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
pub struct StreamStats {
    /// `audio` or `video`.
    pub media: String,
    /// Our codec name (`opus`, `pcmu`, `pcma`, `speex16`, `speex8`, …).
    pub codec: String,
    /// `send` or `recv`.
    pub direction: Option<StreamDirection>,
    /// RTP packets sent (send) or received (recv).
    pub packets: u64,
    /// RTP payload bytes sent or received.
    pub bytes: u64,
    /// Buffers out of the decoder (recv); buffers into the encoder (send).
    pub decoded: u64,
    /// Packets lost, as RTCP counts them.
    pub lost: i64,
    /// Interarrival jitter in milliseconds (recv: ours; send: as the peer reports it).
    pub jitter_ms: f64,
    /// Round-trip time from RTCP receiver reports, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rtt_ms: Option<f64>,
    /// Average bitrate of the stream over the call, kbit/s (payload and RTP headers).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bitrate_kbps: Option<f64>,
    /// Video: average decoded (recv) or encoded (send) frames per second.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fps: Option<f64>,
    /// Video: width of the decoded (recv) or sent (send) picture.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub width: Option<u32>,
    /// Video: height of the decoded (recv) or sent (send) picture.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub height: Option<u32>,
    /// Video: keyframe requests (RTCP PLI and FIR) we sent the peer (recv) or it sent us
    /// (send).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keyframe_requests: Option<u64>,
    /// Audio recv: milliseconds of audio the decoder concealed for lost packets.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub concealed_ms: Option<u64>,
    /// Whether the stream was SRTP.
    #[serde(default)]
    pub srtp: bool,
    /// Video recv with `--latency-marks`: median one-way latency of marked frames, ms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency_ms: Option<f64>,
    /// Recv with `--latency-marks`: median time from the sender's capture (by its RTCP
    /// sender-report clock) to our decoder output, ms. Works with any conforming sender.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ntp_latency_ms: Option<f64>,
    /// Audio with `--latency-marks`: click onsets (µs since the epoch) at the encoder input
    /// (send) or decoder output (recv); a benchmark pairs them across the two phones.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub marks_us: Vec<i64>,
}

/// The statistics of one call.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
pub struct CallStats {
    /// Milliseconds from sending (or receiving) the INVITE to the first decoded media buffer;
    /// absent if no media was ever decoded.
    pub setup_ms: Option<u64>,
    /// Milliseconds from the INVITE to the first RTP packet received (before the jitter
    /// buffer and the decoder); absent if none arrived.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_rtp_ms: Option<u64>,
    /// Why the call ended.
    pub end_reason: Option<EndReason>,
    /// SIP status of a refused call (486, 488, …), when that is how it ended.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sip_status: Option<u16>,
    /// Seconds the call was established.
    pub duration_s: f64,
    /// One entry per stream and direction.
    pub streams: Vec<StreamStats>,
}

impl CallStats {
    /// The stream of a given media and direction, if the call had one.
    pub fn stream(&self, media: &str, direction: StreamDirection) -> Option<&StreamStats> {
        self.streams
            .iter()
            .find(|s| s.media == media && s.direction == Some(direction))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn end_reason_serializes_kebab_case_and_matches_as_str() {
        for r in [
            EndReason::LocalBye,
            EndReason::RemoteBye,
            EndReason::Cancel,
            EndReason::RtpTimeout,
            EndReason::NoCommonCodec,
            EndReason::SrtpMismatch,
            EndReason::NotAcceptable,
        ] {
            let json = serde_json::to_string(&r).unwrap();
            assert_eq!(json, format!("\"{}\"", r.as_str()));
        }
    }

    #[test]
    fn call_stats_round_trip_and_lookup_by_direction() {
        let stats = CallStats {
            setup_ms: Some(42),
            first_rtp_ms: Some(2),
            end_reason: Some(EndReason::RemoteBye),
            sip_status: None,
            duration_s: 5.0,
            streams: vec![StreamStats {
                media: "audio".into(),
                codec: "opus".into(),
                direction: Some(StreamDirection::Recv),
                packets: 250,
                bytes: 20_000,
                decoded: 249,
                lost: 1,
                jitter_ms: 0.5,
                rtt_ms: None,
                ..StreamStats::default()
            }],
        };
        let text = serde_json::to_string(&stats).unwrap();
        assert!(text.contains("\"direction\":\"recv\""), "{text}");
        assert!(text.contains("\"end_reason\":\"remote-bye\""), "{text}");
        let back: CallStats = serde_json::from_str(&text).unwrap();
        assert_eq!(back, stats);
        assert_eq!(
            back.stream("audio", StreamDirection::Recv)
                .map(|s| s.decoded),
            Some(249)
        );
        assert!(back.stream("audio", StreamDirection::Send).is_none());
    }
}
