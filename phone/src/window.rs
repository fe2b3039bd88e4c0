//! `ewindow-phone window`: the appliance mode. The IO loop around [`crate::policy::Policy`]:
//! it feeds the policy presence, INVITEs, call ends, control commands and time, and carries
//! out its actions — each call runs on its own task with a stop token — and publishes the
//! window's status on the control socket (`status`, `subscribe`).
//!
//! **Invariants:** the policy is only touched from this loop; a call task never decides
//! anything, it reports `Established` and its end; the loop sleeps until the policy's next
//! deadline, the next open-hours change or an event: no polling.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Result;
use ewindow_protocol::phone::{LiveCall, PhoneStatus, WindowState};
use ewindow_protocol::EndReason as StatsEnd;
use tokio::sync::{mpsc, oneshot, watch, Notify};
use tokio_util::sync::CancellationToken;

use crate::call::{self, CallHooks, Shutdown};
use crate::control;
use crate::members::Members;
use crate::policy::{Action, CallId, EndReason, Input, Policy, Screen, Settings};
use crate::sip::{IncomingInvite, SipAgent};
use crate::CommonArgs;
use ewindow_protocol::window::Media;

/// A command from the control socket.
#[derive(Debug)]
pub enum Command {
    /// `call NAME`.
    Call(String),
    /// `next`.
    Next,
    /// `hangup`.
    Hangup,
    /// `curtain on|off`.
    Curtain(bool),
    /// The button's long press.
    CurtainToggle,
}

/// What the control socket needs from the running window.
#[derive(Clone)]
pub struct Handle {
    /// Commands into the loop.
    pub commands: mpsc::Sender<Command>,
    /// The latest status; subscribers watch it.
    pub status: watch::Receiver<PhoneStatus>,
}

enum CallEvent {
    Up(CallId),
    Ended(CallId, StatsEnd, Option<u16>),
}

struct RunningCall {
    stop: CancellationToken,
}

fn settings(members: &Members) -> Settings {
    let c = members.config();
    Settings {
        members: c.roster.members.iter().map(|m| m.name.clone()).collect(),
        partner: c.partner.clone(),
        open_hours: c.open_hours,
    }
}

fn policy_end(reason: StatsEnd, status: Option<u16>) -> EndReason {
    match reason {
        StatsEnd::RemoteBye | StatsEnd::Cancel => EndReason::Bye,
        StatsEnd::RtpTimeout => EndReason::RtpTimeout,
        StatsEnd::Rejected => EndReason::Refused(status.unwrap_or(480)),
        StatsEnd::NoCommonCodec => EndReason::Refused(488),
        StatsEnd::Timeout => EndReason::NoAnswer,
        _ => EndReason::Error,
    }
}

fn window_state(screen: &Screen) -> WindowState {
    let (kind, peer, until) = match screen {
        Screen::SettingUp => ("setting-up", None, None),
        Screen::Open { with } => ("open", Some(with.clone()), None),
        Screen::Connecting { to } => ("connecting", Some(to.clone()), None),
        Screen::Waiting => ("waiting", None, None),
        Screen::ClosedUntil { hh, mm } => ("closed", None, Some(format!("{hh:02}:{mm:02}"))),
        Screen::Curtain => ("curtain", None, None),
    };
    WindowState {
        kind: kind.into(),
        peer,
        until,
    }
}

/// Waits for the window file (first boot: the wizard writes it).
async fn wait_for(path: &Path) {
    if !path.exists() {
        tracing::info!(
            "{} does not exist yet: waiting for provisioning",
            path.display()
        );
        while !path.exists() {
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }
}

/// The video a window sends: the board's profile (from its device-tree model), then what
/// `window.toml` `[media]` sets.
fn apply_video(args: &mut CommonArgs, model: Option<&str>, media: &Media) -> Result<()> {
    if let Some(p) = model.and_then(crate::board::for_model) {
        tracing::info!(
            model = model.unwrap_or_default(),
            "video profile {}x{}@{} {} kbit/s, {} encoder threads",
            p.size.0,
            p.size.1,
            p.fps,
            p.kbps,
            p.threads
        );
        args.video_size = p.size;
        args.video_fps = p.fps;
        args.video_kbps = p.kbps;
        args.video_threads = p.threads;
        args.video_codecs = crate::VideoCodecList(p.codecs);
    }
    let bad = |k: &str, e: String| anyhow::anyhow!("window.toml [media] {k}: {e}");
    if let Some(v) = &media.video_size {
        args.video_size = crate::parse_size(v).map_err(|e| bad("video_size", e))?;
    }
    if let Some(v) = &media.video_codecs {
        args.video_codecs = crate::parse_video_codecs(v).map_err(|e| bad("video_codecs", e))?;
    }
    for (k, v, range, to) in [
        ("video_fps", media.video_fps, 1..=60, &mut args.video_fps),
        (
            "video_kbps",
            media.video_kbps,
            50..=20000,
            &mut args.video_kbps,
        ),
        (
            "video_threads",
            media.video_threads,
            1..=8,
            &mut args.video_threads,
        ),
    ] {
        if let Some(v) = v {
            if !range.contains(&v) {
                return Err(bad(
                    k,
                    format!("{v} is not in {}..={}", range.start(), range.end()),
                ));
            }
            *to = v;
        }
    }
    Ok(())
}

/// Runs the window until SIGINT/SIGTERM.
pub async fn run(
    window_file: &Path,
    control_path: Option<&Path>,
    mut args: CommonArgs,
) -> Result<String> {
    wait_for(window_file).await;
    args.window = Some(window_file.to_owned());
    let members = Members::load(window_file)?;
    let bind = members.own_sip_addr()?;
    args.name = members.own_name();
    // The devices the wizard chose (window.toml `[media]`) win over the command line's defaults.
    let media = members.config().media;
    if let Some(v) = &media.camera {
        args.video_source = v
            .parse()
            .map_err(|e| anyhow::anyhow!("[media] camera: {e}"))?;
    }
    if let Some(v) = &media.microphone {
        args.audio_source = v
            .parse()
            .map_err(|e| anyhow::anyhow!("[media] microphone: {e}"))?;
    }
    if let Some(v) = &media.speaker {
        args.audio_sink = v
            .parse()
            .map_err(|e| anyhow::anyhow!("[media] speaker: {e}"))?;
    }
    apply_video(&mut args, crate::board::model().as_deref(), &media)?;
    // The overlay may still be configuring the interface (or restarting): wait for our
    // address rather than fail.
    let mut told = false;
    let device = loop {
        match crate::netdev::interface_of(bind.ip()) {
            Ok(d) => break d,
            Err(e) => {
                if !told {
                    tracing::info!("waiting for the overlay: {e:#}");
                    told = true;
                }
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    };
    crate::netdev::pin_all_to(device);
    let (agent, mut invites) = SipAgent::start(bind, &args.name, members.policy()).await?;
    let agent = Arc::new(agent);
    tokio::spawn(members.clone().presence_loop(agent.pinger()?));
    println!(
        "window {} on sip:{}@{}",
        args.name,
        args.name,
        agent.local_addr()
    );

    let (cmd_tx, mut commands) = mpsc::channel::<Command>(16);
    let (status_tx, status_rx) = watch::channel(PhoneStatus::default());
    if let Some(path) = control_path {
        control::serve(
            path,
            Some(members.clone()),
            Some(Handle {
                commands: cmd_tx,
                status: status_rx,
            }),
        )?;
    }
    let mut hup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())?;
    let mut shutdown = Shutdown::new()?;

    let started = Instant::now();
    let now_ms = || started.elapsed().as_millis() as u64;
    let mut policy = Policy::new(args.name.clone(), settings(&members));
    let (ev_tx, mut events) = mpsc::channel::<CallEvent>(16);
    let mut calls: HashMap<CallId, RunningCall> = HashMap::new();
    let mut pending: HashMap<u64, IncomingInvite> = HashMap::new();
    let mut next_invite = 0u64;
    let live: Arc<Mutex<Option<LiveCall>>> = Arc::new(Mutex::new(None));
    let live_changed = Arc::new(Notify::new());
    let args = Arc::new(args);

    let mut last_settings = settings(&members);
    let mut inputs: std::collections::VecDeque<Input> =
        [Input::Settings(last_settings.clone())].into();
    loop {
        let busy = !inputs.is_empty();
        while let Some(i) = inputs.pop_front() {
            let actions = policy.handle(i, now_ms(), ewindow_io::localtime::minute_of_day());
            for a in actions {
                match a {
                    Action::Dial { call, to } => {
                        let Some(uri) = members.uri_of(&to) else {
                            let _ = ev_tx.try_send(CallEvent::Ended(
                                call,
                                StatsEnd::TransportError,
                                None,
                            ));
                            continue;
                        };
                        let stop = CancellationToken::new();
                        calls.insert(call, RunningCall { stop: stop.clone() });
                        spawn_call(
                            call,
                            to,
                            Job::Dial(uri),
                            agent.clone(),
                            args.clone(),
                            stop,
                            ev_tx.clone(),
                            live.clone(),
                            live_changed.clone(),
                        );
                    }
                    Action::Answer { invite, call } => {
                        let Some(inv) = pending.remove(&invite) else {
                            continue;
                        };
                        let peer = inv.from.from_user.clone().unwrap_or_default();
                        let stop = CancellationToken::new();
                        calls.insert(call, RunningCall { stop: stop.clone() });
                        spawn_call(
                            call,
                            peer,
                            Job::Answer(Box::new(inv)),
                            agent.clone(),
                            args.clone(),
                            stop,
                            ev_tx.clone(),
                            live.clone(),
                            live_changed.clone(),
                        );
                    }
                    Action::Refuse { invite, status } => {
                        if let Some(inv) = pending.remove(&invite) {
                            let agent = agent.clone();
                            tokio::spawn(async move { agent.reject(inv, status).await });
                        }
                    }
                    Action::Cancel(call) | Action::HangUp(call) => {
                        if let Some(c) = calls.remove(&call) {
                            c.stop.cancel();
                        }
                    }
                }
            }
        }
        if busy {
            let status = PhoneStatus {
                window: policy_name(&args),
                state: window_state(&policy.screen(ewindow_io::localtime::minute_of_day())),
                curtain: policy.curtain_closed(),
                call: policy
                    .call()
                    .filter(|(_, _, up)| *up)
                    .and_then(|_| live.lock().unwrap_or_else(|e| e.into_inner()).clone()),
                members: members.presence(),
            };
            status_tx.send_if_modified(|s| {
                let changed = *s != status;
                *s = status;
                changed
            });
        }

        // Sleep until the policy's deadline or the next minute that changes the open hours.
        let deadline = policy
            .next_deadline()
            .map(|ms| tokio::time::Instant::from_std(started + Duration::from_millis(ms)));
        let minute = ewindow_io::localtime::minute_of_day();
        let hours = policy.next_hours_change(minute).map(|m| {
            let mins = (m + 1440 - minute) % 1440;
            let mins = if mins == 0 { 1440 } else { mins };
            tokio::time::Instant::now() + Duration::from_secs(mins as u64 * 60)
        });
        let wake = [deadline, hours].into_iter().flatten().min();
        let sleep = async {
            match wake {
                Some(t) => tokio::time::sleep_until(t).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            Some(inv) = invites.recv() => {
                next_invite += 1;
                let from = inv.from.from_user.clone().unwrap_or_default();
                pending.insert(next_invite, inv);
                inputs.push_back(Input::IncomingInvite { invite: next_invite, from });
            }
            Some(ev) = events.recv() => {
                inputs.push_back(match ev {
                    CallEvent::Up(id) => Input::Established(id),
                    CallEvent::Ended(id, reason, status) => {
                        calls.remove(&id);
                        if policy.call().map(|c| c.0) != Some(id) {
                            // The policy already ended it (hang-up, next): nothing to tell.
                            *live.lock().unwrap_or_else(|e| e.into_inner()) = None;
                            Input::Tick
                        } else {
                            *live.lock().unwrap_or_else(|e| e.into_inner()) = None;
                            Input::Ended { call: id, reason: policy_end(reason, status) }
                        }
                    }
                });
            }
            Some(cmd) = commands.recv() => {
                inputs.push_back(match cmd {
                    Command::Call(name) => Input::CallNow(name),
                    Command::Next => Input::Next,
                    Command::Hangup => Input::Hangup,
                    Command::Curtain(closed) => Input::Curtain { closed },
                    Command::CurtainToggle => Input::CurtainToggle,
                });
            }
            _ = members.changed.notified() => {
                // A reload (roster, partner, hours) or a presence round.
                let fresh = settings(&members);
                if fresh != last_settings {
                    last_settings = fresh.clone();
                    inputs.push_back(Input::Settings(fresh));
                }
                let presence = members.presence().into_iter().map(|m| (m.name, m.reachable)).collect();
                inputs.push_back(Input::Presence(presence));
            }
            _ = live_changed.notified() => inputs.push_back(Input::Tick),
            _ = hup.recv() => {
                if let Err(e) = members.reload() {
                    tracing::error!("reloading the window file (keeping the old one): {e:#}");
                }
            }
            _ = sleep => inputs.push_back(Input::Tick),
            _ = shutdown.wait() => break,
        }
    }
    for c in calls.values() {
        c.stop.cancel();
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    Ok(format!("window {} stopped", args.name))
}

fn policy_name(args: &CommonArgs) -> String {
    args.name.clone()
}

enum Job {
    Dial(String),
    Answer(Box<IncomingInvite>),
}

#[allow(clippy::too_many_arguments)]
fn spawn_call(
    id: CallId,
    peer: String,
    job: Job,
    agent: Arc<SipAgent>,
    args: Arc<CommonArgs>,
    stop: CancellationToken,
    events: mpsc::Sender<CallEvent>,
    live: Arc<Mutex<Option<LiveCall>>>,
    changed: Arc<Notify>,
) {
    tokio::spawn(async move {
        let (up_tx, up_rx) = oneshot::channel();
        let hooks = CallHooks {
            up: Some(up_tx),
            peer: peer.clone(),
            live,
            changed,
        };
        let mut shutdown = match Shutdown::with_stop(stop, hooks) {
            Ok(s) => s,
            Err(e) => {
                tracing::error!("call {peer}: {e:#}");
                let _ = events
                    .send(CallEvent::Ended(id, StatsEnd::MediaError, None))
                    .await;
                return;
            }
        };
        let ev = events.clone();
        tokio::spawn(async move {
            if up_rx.await.is_ok() {
                let _ = ev.send(CallEvent::Up(id)).await;
            }
        });
        // Second calls are the loop's business: the call itself never sees another INVITE.
        let (_keep, mut no_invites) = mpsc::channel(1);
        let outcome = match job {
            Job::Dial(uri) => {
                call::place(
                    &agent,
                    &uri,
                    Duration::from_secs(20),
                    &args,
                    &mut no_invites,
                    &mut shutdown,
                )
                .await
            }
            Job::Answer(inv) => {
                call::answer(&agent, *inv, true, &args, &mut no_invites, &mut shutdown).await
            }
        };
        tracing::info!(peer = %peer, "{}", outcome.line);
        call::write_stats(&args, &outcome.stats);
        let reason = outcome.stats.end_reason.unwrap_or(StatsEnd::TransportError);
        let _ = events
            .send(CallEvent::Ended(id, reason, outcome.stats.sip_status))
            .await;
    });
}

#[cfg(test)]
mod video_tests {
    use clap::Parser;

    use super::*;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        common: CommonArgs,
    }

    fn defaults() -> CommonArgs {
        Cli::parse_from(["ewindow-phone"]).common
    }

    #[test]
    fn the_board_profile_then_window_toml_decide_the_video() {
        let mut a = defaults();
        apply_video(&mut a, None, &Media::default()).unwrap();
        assert_eq!(
            (a.video_size, a.video_fps, a.video_threads),
            ((640, 480), 30, 1)
        );

        let mut a = defaults();
        apply_video(
            &mut a,
            Some("Raspberry Pi 3 Model B Rev 1.2"),
            &Media::default(),
        )
        .unwrap();
        let pi3 = crate::board::for_model("Raspberry Pi 3 Model B Rev 1.2").unwrap();
        assert_eq!(
            (a.video_size, a.video_fps, a.video_threads),
            (pi3.size, pi3.fps, pi3.threads)
        );

        let media = Media {
            video_size: Some("480x270".into()),
            video_fps: Some(15),
            video_codecs: Some("h264".into()),
            ..Media::default()
        };
        let mut a = defaults();
        apply_video(&mut a, Some("Raspberry Pi 3 Model B Rev 1.2"), &media).unwrap();
        assert_eq!((a.video_size, a.video_fps), ((480, 270), 15));
        assert_eq!(a.video_codecs.0, [crate::sdp::VideoCodec::H264]);
        assert_eq!(a.video_threads, pi3.threads);

        let bad = Media {
            video_threads: Some(0),
            ..Media::default()
        };
        let e = apply_video(&mut defaults(), None, &bad).unwrap_err();
        assert!(
            e.to_string()
                .contains("[media] video_threads: 0 is not in 1..=8"),
            "{e}"
        );
        let bad = Media {
            video_size: Some("big".into()),
            ..Media::default()
        };
        let e = apply_video(&mut defaults(), None, &bad).unwrap_err();
        assert!(e.to_string().contains("video_size"), "{e}");
    }
}
