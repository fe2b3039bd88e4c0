//! WireGuard configuration through wireguard-control: kernel backend (generic netlink) when
//! the kernel has WireGuard, else userspace (wireguard-go's UAPI socket; wireguard-go runs as
//! its own supervised service in the foreground).
//!
//! **Invariant:** re-applying changes only what differs: new peers are added, vanished ones
//! removed, changed ones updated, identical ones untouched — their sessions (and a call
//! through them) go on. The device's key and port are written only when they differ
//! (wireguard-go rebinds its sockets on every `listen_port=`).

use std::net::{SocketAddr, ToSocketAddrs};
use std::time::SystemTime;

use anyhow::{anyhow, bail, Context, Result};
use ewindow_protocol::keys::PrivateKey;
use ewindow_protocol::window::{Endpoint, PublicKey};
use nix::errno::Errno;
use wireguard_control::{
    AllowedIp, Backend, Device, DeviceUpdate, InterfaceName, Key, PeerConfigBuilder, PeerInfo,
};

use crate::roster::WantedPeer;

/// Persistent keepalive for every peer: keeps NAT mappings open and handshakes fresh.
pub const KEEPALIVE_S: u16 = 25;

/// Which backend to use: `auto` picks the kernel when it has WireGuard.
pub fn backend(choice: &str) -> Result<Backend> {
    match choice {
        "kernel" => Ok(Backend::Kernel),
        "userspace" => Ok(Backend::Userspace),
        "auto" => Ok(if std::path::Path::new("/sys/module/wireguard").exists() {
            Backend::Kernel
        } else {
            Backend::Userspace
        }),
        other => bail!("backend `{other}`: use auto, kernel or userspace"),
    }
}

/// Parses an interface name.
pub fn iface(name: &str) -> Result<InterfaceName> {
    name.parse()
        .map_err(|e| anyhow!("interface name `{name}`: {e}"))
}

fn key(k: &PublicKey) -> Key {
    Key(k.0)
}

/// A peer resolved for the device.
struct Peer {
    public_key: Key,
    /// Set when `Some`; `None` leaves the device's (roamed, or none yet).
    endpoint: Option<SocketAddr>,
    allowed: AllowedIp,
}

impl Peer {
    fn builder(&self) -> PeerConfigBuilder {
        let mut b = PeerConfigBuilder::new(&self.public_key)
            .set_persistent_keepalive_interval(KEEPALIVE_S)
            .replace_allowed_ips()
            .add_allowed_ips(std::slice::from_ref(&self.allowed));
        if let Some(e) = self.endpoint {
            b = b.set_endpoint(e);
        }
        b
    }

    fn matches(&self, live: &PeerInfo) -> bool {
        let c = &live.config;
        // The live endpoint roams with the peer; only one we set is compared.
        c.allowed_ips == [self.allowed.clone()]
            && (self.endpoint.is_none() || c.endpoint == self.endpoint)
            && c.persistent_keepalive_interval.unwrap_or(0) == KEEPALIVE_S
    }
}

/// Every endpoint that resolves, in order (addresses need no lookup; names are looked up here).
pub fn resolve(endpoints: &[Endpoint]) -> Vec<SocketAddr> {
    endpoints
        .iter()
        .filter_map(|e| match e.ip() {
            Some(ip) => Some(SocketAddr::new(ip, e.port)),
            None => (e.host.as_str(), e.port)
                .to_socket_addrs()
                .ok()
                .and_then(|mut a| a.next()),
        })
        .collect()
}

/// What one apply changed.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Changes {
    /// Peers added.
    pub added: usize,
    /// Peers updated in place.
    pub changed: usize,
    /// Peers removed.
    pub removed: usize,
    /// Peers left alone.
    pub unchanged: usize,
}

/// The live device, or `None` when it does not exist yet (kernel backend before the first
/// apply creates it).
pub fn get(iface: &InterfaceName, backend: Backend) -> Result<Option<Device>> {
    match Device::get(iface, backend) {
        Ok(d) => Ok(Some(d)),
        Err(e)
            if backend != Backend::Userspace
                && matches!(
                    e.raw_os_error().map(Errno::from_raw),
                    Some(Errno::ENODEV | Errno::ENOENT)
                ) =>
        {
            Ok(None)
        }
        Err(e) => Err(e).with_context(|| format!("reading {iface} ({backend:?})")),
    }
}

/// Brings the device to this key, port and exactly these peers, in one apply; `endpoint`
/// says where each peer's packets go (`None`: leave the device's).
pub fn configure(
    iface: &InterfaceName,
    backend: Backend,
    private_key: &PrivateKey,
    listen_port: u16,
    wanted: &[WantedPeer],
    endpoint: impl Fn(&WantedPeer) -> Option<SocketAddr>,
) -> Result<Changes> {
    let live = get(iface, backend)?;
    let private = Key(*private_key.as_bytes());
    let mut update = DeviceUpdate::new();
    if live.as_ref().and_then(|d| d.private_key.as_ref()) != Some(&private) {
        update = update.set_private_key(private);
    }
    if live.as_ref().and_then(|d| d.listen_port) != Some(listen_port) {
        update = update.set_listen_port(listen_port);
    }
    let peers: Vec<Peer> = wanted
        .iter()
        .map(|w| Peer {
            public_key: key(&w.public_key),
            endpoint: endpoint(w),
            allowed: AllowedIp {
                address: w.address.into(),
                cidr: 128,
            },
        })
        .collect();
    let live_peers = live.map(|d| d.peers).unwrap_or_default();
    let mut changes = Changes::default();
    for p in &peers {
        match live_peers
            .iter()
            .find(|l| l.config.public_key == p.public_key)
        {
            None => {
                changes.added += 1;
                update = update.add_peer(p.builder());
            }
            Some(l) if p.matches(l) => changes.unchanged += 1,
            Some(_) => {
                changes.changed += 1;
                update = update.add_peer(p.builder());
            }
        }
    }
    for l in &live_peers {
        if !peers.iter().any(|p| p.public_key == l.config.public_key) {
            changes.removed += 1;
            update = update.remove_peer_by_key(&l.config.public_key);
        }
    }
    if update != DeviceUpdate::new() {
        update
            .apply(iface, backend)
            .with_context(|| format!("applying the WireGuard configuration to {iface}"))?;
    }
    Ok(changes)
}

/// What the device says of one peer.
pub struct LivePeer {
    /// Its key.
    pub key: PublicKey,
    /// The endpoint in use (configured or roamed).
    pub endpoint: Option<SocketAddr>,
    /// Seconds since the last handshake.
    pub handshake_age_s: Option<u64>,
    /// Bytes received.
    pub rx: u64,
    /// Bytes sent.
    pub tx: u64,
}

/// Each peer's key, endpoint, seconds since its last handshake and traffic.
pub fn peers(iface: &InterfaceName, backend: Backend) -> Result<Vec<LivePeer>> {
    let Some(d) = get(iface, backend)? else {
        return Ok(Vec::new());
    };
    let now = SystemTime::now();
    Ok(d.peers
        .into_iter()
        .map(|p| {
            let age = p
                .stats
                .last_handshake_time
                .and_then(|t| now.duration_since(t).ok())
                .map(|d| d.as_secs());
            let mut k = [0u8; 32];
            k.copy_from_slice(p.config.public_key.as_bytes());
            LivePeer {
                key: PublicKey(k),
                endpoint: p.config.endpoint,
                handshake_age_s: age,
                rx: p.stats.rx_bytes,
                tx: p.stats.tx_bytes,
            }
        })
        .collect())
}
