//! The window's face: the status console's view and model, the first-boot wizard, and device
//! discovery. `ewindow-console` (`main.rs`) is the IO around them; `ewindowctl` the
//! maintenance client.

pub mod devices;
pub mod model;
pub mod view;
pub mod wizard;
