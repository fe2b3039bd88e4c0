//! The hardware watchdog (`[system.watchdog]`, Linux watchdog API). Opened at boot after the
//! data partition, its timeout set with `WDIOC_SETTIMEOUT`; the main loop pets it every third
//! of the timeout — only the loop, so a hung loop means a reset. An orderly shutdown writes the
//! magic `V` before closing, so the driver disarms instead of firing during the reboot.
//!
//! A pet is a one-byte write (any write pets; `V` arms the magic close), which also works on a
//! FIFO, so tests can watch it.

use std::fs::File;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::time::Duration;

use ewindow_protocol::init::WatchdogStatus;

use crate::config::WatchdogConf;

nix::ioctl_readwrite!(wdioc_settimeout, b'W', 6, nix::libc::c_int);

/// An open watchdog.
pub struct Watchdog {
    file: Option<File>,
    /// What `status` shows.
    pub status: WatchdogStatus,
    /// How often the loop pets it.
    pub interval: Duration,
}

/// The pet interval for a timeout: a third of it, at least one second.
pub fn interval(timeout: Duration) -> Duration {
    (timeout / 3).max(Duration::from_secs(1))
}

impl Watchdog {
    /// Opens the device and sets its timeout. A missing device is `absent`, not an error: a
    /// PC without one still runs.
    pub fn open(conf: &WatchdogConf) -> Watchdog {
        let mut status = WatchdogStatus {
            device: conf.device.display().to_string(),
            state: "absent".into(),
            timeout_s: conf.timeout.as_secs() as u32,
            pets: 0,
            error: None,
        };
        let interval = interval(conf.timeout);
        if !Path::new(&conf.device).exists() {
            tracing::info!(device = %status.device, "no hardware watchdog");
            return Watchdog {
                file: None,
                status,
                interval,
            };
        }
        let file = std::fs::OpenOptions::new()
            .write(true)
            .custom_flags(nix::libc::O_NONBLOCK | nix::libc::O_CLOEXEC)
            .open(&conf.device);
        let file = match file {
            Ok(f) => f,
            Err(e) => {
                status.state = "failed".into();
                status.error = Some(format!("open: {e}"));
                tracing::error!(device = %status.device, "watchdog: {e}");
                return Watchdog {
                    file: None,
                    status,
                    interval,
                };
            }
        };
        let mut timeout = status.timeout_s as nix::libc::c_int;
        // SAFETY: the fd is open for the duration of the call; `timeout` is a valid c_int the
        // driver reads and overwrites with the timeout it actually set.
        match unsafe { wdioc_settimeout(std::os::fd::AsRawFd::as_raw_fd(&file), &mut timeout) } {
            Ok(_) => status.timeout_s = timeout.max(0) as u32,
            Err(e) => {
                status.error = Some(format!(
                    "cannot set the timeout ({}); the driver's applies",
                    e.desc()
                ))
            }
        }
        status.state = "armed".into();
        tracing::info!(device = %status.device, timeout_s = status.timeout_s, "watchdog armed");
        let mut w = Watchdog {
            file: Some(file),
            interval: interval.min(self::interval(Duration::from_secs(
                status.timeout_s.max(1) as u64
            ))),
            status,
        };
        w.pet();
        w
    }

    /// Whether the device is open.
    pub fn armed(&self) -> bool {
        self.file.is_some()
    }

    /// Pets it (from the main loop only).
    pub fn pet(&mut self) {
        if let Some(f) = &mut self.file {
            match f.write_all(b"\0") {
                Ok(_) => self.status.pets += 1,
                Err(e) => self.status.error = Some(format!("pet: {e}")),
            }
        }
    }

    /// Orderly shutdown: the magic close, so the reboot is not raced by a watchdog reset.
    pub fn magic_close(&mut self) {
        if let Some(mut f) = self.file.take() {
            match f.write_all(b"V") {
                Ok(_) => tracing::info!("watchdog disarmed (magic close)"),
                Err(e) => tracing::warn!("watchdog magic close: {e}"),
            }
            self.status.state = "closed".into();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pets_three_times_per_timeout() {
        assert_eq!(interval(Duration::from_secs(30)), Duration::from_secs(10));
        assert_eq!(interval(Duration::from_secs(2)), Duration::from_secs(1));
        assert_eq!(interval(Duration::from_secs(600)), Duration::from_secs(200));
    }

    #[test]
    fn a_missing_device_is_absent_not_fatal() {
        let mut w = Watchdog::open(&WatchdogConf {
            device: "/nonexistent/watchdog".into(),
            timeout: Duration::from_secs(30),
        });
        assert!(!w.armed());
        assert_eq!(w.status.state, "absent");
        w.pet();
        w.magic_close();
        assert_eq!(w.status.pets, 0);
    }
}
