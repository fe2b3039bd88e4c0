//! Keeping SIP and RTP on the overlay: with `--window`, every UDP socket we bind is also bound
//! to the overlay's network device (`SO_BINDTODEVICE`), so a packet that reaches the overlay
//! address through another interface (Linux accepts packets for any local address on any
//! interface) finds no socket. TCP cannot be spoofed that way (the handshake answers the real
//! source); a TCP peer that is not a member still meets the access policy's 403.

use std::net::IpAddr;
use std::os::fd::AsFd;
use std::sync::OnceLock;

use anyhow::{anyhow, Context, Result};

static DEVICE: OnceLock<String> = OnceLock::new();

/// The interface that holds `ip`.
pub fn interface_of(ip: IpAddr) -> Result<String> {
    let addrs = nix::ifaddrs::getifaddrs().context("listing interfaces")?;
    for a in addrs {
        let Some(sa) = a.address else { continue };
        let found = match ip {
            IpAddr::V4(v4) => sa.as_sockaddr_in().map(|s| s.ip() == v4),
            IpAddr::V6(v6) => sa.as_sockaddr_in6().map(|s| s.ip() == v6),
        };
        if found == Some(true) {
            return Ok(a.interface_name);
        }
    }
    Err(anyhow!(
        "no interface has the address {ip} (is the overlay up?)"
    ))
}

/// From now on, [`pin`] binds sockets to `device`.
pub fn pin_all_to(device: String) {
    let _ = DEVICE.set(device);
}

/// Binds a socket to the pinned device, if one was set.
pub fn pin(socket: &impl AsFd) -> Result<()> {
    if let Some(dev) = DEVICE.get() {
        nix::sys::socket::setsockopt(
            socket,
            nix::sys::socket::sockopt::BindToDevice,
            &std::ffi::OsString::from(dev),
        )
        .with_context(|| format!("binding a socket to {dev}"))?;
    }
    Ok(())
}
