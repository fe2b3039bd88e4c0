//! `ewindow-init`'s control socket (`/run/ewindow/init.sock`): one JSON object per line, a
//! request in, a reply out. `ewindow-init` serves it; `ewindowctl` speaks it. The serde form
//! is the contract.
//!
//! ```text
//! → {"cmd":"status"}
//! ← {"ok":true,"status":{"init":{...},"config":{...},"services":[{"name":"phone",...}]}}
//! → {"cmd":"restart","service":"phone"}
//! ← {"ok":true}
//! → {"cmd":"stop","service":"nope"}
//! ← {"ok":false,"error":"no service named `nope`"}
//! ```

use serde::{Deserialize, Serialize};

/// A request from a client.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
#[serde(tag = "cmd", rename_all = "lowercase", deny_unknown_fields)]
pub enum Request {
    /// Every service's state.
    Status,
    /// Start a stopped or failed service (after its dependencies are ready).
    Start {
        /// Service name.
        service: String,
    },
    /// Stop a service and keep it stopped.
    Stop {
        /// Service name.
        service: String,
    },
    /// Stop a service and start it again.
    Restart {
        /// Service name.
        service: String,
    },
    /// Orderly shutdown, then reboot.
    Reboot,
    /// Orderly shutdown, then power off.
    Poweroff,
    /// Orderly shutdown, then halt.
    Halt,
    /// Reply `ok`, then keep the connection open and send an [`Event`] line whenever a
    /// service changes state, writes a line of output, or a shutdown begins (the first events
    /// give every service's current state).
    Subscribe,
    /// The last lines the services wrote (stdout and stderr), oldest first.
    Logs {
        /// Only this service's lines.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        service: Option<String>,
        /// At most this many (default 100).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        lines: Option<usize>,
    },
}

/// One line a service wrote.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
pub struct LogLine {
    /// When init read it (Unix milliseconds).
    pub unix_ms: u64,
    /// The service.
    pub service: String,
    /// The line, without its newline.
    pub line: String,
}

/// One line of a `subscribe` stream.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
#[serde(tag = "event", rename_all = "lowercase")]
pub enum Event {
    /// A service's state or pid changed.
    Service {
        /// Its name.
        name: String,
        /// Its new state (as in [`ServiceStatus::state`]).
        state: String,
        /// Its main pid, while it runs.
        pid: Option<i32>,
        /// Restarts so far.
        restarts: u32,
    },
    /// An orderly shutdown began: `reboot`, `poweroff` or `halt`.
    Shutdown {
        /// Which.
        kind: String,
    },
    /// A service wrote a line.
    Log(LogLine),
}

/// The reply to one request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
pub struct Reply {
    /// Whether the request was carried out (or accepted, for shutdowns).
    pub ok: bool,
    /// Why not, when `ok` is false.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The answer to `status`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<Status>,
    /// The answer to `logs`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logs: Option<Vec<LogLine>>,
}

impl Reply {
    /// A plain success.
    pub fn ok() -> Reply {
        Reply {
            ok: true,
            error: None,
            status: None,
            logs: None,
        }
    }

    /// A failure with its reason.
    pub fn error(message: impl Into<String>) -> Reply {
        Reply {
            ok: false,
            error: Some(message.into()),
            status: None,
            logs: None,
        }
    }
}

/// Everything `status` reports.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
pub struct Status {
    /// Init itself.
    pub init: InitStatus,
    /// The services file in use.
    pub config: ConfigStatus,
    /// Services in start order.
    pub services: Vec<ServiceStatus>,
    /// What init did at boot: modules, data partition, clock, watchdog.
    #[serde(default)]
    pub system: SystemStatus,
}

/// The boot duties of `[system]` and how they went.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
pub struct SystemStatus {
    /// Kernel modules asked for, in load order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub modules: Vec<ModuleStatus>,
    /// The data partition, when configured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<DataStatus>,
    /// The saved clock, when configured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clock: Option<ClockStatus>,
    /// The hardware watchdog, when configured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub watchdog: Option<WatchdogStatus>,
}

/// One kernel module.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
pub struct ModuleStatus {
    /// Module name.
    pub name: String,
    /// `loaded`, `present` (built in or loaded before), `no-device` (a device driver with
    /// no device for it: not loaded) or `failed`.
    pub state: String,
    /// Why it failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The data partition.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
pub struct DataStatus {
    /// Block device.
    pub device: String,
    /// Mount point.
    pub mountpoint: String,
    /// `mounted` (read-write), `read-only` (fsck left errors, or a read-write mount failed) or
    /// `unavailable` (not mounted at all).
    pub state: String,
    /// Whether the filesystem was made at this boot (blank partition).
    #[serde(default)]
    pub created: bool,
    /// What went wrong, for `read-only` and `unavailable`, or what fsck repaired.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// The saved clock.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
pub struct ClockStatus {
    /// The file.
    pub file: String,
    /// The time (Unix seconds) the clock was set to at boot, when it was behind the saved one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restored_unix: Option<u64>,
    /// The time last written to the file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub saved_unix: Option<u64>,
    /// The last error reading, setting or saving.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The hardware watchdog.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
pub struct WatchdogStatus {
    /// Device node.
    pub device: String,
    /// `armed`, `absent` (no such device) or `failed`.
    pub state: String,
    /// Timeout in seconds set on (or reported by) the device.
    pub timeout_s: u32,
    /// Times it was petted.
    pub pets: u64,
    /// Why it is not armed, or why the timeout could not be set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Init's own figures.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
pub struct InitStatus {
    /// Init's pid (1 on a window).
    pub pid: i32,
    /// Whether it runs as PID 1.
    pub pid1: bool,
    /// Seconds since init started.
    pub uptime_s: f64,
    /// CPU time init used (user + system), from `/proc/self/stat`.
    pub cpu_ms: u64,
    /// Resident memory, from `/proc/self/status` (`VmRSS`).
    pub rss_kb: u64,
    /// Processes reaped that were not services (orphans re-parented to init).
    pub orphans_reaped: u64,
    /// `reboot`, `poweroff` or `halt` once a shutdown has begun.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shutdown: Option<String>,
}

/// The services file in use and the last error, if the last load failed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
pub struct ConfigStatus {
    /// Where the services in use came from.
    pub source: String,
    /// The last load error ("file:line: key `k`: message"), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// One service's state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
pub struct ServiceStatus {
    /// Its name.
    pub name: String,
    /// `waiting`, `starting`, `running`, `stopping`, `backoff`, `failed` or `stopped`.
    pub state: String,
    /// Main process id while it runs.
    pub pid: Option<i32>,
    /// Times it was started again after exiting on its own.
    pub restarts: u32,
    /// How its last run ended.
    pub last_exit: Option<ExitStatus>,
    /// Seconds since it was started, while it runs.
    pub uptime_s: Option<f64>,
    /// Seconds until its next start, in `backoff` and `failed`.
    pub next_start_s: Option<f64>,
}

/// How a process ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
#[serde(rename_all = "lowercase")]
pub enum ExitStatus {
    /// It exited with this status.
    Exited(i32),
    /// It was killed by this signal (`SIGKILL`).
    Signaled(String),
    /// It could not be started (exec failed).
    SpawnFailed(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_have_the_documented_wire_form() {
        let cases = [
            (r#"{"cmd":"status"}"#, Request::Status),
            (
                r#"{"cmd":"start","service":"a"}"#,
                Request::Start {
                    service: "a".into(),
                },
            ),
            (
                r#"{"cmd":"stop","service":"a"}"#,
                Request::Stop {
                    service: "a".into(),
                },
            ),
            (
                r#"{"cmd":"restart","service":"a"}"#,
                Request::Restart {
                    service: "a".into(),
                },
            ),
            (r#"{"cmd":"reboot"}"#, Request::Reboot),
            (r#"{"cmd":"poweroff"}"#, Request::Poweroff),
            (r#"{"cmd":"halt"}"#, Request::Halt),
            (r#"{"cmd":"subscribe"}"#, Request::Subscribe),
        ];
        for (text, req) in cases {
            assert_eq!(serde_json::from_str::<Request>(text).unwrap(), req);
            assert_eq!(serde_json::to_string(&req).unwrap(), text);
        }
    }

    #[test]
    fn malformed_requests_are_errors_not_panics() {
        for bad in [
            "",
            "{}",
            r#"{"cmd":"start"}"#,
            r#"{"cmd":"explode"}"#,
            r#"{"cmd":"stop","service":7}"#,
            "[1,2]",
            "\u{0}",
        ] {
            assert!(serde_json::from_str::<Request>(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn events_have_a_tag() {
        let e = Event::Service {
            name: "phone".into(),
            state: "running".into(),
            pid: Some(7),
            restarts: 0,
        };
        assert_eq!(
            serde_json::to_string(&e).unwrap(),
            r#"{"event":"service","name":"phone","state":"running","pid":7,"restarts":0}"#
        );
        let s = Event::Shutdown {
            kind: "reboot".into(),
        };
        assert_eq!(
            serde_json::to_string(&s).unwrap(),
            r#"{"event":"shutdown","kind":"reboot"}"#
        );
    }

    #[test]
    fn replies_omit_empty_fields() {
        assert_eq!(
            serde_json::to_string(&Reply::ok()).unwrap(),
            r#"{"ok":true}"#
        );
        assert_eq!(
            serde_json::to_string(&Reply::error("no")).unwrap(),
            r#"{"ok":false,"error":"no"}"#
        );
        assert_eq!(
            serde_json::to_string(&ExitStatus::Signaled("SIGKILL".into())).unwrap(),
            r#"{"signaled":"SIGKILL"}"#
        );
    }
}
