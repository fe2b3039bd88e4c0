//! One call from INVITE to hang-up: SDP offer/answer, the media session, the events that end
//! the call, and its statistics. `listen` and `call` are the two entry points of the CLI.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use ewindow_protocol::{CallStats, EndReason, StreamDirection};
use tokio::sync::mpsc;

use crate::media::{AudioStreamConfig, MediaSession, RtpParams, RtpSockets};
use crate::sdp::{self, LocalAudio, NegotiatedAudio, SdpError};
use crate::sip::{self, Call, CallEvent, Ended, IncomingInvite, SipAgent};
use crate::CommonArgs;

/// Ports our RTP sockets are taken from.
const RTP_PORTS: std::ops::Range<u16> = 20000..30000;

/// How a call went, for the final line and the exit status.
struct Outcome {
    stats: CallStats,
    /// Whether the call was established and ended as asked.
    ok: bool,
    /// One line for a person.
    line: String,
}

fn local_audio(sockets: &RtpSockets, args: &CommonArgs) -> LocalAudio {
    let ip = sockets
        .rtp
        .local_addr()
        .map(|a| a.ip())
        .unwrap_or(std::net::Ipv4Addr::LOCALHOST.into());
    let mut local = LocalAudio::new(ip, sockets.rtp_port(), args.codecs.0.clone());
    local.ptime_ms = args.ptime;
    local
}

fn stream_config(neg: &NegotiatedAudio, args: &CommonArgs) -> AudioStreamConfig {
    AudioStreamConfig {
        codec: neg.format.codec,
        rtp: RtpParams {
            pt: neg.format.pt,
            remote_rtp: neg.remote_rtp,
            remote_rtcp: neg.remote_rtcp,
            send: neg.direction.sends(),
            recv: neg.direction.receives(),
            srtp: None,
        },
        ptime_ms: neg.ptime_ms.unwrap_or(args.ptime),
        source: args.audio_source.clone(),
        sink: args.audio_sink.clone(),
        echo_cancel: args.echo_cancel,
    }
}

fn write_stats(args: &CommonArgs, stats: &CallStats) {
    let Some(path) = &args.stats_json else { return };
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

/// `ewindow-phone listen`.
pub async fn listen(bind: SocketAddr, auto_answer: bool, args: CommonArgs) -> Result<String> {
    let (agent, mut invites) = SipAgent::start(bind, &args.name, sip::allow_all()).await?;
    println!(
        "listening on sip:{}@{} (udp and tcp){}",
        args.name,
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
            &args,
            &mut invites,
            &mut shutdown,
        )
        .await;
        write_stats(&args, &outcome.stats);
        if args.duration.is_some() {
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

async fn answer(
    agent: &SipAgent,
    invite: IncomingInvite,
    auto_answer: bool,
    args: &CommonArgs,
    invites: &mut mpsc::Receiver<IncomingInvite>,
    shutdown: &mut Shutdown,
) -> Outcome {
    let started = invite.received_at;
    let who = invite.from.from_user.clone().unwrap_or_else(|| "?".into());
    let sockets = match RtpSockets::bind(agent.local_addr().ip(), RTP_PORTS) {
        Ok(s) => s,
        Err(e) => {
            agent.reject(invite, 503).await;
            return failed(
                EndReason::MediaError,
                Some(503),
                format!("refused {who}: {e:#}"),
            );
        }
    };
    let local = local_audio(&sockets, args);
    let offer = String::from_utf8_lossy(&invite.body).into_owned();
    let (answer_sdp, neg) = match sdp::answer_offer(&offer, &local, session_id(), 1) {
        Ok(x) => x,
        Err(e) => {
            let status = e.sip_status();
            agent.reject(invite, status).await;
            let reason = if matches!(e, SdpError::NoCommonCodec | SdpError::NoAudio) {
                EndReason::NoCommonCodec
            } else {
                EndReason::Rejected
            };
            return failed(
                reason,
                Some(status),
                format!("refused {who} with {status}: {e}"),
            );
        }
    };
    if neg.is_secure() {
        agent.reject(invite, 488).await;
        return failed(
            EndReason::Rejected,
            Some(488),
            format!("refused {who} with 488: SRTP (RTP/SAVP) offered, not supported yet"),
        );
    }
    let mut call = match agent.ring(invite) {
        Ok(c) => c,
        Err(e) => return failed(EndReason::Rejected, Some(400), format!("{e:#}")),
    };
    tracing::info!(peer = %who, codec = neg.format.codec.name(), "incoming call");
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
        sockets,
        &neg,
        args,
        started,
        Some((agent, invites)),
        shutdown,
    )
    .await
}

/// `ewindow-phone call`.
pub async fn call(
    uri: &str,
    bind: SocketAddr,
    ring_timeout: Duration,
    args: CommonArgs,
) -> Result<String> {
    let (agent, mut invites) = SipAgent::start(bind, &args.name, sip::allow_all()).await?;
    let mut shutdown = Shutdown::new()?;
    let outcome = place(
        &agent,
        uri,
        ring_timeout,
        &args,
        &mut invites,
        &mut shutdown,
    )
    .await;
    write_stats(&args, &outcome.stats);
    agent.shutdown().await;
    if outcome.ok {
        Ok(outcome.line)
    } else {
        Err(anyhow!(outcome.line))
    }
}

async fn place(
    agent: &SipAgent,
    uri: &str,
    ring_timeout: Duration,
    args: &CommonArgs,
    invites: &mut mpsc::Receiver<IncomingInvite>,
    shutdown: &mut Shutdown,
) -> Outcome {
    let sockets = match RtpSockets::bind(agent.local_addr().ip(), RTP_PORTS) {
        Ok(s) => s,
        Err(e) => return failed(EndReason::MediaError, None, format!("{e:#}")),
    };
    let local = local_audio(&sockets, args);
    if let Err(e) = local.validate() {
        return failed(EndReason::MediaError, None, format!("our SDP: {e}"));
    }
    let offer = sdp::build_offer(&local, session_id(), 1);
    let started = Instant::now();
    let mut call = match agent.invite(uri, args.transport, offer) {
        Ok(c) => c,
        Err(e) => return failed(EndReason::TransportError, None, format!("{e:#}")),
    };
    let deadline = tokio::time::sleep(ring_timeout);
    tokio::pin!(deadline);
    let answer = loop {
        tokio::select! {
            ev = call.next_event() => match ev {
                CallEvent::Answered(body) => break body,
                CallEvent::Ended(Ended::Rejected(code, text)) => {
                    let reason = if code == 488 { EndReason::NoCommonCodec } else { EndReason::Rejected };
                    return failed(reason, Some(code), format!("refused by {uri}: {code} {text}"));
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
    let text = String::from_utf8_lossy(&answer).into_owned();
    let neg = match sdp::read_answer(&text, &local) {
        Ok(n) if !n.is_secure() => n,
        Ok(_) => {
            let _ = call.hangup().await;
            return failed(
                EndReason::Rejected,
                None,
                "the answer uses SRTP, which we did not offer; hung up".into(),
            );
        }
        Err(e) => {
            let _ = call.hangup().await;
            return failed(
                EndReason::NoCommonCodec,
                None,
                format!("unusable answer from {uri}: {e}; hung up"),
            );
        }
    };
    tracing::info!(codec = neg.format.codec.name(), "call established");
    run_call(
        call,
        sockets,
        &neg,
        args,
        started,
        Some((agent, invites)),
        shutdown,
    )
    .await
}

/// Runs an established call until it ends; returns its outcome.
async fn run_call(
    mut call: Call,
    sockets: RtpSockets,
    neg: &NegotiatedAudio,
    args: &CommonArgs,
    started: Instant,
    mut busy: Option<(&SipAgent, &mut mpsc::Receiver<IncomingInvite>)>,
    shutdown: &mut Shutdown,
) -> Outcome {
    let established = Instant::now();
    let cfg = stream_config(neg, args);
    let media = match MediaSession::start(sockets, &cfg, None, args.jitter_ms) {
        Ok(m) => m,
        Err(e) => {
            let _ = call.hangup().await;
            return failed(EndReason::MediaError, None, format!("media: {e:#}"));
        }
    };
    let duration = args.duration.map(Duration::from_secs_f64);
    let rtp_timeout = args.rtp_timeout();
    let mut tick = tokio::time::interval(Duration::from_millis(250));
    let mut last_packets = 0u64;
    let mut last_progress = Instant::now();
    let mut last_print = Instant::now();
    let end = loop {
        let agent_invites = async {
            match busy.as_mut() {
                Some((_, rx)) => rx.recv().await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            ev = call.next_event() => match ev {
                CallEvent::Ended(Ended::RemoteBye) => break EndReason::RemoteBye,
                CallEvent::Ended(Ended::LocalBye) => break EndReason::LocalBye,
                CallEvent::Ended(Ended::Cancelled) => break EndReason::Cancel,
                CallEvent::Ended(Ended::Timeout) => break EndReason::Timeout,
                CallEvent::Ended(Ended::Rejected(..)) => break EndReason::Rejected,
                CallEvent::Acknowledged | CallEvent::Ringing | CallEvent::Answered(_) => {}
            },
            Some(other) = agent_invites => {
                if let Some((agent, _)) = busy.as_ref() {
                    tracing::info!("busy: refusing a second call with 486");
                    agent.reject(other, 486).await;
                }
            }
            _ = shutdown.wait() => {
                let _ = call.hangup().await;
                break EndReason::LocalBye;
            }
            _ = tick.tick() => {
                if duration.is_some_and(|d| established.elapsed() >= d) {
                    if let Err(e) = call.hangup().await { tracing::warn!("{e:#}"); }
                    break EndReason::LocalBye;
                }
                if let Some(err) = media.poll_error() {
                    tracing::error!("media: {err}");
                    let _ = call.hangup().await;
                    break EndReason::MediaError;
                }
                if cfg.rtp.recv {
                    let packets = media.packets_received();
                    if packets != last_packets {
                        last_packets = packets;
                        last_progress = Instant::now();
                    } else if last_progress.elapsed() >= rtp_timeout {
                        tracing::warn!("no RTP for {:.1} s", rtp_timeout.as_secs_f64());
                        let _ = call.hangup().await;
                        break EndReason::RtpTimeout;
                    }
                }
                if args.live_stats && last_print.elapsed() >= Duration::from_secs(1) {
                    last_print = Instant::now();
                    println!("{}", live_line(established.elapsed(), &media.stats()));
                }
            }
        }
    };
    let streams = media.stats();
    let since_invite = |t: Instant| t.saturating_duration_since(started).as_millis() as u64;
    let setup_ms = media.first_decoded().map(since_invite);
    let first_rtp_ms = media.first_rtp().map(since_invite);
    media.stop();
    let stats = CallStats {
        setup_ms,
        first_rtp_ms,
        end_reason: Some(end),
        sip_status: None,
        duration_s: established.elapsed().as_secs_f64(),
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
    let send = stats.stream("audio", StreamDirection::Send);
    let recv = stats.stream("audio", StreamDirection::Recv);
    format!(
        "call ended ({reason}) after {:.1} s: audio {} sent {} packets, received {}, decoded {}",
        stats.duration_s,
        send.or(recv).map_or("-", |s| s.codec.as_str()),
        send.map_or(0, |s| s.packets),
        recv.map_or(0, |s| s.packets),
        recv.map_or(0, |s| s.decoded)
    )
}

fn session_id() -> u64 {
    rand::random::<u32>() as u64
}

/// SIGINT and SIGTERM, as a future that can be awaited repeatedly.
struct Shutdown {
    int: tokio::signal::unix::Signal,
    term: tokio::signal::unix::Signal,
}

impl Shutdown {
    fn new() -> Result<Self> {
        use tokio::signal::unix::{signal, SignalKind};
        Ok(Shutdown {
            int: signal(SignalKind::interrupt()).context("installing SIGINT handler")?,
            term: signal(SignalKind::terminate()).context("installing SIGTERM handler")?,
        })
    }

    async fn wait(&mut self) {
        tokio::select! {
            _ = self.int.recv() => {},
            _ = self.term.recv() => {},
        }
    }
}
