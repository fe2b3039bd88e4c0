//! The interface's link settings over netlink (rtnetlink): MTU, up, and exactly one overlay
//! address — this window's. An address left from an invitation's temporary key is removed.

use std::net::{IpAddr, Ipv6Addr};

use anyhow::{anyhow, Context, Result};
use futures_util::TryStreamExt;
use rtnetlink::packet_route::address::{AddressAttribute, AddressFlags, AddressHeaderFlags};
use rtnetlink::{Handle, LinkUnspec};

use ewindow_protocol::window::{OVERLAY_V6_PREFIX, OVERLAY_V6_PREFIX_LEN};

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
