//! The window's programs as the image installs them: `ewindow-init` is a binary of its own
//! (PID 1 maps only its own code), the others are one multi-call binary, [`MULTICALL`] in
//! `/usr/bin`, with a link for each name in [`IN_MULTICALL`]; it runs the program its name
//! says (the busybox pattern). The code they would each carry twice (the standard library,
//! tokio, serde, clap, the protocol) is there once.

/// The multi-call binary's name (`multicall/`).
pub const MULTICALL: &str = "ewindow";

/// The programs in the multi-call binary: the names it answers to, linked to it in `/usr/bin`.
pub const IN_MULTICALL: [&str; 4] = [
    "ewindow-phone",
    "ewindow-overlay",
    "ewindow-console",
    "ewindowctl",
];
