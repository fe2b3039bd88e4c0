//! A relay member's side (`relay = true` in its roster entry): for each pair of members that
//! both asked (`PeerRequest::Relay`), one UDP port on the relay's overlay address that passes
//! datagrams between the two ends' WireGuard ports — the pair's own WireGuard session,
//! ciphertext the relay cannot read (see `paths`).
//!
//! **Invariants**
//! - A datagram is passed on only when it comes from one end's overlay address and port
//!   and both ends asked within [`LEASE_TTL`]; it goes to the other end only. The overlay
//!   addresses are WireGuard's to vouch for: the socket is bound to the overlay device, so a
//!   packet for the relay's overlay address arriving on any other interface finds no socket.
//! - A pair nobody asked for within [`LEASE_TTL`] is closed.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, Result};
use ewindow_protocol::window::PublicKey;
use tokio::net::UdpSocket;
use tokio::time::Instant;

use crate::paths::LEASE_EVERY_S;

/// A pair not asked for again within this is closed (three missed renewals).
pub const LEASE_TTL: Duration = Duration::from_secs(3 * LEASE_EVERY_S);

/// One end of a pair.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct End {
    key: PublicKey,
    address: Ipv6Addr,
    port: u16,
    asked: Instant,
}

/// Pure: the two ends of a pair and where a datagram goes.
#[derive(Debug, Clone, Default)]
struct Ends {
    ends: Vec<End>,
}

impl Ends {
    fn ask(&mut self, key: PublicKey, address: Ipv6Addr, port: u16, now: Instant) {
        self.ends.retain(|e| e.key != key);
        self.ends.push(End {
            key,
            address,
            port,
            asked: now,
        });
    }

    fn live(&self, now: Instant) -> bool {
        self.ends
            .iter()
            .any(|e| now.duration_since(e.asked) < LEASE_TTL)
    }

    /// Where a datagram from `from` goes: the other end, when both asked lately.
    fn to(&self, from: SocketAddr, now: Instant) -> Option<SocketAddr> {
        let fresh = |e: &&End| now.duration_since(e.asked) < LEASE_TTL;
        let [a, b] = self.ends.as_slice() else {
            return None;
        };
        if !fresh(&a) || !fresh(&b) {
            return None;
        }
        let at = |e: &End| SocketAddr::new(IpAddr::V6(e.address), e.port);
        if from == at(a) {
            Some(at(b))
        } else if from == at(b) {
            Some(at(a))
        } else {
            None
        }
    }
}

struct Pair {
    port: u16,
    ends: Arc<Mutex<Ends>>,
}

/// The pairs this relay carries.
pub struct Relay {
    own: Ipv6Addr,
    device: String,
    pairs: tokio::sync::Mutex<HashMap<(PublicKey, PublicKey), Pair>>,
}

impl Relay {
    /// A relay on overlay address `own` of `device`.
    pub fn new(own: Ipv6Addr, device: &str) -> Relay {
        Relay {
            own,
            device: device.to_owned(),
            pairs: tokio::sync::Mutex::new(HashMap::new()),
        }
    }

    /// Member `from` (at overlay `address`, WireGuard port `port`) asks to reach `to`: the
    /// pair's port (the same for both ends).
    pub async fn lease(
        &self,
        from: PublicKey,
        address: Ipv6Addr,
        port: u16,
        to: PublicKey,
    ) -> Result<u16> {
        let id = if from.0 < to.0 {
            (from, to)
        } else {
            (to, from)
        };
        let now = Instant::now();
        let mut pairs = self.pairs.lock().await;
        pairs.retain(|_, p| p.ends.lock().map(|e| e.live(now)).unwrap_or(false));
        if let Some(p) = pairs.get(&id) {
            if let Ok(mut e) = p.ends.lock() {
                e.ask(from, address, port, now);
            }
            return Ok(p.port);
        }
        let socket = UdpSocket::bind(SocketAddr::new(IpAddr::V6(self.own), 0))
            .await
            .context("binding a relay port on the overlay address")?;
        nix::sys::socket::setsockopt(
            &socket,
            nix::sys::socket::sockopt::BindToDevice,
            &std::ffi::OsString::from(&self.device),
        )
        .with_context(|| format!("binding the relay port to {}", self.device))?;
        let relay_port = socket.local_addr()?.port();
        let mut ends = Ends::default();
        ends.ask(from, address, port, now);
        let ends = Arc::new(Mutex::new(ends));
        tokio::spawn(forward(socket, ends.clone()));
        pairs.insert(
            id,
            Pair {
                port: relay_port,
                ends,
            },
        );
        tracing::info!(port = relay_port, "relay port opened for a pair of members");
        Ok(relay_port)
    }

    /// Member `from` no longer wants the pair with `to`: its port closes (datagrams still
    /// in flight through it would pull the other end's WireGuard back to the relay).
    pub async fn release(&self, from: PublicKey, to: PublicKey) {
        let id = if from.0 < to.0 {
            (from, to)
        } else {
            (to, from)
        };
        if let Some(p) = self.pairs.lock().await.remove(&id) {
            if let Ok(mut e) = p.ends.lock() {
                e.ends.clear();
            }
            tracing::info!(port = p.port, "relay port closed: released");
        }
    }
}

/// Passes datagrams between the pair's ends until nobody asked for it within [`LEASE_TTL`].
async fn forward(socket: UdpSocket, ends: Arc<Mutex<Ends>>) {
    let mut buf = vec![0u8; 65_536];
    let mut dropped = 0u64;
    loop {
        let got = tokio::time::timeout(LEASE_TTL, socket.recv_from(&mut buf)).await;
        let now = Instant::now();
        let Ok(ends) = ends.lock().map(|e| e.clone()) else {
            return;
        };
        if !ends.live(now) {
            tracing::info!(dropped, "relay port closed: not asked for");
            return;
        }
        let Ok(Ok((n, from))) = got else { continue };
        match ends.to(from, now) {
            Some(to) => {
                if let Err(e) = socket.send_to(&buf[..n], to).await {
                    tracing::debug!(%to, "relaying: {e}");
                }
            }
            None => dropped += 1,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(n: u8) -> PublicKey {
        PublicKey([n; 32])
    }

    fn addr(n: u16) -> Ipv6Addr {
        Ipv6Addr::new(0xfd77, 0x696e, 0x646f, 0, 0, 0, 0, n)
    }

    #[test]
    fn a_datagram_goes_to_the_other_end_only_when_both_asked_lately() {
        let t0 = Instant::now();
        let mut e = Ends::default();
        let a = SocketAddr::new(IpAddr::V6(addr(1)), 51820);
        let b = SocketAddr::new(IpAddr::V6(addr(2)), 51821);
        e.ask(key(1), addr(1), 51820, t0);
        assert_eq!(e.to(a, t0), None, "only one end asked");
        e.ask(key(2), addr(2), 51821, t0);
        assert_eq!(e.to(a, t0), Some(b));
        assert_eq!(e.to(b, t0), Some(a));
        // Another port or address of the same member, or anyone else: nothing.
        assert_eq!(e.to(SocketAddr::new(IpAddr::V6(addr(1)), 1), t0), None);
        assert_eq!(e.to(SocketAddr::new(IpAddr::V6(addr(3)), 51820), t0), None);
        // Asking again replaces the end, it does not add a third.
        e.ask(key(1), addr(1), 51820, t0 + Duration::from_secs(5));
        assert_eq!(e.ends.len(), 2);
        // One end stops asking: nothing passes, though the pair still lives.
        let later = t0 + LEASE_TTL + Duration::from_secs(1);
        e.ask(key(1), addr(1), 51820, later);
        assert_eq!(e.to(a, later), None);
        assert!(e.live(later));
        assert!(!e.live(later + LEASE_TTL));
    }
}
