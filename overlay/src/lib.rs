//! `ewindow-overlay` as a library: the modules of the overlay, so the thin binaries
//! (`main.rs` and the multi-call `ewindow` run [`cli`]), the tests and fuzz targets reach the
//! same code.
//!
//! Pure logic — [`roster`] (who is wanted as a WireGuard peer, the pending invitations) —
//! does no IO; [`identity`] (the key file), [`wg`] and [`uapi`] (WireGuard, kernel or
//! wireguard-go), [`link`] (addresses and routes over rtnetlink) and [`service`] (the
//! running overlay: control socket, enrollment port, roster pushes) are the IO edges. What
//! is said is `ewindow_protocol::overlay`.

pub mod cli;
pub mod identity;
pub mod link;
pub mod paths;
pub mod relay;
pub mod roster;
pub mod service;
pub mod uapi;
pub mod wg;
