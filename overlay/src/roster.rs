//! Pure roster logic: which WireGuard peers a window wants, pending invitations and their
//! redemption, signing a changed roster and accepting one from another member.
//!
//! **Invariants**
//! - A roster update is taken only when it is newer than ours, signed (XEdDSA over its
//!   canonical bytes, version and signer) by a member of *our* current roster, and still has
//!   this window under its own name and key.
//! - An invitation is redeemed once, before it expires, and only by whoever holds its
//!   temporary key: the request must come from the temporary key's overlay address, which
//!   WireGuard guarantees.

use std::net::{IpAddr, Ipv6Addr};

use ewindow_protocol::keys::PrivateKey;
use ewindow_protocol::signed::{accept_update, sign_update};
use ewindow_protocol::window::{overlay_v6, validate_name, Endpoint, Member, PublicKey, Roster};
use serde::{Deserialize, Serialize};

/// A WireGuard peer as this window wants it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WantedPeer {
    /// Member name, or `invitation:<id>`.
    pub label: String,
    /// Its public key.
    pub public_key: PublicKey,
    /// Its only allowed source address (/128).
    pub address: Ipv6Addr,
    /// Where to reach it, first usable wins; empty = wait for it to reach us.
    pub endpoints: Vec<Endpoint>,
}

/// An invitation this window made and keeps until it is used or expires.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pending {
    /// Its id (from the code's secret).
    pub id: String,
    /// The member name it is for.
    pub name: String,
    /// The temporary public key derived from the code.
    pub temp_public_key: String,
    /// When it expires (Unix seconds).
    pub expires_unix: u64,
    /// Whether it was redeemed.
    pub used: bool,
}

impl Pending {
    fn temp_key(&self) -> Option<PublicKey> {
        PublicKey::from_base64(&self.temp_public_key).ok()
    }

    /// Whether it can still be redeemed.
    pub fn open(&self, now: u64) -> bool {
        !self.used && now <= self.expires_unix
    }

    /// Whether its temporary key has a peer: until it expires, used or not, so that a second
    /// redemption reaches us and is told why it is refused instead of timing out.
    pub fn live(&self, now: u64) -> bool {
        now <= self.expires_unix
    }
}

/// The peers for a roster and the open invitations: every member but us, each temporary key.
pub fn wanted_peers(roster: &Roster, own: &str, pending: &[Pending], now: u64) -> Vec<WantedPeer> {
    let mut peers: Vec<WantedPeer> = roster
        .members
        .iter()
        .filter(|m| m.name != own)
        .map(|m| WantedPeer {
            label: m.name.clone(),
            public_key: m.public_key,
            address: m.overlay_v6(),
            endpoints: m.endpoints.clone(),
        })
        .collect();
    for p in pending.iter().filter(|p| p.live(now)) {
        if let Some(key) = p.temp_key() {
            peers.push(WantedPeer {
                label: format!("invitation:{}", p.id),
                public_key: key,
                address: overlay_v6(&key),
                endpoints: Vec::new(),
            });
        }
    }
    peers
}

/// Checks that `name` can be invited: a valid name, not a member, not already invited.
pub fn can_invite(
    roster: &Roster,
    pending: &[Pending],
    name: &str,
    now: u64,
) -> Result<(), String> {
    validate_name(name).map_err(|e| format!("name `{name}`: {e}"))?;
    if roster.member(name).is_some() {
        return Err(format!("`{name}` is already a member"));
    }
    if pending.iter().any(|p| p.name == name && p.open(now)) {
        return Err(format!(
            "`{name}` already has an open invitation; it must be used or expire first"
        ));
    }
    Ok(())
}

/// Decides a redemption. On success marks the invitation used and returns the member name.
pub fn redeem(
    roster: &Roster,
    pending: &mut [Pending],
    id: &str,
    source: IpAddr,
    newcomer: &PublicKey,
    now: u64,
) -> Result<String, String> {
    let Some(p) = pending.iter_mut().find(|p| p.id == id) else {
        return Err(
            "this invitation is unknown to the inviter (wrong code, or made by another window)"
                .into(),
        );
    };
    let expected = p.temp_key().map(|k| IpAddr::V6(overlay_v6(&k)));
    if expected != Some(source) {
        return Err("this request does not come from the invitation's key".into());
    }
    if p.used {
        return Err(format!(
            "this invitation was already used (by `{}`); ask for a new one",
            p.name
        ));
    }
    if now > p.expires_unix {
        return Err(format!(
            "this invitation expired {} ago; ask for a new one",
            human_age(now - p.expires_unix)
        ));
    }
    if let Some(m) = roster.by_key(newcomer) {
        return Err(format!("this key is already the member `{}`", m.name));
    }
    if roster.member(&p.name).is_some() {
        return Err(format!("`{}` is already a member", p.name));
    }
    p.used = true;
    Ok(p.name.clone())
}

/// A short age for people: "12 s", "5 min", "3 h", "2 d".
pub fn human_age(s: u64) -> String {
    match s {
        0..=119 => format!("{s} s"),
        120..=7199 => format!("{} min", s / 60),
        7200..=172_799 => format!("{} h", s / 3600),
        _ => format!("{} d", s / 86_400),
    }
}

/// The roster of a new network: this window its only member, version 1, signed by itself.
pub fn founded(own: Member, key: &PrivateKey) -> Roster {
    let name = own.name.clone();
    let first = Roster {
        version: 0,
        signed_by: None,
        signature: None,
        members: vec![own],
    };
    sign(first, 1, &name, key)
}

/// The roster with one member more, one version newer, signed by us.
pub fn with_member(roster: &Roster, member: Member, own: &str, key: &PrivateKey) -> Roster {
    let mut next = roster.clone();
    next.members.push(member);
    sign(next, roster.version + 1, own, key)
}

/// Signs `roster` as `version` by `own`.
pub fn sign(mut roster: Roster, version: u64, own: &str, key: &PrivateKey) -> Roster {
    roster.version = version;
    roster.signed_by = None;
    roster.signature = None;
    let canonical = roster.canonical_bytes();
    roster.signature = Some(sign_update(key, version, own, &canonical));
    roster.signed_by = Some(own.to_owned());
    roster
}

/// Whether to take `update` in place of `current` (see the module invariants).
pub fn accept(current: &Roster, own: &str, update: &Roster) -> Result<(), String> {
    let (Some(signer), Some(signature)) = (&update.signed_by, &update.signature) else {
        return Err("the roster is not signed".into());
    };
    let members: Vec<(String, PublicKey)> = current
        .members
        .iter()
        .map(|m| (m.name.clone(), m.public_key))
        .collect();
    accept_update(
        current.version,
        &members,
        update.version,
        signer,
        &update.canonical_bytes(),
        signature,
    )
    .map_err(|r| r.to_string())?;
    let mine = current.member(own).map(|m| m.public_key);
    if update.member(own).map(|m| m.public_key) != mine {
        return Err(format!(
            "the update from `{signer}` would remove this window (`{own}`) or change its key"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(name: &str, key: &PrivateKey) -> Member {
        Member {
            name: name.into(),
            public_key: key.public_key(),
            endpoints: vec!["192.0.2.1:51820".parse().unwrap()],
            relay: false,
        }
    }

    fn two() -> (PrivateKey, PrivateKey, Roster) {
        let a = PrivateKey::generate().unwrap();
        let b = PrivateKey::generate().unwrap();
        let roster = Roster {
            version: 1,
            signed_by: None,
            signature: None,
            members: vec![member("alice", &a), member("bob", &b)],
        };
        (a, b, roster)
    }

    fn pending(temp: &PrivateKey, expires: u64) -> Pending {
        Pending {
            id: "id1".into(),
            name: "carol".into(),
            temp_public_key: temp.public_key().to_base64(),
            expires_unix: expires,
            used: false,
        }
    }

    #[test]
    fn peers_are_the_other_members_and_open_invitations() {
        let (_, b, roster) = two();
        let temp = PrivateKey::generate().unwrap();
        let mut p = vec![pending(&temp, 100)];
        let peers = wanted_peers(&roster, "alice", &p, 50);
        assert_eq!(peers.len(), 2);
        assert_eq!(peers[0].public_key, b.public_key());
        assert_eq!(peers[0].address, overlay_v6(&b.public_key()));
        assert_eq!(peers[1].label, "invitation:id1");
        assert_eq!(peers[1].address, overlay_v6(&temp.public_key()));
        // Used: the peer stays until expiry (a second try is told why it fails); expired: gone.
        p[0].used = true;
        assert_eq!(wanted_peers(&roster, "alice", &p, 50).len(), 2);
        assert_eq!(wanted_peers(&roster, "alice", &p, 101).len(), 1);
    }

    #[test]
    fn redemption_once_in_time_from_the_temporary_address() {
        let (_, _, roster) = two();
        let temp = PrivateKey::generate().unwrap();
        let carol = PrivateKey::generate().unwrap();
        let from = IpAddr::V6(overlay_v6(&temp.public_key()));
        let mut p = vec![pending(&temp, 100)];
        let elsewhere = IpAddr::V6(overlay_v6(&carol.public_key()));
        assert!(
            redeem(&roster, &mut p, "id1", elsewhere, &carol.public_key(), 50)
                .unwrap_err()
                .contains("does not come from")
        );
        assert!(
            redeem(&roster, &mut p, "nope", from, &carol.public_key(), 50)
                .unwrap_err()
                .contains("unknown")
        );
        let late = redeem(&roster, &mut p, "id1", from, &carol.public_key(), 4000).unwrap_err();
        assert_eq!(
            late,
            "this invitation expired 65 min ago; ask for a new one"
        );
        assert_eq!(
            redeem(&roster, &mut p, "id1", from, &carol.public_key(), 50),
            Ok("carol".into())
        );
        let again = redeem(&roster, &mut p, "id1", from, &carol.public_key(), 51).unwrap_err();
        assert!(again.contains("already used"), "{again}");
        // A member's key cannot come in twice.
        let mut q = vec![pending(&temp, 100)];
        let alice = roster.members[0].public_key;
        assert!(redeem(&roster, &mut q, "id1", from, &alice, 50)
            .unwrap_err()
            .contains("already the member `alice`"));
    }

    #[test]
    fn invitations_only_for_new_valid_names() {
        let (_, _, roster) = two();
        let temp = PrivateKey::generate().unwrap();
        let p = vec![pending(&temp, 100)];
        assert!(can_invite(&roster, &p, "dave", 50).is_ok());
        assert!(can_invite(&roster, &p, "bob", 50)
            .unwrap_err()
            .contains("already a member"));
        assert!(can_invite(&roster, &p, "carol", 50)
            .unwrap_err()
            .contains("open invitation"));
        assert!(can_invite(&roster, &p, "carol", 101).is_ok());
        assert!(can_invite(&roster, &p, "Bad Name", 50).is_err());
    }

    #[test]
    fn a_founded_roster_is_ours_alone_signed_by_us() {
        let key = PrivateKey::generate().unwrap();
        let me = Member {
            name: "fablab-lyon".into(),
            public_key: key.public_key(),
            endpoints: Vec::new(),
            relay: false,
        };
        let r = founded(me.clone(), &key);
        assert_eq!((r.version, r.members.clone()), (1, vec![me.clone()]));
        assert_eq!(r.signed_by.as_deref(), Some("fablab-lyon"));
        // another window of the network takes it as a newer roster than an empty one
        let empty = Roster {
            version: 0,
            signed_by: None,
            signature: None,
            members: vec![me],
        };
        assert!(accept(&empty, "fablab-lyon", &r).is_ok());
        // a signature by another key is refused
        let other = PrivateKey::generate().unwrap();
        let forged = sign(r.clone(), 2, "fablab-lyon", &other);
        assert!(accept(&r, "fablab-lyon", &forged).is_err());
    }

    #[test]
    fn updates_newer_and_signed_by_a_member_are_taken() {
        let (a, b, roster) = two();
        let c = PrivateKey::generate().unwrap();
        let next = with_member(&roster, member("carol", &c), "alice", &a);
        assert_eq!(next.version, 2);
        assert_eq!(next.signed_by.as_deref(), Some("alice"));
        assert_eq!(accept(&roster, "bob", &next), Ok(()));
        // Not newer.
        assert!(accept(&next, "bob", &next).unwrap_err().contains("2"));
        // Signed by someone not in the receiver's roster (carol signs her own admission).
        let forged = with_member(&roster, member("carol", &c), "carol", &c);
        assert!(accept(&roster, "bob", &forged).is_err());
        // Tampered after signing.
        let mut tampered = next.clone();
        tampered.members[2].endpoints.clear();
        assert!(accept(&roster, "bob", &tampered).is_err());
        // Unsigned.
        let mut unsigned = next.clone();
        unsigned.signature = None;
        assert!(accept(&roster, "bob", &unsigned).is_err());
        // An update that drops the receiver is refused even when properly signed.
        let mut without_bob = roster.clone();
        without_bob.members.retain(|m| m.name != "bob");
        let without_bob = sign(without_bob, 5, "alice", &a);
        assert!(accept(&roster, "bob", &without_bob)
            .unwrap_err()
            .contains("remove this window"));
        let _ = b;
    }
}
