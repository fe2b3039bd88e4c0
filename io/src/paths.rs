//! The well-known paths of a window: the control sockets each process serves (usable as
//! clap defaults) and where the window's state lives.

/// ewindow-init's control socket (`ewindow_protocol::init`).
pub const INIT_SOCKET: &str = "/run/ewindow/init.sock";
/// ewindow-phone's control socket (`ewindow_protocol::phone`).
pub const PHONE_SOCKET: &str = "/run/ewindow/phone.sock";
/// ewindow-overlay's control socket (`ewindow_protocol::overlay`).
pub const OVERLAY_SOCKET: &str = "/run/ewindow/overlay.sock";
