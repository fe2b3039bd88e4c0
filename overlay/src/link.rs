//! The interface's link settings over netlink (rtnetlink): MTU, up, and exactly one overlay
//! address — this window's. An address left from an invitation's temporary key is removed.

use std::net::{IpAddr, Ipv6Addr};

use anyhow::{anyhow, Context, Result};
use futures_util::TryStreamExt;
use rtnetlink::packet_route::address::{AddressAttribute, AddressFlags, AddressHeaderFlags};
use rtnetlink::{Handle, LinkUnspec};

use ewindow_protocol::window::{OVERLAY_V6_PREFIX, OVERLAY_V6_PREFIX_LEN};

/// The address a newcomer on the same LAN can reach this window at, when none is configured:
/// of this machine's addresses, the first IPv4 one that is not loopback, link-local or in
/// the overlay, else such an IPv6 one (not unique-local overlay, not link-local), else an
/// IPv4 link-local one (169.254/16: the `linklocal` service's, on a LAN without DHCP or a
/// cable between two windows; IPv6 link-local ones would need a scope). Pure.
pub fn lan_endpoint(addrs: &[IpAddr], port: u16) -> Option<std::net::SocketAddr> {
    let v4 = addrs.iter().find(|a| match a {
        IpAddr::V4(v) => {
            let o = v.octets();
            let overlay = o[0] == 10 && o[1] == 77;
            !(v.is_loopback() || v.is_link_local() || v.is_unspecified() || overlay)
        }
        IpAddr::V6(_) => false,
    });
    let v6 = || {
        addrs.iter().find(|a| match a {
            IpAddr::V6(v) => {
                let s = v.segments();
                !v.is_loopback()
                    && !v.is_unspecified()
                    && (s[0] & 0xffc0) != 0xfe80
                    && s[..3] != OVERLAY_V6_PREFIX.segments()[..3]
            }
            IpAddr::V4(_) => false,
        })
    };
    let v4_link_local = || {
        addrs
            .iter()
            .find(|a| matches!(a, IpAddr::V4(v) if v.is_link_local()))
    };
    v4.or_else(v6)
        .or_else(v4_link_local)
        .map(|a| std::net::SocketAddr::new(*a, port))
}

/// This machine's interface addresses.
pub fn local_addresses() -> Vec<IpAddr> {
    let Ok(addrs) = nix::ifaddrs::getifaddrs() else {
        return Vec::new();
    };
    addrs
        .filter_map(|a| {
            let sa = a.address?;
            if let Some(v4) = sa.as_sockaddr_in() {
                Some(IpAddr::V4(v4.ip()))
            } else {
                sa.as_sockaddr_in6().map(|v6| IpAddr::V6(v6.ip()))
            }
        })
        .collect()
}

/// WireGuard's usual MTU over a 1500-byte underlay (IPv6 outer header).
pub const MTU: u32 = 1420;

/// Sets MTU and up, adds `own`/64 and removes any other overlay address on the link.
pub async fn configure(name: &str, own: Ipv6Addr) -> Result<()> {
    let (connection, handle, _) = rtnetlink::new_connection().context("netlink socket")?;
    let connection = tokio::spawn(connection);
    let result = configure_with(&handle, name, own).await;
    connection.abort();
    result
}

fn in_overlay(ip: &Ipv6Addr) -> bool {
    let n = (OVERLAY_V6_PREFIX_LEN / 16) as usize;
    ip.segments()[..n] == OVERLAY_V6_PREFIX.segments()[..n]
}

async fn configure_with(handle: &Handle, name: &str, own: Ipv6Addr) -> Result<()> {
    let link = handle
        .link()
        .get()
        .match_name(name.to_string())
        .execute()
        .try_next()
        .await
        .with_context(|| format!("looking up link {name}"))?
        .ok_or_else(|| anyhow!("link {name} not found"))?;
    let index = link.header.index;
    // Up first: IPv6 addresses are flushed when a link goes down.
    handle
        .link()
        .set(LinkUnspec::new_with_index(index).mtu(MTU).up().build())
        .execute()
        .await
        .with_context(|| format!("{name}: mtu {MTU}, up"))?;
    // No duplicate address detection: the address is derived from our key and unique on an
    // interface of our own; with DAD it stays "tentative" for a while and binding the
    // enrollment port (or the phone's SIP port) to it fails.
    let mut add = handle
        .address()
        .add(index, IpAddr::V6(own), OVERLAY_V6_PREFIX_LEN)
        .replace();
    let msg = add.message_mut();
    msg.header.flags |= AddressHeaderFlags::Nodad;
    msg.attributes
        .push(AddressAttribute::Flags(AddressFlags::Nodad));
    add.execute()
        .await
        .with_context(|| format!("{name}: address {own}/{OVERLAY_V6_PREFIX_LEN}"))?;
    let mut stale = Vec::new();
    let mut addrs = handle
        .address()
        .get()
        .set_link_index_filter(index)
        .execute();
    while let Some(msg) = addrs.try_next().await.context("listing addresses")? {
        let old = msg.attributes.iter().any(|a| {
            matches!(a, AddressAttribute::Address(IpAddr::V6(ip)) if in_overlay(ip) && *ip != own)
        });
        if old {
            stale.push(msg);
        }
    }
    for msg in stale {
        handle
            .address()
            .del(msg)
            .execute()
            .await
            .with_context(|| format!("{name}: removing an old overlay address"))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lan_address_is_chosen_for_newcomers() {
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        let addrs = [
            ip("127.0.0.1"),
            ip("::1"),
            ip("10.77.3.4"),
            ip("fd77:696e:646f::1"),
            ip("fe80::1"),
            ip("169.254.3.3"),
            ip("2001:db8::5"),
            ip("192.168.1.20"),
        ];
        assert_eq!(
            lan_endpoint(&addrs, 51820),
            Some("192.168.1.20:51820".parse().unwrap())
        );
        assert_eq!(
            lan_endpoint(&addrs[..7], 51820),
            Some("[2001:db8::5]:51820".parse().unwrap()),
            "IPv6 when there is no IPv4 one"
        );
        assert_eq!(
            lan_endpoint(&addrs[..6], 51820),
            Some("169.254.3.3:51820".parse().unwrap()),
            "IPv4 link-local as the last resort"
        );
        assert_eq!(lan_endpoint(&addrs[..5], 51820), None);
    }
}
