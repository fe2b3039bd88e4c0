//! SIP signalling: the only module that knows rsipstack (pinned `=0.7.14`).
//!
//! [`SipAgent`] listens on UDP and TCP on one address, answers what needs no decision
//! (OPTIONS, requests inside a dialog, malformed requests with 400, requests refused by the
//! access policy with 403), and hands every new INVITE to the application as an
//! [`IncomingInvite`]. Calls in both directions are [`Call`]s that deliver [`CallEvent`]s.
//! Swapping the SIP stack means rewriting this file only.

use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use ewindow_protocol::phone::SipCounters;
use rsipstack::dialog::dialog::{Dialog, DialogState, DialogStateReceiver, TerminatedReason};
use rsipstack::dialog::dialog_layer::DialogLayer;
use rsipstack::dialog::invitation::InviteOption;
use rsipstack::dialog::invite_dialog::InviteDialog;
use rsipstack::sip::prelude::{HeadersExt, ToTypedHeader};
use rsipstack::sip::{Header, Method, Response, SipMessage, StatusCode, Version};
use rsipstack::transaction::endpoint::TransportEventInspector;
use rsipstack::transaction::transaction::Transaction;
use rsipstack::transaction::{Endpoint, TransactionReceiver};
use rsipstack::transport::udp::UdpConnection;
use rsipstack::transport::{TcpListenerConnection, TransportEvent, TransportLayer};
use rsipstack::EndpointBuilder;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// Methods we implement, for `Allow`.
pub const ALLOW: &str = "INVITE, ACK, CANCEL, BYE, OPTIONS";
/// Bodies we accept, for `Accept`.
pub const ACCEPT: &str = "application/sdp";
/// Our `User-Agent`.
pub const USER_AGENT: &str = concat!("ewindow-phone/", env!("CARGO_PKG_VERSION"));

/// SIP transport.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Transport {
    /// SIP over UDP.
    Udp,
    /// SIP over TCP.
    Tcp,
}

/// What the access policy sees of a request from outside a dialog.
#[derive(Clone, Debug)]
pub struct Requester {
    /// The request's source address (Via `received`/`rport`, else the Via host).
    pub source: Option<SocketAddr>,
    /// The user part of the From URI.
    pub from_user: Option<String>,
}

/// Decides whether a new INVITE or OPTIONS may be served; `false` answers 403.
pub type AccessPolicy = Arc<dyn Fn(&Requester) -> bool + Send + Sync>;

/// A policy that lets everyone in (until the roster arrives).
pub fn allow_all() -> AccessPolicy {
    Arc::new(|_| true)
}

/// A new INVITE waiting for the application's decision.
pub struct IncomingInvite {
    tx: Transaction,
    /// Who sent it.
    pub from: Requester,
    /// The transport it came on.
    pub transport: Transport,
    /// The SDP offer (may be empty: offerless INVITE).
    pub body: Vec<u8>,
    /// The caller's `User-Agent`, for peer quirks.
    pub user_agent: Option<String>,
    /// When it arrived.
    pub received_at: Instant,
}

/// How a call ended, from SIP's point of view.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Ended {
    /// The peer hung up (BYE).
    RemoteBye,
    /// We hung up.
    LocalBye,
    /// The caller cancelled before the answer.
    Cancelled,
    /// The callee refused with a final status: its code, its reason phrase and the text of
    /// its `Warning` header, if it sent one (`305 host "why"`).
    Rejected(u16, String, Option<String>),
    /// No answer, or no ACK, in time.
    Timeout,
}

/// What happens on a call.
#[derive(Clone, Debug)]
pub enum CallEvent {
    /// The callee is ringing (180/183).
    Ringing,
    /// The callee answered (200) with this SDP body (and its `Server` or `User-Agent`, for
    /// peer quirks); the ACK is already sent.
    Answered(Vec<u8>, Option<String>),
    /// The caller acknowledged our 200 (ACK).
    Acknowledged,
    /// The call is over.
    Ended(Ended),
}

/// Which side of the call we are.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Role {
    Caller,
    Callee,
}

/// A call in either direction.
pub struct Call {
    dialog: InviteDialog,
    events: DialogStateReceiver,
    role: Role,
    layer: Arc<DialogLayer>,
    /// Our SDP, used to answer session refreshes.
    local_sdp: Arc<Mutex<Vec<u8>>>,
    ended: bool,
    /// A caller's: the `Warning` of the final response, once the INVITE transaction ends.
    warning: Option<tokio::sync::oneshot::Receiver<Option<String>>>,
}

/// A SIP user agent listening on UDP and TCP.
pub struct SipAgent {
    endpoint: Endpoint,
    layer: Arc<DialogLayer>,
    token: CancellationToken,
    local: SocketAddr,
    user: String,
}

/// Reads the SIP stack's counters (for the control socket's `sip`).
pub type SipCountersFn = Arc<dyn Fn() -> SipCounters + Send + Sync>;

/// Picks a port free on both UDP and TCP at `ip` (rsipstack advertises port 0 literally).
fn concrete_port(addr: SocketAddr) -> Result<SocketAddr> {
    if addr.port() != 0 {
        return Ok(addr);
    }
    for _ in 0..50 {
        let udp = std::net::UdpSocket::bind(SocketAddr::new(addr.ip(), 0))?;
        let port = udp.local_addr()?.port();
        if std::net::TcpListener::bind(SocketAddr::new(addr.ip(), port)).is_ok() {
            return Ok(SocketAddr::new(addr.ip(), port));
        }
    }
    bail!("no port free for both UDP and TCP on {}", addr.ip())
}

impl SipAgent {
    /// Listens on UDP and TCP at `bind` and starts serving. New INVITEs arrive on the returned
    /// channel; `policy` decides who may call or ping us.
    pub async fn start(
        bind: SocketAddr,
        user: &str,
        policy: AccessPolicy,
    ) -> Result<(SipAgent, mpsc::Receiver<IncomingInvite>)> {
        if bind.ip().is_unspecified() {
            bail!("listen on a concrete address (the overlay address), not {bind}");
        }
        let bind = concrete_port(bind)?;
        std::net::TcpListener::bind(bind)
            .with_context(|| format!("SIP TCP port {bind} is taken"))?;
        let token = CancellationToken::new();
        let layer = TransportLayer::new(token.child_token());
        let socket =
            std::net::UdpSocket::bind(bind).with_context(|| format!("binding SIP UDP {bind}"))?;
        crate::netdev::pin(&socket)?;
        socket.set_nonblocking(true)?;
        let socket = tokio::net::UdpSocket::from_std(socket)?;
        let udp = UdpConnection::from_socket(Arc::new(socket), None, Some(token.child_token()))
            .await
            .with_context(|| format!("SIP UDP {bind}"))?;
        layer.add_transport(udp.into());
        let tcp = TcpListenerConnection::new(bind, None)
            .await
            .with_context(|| format!("binding SIP TCP {bind}"))?;
        layer.add_transport(tcp.into());
        let endpoint = EndpointBuilder::new()
            .with_user_agent(USER_AGENT)
            .with_transport_layer(layer)
            .with_cancel_token(token.child_token())
            .with_transport_inspector(Box::new(Guard))
            .build();
        let incoming = endpoint
            .incoming_transactions()
            .map_err(|e| anyhow!("SIP endpoint: {e}"))?;
        let dialogs = Arc::new(DialogLayer::new(endpoint.inner.clone()));
        let inner = endpoint.inner.clone();
        tokio::spawn(async move {
            let _ = inner.serve().await;
        });
        // Let the TCP listener bind before anyone is told where we are.
        tokio::time::sleep(Duration::from_millis(50)).await;
        let (tx, rx) = mpsc::channel(8);
        tokio::spawn(serve_incoming(
            incoming,
            dialogs.clone(),
            tx,
            policy,
            token.clone(),
        ));
        Ok((
            SipAgent {
                endpoint,
                layer: dialogs,
                token,
                local: bind,
                user: user.to_string(),
            },
            rx,
        ))
    }

    /// A reader of the stack's transactions and dialogs, for the control socket.
    pub fn counters(&self) -> SipCountersFn {
        let inner = self.endpoint.inner.clone();
        let layer = self.layer.clone();
        Arc::new(move || {
            let stats = inner.get_stats();
            SipCounters {
                transactions: stats.running_transactions as u64,
                finished_transactions: stats.finished_transactions as u64,
                waiting_ack: stats.waiting_ack as u64,
                dialogs: layer.len() as u64,
            }
        })
    }

    /// The address we listen on (UDP and TCP).
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    fn contact(&self, transport: Transport) -> Result<rsipstack::sip::Uri> {
        let text = match transport {
            Transport::Udp => format!("sip:{}@{}", self.user, fmt_host(self.local)),
            Transport::Tcp => format!("sip:{}@{};transport=tcp", self.user, fmt_host(self.local)),
        };
        text.as_str()
            .try_into()
            .map_err(|e| anyhow!("bad contact {text}: {e}"))
    }

    /// Refuses an INVITE with a final status (486, 488, 403, 400 …).
    pub async fn reject(&self, invite: IncomingInvite, status: u16) {
        self.refuse(invite, status, None).await;
    }

    /// Refuses an INVITE with a final status and, if given, a `Warning` header (RFC 3261
    /// 20.43: a three-digit code such as 301 or 305, and a text saying why).
    pub async fn refuse(&self, invite: IncomingInvite, status: u16, warning: Option<(u16, &str)>) {
        let mut tx = invite.tx;
        let code = StatusCode::from(status);
        let mut headers = vec![Header::Allow(ALLOW.into()), Header::Accept(ACCEPT.into())];
        if let Some((code, text)) = warning {
            headers.push(Header::Warning(warning_value(code, text).into()));
        }
        if let Err(e) = tx.reply_with(code, headers, None).await {
            tracing::warn!("sending {status}: {e}");
        }
        // Keep the transaction alive so that Timer G resends and the ACK is absorbed.
        tokio::spawn(async move { while tx.receive().await.is_some() {} });
    }

    /// Sends 180 Ringing for an INVITE and returns the call, not yet answered.
    pub fn ring(&self, invite: IncomingInvite) -> Result<Call> {
        let mut tx = invite.tx;
        let contact = self.contact(invite.transport)?;
        let (state_tx, events) = self.layer.new_dialog_state_channel();
        let dialog =
            match self
                .layer
                .get_or_create_server_invite(&tx, state_tx, None, Some(contact))
            {
                Ok(d) => d,
                Err(e) => {
                    tokio::spawn(async move {
                        let _ = tx.reply(StatusCode::BadRequest).await;
                        while tx.receive().await.is_some() {}
                    });
                    bail!("unusable INVITE: {e}");
                }
            };
        let mut handler = dialog.clone();
        tokio::spawn(async move {
            if let Err(e) = handler.handle(&mut tx).await {
                tracing::debug!("server INVITE transaction: {e}");
            }
        });
        dialog
            .ringing(None, None)
            .map_err(|e| anyhow!("sending 180: {e}"))?;
        Ok(Call {
            dialog,
            events,
            role: Role::Callee,
            layer: self.layer.clone(),
            local_sdp: Arc::new(Mutex::new(Vec::new())),
            ended: false,
            warning: None,
        })
    }

    /// Calls `target` (a SIP URI) over `transport` with an SDP offer.
    pub fn invite(&self, target: &str, transport: Transport, offer: String) -> Result<Call> {
        let mut target = target.to_string();
        if transport == Transport::Tcp && !target.to_ascii_lowercase().contains("transport=") {
            target.push_str(";transport=tcp");
        }
        let callee: rsipstack::sip::Uri = target
            .as_str()
            .try_into()
            .map_err(|e| anyhow!("bad SIP URI `{target}`: {e}"))?;
        let caller_text = format!("sip:{}@{}", self.user, fmt_host(self.local));
        let caller = caller_text
            .as_str()
            .try_into()
            .map_err(|e| anyhow!("bad caller URI {caller_text}: {e}"))?;
        let opt = InviteOption {
            caller_display_name: Some(self.user.clone()),
            caller,
            callee,
            contact: self.contact(transport)?,
            content_type: Some("application/sdp".into()),
            offer: Some(offer.clone().into_bytes()),
            ..Default::default()
        };
        let (state_tx, events) = self.layer.new_dialog_state_channel();
        let (dialog, join) = self
            .layer
            .do_invite_async(opt, state_tx)
            .map_err(|e| anyhow!("sending INVITE to {target}: {e}"))?;
        // The join handle must not be dropped while unconfirmed (that cancels the INVITE). It
        // yields the final response: a refusal's `Warning` says why.
        let (warning_tx, warning_rx) = tokio::sync::oneshot::channel();
        tokio::spawn(async move {
            let warning = match join.await {
                Ok(Ok((_, Some(resp)))) => resp.header_value("Warning"),
                _ => None,
            };
            let _ = warning_tx.send(warning);
        });
        Ok(Call {
            dialog,
            events,
            role: Role::Caller,
            layer: self.layer.clone(),
            local_sdp: Arc::new(Mutex::new(offer.into_bytes())),
            ended: false,
            warning: Some(warning_rx),
        })
    }

    /// A handle that sends OPTIONS from this agent, for presence; it outlives nothing: once the
    /// agent shuts down its pings fail.
    pub fn pinger(&self) -> Result<Pinger> {
        Ok(Pinger {
            inner: self.endpoint.inner.clone(),
            contact: self.contact(Transport::Udp)?,
        })
    }
}

/// Sends OPTIONS (see [`SipAgent::pinger`]).
#[derive(Clone)]
pub struct Pinger {
    inner: rsipstack::transaction::endpoint::EndpointInnerRef,
    contact: rsipstack::sip::Uri,
}

impl Pinger {
    /// Sends OPTIONS to `target` (a SIP URI) over UDP and waits up to `timeout` for a final
    /// response. Returns the round-trip time of a 2xx; any other answer or none is an error.
    pub async fn ping(&self, target: &str, timeout: Duration) -> Result<Duration> {
        use rsipstack::sip::typed;
        use rsipstack::transaction::key::{TransactionKey, TransactionRole};
        let uri: rsipstack::sip::Uri = target
            .try_into()
            .map_err(|e| anyhow!("bad SIP URI `{target}`: {e}"))?;
        let inner = &self.inner;
        let via = inner
            .get_via(None, None)
            .map_err(|e| anyhow!("no SIP address to send from: {e}"))?;
        let from = typed::From {
            display_name: None,
            uri: self.contact.clone(),
            params: vec![rsipstack::sip::Param::Tag(
                rsipstack::transaction::make_tag(),
            )],
        };
        let to = typed::To {
            display_name: None,
            uri: uri.clone(),
            params: vec![],
        };
        let req = inner.make_request(Method::Options, uri, via, from, to, 1, None);
        let key = TransactionKey::from_request(&req, TransactionRole::Client)
            .map_err(|e| anyhow!("OPTIONS: {e}"))?;
        let mut tx = Transaction::new_client(key, req, inner.clone(), None);
        let started = Instant::now();
        tx.send()
            .await
            .map_err(|e| anyhow!("sending OPTIONS to {target}: {e}"))?;
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            match tokio::time::timeout_at(deadline, tx.receive()).await {
                Err(_) => bail!("no answer from {target} within {timeout:?}"),
                Ok(None) => bail!("no answer from {target}"),
                Ok(Some(SipMessage::Response(r))) => {
                    let code = u16::from(r.status_code.clone());
                    if code < 200 {
                        continue;
                    }
                    if (200..300).contains(&code) {
                        return Ok(started.elapsed());
                    }
                    bail!("{target} answered {code}");
                }
                Ok(Some(_)) => continue,
            }
        }
    }
}

impl SipAgent {
    /// Stops listening. Calls still up are hung up first.
    pub async fn shutdown(self) {
        for id in self.layer.all_dialog_ids() {
            if let Some(d) = self.layer.get_dialog_with(&id) {
                let _ = tokio::time::timeout(Duration::from_secs(2), d.hangup()).await;
            }
        }
        self.token.cancel();
        drop(self.endpoint);
    }
}

impl Call {
    /// Answers (200 OK) with our SDP. The call is up; the ACK follows as an event.
    pub fn accept(&mut self, answer: String) -> Result<()> {
        if matches!(self.dialog.state(), DialogState::Terminated(..)) {
            bail!("the call was cancelled before we answered");
        }
        let body = answer.into_bytes();
        if let Ok(mut sdp) = self.local_sdp.lock() {
            *sdp = body.clone();
        }
        self.dialog
            .accept(
                Some(vec![
                    Header::ContentType("application/sdp".into()),
                    Header::Allow(ALLOW.into()),
                ]),
                Some(body),
            )
            .map_err(|e| anyhow!("sending 200: {e}"))
    }

    /// The next event. Requests inside the dialog that need no decision are answered here.
    pub async fn next_event(&mut self) -> CallEvent {
        if self.ended {
            return std::future::pending().await;
        }
        loop {
            let Some(state) = self.events.recv().await else {
                self.ended = true;
                return CallEvent::Ended(Ended::Timeout);
            };
            match state {
                DialogState::Early(_, _) if self.role == Role::Caller => return CallEvent::Ringing,
                DialogState::Confirmed(_, resp) => {
                    return match self.role {
                        Role::Caller => {
                            let agent = resp
                                .header_value("Server")
                                .or_else(|| resp.header_value("User-Agent"));
                            CallEvent::Answered(resp.body, agent)
                        }
                        Role::Callee => CallEvent::Acknowledged,
                    }
                }
                DialogState::Updated(_, _, handle) => {
                    // A session refresh: answer with the session we have.
                    let sdp = self.local_sdp.lock().map(|s| s.clone()).unwrap_or_default();
                    let _ = handle
                        .respond(
                            StatusCode::OK,
                            Some(vec![Header::ContentType("application/sdp".into())]),
                            Some(sdp),
                        )
                        .await;
                }
                DialogState::Info(_, _, handle) | DialogState::Options(_, _, handle) => {
                    let _ = handle.reply(StatusCode::OK).await;
                }
                DialogState::Notify(_, _, handle)
                | DialogState::Refer(_, _, handle)
                | DialogState::Message(_, _, handle)
                | DialogState::Publish(_, _, handle) => {
                    let _ = handle.reply(StatusCode::MethodNotAllowed).await;
                }
                DialogState::Terminated(id, reason) => {
                    self.layer.remove_dialog(&id);
                    self.ended = true;
                    let mut end = self.map_end(reason);
                    if let (Ended::Rejected(_, _, warning), Some(rx)) =
                        (&mut end, self.warning.take())
                    {
                        // The transaction ends with the final response: this is at once.
                        if let Ok(Ok(w)) = tokio::time::timeout(Duration::from_secs(1), rx).await {
                            *warning = w;
                        }
                    }
                    return CallEvent::Ended(end);
                }
                _ => {}
            }
        }
    }

    fn map_end(&self, reason: TerminatedReason) -> Ended {
        use TerminatedReason as T;
        match (reason, self.role) {
            (T::UacBye, Role::Callee) | (T::UasBye, Role::Caller) => Ended::RemoteBye,
            (T::UacBye, Role::Caller) | (T::UasBye, Role::Callee) => Ended::LocalBye,
            (T::UacCancel, _) => Ended::Cancelled,
            (T::Timeout, _) => Ended::Timeout,
            (T::UasBusy, _) | (T::UacBusy, _) => Ended::Rejected(486, "Busy Here".into(), None),
            (T::UasDecline, _) => Ended::Rejected(603, "Decline".into(), None),
            (T::UasOther(code), Role::Caller) if u16::from(code.clone()) == 487 => Ended::Cancelled,
            (T::UasOther(code), _) | (T::UacOther(code), _) | (T::ProxyError(code), _) => {
                let n = u16::from(code.clone());
                if n == 408 {
                    Ended::Timeout
                } else {
                    Ended::Rejected(n, code.text().to_string(), None)
                }
            }
            (T::ProxyAuthRequired, _) => {
                Ended::Rejected(407, "Proxy Authentication Required".into(), None)
            }
        }
    }

    /// Cancels an unanswered outgoing call.
    pub async fn cancel(&self) -> Result<()> {
        self.dialog
            .cancel()
            .await
            .map_err(|e| anyhow!("sending CANCEL: {e}"))
    }

    /// Hangs up: BYE when the call is up, CANCEL (caller) or 480 (callee) before that.
    pub async fn hangup(&self) -> Result<()> {
        if self.role == Role::Callee
            && !matches!(
                self.dialog.state(),
                DialogState::Confirmed(..) | DialogState::WaitAck(..)
            )
        {
            return self
                .dialog
                .reject(Some(StatusCode::TemporarilyUnavailable), None)
                .map_err(|e| anyhow!("refusing the call: {e}"));
        }
        match tokio::time::timeout(Duration::from_secs(5), self.dialog.hangup()).await {
            Ok(r) => r.map_err(|e| anyhow!("sending BYE: {e}")),
            Err(_) => bail!("no answer to our BYE within 5 s"),
        }
    }
}

impl Drop for Call {
    /// The dialog leaves the stack with its call, however the call ended: a call given up
    /// (an RTP timeout whose BYE got no answer, a caller that never sent its ACK) would
    /// otherwise stay in the dialog layer for good.
    fn drop(&mut self) {
        self.layer.remove_dialog(&self.dialog.id());
    }
}

/// A `Warning` header value: `CODE ewindow "TEXT"`, the text made a valid quoted string.
fn warning_value(code: u16, text: &str) -> String {
    let quoted: String = text
        .chars()
        .map(|c| match c {
            '"' | '\\' => '\'',
            c if c.is_control() => ' ',
            c => c,
        })
        .collect();
    format!("{code} ewindow \"{quoted}\"")
}

fn fmt_host(addr: SocketAddr) -> String {
    match addr.ip() {
        IpAddr::V4(_) => addr.to_string(),
        IpAddr::V6(ip) => format!("[{ip}]:{}", addr.port()),
    }
}

/// The source of a request as the transport layer stamped it into the top Via.
fn requester(req: &rsipstack::sip::Request) -> Requester {
    let from_user = req
        .from_header()
        .ok()
        .and_then(|f| f.typed().ok())
        .and_then(|f| f.uri.user().map(str::to_string));
    let source = req
        .via_header()
        .ok()
        .and_then(|v| v.typed().ok())
        .and_then(|via| {
            let mut host: Option<IpAddr> = match &via.uri.host_with_port.host {
                rsipstack::sip::Host::IpAddr(ip) => Some(*ip),
                _ => None,
            };
            let mut port: u16 = via
                .uri
                .host_with_port
                .port
                .as_ref()
                .map(|p| p.value())
                .unwrap_or(5060);
            for p in &via.params {
                match p {
                    // The transport layer writes the packet's real source here whenever
                    // it differs from the Via host (IPv6 in brackets). If it cannot be
                    // read, the source is unknown: never fall back to the claimed host.
                    rsipstack::sip::Param::Received(r) => {
                        host = r
                            .value()
                            .trim_start_matches('[')
                            .trim_end_matches(']')
                            .parse()
                            .ok();
                        host?;
                    }
                    rsipstack::sip::Param::Rport(Some(n)) => port = *n,
                    rsipstack::sip::Param::Other(k, Some(v))
                        if k.value().eq_ignore_ascii_case("rport") =>
                    {
                        if let Ok(n) = v.value().parse() {
                            port = n;
                        }
                    }
                    _ => {}
                }
            }
            host.map(|h| SocketAddr::new(h, port))
        });
    Requester { source, from_user }
}

/// Logs a refused request at most once per second.
struct RateLimitedLog {
    last: Mutex<Option<Instant>>,
}

impl RateLimitedLog {
    fn warn(&self, msg: &str) {
        let mut last = match self.last.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        if last.is_none_or(|t| t.elapsed() >= Duration::from_secs(1)) {
            *last = Some(Instant::now());
            tracing::warn!("{msg}");
        }
    }
}

async fn serve_incoming(
    mut incoming: TransactionReceiver,
    dialogs: Arc<DialogLayer>,
    invites: mpsc::Sender<IncomingInvite>,
    policy: AccessPolicy,
    token: CancellationToken,
) {
    let refused = RateLimitedLog {
        last: Mutex::new(None),
    };
    loop {
        let mut tx = tokio::select! {
            _ = token.cancelled() => break,
            t = incoming.recv() => match t { Some(t) => t, None => break },
        };
        let req = &tx.original;
        // No To header: the stack cannot build a reply itself.
        if req.to_header().is_err() {
            let resp = bad_request(req);
            let _ = tx.respond(resp).await;
            continue;
        }
        let in_dialog = req
            .to_header()
            .ok()
            .and_then(|t| t.tag().ok().flatten())
            .is_some();
        if in_dialog {
            match dialogs.match_dialog(&tx) {
                Some(Dialog::Invite(d)) if req.method == Method::Bye && unanswered_callee(&d) => {
                    // A BYE before our 200 (RFC 3261 15.1.2): the stack ends the dialog and
                    // answers the BYE but leaves the INVITE without a final response, its
                    // transaction retransmitting 180 until it times out. End the INVITE
                    // with 487 first, then answer the BYE.
                    let _ = d.reject(Some(StatusCode::RequestTerminated), None);
                    let _ = tx.reply(StatusCode::OK).await;
                }
                Some(mut d) => {
                    tokio::spawn(async move {
                        let _ = d.handle(&mut tx).await;
                    });
                }
                None => {
                    let _ = tx.reply(StatusCode::CallTransactionDoesNotExist).await;
                }
            }
            continue;
        }
        let method = req.method;
        let who = requester(req);
        if matches!(method, Method::Invite | Method::Options) && !policy(&who) {
            refused.warn(&format!(
                "refused {method} from {:?} (user {:?}): not a member",
                who.source, who.from_user
            ));
            let _ = tx.reply(StatusCode::Forbidden).await;
            continue;
        }
        match method {
            Method::Options => {
                let headers = vec![Header::Allow(ALLOW.into()), Header::Accept(ACCEPT.into())];
                let _ = tx.reply_with(StatusCode::OK, headers, None).await;
            }
            Method::Invite => {
                if req.contact_header().is_err() {
                    let _ = tx.reply(StatusCode::BadRequest).await;
                    tokio::spawn(async move { while tx.receive().await.is_some() {} });
                    continue;
                }
                let transport = match tx.connection.as_ref().map(|c| c.transport()) {
                    Some(rsipstack::sip::Transport::Tcp) => Transport::Tcp,
                    _ => Transport::Udp,
                };
                let body = req.body.clone();
                let user_agent = req.header_value("User-Agent");
                let invite = IncomingInvite {
                    tx,
                    from: who,
                    transport,
                    body,
                    user_agent,
                    received_at: Instant::now(),
                };
                if let Err(
                    mpsc::error::TrySendError::Full(inv) | mpsc::error::TrySendError::Closed(inv),
                ) = invites.try_send(invite)
                {
                    let mut tx = inv.tx;
                    let _ = tx.reply(StatusCode::BusyHere).await;
                    tokio::spawn(async move { while tx.receive().await.is_some() {} });
                }
            }
            Method::Bye | Method::Cancel => {
                let _ = tx.reply(StatusCode::CallTransactionDoesNotExist).await;
            }
            Method::Ack => {}
            _ => {
                let headers = vec![Header::Allow(ALLOW.into())];
                let _ = tx
                    .reply_with(StatusCode::MethodNotAllowed, headers, None)
                    .await;
            }
        }
    }
}

/// An INVITE we received and have not answered with a final response yet.
fn unanswered_callee(d: &InviteDialog) -> bool {
    d.role() == rsipstack::transaction::key::TransactionRole::Server
        && matches!(
            d.state(),
            DialogState::Calling(_) | DialogState::Trying(_) | DialogState::Early(..)
        )
}

/// A response to a request the guard refuses, built from whatever of its headers are usable.
fn refusal(req: &rsipstack::sip::Request, r: &Refusal) -> Response {
    let mut headers = req.headers.clone();
    headers.retain(|h| {
        matches!(
            h,
            Header::Via(_) | Header::From(_) | Header::To(_) | Header::CallId(_) | Header::CSeq(_)
        )
    });
    if let Some(tags) = &r.unsupported {
        headers.push(Header::Unsupported(tags.as_str().into()));
    }
    headers.push(Header::ContentLength(0u32.into()));
    Response {
        status_code: r.status.clone(),
        wire_reason: None,
        version: Version::V2,
        headers,
        body: vec![],
    }
}

fn bad_request(req: &rsipstack::sip::Request) -> Response {
    refusal(req, &Refusal::bad("no To"))
}

/// Why the guard refuses a request.
#[derive(Debug)]
struct Refusal {
    status: StatusCode,
    why: &'static str,
    /// For 420: the option tags we do not support.
    unsupported: Option<String>,
}

impl Refusal {
    fn bad(why: &'static str) -> Refusal {
        Refusal {
            status: StatusCode::BadRequest,
            why,
            unsupported: None,
        }
    }
}

/// Whether a header value has an empty `;` parameter or `,` element outside quotes
/// (RFC 4475 badinv01: `Via: SIP/2.0/UDP 192.0.2.15;;,;,,`), which rsipstack tolerates.
fn has_empty_parameter(text: &str) -> bool {
    let mut unquoted = String::with_capacity(text.len());
    let mut quoted = false;
    let mut escaped = false;
    for c in text.chars() {
        match (quoted, escaped, c) {
            (true, true, _) => escaped = false,
            (true, false, '\\') => escaped = true,
            (_, false, '"') => quoted = !quoted,
            (false, _, c) => unquoted.push(c),
            _ => {}
        }
    }
    let t = unquoted.trim_end();
    [";;", ";,", ",,", ",;"].iter().any(|p| t.contains(p)) || t.ends_with(';') || t.ends_with(',')
}

/// Checks what the stack leaves unchecked (RFC 3261 8.2 and RFC 4475's invalid messages).
fn check_request(req: &rsipstack::sip::Request) -> Result<(), Refusal> {
    use rsipstack::sip::uri::Scheme;
    match &req.uri.scheme {
        Some(Scheme::Sip | Scheme::Sips) => {}
        // rsipstack reads `soap.beep://h` as a scheme-less URI: both are schemes we lack.
        _ => {
            return Err(Refusal {
                status: StatusCode::UnsupportedUriScheme,
                why: "missing or unsupported URI scheme",
                unsupported: None,
            })
        }
    }
    let mut singletons = [0u8; 5];
    let mut require = Vec::new();
    for h in req.headers.iter() {
        let slot = match h {
            Header::CallId(_) => Some(0),
            Header::CSeq(_) => Some(1),
            Header::From(_) => Some(2),
            Header::To(_) => Some(3),
            Header::MaxForwards(_) => Some(4),
            Header::Require(r) => {
                require.extend(
                    r.value()
                        .split(',')
                        .map(str::trim)
                        .filter(|t| !t.is_empty())
                        .map(str::to_string),
                );
                None
            }
            _ => None,
        };
        if let Some(i) = slot {
            singletons[i] += 1;
            if singletons[i] > 1 {
                return Err(Refusal::bad("a header that must be unique is repeated"));
            }
        }
        let text = h.to_string();
        if text.contains('\0') {
            return Err(Refusal::bad("NUL byte in a header"));
        }
        if matches!(
            h,
            Header::Via(_) | Header::Contact(_) | Header::From(_) | Header::To(_)
        ) && has_empty_parameter(&text)
        {
            return Err(Refusal::bad("empty parameter in Via, Contact, From or To"));
        }
    }
    if req.call_id_header().is_err() {
        return Err(Refusal::bad("no Call-ID"));
    }
    let Ok(cseq) = req.cseq_header() else {
        return Err(Refusal::bad("no CSeq"));
    };
    if cseq.seq().is_err() {
        return Err(Refusal::bad("bad CSeq number"));
    }
    match cseq.method() {
        Ok(m) if m == req.method => {}
        _ => return Err(Refusal::bad("CSeq method differs from the request line")),
    }
    if req.method != Method::Ack && req.method != Method::Cancel {
        let tagged = req
            .from_header()
            .ok()
            .and_then(|f| f.tag().ok().flatten())
            .is_some();
        if !tagged {
            return Err(Refusal::bad("From without tag"));
        }
        if !require.is_empty() {
            return Err(Refusal {
                status: StatusCode::BadExtension,
                why: "Require names extensions we do not support",
                unsupported: Some(require.join(", ")),
            });
        }
    }
    if let Some(cl) = req.header_value("Content-Length") {
        match cl.trim().parse::<usize>() {
            Ok(n) if n == req.body.len() => {}
            _ => return Err(Refusal::bad("Content-Length does not match the body")),
        }
    }
    Ok(())
}

/// What the phone makes of one datagram from the network, without sockets: the transport's
/// parse, the guard, the refusal it would send (serialized), the requester the access policy
/// would see, and for a new INVITE the headers the call reads. Returns the status the guard
/// answers with, if it refuses. The entry point of the `sip_request` fuzz target and of the
/// hostile corpus' unit test; it must not panic on any bytes.
pub fn screen(bytes: &[u8]) -> Option<u16> {
    let Ok(SipMessage::Request(req)) = SipMessage::try_from(bytes) else {
        return None;
    };
    if let Err(r) = check_request(&req) {
        let wire = SipMessage::from(refusal(&req, &r)).to_string();
        debug_assert!(wire.starts_with("SIP/2.0 "), "{wire}");
        return Some(u16::from(r.status));
    }
    let _ = requester(&req);
    let _ = req.to_header().ok().and_then(|t| t.tag().ok().flatten());
    if req.to_header().is_err() {
        let _ = SipMessage::from(bad_request(&req)).to_string();
    }
    let _ = req.contact_header().is_ok();
    let _ = req.header_value("User-Agent");
    None
}

/// Refuses malformed requests (400, 416, 420) before the transaction layer sees them.
struct Guard;

#[async_trait::async_trait]
impl TransportEventInspector for Guard {
    async fn handle(&self, event: TransportEvent) -> Option<TransportEvent> {
        if let TransportEvent::Incoming(SipMessage::Request(req), conn, from) = &event {
            if let Err(r) = check_request(req) {
                tracing::debug!("{} to {from}: {}", r.status, r.why);
                if req.method != Method::Ack && req.via_header().is_ok() {
                    let _ = conn.send(refusal(req, &r).into(), None).await;
                }
                return None;
            }
        }
        Some(event)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(file: &str) -> rsipstack::sip::Request {
        let path = format!("{}/tests/hostile/{file}", env!("CARGO_MANIFEST_DIR"));
        let raw = std::fs::read_to_string(path).unwrap();
        let text = raw.replace("{ADDR}", "127.0.0.1:5060");
        match SipMessage::try_from(text.as_str()).unwrap() {
            SipMessage::Request(r) => r,
            SipMessage::Response(_) => panic!("{file} is a response"),
        }
    }

    fn status(file: &str) -> Option<u16> {
        check_request(&parse(file))
            .err()
            .map(|r| u16::from(r.status))
    }

    #[test]
    fn a_warning_is_a_valid_quoted_string_whatever_the_text() {
        assert_eq!(warning_value(305, "no codec"), "305 ewindow \"no codec\"");
        assert_eq!(
            warning_value(399, "a \"b\"\\c\r\nd"),
            "399 ewindow \"a 'b''c  d\""
        );
    }

    #[test]
    fn screen_refuses_the_hostile_corpus_as_the_guard_does() {
        let dir = format!("{}/tests/hostile", env!("CARGO_MANIFEST_DIR"));
        let mut refused = 0;
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_none_or(|e| e != "sip") {
                continue;
            }
            let raw = String::from_utf8_lossy(&std::fs::read(&path).unwrap()).into_owned();
            let bytes = raw.replace("{ADDR}", "127.0.0.1:5060").into_bytes();
            let guard = match SipMessage::try_from(bytes.as_slice()) {
                Ok(SipMessage::Request(r)) => check_request(&r).err().map(|r| u16::from(r.status)),
                _ => None,
            };
            assert_eq!(screen(&bytes), guard, "{}", path.display());
            refused += usize::from(guard.is_some());
        }
        assert!(
            refused >= 5,
            "only {refused} of the corpus refused by the guard"
        );
        assert_eq!(screen(b"\xff\x00garbage"), None);
    }

    #[test]
    fn guard_passes_a_well_formed_request() {
        let text = "OPTIONS sip:w@127.0.0.1:5060 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:9;branch=z9hG4bK1\r\n\
                    From: <sip:a@127.0.0.1>;tag=1\r\nTo: <sip:w@127.0.0.1>\r\nCall-ID: c1\r\n\
                    CSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n";
        let SipMessage::Request(req) = SipMessage::try_from(text).unwrap() else {
            panic!("not a request")
        };
        assert!(check_request(&req).is_ok());
    }

    #[test]
    fn guard_answers_empty_header_parameters_with_400() {
        assert_eq!(status("01-badinv01.sip"), Some(400));
        assert!(has_empty_parameter("Via: SIP/2.0/UDP 192.0.2.15;;,;,,"));
        assert!(has_empty_parameter(
            "Contact: \"Joe\" <sip:joe@example.org>;;;;"
        ));
        assert!(!has_empty_parameter("From: \"a;;b,,\" <sip:a@b>;tag=1"));
        assert!(!has_empty_parameter(
            "Via: SIP/2.0/UDP h;branch=z9hG4bK1;rport"
        ));
    }

    #[test]
    fn guard_answers_unknown_uri_schemes_with_416() {
        assert_eq!(status("20-unkscm.sip"), Some(416));
        assert_eq!(status("21-novelsc.sip"), Some(416));
    }

    #[test]
    fn guard_answers_required_extensions_with_420_naming_them() {
        let r = check_request(&parse("23-bext01.sip")).unwrap_err();
        assert_eq!(u16::from(r.status), 420);
        assert!(r.unsupported.unwrap().contains("nothingSupportsThis"));
    }

    #[test]
    fn guard_answers_repeated_headers_nul_bytes_and_cseq_mismatch_with_400() {
        assert_eq!(status("26-multi01.sip"), Some(400));
        assert_eq!(status("45-nul-bytes.sip"), Some(400));
        assert_eq!(status("41-cseq-method-mismatch.sip"), Some(400));
    }

    #[test]
    fn the_parser_strips_angle_brackets_from_the_request_uri() {
        // RFC 4475 ltgtruri: "should" get 400. rsipstack normalizes it before we see it,
        // so it is served as the bracket-free URI. This test pins that behaviour.
        let r = parse("06-ltgtruri.sip");
        assert_eq!(r.uri.to_string(), "sip:user@127.0.0.1:5060");
        assert!(check_request(&r).is_ok());
    }
}
