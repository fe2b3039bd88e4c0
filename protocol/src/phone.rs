//! `ewindow-phone`'s control socket (`/run/ewindow/phone.sock`): one JSON object per line, a
//! request in, a reply out. The serde form is the contract.
//!
//! ```text
//! → {"cmd":"members"}
//! ← {"ok":true,"members":[{"name":"bob","address":"fd77:…","reachable":true,"rtt_ms":1.2,…}]}
//! → {"cmd":"reload"}
//! ← {"ok":true}
//! → {"cmd":"call","name":"fablab-nantes"}
//! ← {"ok":true}
//! → {"cmd":"subscribe"}
//! ← {"ok":true}
//! ← {"window":"fablab-lyon","state":{"kind":"open","peer":"fablab-nantes"},…}   (a status line
//!    at once, then on every change and each second during a call)
//! ```

use serde::{Deserialize, Serialize};

/// A request to the phone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
#[serde(tag = "cmd", rename_all = "lowercase", deny_unknown_fields)]
pub enum Request {
    /// Every other member and whether it answers OPTIONS.
    Members,
    /// Read `window.toml` again (the roster changed).
    Reload,
    /// The window's state, the call and the members.
    Status,
    /// Hang up and call this member now.
    Call {
        /// Member name.
        name: String,
    },
    /// Hang up and move to the next online member (the button's short press).
    Next,
    /// Hang up (the window reopens by its rules, after a pause).
    Hangup,
    /// Close (`true`) or open (`false`) the curtain, or toggle it (absent: the button's long
    /// press). Closed = no calls at all.
    Curtain {
        /// Closed?
        #[serde(default, skip_serializing_if = "Option::is_none")]
        on: Option<bool>,
    },
    /// Reply `ok`, then a [`PhoneStatus`] line at once, on every change and each second
    /// during a call.
    Subscribe,
}

/// The reply to one request.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
pub struct Reply {
    /// Whether the request was carried out.
    pub ok: bool,
    /// Why not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The answer to `members`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub members: Option<Vec<MemberPresence>>,
    /// The answer to `status`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<PhoneStatus>,
}

/// What the window shows and does.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
pub struct PhoneStatus {
    /// This window's name.
    pub window: String,
    /// The main state.
    pub state: WindowState,
    /// Whether the curtain is closed.
    pub curtain: bool,
    /// The call in progress.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub call: Option<LiveCall>,
    /// Every other member and its presence.
    pub members: Vec<MemberPresence>,
}

/// The window's main state, as the console shows it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
pub struct WindowState {
    /// `open`, `connecting`, `waiting` (open, nobody online), `closed`, `curtain`,
    /// `setting-up`.
    pub kind: String,
    /// The other window, for `open` and `connecting`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peer: Option<String>,
    /// When it opens again (`HH:MM`), for `closed`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until: Option<String>,
}

/// A call in progress.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
pub struct LiveCall {
    /// The other window.
    pub peer: String,
    /// Seconds since it was established.
    pub duration_s: f64,
    /// Its streams, as in the call statistics.
    pub streams: Vec<crate::StreamStats>,
}

/// What the phone knows of one member.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
pub struct MemberPresence {
    /// Member name.
    pub name: String,
    /// Its overlay address.
    pub address: String,
    /// Whether the last OPTIONS got a 2xx.
    pub reachable: bool,
    /// Round trip of the last OPTIONS, when it was answered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rtt_ms: Option<f64>,
    /// When it last answered (Unix seconds).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_seen_unix: Option<u64>,
    /// Why the last OPTIONS failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_forms() {
        assert_eq!(
            serde_json::from_str::<Request>(r#"{"cmd":"members"}"#).unwrap(),
            Request::Members
        );
        assert!(serde_json::from_str::<Request>(r#"{"cmd":"explode"}"#).is_err());
        let r = Reply {
            ok: true,
            members: Some(vec![MemberPresence {
                name: "bob".into(),
                address: "fd77::1".into(),
                reachable: true,
                rtt_ms: Some(1.5),
                last_seen_unix: Some(7),
                error: None,
            }]),
            ..Reply::default()
        };
        assert_eq!(
            serde_json::to_string(&r).unwrap(),
            r#"{"ok":true,"members":[{"name":"bob","address":"fd77::1","reachable":true,"rtt_ms":1.5,"last_seen_unix":7}]}"#
        );
    }
}
