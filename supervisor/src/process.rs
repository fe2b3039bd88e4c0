//! Processes: spawning a service, signalling process groups, and what `/proc` says about us.
//!
//! **Invariants:** a service starts in its own session (so its process group is its pid), with
//! an empty signal mask and default dispositions, stdin on `/dev/null` (or its tty), and no
//! file descriptor of init except its readiness pipe. Nothing here waits for a process:
//! reaping is the event loop's, with `waitpid(-1)` only.

use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};

use nix::fcntl::{fcntl, FcntlArg, FdFlag, OFlag};
use nix::sys::signal::{kill, sigaction, SaFlags, SigAction, SigHandler, SigSet, Signal};
use nix::unistd::Pid;

use crate::config::{Ready, Service};

/// The environment variable that names the readiness fd of a `ready = "notify"` service.
pub const READY_FD_ENV: &str = "EWINDOW_READY_FD";

/// A started service: its pid and, for `notify` services, the read end of its readiness pipe.
#[derive(Debug)]
pub struct Spawned {
    /// Main process id; also its process group and session id.
    pub pid: Pid,
    /// Non-blocking read end of the readiness pipe.
    pub ready: Option<OwnedFd>,
    /// Non-blocking read end of the pipe its stdout and stderr go to (services without a tty).
    pub output: Option<OwnedFd>,
}

/// A pipe whose read end is non-blocking (both ends close on exec).
fn pipe_nonblocking_read() -> io::Result<(OwnedFd, OwnedFd)> {
    let (r, w) = nix::unistd::pipe2(OFlag::O_CLOEXEC).map_err(io::Error::from)?;
    let flags = fcntl(&r, FcntlArg::F_GETFL).map_err(io::Error::from)?;
    fcntl(
        &r,
        FcntlArg::F_SETFL(OFlag::from_bits_truncate(flags) | OFlag::O_NONBLOCK),
    )
    .map_err(io::Error::from)?;
    Ok((r, w))
}

/// Starts a service. The caller records the pid before it next reaps, which keeps the pid
/// table consistent (init is single-threaded).
pub fn spawn(service: &Service) -> io::Result<Spawned> {
    let (read_end, write_end) = match service.ready {
        Ready::Notify => {
            let (r, w) = pipe_nonblocking_read()?;
            (Some(r), Some(w))
        }
        Ready::Started => (None, None),
    };
    let ready_fd: Option<RawFd> = write_end.as_ref().map(|w| w.as_raw_fd());

    let mut cmd = Command::new(&service.exec[0]);
    cmd.args(&service.exec[1..])
        .envs(&service.env)
        .env("EWINDOW_SERVICE", &service.name)
        .env_remove(READY_FD_ENV);
    if let Some(fd) = ready_fd {
        cmd.env(READY_FD_ENV, fd.to_string());
    }
    let mut output = None;
    let has_tty = match &service.tty {
        Some(tty) => {
            let t = std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .custom_flags(nix::libc::O_NOCTTY)
                .open(tty)?;
            cmd.stdin(t.try_clone()?)
                .stdout(t.try_clone()?)
                .stderr(File::from(OwnedFd::from(t)));
            true
        }
        None => {
            // stdout and stderr into one pipe that init reads line by line (kept for
            // `logs`, streamed to subscribers, copied to init's own stderr).
            let (r, w) = pipe_nonblocking_read()?;
            cmd.stdin(Stdio::null())
                .stdout(File::from(w.try_clone()?))
                .stderr(File::from(w));
            output = Some(r);
            false
        }
    };
    // SAFETY: the closure runs between fork and exec in the child and only makes
    // async-signal-safe system calls (setsid, sigaction, sigprocmask, fcntl, ioctl); it
    // allocates nothing.
    unsafe {
        cmd.pre_exec(move || {
            nix::unistd::setsid().map_err(io::Error::from)?;
            reset_signals();
            if has_tty {
                // The tty on fd 0 becomes the controlling terminal of the new session.
                if nix::libc::ioctl(0, nix::libc::TIOCSCTTY, 0) != 0 {
                    return Err(io::Error::last_os_error());
                }
            }
            if let Some(fd) = ready_fd {
                // SAFETY: the write end is open in the child until exec.
                let fd = std::os::fd::BorrowedFd::borrow_raw(fd);
                fcntl(fd, FcntlArg::F_SETFD(FdFlag::empty())).map_err(io::Error::from)?;
            }
            Ok(())
        });
    }
    let child = cmd.spawn()?;
    let pid = Pid::from_raw(child.id() as i32);
    // Dropping `Child` neither waits nor kills; the event loop reaps with waitpid(-1).
    drop(child);
    drop(write_end);
    Ok(Spawned {
        pid,
        ready: read_end,
        output,
    })
}

/// Default dispositions for every catchable signal and an empty mask (in a forked child).
fn reset_signals() {
    let dfl = SigAction::new(SigHandler::SigDfl, SaFlags::empty(), SigSet::empty());
    for sig in Signal::iterator() {
        if matches!(sig, Signal::SIGKILL | Signal::SIGSTOP) {
            continue;
        }
        // SAFETY: installing SIG_DFL is always sound.
        let _ = unsafe { sigaction(sig, &dfl) };
    }
    let _ = SigSet::empty().thread_set_mask();
}

/// Sends `sig` to the process group `pid` leads (every service leads its own).
pub fn signal_group(pid: Pid, sig: Signal) -> nix::Result<()> {
    kill(Pid::from_raw(-pid.as_raw()), sig)
}

/// Pids whose parent is `parent`, from `/proc/*/stat`.
pub fn children_of(parent: Pid) -> Vec<Pid> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter_map(|pid| {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
            (stat_ppid(&stat)? == parent.as_raw()).then_some(Pid::from_raw(pid))
        })
        .collect()
}

/// The parent pid field of a `/proc/PID/stat` line (the comm field may hold spaces and `)`).
fn stat_ppid(stat: &str) -> Option<i32> {
    stat_fields(stat)?.nth(1)?.parse().ok()
}

/// The fields after `(comm)`: state, ppid, ...
fn stat_fields(stat: &str) -> Option<std::str::SplitWhitespace<'_>> {
    Some(stat[stat.rfind(')')? + 1..].split_whitespace())
}

/// CPU time (user + system) this process has used, in milliseconds.
pub fn self_cpu_ms() -> u64 {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return 0;
    };
    let ticks = nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK)
        .ok()
        .flatten()
        .filter(|&t| t > 0)
        .unwrap_or(100) as u64;
    stat_cpu_ticks(&stat).map_or(0, |t| t * 1000 / ticks)
}

/// utime + stime (fields 14 and 15 of stat) in clock ticks.
fn stat_cpu_ticks(stat: &str) -> Option<u64> {
    let mut f = stat_fields(stat)?.skip(11);
    let utime: u64 = f.next()?.parse().ok()?;
    let stime: u64 = f.next()?.parse().ok()?;
    Some(utime + stime)
}

/// Resident memory of this process (`VmRSS` in `/proc/self/status`), in KiB.
pub fn self_rss_kb() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| status_rss_kb(&s))
        .unwrap_or(0)
}

fn status_rss_kb(status: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    const STAT: &str = "4242 (we ird) name) S 17 4242 4242 0 -1 4194560 100 0 0 0 7 3 0 0 20 0 1 0 5 1000 50 18446744073709551615";

    #[test]
    fn stat_parsing_survives_odd_comm() {
        assert_eq!(stat_ppid(STAT), Some(17));
        assert_eq!(stat_cpu_ticks(STAT), Some(10));
        assert_eq!(stat_ppid("garbage"), None);
        assert_eq!(stat_cpu_ticks("1 (x) S"), None);
    }

    #[test]
    fn rss_parsing() {
        assert_eq!(status_rss_kb("Name:\tx\nVmRSS:\t   1234 kB\n"), Some(1234));
        assert_eq!(status_rss_kb("Name:\tx\n"), None);
    }

    #[test]
    fn own_figures_are_readable() {
        assert!(self_rss_kb() > 0);
        let _ = self_cpu_ms();
        assert!(children_of(Pid::from_raw(i32::MAX)).is_empty());
    }
}
