//! `ewindow-init` as a library: the modules of the window's PID 1, so that the binary, its
//! tests and (later) `ewindowctl` share them.
//!
//! Pure logic — [`config`], [`backoff`], [`order`] — does no IO and is tested exhaustively;
//! [`process`], [`mounts`], [`early`] (hostname, loopback) and [`runtime`] are the IO edges. The control-socket messages are
//! `ewindow_protocol::init`, shared with `ewindowctl`.

pub mod backoff;
pub mod clock;
pub mod config;
pub mod data;
pub mod early;
pub mod lifecycle;
pub mod modules;
pub mod mounts;
pub mod order;
pub mod process;
pub mod runtime;
pub mod watchdog;
