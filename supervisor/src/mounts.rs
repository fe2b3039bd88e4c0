//! Early-boot mounts of a real PID 1: /proc, /sys, /dev, /dev/pts, /run, /tmp.
//!
//! Only [`mount_early`] touches the system; the table is data so it can be read and tested.
//! The non-PID-1 path (development, tests) and `--no-mounts` never call this module.
//!
//! **Invariant:** a mount that fails is reported and skipped; init keeps going.

use nix::mount::{mount, MsFlags};
use std::path::Path;

/// One filesystem to mount.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mount {
    /// Source (`proc`, `tmpfs`, ...).
    pub source: &'static str,
    /// Where.
    pub target: &'static str,
    /// Filesystem type.
    pub fstype: &'static str,
    /// `MS_*` flags.
    pub flags: MsFlags,
    /// Filesystem options.
    pub data: &'static str,
}

/// What a window mounts before any service starts, parents before children.
pub fn early_mounts() -> Vec<Mount> {
    let hard = MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
    vec![
        Mount {
            source: "proc",
            target: "/proc",
            fstype: "proc",
            flags: hard,
            data: "",
        },
        Mount {
            source: "sysfs",
            target: "/sys",
            fstype: "sysfs",
            flags: hard,
            data: "",
        },
        Mount {
            source: "devtmpfs",
            target: "/dev",
            fstype: "devtmpfs",
            flags: MsFlags::MS_NOSUID,
            data: "mode=0755",
        },
        Mount {
            source: "devpts",
            target: "/dev/pts",
            fstype: "devpts",
            flags: MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC,
            data: "gid=5,mode=0620,ptmxmode=000",
        },
        Mount {
            source: "tmpfs",
            target: "/run",
            fstype: "tmpfs",
            flags: MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
            data: "mode=0755",
        },
        Mount {
            source: "tmpfs",
            target: "/tmp",
            fstype: "tmpfs",
            flags: MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
            data: "mode=1777",
        },
    ]
}

/// Mounts [`early_mounts`], skipping targets that are already mount points; returns one
/// message per failure.
pub fn mount_early() -> Vec<String> {
    EARLY_MOUNTS.store(true, std::sync::atomic::Ordering::Relaxed);
    let mut failures = Vec::new();
    for m in early_mounts() {
        let target = Path::new(m.target);
        if is_mount_point(target) {
            continue;
        }
        if let Err(e) = std::fs::create_dir_all(target) {
            failures.push(format!("mkdir {}: {e}", m.target));
            continue;
        }
        let data = (!m.data.is_empty()).then_some(m.data);
        if let Err(e) = mount(Some(m.source), target, Some(m.fstype), m.flags, data) {
            failures.push(format!("mount {} on {}: {e}", m.fstype, m.target));
        }
    }
    failures
}

static EARLY_MOUNTS: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Whether this init did its early mounts and /run and /tmp are mounted: then `/` may be
/// made read-only without taking the writable places away.
pub fn early_mounts_done() -> bool {
    EARLY_MOUNTS.load(std::sync::atomic::Ordering::Relaxed)
        && is_mount_point(Path::new("/run"))
        && is_mount_point(Path::new("/tmp"))
}

/// Remounts `/` read-only before a reboot (a real PID 1 only).
pub fn remount_root_readonly() -> Result<(), nix::Error> {
    mount::<str, str, str, str>(
        None,
        "/",
        None,
        MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY,
        None,
    )
}

/// Whether `path` is a mount point, from `/proc/self/mountinfo` (false when unreadable,
/// e.g. before /proc is mounted).
fn is_mount_point(path: &Path) -> bool {
    std::fs::read_to_string("/proc/self/mountinfo")
        .map(|info| mountinfo_has(&info, path))
        .unwrap_or(false)
}

/// Whether a `mountinfo` text lists `path` as a mount point (field 5).
fn mountinfo_has(info: &str, path: &Path) -> bool {
    info.lines()
        .filter_map(|l| l.split(' ').nth(4))
        .any(|p| Path::new(p) == path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parents_are_mounted_before_children() {
        let table = early_mounts();
        let pos = |t: &str| table.iter().position(|m| m.target == t).unwrap();
        assert!(pos("/dev") < pos("/dev/pts"));
        let targets: Vec<&str> = table.iter().map(|m| m.target).collect();
        assert_eq!(
            targets,
            vec!["/proc", "/sys", "/dev", "/dev/pts", "/run", "/tmp"]
        );
        assert_eq!(table[2].fstype, "devtmpfs");
    }

    #[test]
    fn mountinfo_parsing() {
        let info = "22 1 0:21 / /proc rw,nosuid - proc proc rw\n\
                    23 1 0:22 / /run rw - tmpfs tmpfs rw\n";
        assert!(mountinfo_has(info, Path::new("/proc")));
        assert!(mountinfo_has(info, Path::new("/run")));
        assert!(!mountinfo_has(info, Path::new("/tmp")));
        assert!(!mountinfo_has("", Path::new("/")));
    }
}
