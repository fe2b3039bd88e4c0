//! The vocabulary every ewindow process speaks.
//!
//! Types here cross process boundaries (files such as `--stats-json`, and later the control
//! sockets in `/run/ewindow/`), so they are plain data with a stable serde form. No IO and no
//! logic beyond small helpers live here.

pub mod stats;

pub use stats::{CallStats, EndReason, StreamDirection, StreamStats};
