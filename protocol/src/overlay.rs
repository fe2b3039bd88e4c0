//! `ewindow-overlay`'s two sockets, one JSON object per line.
//!
//! - The control socket (`/run/ewindow/overlay.sock`), for `ewindowctl` and the console:
//!   [`Request`] → [`Reply`].
//! - The enrollment port (TCP [`ENROLL_PORT`] on the window's overlay address, so reachable
//!   only through WireGuard): a newcomer redeems an invitation, and members push signed roster
//!   updates to each other, tell each other where they see the others (`seen`: hints for
//!   crossing NAT), ask a relay member for a relay port and agree on trying a direct path
//!   again (`probe`). [`PeerRequest`] → [`PeerReply`].
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
    /// How this window reaches it (members only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<Path>,
    /// `relay`: the member whose relay carries the traffic.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub via: Option<String>,
}

/// How a window reaches a member.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
#[serde(rename_all = "lowercase")]
pub enum Path {
    /// WireGuard straight to its endpoint.
    Direct,
    /// Through a relay member (WireGuard end to end inside the relay's).
    Relay,
    /// No session yet: trying the endpoints it is known or seen at.
    Trying,
    /// No session, nothing left to try and no relay reaches it.
    Unreachable,
}

impl Path {
    /// The word `ewindowctl members` and the console show.
    pub fn as_str(self) -> &'static str {
        match self {
            Path::Direct => "direct",
            Path::Relay => "relay",
            Path::Trying => "trying",
            Path::Unreachable => "unreachable",
        }
    }
}

/// Where a window sees one member (a hint, never trusted for identity: WireGuard's keys decide).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct Seen {
    /// The member's public key (base64).
    pub public_key: String,
    /// The underlay endpoint its packets come from (ip:port).
    pub endpoint: String,
    /// Seconds since the last handshake with it.
    pub handshake_age_s: u64,
}

/// A step of trying the direct path again while relayed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
#[serde(rename_all = "lowercase")]
pub enum ProbeStep {
    /// The receiver sends to the sender's direct endpoint for a few seconds.
    Start,
    /// Answered on whatever path the receiver uses now (the sender checks it came direct).
    Check,
    /// The direct path works both ways: the receiver keeps it.
    Keep,
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
    /// Where the sender sees the members it has a direct session with.
    Seen {
        /// One entry per member.
        peers: Vec<Seen>,
    },
    /// To a relay member: carry the sender's WireGuard traffic with `peer` (the relay answers
    /// with a port on its overlay address; both ends must ask).
    Relay {
        /// The other end's public key (base64).
        peer: String,
        /// The sender's WireGuard listen port.
        listen_port: u16,
    },
    /// To a relay member: the sender no longer wants the relay for `peer` (a probe of the
    /// direct path starts): the pair's port closes, both ends must ask again.
    Release {
        /// The other end's public key (base64).
        peer: String,
    },
    /// Trying the direct path again (see [`ProbeStep`]).
    Probe {
        /// Which step.
        step: ProbeStep,
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
    /// `relay`: the UDP port on the relay's overlay address that carries the pair's traffic.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub relay_port: Option<u16>,
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
