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
//! → {"cmd":"sip"}
//! ← {"ok":true,"sip":{"transactions":0,"finished_transactions":2,"waiting_ack":0,"dialogs":1}}
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
    /// The SIP stack's transactions and dialogs now (what a leak would grow).
    Sip,
}

/// The SIP stack's state at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
pub struct SipCounters {
    /// Transactions running (waiting for a response, retransmitting, waiting for an ACK).
    pub transactions: u64,
    /// Ended transactions kept to absorb late retransmissions.
    pub finished_transactions: u64,
    /// Answered INVITEs waiting for their ACK.
    pub waiting_ack: u64,
    /// Dialogs (calls, early or confirmed).
    pub dialogs: u64,
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
    /// The answer to `sip`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sip: Option<SipCounters>,
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

/// The window's main state: what its screen says. The window policy computes it, the phone
/// publishes it, the console shows it. On the wire: `{"kind":"open","peer":"b"}`,
/// `{"kind":"closed","until":"08:00"}` (see [`WireState`]).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "WireState", into = "WireState")]
#[cfg_attr(test, derive(schemars::JsonSchema))]
#[cfg_attr(test, schemars(with = "WireState"))]
pub enum WindowState {
    /// Just started or not provisioned: no presence result yet.
    #[default]
    SettingUp,
    /// A call is up.
    Open {
        /// The member on the other side.
        with: String,
    },
    /// Calling or answering, not up yet.
    Connecting {
        /// The member on the other side.
        to: String,
    },
    /// Open, no call: nobody to call, or waiting out a backoff.
    Waiting,
    /// Outside the open hours.
    ClosedUntil {
        /// Hour of the next opening, 0..=23.
        hh: u8,
        /// Minute of the next opening, 0..=59.
        mm: u8,
    },
    /// The curtain is closed.
    Curtain,
}

impl std::fmt::Display for WindowState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            WindowState::SettingUp => f.write_str("Setting up…"),
            WindowState::Open { with } => write!(f, "Open to {with}"),
            WindowState::Connecting { to } => write!(f, "Connecting to {to}…"),
            WindowState::Waiting => f.write_str("Waiting for a window"),
            WindowState::ClosedUntil { hh, mm } => write!(f, "Closed until {hh:02}:{mm:02}"),
            WindowState::Curtain => f.write_str("Curtain closed"),
        }
    }
}

/// [`WindowState`] as it goes over the socket.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
pub struct WireState {
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

impl From<WindowState> for WireState {
    fn from(s: WindowState) -> WireState {
        let (kind, peer, until) = match s {
            WindowState::SettingUp => ("setting-up", None, None),
            WindowState::Open { with } => ("open", Some(with), None),
            WindowState::Connecting { to } => ("connecting", Some(to), None),
            WindowState::Waiting => ("waiting", None, None),
            WindowState::ClosedUntil { hh, mm } => {
                ("closed", None, Some(format!("{hh:02}:{mm:02}")))
            }
            WindowState::Curtain => ("curtain", None, None),
        };
        WireState {
            kind: kind.into(),
            peer,
            until,
        }
    }
}

/// A kind this version does not know reads as `setting-up`; a `closed` without a readable
/// time as closed until 00:00.
impl From<WireState> for WindowState {
    fn from(w: WireState) -> WindowState {
        let peer = w.peer.unwrap_or_default();
        match w.kind.as_str() {
            "open" => WindowState::Open { with: peer },
            "connecting" => WindowState::Connecting { to: peer },
            "waiting" => WindowState::Waiting,
            "curtain" => WindowState::Curtain,
            "closed" => {
                let (hh, mm) = w
                    .until
                    .as_deref()
                    .and_then(|u| u.split_once(':'))
                    .and_then(|(h, m)| Some((h.parse().ok()?, m.parse().ok()?)))
                    .filter(|&(h, m): &(u8, u8)| h < 24 && m < 60)
                    .unwrap_or((0, 0));
                WindowState::ClosedUntil { hh, mm }
            }
            _ => WindowState::SettingUp,
        }
    }
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
    fn the_window_state_keeps_its_wire_form() {
        for (state, text) in [
            (WindowState::SettingUp, r#"{"kind":"setting-up"}"#),
            (
                WindowState::Open { with: "b".into() },
                r#"{"kind":"open","peer":"b"}"#,
            ),
            (
                WindowState::Connecting { to: "b".into() },
                r#"{"kind":"connecting","peer":"b"}"#,
            ),
            (WindowState::Waiting, r#"{"kind":"waiting"}"#),
            (
                WindowState::ClosedUntil { hh: 8, mm: 5 },
                r#"{"kind":"closed","until":"08:05"}"#,
            ),
            (WindowState::Curtain, r#"{"kind":"curtain"}"#),
        ] {
            assert_eq!(serde_json::to_string(&state).unwrap(), text);
            assert_eq!(serde_json::from_str::<WindowState>(text).unwrap(), state);
        }
        let odd = |t: &str| serde_json::from_str::<WindowState>(t).unwrap();
        assert_eq!(odd(r#"{"kind":"nonsense"}"#), WindowState::SettingUp);
        assert_eq!(
            odd(r#"{"kind":"closed","until":"99:99"}"#),
            WindowState::ClosedUntil { hh: 0, mm: 0 }
        );
        assert_eq!(
            WindowState::ClosedUntil { hh: 7, mm: 5 }.to_string(),
            "Closed until 07:05"
        );
    }

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
