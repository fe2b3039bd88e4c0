//! The window's members, from `window.toml`: who may call or ping us (the access policy), where
//! a member is reached, their presence (SIP OPTIONS every `presence_interval_s`), and reloading
//! the file on SIGHUP without dropping a call.
//!
//! **Invariant:** a request is served only when its source address is a member's overlay
//! address *and* its From user is that member's name. The source is the packet's (the
//! transport writes it into the Via as `received`); inside WireGuard it cannot be forged, since
//! each peer may only send from its own overlay address.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use anyhow::{anyhow, Result};
use ewindow_protocol::phone::MemberPresence;
use ewindow_protocol::window::{self, Roster, WindowConfig};

use crate::sip::{AccessPolicy, Pinger, Requester};

/// The SIP port every window listens on, on its overlay address.
pub const SIP_PORT: u16 = 5060;

/// Whether a request from `who` may be served: its source is a member's overlay address and
/// its From user is that member's name.
pub fn allowed(roster: &Roster, who: &Requester) -> bool {
    let Some(source) = who.source else {
        return false;
    };
    match roster.by_overlay_addr(source.ip()) {
        Some(m) => who.from_user.as_deref() == Some(m.name.as_str()),
        None => false,
    }
}

/// The members and what we know of them.
pub struct Members {
    path: PathBuf,
    config: RwLock<WindowConfig>,
    presence: Mutex<BTreeMap<String, MemberPresence>>,
    /// Woken after each presence round and each reload.
    pub changed: Arc<tokio::sync::Notify>,
}

impl Members {
    /// Reads `window.toml`.
    pub fn load(path: &Path) -> Result<Arc<Members>> {
        let config = window::load(path, None).map_err(|e| anyhow!("{e}"))?;
        Ok(Arc::new(Members {
            path: path.to_owned(),
            config: RwLock::new(config),
            presence: Mutex::new(BTreeMap::new()),
            changed: Arc::new(tokio::sync::Notify::new()),
        }))
    }

    /// Reads the file again. A broken file is reported and the members in use are kept.
    pub fn reload(&self) -> Result<()> {
        let fresh = window::load(&self.path, None).map_err(|e| anyhow!("{e}"))?;
        let names: Vec<String> = fresh
            .roster
            .members
            .iter()
            .map(|m| m.name.clone())
            .collect();
        *self.config.write().unwrap_or_else(|e| e.into_inner()) = fresh;
        self.presence
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|name, _| names.contains(name));
        tracing::info!(members = names.len(), "members reloaded");
        self.changed.notify_one();
        Ok(())
    }

    fn with<T>(&self, f: impl FnOnce(&WindowConfig) -> T) -> T {
        f(&self.config.read().unwrap_or_else(|e| e.into_inner()))
    }

    /// The window file as loaded.
    pub fn config(&self) -> WindowConfig {
        self.with(|c| c.clone())
    }

    /// This window's member name.
    pub fn own_name(&self) -> String {
        self.with(|c| c.name.clone())
    }

    /// Our SIP address: our overlay address, port 5060.
    pub fn own_sip_addr(&self) -> Result<SocketAddr> {
        self.with(|c| {
            c.own()
                .map(|m| SocketAddr::new(IpAddr::V6(m.overlay_v6()), SIP_PORT))
                .ok_or_else(|| anyhow!("{} is not in its own roster", c.name))
        })
    }

    /// The SIP URI of a member, by name.
    pub fn uri_of(&self, name: &str) -> Option<String> {
        self.with(|c| {
            c.roster
                .member(name)
                .map(|m| format!("sip:{}@[{}]:{SIP_PORT}", m.name, m.overlay_v6()))
        })
    }

    /// The access policy for the SIP agent: members only, from their overlay address.
    pub fn policy(self: &Arc<Self>) -> AccessPolicy {
        let me = self.clone();
        Arc::new(move |who: &Requester| me.with(|c| allowed(&c.roster, who)))
    }

    /// Presence of every member but us, in name order.
    pub fn presence(&self) -> Vec<MemberPresence> {
        let known = self
            .presence
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        self.with(|c| {
            c.roster
                .members
                .iter()
                .filter(|m| m.name != c.name)
                .map(|m| {
                    known
                        .get(&m.name)
                        .cloned()
                        .unwrap_or_else(|| MemberPresence {
                            name: m.name.clone(),
                            address: m.overlay_v6().to_string(),
                            ..MemberPresence::default()
                        })
                })
                .collect()
        })
    }

    /// Pings every other member with OPTIONS, every `presence_interval_s`, forever.
    pub async fn presence_loop(self: Arc<Self>, pinger: Pinger) {
        loop {
            let (targets, every) = self.with(|c| {
                (
                    c.roster
                        .members
                        .iter()
                        .filter(|m| m.name != c.name)
                        .map(|m| (m.name.clone(), m.overlay_v6()))
                        .collect::<Vec<_>>(),
                    Duration::from_secs(c.presence_interval_s as u64),
                )
            });
            let mut pings = tokio::task::JoinSet::new();
            for (name, addr) in targets {
                let pinger = pinger.clone();
                pings.spawn(async move {
                    let uri = format!("sip:{name}@[{addr}]:{SIP_PORT}");
                    let result = pinger.ping(&uri, Duration::from_secs(2)).await;
                    (name, addr, result)
                });
            }
            let mut results = Vec::new();
            while let Some(r) = pings.join_next().await {
                if let Ok(r) = r {
                    results.push(r);
                }
            }
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0);
            self.record(results, now);
            self.changed.notify_one();
            tokio::time::sleep(every).await;
        }
    }

    fn record(&self, results: Vec<(String, std::net::Ipv6Addr, Result<Duration>)>, now: u64) {
        {
            let mut presence = self.presence.lock().unwrap_or_else(|e| e.into_inner());
            for (name, addr, result) in results {
                let entry = presence
                    .entry(name.clone())
                    .or_insert_with(|| MemberPresence {
                        name: name.clone(),
                        ..MemberPresence::default()
                    });
                entry.address = addr.to_string();
                match result {
                    Ok(rtt) => {
                        if !entry.reachable {
                            tracing::info!(member = %name, "member reachable");
                        }
                        entry.reachable = true;
                        entry.rtt_ms = Some(rtt.as_secs_f64() * 1000.0);
                        entry.last_seen_unix = Some(now);
                        entry.error = None;
                    }
                    Err(e) => {
                        if entry.reachable {
                            tracing::info!(member = %name, "member unreachable: {e:#}");
                        }
                        entry.reachable = false;
                        entry.rtt_ms = None;
                        entry.error = Some(format!("{e:#}"));
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ewindow_protocol::window::{parse, PublicKey};

    fn key(n: u8) -> PublicKey {
        PublicKey([n; 32])
    }

    fn roster() -> Roster {
        let text = format!(
            "[window]\nname = \"alice\"\n\
             [[member]]\nname = \"alice\"\npublic_key = \"{}\"\n\
             [[member]]\nname = \"bob\"\npublic_key = \"{}\"\n",
            key(1),
            key(2)
        );
        parse(Path::new("window.toml"), &text, None).unwrap().roster
    }

    fn who(ip: IpAddr, user: Option<&str>) -> Requester {
        Requester {
            source: Some(SocketAddr::new(ip, 5060)),
            from_user: user.map(str::to_owned),
        }
    }

    #[test]
    fn members_from_their_own_address_under_their_own_name_only() {
        let r = roster();
        let bob = IpAddr::V6(window::overlay_v6(&key(2)));
        let alice = IpAddr::V6(window::overlay_v6(&key(1)));
        assert!(allowed(&r, &who(bob, Some("bob"))));
        // Bob's address claiming to be Alice, or nobody.
        assert!(!allowed(&r, &who(bob, Some("alice"))));
        assert!(!allowed(&r, &who(bob, None)));
        assert!(allowed(&r, &who(alice, Some("alice"))));
        // Underlay or unknown addresses.
        assert!(!allowed(
            &r,
            &who("192.168.77.2".parse().unwrap(), Some("bob"))
        ));
        assert!(!allowed(
            &r,
            &who("fd77:696e:646f::1".parse().unwrap(), Some("bob"))
        ));
        assert!(!allowed(
            &r,
            &Requester {
                source: None,
                from_user: Some("bob".into())
            }
        ));
    }
}
