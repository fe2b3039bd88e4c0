//! Pure: how this window reaches each member — straight to an endpoint, trying endpoints, or
//! through a relay member — from what WireGuard says of each peer (endpoint, handshake age,
//! bytes received), the endpoints other members see it at (hints) and the relay leases. The
//! service feeds it once a second and carries out what it says; nothing here does IO, and time
//! is seconds on a monotonic clock the caller passes in.
//!
//! Crossing NAT: a member C that has a session with both A and B tells each where it sees the
//! other (`seen`). A then sends its handshakes to B's public mapping while B sends to A's, so
//! the NATs that keep one mapping per source port (most home routers, Linux `masquerade`) let
//! both through. When that gives no session within [`RELAY_AFTER_S`], the two go through a
//! relay member: each sets the other's endpoint to a port on the relay's *overlay* address, so
//! the A↔B WireGuard session (its keys, the SIP and SRTP inside) runs end to end inside A↔C and
//! C↔B; the relay forwards ciphertext between two member addresses and never sees the call.
//!
//! **Invariants**
//! - A hint only picks where handshakes are sent; whom a packet is from is WireGuard's to say.
//! - A member with a live direct session keeps the endpoint WireGuard found (it roams with the
//!   member): this module never overwrites it.
//! - A relayed pair tries the direct path again only both at once (a probe the two agree on
//!   over the relayed path, its relay port closed meanwhile so that late relayed packets
//!   cannot pull WireGuard back to it), so a failed try costs at most [`PROBE_FOR_S`] of
//!   traffic.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};

use ewindow_protocol::overlay::Path;
use ewindow_protocol::window::{PublicKey, OVERLAY_V6_PREFIX};

/// WireGuard's REJECT_AFTER_TIME: a session whose last handshake is older carries nothing.
pub const SESSION_S: u64 = 180;
/// No byte from a member for this long (two of its 25-s keepalives missed, and a margin):
/// the path is gone.
pub const SILENT_S: u64 = 60;
/// No session this long after there was something new to try: go through a relay. Three of
/// WireGuard's handshake retries (every 5 s) from each side, after both learned where the
/// other is: a NAT that can be crossed is crossed by the first two that meet (5–10 s here).
pub const RELAY_AFTER_S: u64 = 15;
/// Each endpoint is tried this long before the next (two handshake retries).
pub const TRY_EACH_S: u64 = 10;
/// How often a window tells the members it has a session with where it sees the others
/// (and at once when that changes).
pub const HINT_EVERY_S: u64 = 10;
/// A hint not repeated for this long is forgotten.
pub const HINT_TTL_S: u64 = 6 * HINT_EVERY_S;
/// A relay lease is asked for again this often (a relay forgets a pair not asked for).
pub const LEASE_EVERY_S: u64 = 10;
/// A lease not answered is asked for again after this.
pub const LEASE_RETRY_S: u64 = 3;
/// While relayed, the direct path is tried again this often — and at once when a member sees
/// the other end somewhere new (its NAT changed).
pub const PROBE_EVERY_S: u64 = 600;
/// How long one side of a probe sends to the direct endpoint without being told to keep it.
pub const PROBE_FOR_S: u64 = 4;
/// Endpoints remembered per member, to tell a new one.
const KNOWN_MAX: usize = 16;

/// What WireGuard says of one peer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Live {
    /// Its key.
    pub key: PublicKey,
    /// Where its packets go now (configured, or roamed to where they came from).
    pub endpoint: Option<SocketAddr>,
    /// Seconds since the last handshake.
    pub handshake_age_s: Option<u64>,
    /// Bytes received from it, ever.
    pub rx: u64,
}

/// A member as the roster has it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    /// Its key.
    pub key: PublicKey,
    /// Its name.
    pub name: String,
    /// Its overlay address.
    pub address: Ipv6Addr,
    /// Its roster endpoints, resolved.
    pub endpoints: Vec<SocketAddr>,
    /// Whether it relays.
    pub relay: bool,
}

/// What the service is to do after a step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Ask relay member `relay` for (or renew) a lease for the traffic with `peer`.
    Lease {
        /// The relay.
        relay: PublicKey,
        /// The other end.
        peer: PublicKey,
    },
    /// Agree with `peer` on trying the direct path again.
    Probe {
        /// The other end.
        peer: PublicKey,
    },
    /// Send `peer` a packet over the overlay: WireGuard starts a handshake at once.
    Poke {
        /// The member.
        peer: PublicKey,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Hint {
    from: PublicKey,
    endpoint: SocketAddr,
    handshake_age_s: u64,
    at: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// A live session straight to its endpoint.
    Direct,
    /// No session: trying candidates since `since` (or since something new to try appeared).
    Search { since: u64 },
    /// Through relay `via`; `lease` is the relay's port once it answered.
    Relay {
        via: PublicKey,
        lease: Option<SocketAddr>,
        asked: Option<u64>,
        next_probe: u64,
    },
    /// Relayed, sending to `endpoint` directly for a moment.
    Probe {
        via: PublicKey,
        lease: SocketAddr,
        endpoint: SocketAddr,
        until: u64,
    },
}

#[derive(Debug, Clone)]
struct Track {
    mode: Mode,
    rx: u64,
    rx_at: Option<u64>,
    known: Vec<SocketAddr>,
    /// The endpoint to configure; `None` leaves WireGuard's.
    endpoint: Option<SocketAddr>,
    path: Path,
}

/// Every member's path, and the hints heard.
#[derive(Debug, Default)]
pub struct Paths {
    tracks: HashMap<PublicKey, Track>,
    /// By the member they are about.
    hints: HashMap<PublicKey, Vec<Hint>>,
    /// What we told the members last, and when.
    told: Option<(u64, Vec<(PublicKey, SocketAddr)>)>,
}

/// Whether an address is in the overlay (a relay's port, never a direct endpoint).
fn in_overlay(a: &SocketAddr) -> bool {
    match a.ip() {
        IpAddr::V6(v6) => v6.segments()[..4] == OVERLAY_V6_PREFIX.segments()[..4],
        IpAddr::V4(_) => false,
    }
}

impl Paths {
    /// Nothing known yet.
    pub fn new() -> Paths {
        Paths::default()
    }

    /// Member `from` sees member `about` at `endpoint`, its last handshake `age` s ago.
    pub fn hint(
        &mut self,
        from: PublicKey,
        about: PublicKey,
        endpoint: SocketAddr,
        age: u64,
        now: u64,
    ) {
        // An IPv6 link-local endpoint names an interface of the member that saw it.
        let link_local =
            matches!(endpoint.ip(), IpAddr::V6(v6) if v6.segments()[0] & 0xffc0 == 0xfe80);
        if from == about || in_overlay(&endpoint) || link_local {
            return;
        }
        let list = self.hints.entry(about).or_default();
        list.retain(|h| h.from != from);
        list.push(Hint {
            from,
            endpoint,
            handshake_age_s: age,
            at: now,
        });
    }

    /// Where to try `m`: what members see it at (the newest first), then its roster endpoints.
    fn candidates(&self, m: &Member) -> Vec<SocketAddr> {
        let mut hints: Vec<&Hint> = self
            .hints
            .get(&m.key)
            .map(|l| l.iter().filter(|h| h.handshake_age_s < SESSION_S).collect())
            .unwrap_or_default();
        hints.sort_by_key(|h| (std::cmp::Reverse(h.at), h.handshake_age_s));
        let mut out: Vec<SocketAddr> = Vec::new();
        for e in hints
            .iter()
            .map(|h| h.endpoint)
            .chain(m.endpoints.iter().copied())
        {
            if !out.contains(&e) {
                out.push(e);
            }
        }
        out
    }

    fn direct(&self, key: &PublicKey) -> bool {
        self.tracks.get(key).is_some_and(|t| t.mode == Mode::Direct)
    }

    /// The first relay member (roster order) with a direct session here that sees `m`.
    fn relay_for(&self, m: &Member, members: &[Member]) -> Option<PublicKey> {
        members
            .iter()
            .filter(|r| r.relay && r.key != m.key && self.direct(&r.key))
            .find(|r| {
                self.hints.get(&m.key).is_some_and(|l| {
                    l.iter()
                        .any(|h| h.from == r.key && h.handshake_age_s < SESSION_S)
                })
            })
            .map(|r| r.key)
    }

    /// One step: `members` are the roster's members but this window, `live` what WireGuard
    /// says now. Returns what the service is to ask of other members.
    pub fn step(&mut self, now: u64, members: &[Member], live: &[Live]) -> Vec<Action> {
        for list in self.hints.values_mut() {
            list.retain(|h| h.at + HINT_TTL_S > now);
        }
        self.hints.retain(|_, l| !l.is_empty());
        self.tracks
            .retain(|k, _| members.iter().any(|m| m.key == *k));
        let mut actions = Vec::new();
        for m in members {
            let l = live.iter().find(|l| l.key == m.key);
            let candidates = self.candidates(m);
            let relay = self.relay_for(m, members);
            let t = self.tracks.entry(m.key).or_insert_with(|| Track {
                mode: Mode::Search { since: now },
                rx: 0,
                rx_at: None,
                known: Vec::new(),
                endpoint: None,
                path: Path::Trying,
            });
            let handshake = l
                .and_then(|l| l.handshake_age_s)
                .is_some_and(|a| a < SESSION_S);
            if let Some(l) = l {
                if l.rx != t.rx || (t.rx_at.is_none() && handshake) {
                    t.rx = l.rx;
                    t.rx_at = Some(now);
                }
            }
            let session = handshake && t.rx_at.is_some_and(|at| now - at < SILENT_S);
            let live_ep = l.and_then(|l| l.endpoint);
            let mut fresh = false;
            for c in &candidates {
                if !t.known.contains(c) {
                    fresh = true;
                    t.known.push(*c);
                }
            }
            let excess = t.known.len().saturating_sub(KNOWN_MAX);
            t.known.drain(..excess);

            // Transitions. With a live session, where WireGuard sends decides (it roams to
            // wherever the other end's packets come from): a relay's port, or direct.
            let via_relay = live_ep.filter(in_overlay).and_then(|e| {
                members
                    .iter()
                    .find(|r| IpAddr::V6(r.address) == e.ip())
                    .map(|r| (r.key, e))
            });
            t.mode = match (t.mode, session, via_relay) {
                // The pair's relay port was released for the probe: a new lease.
                (Mode::Probe { via, until, .. }, _, _) if now >= until => Mode::Relay {
                    via,
                    lease: None,
                    asked: None,
                    next_probe: now + PROBE_EVERY_S,
                },
                (mode @ Mode::Probe { .. }, _, _) => mode,
                (
                    Mode::Relay {
                        via,
                        lease,
                        asked,
                        next_probe,
                    },
                    true,
                    Some((r, e)),
                ) if r == via && lease == Some(e) => Mode::Relay {
                    via,
                    lease,
                    asked,
                    next_probe,
                },
                (_, true, Some((via, e))) => Mode::Relay {
                    via,
                    lease: Some(e),
                    asked: None,
                    next_probe: now + PROBE_EVERY_S,
                },
                (_, true, None) if live_ep.is_some() => Mode::Direct,
                (Mode::Direct, _, _) => Mode::Search { since: now },
                (Mode::Search { since }, _, _) if fresh => Mode::Search {
                    since: since.max(now),
                },
                (Mode::Search { since }, _, _) if now.saturating_sub(since) >= RELAY_AFTER_S => {
                    match relay {
                        Some(via) => Mode::Relay {
                            via,
                            lease: None,
                            asked: None,
                            next_probe: now + PROBE_EVERY_S,
                        },
                        None => t.mode,
                    }
                }
                (Mode::Relay { via, .. }, false, _) if relay.is_some_and(|r| r != via) => {
                    Mode::Relay {
                        via: relay.unwrap_or(via),
                        lease: None,
                        asked: None,
                        next_probe: now + PROBE_EVERY_S,
                    }
                }
                (Mode::Relay { lease: Some(_), .. }, false, _) if relay.is_none() => {
                    Mode::Search { since: now }
                }
                (other, _, _) => other,
            };

            // What to configure and to ask.
            let before = t.endpoint;
            match &mut t.mode {
                Mode::Direct => {
                    t.endpoint = None;
                    t.path = Path::Direct;
                }
                Mode::Search { since } => {
                    let tried = now.saturating_sub(*since);
                    t.endpoint = (!candidates.is_empty())
                        .then(|| candidates[(tried / TRY_EACH_S) as usize % candidates.len()]);
                    t.path = if tried < RELAY_AFTER_S && !candidates.is_empty() {
                        Path::Trying
                    } else {
                        Path::Unreachable
                    };
                }
                Mode::Relay {
                    via,
                    lease,
                    asked,
                    next_probe,
                } => {
                    let every = if lease.is_some() {
                        LEASE_EVERY_S
                    } else {
                        LEASE_RETRY_S
                    };
                    if asked.is_none_or(|a| now.saturating_sub(a) >= every) {
                        actions.push(Action::Lease {
                            relay: *via,
                            peer: m.key,
                        });
                        *asked = Some(now);
                    }
                    // Until the relay answers, the last candidate stays.
                    if lease.is_some() {
                        t.endpoint = *lease;
                    }
                    t.path = Path::Relay;
                    if lease.is_some()
                        && session
                        && !candidates.is_empty()
                        && (fresh || now >= *next_probe)
                    {
                        *next_probe = now + PROBE_EVERY_S;
                        actions.push(Action::Probe { peer: m.key });
                    }
                }
                Mode::Probe { endpoint, .. } => {
                    t.endpoint = Some(*endpoint);
                    t.path = Path::Relay;
                }
            }
            // Somewhere new to send to and no session: a packet now starts the handshake,
            // instead of WireGuard's next retry (up to 5 s later).
            if !session && t.endpoint.is_some() && t.endpoint != before {
                actions.push(Action::Poke { peer: m.key });
            }
        }
        actions
    }

    /// Relay `relay` carries our traffic with `peer` at `endpoint` (its overlay address and
    /// the port it answered).
    pub fn leased(&mut self, peer: &PublicKey, relay: &PublicKey, endpoint: SocketAddr) {
        if let Some(t) = self.tracks.get_mut(peer) {
            if let Mode::Relay { via, lease, .. } = &mut t.mode {
                if via == relay {
                    *lease = Some(endpoint);
                    t.endpoint = Some(endpoint);
                }
            }
        }
    }

    /// A probe with `peer` starts: from now until `now + PROBE_FOR_S` its packets go to its
    /// best direct candidate, which is returned (`None`: not relayed, or nothing to try).
    pub fn probe_begin(
        &mut self,
        peer: &PublicKey,
        members: &[Member],
        now: u64,
    ) -> Option<SocketAddr> {
        let m = members.iter().find(|m| m.key == *peer)?;
        let best = *self.candidates(m).first()?;
        let t = self.tracks.get_mut(peer)?;
        match t.mode {
            Mode::Relay {
                via,
                lease: Some(lease),
                ..
            }
            | Mode::Probe { via, lease, .. } => {
                t.mode = Mode::Probe {
                    via,
                    lease,
                    endpoint: best,
                    until: now + PROBE_FOR_S,
                };
                t.endpoint = Some(best);
                Some(best)
            }
            _ => None,
        }
    }

    /// The probe with `peer` ended: `direct` keeps the direct endpoint, else back to the relay
    /// (a new lease: the old one was released for the probe). `direct` also ends a relay the
    /// probe's window already gave up on: the other end checked the path both ways.
    pub fn probe_end(&mut self, peer: &PublicKey, direct: bool, now: u64) {
        let Some(t) = self.tracks.get_mut(peer) else {
            return;
        };
        match (t.mode, direct) {
            (Mode::Probe { endpoint, .. }, true) => {
                t.mode = Mode::Direct;
                t.endpoint = Some(endpoint);
                t.path = Path::Direct;
            }
            (Mode::Relay { .. }, true) => {
                // WireGuard follows the other end's direct packets from here.
                t.mode = Mode::Direct;
                t.endpoint = None;
                t.path = Path::Direct;
            }
            (Mode::Probe { via, .. }, false) => {
                t.mode = Mode::Relay {
                    via,
                    lease: None,
                    asked: None,
                    next_probe: now + PROBE_EVERY_S,
                };
            }
            _ => {}
        }
    }

    /// The other end of a probe is still checking: its window stays open [`PROBE_FOR_S`] more.
    pub fn probe_extend(&mut self, peer: &PublicKey, now: u64) {
        if let Some(t) = self.tracks.get_mut(peer) {
            if let Mode::Probe { until, .. } = &mut t.mode {
                *until = (*until).max(now + PROBE_FOR_S);
            }
        }
    }

    /// The endpoint to configure for `key` (`None`: leave WireGuard's).
    pub fn endpoint(&self, key: &PublicKey) -> Option<SocketAddr> {
        self.tracks.get(key).and_then(|t| t.endpoint)
    }

    /// How `key` is reached, and through which relay.
    pub fn path(&self, key: &PublicKey) -> Option<(Path, Option<PublicKey>)> {
        self.tracks.get(key).map(|t| {
            let via = match t.mode {
                Mode::Relay { via, .. } | Mode::Probe { via, .. } => Some(via),
                _ => None,
            };
            (t.path, via)
        })
    }

    /// The members with a session (direct or relayed): whom to tell what we see.
    pub fn reached(&self) -> Vec<PublicKey> {
        let mut out: Vec<PublicKey> = self
            .tracks
            .iter()
            .filter(|(_, t)| {
                t.mode == Mode::Direct
                    || matches!(
                        t.mode,
                        Mode::Relay { lease: Some(_), .. } | Mode::Probe { .. }
                    )
            })
            .map(|(k, _)| *k)
            .collect();
        out.sort_by_key(|k| k.0);
        out
    }

    /// What to tell the members, when it is time (it changed, or [`HINT_EVERY_S`] passed):
    /// each member with a direct session, where its packets come from, and the handshake age.
    pub fn to_tell(
        &mut self,
        now: u64,
        live: &[Live],
    ) -> Option<Vec<(PublicKey, SocketAddr, u64)>> {
        let mut seen: Vec<(PublicKey, SocketAddr, u64)> = live
            .iter()
            .filter(|l| self.direct(&l.key))
            .filter_map(|l| Some((l.key, l.endpoint?, l.handshake_age_s?)))
            .filter(|(_, e, _)| !in_overlay(e))
            .collect();
        seen.sort_by_key(|(k, _, _)| k.0);
        let what: Vec<(PublicKey, SocketAddr)> = seen.iter().map(|(k, e, _)| (*k, *e)).collect();
        let due = match &self.told {
            None => true,
            Some((at, before)) => *before != what || now.saturating_sub(*at) >= HINT_EVERY_S,
        };
        if !due {
            return None;
        }
        self.told = Some((now, what));
        Some(seen)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(n: u8) -> PublicKey {
        PublicKey([n; 32])
    }

    fn ep(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    fn member(n: u8, endpoints: &[&str], relay: bool) -> Member {
        Member {
            key: key(n),
            name: format!("m{n}"),
            address: format!("fd77:696e:646f::{n}").parse().unwrap(),
            endpoints: endpoints.iter().map(|e| ep(e)).collect(),
            relay,
        }
    }

    fn live(n: u8, endpoint: Option<&str>, age: Option<u64>, rx: u64) -> Live {
        Live {
            key: key(n),
            endpoint: endpoint.map(ep),
            handshake_age_s: age,
            rx,
        }
    }

    /// B (2) behind NAT with no roster endpoint, C (3) a relay with one.
    fn net() -> Vec<Member> {
        vec![
            member(2, &[], false),
            member(3, &["198.51.100.3:51820"], true),
        ]
    }

    #[test]
    fn a_member_with_a_session_keeps_the_endpoint_wireguard_roamed_to() {
        let mut p = Paths::new();
        let m = net();
        p.step(0, &m, &[live(3, None, None, 0)]);
        assert_eq!(p.endpoint(&key(3)), Some(ep("198.51.100.3:51820")));
        assert_eq!(p.path(&key(3)).unwrap().0, Path::Trying);
        // The session comes up; C's packets come from elsewhere (its NAT): we leave that.
        p.step(1, &m, &[live(3, Some("203.0.113.9:4000"), Some(0), 100)]);
        assert_eq!(p.path(&key(3)), Some((Path::Direct, None)));
        assert_eq!(p.endpoint(&key(3)), None);
    }

    #[test]
    fn a_hint_is_tried_first_then_the_roster_endpoints_in_turn() {
        let mut p = Paths::new();
        let m = vec![member(2, &["10.0.2.2:51820"], false)];
        p.step(0, &m, &[]);
        assert_eq!(p.endpoint(&key(2)), Some(ep("10.0.2.2:51820")));
        p.hint(key(3), key(2), ep("203.0.113.2:51820"), 3, 1);
        p.step(1, &m, &[]);
        assert_eq!(p.endpoint(&key(2)), Some(ep("203.0.113.2:51820")));
        // After TRY_EACH_S the next one, then back.
        p.step(1 + TRY_EACH_S, &m, &[]);
        assert_eq!(p.endpoint(&key(2)), Some(ep("10.0.2.2:51820")));
        p.step(1 + 2 * TRY_EACH_S, &m, &[]);
        assert_eq!(p.endpoint(&key(2)), Some(ep("203.0.113.2:51820")));
        // Hints about ourselves, or pointing into the overlay, are not taken.
        p.hint(key(2), key(2), ep("192.0.2.1:1"), 0, 2);
        p.hint(key(3), key(2), ep("[fd77:696e:646f::9]:4000"), 0, 2);
        p.hint(key(4), key(2), ep("[fe80::1%2]:51820"), 0, 2);
        assert_eq!(p.candidates(&m[0]).len(), 2);
        // A hint not repeated is forgotten.
        p.step(1 + HINT_TTL_S, &m, &[]);
        assert_eq!(p.candidates(&m[0]), vec![ep("10.0.2.2:51820")]);
    }

    fn relayed(p: &mut Paths, m: &[Member]) -> u64 {
        let c_live = live(3, Some("198.51.100.3:51820"), Some(1), 1);
        p.step(0, m, std::slice::from_ref(&c_live));
        p.hint(key(3), key(2), ep("203.0.113.2:40000"), 2, 0);
        let mut t = 0;
        let mut asked = Vec::new();
        while t < 60 {
            t += 1;
            let mut c = c_live.clone();
            c.rx = t;
            asked.extend(
                p.step(t, m, &[c, live(2, None, None, 0)])
                    .into_iter()
                    .filter(|a| !matches!(a, Action::Poke { .. })),
            );
            if !asked.is_empty() {
                break;
            }
        }
        assert_eq!(
            asked,
            vec![Action::Lease {
                relay: key(3),
                peer: key(2)
            }]
        );
        t
    }

    #[test]
    fn no_session_within_relay_after_s_goes_through_the_relay_that_sees_the_member() {
        let mut p = Paths::new();
        let m = net();
        let t = relayed(&mut p, &m);
        assert_eq!(t, 1 + RELAY_AFTER_S - 1 + 1, "relayed {t} s after the hint");
        assert_eq!(p.path(&key(2)), Some((Path::Relay, Some(key(3)))));
        // The relay answers: B's packets go to its overlay port.
        let lease = ep("[fd77:696e:646f::3]:40001");
        p.leased(&key(2), &key(3), lease);
        assert_eq!(p.endpoint(&key(2)), Some(lease));
        // The lease is renewed every LEASE_EVERY_S, not every step.
        let c = |rx| live(3, Some("198.51.100.3:51820"), Some(1), rx);
        let b = |rx| live(2, Some("[fd77:696e:646f::3]:40001"), Some(0), rx);
        let mut leases = 0;
        for s in 1..=LEASE_EVERY_S * 3 {
            leases += p
                .step(t + s, &m, &[c(100 + s), b(s)])
                .iter()
                .filter(|a| matches!(a, Action::Lease { .. }))
                .count();
        }
        assert_eq!(leases, 3);
        assert_eq!(p.path(&key(2)).unwrap().0, Path::Relay);
        assert_eq!(p.reached(), vec![key(2), key(3)]);
    }

    #[test]
    fn without_a_relay_that_sees_it_a_member_is_unreachable() {
        let mut p = Paths::new();
        let m = vec![
            member(2, &[], false),
            member(3, &["198.51.100.3:51820"], false),
        ];
        p.step(0, &m, &[live(3, Some("198.51.100.3:51820"), Some(1), 1)]);
        p.hint(key(3), key(2), ep("203.0.113.2:40000"), 2, 0);
        for t in 1..40 {
            let c = live(3, Some("198.51.100.3:51820"), Some(1), 1 + t);
            let asked = p.step(t, &m, &[c]);
            // Only pokes of b as its endpoint changes: no lease, no probe.
            assert!(
                asked
                    .iter()
                    .all(|a| matches!(a, Action::Poke { peer } if *peer == key(2))),
                "{asked:?}"
            );
        }
        assert_eq!(p.path(&key(2)), Some((Path::Unreachable, None)));
        // It keeps being tried.
        assert_eq!(p.endpoint(&key(2)), Some(ep("203.0.113.2:40000")));
    }

    #[test]
    fn a_relayed_member_is_probed_when_seen_somewhere_new_and_a_failed_probe_goes_back() {
        let mut p = Paths::new();
        let m = net();
        let t = relayed(&mut p, &m);
        let lease = ep("[fd77:696e:646f::3]:40001");
        p.leased(&key(2), &key(3), lease);
        let c = |rx| live(3, Some("198.51.100.3:51820"), Some(1), rx);
        let b = |rx| live(2, Some("[fd77:696e:646f::3]:40001"), Some(0), rx);
        let probes = |a: &[Action]| {
            a.iter()
                .filter(|a| matches!(a, Action::Probe { .. }))
                .count()
        };
        assert_eq!(probes(&p.step(t + 1, &m, &[c(200), b(1)])), 0);
        // C sees B somewhere new (B's NAT changed): a probe, once.
        p.hint(key(3), key(2), ep("203.0.113.2:51820"), 0, t + 2);
        assert_eq!(probes(&p.step(t + 2, &m, &[c(201), b(2)])), 1);
        assert_eq!(probes(&p.step(t + 3, &m, &[c(202), b(3)])), 0);
        let direct = p.probe_begin(&key(2), &m, t + 3).unwrap();
        assert_eq!(direct, ep("203.0.113.2:51820"));
        assert_eq!(p.endpoint(&key(2)), Some(direct));
        // Nothing confirmed within PROBE_FOR_S: back to the relay, asking for a new lease.
        let asked: Vec<Action> = p
            .step(t + 3 + PROBE_FOR_S, &m, &[c(203), b(4)])
            .into_iter()
            .filter(|a| !matches!(a, Action::Poke { .. }))
            .collect();
        assert_eq!(
            asked,
            vec![Action::Lease {
                relay: key(3),
                peer: key(2)
            }]
        );
        assert_eq!(p.path(&key(2)), Some((Path::Relay, Some(key(3)))));
        p.leased(&key(2), &key(3), lease);
        assert_eq!(p.endpoint(&key(2)), Some(lease));
        // The next probe waits PROBE_EVERY_S.
        let mut n = 0;
        let seen_again =
            |p: &mut Paths, now| p.hint(key(3), key(2), ep("203.0.113.2:51820"), 0, now);
        for s in 1..PROBE_EVERY_S {
            let now = t + 3 + PROBE_FOR_S + s;
            seen_again(&mut p, now);
            n += probes(&p.step(now, &m, &[c(300 + s), b(10 + s)]));
        }
        assert_eq!(n, 0);
        let now = t + 4 + PROBE_FOR_S + PROBE_EVERY_S;
        seen_again(&mut p, now);
        n += probes(&p.step(now, &m, &[c(9_999), b(9_999)]));
        assert_eq!(n, 1);
    }

    #[test]
    fn a_kept_probe_or_the_other_end_arriving_direct_makes_the_path_direct() {
        let m = net();
        let lease = ep("[fd77:696e:646f::3]:40001");
        let c = |rx| live(3, Some("198.51.100.3:51820"), Some(1), rx);
        // Kept.
        let mut p = Paths::new();
        let t = relayed(&mut p, &m);
        p.leased(&key(2), &key(3), lease);
        let direct = p.probe_begin(&key(2), &m, t).unwrap();
        p.probe_end(&key(2), true, t);
        assert_eq!(p.path(&key(2)), Some((Path::Direct, None)));
        p.step(
            t + 1,
            &m,
            &[c(500), live(2, Some("203.0.113.2:40000"), Some(0), 9)],
        );
        assert_eq!(p.path(&key(2)), Some((Path::Direct, None)));
        assert_eq!(p.endpoint(&key(2)), None);
        assert_eq!(direct, ep("203.0.113.2:40000"));
        // Kept after the probe's window had closed (a slow check): direct all the same.
        let mut p = Paths::new();
        let t = relayed(&mut p, &m);
        p.leased(&key(2), &key(3), lease);
        p.probe_begin(&key(2), &m, t).unwrap();
        p.probe_extend(&key(2), t + 2);
        p.step(t + PROBE_FOR_S + 1, &m, &[c(500)]);
        assert!(
            matches!(p.tracks[&key(2)].mode, Mode::Probe { .. }),
            "extended"
        );
        p.step(t + 2 + PROBE_FOR_S, &m, &[c(501)]);
        assert!(matches!(p.tracks[&key(2)].mode, Mode::Relay { .. }));
        p.probe_end(&key(2), true, t + 2 + PROBE_FOR_S);
        assert_eq!(p.path(&key(2)), Some((Path::Direct, None)));
        assert_eq!(p.endpoint(&key(2)), None);
        // Roamed by the other end.
        let mut p = Paths::new();
        let t = relayed(&mut p, &m);
        p.leased(&key(2), &key(3), lease);
        p.step(
            t + 1,
            &m,
            &[c(500), live(2, Some("203.0.113.2:51820"), Some(0), 9)],
        );
        assert_eq!(p.path(&key(2)), Some((Path::Direct, None)));
    }

    #[test]
    fn a_new_endpoint_without_a_session_is_poked_once() {
        let mut p = Paths::new();
        let m = vec![member(2, &["10.0.2.2:51820"], false)];
        let pokes = |a: Vec<Action>| {
            a.iter()
                .filter(|a| matches!(a, Action::Poke { .. }))
                .count()
        };
        assert_eq!(pokes(p.step(0, &m, &[])), 1);
        assert_eq!(pokes(p.step(1, &m, &[])), 0);
        p.hint(key(3), key(2), ep("203.0.113.2:51820"), 3, 2);
        assert_eq!(pokes(p.step(2, &m, &[])), 1);
        // With a session, nothing: WireGuard's endpoint is left alone.
        assert_eq!(
            pokes(p.step(3, &m, &[live(2, Some("203.0.113.2:51820"), Some(0), 5)])),
            0
        );
    }

    #[test]
    fn a_direct_path_that_falls_silent_is_searched_again() {
        let mut p = Paths::new();
        let m = net();
        p.step(0, &m, &[live(3, Some("198.51.100.3:51820"), Some(0), 10)]);
        assert_eq!(p.path(&key(3)).unwrap().0, Path::Direct);
        // The handshake is recent, but nothing arrives for SILENT_S.
        p.step(
            SILENT_S,
            &m,
            &[live(3, Some("198.51.100.3:51820"), Some(5), 10)],
        );
        assert_eq!(p.path(&key(3)).unwrap().0, Path::Trying);
        assert_eq!(p.endpoint(&key(3)), Some(ep("198.51.100.3:51820")));
    }

    #[test]
    fn what_we_see_is_told_when_it_changes_or_every_hint_every_s() {
        let mut p = Paths::new();
        let m = net();
        let l = [
            live(3, Some("198.51.100.3:51820"), Some(1), 1),
            live(2, None, None, 0),
        ];
        p.step(0, &m, &l);
        let told = p.to_tell(0, &l).unwrap();
        assert_eq!(told, vec![(key(3), ep("198.51.100.3:51820"), 1)]);
        assert_eq!(p.to_tell(1, &l), None);
        assert!(p.to_tell(HINT_EVERY_S, &l).is_some());
        let l2 = [
            live(3, Some("198.51.100.3:6000"), Some(1), 2),
            live(2, None, None, 0),
        ];
        p.step(HINT_EVERY_S + 1, &m, &l2);
        assert!(p.to_tell(HINT_EVERY_S + 1, &l2).is_some());
    }
}
