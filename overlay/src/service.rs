//! The running overlay (`ewindow-overlay up`) and a newcomer's redemption (`redeem`).
//!
//! `up`: identity key (made at first start), `window.toml` (waited for at first boot), the
//! WireGuard device and link, then `READY` to `$EWINDOW_READY_FD`; then it serves the control
//! socket and the enrollment port, re-applies the roster on SIGHUP or when a member sends a
//! newer one, and pushes its roster to every member each minute (and at once after a change),
//! so updates spread even to members that were offline; a roster taken from a member is passed
//! on to the others (the newest version wins, so it stops where everyone has it). Once a second
//! it reads WireGuard, steps the paths (`paths`: hints, hole punching, relays) and carries out
//! what they say; a window whose roster entry says `relay = true` carries pairs (`relay`).

use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use ewindow_protocol::invite::Invitation;
use ewindow_protocol::keys::PrivateKey;
use ewindow_protocol::overlay::{
    PeerReply, PeerRequest, PeerStatus, ProbeStep, Reply, Request, Seen, ENROLL_PORT,
};
use ewindow_protocol::window::{
    self, overlay_v6, parse_roster, roster_to_toml, Endpoint, Member, OpenHours, PublicKey,
    WindowConfig,
};
use tokio::io::{AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream, UnixListener, UnixStream};
use tokio::sync::Mutex;
use wireguard_control::{Backend, InterfaceName};

use crate::identity;
use crate::paths::{self, Action, Paths};
use crate::relay::Relay;
use crate::roster::{self, Pending, WantedPeer};
use crate::{link, uapi, wg};
use ewindow_io::accept::{LINE_TIMEOUT, MAX_CONNECTIONS};

/// Longest line either socket reads.
const MAX_LINE: usize = 256 * 1024;
/// How often the roster is pushed to every member.
const PUSH_EVERY: Duration = Duration::from_secs(60);
/// How often WireGuard is read and the paths stepped.
const STEP_EVERY: Duration = Duration::from_secs(1);
/// How long the side that starts a probe checks the direct path (less than `PROBE_FOR_S`,
/// the other side's window).
const PROBE_CHECK_FOR: Duration = Duration::from_millis(2500);

/// Where things are and how the overlay runs.
#[derive(Debug, Clone)]
pub struct Options {
    /// `window.toml`.
    pub window: PathBuf,
    /// `identity.key`.
    pub identity: PathBuf,
    /// The open invitations (0600, next to the window file).
    pub invitations: PathBuf,
    /// The control socket.
    pub control: PathBuf,
    /// The phone's control socket, told to reload when the roster changes.
    pub phone_control: Option<PathBuf>,
    /// WireGuard interface.
    pub iface: String,
    /// `auto`, `kernel` or `userspace`.
    pub backend: String,
    /// Our underlay endpoints (host:port) to give newcomers and the roster.
    pub endpoints: Vec<String>,
}

struct State {
    key: PrivateKey,
    config: WindowConfig,
    pending: Vec<Pending>,
    paths: Paths,
    /// The other members, their roster endpoints resolved (again each minute).
    members: Vec<paths::Member>,
}

impl State {
    fn resolve_members(&mut self) {
        self.members = self
            .config
            .roster
            .members
            .iter()
            .filter(|m| m.name != self.config.name)
            .map(|m| paths::Member {
                key: m.public_key,
                name: m.name.clone(),
                address: m.overlay_v6(),
                endpoints: wg::resolve(&m.endpoints),
                relay: m.relay,
            })
            .collect();
    }

    fn member_at(&self, source: IpAddr) -> Option<&paths::Member> {
        self.members
            .iter()
            .find(|m| IpAddr::V6(m.address) == source)
    }

    fn is_relay(&self) -> bool {
        self.config.own().is_some_and(|m| m.relay)
    }
}

struct Overlay {
    opts: Options,
    iface: InterfaceName,
    backend: Backend,
    state: Mutex<State>,
    relay: Relay,
    started: tokio::time::Instant,
}

fn now_unix() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Tells the supervisor we are ready (s6-style: a line on the fd it gave us).
fn notify_ready() {
    use std::io::Write;
    use std::os::fd::FromRawFd;
    let Some(fd) = std::env::var("EWINDOW_READY_FD")
        .ok()
        .and_then(|v| v.parse::<i32>().ok())
    else {
        return;
    };
    // SAFETY: the supervisor passed this fd for us to write READY to and close; nothing else
    // in the process uses it.
    let mut f = unsafe { std::fs::File::from_raw_fd(fd) };
    let _ = f.write_all(b"READY\n");
}

fn load_pending(path: &Path) -> Vec<Pending> {
    match std::fs::read_to_string(path) {
        Ok(t) => serde_json::from_str(&t).unwrap_or_else(|e| {
            tracing::error!("{}: {e}; starting with no open invitations", path.display());
            Vec::new()
        }),
        Err(_) => Vec::new(),
    }
}

fn save_pending(path: &Path, pending: &[Pending]) -> Result<()> {
    let now = now_unix();
    // A day after expiry an invitation is forgotten.
    let keep: Vec<&Pending> = pending
        .iter()
        .filter(|p| p.expires_unix + 86_400 >= now)
        .collect();
    let text = serde_json::to_string_pretty(&keep)?;
    Ok(ewindow_io::write_atomically(path, text.as_bytes(), 0o600)?)
}

async fn wait_for_window_file(path: &Path) {
    if path.exists() {
        return;
    }
    tracing::info!(
        "{} does not exist yet (first boot): waiting for provisioning",
        path.display()
    );
    while !path.exists() {
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// `ewindow-overlay up`.
pub async fn up(opts: Options) -> Result<()> {
    let key = identity::load_or_create(&opts.identity)?;
    wait_for_window_file(&opts.window).await;
    let own_pub = key.public_key();
    let config = window::load(&opts.window, Some(&own_pub)).map_err(|e| anyhow!("{e}"))?;
    let backend = wg::backend(&opts.backend)?;
    let iface = wg::iface(&opts.iface)?;
    if backend == Backend::Userspace {
        uapi::wait_for_socket(&opts.iface, Duration::from_secs(10)).await?;
    }
    let pending = load_pending(&opts.invitations);
    let mut state = State {
        key,
        config,
        pending,
        paths: Paths::new(),
        members: Vec::new(),
    };
    state.resolve_members();
    let overlay = Arc::new(Overlay {
        relay: Relay::new(overlay_v6(&own_pub), &opts.iface),
        iface,
        backend,
        state: Mutex::new(state),
        opts,
        started: tokio::time::Instant::now(),
    });
    {
        let mut st = overlay.state.lock().await;
        let live = overlay.live().unwrap_or_default();
        let State { paths, members, .. } = &mut *st;
        paths.step(0, members, &live);
        overlay.apply(&st).await?;
        tracing::info!(
            name = %st.config.name,
            address = %overlay_v6(&own_pub),
            members = st.config.roster.members.len(),
            backend = ?overlay.backend,
            "overlay up"
        );
    }
    notify_ready();

    let control = bind_control(&overlay.opts.control)?;
    tokio::spawn(overlay.clone().serve_control(control));
    let enroll = enroll_listener(overlay_v6(&own_pub), &overlay.opts.iface)
        .context("binding the enrollment port on the overlay address")?;
    tokio::spawn(overlay.clone().serve_enroll(enroll));
    tokio::spawn(overlay.clone().push_loop());
    tokio::spawn(overlay.clone().path_loop());

    use tokio::signal::unix::{signal, SignalKind};
    let mut hup = signal(SignalKind::hangup())?;
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    loop {
        tokio::select! {
            _ = hup.recv() => {
                if let Err(e) = overlay.reload().await {
                    tracing::error!("reload (keeping the roster in use): {e:#}");
                }
            }
            _ = term.recv() => break,
            _ = int.recv() => break,
        }
    }
    tracing::info!("overlay stopping (the interface stays as it is)");
    Ok(())
}

/// The enrollment port on the overlay address, bound to the overlay device too: a connection
/// to the overlay address from another interface (an outsider routing to it) finds nothing.
fn enroll_listener(address: Ipv6Addr, device: &str) -> Result<TcpListener> {
    let socket = tokio::net::TcpSocket::new_v6()?;
    socket.bind_device(Some(device.as_bytes()))?;
    socket.set_reuseaddr(true)?;
    socket.bind(SocketAddr::new(IpAddr::V6(address), ENROLL_PORT))?;
    Ok(socket.listen(MAX_CONNECTIONS as u32)?)
}

fn bind_control(path: &Path) -> Result<UnixListener> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let _ = std::fs::remove_file(path);
    UnixListener::bind(path).with_context(|| format!("binding {}", path.display()))
}

/// Reads one line (bounded) and answers it with `answer`.
/// One request line (at most [`MAX_LINE`] bytes), `None` at the end or on an error.
async fn one_line<R: tokio::io::AsyncRead + Unpin>(read: R) -> Option<String> {
    let mut r = BufReader::new(read);
    ewindow_io::lines::read_line_async(&mut r, MAX_LINE)
        .await
        .ok()
        .flatten()
}

impl Overlay {
    /// Brings WireGuard and the link to the state's roster and invitations.
    async fn apply(&self, st: &State) -> Result<()> {
        self.apply_peers(st)?;
        link::configure(&self.opts.iface, overlay_v6(&st.key.public_key())).await
    }

    /// Brings WireGuard's peers to the roster, the invitations and the paths' endpoints.
    fn apply_peers(&self, st: &State) -> Result<()> {
        let wanted =
            roster::wanted_peers(&st.config.roster, &st.config.name, &st.pending, now_unix());
        let changes = wg::configure(
            &self.iface,
            self.backend,
            &st.key,
            st.config.listen_port,
            &wanted,
            |w| st.paths.endpoint(&w.public_key),
        )?;
        if changes.added + changes.removed > 0 {
            tracing::info!(
                added = changes.added,
                changed = changes.changed,
                removed = changes.removed,
                unchanged = changes.unchanged,
                "peers applied"
            );
        } else if changes.changed > 0 {
            tracing::debug!(
                added = changes.added,
                changed = changes.changed,
                removed = changes.removed,
                unchanged = changes.unchanged,
                "peers applied"
            );
        }
        Ok(())
    }

    /// Reads the window file again. A roster edited here (by hand, by the wizard) is signed
    /// by this window one version newer than both, written back and pushed to the members.
    async fn reload(self: &Arc<Self>) -> Result<()> {
        let mut st = self.state.lock().await;
        let own = st.key.public_key();
        let mut fresh = window::load(&self.opts.window, Some(&own)).map_err(|e| anyhow!("{e}"))?;
        let edited = fresh.roster.canonical_bytes() != st.config.roster.canonical_bytes();
        if edited {
            let version = fresh.roster.version.max(st.config.roster.version) + 1;
            fresh.roster = roster::sign(fresh.roster, version, &fresh.name, &st.key);
            ewindow_io::write_atomically(
                &self.opts.window,
                window::to_toml(&fresh).as_bytes(),
                0o644,
            )?;
            tracing::info!(
                version,
                "roster edited here: signed and sent to the members"
            );
        }
        st.config = fresh;
        st.resolve_members();
        self.apply(&st).await?;
        drop(st);
        self.tell_phone().await;
        if edited {
            let me = self.clone();
            tokio::spawn(async move { me.push_all().await });
        }
        Ok(())
    }

    /// Writes the window file and makes the change live.
    async fn commit(&self, st: &mut State, config: WindowConfig) -> Result<()> {
        ewindow_io::write_atomically(
            &self.opts.window,
            window::to_toml(&config).as_bytes(),
            0o644,
        )?;
        st.config = config;
        st.resolve_members();
        self.apply(st).await
    }

    async fn tell_phone(&self) {
        let Some(path) = &self.opts.phone_control else {
            return;
        };
        let result = async {
            let mut s = UnixStream::connect(path).await?;
            let reload = ewindow_protocol::phone::Request::Reload;
            s.write_all(&ewindow_io::lines::encode(&reload)).await?;
            let _ = one_line(s).await;
            Ok::<_, std::io::Error>(())
        };
        if let Err(e) = tokio::time::timeout(Duration::from_secs(2), result)
            .await
            .unwrap_or(Err(std::io::ErrorKind::TimedOut.into()))
        {
            tracing::debug!("telling the phone to reload: {e}");
        }
    }

    // ----- control socket ---------------------------------------------------------------

    async fn serve_control(self: Arc<Self>, listener: UnixListener) {
        ewindow_io::accept::serve(
            listener,
            "overlay control",
            MAX_CONNECTIONS,
            move |stream: UnixStream, _| {
                let me = self.clone();
                async move {
                    let (read, mut write) = stream.into_split();
                    let Ok(Some(line)) = tokio::time::timeout(LINE_TIMEOUT, one_line(read)).await
                    else {
                        return;
                    };
                    let reply = match serde_json::from_str::<Request>(line.trim()) {
                        Ok(req) => me.control(req).await,
                        Err(e) => Reply {
                            error: Some(format!("bad request: {e}")),
                            ..Reply::default()
                        },
                    };
                    let _ = write.write_all(&ewindow_io::lines::encode(&reply)).await;
                }
            },
        )
        .await
    }

    async fn control(self: &Arc<Self>, req: Request) -> Reply {
        let fail = |e: String| Reply {
            error: Some(e),
            ..Reply::default()
        };
        match req {
            Request::Identity => {
                let st = self.state.lock().await;
                let k = st.key.public_key();
                Reply {
                    ok: true,
                    public_key: Some(k.to_base64()),
                    address: Some(overlay_v6(&k).to_string()),
                    ..Reply::default()
                }
            }
            Request::Members => match self.members().await {
                Ok(m) => Reply {
                    ok: true,
                    members: Some(m),
                    ..Reply::default()
                },
                Err(e) => fail(format!("{e:#}")),
            },
            Request::Reload => match self.reload().await {
                Ok(()) => Reply {
                    ok: true,
                    ..Reply::default()
                },
                Err(e) => fail(format!("{e:#}")),
            },
            Request::Invite { name, ttl_s } => match self.invite(&name, ttl_s).await {
                Ok((code, expires)) => Reply {
                    ok: true,
                    invitation: Some(code),
                    expires_unix: Some(expires),
                    ..Reply::default()
                },
                Err(e) => fail(format!("{e:#}")),
            },
        }
    }

    async fn members(&self) -> Result<Vec<PeerStatus>> {
        let live = wg::peers(&self.iface, self.backend)?;
        let st = self.state.lock().await;
        let mut out = Vec::new();
        for wg::LivePeer {
            key,
            endpoint,
            handshake_age_s: age,
            rx,
            tx,
        } in live
        {
            let name = match st.config.roster.by_key(&key) {
                Some(m) => m.name.clone(),
                None => st
                    .pending
                    .iter()
                    .find(|p| p.temp_public_key == key.to_base64())
                    .map(|p| format!("invitation for {}", p.name))
                    .unwrap_or_else(|| "?".into()),
            };
            let (path, via) = match st.paths.path(&key) {
                Some((path, via)) => (
                    Some(path),
                    via.and_then(|v| st.config.roster.by_key(&v).map(|m| m.name.clone())),
                ),
                None => (None, None),
            };
            out.push(PeerStatus {
                name,
                public_key: key.to_base64(),
                address: overlay_v6(&key).to_string(),
                endpoint: endpoint.map(|e| e.to_string()),
                last_handshake_age_s: age,
                rx_bytes: rx,
                tx_bytes: tx,
                path,
                via,
            });
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    async fn invite(&self, name: &str, ttl_s: Option<u64>) -> Result<(String, u64)> {
        let mut st = self.state.lock().await;
        let now = now_unix();
        roster::can_invite(&st.config.roster, &st.pending, name, now).map_err(|e| anyhow!(e))?;
        let own = st
            .config
            .own()
            .ok_or_else(|| anyhow!("this window is not in its roster"))?
            .clone();
        let endpoint = self
            .opts
            .endpoints
            .first()
            .cloned()
            .or_else(|| own.endpoints.first().map(|e| e.to_string()))
            // a window set up out of the box: its LAN address (a newcomer in the same space)
            .or_else(|| {
                link::lan_endpoint(&link::local_addresses(), st.config.listen_port)
                    .map(|a| a.to_string())
            })
            .ok_or_else(|| {
                anyhow!("this window has no endpoint a newcomer could reach (no LAN address): list one in its [[member]] entry (endpoints) or start the overlay with --endpoint HOST:PORT")
            })?;
        let endpoint = endpoint
            .parse()
            .map_err(|e| anyhow!("endpoint {endpoint}: {e}"))?;
        let ttl = Duration::from_secs(ttl_s.unwrap_or(3600).clamp(1, 7 * 86_400));
        let inv =
            Invitation::new(own.public_key, endpoint, ttl, now).map_err(|e| anyhow!("{e}"))?;
        let expires = inv.expires_unix as u64;
        st.pending.push(Pending {
            id: inv.id(),
            name: name.to_owned(),
            temp_public_key: inv.temp_private_key().public_key().to_base64(),
            expires_unix: expires,
            used: false,
        });
        save_pending(&self.opts.invitations, &st.pending)?;
        self.apply(&st).await?;
        tracing::info!(for_name = %name, id = %inv.id(), expires, "invitation made");
        Ok((inv.encode(), expires))
    }

    // ----- enrollment port --------------------------------------------------------------

    async fn serve_enroll(self: Arc<Self>, listener: TcpListener) {
        ewindow_io::accept::serve(
            listener,
            "enrollment port",
            MAX_CONNECTIONS,
            move |stream: TcpStream, peer: SocketAddr| {
                let me = self.clone();
                async move {
                    let (read, mut write) = stream.into_split();
                    let Ok(Some(line)) = tokio::time::timeout(LINE_TIMEOUT, one_line(read)).await
                    else {
                        return;
                    };
                    let reply = match serde_json::from_str::<PeerRequest>(line.trim()) {
                        Ok(req) => me.enroll(req, peer.ip()).await,
                        Err(e) => PeerReply {
                            error: Some(format!("bad request: {e}")),
                            ..PeerReply::default()
                        },
                    };
                    let _ = write.write_all(&ewindow_io::lines::encode(&reply)).await;
                }
            },
        )
        .await
    }

    async fn enroll(self: &Arc<Self>, req: PeerRequest, source: IpAddr) -> PeerReply {
        let result = match req {
            PeerRequest::Redeem {
                id,
                public_key,
                endpoints,
            } => self.redeem(&id, &public_key, &endpoints, source).await,
            PeerRequest::Roster { text } => self.take_roster(&text, source).await,
            PeerRequest::Seen { peers } => self.take_seen(&peers, source).await,
            PeerRequest::Relay { peer, listen_port } => {
                self.lease_for(&peer, listen_port, source).await
            }
            PeerRequest::Release { peer } => self.release_for(&peer, source).await,
            PeerRequest::Probe { step } => self.probe_step(step, source).await,
        };
        match result {
            Ok(reply) => reply,
            Err(e) => {
                tracing::warn!(%source, "enrollment refused: {e:#}");
                PeerReply {
                    error: Some(format!("{e:#}")),
                    ..PeerReply::default()
                }
            }
        }
    }

    async fn redeem(
        self: &Arc<Self>,
        id: &str,
        public_key: &str,
        endpoints: &[String],
        source: IpAddr,
    ) -> Result<PeerReply> {
        let newcomer = PublicKey::from_base64(public_key).map_err(|e| anyhow!("{e}"))?;
        let endpoints = endpoints
            .iter()
            .map(|e| {
                e.parse::<Endpoint>()
                    .map_err(|m| anyhow!("endpoint {e}: {m}"))
            })
            .collect::<Result<Vec<_>>>()?;
        let mut st = self.state.lock().await;
        let now = now_unix();
        let State {
            config, pending, ..
        } = &mut *st;
        let name = roster::redeem(&config.roster, pending, id, source, &newcomer, now)
            .map_err(|e| anyhow!(e))?;
        let member = Member {
            name: name.clone(),
            public_key: newcomer,
            endpoints,
            relay: false,
        };
        let next = roster::with_member(&st.config.roster, member, &st.config.name, &st.key);
        let mut config = st.config.clone();
        config.roster = next.clone();
        // Validate the whole file as every window will read it.
        window::validated_text(&self.opts.window, &config, Some(&st.key.public_key()))
            .map_err(|e| anyhow!("the new roster would not be valid: {e}"))?;
        save_pending(&self.opts.invitations, &st.pending)?;
        self.commit(&mut st, config).await?;
        drop(st);
        tracing::info!(member = %name, version = next.version, "new member joined by invitation");
        self.tell_phone().await;
        let me = self.clone();
        tokio::spawn(async move { me.push_all().await });
        Ok(PeerReply {
            ok: true,
            name: Some(name),
            roster: Some(roster_to_toml(&next)),
            ..PeerReply::default()
        })
    }

    async fn take_roster(self: &Arc<Self>, text: &str, source: IpAddr) -> Result<PeerReply> {
        let update = parse_roster(Path::new(&format!("roster from {source}")), text)
            .map_err(|e| anyhow!("{e}"))?;
        let mut st = self.state.lock().await;
        roster::accept(&st.config.roster, &st.config.name, &update).map_err(|e| anyhow!(e))?;
        let mut config = st.config.clone();
        let version = update.version;
        config.roster = update;
        window::validated_text(&self.opts.window, &config, Some(&st.key.public_key()))
            .map_err(|e| anyhow!("{e}"))?;
        self.commit(&mut st, config).await?;
        drop(st);
        tracing::info!(version, from = %source, "roster updated");
        self.tell_phone().await;
        // Passed on, so a member the sender cannot reach gets it through us; a member that
        // has it already refuses it as not newer, so it goes no further.
        let me = self.clone();
        tokio::spawn(async move { me.push_all_but(Some(source)).await });
        Ok(PeerReply {
            ok: true,
            ..PeerReply::default()
        })
    }

    /// A member tells where it sees the others.
    async fn take_seen(&self, seen: &[Seen], source: IpAddr) -> Result<PeerReply> {
        let mut st = self.state.lock().await;
        let from = st
            .member_at(source)
            .ok_or_else(|| anyhow!("hints are taken from members only"))?
            .key;
        if seen.len() > st.members.len() + 1 {
            bail!("more hints than members");
        }
        let now = self.now_s();
        tracing::debug!(%source, hints = seen.len(), "hints taken");
        for s in seen {
            let about = PublicKey::from_base64(&s.public_key).map_err(|e| anyhow!("{e}"))?;
            let endpoint: SocketAddr = s
                .endpoint
                .parse()
                .map_err(|e| anyhow!("endpoint {}: {e}", s.endpoint))?;
            if st.members.iter().any(|m| m.key == about) {
                st.paths.hint(from, about, endpoint, s.handshake_age_s, now);
            }
        }
        Ok(PeerReply {
            ok: true,
            ..PeerReply::default()
        })
    }

    /// As a relay: a member asks to reach `peer` through us.
    async fn lease_for(&self, peer: &str, listen_port: u16, source: IpAddr) -> Result<PeerReply> {
        let (from, to) = {
            let st = self.state.lock().await;
            if !st.is_relay() {
                bail!("this window is not a relay (its roster entry has no `relay = true`)");
            }
            let from = st
                .member_at(source)
                .ok_or_else(|| anyhow!("a relay carries members only"))?
                .clone();
            let to = PublicKey::from_base64(peer).map_err(|e| anyhow!("{e}"))?;
            if to == from.key || !st.members.iter().any(|m| m.key == to) {
                bail!("a relay carries traffic between two other members only");
            }
            (from, to)
        };
        let port = self
            .relay
            .lease(from.key, from.address, listen_port, to)
            .await?;
        Ok(PeerReply {
            ok: true,
            relay_port: Some(port),
            ..PeerReply::default()
        })
    }

    /// As a relay: a member no longer wants the pair with `peer`.
    async fn release_for(&self, peer: &str, source: IpAddr) -> Result<PeerReply> {
        let from = {
            let st = self.state.lock().await;
            st.member_at(source)
                .ok_or_else(|| anyhow!("a relay carries members only"))?
                .key
        };
        let to = PublicKey::from_base64(peer).map_err(|e| anyhow!("{e}"))?;
        self.relay.release(from, to).await;
        Ok(PeerReply {
            ok: true,
            ..PeerReply::default()
        })
    }

    /// A relayed member agrees on trying the direct path.
    async fn probe_step(&self, step: ProbeStep, source: IpAddr) -> Result<PeerReply> {
        let mut st = self.state.lock().await;
        let from = st
            .member_at(source)
            .ok_or_else(|| anyhow!("probes are taken from members only"))?
            .key;
        let now = self.now_s();
        match step {
            ProbeStep::Start => {
                let State { paths, members, .. } = &mut *st;
                let direct = paths
                    .probe_begin(&from, members, now)
                    .ok_or_else(|| anyhow!("no direct endpoint known for the sender"))?;
                self.apply_peers(&st)?;
                tracing::info!(endpoint = %direct, "trying the direct path, as a member asked");
            }
            ProbeStep::Check => st.paths.probe_extend(&from, now),
            ProbeStep::Keep => {
                st.paths.probe_end(&from, true, now);
                self.apply_peers(&st)?;
            }
        }
        Ok(PeerReply {
            ok: true,
            ..PeerReply::default()
        })
    }

    /// Seconds since the overlay started (the paths' clock).
    fn now_s(&self) -> u64 {
        self.started.elapsed().as_secs()
    }

    /// What WireGuard says of each peer, for the paths.
    fn live(&self) -> Result<Vec<paths::Live>> {
        Ok(wg::peers(&self.iface, self.backend)?
            .into_iter()
            .map(|p| paths::Live {
                key: p.key,
                endpoint: p.endpoint,
                handshake_age_s: p.handshake_age_s,
                rx: p.rx,
            })
            .collect())
    }

    /// Once a second: read WireGuard, step the paths, apply their endpoints, then ask what
    /// they say (leases, probes) and tell the members where we see the others.
    async fn path_loop(self: Arc<Self>) {
        loop {
            tokio::time::sleep(STEP_EVERY).await;
            let live = match self.live() {
                Ok(l) => l,
                Err(e) => {
                    tracing::debug!("reading WireGuard: {e:#}");
                    continue;
                }
            };
            let (actions, tell) = {
                let mut st = self.state.lock().await;
                let now = self.now_s();
                let State { paths, members, .. } = &mut *st;
                let actions = paths.step(now, members, &live);
                let tell = paths
                    .to_tell(now, &live)
                    .map(|seen| (seen, paths.reached()));
                if let Err(e) = self.apply_peers(&st) {
                    tracing::error!("applying the paths: {e:#}");
                }
                let actions: Vec<(Action, Option<Ipv6Addr>)> = actions
                    .into_iter()
                    .map(|a| {
                        let to = match a {
                            Action::Lease { relay, .. } => relay,
                            Action::Probe { peer } | Action::Poke { peer } => peer,
                        };
                        (
                            a,
                            st.members.iter().find(|m| m.key == to).map(|m| m.address),
                        )
                    })
                    .collect();
                let tell = tell.map(|(seen, to)| {
                    let addrs: Vec<Ipv6Addr> = st
                        .members
                        .iter()
                        .filter(|m| to.contains(&m.key))
                        .map(|m| m.address)
                        .collect();
                    (seen, addrs, st.config.listen_port)
                });
                (actions, tell)
            };
            for (action, addr) in actions {
                let Some(addr) = addr else { continue };
                let me = self.clone();
                tokio::spawn(async move { me.act(action, addr).await });
            }
            if let Some((seen, to, _)) = tell {
                tracing::debug!(
                    members = to.len(),
                    seen = seen.len(),
                    "telling where we see the members"
                );
                let req = PeerRequest::Seen {
                    peers: seen
                        .into_iter()
                        .map(|(k, e, age)| Seen {
                            public_key: k.to_base64(),
                            endpoint: e.to_string(),
                            handshake_age_s: age,
                        })
                        .collect(),
                };
                for addr in to {
                    let req = req.clone();
                    tokio::spawn(async move {
                        let r = tokio::time::timeout(Duration::from_secs(3), ask(addr, &req)).await;
                        if let Ok(Ok(r)) = &r {
                            if !r.ok {
                                tracing::debug!(%addr, "hints not taken: {:?}", r.error);
                            }
                        }
                    });
                }
            }
        }
    }

    /// Carries out what the paths asked: a lease from a relay (at `addr`), or a probe with a
    /// relayed member (at `addr`).
    async fn act(self: Arc<Self>, action: Action, addr: Ipv6Addr) {
        match action {
            Action::Lease { relay, peer } => {
                let listen_port = self.state.lock().await.config.listen_port;
                let req = PeerRequest::Relay {
                    peer: peer.to_base64(),
                    listen_port,
                };
                match tokio::time::timeout(Duration::from_secs(3), ask(addr, &req)).await {
                    Ok(Ok(PeerReply {
                        ok: true,
                        relay_port: Some(port),
                        ..
                    })) => {
                        let mut st = self.state.lock().await;
                        let endpoint = SocketAddr::new(IpAddr::V6(addr), port);
                        let first = st.paths.endpoint(&peer) != Some(endpoint);
                        st.paths.leased(&peer, &relay, endpoint);
                        if let Err(e) = self.apply_peers(&st) {
                            tracing::error!("applying a relay lease: {e:#}");
                        }
                        if first {
                            poke(
                                st.members
                                    .iter()
                                    .find(|m| m.key == peer)
                                    .map_or(addr, |m| m.address),
                            )
                            .await;
                            let name = st
                                .members
                                .iter()
                                .find(|m| m.key == peer)
                                .map(|m| m.name.clone());
                            tracing::info!(member = ?name, relay = %endpoint, "no direct path: through the relay");
                        }
                    }
                    Ok(Ok(r)) => tracing::warn!(
                        relay = %addr,
                        "relay refused: {}",
                        r.error.unwrap_or_default()
                    ),
                    Ok(Err(e)) => tracing::debug!(relay = %addr, "asking the relay: {e:#}"),
                    Err(_) => tracing::debug!(relay = %addr, "the relay did not answer"),
                }
            }
            Action::Probe { peer } => self.probe(peer, addr).await,
            Action::Poke { .. } => poke(addr).await,
        }
    }

    /// Tries the direct path with relayed member `peer` (at `addr`): it starts sending to our
    /// direct endpoint, we to its; kept when a check goes and comes back straight.
    async fn probe(&self, peer: PublicKey, addr: Ipv6Addr) {
        let ask_for = |step| {
            let req = PeerRequest::Probe { step };
            async move {
                matches!(
                    tokio::time::timeout(Duration::from_millis(900), ask(addr, &req)).await,
                    Ok(Ok(PeerReply { ok: true, .. }))
                )
            }
        };
        if !ask_for(ProbeStep::Start).await {
            return;
        }
        // The relay port closes first: packets still arriving through it would pull
        // WireGuard back to the relay on both sides.
        let relay = {
            let st = self.state.lock().await;
            st.paths
                .path(&peer)
                .and_then(|(_, via)| via)
                .and_then(|v| st.members.iter().find(|m| m.key == v))
                .map(|m| m.address)
        };
        if let Some(relay) = relay {
            let req = PeerRequest::Release {
                peer: peer.to_base64(),
            };
            let _ = tokio::time::timeout(Duration::from_millis(900), ask(relay, &req)).await;
        }
        let direct = {
            let mut st = self.state.lock().await;
            let now = self.now_s();
            let State { paths, members, .. } = &mut *st;
            let Some(direct) = paths.probe_begin(&peer, members, now) else {
                return;
            };
            if let Err(e) = self.apply_peers(&st) {
                tracing::error!("applying a probe: {e:#}");
            }
            direct
        };
        let until = tokio::time::Instant::now() + PROBE_CHECK_FOR;
        let mut works = false;
        while !works && tokio::time::Instant::now() < until {
            if ask_for(ProbeStep::Check).await {
                works = self
                    .live()
                    .ok()
                    .and_then(|l| l.into_iter().find(|l| l.key == peer))
                    .is_some_and(|l| l.endpoint == Some(direct));
            }
            if !works {
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
        {
            let mut st = self.state.lock().await;
            let now = self.now_s();
            st.paths.probe_end(&peer, works, now);
            if let Err(e) = self.apply_peers(&st) {
                tracing::error!("ending a probe: {e:#}");
            }
        }
        if works {
            ask_for(ProbeStep::Keep).await;
            tracing::info!(%addr, endpoint = %direct, "the direct path works again: off the relay");
        } else {
            tracing::info!(%addr, endpoint = %direct, "the direct path is still closed: staying on the relay");
        }
    }

    /// Each minute: re-apply (a no-op unless wireguard-go restarted and lost the device's
    /// configuration) and send our roster to every member.
    async fn push_loop(self: Arc<Self>) {
        loop {
            tokio::time::sleep(PUSH_EVERY).await;
            {
                let mut st = self.state.lock().await;
                st.resolve_members();
                if let Err(e) = self.apply(&st).await {
                    tracing::error!("re-applying the overlay: {e:#}");
                }
            }
            self.push_all().await;
        }
    }

    /// Sends our roster to every other member, concurrently, each with a short timeout.
    async fn push_all(&self) {
        self.push_all_but(None).await
    }

    /// The same, but not to the member at `except` (the one it came from).
    async fn push_all_but(&self, except: Option<IpAddr>) {
        let (text, targets) = {
            let st = self.state.lock().await;
            let text = roster_to_toml(&st.config.roster);
            let targets: Vec<(String, Ipv6Addr)> = st
                .config
                .roster
                .members
                .iter()
                .filter(|m| m.name != st.config.name)
                .filter(|m| except != Some(IpAddr::V6(m.overlay_v6())))
                .map(|m| (m.name.clone(), m.overlay_v6()))
                .collect();
            (text, targets)
        };
        let mut pushes = tokio::task::JoinSet::new();
        for (name, addr) in targets {
            let req = PeerRequest::Roster { text: text.clone() };
            pushes.spawn(async move {
                let r = tokio::time::timeout(Duration::from_secs(5), ask(addr, &req)).await;
                (name, r)
            });
        }
        while let Some(Ok((name, r))) = pushes.join_next().await {
            match r {
                Ok(Ok(reply)) if reply.ok => tracing::info!(member = %name, "roster sent"),
                Ok(Ok(reply)) => {
                    tracing::debug!(member = %name, "roster not taken: {}", reply.error.unwrap_or_default())
                }
                Ok(Err(e)) => tracing::debug!(member = %name, "roster push: {e:#}"),
                Err(_) => tracing::debug!(member = %name, "roster push timed out"),
            }
        }
    }
}

/// A datagram to a member's overlay address (the discard port): WireGuard, which has no
/// session with it, starts a handshake at once.
async fn poke(addr: Ipv6Addr) {
    if let Ok(s) = tokio::net::UdpSocket::bind((Ipv6Addr::UNSPECIFIED, 0)).await {
        let _ = s.send_to(b"", (addr, 9)).await;
    }
}

/// One request to a window's enrollment port, one reply.
async fn ask(addr: Ipv6Addr, req: &PeerRequest) -> Result<PeerReply> {
    let mut s = TcpStream::connect(SocketAddr::new(IpAddr::V6(addr), ENROLL_PORT))
        .await
        .with_context(|| format!("connecting to [{addr}]:{ENROLL_PORT}"))?;
    s.write_all(&ewindow_io::lines::encode(req)).await?;
    let (read, _w) = s.into_split();
    let answer = one_line(read)
        .await
        .ok_or_else(|| anyhow!("[{addr}]:{ENROLL_PORT} closed without answering"))?;
    serde_json::from_str(answer.trim()).context("unreadable answer")
}

/// What `redeem` needs besides the code.
pub struct RedeemOptions {
    /// The overlay's paths and interface.
    pub overlay: Options,
    /// The WireGuard port this window will listen on.
    pub listen_port: u16,
    /// How long to try reaching the inviter.
    pub timeout: Duration,
}

/// Where other members can reach this window, for its roster entry: the `--endpoint`s, or
/// out of the box the LAN address it has now (WireGuard follows a window that moves).
fn own_endpoints(opts: &Options, listen_port: u16) -> Vec<String> {
    if !opts.endpoints.is_empty() {
        return opts.endpoints.clone();
    }
    link::lan_endpoint(&link::local_addresses(), listen_port)
        .map(|a| vec![a.to_string()])
        .unwrap_or_default()
}

/// `ewindow-overlay found NAME`: start a new network with this window as its first member
/// (its roster signed by itself, version 1). Writes the window file, which must not exist.
pub fn found(opts: &Options, name: &str, listen_port: u16) -> Result<()> {
    if opts.window.exists() {
        bail!(
            "{} exists: this window already belongs to a network",
            opts.window.display()
        );
    }
    window::validate_name(name).map_err(|e| anyhow!("`{name}`: {e}"))?;
    let key = identity::load_or_create(&opts.identity)?;
    let endpoints = own_endpoints(opts, listen_port)
        .iter()
        .map(|e| e.parse().map_err(|m| anyhow!("endpoint {e}: {m}")))
        .collect::<Result<Vec<Endpoint>>>()?;
    let me = Member {
        name: name.to_owned(),
        public_key: key.public_key(),
        endpoints,
        relay: false,
    };
    let config = WindowConfig {
        name: name.to_owned(),
        listen_port,
        open_hours: OpenHours::Always,
        partner: None,
        presence_interval_s: window::DEFAULT_PRESENCE_INTERVAL_S,
        roster: roster::founded(me, &key),
        media: Default::default(),
        button: Default::default(),
    };
    let text = window::validated_text(&opts.window, &config, Some(&key.public_key()))
        .map_err(|e| anyhow!("{e}"))?;
    ewindow_io::write_atomically(&opts.window, text.as_bytes(), 0o644)?;
    tracing::info!(name, "founded a new network");
    Ok(())
}

/// `ewindow-overlay redeem CODE`: join the network with an invitation. Returns the name this
/// window was admitted under and the member names.
pub async fn redeem(code: &str, ro: RedeemOptions) -> Result<(String, Vec<String>)> {
    let opts = &ro.overlay;
    let inv = Invitation::decode(code).map_err(|e| anyhow!("{e}"))?;
    let now = now_unix();
    // A clock that is plainly set (after 2024) can tell expiry here; the inviter decides anyway.
    if now > 1_700_000_000 && inv.is_expired(now) {
        bail!(
            "this invitation expired {} ago; ask the member who invited you for a new one",
            roster::human_age(now - inv.expires_unix as u64)
        );
    }
    if opts.window.exists() {
        bail!(
            "{} exists: this window already belongs to a network",
            opts.window.display()
        );
    }
    let key = identity::load_or_create(&opts.identity)?;
    let backend = wg::backend(&opts.backend)?;
    let iface = wg::iface(&opts.iface)?;
    if backend == Backend::Userspace {
        uapi::wait_for_socket(&opts.iface, Duration::from_secs(10)).await?;
    }
    let temp = inv.temp_private_key();
    let inviter = overlay_v6(&inv.inviter_key);
    let endpoint: Endpoint = inv
        .endpoint
        .to_string()
        .parse()
        .map_err(|e| anyhow!("invitation endpoint: {e}"))?;
    let peer = WantedPeer {
        label: "inviter".into(),
        public_key: inv.inviter_key,
        address: inviter,
        endpoints: vec![endpoint],
    };
    let inviter_at = wg::resolve(&peer.endpoints).first().copied();
    wg::configure(&iface, backend, &temp, ro.listen_port, &[peer], |_| {
        inviter_at
    })?;
    link::configure(&opts.iface, overlay_v6(&temp.public_key())).await?;
    tracing::info!(inviter = %inv.endpoint, "reaching the inviter with the invitation's key");
    let req = PeerRequest::Redeem {
        id: inv.id(),
        public_key: key.public_key().to_base64(),
        endpoints: own_endpoints(opts, ro.listen_port),
    };
    let deadline = tokio::time::Instant::now() + ro.timeout;
    let reply = loop {
        match tokio::time::timeout_at(deadline, ask(inviter, &req)).await {
            Ok(Ok(r)) => break r,
            Ok(Err(e)) if tokio::time::Instant::now() < deadline => {
                tracing::debug!("inviter not reached yet: {e:#}");
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            Ok(Err(e)) => bail!("could not reach the inviter at {}: {e:#}", inv.endpoint),
            Err(_) => bail!(
                "could not reach the inviter at {} within {:?}",
                inv.endpoint,
                ro.timeout
            ),
        }
    };
    if !reply.ok {
        bail!(
            "the inviter refused: {}",
            reply.error.unwrap_or_else(|| "no reason given".into())
        );
    }
    let name = reply
        .name
        .ok_or_else(|| anyhow!("the inviter did not say our name"))?;
    let roster = parse_roster(
        Path::new("roster from the inviter"),
        reply.roster.as_deref().unwrap_or(""),
    )
    .map_err(|e| anyhow!("{e}"))?;
    let config = WindowConfig {
        name: name.clone(),
        listen_port: ro.listen_port,
        open_hours: OpenHours::Always,
        partner: None,
        presence_interval_s: window::DEFAULT_PRESENCE_INTERVAL_S,
        roster,
        media: Default::default(),
        button: Default::default(),
    };
    let text = window::validated_text(&opts.window, &config, Some(&key.public_key()))
        .map_err(|e| anyhow!("the inviter's roster does not fit this window: {e}"))?;
    ewindow_io::write_atomically(&opts.window, text.as_bytes(), 0o644)?;
    let names = config
        .roster
        .members
        .iter()
        .map(|m| m.name.clone())
        .collect();
    Ok((name, names))
}
