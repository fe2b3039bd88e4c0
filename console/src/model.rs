//! Pure: folds what the sockets say (protocol messages) into the [`view::Model`] the screen
//! draws. No IO, so every rule here is a unit test.

use ewindow_protocol::init::{Event, Status};
use ewindow_protocol::overlay::{Path, PeerStatus};
use ewindow_protocol::phone::{LiveCall, PhoneStatus};
use ewindow_protocol::{StreamDirection, StreamStats};

use crate::view::{CallView, MemberView, Model, ServiceView, ShownInvitation};

/// Log lines kept for the screen.
pub const MAX_LOGS: usize = 200;

/// The sources the console waits for, as `view::Model::waiting_for` names them.
pub const INIT: &str = "ewindow-init";
/// See [`INIT`].
pub const PHONE: &str = "ewindow-phone";
/// See [`INIT`].
pub const OVERLAY: &str = "ewindow-overlay";

/// Marks `source` (one of [`INIT`], [`PHONE`], [`OVERLAY`]) as missing, with its socket.
pub fn waiting(model: &mut Model, source: &str, socket: &str) {
    let entry = format!("{source} ({socket})");
    if !model.waiting_for.iter().any(|w| w.starts_with(source)) {
        model.waiting_for.push(entry);
    }
}

/// Marks `source` as there.
pub fn arrived(model: &mut Model, source: &str) {
    model.waiting_for.retain(|w| !w.starts_with(source));
}

/// The window's state, members (presence) and call from the phone.
pub fn apply_phone(model: &mut Model, st: &PhoneStatus) {
    if !st.window.is_empty() {
        model.window_name = Some(st.window.clone());
    }
    model.state = st.state.clone();
    // Presence from the phone; handshake ages and paths stay what the overlay said.
    let overlay: Vec<(String, Option<u64>, Option<String>)> = model
        .members
        .iter()
        .map(|m| (m.name.clone(), m.handshake_age_s, m.path.clone()))
        .collect();
    model.members = st
        .members
        .iter()
        .map(|m| MemberView {
            name: m.name.clone(),
            online: m.reachable,
            rtt_ms: m.rtt_ms,
            handshake_age_s: overlay
                .iter()
                .find(|(n, _, _)| n == &m.name)
                .and_then(|(_, a, _)| *a),
            path: overlay
                .iter()
                .find(|(n, _, _)| n == &m.name)
                .and_then(|(_, _, p)| p.clone()),
        })
        .collect();
    model.call = st.call.as_ref().map(call_view);
}

/// An invitation this window just made: on the screen until redeemed or expired.
pub fn invitation_made(model: &mut Model, name: &str, code: String, expires_unix: u64) {
    model.message = Some(format!("invitation for {name}"));
    model.invitation = Some(ShownInvitation {
        code,
        name: name.to_owned(),
        expires_unix,
    });
}

/// An invitation on the screen that has expired goes away, saying so.
pub fn tick(model: &mut Model, now_unix: u64) {
    if let Some(inv) = &model.invitation {
        if now_unix >= inv.expires_unix {
            model.message = Some(format!(
                "the invitation for {} expired: press i for a new one",
                inv.name
            ));
            model.invitation = None;
        }
    }
}

/// WireGuard's view: the handshake age of each member. A member the invitation on the
/// screen was for has joined: the invitation goes, the screen says who joined.
pub fn apply_overlay(model: &mut Model, peers: &[PeerStatus]) {
    if let Some(inv) = &model.invitation {
        if peers.iter().any(|p| p.name == inv.name) {
            model.message = Some(format!("{} joined", inv.name));
            model.invitation = None;
        }
    }
    for p in peers {
        let path = path_words(p);
        match model.members.iter_mut().find(|m| m.name == p.name) {
            Some(m) => {
                m.handshake_age_s = p.last_handshake_age_s;
                m.path = path;
            }
            None if !p.name.starts_with("invitation") => model.members.push(MemberView {
                name: p.name.clone(),
                online: false,
                rtt_ms: None,
                handshake_age_s: p.last_handshake_age_s,
                path,
            }),
            None => {}
        }
    }
}

/// How the overlay reaches a member, in words: `direct`, `via relay NAME`, `trying`,
/// `unreachable` (`ewindowctl members` and the console say the same).
pub fn path_words(p: &PeerStatus) -> Option<String> {
    let path = p.path?;
    Some(match (path, &p.via) {
        (Path::Relay, Some(via)) => format!("via relay {via}"),
        _ => path.as_str().to_owned(),
    })
}

/// Every service from a `status` reply.
pub fn apply_init_status(model: &mut Model, st: &Status) {
    model.services = st
        .services
        .iter()
        .map(|s| ServiceView {
            name: s.name.clone(),
            state: s.state.clone(),
            restarts: s.restarts,
        })
        .collect();
}

/// One event of init's subscribe stream.
pub fn apply_init_event(model: &mut Model, ev: &Event) {
    match ev {
        Event::Service {
            name,
            state,
            restarts,
            ..
        } => match model.services.iter_mut().find(|s| &s.name == name) {
            Some(s) => {
                s.state = state.clone();
                s.restarts = *restarts;
            }
            None => model.services.push(ServiceView {
                name: name.clone(),
                state: state.clone(),
                restarts: *restarts,
            }),
        },
        Event::Log(l) => push_log(model, format!("{}: {}", l.service, l.line)),
        Event::Shutdown { kind } => {
            model.message = Some(format!("shutting down ({kind})"));
        }
    }
}

/// Adds a log line, keeping the last [`MAX_LOGS`].
pub fn push_log(model: &mut Model, line: String) {
    model.logs.push(line);
    if model.logs.len() > MAX_LOGS {
        let extra = model.logs.len() - MAX_LOGS;
        model.logs.drain(..extra);
    }
}

fn recv<'a>(streams: &'a [StreamStats], media: &str) -> Option<&'a StreamStats> {
    streams
        .iter()
        .find(|s| s.media == media && s.direction == Some(StreamDirection::Recv))
}

/// The quality line of a call, from its received streams.
pub fn call_view(c: &LiveCall) -> CallView {
    let audio = recv(&c.streams, "audio");
    let video = recv(&c.streams, "video");
    let received: Vec<&StreamStats> = [audio, video].into_iter().flatten().collect();
    let bitrate: f64 = received.iter().filter_map(|s| s.bitrate_kbps).sum();
    let packets: u64 = received.iter().map(|s| s.packets).sum();
    let lost: i64 = received.iter().map(|s| s.lost.max(0)).sum();
    let loss_pct = (packets > 0 || lost > 0)
        .then(|| 100.0 * lost as f64 / (packets as f64 + lost as f64).max(1.0));
    CallView {
        peer: c.peer.clone(),
        audio_codec: audio.map(|s| s.codec.clone()),
        video_codec: video.map(|s| s.codec.clone()),
        width: video.and_then(|s| s.width),
        height: video.and_then(|s| s.height),
        fps: video.and_then(|s| s.fps),
        bitrate_kbps: (bitrate > 0.0).then_some(bitrate),
        loss_pct,
        rtt_ms: received.iter().find_map(|s| s.rtt_ms),
        duration_s: c.duration_s,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ewindow_protocol::init::LogLine;
    use ewindow_protocol::phone::{MemberPresence, WindowState, WireState as PState};

    fn stream(media: &str, codec: &str, packets: u64, lost: i64, kbps: f64) -> StreamStats {
        StreamStats {
            media: media.into(),
            codec: codec.into(),
            direction: Some(StreamDirection::Recv),
            packets,
            lost,
            bitrate_kbps: Some(kbps),
            ..StreamStats::default()
        }
    }

    #[test]
    fn phone_status_becomes_the_headline_members_and_call() {
        let mut m = Model::default();
        m.members.push(MemberView {
            name: "b".into(),
            handshake_age_s: Some(7),
            ..MemberView::default()
        });
        let mut video = stream("video", "vp8", 900, 100, 480.0);
        video.width = Some(640);
        video.height = Some(480);
        video.fps = Some(29.5);
        let st = PhoneStatus {
            window: "a".into(),
            state: PState {
                kind: "open".into(),
                peer: Some("b".into()),
                until: None,
            }
            .into(),
            curtain: false,
            call: Some(LiveCall {
                peer: "b".into(),
                duration_s: 12.0,
                streams: vec![stream("audio", "opus", 1000, 0, 40.0), video],
            }),
            members: vec![MemberPresence {
                name: "b".into(),
                address: "fd77::1".into(),
                reachable: true,
                rtt_ms: Some(1.5),
                ..MemberPresence::default()
            }],
        };
        apply_phone(&mut m, &st);
        assert_eq!(m.window_name.as_deref(), Some("a"));
        assert_eq!(m.state, WindowState::Open { with: "b".into() });
        assert_eq!(m.members.len(), 1);
        assert!(m.members[0].online);
        assert_eq!(
            m.members[0].handshake_age_s,
            Some(7),
            "kept from the overlay"
        );
        let call = m.call.clone().unwrap();
        assert_eq!(call.audio_codec.as_deref(), Some("opus"));
        assert_eq!(call.video_codec.as_deref(), Some("vp8"));
        assert_eq!((call.width, call.height), (Some(640), Some(480)));
        assert_eq!(call.bitrate_kbps, Some(520.0));
        let loss = call.loss_pct.unwrap();
        assert!((loss - 100.0 * 100.0 / 2000.0).abs() < 1e-9, "{loss}");

        let closed = PhoneStatus {
            state: PState {
                kind: "closed".into(),
                peer: None,
                until: Some("08:30".into()),
            }
            .into(),
            ..st.clone()
        };
        apply_phone(&mut m, &closed);
        assert_eq!(m.state, WindowState::ClosedUntil { hh: 8, mm: 30 });
        for (kind, want) in [
            ("curtain", WindowState::Curtain),
            ("waiting", WindowState::Waiting),
            ("setting-up", WindowState::SettingUp),
            ("nonsense", WindowState::SettingUp),
        ] {
            let s = PhoneStatus {
                state: PState {
                    kind: kind.into(),
                    ..PState::default()
                }
                .into(),
                ..st.clone()
            };
            apply_phone(&mut m, &s);
            assert_eq!(m.state, want, "{kind}");
        }
    }

    #[test]
    fn an_invitation_stays_on_the_screen_until_redeemed_or_expired() {
        let mut m = Model::default();
        invitation_made(&mut m, "lab-b", "EWIN1-X".into(), 1000);
        assert_eq!(
            m.invitation.as_ref().map(|i| i.name.as_str()),
            Some("lab-b")
        );
        tick(&mut m, 999);
        assert!(m.invitation.is_some());
        // the overlay lists the invitation's temporary key: still waiting
        let pending = PeerStatus {
            name: "invitation 1a2b".into(),
            ..PeerStatus::default()
        };
        apply_overlay(&mut m, std::slice::from_ref(&pending));
        assert!(m.invitation.is_some());
        // lab-b is a member now: the invitation goes, the screen says who joined
        let joined = PeerStatus {
            name: "lab-b".into(),
            ..PeerStatus::default()
        };
        apply_overlay(&mut m, &[joined]);
        assert_eq!(m.invitation, None);
        assert_eq!(m.message.as_deref(), Some("lab-b joined"));

        invitation_made(&mut m, "lab-c", "EWIN1-Y".into(), 1000);
        tick(&mut m, 1000);
        assert_eq!(m.invitation, None);
        assert!(m.message.as_deref().unwrap().contains("expired"));
    }

    #[test]
    fn a_printed_qr_code_is_square_and_bounded() {
        let qr = crate::view::qr_text("EWIN1-0123456789ABCDEFGHJKMNPQRSTVWXYZ").unwrap();
        let lines: Vec<&str> = qr.lines().collect();
        let width = lines[0].chars().count();
        assert!(lines.iter().all(|l| l.chars().count() == width));
        assert_eq!(lines.len(), width.div_ceil(2));
        // The quiet zone: the first line is all light.
        assert!(lines[0].chars().all(|c| c == '█'));
        assert!(crate::view::qr_text(&"x".repeat(5000)).is_none());
    }

    #[test]
    fn overlay_ages_init_events_and_logs() {
        let mut m = Model::default();
        apply_overlay(
            &mut m,
            &[
                PeerStatus {
                    name: "c".into(),
                    last_handshake_age_s: Some(3),
                    path: Some(Path::Relay),
                    via: Some("lyon".into()),
                    ..PeerStatus::default()
                },
                PeerStatus {
                    name: "invitation for d".into(),
                    ..PeerStatus::default()
                },
            ],
        );
        assert_eq!(m.members.len(), 1);
        assert_eq!(m.members[0].handshake_age_s, Some(3));
        assert_eq!(m.members[0].path.as_deref(), Some("via relay lyon"));
        // The phone's presence keeps what the overlay said.
        apply_phone(
            &mut m,
            &PhoneStatus {
                members: vec![MemberPresence {
                    name: "c".into(),
                    reachable: true,
                    ..MemberPresence::default()
                }],
                ..PhoneStatus::default()
            },
        );
        assert_eq!(m.members[0].path.as_deref(), Some("via relay lyon"));
        assert!(m.members[0].online);
        apply_init_event(
            &mut m,
            &Event::Service {
                name: "phone".into(),
                state: "backoff".into(),
                pid: None,
                restarts: 2,
            },
        );
        assert_eq!(m.services[0].state, "backoff");
        for i in 0..(MAX_LOGS + 5) {
            apply_init_event(
                &mut m,
                &Event::Log(LogLine {
                    unix_ms: 0,
                    service: "phone".into(),
                    line: format!("line {i}"),
                }),
            );
        }
        assert_eq!(m.logs.len(), MAX_LOGS);
        assert_eq!(
            m.logs.last().unwrap(),
            &format!("phone: line {}", MAX_LOGS + 4)
        );
        waiting(&mut m, INIT, "/run/ewindow/init.sock");
        waiting(&mut m, INIT, "/run/ewindow/init.sock");
        assert_eq!(m.waiting_for, ["ewindow-init (/run/ewindow/init.sock)"]);
        arrived(&mut m, INIT);
        assert!(m.waiting_for.is_empty());
    }
}
