//! The vocabulary every ewindow process speaks.
//!
//! Types here cross process boundaries (files such as `--stats-json`, and the control sockets
//! in `/run/ewindow/`: `init` for `ewindow-init`'s), so they are plain data with a stable serde
//! form. No IO and no logic beyond small helpers live here.

pub mod init;
pub mod stats;

pub use stats::{CallStats, EndReason, StreamDirection, StreamStats};
