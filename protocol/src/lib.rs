//! The vocabulary every ewindow process speaks.
//!
//! Types here cross process boundaries (files such as `--stats-json` and `window.toml`, and the
//! control sockets in `/run/ewindow/`: `init` for `ewindow-init`'s), so they have a stable serde
//! or text form, pinned by the wire snapshots (`tests.rs`: the JSON schema of every message in
//! `src/snapshots/`, so a change of the wire is a visible diff). Pure: no IO beyond reading a
//! file that is asked for (`window::load`) and the OS's random numbers for new keys and
//! secrets, and the only logic is what every process must compute the same way — validating `window.toml`,
//! overlay addresses, the bytes a roster signature covers.

pub mod button;
pub mod config;
pub mod init;
pub mod invite;
pub mod keys;
pub mod overlay;
pub mod phone;
pub mod programs;
pub mod signed;
pub mod stats;
pub mod window;

pub use stats::{CallStats, EndReason, StreamDirection, StreamStats};

#[cfg(test)]
mod tests;
