//! `ewindow-init` as a library: the modules of the window's PID 1, so that the binary, its
//! tests and (later) `ewindowctl` share them.
//!
//! Pure logic — [`config`], [`backoff`], [`order`], [`control`] — does no IO and is tested
//! exhaustively; [`process`], [`mounts`] and [`runtime`] are the IO edges.

pub mod backoff;
pub mod config;
pub mod control;
pub mod mounts;
pub mod order;
pub mod process;
pub mod runtime;
