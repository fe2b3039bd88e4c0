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
use ewindow_protocol::phone::{LiveCall, PhoneStatus};
use ewindow_protocol::EndReason as StatsEnd;
use tokio::sync::{mpsc, oneshot, watch, Notify};
use tokio_util::sync::CancellationToken;

use crate::call::{self, CallHooks, Shutdown};
use crate::config::CallConfig;
use crate::control::{self, Command, Handle};
use crate::members::Members;
use crate::policy::{Action, CallId, EndReason, Input, Policy, Settings};
use crate::sip::{IncomingInvite, SipAgent};

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
        StatsEnd::NoCommonCodec | StatsEnd::SrtpMismatch | StatsEnd::NotAcceptable => {
            EndReason::Refused(488)
        }
        StatsEnd::Timeout => EndReason::NoAnswer,
        _ => EndReason::Error,
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

/// Runs the window until SIGINT/SIGTERM.
pub async fn run(
    window_file: &Path,
    control_path: Option<&Path>,
    cli: CallConfig,
) -> Result<String> {
    wait_for(window_file).await;
    let members = Members::load(window_file)?;
    let bind = members.own_sip_addr()?;
    let cfg = cli.for_window(
        window_file.to_owned(),
        members.own_name(),
        &members.config().media,
        crate::board::model().as_deref(),
    )?;
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
    let (agent, mut invites) = SipAgent::start(bind, &cfg.name, members.policy()).await?;
    let agent = Arc::new(agent);
    tokio::spawn(members.clone().presence_loop(agent.pinger()?));
    println!(
        "window {} on sip:{}@{}",
        cfg.name,
        cfg.name,
        agent.local_addr()
    );

    let (cmd_tx, mut commands) = mpsc::channel::<Command>(16);
    let (status_tx, status_rx) = watch::channel(PhoneStatus::default());
    // the button says what the control socket says: next, curtain
    crate::input::spawn(
        &members.config().button,
        Path::new(crate::input::INPUT_DIR),
        cmd_tx.clone(),
    )?;
    if let Some(path) = control_path {
        control::serve(
            path,
            Some(members.clone()),
            Some(Handle {
                commands: cmd_tx,
                status: status_rx,
            }),
            agent.counters(),
        )?;
    }
    let mut hup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())?;
    let mut shutdown = Shutdown::new()?;

    let started = Instant::now();
    let now_ms = || started.elapsed().as_millis() as u64;
    let mut policy = Policy::new(cfg.name.clone(), settings(&members));
    let (ev_tx, mut events) = mpsc::channel::<CallEvent>(16);
    let mut calls: HashMap<CallId, RunningCall> = HashMap::new();
    let mut pending: HashMap<u64, IncomingInvite> = HashMap::new();
    let mut next_invite = 0u64;
    let live: Arc<Mutex<Option<LiveCall>>> = Arc::new(Mutex::new(None));
    let live_changed = Arc::new(Notify::new());
    let cfg = Arc::new(cfg);
    let cx = CallContext {
        agent: agent.clone(),
        cfg: cfg.clone(),
        events: ev_tx.clone(),
        live: live.clone(),
        changed: live_changed.clone(),
    };

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
                        spawn_call(call, to, Job::Dial(uri), stop, cx.clone());
                    }
                    Action::Answer { invite, call } => {
                        let Some(inv) = pending.remove(&invite) else {
                            continue;
                        };
                        let peer = inv.from.from_user.clone().unwrap_or_default();
                        let stop = CancellationToken::new();
                        calls.insert(call, RunningCall { stop: stop.clone() });
                        spawn_call(call, peer, Job::Answer(Box::new(inv)), stop, cx.clone());
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
                window: cfg.name.clone(),
                state: policy.screen(ewindow_io::localtime::minute_of_day()),
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
    Ok(format!("window {} stopped", cfg.name))
}

enum Job {
    Dial(String),
    Answer(Box<IncomingInvite>),
}

/// What every call task shares with the loop.
#[derive(Clone)]
struct CallContext {
    agent: Arc<SipAgent>,
    cfg: Arc<CallConfig>,
    /// Where a call reports that it is up and that it ended.
    events: mpsc::Sender<CallEvent>,
    /// The call in progress, for the status; `changed` is notified at each update.
    live: Arc<Mutex<Option<LiveCall>>>,
    changed: Arc<Notify>,
}

fn spawn_call(id: CallId, peer: String, job: Job, stop: CancellationToken, cx: CallContext) {
    let CallContext {
        agent,
        cfg,
        events,
        live,
        changed,
    } = cx;
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
                    &cfg,
                    &mut no_invites,
                    &mut shutdown,
                )
                .await
            }
            Job::Answer(inv) => {
                call::answer(&agent, *inv, true, &cfg, &mut no_invites, &mut shutdown).await
            }
        };
        tracing::info!(peer = %peer, "{}", outcome.line);
        call::write_stats(&cfg, &outcome.stats);
        let reason = outcome.stats.end_reason.unwrap_or(StatsEnd::TransportError);
        let _ = events
            .send(CallEvent::Ended(id, reason, outcome.stats.sip_status))
            .await;
    });
}
