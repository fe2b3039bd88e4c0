//! The event loop: signals, reaping, service states, readiness, the control socket, shutdown.
//!
//! One thread. Every wake-up has a cause: a signal (via `signalfd`: SIGCHLD, SIGTERM, SIGINT,
//! SIGUSR1, SIGUSR2, SIGHUP), a readiness pipe, a control-socket client, or the next timer
//! (a backoff, a failed retry, a stop timeout, the watchdog's pet, the clock's save) — `poll`
//! blocks with exactly that timeout, and with no timeout when nothing is pending.
//!
//! Before the loop, [`Supervisor::new`] does the boot duties of `[system]` in order: kernel
//! modules, the data partition, the saved clock, the watchdog. At the end of a shutdown the
//! clock is saved, the watchdog closed with its magic `V` and the data partition unmounted.
//!
//! **Invariants:**
//! - Reaping is `waitpid(-1, WNOHANG)` in this loop only; spawning happens in the same thread,
//!   so a pid is in the table before its exit can be seen.
//! - A service starts only when every service in its `after` is `running` (ready).
//! - Shutdown stops services one at a time in reverse start order (SIGTERM to the process
//!   group, SIGKILL after `stop_timeout_s`), then TERMs and KILLs whatever is left, and ends
//!   when `waitpid` says there are no children.
//! - A panic in one iteration is caught and logged; the loop goes on.

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use ewindow_io::lines;
use nix::errno::Errno;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{kill, SigSet, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;
use tracing::{debug, error, info, warn};

use crate::backoff::Exit;
use crate::config::{self, ClockFile, Config, Ready, Service};
use crate::lifecycle::{self, AfterStop, Effect, Everyone, Phase, Settled, State, Unit};
use crate::watchdog::Watchdog;
use crate::{clock, data, modules, order, process};
use ewindow_protocol::init::{
    self as control, ClockStatus, ConfigStatus, Event, ExitStatus, InitStatus, LogLine, Reply,
    Request, ServiceStatus, SystemStatus,
};

/// What happens once everything is stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShutdownKind {
    /// reboot(2) with `RB_AUTOBOOT` (SIGTERM, SIGINT, `reboot`).
    Reboot,
    /// reboot(2) with `RB_POWER_OFF` (SIGUSR2, `poweroff`).
    Poweroff,
    /// reboot(2) with `RB_HALT_SYSTEM` (SIGUSR1, `halt`).
    Halt,
}

impl ShutdownKind {
    fn name(self) -> &'static str {
        match self {
            ShutdownKind::Reboot => "reboot",
            ShutdownKind::Poweroff => "poweroff",
            ShutdownKind::Halt => "halt",
        }
    }
}

/// How init runs.
#[derive(Debug, Clone)]
pub struct Options {
    /// The services file.
    pub config: PathBuf,
    /// A file to use when `config` is broken at start-up (the image's defaults).
    pub fallback: Option<PathBuf>,
    /// The control socket.
    pub control: PathBuf,
    /// Whether init is PID 1 (of the machine or of a PID namespace).
    pub pid1: bool,
    /// How long leftover processes get between SIGTERM and SIGKILL at shutdown.
    pub final_grace: Duration,
    /// Whether a saved clock ahead of the system clock is set (a real boot, never a test).
    pub set_clock: bool,
}

/// Setting up the loop failed; without signals there is no init.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    /// Blocking signals or creating the signalfd failed.
    #[error("cannot receive signals: {0}")]
    Signals(#[source] nix::Error),
}

/// A service: its life (`lifecycle::Unit`, read through `Deref`, changed only through its
/// methods) and the pipes the loop reads.
struct Svc {
    unit: Unit,
    ready_fd: Option<OwnedFd>,
    ready_buf: Vec<u8>,
    out_fd: Option<OwnedFd>,
    out_buf: Vec<u8>,
}

impl Svc {
    fn new(def: Service) -> Svc {
        Svc {
            unit: Unit::new(def),
            ready_fd: None,
            ready_buf: Vec::new(),
            out_fd: None,
            out_buf: Vec::new(),
        }
    }
}

impl std::ops::Deref for Svc {
    type Target = Unit;
    fn deref(&self) -> &Unit {
        &self.unit
    }
}

struct Client {
    stream: UnixStream,
    inbuf: lines::Buffer,
    outbuf: Vec<u8>,
    eof: bool,
    subscribed: bool,
}

const MAX_REQUEST: usize = 64 * 1024;
/// A subscriber that lets this much pile up unread is dropped.
const MAX_BACKLOG: usize = 1024 * 1024;

/// What a subscriber last heard of a service.
type Seen = (String, String, Option<i32>, u32);

/// The supervisor: every service, the control socket and the shutdown state.
pub struct Supervisor {
    opts: Options,
    started: Instant,
    config: Config,
    config_error: Option<String>,
    svcs: Vec<Svc>,
    order: Vec<usize>,
    signals: SignalFd,
    listener: Option<UnixListener>,
    /// After an accept error (EMFILE…): the listener is left out of poll until then, so
    /// PID 1 does not spin on a connection it cannot take; and the errors in a row.
    accept_paused: Option<Instant>,
    accept_errors: u32,
    clients: Vec<Client>,
    shutdown: Option<(ShutdownKind, Phase)>,
    orphans_reaped: u64,
    no_children: bool,
    system: SystemStatus,
    clock: Option<(ClockFile, Instant)>,
    watchdog: Option<(Watchdog, Instant)>,
    data_mounted: Option<PathBuf>,
    published: Vec<Seen>,
    shutdown_published: bool,
    /// Every service was running at the last publish ("all services up" is logged on the
    /// change to true: the image's boot test and the boot-time figure wait for that line).
    all_up: bool,
    logs: std::collections::VecDeque<LogLine>,
}

/// Lines of service output kept for `logs`.
const MAX_LOG_LINES: usize = 1000;

#[derive(Debug, Clone, Copy)]
enum Token {
    Signals,
    Listener,
    Client(usize),
    Ready(usize),
    Output(usize),
}

impl Supervisor {
    /// Blocks the signals init handles, opens the control socket, loads the services file
    /// (falling back when it is broken) and returns the supervisor, ready to [`run`](Self::run).
    pub fn new(opts: Options) -> Result<Supervisor, RuntimeError> {
        let mut mask = SigSet::empty();
        for sig in [
            Signal::SIGCHLD,
            Signal::SIGTERM,
            Signal::SIGINT,
            Signal::SIGUSR1,
            Signal::SIGUSR2,
            Signal::SIGHUP,
        ] {
            mask.add(sig);
        }
        mask.thread_block().map_err(RuntimeError::Signals)?;
        let signals = SignalFd::with_flags(&mask, SfdFlags::SFD_NONBLOCK | SfdFlags::SFD_CLOEXEC)
            .map_err(RuntimeError::Signals)?;

        let listener = match bind_control(&opts.control) {
            Ok(l) => {
                info!(path = %opts.control.display(), "control socket listening");
                Some(l)
            }
            Err(e) => {
                error!(path = %opts.control.display(), "control socket unavailable: {e}");
                None
            }
        };

        let (config, config_error) = initial_config(&opts);
        let (system, clock, watchdog, data_mounted) = boot_duties(&config.system, opts.set_clock);
        let mut sup = Supervisor {
            opts,
            started: Instant::now(),
            config: Config::empty("(none)"),
            config_error,
            svcs: Vec::new(),
            order: Vec::new(),
            signals,
            listener,
            accept_paused: None,
            accept_errors: 0,
            clients: Vec::new(),
            shutdown: None,
            orphans_reaped: 0,
            no_children: true,
            system,
            clock,
            watchdog,
            data_mounted,
            published: Vec::new(),
            shutdown_published: false,
            all_up: false,
            logs: std::collections::VecDeque::new(),
        };
        sup.apply_config(config);
        Ok(sup)
    }

    /// Runs until a shutdown has completed (every process gone) and says which kind it was.
    /// Panics inside an iteration are caught and logged; the loop continues.
    pub fn run(&mut self) -> ShutdownKind {
        let mut last_panic: Option<Instant> = None;
        loop {
            match catch_unwind(AssertUnwindSafe(|| self.iterate())) {
                Ok(Some(kind)) => {
                    self.end_of_shutdown();
                    return kind;
                }
                Ok(None) => {}
                Err(panic) => {
                    let what = panic
                        .downcast_ref::<&str>()
                        .map(|s| s.to_string())
                        .or_else(|| panic.downcast_ref::<String>().cloned())
                        .unwrap_or_else(|| "unknown panic".into());
                    error!("caught a panic in the main loop, carrying on: {what}");
                    // Never spin on a panic that repeats at once.
                    if last_panic.is_some_and(|t| t.elapsed() < Duration::from_secs(1)) {
                        std::thread::sleep(Duration::from_secs(1));
                    }
                    last_panic = Some(Instant::now());
                }
            }
        }
    }

    /// One turn of the loop: timers and starts, then block in poll, then handle what woke us.
    fn iterate(&mut self) -> Option<ShutdownKind> {
        let now = Instant::now();
        self.tick(now);
        self.timers(now);
        self.publish();
        if let Some((kind, Phase::Done)) = self.shutdown {
            return Some(kind);
        }
        if self.accept_paused.is_some_and(|t| t <= now) {
            self.accept_paused = None;
        }
        let deadline = match (self.next_deadline(), self.accept_paused) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        let timeout = match deadline {
            None => PollTimeout::NONE,
            Some(t) => {
                let ms = t.saturating_duration_since(Instant::now()).as_millis() + 1;
                PollTimeout::try_from(ms.min(i32::MAX as u128) as i32).unwrap_or(PollTimeout::NONE)
            }
        };

        let mut tokens: Vec<Token> = Vec::new();
        let mut fds: Vec<PollFd<'_>> = Vec::new();
        let input = PollFlags::POLLIN;
        fds.push(PollFd::new(self.signals.as_fd(), input));
        tokens.push(Token::Signals);
        if let (Some(l), None) = (&self.listener, self.accept_paused) {
            fds.push(PollFd::new(l.as_fd(), input));
            tokens.push(Token::Listener);
        }
        for (i, c) in self.clients.iter().enumerate() {
            let mut ev = PollFlags::empty();
            if !c.eof {
                ev |= input;
            }
            if !c.outbuf.is_empty() {
                ev |= PollFlags::POLLOUT;
            }
            fds.push(PollFd::new(c.stream.as_fd(), ev));
            tokens.push(Token::Client(i));
        }
        for (i, s) in self.svcs.iter().enumerate() {
            if let Some(fd) = &s.ready_fd {
                fds.push(PollFd::new(fd.as_fd(), input));
                tokens.push(Token::Ready(i));
            }
            if let Some(fd) = &s.out_fd {
                fds.push(PollFd::new(fd.as_fd(), input));
                tokens.push(Token::Output(i));
            }
        }
        match poll(&mut fds, timeout) {
            Ok(_) => {}
            Err(Errno::EINTR) => return None,
            Err(e) => {
                error!("poll: {e}");
                std::thread::sleep(Duration::from_millis(100));
                return None;
            }
        }
        let events: Vec<(Token, PollFlags)> = tokens
            .into_iter()
            .zip(
                fds.iter()
                    .map(|f| f.revents().unwrap_or(PollFlags::empty())),
            )
            .filter(|(_, r)| !r.is_empty())
            .collect();
        drop(fds);

        let mut client_events = Vec::new();
        let mut outputs = Vec::new();
        for (token, revents) in events {
            match token {
                Token::Signals => self.handle_signals(),
                Token::Listener => {
                    // Serve what new clients already sent at once: a subscribe must take
                    // effect before output read in this same turn.
                    let before = self.clients.len();
                    self.accept_clients();
                    for i in before..self.clients.len() {
                        client_events.push((i, PollFlags::POLLIN));
                    }
                }
                Token::Client(i) => client_events.push((i, revents)),
                Token::Ready(i) => self.read_ready(i),
                // After the clients: a subscribe that arrived with a line is served first.
                Token::Output(i) => outputs.push(i),
            }
        }
        for (i, revents) in client_events {
            self.serve_client(i, revents);
        }
        for i in outputs {
            self.read_output(i);
        }
        self.clients.retain(|c| !(c.eof && c.outbuf.is_empty()));
        self.publish();
        None
    }

    // ----- timers, starts and stops -------------------------------------------------------

    fn tick(&mut self, now: Instant) {
        let shutting_down = self.shutdown.is_some();
        for i in 0..self.svcs.len() {
            if let Some(e) = self.svcs[i].unit.tick(now, shutting_down) {
                perform(e);
            }
        }
        if shutting_down {
            self.advance_shutdown(now);
        } else {
            // One pass in start order: a service ready at once lets its dependants start now.
            for k in 0..self.order.len() {
                let i = self.order[k];
                if self.svcs[i].wants_start(false, self.dependencies_ready(i)) {
                    self.start(i, now);
                }
            }
        }
    }

    fn dependencies_ready(&self, i: usize) -> bool {
        self.svcs[i].def.after.iter().all(|dep| {
            self.svcs
                .iter()
                .any(|s| &s.def.name == dep && s.state == State::Running)
        })
    }

    fn start(&mut self, i: usize, now: Instant) {
        match process::spawn(&self.svcs[i].def) {
            Ok(spawned) => {
                let s = &mut self.svcs[i];
                s.ready_fd = spawned.ready;
                s.out_fd = spawned.output;
                s.out_buf.clear();
                s.ready_buf.clear();
                s.unit.started(spawned.pid.as_raw(), now);
                self.no_children = false;
            }
            Err(e) => {
                let policy = self.config.backoff;
                let settled = self.svcs[i]
                    .unit
                    .start_failed(e.to_string(), now, &policy, false);
                self.settle(i, settled);
            }
        }
    }

    fn begin_stop(&mut self, i: usize, then: AfterStop, now: Instant) {
        let (effect, settled) = self.svcs[i].unit.stop(then, now);
        if let Some(e) = effect {
            perform(e);
        }
        if let Some(s) = settled {
            self.settle(i, s);
        }
    }

    /// What a service's end asks of the table.
    fn settle(&mut self, i: usize, settled: Settled) {
        if settled == Settled::Remove {
            self.remove(i);
        }
    }

    fn remove(&mut self, i: usize) {
        info!(service = %self.svcs[i].def.name, "removed");
        self.svcs.remove(i);
        self.recompute_order();
    }

    /// A service's main process ended.
    fn exited(&mut self, i: usize, status: ExitStatus, exit: Exit, now: Instant) {
        let shutting_down = self.shutdown.is_some();
        let policy = self.config.backoff;
        let s = &mut self.svcs[i];
        s.ready_fd = None;
        let settled = s.unit.exited(status, exit, now, &policy, shutting_down);
        self.settle(i, settled);
    }

    fn next_deadline(&self) -> Option<Instant> {
        let services = self.svcs.iter().filter_map(|s| s.deadline());
        let shutdown = match self.shutdown {
            Some((_, Phase::Term { deadline })) | Some((_, Phase::Kill { deadline })) => {
                Some(deadline)
            }
            _ => None,
        };
        let watchdog = self.watchdog.as_ref().map(|(_, t)| *t);
        let clock = self.clock.as_ref().map(|(_, t)| *t);
        services.chain(shutdown).chain(watchdog).chain(clock).min()
    }

    /// The periodic duties: pet the watchdog (only from here: a loop that hangs stops petting),
    /// save the clock.
    fn timers(&mut self, now: Instant) {
        if let Some((w, next)) = &mut self.watchdog {
            if now >= *next {
                w.pet();
                *next = now + w.interval;
                self.system.watchdog = Some(w.status.clone());
            }
        }
        if let Some((c, next)) = &mut self.clock {
            if now >= *next {
                *next = now + c.save_every;
                let file = c.file.clone();
                self.save_clock(&file);
            }
        }
    }

    fn save_clock(&mut self, file: &Path) {
        let result = clock::save(file);
        if let Some(st) = &mut self.system.clock {
            match result {
                Ok(t) => {
                    st.saved_unix = Some(t);
                    st.error = None;
                }
                Err(e) => {
                    warn!("{e}");
                    st.error = Some(e);
                }
            }
        }
    }

    /// After the last process is gone: save the clock, disarm the watchdog, unmount /data.
    fn end_of_shutdown(&mut self) {
        if let Some((c, _)) = self.clock.take() {
            self.save_clock(&c.file);
        }
        nix::unistd::sync();
        if let Some((mut w, _)) = self.watchdog.take() {
            w.magic_close();
        }
        if let Some(m) = self.data_mounted.take() {
            data::take_down(&m);
        }
    }

    /// Sends subscribers an event for each service whose state, pid or restarts changed since
    /// the last call, and one when a shutdown begins.
    fn publish(&mut self) {
        let now: Vec<Seen> = self
            .order
            .iter()
            .map(|&i| {
                let s = &self.svcs[i];
                (
                    s.def.name.clone(),
                    s.state.name().to_owned(),
                    s.pid,
                    s.restarts,
                )
            })
            .collect();
        let mut events: Vec<Event> = now
            .iter()
            .filter(|seen| !self.published.contains(seen))
            .map(|(name, state, pid, restarts)| Event::Service {
                name: name.clone(),
                state: state.clone(),
                pid: *pid,
                restarts: *restarts,
            })
            .collect();
        let all_up = self.shutdown.is_none()
            && !now.is_empty()
            && now
                .iter()
                .all(|(_, state, _, _)| state == State::Running.name());
        if all_up && !self.all_up {
            let uptime = nix::time::clock_gettime(nix::time::ClockId::CLOCK_BOOTTIME)
                .map(|t| t.tv_sec() as f64 + t.tv_nsec() as f64 / 1e9)
                .unwrap_or(0.0);
            info!(
                services = now.len(),
                uptime_s = format!("{uptime:.2}"),
                "all services up"
            );
        }
        self.all_up = all_up;
        self.published = now;
        if let (Some((kind, _)), false) = (self.shutdown, self.shutdown_published) {
            self.shutdown_published = true;
            events.push(Event::Shutdown {
                kind: kind.name().to_owned(),
            });
        }
        if events.is_empty() || !self.clients.iter().any(|c| c.subscribed) {
            return;
        }
        let mut lines = Vec::new();
        for e in &events {
            lines.extend_from_slice(&lines::encode(e));
        }
        for c in self.clients.iter_mut().filter(|c| c.subscribed && !c.eof) {
            if c.outbuf.len() > MAX_BACKLOG {
                warn!("dropping a subscriber that does not read");
                c.outbuf.clear();
                c.eof = true;
                continue;
            }
            c.outbuf.extend_from_slice(&lines);
            flush(c);
        }
    }

    fn current_events(&self) -> Vec<u8> {
        let mut out = Vec::new();
        for &i in &self.order {
            let s = &self.svcs[i];
            let e = Event::Service {
                name: s.def.name.clone(),
                state: s.state.name().to_owned(),
                pid: s.pid,
                restarts: s.restarts,
            };
            out.extend_from_slice(&lines::encode(&e));
        }
        out
    }

    // ----- signals and reaping ------------------------------------------------------------

    fn handle_signals(&mut self) {
        loop {
            match self.signals.read_signal() {
                Ok(Some(info)) => {
                    let Ok(sig) = Signal::try_from(info.ssi_signo as i32) else {
                        continue;
                    };
                    debug!(?sig, "signal");
                    match sig {
                        Signal::SIGCHLD => self.reap(),
                        Signal::SIGTERM | Signal::SIGINT => {
                            self.begin_shutdown(ShutdownKind::Reboot)
                        }
                        Signal::SIGUSR2 => self.begin_shutdown(ShutdownKind::Poweroff),
                        Signal::SIGUSR1 => self.begin_shutdown(ShutdownKind::Halt),
                        Signal::SIGHUP => self.reload(),
                        _ => {}
                    }
                }
                Ok(None) => break,
                Err(Errno::EINTR) => continue,
                Err(e) => {
                    error!("reading signals: {e}");
                    break;
                }
            }
        }
        // Coalesced SIGCHLDs are harmless, but a missed one would leave a zombie: reap anyway.
        self.reap();
    }

    /// Reaps every exited child with `waitpid(-1, WNOHANG)`.
    fn reap(&mut self) {
        let now = Instant::now();
        loop {
            match waitpid(Pid::from_raw(-1), Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::StillAlive) => break,
                Ok(WaitStatus::Exited(pid, code)) => {
                    let exit = if code == 0 {
                        Exit::Success
                    } else {
                        Exit::Failure
                    };
                    self.child_gone(pid, ExitStatus::Exited(code), exit, now);
                }
                Ok(WaitStatus::Signaled(pid, sig, _)) => {
                    self.child_gone(
                        pid,
                        ExitStatus::Signaled(sig.as_str().into()),
                        Exit::Failure,
                        now,
                    );
                }
                Ok(_) => {}
                Err(Errno::EINTR) => {}
                Err(Errno::ECHILD) => {
                    self.no_children = true;
                    break;
                }
                Err(e) => {
                    error!("waitpid: {e}");
                    break;
                }
            }
        }
    }

    fn child_gone(&mut self, pid: Pid, status: ExitStatus, exit: Exit, now: Instant) {
        match self.svcs.iter().position(|s| s.pid == Some(pid.as_raw())) {
            Some(i) => self.exited(i, status, exit, now),
            None => {
                self.orphans_reaped += 1;
                debug!(pid = pid.as_raw(), ?status, "reaped");
            }
        }
    }

    // ----- output -------------------------------------------------------------------------

    /// Reads what a service wrote; each complete line (or 4 KiB without a newline) is logged.
    fn read_output(&mut self, i: usize) {
        let mut buf = [0u8; 4096];
        let mut lines = Vec::new();
        {
            let s = &mut self.svcs[i];
            let Some(fd) = &s.out_fd else { return };
            loop {
                match nix::unistd::read(fd, &mut buf) {
                    Ok(0) => {
                        s.out_fd = None;
                        break;
                    }
                    Ok(n) => s.out_buf.extend_from_slice(&buf[..n]),
                    Err(Errno::EINTR) => continue,
                    Err(_) => break,
                }
                if s.out_buf.len() > 64 * 1024 {
                    break;
                }
            }
            while let Some(nl) = s.out_buf.iter().position(|&b| b == b'\n') {
                let line: Vec<u8> = s.out_buf.drain(..=nl).collect();
                lines.push(String::from_utf8_lossy(&line[..nl]).trim_end().to_owned());
            }
            if s.out_buf.len() >= 4096 || (s.out_fd.is_none() && !s.out_buf.is_empty()) {
                lines.push(String::from_utf8_lossy(&s.out_buf).into_owned());
                s.out_buf.clear();
            }
        }
        let service = self.svcs[i].def.name.clone();
        for line in lines {
            self.log_line(&service, line);
        }
    }

    fn log_line(&mut self, service: &str, line: String) {
        // Init's own stderr is the kernel console on a window: keep the lines visible there.
        eprintln!("{service}: {line}");
        let entry = LogLine {
            unix_ms: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_millis() as u64)
                .unwrap_or(0),
            service: service.to_owned(),
            line,
        };
        if self.logs.len() >= MAX_LOG_LINES {
            self.logs.pop_front();
        }
        if self.clients.iter().any(|c| c.subscribed) {
            {
                let l = lines::encode(&Event::Log(entry.clone()));
                for c in self.clients.iter_mut().filter(|c| c.subscribed && !c.eof) {
                    if c.outbuf.len() <= MAX_BACKLOG {
                        c.outbuf.extend_from_slice(&l);
                        flush(c);
                    }
                }
            }
        }
        self.logs.push_back(entry);
    }

    // ----- readiness ----------------------------------------------------------------------

    fn read_ready(&mut self, i: usize) {
        let s = &mut self.svcs[i];
        let Some(fd) = &s.ready_fd else { return };
        let mut buf = [0u8; 256];
        loop {
            match nix::unistd::read(fd, &mut buf) {
                Ok(0) => {
                    s.ready_fd = None;
                    if !s.ready_buf.split(|&b| b == b'\n').any(|l| l == b"READY") {
                        // s6 semantics: closing the fd without READY means "never ready"; its
                        // dependants wait, and status shows it `starting`.
                        warn!(service = %s.def.name, "closed its readiness fd without READY");
                    }
                    break;
                }
                Ok(n) => {
                    s.ready_buf.extend_from_slice(&buf[..n]);
                    if s.ready_buf.len() > 4096 {
                        s.ready_buf.drain(..s.ready_buf.len() - 4096);
                    }
                }
                Err(Errno::EINTR) => continue,
                Err(_) => break,
            }
        }
        if s.ready_buf.split(|&b| b == b'\n').any(|l| l == b"READY") && s.unit.ready() {
            s.ready_fd = None;
        }
    }

    // ----- shutdown -----------------------------------------------------------------------

    fn begin_shutdown(&mut self, kind: ShutdownKind) {
        if let Some((current, _)) = self.shutdown {
            info!(
                "{} requested; already shutting down for {}",
                kind.name(),
                current.name()
            );
            return;
        }
        info!(
            "shutdown for {}: stopping services in reverse order",
            kind.name()
        );
        self.shutdown = Some((kind, Phase::Services));
        for s in &mut self.svcs {
            s.unit.shutdown_begun();
        }
    }

    fn advance_shutdown(&mut self, now: Instant) {
        let Some((kind, phase)) = self.shutdown else {
            return;
        };
        if phase == Phase::Done {
            return;
        }
        self.reap();
        let view: Vec<(bool, bool)> = self
            .svcs
            .iter()
            .map(|s| (matches!(s.state, State::Stopping { .. }), s.pid.is_some()))
            .collect();
        let stop = order::stop_order(&self.order);
        let step = lifecycle::shutdown_step(
            phase,
            &view,
            &stop,
            self.no_children,
            now,
            self.opts.final_grace,
        );
        if let Some(i) = step.stop {
            self.begin_stop(i, AfterStop::Stay, now);
        }
        match (phase, step.phase) {
            (Phase::Services, Phase::Term { .. }) | (Phase::Services, Phase::Done) => {
                info!("services stopped; terminating what is left");
            }
            (Phase::Term { .. }, Phase::Kill { .. }) => {
                warn!("processes left after SIGTERM; SIGKILL");
            }
            (Phase::Kill { .. }, Phase::Done) if !self.no_children => {
                error!("processes left after SIGKILL; giving up waiting");
            }
            _ => {}
        }
        match step.signal {
            Some(Everyone::Term) => self.signal_everyone(Signal::SIGTERM),
            Some(Everyone::Kill) => self.signal_everyone(Signal::SIGKILL),
            None => {}
        }
        if step.phase == Phase::Done && phase != Phase::Done {
            if self.no_children {
                info!("shutdown complete: no process left");
            } else {
                warn!("shutdown complete with processes still alive");
            }
        }
        self.shutdown = Some((kind, step.phase));
    }

    fn signal_everyone(&mut self, sig: Signal) {
        if self.opts.pid1 {
            // Every process of the machine (or PID namespace) but init.
            let _ = kill(Pid::from_raw(-1), sig);
        } else {
            for child in process::children_of(nix::unistd::getpid()) {
                let _ = kill(child, sig);
            }
        }
        self.reap();
    }

    // ----- configuration ------------------------------------------------------------------

    fn reload(&mut self) {
        if self.shutdown.is_some() {
            return;
        }
        match config::load(&self.opts.config) {
            Ok(c) => {
                info!(file = %self.opts.config.display(), services = c.services.len(), "services file reloaded");
                self.config_error = None;
                self.apply_config(c);
            }
            Err(e) => {
                error!(
                    "{e}; keeping the services from {}",
                    self.config.source.display()
                );
                self.config_error = Some(e.to_string());
            }
        }
    }

    /// Makes `config` the one in use: existing services keep their process and state
    /// (a changed definition applies from their next start), new ones wait to start,
    /// removed ones are stopped and then forgotten.
    fn apply_config(&mut self, config: Config) {
        let now = Instant::now();
        let mut old: Vec<Svc> = std::mem::take(&mut self.svcs);
        let mut svcs = Vec::with_capacity(config.services.len());
        for def in &config.services {
            match old.iter().position(|s| s.def.name == def.name) {
                Some(p) => {
                    let mut s = old.remove(p);
                    s.unit.def = def.clone();
                    svcs.push(s);
                }
                None => svcs.push(Svc::new(def.clone())),
            }
        }
        let removed: Vec<String> = old
            .iter()
            .filter(|s| s.pid.is_some())
            .map(|s| s.def.name.clone())
            .collect();
        svcs.extend(old.into_iter().filter(|s| s.pid.is_some()));
        self.svcs = svcs;
        self.config = config;
        self.recompute_order();
        for name in removed {
            if let Some(i) = self.svcs.iter().position(|s| s.def.name == name) {
                self.begin_stop(i, AfterStop::Remove, now);
            }
        }
    }

    fn recompute_order(&mut self) {
        let index: HashMap<&str, usize> = self
            .svcs
            .iter()
            .enumerate()
            .map(|(i, s)| (s.def.name.as_str(), i))
            .collect();
        let deps: Vec<Vec<usize>> = self
            .svcs
            .iter()
            .map(|s| {
                s.def
                    .after
                    .iter()
                    .filter_map(|a| index.get(a.as_str()).copied())
                    .collect()
            })
            .collect();
        self.order = order::start_order(&deps).unwrap_or_else(|_| (0..self.svcs.len()).collect());
    }

    // ----- control socket -----------------------------------------------------------------

    fn accept_clients(&mut self) {
        let Some(listener) = &self.listener else {
            return;
        };
        loop {
            match listener.accept() {
                Ok((stream, _)) => {
                    self.accept_errors = 0;
                    if stream.set_nonblocking(true).is_err() || self.clients.len() >= 64 {
                        continue;
                    }
                    self.clients.push(Client {
                        stream,
                        inbuf: lines::Buffer::new(MAX_REQUEST),
                        outbuf: Vec::new(),
                        eof: false,
                        subscribed: false,
                    });
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) => {
                    let pause = ewindow_io::accept_backoff(self.accept_errors);
                    self.accept_errors = self.accept_errors.saturating_add(1);
                    warn!("control socket: accept: {e} (paused for {pause:?})");
                    self.accept_paused = Some(Instant::now() + pause);
                    break;
                }
            }
        }
    }

    fn serve_client(&mut self, i: usize, revents: PollFlags) {
        if revents.intersects(PollFlags::POLLIN | PollFlags::POLLHUP | PollFlags::POLLERR) {
            let mut buf = [0u8; 4096];
            loop {
                match self.clients[i].stream.read(&mut buf) {
                    Ok(0) => {
                        self.clients[i].eof = true;
                        break;
                    }
                    Ok(n) => self.clients[i].inbuf.feed(&buf[..n]),
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(_) => {
                        self.clients[i].eof = true;
                        self.clients[i].outbuf.clear();
                        return;
                    }
                }
            }
            while let Some(line) = self.clients[i].inbuf.next_line() {
                let line = line.trim();
                if line.is_empty() {
                    continue;
                }
                let (reply, subscribe) = match serde_json::from_str::<Request>(line) {
                    Ok(Request::Subscribe) => (Reply::ok(), true),
                    Ok(req) => (self.handle_request(req), false),
                    Err(e) => (Reply::error(format!("bad request: {e}")), false),
                };
                let mut out = lines::encode(&reply);
                if subscribe && !self.clients[i].subscribed {
                    self.clients[i].subscribed = true;
                    out.extend_from_slice(&self.current_events());
                }
                self.clients[i].outbuf.extend_from_slice(&out);
            }
            if self.clients[i].inbuf.overflowed() {
                let out = lines::encode(&Reply::error("request too long"));
                let c = &mut self.clients[i];
                c.outbuf.extend_from_slice(&out);
                c.inbuf.clear();
                c.eof = true;
            }
        }
        flush(&mut self.clients[i]);
    }

    fn handle_request(&mut self, req: Request) -> Reply {
        let now = Instant::now();
        let find = |svcs: &[Svc], name: &str| svcs.iter().position(|s| s.def.name == name);
        match req {
            Request::Status => Reply {
                status: Some(self.status(now)),
                ..Reply::ok()
            },
            Request::Start { .. } | Request::Stop { .. } | Request::Restart { .. }
                if self.shutdown.is_some() =>
            {
                Reply::error("shutting down")
            }
            Request::Start { service } => match find(&self.svcs, &service) {
                None => Reply::error(format!("no service named `{service}`")),
                Some(i) => {
                    self.svcs[i].unit.start_request();
                    Reply::ok()
                }
            },
            Request::Stop { service } => match find(&self.svcs, &service) {
                None => Reply::error(format!("no service named `{service}`")),
                Some(i) => {
                    self.begin_stop(i, AfterStop::Stay, now);
                    Reply::ok()
                }
            },
            Request::Restart { service } => match find(&self.svcs, &service) {
                None => Reply::error(format!("no service named `{service}`")),
                Some(i) => {
                    self.begin_stop(i, AfterStop::Start, now);
                    Reply::ok()
                }
            },
            Request::Reboot => {
                self.begin_shutdown(ShutdownKind::Reboot);
                Reply::ok()
            }
            Request::Poweroff => {
                self.begin_shutdown(ShutdownKind::Poweroff);
                Reply::ok()
            }
            Request::Halt => {
                self.begin_shutdown(ShutdownKind::Halt);
                Reply::ok()
            }
            // Handled by the connection (it changes what the connection is).
            Request::Subscribe => Reply::ok(),
            Request::Logs { service, lines } => {
                let n = lines.unwrap_or(100).min(MAX_LOG_LINES);
                let mut picked: Vec<LogLine> = self
                    .logs
                    .iter()
                    .rev()
                    .filter(|l| service.as_ref().is_none_or(|s| &l.service == s))
                    .take(n)
                    .cloned()
                    .collect();
                picked.reverse();
                Reply {
                    logs: Some(picked),
                    ..Reply::ok()
                }
            }
        }
    }

    fn status(&self, now: Instant) -> control::Status {
        let services = self
            .order
            .iter()
            .map(|&i| {
                let s = &self.svcs[i];
                ServiceStatus {
                    name: s.def.name.clone(),
                    state: s.state.name().to_owned(),
                    pid: s.pid,
                    restarts: s.restarts,
                    last_exit: s.last_exit.clone(),
                    uptime_s: s
                        .started_at
                        .filter(|_| s.pid.is_some())
                        .map(|t| now.saturating_duration_since(t).as_secs_f64()),
                    next_start_s: match s.state {
                        State::Backoff { until } | State::Failed { until } => {
                            Some(until.saturating_duration_since(now).as_secs_f64())
                        }
                        _ => None,
                    },
                }
            })
            .collect();
        control::Status {
            init: InitStatus {
                pid: nix::unistd::getpid().as_raw(),
                pid1: self.opts.pid1,
                uptime_s: now.saturating_duration_since(self.started).as_secs_f64(),
                cpu_ms: process::self_cpu_ms(),
                rss_kb: process::self_rss_kb(),
                orphans_reaped: self.orphans_reaped,
                shutdown: self.shutdown.map(|(k, _)| k.name().to_owned()),
            },
            config: ConfigStatus {
                source: self.config.source.display().to_string(),
                error: self.config_error.clone(),
            },
            services,
            system: self.system.clone(),
        }
    }
}

/// Writes what the socket takes of a client's pending output.
/// Sends a service's signal (`lifecycle::Effect`) to its process group and its main process
/// (which may have left the group).
fn perform(effect: Effect) {
    let (pid, sig) = match effect {
        Effect::Term(pid) => (pid, Signal::SIGTERM),
        Effect::Kill(pid) => (pid, Signal::SIGKILL),
    };
    let pid = Pid::from_raw(pid);
    let _ = process::signal_group(pid, sig);
    let _ = kill(pid, sig);
    if sig == Signal::SIGTERM {
        let _ = kill(pid, Signal::SIGCONT);
    }
}

fn flush(c: &mut Client) {
    while !c.outbuf.is_empty() {
        match c.stream.write(&c.outbuf) {
            Ok(0) => break,
            Ok(n) => {
                c.outbuf.drain(..n);
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
            Err(_) => {
                c.outbuf.clear();
                c.eof = true;
            }
        }
    }
}

type Boot = (
    SystemStatus,
    Option<(ClockFile, Instant)>,
    Option<(Watchdog, Instant)>,
    Option<PathBuf>,
);

/// The boot duties of `[system]`, in order: modules (drivers for what follows), the data
/// partition (where the clock file lives), the clock (before the overlay: WireGuard refuses
/// handshakes from the past), the watchdog (last, so a long fsck cannot trip it).
fn boot_duties(sys: &config::System, set_clock: bool) -> Boot {
    let mut status = SystemStatus {
        modules: modules::load_all(&sys.modules_dir, &sys.modules, &sys.device_modules),
        ..SystemStatus::default()
    };
    let mut mounted = None;
    if let Some(d) = &sys.data {
        let st = data::bring_up(d);
        if st.state != "unavailable" {
            mounted = Some(d.mountpoint.clone());
        }
        status.data = Some(st);
    }
    if sys.read_only_root {
        // Only where init mounted /run and /tmp itself (an image's PID 1): never the root
        // of a test's namespace or of a host.
        if crate::mounts::early_mounts_done() {
            match crate::mounts::remount_root_readonly() {
                Ok(()) => info!("root filesystem remounted read-only"),
                Err(e) => error!("remounting / read-only: {e}"),
            }
        } else {
            info!("read_only_root: / left as it is (init did not mount /run and /tmp)");
        }
    }
    let now = Instant::now();
    let clock = sys.clock.as_ref().map(|c| {
        let mut st = ClockStatus {
            file: c.file.display().to_string(),
            restored_unix: None,
            saved_unix: None,
            error: None,
        };
        match clock::restore(&c.file, set_clock) {
            Ok(Some(t)) => {
                info!(unix = t, "clock restored from {}", c.file.display());
                st.restored_unix = Some(t);
            }
            Ok(None) => {}
            Err(e) => {
                warn!("{e}");
                st.error = Some(e);
            }
        }
        status.clock = Some(st);
        (c.clone(), now + c.save_every)
    });
    let watchdog = sys.watchdog.as_ref().map(|w| {
        let w = Watchdog::open(w);
        status.watchdog = Some(w.status.clone());
        let next = now + w.interval;
        (w, next)
    });
    let watchdog = watchdog.filter(|(w, _)| w.armed());
    (status, clock, watchdog, mounted)
}

/// The services to run at start-up: the file, else the fallback file, else the built-in set;
/// with the error that made us fall back.
fn initial_config(opts: &Options) -> (Config, Option<String>) {
    match config::load(&opts.config) {
        Ok(c) => {
            info!(file = %opts.config.display(), services = c.services.len(), "services file loaded");
            (c, None)
        }
        Err(e) => {
            error!("{e}");
            let msg = e.to_string();
            if let Some(fallback) = &opts.fallback {
                match config::load(fallback) {
                    Ok(c) => {
                        warn!(file = %fallback.display(), "using the fallback services file");
                        return (c, Some(msg));
                    }
                    Err(e2) => error!("fallback: {e2}"),
                }
            }
            warn!("using the built-in minimal services");
            (builtin_config(), Some(msg))
        }
    }
}

/// The safe minimal set: the console on tty1 when it is installed (nothing else can be
/// assumed to exist).
fn builtin_config() -> Config {
    let mut c = Config::empty("(built-in minimal set)");
    let console = Path::new("/usr/bin/ewindow-console");
    if console.exists() {
        c.services.push(Service {
            name: "console".into(),
            exec: vec![console.display().to_string()],
            after: Vec::new(),
            ready: Ready::Started,
            restart: crate::backoff::Restart::Always,
            stop_timeout: Duration::from_secs(5),
            env: Default::default(),
            tty: Path::new("/dev/tty1").exists().then(|| "/dev/tty1".into()),
            line: 0,
        });
    }
    c
}

fn bind_control(path: &Path) -> io::Result<UnixListener> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    match std::fs::remove_file(path) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    let l = UnixListener::bind(path)?;
    l.set_nonblocking(true)?;
    Ok(l)
}
