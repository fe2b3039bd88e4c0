//! `ewindow-overlay`'s two sockets, one JSON object per line.
//!
//! - The control socket (`/run/ewindow/overlay.sock`), for `ewindowctl` and the console:
//!   [`Request`] → [`Reply`].
//! - The enrollment port (TCP [`ENROLL_PORT`] on the window's overlay address, so reachable
//!   only through WireGuard): a newcomer redeems an invitation, and members push signed roster
//!   updates to each other. [`PeerRequest`] → [`PeerReply`].
//!
//! ```text
//! → {"cmd":"invite","name":"fablab-nantes"}
//! ← {"ok":true,"invitation":"EWIN1-…","expires_unix":1795327000}
//! → {"redeem":{"id":"3f…","public_key":"…","endpoints":["192.0.2.7:51820"]}}
//! ← {"ok":true,"name":"fablab-nantes","roster":"[roster]\nversion = 4\n…"}
//! ```

use serde::{Deserialize, Serialize};

/// TCP port of the enrollment and roster service on each window's overlay address.
pub const ENROLL_PORT: u16 = 5070;

/// A request on the control socket.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
#[serde(tag = "cmd", rename_all = "lowercase", deny_unknown_fields)]
pub enum Request {
    /// This window's public key and overlay address.
    Identity,
    /// The WireGuard peers: each member's endpoint, handshake age and traffic.
    Members,
    /// Make a one-time invitation for a new member called `name`.
    Invite {
        /// The newcomer's member name.
        name: String,
        /// How long it stays valid (default one hour).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        ttl_s: Option<u64>,
    },
    /// Read `window.toml` again and apply the roster (peers added and removed in place).
    Reload,
}

/// The reply on the control socket.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
pub struct Reply {
    /// Whether the request was carried out.
    pub ok: bool,
    /// Why not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// `identity`: the public key (base64).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub public_key: Option<String>,
    /// `identity`: the overlay address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    /// `members`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub members: Option<Vec<PeerStatus>>,
    /// `invite`: the code to type or scan.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub invitation: Option<String>,
    /// `invite`: when it expires (Unix seconds).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_unix: Option<u64>,
}

/// One WireGuard peer as the overlay sees it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
pub struct PeerStatus {
    /// Member name (or `invitation <id>` for a pending invitation's temporary key).
    pub name: String,
    /// Its public key.
    pub public_key: String,
    /// Its overlay address.
    pub address: String,
    /// The endpoint WireGuard uses now (configured or roamed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    /// Seconds since the last handshake; none yet when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_handshake_age_s: Option<u64>,
    /// Bytes received from it.
    pub rx_bytes: u64,
    /// Bytes sent to it.
    pub tx_bytes: u64,
}

/// A request on the enrollment port.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
#[serde(rename_all = "lowercase", deny_unknown_fields)]
pub enum PeerRequest {
    /// A newcomer, connected with an invitation's temporary key, asks to join.
    Redeem {
        /// The invitation's id.
        id: String,
        /// The newcomer's own (freshly generated) public key.
        public_key: String,
        /// Where the newcomer can be reached (host:port), if it knows.
        #[serde(default)]
        endpoints: Vec<String>,
    },
    /// A member sends its roster (the `[roster]` and `[[member]]` part of a window file,
    /// signed); the receiver takes it when it is newer and signed by a current member.
    Roster {
        /// The TOML text.
        text: String,
    },
}

/// The reply on the enrollment port.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
pub struct PeerReply {
    /// Whether it was accepted.
    pub ok: bool,
    /// Why not, in words for the person at the newcomer's screen.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// `redeem`: the name the newcomer was invited under.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// `redeem`: the signed roster that now includes the newcomer (TOML, as in `Roster`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub roster: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_forms() {
        let r: Request = serde_json::from_str(r#"{"cmd":"invite","name":"b"}"#).unwrap();
        assert_eq!(
            r,
            Request::Invite {
                name: "b".into(),
                ttl_s: None
            }
        );
        let p = PeerRequest::Redeem {
            id: "ab".into(),
            public_key: "k".into(),
            endpoints: vec![],
        };
        assert_eq!(
            serde_json::to_string(&p).unwrap(),
            r#"{"redeem":{"id":"ab","public_key":"k","endpoints":[]}}"#
        );
        for bad in ["", "{}", r#"{"redeem":{}}"#, r#"{"cmd":"nope"}"#, "[]"] {
            assert!(serde_json::from_str::<PeerRequest>(bad).is_err(), "{bad}");
            assert!(serde_json::from_str::<Request>(bad).is_err(), "{bad}");
        }
    }
}
