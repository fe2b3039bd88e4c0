//! The running overlay (`ewindow-overlay up`) and a newcomer's redemption (`redeem`).
//!
//! `up`: identity key (made at first start), `window.toml` (waited for at first boot), the
//! WireGuard device and link, then `READY` to `$EWINDOW_READY_FD`; then it serves the control
//! socket and the enrollment port, re-applies the roster on SIGHUP or when a member sends a
//! newer one, and pushes its roster to every member each minute (and at once after a change),
//! so updates spread even to members that were offline.

use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use ewindow_protocol::invite::Invitation;
use ewindow_protocol::keys::PrivateKey;
use ewindow_protocol::overlay::{PeerReply, PeerRequest, PeerStatus, Reply, Request, ENROLL_PORT};
use ewindow_protocol::window::{
    self, overlay_v6, parse_roster, roster_to_toml, Endpoint, Member, OpenHours, PublicKey,
    WindowConfig,
};
use tokio::io::{AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream, UnixListener, UnixStream};
use tokio::sync::Mutex;
use wireguard_control::{Backend, InterfaceName};

use crate::identity;
use crate::roster::{self, Pending, WantedPeer};
use crate::{link, uapi, wg};

/// Longest line either socket reads.
const MAX_LINE: usize = 256 * 1024;
/// Connections either socket serves at once (more wait in the backlog).
const MAX_CONNECTIONS: usize = 32;
/// How often the roster is pushed to every member.
const PUSH_EVERY: Duration = Duration::from_secs(60);

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
}

struct Overlay {
    opts: Options,
    iface: InterfaceName,
    backend: Backend,
    state: Mutex<State>,
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
    let overlay = Arc::new(Overlay {
        iface,
        backend,
        state: Mutex::new(State {
            key,
            config,
            pending,
        }),
        opts,
    });
    {
        let st = overlay.state.lock().await;
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
    let enroll = TcpListener::bind(SocketAddr::new(
        IpAddr::V6(overlay_v6(&own_pub)),
        ENROLL_PORT,
    ))
    .await
    .context("binding the enrollment port on the overlay address")?;
    tokio::spawn(overlay.clone().serve_enroll(enroll));
    tokio::spawn(overlay.clone().push_loop());

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
        let wanted =
            roster::wanted_peers(&st.config.roster, &st.config.name, &st.pending, now_unix());
        let changes = wg::configure(
            &self.iface,
            self.backend,
            &st.key,
            st.config.listen_port,
            &wanted,
        )?;
        link::configure(&self.opts.iface, overlay_v6(&st.key.public_key())).await?;
        if changes.added + changes.changed + changes.removed > 0 {
            tracing::info!(
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
                    let Some(line) = one_line(read).await else {
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
            out.push(PeerStatus {
                name,
                public_key: key.to_base64(),
                address: overlay_v6(&key).to_string(),
                endpoint: endpoint.map(|e| e.to_string()),
                last_handshake_age_s: age,
                rx_bytes: rx,
                tx_bytes: tx,
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
                    let Ok(Some(line)) =
                        tokio::time::timeout(Duration::from_secs(10), one_line(read)).await
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
        Ok(PeerReply {
            ok: true,
            ..PeerReply::default()
        })
    }

    /// Each minute: re-apply (a no-op unless wireguard-go restarted and lost the device's
    /// configuration) and send our roster to every member.
    async fn push_loop(self: Arc<Self>) {
        loop {
            tokio::time::sleep(PUSH_EVERY).await;
            {
                let st = self.state.lock().await;
                if let Err(e) = self.apply(&st).await {
                    tracing::error!("re-applying the overlay: {e:#}");
                }
            }
            self.push_all().await;
        }
    }

    /// Sends our roster to every other member, concurrently, each with a short timeout.
    async fn push_all(&self) {
        let (text, targets) = {
            let st = self.state.lock().await;
            let text = roster_to_toml(&st.config.roster);
            let targets: Vec<(String, Ipv6Addr)> = st
                .config
                .roster
                .members
                .iter()
                .filter(|m| m.name != st.config.name)
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
    wg::configure(&iface, backend, &temp, ro.listen_port, &[peer])?;
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
