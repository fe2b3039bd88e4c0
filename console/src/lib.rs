//! The window's face: the status console's view and model, the first-boot wizard, and device
//! discovery. `ewindow-console` ([`cli`]) is the IO around them; `ewindowctl` ([`ctl`]) the
//! maintenance client. The binaries (`main.rs`, `bin/ewindowctl.rs`, and the multi-call
//! `ewindow`) only call their `main`.

pub mod cli;
pub mod ctl;
pub mod devices;
pub mod model;
pub mod view;
pub mod wizard;
