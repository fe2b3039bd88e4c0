//! SRTP with SDES keys (RFC 4568): one `srtpenc` and one `srtpdec` per RTP session, placed
//! between `rtpbin` and the UDP elements. (rtpbin's `request-rtcp-encoder` signal looks for
//! the encoder's src pad before requesting its sink pad, which `srtpenc` only creates on
//! request, so the elements are linked by hand.)

use anyhow::{bail, Result};
use gstreamer as gst;
use gstreamer::prelude::*;

/// SRTP keys and algorithms of one RTP session.
#[derive(Clone, PartialEq, Eq)]
pub struct SrtpParams {
    /// `srtpenc`/`srtpdec` cipher name (`aes-128-icm`, `aes-256-icm`).
    pub cipher: &'static str,
    /// SRTP authentication (`hmac-sha1-80`, `hmac-sha1-32`). SRTCP always uses 80 bits
    /// (RFC 4568 §6.2).
    pub auth: &'static str,
    /// Our master key || salt: what we encrypt with.
    pub local_key: Vec<u8>,
    /// The peer's master key || salt: what we decrypt with.
    pub remote_key: Vec<u8>,
}

impl std::fmt::Debug for SrtpParams {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print keys.
        f.debug_struct("SrtpParams")
            .field("cipher", &self.cipher)
            .field("auth", &self.auth)
            .finish_non_exhaustive()
    }
}

impl SrtpParams {
    /// From an SDES crypto-suite name (`AES_CM_128_HMAC_SHA1_80` …) and the two keys.
    pub fn from_sdes(suite: &str, local_key: Vec<u8>, remote_key: Vec<u8>) -> Result<Self> {
        let (cipher, auth, len) = match suite {
            "AES_CM_128_HMAC_SHA1_80" => ("aes-128-icm", "hmac-sha1-80", 30),
            "AES_CM_128_HMAC_SHA1_32" => ("aes-128-icm", "hmac-sha1-32", 30),
            "AES_256_CM_HMAC_SHA1_80" => ("aes-256-icm", "hmac-sha1-80", 46),
            "AES_256_CM_HMAC_SHA1_32" => ("aes-256-icm", "hmac-sha1-32", 46),
            other => bail!("unsupported SRTP suite {other}"),
        };
        if local_key.len() != len || remote_key.len() != len {
            bail!("{suite} needs {len}-byte keys");
        }
        Ok(SrtpParams {
            cipher,
            auth,
            local_key,
            remote_key,
        })
    }

    fn key_fields(&self, caps: &mut gst::Caps) {
        let key = gst::Buffer::from_slice(self.remote_key.clone());
        if let Some(s) = caps.make_mut().structure_mut(0) {
            s.set("srtp-key", key);
            s.set("srtp-cipher", self.cipher);
            s.set("srtp-auth", self.auth);
            s.set("srtcp-cipher", self.cipher);
            s.set("srtcp-auth", "hmac-sha1-80");
        }
    }

    /// The caps of incoming SRTP: the RTP caps renamed, with the peer's key.
    pub fn srtp_caps(&self, rtp_caps: &gst::Caps) -> gst::Caps {
        let mut caps = rtp_caps.clone();
        if let Some(s) = caps.make_mut().structure_mut(0) {
            s.set_name("application/x-srtp");
        }
        self.key_fields(&mut caps);
        caps
    }

    /// The caps of incoming SRTCP, with the peer's key.
    pub fn srtcp_caps(&self) -> gst::Caps {
        let mut caps = gst::Caps::builder("application/x-srtcp").build();
        self.key_fields(&mut caps);
        caps
    }

    /// An `srtpenc` with our key, for one session's RTP and RTCP.
    pub fn encoder(&self) -> Result<gst::Element> {
        let enc = gst::ElementFactory::make("srtpenc")
            .property("key", gst::Buffer::from_slice(self.local_key.clone()))
            .build()?;
        enc.set_property_from_str("rtp-cipher", self.cipher);
        enc.set_property_from_str("rtp-auth", self.auth);
        enc.set_property_from_str("rtcp-cipher", self.cipher);
        enc.set_property_from_str("rtcp-auth", "hmac-sha1-80");
        Ok(enc)
    }

    /// An `srtpdec` with the peer's key, for one session's RTP and RTCP.
    pub fn decoder(&self) -> Result<gst::Element> {
        let dec = gst::ElementFactory::make("srtpdec").build()?;
        let caps = self.srtcp_caps();
        // A new SSRC asks for its key; every SSRC of the session uses the peer's key.
        dec.connect("request-key", false, move |_| Some(caps.to_value()));
        Ok(dec)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sdes_suites_map_to_srtp_algorithms_and_key_lengths() {
        let p = SrtpParams::from_sdes("AES_CM_128_HMAC_SHA1_32", vec![1; 30], vec![2; 30]).unwrap();
        assert_eq!((p.cipher, p.auth), ("aes-128-icm", "hmac-sha1-32"));
        let p = SrtpParams::from_sdes("AES_256_CM_HMAC_SHA1_80", vec![1; 46], vec![2; 46]).unwrap();
        assert_eq!((p.cipher, p.auth), ("aes-256-icm", "hmac-sha1-80"));
        assert!(
            SrtpParams::from_sdes("AES_CM_128_HMAC_SHA1_80", vec![1; 29], vec![2; 30]).is_err()
        );
        assert!(SrtpParams::from_sdes("F8_128_HMAC_SHA1_80", vec![1; 30], vec![2; 30]).is_err());
    }

    #[test]
    fn debug_output_never_shows_keys() {
        let p = SrtpParams::from_sdes("AES_CM_128_HMAC_SHA1_80", vec![0xAB; 30], vec![0xCD; 30])
            .unwrap();
        let text = format!("{p:?}");
        assert!(
            !text.contains("171") && !text.contains("AB") && !text.contains("ab"),
            "{text}"
        );
    }
}
