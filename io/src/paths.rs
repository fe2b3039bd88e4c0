//! The well-known paths of a window: the control sockets each process serves (usable as
//! clap defaults) and where the window's state lives.

/// ewindow-init's control socket (`ewindow_protocol::init`).
pub const INIT_SOCKET: &str = "/run/ewindow/init.sock";
/// ewindow-phone's control socket (`ewindow_protocol::phone`).
pub const PHONE_SOCKET: &str = "/run/ewindow/phone.sock";
/// ewindow-overlay's control socket (`ewindow_protocol::overlay`).
pub const OVERLAY_SOCKET: &str = "/run/ewindow/overlay.sock";

/// The window file: name, roster, open hours, media (`ewindow_protocol::window`).
pub const WINDOW_FILE: &str = "/data/ewindow/window.toml";
/// The window's WireGuard private key (0600), made on the device at first start.
pub const IDENTITY_KEY: &str = "/data/ewindow/identity.key";
/// The open invitations this window has made (0600).
pub const INVITATIONS: &str = "/data/ewindow/invitations.json";
/// The SSH keys let in for maintenance (0600).
pub const AUTHORIZED_KEYS: &str = "/data/ewindow/authorized_keys";
