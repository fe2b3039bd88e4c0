//! `ewindow-phone` as a library: the modules of the window's SIP soft-phone, so the thin
//! binaries (`main.rs` and the multi-call `ewindow` run [`cli`]), the tests, the benches and
//! fuzz targets reach the same code.
//!
//! Pure logic — [`sdp`] (offer/answer, SDES), [`policy`] (the window policy), [`config`]
//! (the call configuration), [`board`] (a board's video profile) — does no IO; [`sip`]
//! (rsipstack), [`media`] (GStreamer), [`call`], [`window`], [`control`], [`members`],
//! [`netdev`], [`probe`] and [`memory`] (freed memory handed back) are the IO edges. Who uses whom, downwards only: `window` →
//! `call` → `media`/`sip`/`sdp`; `window` and `call` → `control` (the socket and the
//! window's command vocabulary); `config` is read by all of them.

pub mod board;
pub mod button;
pub mod call;
pub mod cli;
pub mod config;
pub mod control;
pub mod input;
pub mod media;
pub mod members;
pub mod memory;
pub mod netdev;
pub mod policy;
pub mod probe;
pub mod sdp;
pub mod sip;
pub mod window;
