//! Early boot duties of PID 1 that are not mounts: the hostname and the loopback interface.

use std::os::fd::AsRawFd;
use std::path::Path;

use nix::libc;
use nix::sys::socket::{socket, AddressFamily, SockFlag, SockType};

/// Why an early-boot step failed.
#[derive(Debug, thiserror::Error)]
pub enum EarlyError {
    /// The name is not a valid hostname.
    #[error("`{0}` is not a valid hostname (1-63 letters, digits and inner '-')")]
    BadHostname(String),
    /// A system call failed.
    #[error("{what}: {source}")]
    Sys {
        /// What was being done.
        what: &'static str,
        /// The error.
        source: nix::Error,
    },
}

/// Whether `name` is a valid single-label hostname (RFC 1123): 1 to 63 ASCII letters, digits
/// and hyphens, not starting or ending with a hyphen.
pub fn valid_hostname(name: &str) -> bool {
    (1..=63).contains(&name.len())
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        && !name.starts_with('-')
        && !name.ends_with('-')
}

/// The hostname to set: the one given, or on a real boot the first line of `/etc/hostname`.
pub fn hostname_to_set(given: Option<&str>, etc_hostname: &Path) -> Option<String> {
    match given {
        Some(name) => Some(name.to_string()),
        None => std::fs::read_to_string(etc_hostname)
            .ok()
            .and_then(|s| s.lines().next().map(|l| l.trim().to_string()))
            .filter(|s| !s.is_empty()),
    }
}

/// Sets the hostname after checking it.
pub fn set_hostname(name: &str) -> Result<(), EarlyError> {
    if !valid_hostname(name) {
        return Err(EarlyError::BadHostname(name.to_string()));
    }
    nix::unistd::sethostname(name).map_err(|source| EarlyError::Sys {
        what: "sethostname",
        source,
    })
}

/// The inode the kernel gives the initial PID namespace (`PROC_PID_INIT_INO`).
const INITIAL_PID_NS: u64 = 0xEFFF_FFFC;
/// The inode of the initial UTS namespace (`PROC_UTS_INIT_INO`).
const INITIAL_UTS_NS: u64 = 0xEFFF_FFFE;

/// What the link `/proc/self/ns/<kind>` says: `Some(true)` for the initial namespace
/// (`pid:[4026531836]`), `Some(false)` for another, `None` when there is no such link yet.
fn initial_namespace(link: std::io::Result<std::path::PathBuf>, initial: u64) -> Option<bool> {
    let link = link.ok()?;
    let text = link.to_str()?;
    let inode: u64 = text.split_once(":[")?.1.strip_suffix(']')?.parse().ok()?;
    Some(inode == initial)
}

/// Whether this process runs as the machine's init: in the initial PID namespace, or so early
/// in a real boot that `/proc` is not mounted yet (a container or a test always has it).
pub fn machine_init() -> bool {
    initial_namespace(std::fs::read_link("/proc/self/ns/pid"), INITIAL_PID_NS).unwrap_or(true)
}

/// Whether this process has a UTS namespace of its own (its hostname is not the machine's).
pub fn own_uts_namespace() -> bool {
    initial_namespace(std::fs::read_link("/proc/self/ns/uts"), INITIAL_UTS_NS) == Some(false)
}

/// Brings the loopback interface `lo` up (a new network namespace, or a kernel that leaves
/// it down, has it down).
pub fn loopback_up() -> Result<(), EarlyError> {
    let sys = |what| move |source| EarlyError::Sys { what, source };
    let fd = socket(
        AddressFamily::Inet,
        SockType::Datagram,
        SockFlag::SOCK_CLOEXEC,
        None,
    )
    .map_err(sys("socket"))?;
    // SAFETY: `ifreq` is plain old data; all-zero is a valid value.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    for (dst, src) in req.ifr_name.iter_mut().zip(b"lo") {
        *dst = *src as libc::c_char;
    }
    // SAFETY: `fd` is an open socket and `req` a valid `ifreq` naming "lo", as these two
    // ioctls require; the kernel writes only into `req`.
    unsafe {
        if libc::ioctl(fd.as_raw_fd(), libc::SIOCGIFFLAGS, &mut req) < 0 {
            return Err(sys("SIOCGIFFLAGS lo")(nix::Error::last()));
        }
        req.ifr_ifru.ifru_flags |= libc::IFF_UP as libc::c_short;
        if libc::ioctl(fd.as_raw_fd(), libc::SIOCSIFFLAGS, &req) < 0 {
            return Err(sys("SIOCSIFFLAGS lo")(nix::Error::last()));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_initial_namespaces_are_told_by_their_inode() {
        let link = |s: &str| Ok(std::path::PathBuf::from(s));
        assert_eq!(
            initial_namespace(link("pid:[4026531836]"), INITIAL_PID_NS),
            Some(true)
        );
        assert_eq!(
            initial_namespace(link("pid:[4026532301]"), INITIAL_PID_NS),
            Some(false)
        );
        assert_eq!(
            initial_namespace(link("uts:[4026531838]"), INITIAL_UTS_NS),
            Some(true)
        );
        assert_eq!(initial_namespace(link("garbage"), INITIAL_PID_NS), None);
        let missing = Err(std::io::Error::from(std::io::ErrorKind::NotFound));
        assert_eq!(initial_namespace(missing, INITIAL_PID_NS), None);
        // The test runs on the machine, not in a namespace.
        assert!(machine_init());
        assert!(!own_uts_namespace());
    }

    #[test]
    fn hostnames_are_checked() {
        for good in ["window", "fablab-muenchen", "w1", &"a".repeat(63)] {
            assert!(valid_hostname(good), "{good}");
        }
        for bad in [
            "",
            "-window",
            "window-",
            "win dow",
            "wïndow",
            "a.b",
            &"a".repeat(64),
        ] {
            assert!(!valid_hostname(bad), "{bad}");
        }
        assert!(matches!(
            set_hostname("bad name"),
            Err(EarlyError::BadHostname(_))
        ));
    }

    #[test]
    fn the_given_hostname_wins_over_etc_hostname() {
        let dir = std::env::temp_dir().join(format!("early-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("hostname");
        std::fs::write(&file, "from-etc\nignored\n").unwrap();
        assert_eq!(
            hostname_to_set(Some("given"), &file).as_deref(),
            Some("given")
        );
        assert_eq!(hostname_to_set(None, &file).as_deref(), Some("from-etc"));
        assert_eq!(hostname_to_set(None, &dir.join("missing")), None);
        std::fs::write(&file, "\n").unwrap();
        assert_eq!(hostname_to_set(None, &file), None);
    }
}
