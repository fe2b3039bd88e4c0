//! One call from INVITE to hang-up: SDP offer/answer, the media session, the events that end
//! the call, and its statistics. `listen` and `call` are the two entry points of the CLI.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use ewindow_protocol::{CallStats, EndReason, StreamDirection};
use tokio::sync::mpsc;

use crate::config::CallConfig;
use crate::control;
use crate::media::{
    AudioStreamConfig, MediaSession, RtpParams, RtpSockets, SrtpParams, VideoSource,
    VideoStreamConfig,
};
use crate::members::{Members, SIP_PORT};
use crate::sdp::{
    self, CryptoSuite, Direction, LocalAudio, LocalKeys, LocalSession, LocalVideo, Negotiated,
    SdpError, Srtp,
};
use crate::sip::{self, Call, CallEvent, Ended, IncomingInvite, SipAgent};

/// Ports our RTP sockets are taken from.
const RTP_PORTS: std::ops::Range<u16> = 20000..30000;

/// How a call went, for the final line and the exit status.
pub(crate) struct Outcome {
    pub(crate) stats: CallStats,
    /// Whether the call was established and ended as asked.
    pub(crate) ok: bool,
    /// One line for a person.
    pub(crate) line: String,
}

/// Our side of a call's media: the sockets bound for it and what we offer or accept.
struct LocalMedia {
    audio: RtpSockets,
    video: Option<RtpSockets>,
    session: LocalSession,
}

impl LocalMedia {
    /// Binds RTP sockets on `ip` for audio and (unless disabled) video, and fresh SRTP keys.
    fn bind(ip: std::net::IpAddr, cfg: &CallConfig) -> Result<LocalMedia> {
        let audio = RtpSockets::bind(ip, RTP_PORTS)?;
        let mut local_audio = LocalAudio::new(ip, audio.rtp_port(), cfg.audio.codecs.clone());
        local_audio.ptime_ms = cfg.audio.ptime_ms;
        let video = if cfg.video.codecs.is_empty() {
            None
        } else {
            Some(RtpSockets::bind(ip, RTP_PORTS)?)
        };
        let local_video = video.as_ref().map(|v| LocalVideo {
            port: v.rtp_port(),
            codecs: cfg.video.codecs.clone(),
            direction: if cfg.video.source == VideoSource::None {
                Direction::RecvOnly
            } else {
                Direction::SendRecv
            },
            bandwidth_kbps: Some(cfg.video.kbps),
            rtcp_mux: false,
        });
        // Keys are made here, per call, and never leave the process except inside SIP.
        let keys = LocalKeys {
            audio: rand::random(),
            video: rand::random(),
        };
        let session = LocalSession {
            audio: local_audio,
            video: local_video,
            srtp: cfg.srtp,
            suites: CryptoSuite::ALL.to_vec(),
            keys,
        };
        Ok(LocalMedia {
            audio,
            video,
            session,
        })
    }
}

fn srtp_params(srtp: &Option<Srtp>) -> Result<Option<SrtpParams>> {
    srtp.as_ref()
        .map(|s| SrtpParams::from_sdes(s.suite.name(), s.local_key.clone(), s.remote_key.clone()))
        .transpose()
}

/// Interoperability workarounds for a peer, chosen from its `User-Agent` / `Server`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Quirks {
    /// baresip up to 1.x reads a P_DIFF byte after the VP9 picture ID whenever the P bit is
    /// set, also in non-flexible mode (RFC 9628 has it only in flexible mode), and then
    /// fails on every inter frame: clear P for such a peer.
    pub vp9_clear_p: bool,
}

impl Quirks {
    /// The quirks of a peer product string.
    pub fn of(user_agent: Option<&str>) -> Quirks {
        let ua = user_agent.unwrap_or_default();
        let old_baresip = ["baresip v0.", "baresip v1."]
            .iter()
            .any(|p| ua.starts_with(p));
        Quirks {
            vp9_clear_p: old_baresip,
        }
    }
}

/// The media configuration for what was negotiated.
fn media_configs(
    neg: &Negotiated,
    cfg: &CallConfig,
    quirks: Quirks,
) -> Result<(AudioStreamConfig, Option<VideoStreamConfig>)> {
    let a = &neg.audio;
    let audio = AudioStreamConfig {
        codec: a.format.codec,
        rtp: RtpParams {
            pt: a.format.pt,
            remote_rtp: a.remote_rtp,
            remote_rtcp: a.remote_rtcp,
            send: a.direction.sends(),
            recv: a.direction.receives(),
            srtp: srtp_params(&a.srtp)?,
        },
        ptime_ms: a.ptime_ms.unwrap_or(cfg.audio.ptime_ms),
        source: cfg.audio.source.clone(),
        sink: cfg.audio.sink.clone(),
        echo_cancel: cfg.audio.echo_cancel,
        latency_marks: cfg.latency_marks,
    };
    let video = match &neg.video {
        Some(v) => Some(VideoStreamConfig {
            codec: v.codec,
            rtp: RtpParams {
                pt: v.pt,
                remote_rtp: v.remote_rtp,
                remote_rtcp: v.remote_rtcp,
                send: v.direction.sends(),
                recv: v.direction.receives(),
                srtp: srtp_params(&v.srtp)?,
            },
            width: cfg.video.size.0,
            height: cfg.video.size.1,
            fps: cfg.video.fps,
            // Honour the peer's b=AS / b=TIAS.
            kbps: v
                .remote_bandwidth_kbps
                .map_or(cfg.video.kbps, |b| b.min(cfg.video.kbps)),
            threads: cfg.video.threads,
            source: cfg.video.source.clone(),
            sink: cfg.video.sink,
            snapshots: cfg.video.snapshots.clone(),
            keyframe_requests: v.pli || v.fir,
            h264_single_nal: v.codec == sdp::VideoCodec::H264
                && sdp::h264_single_nal(v.fmtp.as_deref()),
            latency_marks: cfg.latency_marks,
            vp9_clear_p: quirks.vp9_clear_p,
        }),
        None => None,
    };
    Ok((audio, video))
}

pub(crate) fn write_stats(cfg: &CallConfig, stats: &CallStats) {
    let Some(path) = &cfg.stats_json else { return };
    let text = match serde_json::to_string_pretty(stats) {
        Ok(t) => t,
        Err(e) => {
            tracing::error!("serializing statistics: {e}");
            return;
        }
    };
    if let Err(e) = std::fs::write(path, text + "\n") {
        tracing::error!("writing {}: {e}", path.display());
    }
}

/// What a call refused for an SDP reason (ours or the peer's answer) is recorded as.
fn refusal_reason(e: &SdpError) -> EndReason {
    match e {
        SdpError::NoCommonCodec | SdpError::NoAudio => EndReason::NoCommonCodec,
        e if e.is_srtp() => EndReason::SrtpMismatch,
        SdpError::AddressFamily { .. } => EndReason::NotAcceptable,
        _ => EndReason::Rejected,
    }
}

/// What a refusal of our INVITE is recorded as: a 488 by its `Warning` code (RFC 3261
/// 20.43), if the peer says why.
fn rejection_reason(code: u16, warning: Option<&str>) -> EndReason {
    if code != 488 {
        return EndReason::Rejected;
    }
    let warn_code = warning.and_then(|w| w.split_whitespace().next()?.parse::<u16>().ok());
    match warn_code {
        Some(304 | 305) => EndReason::NoCommonCodec,
        Some(302) => EndReason::SrtpMismatch,
        _ => EndReason::NotAcceptable,
    }
}

fn failed(reason: EndReason, sip_status: Option<u16>, line: String) -> Outcome {
    Outcome {
        stats: CallStats {
            end_reason: Some(reason),
            sip_status,
            ..CallStats::default()
        },
        ok: false,
        line,
    }
}

/// The members of `--window`, our SIP address and the access policy. Without `--window`
/// everyone may call (development, tests against other phones).
fn window_setup(
    bind: Option<SocketAddr>,
    cfg: &mut CallConfig,
) -> Result<(SocketAddr, Option<Arc<Members>>, sip::AccessPolicy)> {
    let members = cfg.window.as_deref().map(Members::load).transpose()?;
    let bind = match (bind, &members) {
        (Some(b), _) => b,
        (None, Some(m)) => m.own_sip_addr()?,
        (None, None) => bail!("give --sip ADDR:PORT or --window FILE"),
    };
    let policy = match &members {
        Some(m) => {
            cfg.name = m.own_name();
            crate::netdev::pin_all_to(crate::netdev::interface_of(bind.ip())?);
            m.policy()
        }
        None => sip::allow_all(),
    };
    Ok((bind, members, policy))
}

/// SIGHUP reads `window.toml` again; a broken file keeps the members in use.
fn reload_on_sighup(members: Arc<Members>) -> Result<()> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut hup = signal(SignalKind::hangup()).context("installing SIGHUP handler")?;
    tokio::spawn(async move {
        while hup.recv().await.is_some() {
            if let Err(e) = members.reload() {
                tracing::error!("reloading the members (keeping the old ones): {e:#}");
            }
        }
    });
    Ok(())
}

/// `ewindow-phone listen`.
pub async fn listen(
    bind: Option<SocketAddr>,
    auto_answer: bool,
    control: Option<&Path>,
    mut cfg: CallConfig,
) -> Result<String> {
    let (bind, members, policy) = window_setup(bind, &mut cfg)?;
    let (agent, mut invites) = SipAgent::start(bind, &cfg.name, policy).await?;
    if let Some(m) = &members {
        reload_on_sighup(m.clone())?;
        tokio::spawn(m.clone().presence_loop(agent.pinger()?));
    }
    if let Some(path) = control {
        control::serve(path, members.clone(), None, agent.counters())?;
    }
    println!(
        "listening on sip:{}@{} (udp and tcp){}",
        cfg.name,
        agent.local_addr(),
        if auto_answer { ", auto-answer" } else { "" }
    );
    let mut shutdown = Shutdown::new()?;
    loop {
        let invite = tokio::select! {
            i = invites.recv() => match i { Some(i) => i, None => bail!("SIP endpoint stopped") },
            _ = shutdown.wait() => { agent.shutdown().await; return Ok("stopped".into()); }
        };
        let outcome = answer(
            &agent,
            invite,
            auto_answer,
            &cfg,
            &mut invites,
            &mut shutdown,
        )
        .await;
        write_stats(&cfg, &outcome.stats);
        if cfg.duration.is_some() {
            agent.shutdown().await;
            return if outcome.ok {
                Ok(outcome.line)
            } else {
                Err(anyhow!(outcome.line))
            };
        }
        println!("{}", outcome.line);
    }
}

pub(crate) async fn answer(
    agent: &SipAgent,
    invite: IncomingInvite,
    auto_answer: bool,
    cfg: &CallConfig,
    invites: &mut mpsc::Receiver<IncomingInvite>,
    shutdown: &mut Shutdown,
) -> Outcome {
    let started = invite.received_at;
    let who = invite.from.from_user.clone().unwrap_or_else(|| "?".into());
    let quirks = Quirks::of(invite.user_agent.as_deref());
    let media = match LocalMedia::bind(agent.local_addr().ip(), cfg) {
        Ok(m) => m,
        Err(e) => {
            agent.reject(invite, 503).await;
            return failed(
                EndReason::MediaError,
                Some(503),
                format!("refused {who}: {e:#}"),
            );
        }
    };
    let offer = String::from_utf8_lossy(&invite.body).into_owned();
    let (answer_sdp, neg) = match sdp::answer_session(&offer, &media.session, session_id(), 1) {
        Ok(x) => x,
        Err(e) => {
            let status = e.sip_status();
            let why = e.to_string();
            agent
                .refuse(invite, status, Some((e.warning_code(), &why)))
                .await;
            return failed(
                refusal_reason(&e),
                Some(status),
                format!("refused {who} with {status}: {why}"),
            );
        }
    };
    let mut call = match agent.ring(invite) {
        Ok(c) => c,
        Err(e) => return failed(EndReason::Rejected, Some(400), format!("{e:#}")),
    };
    tracing::info!(
        peer = %who,
        audio = neg.audio.format.codec.name(),
        video = neg.video.as_ref().map_or("-", |v| v.codec.name()),
        srtp = neg.audio.srtp.is_some(),
        "incoming call"
    );
    if !auto_answer {
        // Ring until the caller gives up: there is nobody to pick up yet.
        loop {
            tokio::select! {
                ev = call.next_event() => if let CallEvent::Ended(end) = ev {
                    let reason = match end { Ended::Cancelled => EndReason::Cancel, _ => EndReason::Timeout };
                    return failed(reason, None, format!("call from {who} ended before answer ({})", reason.as_str()));
                },
                _ = shutdown.wait() => {
                    let _ = call.hangup().await;
                    return failed(EndReason::LocalBye, None, "stopped while ringing".into());
                }
                Some(other) = invites.recv() => agent.reject(other, 486).await,
            }
        }
    }
    if let Err(e) = call.accept(answer_sdp) {
        return failed(EndReason::Cancel, None, format!("call from {who}: {e:#}"));
    }
    run_call(
        call,
        media,
        &neg,
        quirks,
        cfg,
        started,
        Some((agent, invites)),
        shutdown,
    )
    .await
}

/// `ewindow-phone call`. With `--window`, `uri` may be a member's name.
pub async fn call(
    uri: &str,
    bind: Option<SocketAddr>,
    ring_timeout: Duration,
    mut cfg: CallConfig,
) -> Result<String> {
    let (bind, members, policy) = window_setup(bind, &mut cfg)?;
    // A caller on the overlay uses an ephemeral port: the window's own 5060 belongs to listen.
    let bind = match (&members, bind.port()) {
        (Some(_), SIP_PORT) => SocketAddr::new(bind.ip(), 0),
        _ => bind,
    };
    let uri = match &members {
        Some(m) if !uri.contains(':') => m
            .uri_of(uri)
            .ok_or_else(|| anyhow!("`{uri}` is not a member of {}", m.own_name()))?,
        _ => uri.to_owned(),
    };
    let uri = uri.as_str();
    let (agent, mut invites) = SipAgent::start(bind, &cfg.name, policy).await?;
    let mut shutdown = Shutdown::new()?;
    let outcome = place(&agent, uri, ring_timeout, &cfg, &mut invites, &mut shutdown).await;
    write_stats(&cfg, &outcome.stats);
    agent.shutdown().await;
    if outcome.ok {
        Ok(outcome.line)
    } else {
        Err(anyhow!(outcome.line))
    }
}

pub(crate) async fn place(
    agent: &SipAgent,
    uri: &str,
    ring_timeout: Duration,
    cfg: &CallConfig,
    invites: &mut mpsc::Receiver<IncomingInvite>,
    shutdown: &mut Shutdown,
) -> Outcome {
    let media = match LocalMedia::bind(agent.local_addr().ip(), cfg) {
        Ok(m) => m,
        Err(e) => return failed(EndReason::MediaError, None, format!("{e:#}")),
    };
    if let Err(e) = media.session.audio.validate() {
        return failed(EndReason::MediaError, None, format!("our SDP: {e}"));
    }
    let offer = sdp::build_session_offer(&media.session, session_id(), 1);
    let started = Instant::now();
    let mut call = match agent.invite(uri, cfg.transport, offer) {
        Ok(c) => c,
        Err(e) => return failed(EndReason::TransportError, None, format!("{e:#}")),
    };
    let deadline = tokio::time::sleep(ring_timeout);
    tokio::pin!(deadline);
    let (answer, peer_agent) = loop {
        tokio::select! {
            ev = call.next_event() => match ev {
                CallEvent::Answered(body, agent) => break (body, agent),
                CallEvent::Ended(Ended::Rejected(code, text, warning)) => {
                    let reason = rejection_reason(code, warning.as_deref());
                    let why = warning.map(|w| format!(" ({w})")).unwrap_or_default();
                    return failed(reason, Some(code), format!("refused by {uri}: {code} {text}{why}"));
                }
                CallEvent::Ended(Ended::Timeout) => {
                    return failed(EndReason::Timeout, None, format!("no answer from {uri}"));
                }
                CallEvent::Ended(other) => {
                    return failed(EndReason::TransportError, None, format!("call to {uri} ended before answer: {other:?}"));
                }
                CallEvent::Ringing | CallEvent::Acknowledged => {}
            },
            _ = &mut deadline => {
                let _ = call.cancel().await;
                return failed(EndReason::Cancel, None, format!("no answer from {uri} within {:.0} s (cancelled)", ring_timeout.as_secs_f64()));
            }
            _ = shutdown.wait() => {
                let _ = call.hangup().await;
                return failed(EndReason::Cancel, None, "stopped before answer (cancelled)".into());
            }
            Some(other) = invites.recv() => agent.reject(other, 486).await,
        }
    };
    let quirks = Quirks::of(peer_agent.as_deref());
    let text = String::from_utf8_lossy(&answer).into_owned();
    let neg = match sdp::read_session_answer(&text, &media.session) {
        Ok(n) => n,
        Err(SdpError::SrtpRequired) => {
            let _ = call.hangup().await;
            return failed(
                EndReason::SrtpMismatch,
                None,
                format!(
                    "{uri} answered without SRTP, which is required (--srtp required); hung up"
                ),
            );
        }
        Err(e) => {
            let _ = call.hangup().await;
            return failed(
                refusal_reason(&e),
                None,
                format!("unusable answer from {uri}: {e}; hung up"),
            );
        }
    };
    tracing::info!(
        audio = neg.audio.format.codec.name(),
        video = neg.video.as_ref().map_or("-", |v| v.codec.name()),
        srtp = neg.audio.srtp.is_some(),
        "call established"
    );
    run_call(
        call,
        media,
        &neg,
        quirks,
        cfg,
        started,
        Some((agent, invites)),
        shutdown,
    )
    .await
}

/// Runs an established call until it ends; returns its outcome.
#[allow(clippy::too_many_arguments)]
async fn run_call(
    mut call: Call,
    local: LocalMedia,
    neg: &Negotiated,
    quirks: Quirks,
    cfg: &CallConfig,
    started: Instant,
    mut busy: Option<(&SipAgent, &mut mpsc::Receiver<IncomingInvite>)>,
    shutdown: &mut Shutdown,
) -> Outcome {
    let established = Instant::now();
    shutdown.established();
    let started_media = media_configs(neg, cfg, quirks).and_then(|(audio, video)| {
        let receives = audio.rtp.recv || video.as_ref().is_some_and(|v| v.rtp.recv);
        let video = match (local.video, video.as_ref()) {
            (Some(sockets), Some(v)) => Some((sockets, v)),
            _ => None,
        };
        MediaSession::start(local.audio, &audio, video, cfg.jitter_ms).map(|m| (m, receives))
    });
    let (media, receives) = match started_media {
        Ok(m) => m,
        Err(e) => {
            let _ = call.hangup().await;
            return failed(EndReason::MediaError, None, format!("media: {e:#}"));
        }
    };
    let duration = cfg.duration;
    let rtp_timeout = cfg.rtp_timeout;
    let mut tick = tokio::time::interval(Duration::from_millis(250));
    let mut last_packets = 0u64;
    let mut last_progress = Instant::now();
    let mut last_print = Instant::now();
    // (why the call ends, whether we still have to hang up)
    let (end, hang_up) = loop {
        let agent_invites = async {
            match busy.as_mut() {
                Some((_, rx)) => rx.recv().await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            ev = call.next_event() => match ev {
                CallEvent::Ended(Ended::RemoteBye) => break (EndReason::RemoteBye, false),
                CallEvent::Ended(Ended::LocalBye) => break (EndReason::LocalBye, false),
                CallEvent::Ended(Ended::Cancelled) => break (EndReason::Cancel, false),
                CallEvent::Ended(Ended::Timeout) => break (EndReason::Timeout, false),
                CallEvent::Ended(Ended::Rejected(..)) => break (EndReason::Rejected, false),
                CallEvent::Acknowledged | CallEvent::Ringing | CallEvent::Answered(..) => {}
            },
            Some(other) = agent_invites => {
                if let Some((agent, _)) = busy.as_ref() {
                    tracing::info!("busy: refusing a second call with 486");
                    agent.reject(other, 486).await;
                }
            }
            _ = shutdown.wait() => break (EndReason::LocalBye, true),
            _ = tick.tick() => {
                if duration.is_some_and(|d| established.elapsed() >= d) {
                    break (EndReason::LocalBye, true);
                }
                if let Some(err) = media.poll_error() {
                    tracing::error!("media: {err}");
                    break (EndReason::MediaError, true);
                }
                if receives {
                    let packets = media.packets_received();
                    if packets != last_packets {
                        last_packets = packets;
                        last_progress = Instant::now();
                    } else if last_progress.elapsed() >= rtp_timeout {
                        tracing::warn!("no RTP for {:.1} s: hanging up", rtp_timeout.as_secs_f64());
                        break (EndReason::RtpTimeout, true);
                    }
                }
                if last_print.elapsed() >= Duration::from_secs(1)
                    && (cfg.live_stats || shutdown.hooks.is_some())
                {
                    last_print = Instant::now();
                    let streams = media.stats();
                    if cfg.live_stats {
                        println!("{}", live_line(established.elapsed(), &streams));
                    }
                    shutdown.report(established.elapsed(), streams);
                }
            }
        }
    };
    // The call ended now; a BYE that goes unanswered must not lengthen it.
    let duration_s = established.elapsed().as_secs_f64();
    let streams = media.stats();
    let since_invite = |t: Instant| t.saturating_duration_since(started).as_millis() as u64;
    let setup_ms = media.first_decoded().map(since_invite);
    let first_rtp_ms = media.first_rtp().map(since_invite);
    media.stop();
    if hang_up {
        if let Err(e) = call.hangup().await {
            tracing::warn!("{e:#}");
        }
    }
    let stats = CallStats {
        setup_ms,
        first_rtp_ms,
        end_reason: Some(end),
        sip_status: None,
        duration_s,
        streams,
    };
    let ok = matches!(end, EndReason::LocalBye | EndReason::RemoteBye);
    let line = summary(&stats);
    Outcome { stats, ok, line }
}

fn live_line(t: Duration, streams: &[ewindow_protocol::StreamStats]) -> String {
    let mut line = format!("t={:5.1}s", t.as_secs_f64());
    for s in streams {
        line.push_str(&format!(
            " | {} {} {}: {} pkts {} B decoded {} lost {} jitter {:.1} ms",
            s.media,
            s.codec,
            match s.direction {
                Some(StreamDirection::Send) => "send",
                _ => "recv",
            },
            s.packets,
            s.bytes,
            s.decoded,
            s.lost,
            s.jitter_ms
        ));
        if let Some(rtt) = s.rtt_ms {
            line.push_str(&format!(" rtt {rtt:.1} ms"));
        }
    }
    line
}

fn summary(stats: &CallStats) -> String {
    let reason = stats.end_reason.map_or("?", EndReason::as_str);
    let mut line = format!("call ended ({reason}) after {:.1} s", stats.duration_s);
    for media in ["audio", "video"] {
        let send = stats.stream(media, StreamDirection::Send);
        let recv = stats.stream(media, StreamDirection::Recv);
        let Some(any) = send.or(recv) else { continue };
        line.push_str(&format!(
            "; {media} {}{} sent {} packets, received {}, decoded {}",
            any.codec,
            if any.srtp { " (srtp)" } else { "" },
            send.map_or(0, |s| s.packets),
            recv.map_or(0, |s| s.packets),
            recv.map_or(0, |s| s.decoded)
        ));
    }
    line
}

fn session_id() -> u64 {
    rand::random::<u32>() as u64
}

/// SIGINT and SIGTERM, as a future that can be awaited repeatedly.
/// What ends a call from our side (SIGINT, SIGTERM, and in window mode the policy's hang-up),
/// and, in window mode, what a call reports while it runs.
pub struct Shutdown {
    int: tokio::signal::unix::Signal,
    term: tokio::signal::unix::Signal,
    /// Cancelled when the window policy ends this call.
    stop: Option<tokio_util::sync::CancellationToken>,
    /// Window mode: told when the call is up, and given its statistics each second.
    pub hooks: Option<CallHooks>,
}

/// Reports of one call in window mode.
pub struct CallHooks {
    /// Sent once, when the call is up.
    pub up: Option<tokio::sync::oneshot::Sender<()>>,
    /// The other window.
    pub peer: String,
    /// The running call's statistics, refreshed each second.
    pub live: Arc<std::sync::Mutex<Option<ewindow_protocol::phone::LiveCall>>>,
    /// Woken at each refresh.
    pub changed: Arc<tokio::sync::Notify>,
}

impl Shutdown {
    pub(crate) fn new() -> Result<Self> {
        use tokio::signal::unix::{signal, SignalKind};
        Ok(Shutdown {
            int: signal(SignalKind::interrupt()).context("installing SIGINT handler")?,
            term: signal(SignalKind::terminate()).context("installing SIGTERM handler")?,
            stop: None,
            hooks: None,
        })
    }

    /// A shutdown that also ends when `stop` is cancelled (window mode).
    pub fn with_stop(stop: tokio_util::sync::CancellationToken, hooks: CallHooks) -> Result<Self> {
        let mut s = Shutdown::new()?;
        s.stop = Some(stop);
        s.hooks = Some(hooks);
        Ok(s)
    }

    pub(crate) async fn wait(&mut self) {
        let stop = async {
            match &self.stop {
                Some(t) => t.cancelled().await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = self.int.recv() => {},
            _ = self.term.recv() => {},
            _ = stop => {},
        }
    }

    fn established(&mut self) {
        if let Some(up) = self.hooks.as_mut().and_then(|h| h.up.take()) {
            let _ = up.send(());
        }
    }

    fn report(&self, duration: Duration, streams: Vec<ewindow_protocol::StreamStats>) {
        if let Some(h) = &self.hooks {
            *h.live.lock().unwrap_or_else(|e| e.into_inner()) =
                Some(ewindow_protocol::phone::LiveCall {
                    peer: h.peer.clone(),
                    duration_s: duration.as_secs_f64(),
                    streams,
                });
            h.changed.notify_one();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn baresip_up_to_1_x_gets_the_vp9_p_bit_quirk_and_others_do_not() {
        assert!(Quirks::of(Some("baresip v1.0.0 (x86_64/linux)")).vp9_clear_p);
        assert!(Quirks::of(Some("baresip v0.6.6 (arm/linux)")).vp9_clear_p);
        assert!(!Quirks::of(Some("baresip v3.10.1 (x86_64/linux)")).vp9_clear_p);
        assert!(!Quirks::of(Some("ewindow-phone/0.1.0")).vp9_clear_p);
        assert!(!Quirks::of(None).vp9_clear_p);
    }

    #[test]
    fn a_488_is_recorded_by_its_warning_code() {
        let r = |code, w| rejection_reason(code, w);
        assert_eq!(r(488, Some("305 ewindow \"x\"")), EndReason::NoCommonCodec);
        assert_eq!(r(488, Some("304 host \"x\"")), EndReason::NoCommonCodec);
        assert_eq!(r(488, Some("302 ewindow \"x\"")), EndReason::SrtpMismatch);
        assert_eq!(r(488, Some("301 ewindow \"x\"")), EndReason::NotAcceptable);
        assert_eq!(r(488, Some("garbage")), EndReason::NotAcceptable);
        assert_eq!(r(488, None), EndReason::NotAcceptable);
        assert_eq!(r(486, Some("305 x \"y\"")), EndReason::Rejected);
        assert_eq!(refusal_reason(&SdpError::SrtpOff), EndReason::SrtpMismatch);
        assert_eq!(refusal_reason(&SdpError::NoAudio), EndReason::NoCommonCodec);
        assert_eq!(
            refusal_reason(&SdpError::Parse("x".into())),
            EndReason::Rejected
        );
    }
}
