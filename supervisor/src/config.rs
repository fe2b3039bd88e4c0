//! The services file: parsing (serde + `toml`) and validation.
//!
//! Pure: [`parse`] takes the file name and its text and does no IO; [`load`] only adds the
//! read. Every error names the file, the line and the key ("services.toml:7: key `after`:
//! unknown service `overlay`"), so a typo on a window on the wall can be found from a log.
//!
//! ```toml
//! [backoff]                 # optional; these are the defaults
//! min_s = 1                 # never below 1
//! max_s = 30
//! reset_after_s = 10
//! failed_after = 5
//! failed_retry_s = 60
//!
//! [[service]]
//! name = "phone"
//! exec = ["/usr/bin/ewindow-phone", "--config", "/data/ewindow/window.toml"]
//! after = ["overlay"]       # start after these are ready
//! ready = "notify"          # or "started" (default)
//! restart = "always"        # "on-failure" | "never"
//! stop_timeout_s = 5        # SIGTERM, then SIGKILL after this long (default 5)
//! env = { RUST_LOG = "info" }
//! tty = "/dev/tty1"         # optional: stdin/out/err and controlling terminal
//!
//! [system]                  # optional; what init does before the first service (at boot only)
//! modules = ["wireguard"]   # kernel modules to load, with their dependencies (modules.dep)
//! device_modules = ["i915"] # loaded only if a device in /sys/bus matches their modules.alias
//! modules_dir = "/lib/modules"   # default; the running kernel's release is appended
//! read_only_root = false    # remount / read-only after /data is mounted (PID 1 only)
//!
//! [system.data]             # the data partition: fsck, then mount (read-only if fsck fails)
//! device = "PARTLABEL=ewindow-data"   # or a path; PARTLABEL= finds the GPT partition by
//!                           # its label in /sys/class/block (there is no udev);
//!                           # PARTUUID=0e77696e-02 the MBR partition 2 of disk id 0x0e77696e
//! fstype = "ext4"           # ext2 | ext3 | ext4 (default)
//! mountpoint = "/data"      # default
//! mkfs_if_blank = true      # make the filesystem when the partition is all zeros (first boot)
//! wait_s = 5                # how long to wait for the device node to appear
//!
//! [system.clock]            # a Pi has no RTC: restore the saved time at boot, save it often
//! file = "/data/ewindow/clock"
//! save_every_s = 900
//!
//! [system.watchdog]         # petted from the main loop; magic close on orderly shutdown
//! device = "/dev/watchdog"
//! timeout_s = 30
//! ```
//!
//! **Invariant:** a [`Config`] that exists is valid: names are unique and well-formed, every
//! `after` names a service of the file, there is no dependency cycle, `exec` is not empty and
//! every duration is finite and in range.

use std::collections::{BTreeMap, HashMap};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use toml::Spanned;

use crate::backoff::{BackoffPolicy, Restart};
use crate::order;

/// How a service tells init it is ready, so that its dependants may start.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum Ready {
    /// Ready as soon as it has been started.
    #[default]
    Started,
    /// Ready when it writes `READY\n` to the file descriptor named in `$EWINDOW_READY_FD`.
    Notify,
}

/// One service, validated.
#[derive(Debug, Clone, PartialEq)]
pub struct Service {
    /// Unique name (letters, digits, `-`, `_`, `.`).
    pub name: String,
    /// Program and arguments; `exec[0]` is a path (or a name looked up in `PATH`).
    pub exec: Vec<String>,
    /// Services that must be ready before this one starts.
    pub after: Vec<String>,
    /// Readiness protocol.
    pub ready: Ready,
    /// Restart policy when it exits on its own.
    pub restart: Restart,
    /// Time between SIGTERM and SIGKILL when it is stopped.
    pub stop_timeout: Duration,
    /// Extra environment variables.
    pub env: BTreeMap<String, String>,
    /// A terminal to run on (stdin, stdout, stderr and controlling terminal).
    pub tty: Option<PathBuf>,
    /// Line of the service's `name` in the file, for messages.
    pub line: usize,
}

/// A validated services file.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// The file it came from (or a description of the built-in set).
    pub source: PathBuf,
    /// Services in file order.
    pub services: Vec<Service>,
    /// Restart timing for all services.
    pub backoff: BackoffPolicy,
    /// What init does before the first service; read at start only (a reload keeps the
    /// running system settings).
    pub system: System,
}

/// The `[system]` table: boot duties configured per image.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct System {
    /// Kernel modules to load (names as `modprobe` takes them).
    pub modules: Vec<String>,
    /// Drivers loaded only when a device they drive is there (its `modalias` in `/sys/bus`
    /// matches one of the module's aliases in `modules.alias`): a PC's GPU, NIC, disk and
    /// audio controllers, which a machine has one of or none.
    pub device_modules: Vec<String>,
    /// Where the module trees are; the kernel release is appended.
    pub modules_dir: PathBuf,
    /// The data partition, when there is one.
    pub data: Option<DataDisk>,
    /// The saved clock, when configured.
    pub clock: Option<ClockFile>,
    /// The hardware watchdog, when configured (and present).
    pub watchdog: Option<WatchdogConf>,
    /// Remount `/` read-only once /data is mounted (an image whose root is the initramfs:
    /// /run and /tmp are tmpfs, everything else writable lives on /data).
    pub read_only_root: bool,
}

/// `[system.data]`: the persistent partition.
#[derive(Debug, Clone, PartialEq)]
pub struct DataDisk {
    /// Block device.
    pub device: PathBuf,
    /// `ext2`, `ext3` or `ext4`.
    pub fstype: String,
    /// Where it is mounted.
    pub mountpoint: PathBuf,
    /// Make a filesystem when the device is blank (its first MiB all zeros).
    pub mkfs_if_blank: bool,
    /// How long to wait for the device node.
    pub wait: Duration,
}

/// `[system.clock]`: the file that carries the time across reboots.
#[derive(Debug, Clone, PartialEq)]
pub struct ClockFile {
    /// The file (on the data partition).
    pub file: PathBuf,
    /// How often it is saved while running (and always at shutdown).
    pub save_every: Duration,
}

/// `[system.watchdog]`: the hardware watchdog.
#[derive(Debug, Clone, PartialEq)]
pub struct WatchdogConf {
    /// Its device node.
    pub device: PathBuf,
    /// The timeout set on the device; the loop pets it at a third of that.
    pub timeout: Duration,
}

impl Config {
    /// A config without services: what init runs when there is nothing better.
    pub fn empty(source: impl Into<PathBuf>) -> Config {
        Config {
            source: source.into(),
            services: Vec::new(),
            backoff: BackoffPolicy::default(),
            system: System {
                modules_dir: DEFAULT_MODULES_DIR.into(),
                ..System::default()
            },
        }
    }

    /// `deps[i]` = indices of the services `services[i]` starts after.
    pub fn dependency_indices(&self) -> Vec<Vec<usize>> {
        let index: HashMap<&str, usize> = self
            .services
            .iter()
            .enumerate()
            .map(|(i, s)| (s.name.as_str(), i))
            .collect();
        self.services
            .iter()
            .map(|s| {
                s.after
                    .iter()
                    .filter_map(|a| index.get(a.as_str()).copied())
                    .collect()
            })
            .collect()
    }

    /// Start order as indices into `services` (valid configs have no cycle).
    pub fn start_order(&self) -> Vec<usize> {
        order::start_order(&self.dependency_indices())
            .unwrap_or_else(|_| (0..self.services.len()).collect())
    }
}

use ewindow_protocol::config::line_of;
pub use ewindow_protocol::config::ConfigError;

/// Reads and parses a services file.
pub fn load(path: &Path) -> Result<Config, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        file: path.to_owned(),
        source,
    })?;
    parse(path, &text)
}

/// Default `[system] modules_dir`.
pub const DEFAULT_MODULES_DIR: &str = "/lib/modules";

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default)]
    service: Vec<Spanned<RawService>>,
    backoff: Option<Spanned<RawBackoff>>,
    system: Option<RawSystem>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSystem {
    #[serde(default)]
    modules: Vec<Spanned<String>>,
    #[serde(default)]
    device_modules: Vec<Spanned<String>>,
    modules_dir: Option<Spanned<PathBuf>>,
    data: Option<RawData>,
    clock: Option<RawClock>,
    watchdog: Option<RawWatchdog>,
    #[serde(default)]
    read_only_root: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawData {
    device: Spanned<PathBuf>,
    fstype: Option<Spanned<String>>,
    mountpoint: Option<Spanned<PathBuf>>,
    #[serde(default)]
    mkfs_if_blank: bool,
    wait_s: Option<Spanned<f64>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawClock {
    file: Spanned<PathBuf>,
    save_every_s: Option<Spanned<f64>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawWatchdog {
    device: Option<Spanned<PathBuf>>,
    timeout_s: Option<Spanned<f64>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBackoff {
    min_s: Option<Spanned<f64>>,
    max_s: Option<Spanned<f64>>,
    reset_after_s: Option<Spanned<f64>>,
    failed_after: Option<Spanned<u32>>,
    failed_retry_s: Option<Spanned<f64>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawService {
    name: Spanned<String>,
    exec: Spanned<Vec<String>>,
    #[serde(default)]
    after: Vec<Spanned<String>>,
    #[serde(default)]
    ready: Ready,
    #[serde(default)]
    restart: Restart,
    stop_timeout_s: Option<Spanned<f64>>,
    #[serde(default)]
    env: BTreeMap<String, String>,
    tty: Option<PathBuf>,
}

/// Parses and validates the text of a services file; `file` is only used in messages.
pub fn parse(file: &Path, text: &str) -> Result<Config, ConfigError> {
    let invalid = |span: Range<usize>, key: String, message: String| {
        ConfigError::at(file, text, span.start, key, message)
    };
    let raw: RawFile = toml::from_str(text).map_err(|e| {
        let span = e.span().unwrap_or(0..0);
        invalid(
            span.clone(),
            key_at(text, span, e.message()),
            e.message().trim().to_owned(),
        )
    })?;

    let backoff = match raw.backoff {
        None => BackoffPolicy::default(),
        Some(b) => {
            let b = b.into_inner();
            let d = BackoffPolicy::default();
            let secs = |v: Option<Spanned<f64>>, key: &str, default: Duration, min: f64| {
                seconds(v, default, min, 86_400.0)
                    .map_err(|(span, m)| invalid(span, format!("backoff.{key}"), m))
            };
            let policy = BackoffPolicy {
                min_delay: secs(b.min_s, "min_s", d.min_delay, 1.0)?,
                max_delay: secs(b.max_s, "max_s", d.max_delay, 1.0)?,
                reset_after: secs(b.reset_after_s, "reset_after_s", d.reset_after, 0.0)?,
                failed_after: match b.failed_after {
                    None => d.failed_after,
                    Some(v) if *v.get_ref() >= 1 => *v.get_ref(),
                    Some(v) => {
                        return Err(invalid(
                            v.span(),
                            "backoff.failed_after".into(),
                            "must be at least 1".into(),
                        ))
                    }
                },
                failed_retry: secs(b.failed_retry_s, "failed_retry_s", d.failed_retry, 1.0)?,
            };
            if policy.max_delay < policy.min_delay {
                return Err(ConfigError::Invalid {
                    file: file.to_owned(),
                    line: line_of(text, 0),
                    key: "backoff.max_s".into(),
                    message: format!(
                        "{} s is below min_s ({} s)",
                        policy.max_delay.as_secs_f64(),
                        policy.min_delay.as_secs_f64()
                    ),
                });
            }
            policy
        }
    };

    let mut services = Vec::with_capacity(raw.service.len());
    let mut first_line: HashMap<String, usize> = HashMap::new();
    let mut after_spans: Vec<Vec<Range<usize>>> = Vec::new();
    for (i, s) in raw.service.into_iter().enumerate() {
        let s = s.into_inner();
        let key = |k: &str| format!("service[{i}].{k}");
        let name = s.name.get_ref().clone();
        if let Err(m) = check_name(&name) {
            return Err(invalid(s.name.span(), key("name"), m));
        }
        let line = line_of(text, s.name.span().start);
        if let Some(prev) = first_line.insert(name.clone(), line) {
            return Err(invalid(
                s.name.span(),
                key("name"),
                format!("duplicate service name `{name}` (first defined on line {prev})"),
            ));
        }
        let exec_span = s.exec.span();
        let exec = s.exec.into_inner();
        if exec.is_empty() || exec[0].is_empty() {
            return Err(invalid(
                exec_span,
                key("exec"),
                "must name a program: exec = [\"/path/to/program\", \"args\"...]".into(),
            ));
        }
        let stop_timeout = seconds(s.stop_timeout_s, Duration::from_secs(5), 0.0, 3600.0)
            .map_err(|(span, m)| invalid(span, key("stop_timeout_s"), m))?;
        after_spans.push(s.after.iter().map(|a| a.span()).collect());
        services.push(Service {
            name,
            exec,
            after: s.after.into_iter().map(Spanned::into_inner).collect(),
            ready: s.ready,
            restart: s.restart,
            stop_timeout,
            env: s.env,
            tty: s.tty,
            line,
        });
    }

    for (i, s) in services.iter().enumerate() {
        for (j, a) in s.after.iter().enumerate() {
            if !first_line.contains_key(a) {
                return Err(invalid(
                    after_spans[i][j].clone(),
                    format!("service[{i}].after"),
                    format!("`{}` starts after unknown service `{a}`", s.name),
                ));
            }
        }
    }

    let system = match raw.system {
        None => Config::empty("").system,
        Some(sys) => parse_system(sys).map_err(|(span, key, m)| invalid(span, key, m))?,
    };

    let config = Config {
        source: file.to_owned(),
        services,
        backoff,
        system,
    };
    if let Err(cycle) = order::start_order(&config.dependency_indices()) {
        let first = cycle.members.first().copied().unwrap_or(0);
        let names: Vec<&str> = cycle
            .members
            .iter()
            .map(|&m| config.services[m].name.as_str())
            .collect();
        let next_name = names.get(1).copied().unwrap_or_default();
        let span = config.services[first]
            .after
            .iter()
            .position(|a| a == next_name)
            .map(|j| after_spans[first][j].clone())
            .unwrap_or(0..0);
        return Err(invalid(
            span,
            format!("service[{first}].after"),
            format!(
                "dependency cycle: {} (each starts after the next)",
                names.join(" -> ")
            ),
        ));
    }
    Ok(config)
}

type Fault = (Range<usize>, String, String);

fn parse_system(sys: RawSystem) -> Result<System, Fault> {
    let absolute = |p: Spanned<PathBuf>, key: &str| -> Result<PathBuf, Fault> {
        if p.get_ref().is_absolute() {
            Ok(p.into_inner())
        } else {
            Err((
                p.span(),
                format!("system.{key}"),
                format!("`{}` must be an absolute path", p.get_ref().display()),
            ))
        }
    };
    let names = |list: Vec<Spanned<String>>, key: &str| -> Result<Vec<String>, Fault> {
        let mut out = Vec::new();
        for (i, m) in list.into_iter().enumerate() {
            let name = m.get_ref();
            if name.is_empty()
                || name.len() > 64
                || !name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
            {
                return Err((
                    m.span(),
                    format!("system.{key}[{i}]"),
                    format!("`{name}` is not a module name (letters, digits, `_`, `-`)"),
                ));
            }
            out.push(m.into_inner());
        }
        Ok(out)
    };
    let modules = names(sys.modules, "modules")?;
    let device_modules = names(sys.device_modules, "device_modules")?;
    let modules_dir = match sys.modules_dir {
        None => PathBuf::from(DEFAULT_MODULES_DIR),
        Some(p) => absolute(p, "modules_dir")?,
    };
    let data = match sys.data {
        None => None,
        Some(d) => {
            let fstype = match d.fstype {
                None => "ext4".to_owned(),
                Some(f) if matches!(f.get_ref().as_str(), "ext2" | "ext3" | "ext4") => {
                    f.into_inner()
                }
                Some(f) => {
                    return Err((
                        f.span(),
                        "system.data.fstype".into(),
                        format!("`{}` is not supported: use ext4, ext3 or ext2", f.get_ref()),
                    ))
                }
            };
            Some(DataDisk {
                device: match d.device.get_ref().to_str() {
                    Some(spec) if spec.starts_with("PARTLABEL=") => {
                        let label = &spec["PARTLABEL=".len()..];
                        if label.is_empty() || label.contains('/') {
                            return Err((
                                d.device.span(),
                                "system.data.device".into(),
                                format!("`{spec}`: PARTLABEL= needs a partition label"),
                            ));
                        }
                        d.device.into_inner()
                    }
                    Some(spec) if spec.starts_with("PARTUUID=") => {
                        if crate::data::parse_mbr_partuuid(&spec["PARTUUID=".len()..]).is_none() {
                            return Err((
                                d.device.span(),
                                "system.data.device".into(),
                                format!(
                                    "`{spec}`: PARTUUID= needs an MBR partition id, 8 hex digits, `-` and 2 (0e77696e-02)"
                                ),
                            ));
                        }
                        d.device.into_inner()
                    }
                    _ => absolute(d.device, "data.device")?,
                },
                fstype,
                mountpoint: match d.mountpoint {
                    None => PathBuf::from("/data"),
                    Some(p) => absolute(p, "data.mountpoint")?,
                },
                mkfs_if_blank: d.mkfs_if_blank,
                wait: seconds(d.wait_s, Duration::from_secs(5), 0.0, 600.0)
                    .map_err(|(span, m)| (span, "system.data.wait_s".into(), m))?,
            })
        }
    };
    let clock = match sys.clock {
        None => None,
        Some(c) => Some(ClockFile {
            file: absolute(c.file, "clock.file")?,
            save_every: seconds(c.save_every_s, Duration::from_secs(900), 1.0, 86_400.0)
                .map_err(|(span, m)| (span, "system.clock.save_every_s".into(), m))?,
        }),
    };
    let watchdog = match sys.watchdog {
        None => None,
        Some(w) => Some(WatchdogConf {
            device: match w.device {
                None => PathBuf::from("/dev/watchdog"),
                Some(p) => absolute(p, "watchdog.device")?,
            },
            timeout: seconds(w.timeout_s, Duration::from_secs(30), 2.0, 600.0)
                .map_err(|(span, m)| (span, "system.watchdog.timeout_s".into(), m))?,
        }),
    };
    Ok(System {
        modules,
        device_modules,
        modules_dir,
        data,
        clock,
        watchdog,
        read_only_root: sys.read_only_root,
    })
}

fn check_name(name: &str) -> Result<(), String> {
    if name.is_empty() || name.len() > 64 {
        return Err("must be 1 to 64 characters long".into());
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')))
    {
        return Err(format!(
            "`{name}` contains {c:?}; use letters, digits, `-`, `_` and `.`"
        ));
    }
    Ok(())
}

/// A duration in seconds from an optional float, checked to be finite and in `[min, max]`.
fn seconds(
    v: Option<Spanned<f64>>,
    default: Duration,
    min: f64,
    max: f64,
) -> Result<Duration, (Range<usize>, String)> {
    let Some(v) = v else { return Ok(default) };
    let x = *v.get_ref();
    if !x.is_finite() || x < min || x > max {
        return Err((
            v.span(),
            format!("{x} is out of range: expected seconds from {min} to {max}"),
        ));
    }
    Ok(Duration::from_secs_f64(x))
}

/// The key a toml error is about: the field a message names (missing/unknown field), else the
/// key written on the line of the error, else `-`.
fn key_at(text: &str, span: Range<usize>, message: &str) -> String {
    for prefix in ["missing field `", "unknown field `"] {
        if let Some(rest) = message.find(prefix).map(|p| &message[p + prefix.len()..]) {
            if let Some(end) = rest.find('`') {
                return rest[..end].to_owned();
            }
        }
    }
    let start = span.start.min(text.len());
    let line_start = text[..start].rfind('\n').map_or(0, |p| p + 1);
    let line_end = text[start..].find('\n').map_or(text.len(), |p| start + p);
    let line = &text[line_start..line_end];
    match line.split_once('=') {
        Some((k, _)) if !k.trim().is_empty() && !k.trim().starts_with('[') => {
            k.trim().trim_matches('"').to_owned()
        }
        _ => "-".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(text: &str) -> Config {
        parse(Path::new("services.toml"), text).unwrap_or_else(|e| panic!("{e}"))
    }

    /// The error as the log shows it.
    fn err(text: &str) -> String {
        match parse(Path::new("services.toml"), text) {
            Ok(c) => panic!("accepted: {c:?}"),
            Err(e) => e.to_string(),
        }
    }

    const ISSUE_EXAMPLE: &str = r#"
[[service]]
name = "overlay"
exec = ["/usr/sbin/ewindow-overlay"]

[[service]]
name = "phone"
exec = ["/usr/bin/ewindow-phone", "--config", "/data/ewindow/window.toml"]
after = ["overlay"]          # start after these are ready
ready = "notify"
restart = "always"           # "on-failure" | "never"
stop_timeout_s = 5
"#;

    #[test]
    fn the_issue_example_parses_with_defaults_filled_in() {
        let c = ok(ISSUE_EXAMPLE);
        assert_eq!(c.services.len(), 2);
        let overlay = &c.services[0];
        assert_eq!(overlay.ready, Ready::Started);
        assert_eq!(overlay.restart, Restart::Always);
        assert_eq!(overlay.stop_timeout, Duration::from_secs(5));
        assert!(overlay.after.is_empty() && overlay.env.is_empty() && overlay.tty.is_none());
        assert_eq!(overlay.line, 3);
        let phone = &c.services[1];
        assert_eq!(phone.exec[2], "/data/ewindow/window.toml");
        assert_eq!(phone.after, vec!["overlay"]);
        assert_eq!(phone.ready, Ready::Notify);
        assert_eq!(phone.line, 7);
        assert_eq!(c.backoff, BackoffPolicy::default());
        assert_eq!(c.start_order(), vec![0, 1]);
    }

    #[test]
    fn every_field_and_the_backoff_table() {
        let c = ok(r#"
[backoff]
min_s = 2
max_s = 8.5
reset_after_s = 3
failed_after = 2
failed_retry_s = 120

[[service]]
name = "console"
exec = ["/usr/bin/ewindow-console"]
restart = "on-failure"
stop_timeout_s = 0.25
env = { A = "1", B = "two" }
tty = "/dev/tty1"
[[service]]
name = "x.y_z-1"
exec = ["true"]
restart = "never"
"#);
        assert_eq!(
            c.backoff,
            BackoffPolicy {
                min_delay: Duration::from_secs(2),
                max_delay: Duration::from_millis(8500),
                reset_after: Duration::from_secs(3),
                failed_after: 2,
                failed_retry: Duration::from_secs(120),
            }
        );
        let s = &c.services[0];
        assert_eq!(s.restart, Restart::OnFailure);
        assert_eq!(s.stop_timeout, Duration::from_millis(250));
        assert_eq!(s.env["B"], "two");
        assert_eq!(s.tty.as_deref(), Some(Path::new("/dev/tty1")));
        assert_eq!(c.services[1].restart, Restart::Never);
    }

    #[test]
    fn an_empty_file_is_a_valid_empty_config() {
        assert!(ok("").services.is_empty());
        assert!(ok("# nothing\n").services.is_empty());
    }

    #[test]
    fn syntax_errors_name_file_and_line() {
        let e = err("[[service]]\nname = \"a\"\nexec = [\"x\"\n");
        assert!(e.starts_with("services.toml:"), "{e}");
        let e = err("[[service]]\nname = \"a\"\nexec = [\"x\"]\nrestart = always\n");
        assert!(e.starts_with("services.toml:4: key `restart`"), "{e}");
    }

    #[test]
    fn wrong_values_name_the_key_and_line() {
        let e = err("[[service]]\nname = \"a\"\nexec = [\"x\"]\nrestart = \"sometimes\"\n");
        assert!(e.starts_with("services.toml:4: key `restart`"), "{e}");
        assert!(e.contains("sometimes"), "{e}");
        let e = err("[[service]]\nname = \"a\"\nexec = \"/bin/x\"\n");
        assert!(e.starts_with("services.toml:3: key `exec`"), "{e}");
        let e = err("[[service]]\nname = \"a\"\nexec = [\"x\"]\nready = \"soon\"\n");
        assert!(e.starts_with("services.toml:4: key `ready`"), "{e}");
        let e = err("[[service]]\nname = \"a\"\nexec = [\"x\"]\nstop_timeout_s = \"5\"\n");
        assert!(
            e.starts_with("services.toml:4: key `stop_timeout_s`"),
            "{e}"
        );
    }

    #[test]
    fn unknown_and_missing_keys_are_named() {
        let e = err("[[service]]\nname = \"a\"\nexec = [\"x\"]\nrestrat = \"never\"\n");
        assert!(e.contains("key `restrat`"), "{e}");
        assert!(e.starts_with("services.toml:4:"), "{e}");
        let e = err("[[service]]\nname = \"a\"\n");
        assert!(e.contains("key `exec`"), "{e}");
        let e = err("[[service]]\nexec = [\"a\"]\n");
        assert!(e.contains("key `name`"), "{e}");
        let e = err("[[services]]\nname = \"a\"\n");
        assert!(e.contains("key `services`"), "{e}");
    }

    #[test]
    fn empty_exec_is_refused() {
        let e = err("[[service]]\nname = \"a\"\nexec = []\n");
        assert!(
            e.starts_with("services.toml:3: key `service[0].exec`"),
            "{e}"
        );
        let e = err("[[service]]\nname = \"a\"\nexec = [\"\", \"x\"]\n");
        assert!(
            e.starts_with("services.toml:3: key `service[0].exec`"),
            "{e}"
        );
    }

    #[test]
    fn duplicate_names_are_refused_with_both_lines() {
        let e = err("[[service]]\nname = \"a\"\nexec = [\"x\"]\n[[service]]\nname = \"a\"\nexec = [\"y\"]\n");
        assert!(
            e.starts_with("services.toml:5: key `service[1].name`"),
            "{e}"
        );
        assert!(e.contains("first defined on line 2"), "{e}");
    }

    #[test]
    fn bad_names_are_refused() {
        for bad in ["", "a b", "a/b", "é", &"x".repeat(65)] {
            let e = err(&format!("[[service]]\nname = \"{bad}\"\nexec = [\"x\"]\n"));
            assert!(
                e.starts_with("services.toml:2: key `service[0].name`"),
                "{e}"
            );
        }
    }

    #[test]
    fn unknown_after_targets_are_refused_on_their_line() {
        let e = err("[[service]]\nname = \"a\"\nexec = [\"x\"]\nafter = [\n  \"b\",\n  \"overlay\",\n]\n[[service]]\nname = \"b\"\nexec = [\"x\"]\n");
        assert!(
            e.starts_with("services.toml:6: key `service[0].after`"),
            "{e}"
        );
        assert!(e.contains("unknown service `overlay`"), "{e}");
    }

    #[test]
    fn dependency_cycles_are_refused_and_spelled_out() {
        let e = err("[[service]]\nname = \"a\"\nexec = [\"x\"]\nafter = [\"a\"]\n");
        assert!(
            e.starts_with("services.toml:4: key `service[0].after`"),
            "{e}"
        );
        assert!(e.contains("a -> a"), "{e}");
        let e = err(concat!(
            "[[service]]\nname = \"a\"\nexec = [\"x\"]\n",
            "[[service]]\nname = \"b\"\nexec = [\"x\"]\nafter = [\"c\"]\n",
            "[[service]]\nname = \"c\"\nexec = [\"x\"]\nafter = [\"a\", \"b\"]\n",
        ));
        assert!(e.contains("dependency cycle: b -> c -> b"), "{e}");
        assert!(
            e.starts_with("services.toml:7: key `service[1].after`"),
            "{e}"
        );
    }

    #[test]
    fn durations_out_of_range_are_refused() {
        for bad in ["-1", "nan", "inf", "3601"] {
            let e = err(&format!(
                "[[service]]\nname = \"a\"\nexec = [\"x\"]\nstop_timeout_s = {bad}\n"
            ));
            assert!(
                e.starts_with("services.toml:4: key `service[0].stop_timeout_s`"),
                "{e}"
            );
        }
        let e = err("[backoff]\nmin_s = 0.5\n");
        assert!(e.starts_with("services.toml:2: key `backoff.min_s`"), "{e}");
        let e = err("[backoff]\nfailed_after = 0\n");
        assert!(
            e.starts_with("services.toml:2: key `backoff.failed_after`"),
            "{e}"
        );
        let e = err("[backoff]\nmin_s = 10\nmax_s = 5\n");
        assert!(e.contains("key `backoff.max_s`"), "{e}");
    }

    #[test]
    fn start_order_comes_from_after() {
        let c = ok(concat!(
            "[[service]]\nname = \"phone\"\nexec = [\"x\"]\nafter = [\"overlay\"]\n",
            "[[service]]\nname = \"console\"\nexec = [\"x\"]\n",
            "[[service]]\nname = \"overlay\"\nexec = [\"x\"]\n",
        ));
        let names: Vec<&str> = c
            .start_order()
            .into_iter()
            .map(|i| c.services[i].name.as_str())
            .collect();
        assert_eq!(names, vec!["console", "overlay", "phone"]);
    }

    #[test]
    fn load_names_a_missing_file() {
        let e = load(Path::new("/nonexistent/services.toml")).unwrap_err();
        assert!(e
            .to_string()
            .starts_with("/nonexistent/services.toml: cannot read"));
    }

    #[test]
    fn the_images_services_file_is_valid() {
        let c = ok(include_str!(
            "../../overlays/qemu-x86_64/etc/ewindow/services.toml"
        ));
        let names: Vec<&str> = c.services.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "network",
                "linklocal",
                "time",
                "overlay",
                "phone",
                "console",
                "serial",
                "sshd"
            ]
        );
        let order: Vec<&str> = c
            .start_order()
            .into_iter()
            .map(|i| c.services[i].name.as_str())
            .collect();
        assert!(
            order.iter().position(|n| *n == "overlay") < order.iter().position(|n| *n == "phone")
        );
        assert!(c.system.modules.iter().any(|m| m == "wireguard"));
        let data = c.system.data.unwrap();
        assert!(data.mkfs_if_blank);
        assert_eq!(data.device, Path::new("PARTLABEL=ewindow-data"));
        assert!(c.system.read_only_root);
    }

    #[test]
    fn the_pi_images_services_file_is_valid() {
        let c = ok(include_str!(
            "../../overlays/rpi-arm64/etc/ewindow/services.toml"
        ));
        let pc = ok(include_str!(
            "../../overlays/qemu-x86_64/etc/ewindow/services.toml"
        ));
        let names =
            |c: &Config| -> Vec<String> { c.services.iter().map(|s| s.name.clone()).collect() };
        assert_eq!(names(&c), names(&pc));
        let serial = c.services.iter().find(|s| s.name == "serial").unwrap();
        assert_eq!(serial.tty.as_deref(), Some(Path::new("/dev/ttyS1")));
        let m = &c.system.modules;
        let at = |n: &str| m.iter().position(|x| x == n).unwrap();
        assert!(at("phy_generic") < at("dwc2"), "{m:?}");
        assert!(m.iter().any(|x| x == "bcm2835_wdt"));
        let data = c.system.data.unwrap();
        assert_eq!(data.device, Path::new("PARTUUID=0e77696e-02"));
    }

    #[test]
    fn the_system_table_with_defaults_and_every_field() {
        let c = ok("");
        assert_eq!(c.system.modules_dir, Path::new("/lib/modules"));
        assert!(c.system.data.is_none() && c.system.clock.is_none());
        let c = ok(r#"
[system]
modules = ["wireguard", "virtio_net"]
[system.data]
device = "/dev/vda3"
mkfs_if_blank = true
[system.clock]
file = "/data/ewindow/clock"
[system.watchdog]
timeout_s = 20
"#);
        assert_eq!(c.system.modules, ["wireguard", "virtio_net"]);
        assert!(c.system.device_modules.is_empty());
        let d = c.system.data.unwrap();
        assert_eq!(d.device, Path::new("/dev/vda3"));
        assert_eq!(d.fstype, "ext4");
        assert_eq!(d.mountpoint, Path::new("/data"));
        assert!(d.mkfs_if_blank);
        assert_eq!(d.wait, Duration::from_secs(5));
        let k = c.system.clock.unwrap();
        assert_eq!(k.save_every, Duration::from_secs(900));
        let w = c.system.watchdog.unwrap();
        assert_eq!(w.device, Path::new("/dev/watchdog"));
        assert_eq!(w.timeout, Duration::from_secs(20));
    }

    #[test]
    fn system_errors_name_line_and_key() {
        assert_eq!(
            err("[system]\nmodules = [\"wire guard\"]\n"),
            "services.toml:2: key `system.modules[0]`: `wire guard` is not a module name (letters, digits, `_`, `-`)"
        );
        assert_eq!(
            err("[system]\nmodules = []\ndevice_modules = [\"i915\", \"\"]\n"),
            "services.toml:3: key `system.device_modules[1]`: `` is not a module name (letters, digits, `_`, `-`)"
        );
        assert_eq!(
            err("[system.data]\ndevice = \"vda3\"\n"),
            "services.toml:2: key `system.data.device`: `vda3` must be an absolute path"
        );
        assert_eq!(
            err("[system.data]\ndevice = \"PARTLABEL=\"\n"),
            "services.toml:2: key `system.data.device`: `PARTLABEL=`: PARTLABEL= needs a partition label"
        );
        assert_eq!(
            err("[system.data]\ndevice = \"PARTUUID=0e77696e\"\n"),
            "services.toml:2: key `system.data.device`: `PARTUUID=0e77696e`: PARTUUID= needs an MBR partition id, 8 hex digits, `-` and 2 (0e77696e-02)"
        );
        assert_eq!(
            err("[system.data]\ndevice = \"/dev/vda3\"\nfstype = \"btrfs\"\n"),
            "services.toml:3: key `system.data.fstype`: `btrfs` is not supported: use ext4, ext3 or ext2"
        );
        assert!(err("[system.watchdog]\ntimeout_s = 1\n")
            .starts_with("services.toml:2: key `system.watchdog.timeout_s`: 1 is out of range"));
        assert!(err("[system.clock]\nfile = \"/x\"\nsave_every = 3\n")
            .starts_with("services.toml:3: key `save_every`:"));
        assert!(err("[system.data]\nfstype = \"ext4\"\n").contains("key `device`"));
    }

    #[test]
    fn line_and_key_helpers() {
        assert_eq!(line_of("a\nb\nc", 0), 1);
        assert_eq!(line_of("a\nb\nc", 2), 2);
        assert_eq!(line_of("a\nb\nc", 99), 3);
        assert_eq!(key_at("x = 1\n  y = 2\n", 8..9, "bad"), "y");
        assert_eq!(key_at("[[service]]\n", 0..1, "bad"), "-");
        assert_eq!(key_at("", 0..0, "missing field `exec`"), "exec");
    }
}
