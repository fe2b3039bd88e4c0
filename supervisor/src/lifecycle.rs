//! The life of one service and the order of a shutdown, as pure state machines: each input
//! (a loop turn's time, the process started, READY, an exit, a stop or start request, the
//! shutdown) changes the state and returns what the loop must do ([`Effect`], [`Step`]);
//! `runtime` performs it (spawn, signals, reaping) and feeds back the result. No IO, no
//! clock: `now` is an argument.
//!
//! ```text
//!   Waiting ──deps ready──► (Spawn) ──started──► Starting ──READY──► Running
//!      ▲                       │ (notify)           │                   │
//!      │                       └──start failed──────┴───────exit────────┤
//!      │                                                                ▼
//!      └──until──── Backoff / Failed ◄──should restart (backoff policy)── exited
//!                                                      │ no restart, or shutting down
//!   any ──stop──► Stopping ──exit──► Stopped           ▼
//!                 (Term, Kill after stop_timeout)    Stopped
//! ```
//!
//! A `notify` service that closes its readiness pipe without `READY` stays `Starting`
//! (s6's rule: never ready; its dependants wait).

use std::time::{Duration, Instant};

use ewindow_protocol::init::ExitStatus;
use tracing::{error, info, warn};

use crate::backoff::{should_restart, Backoff, BackoffPolicy, Exit, Next};
use crate::config::{Ready, Service};

/// How long a service may live on after SIGKILL before init says so (and again each minute).
pub const KILL_GRACE: Duration = Duration::from_secs(5);
/// How long leftover processes get after the final SIGKILL of a shutdown.
pub const FINAL_KILL_WAIT: Duration = Duration::from_secs(3);

/// Where a service is.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum State {
    /// Wants to run; waits for its dependencies.
    Waiting,
    /// Running, not ready yet (`notify`).
    Starting,
    /// Running and ready.
    Running,
    /// SIGTERM sent; SIGKILL at `deadline` unless `killed` already.
    Stopping { deadline: Instant, killed: bool },
    /// Exited; starts again at `until`.
    Backoff { until: Instant },
    /// Crash loop; tried again at `until`.
    Failed { until: Instant },
    /// Not running and not wanted.
    Stopped,
}

impl State {
    /// The name in `status` and in events.
    pub fn name(&self) -> &'static str {
        match self {
            State::Waiting => "waiting",
            State::Starting => "starting",
            State::Running => "running",
            State::Stopping { .. } => "stopping",
            State::Backoff { .. } => "backoff",
            State::Failed { .. } => "failed",
            State::Stopped => "stopped",
        }
    }
}

/// What to do with a service once a stop we asked for completes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AfterStop {
    /// Stay stopped (`stop`, shutdown).
    Stay,
    /// Start again (`restart`, `start` while stopping).
    Start,
    /// Forget it (removed from the services file).
    Remove,
}

/// What the loop must do for a service.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effect {
    /// SIGTERM (and SIGCONT) to the service's process group and its main process.
    Term(i32),
    /// SIGKILL to the group and the main process.
    Kill(i32),
}

/// What became of a service once its process is gone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Settled {
    /// It stays in the table (stopped, waiting, or in backoff).
    Kept,
    /// Drop it from the table (removed from the services file).
    Remove,
}

/// One service: its definition and where it is.
#[derive(Debug, Clone)]
pub struct Unit {
    /// The definition in use (a changed one applies from the next start).
    pub def: Service,
    /// Where it is.
    pub state: State,
    /// Its main process, while it runs.
    pub pid: Option<i32>,
    /// When the current process started.
    pub started_at: Option<Instant>,
    /// Restarts after an exit of its own.
    pub restarts: u32,
    /// How the last process ended.
    pub last_exit: Option<ExitStatus>,
    backoff: Backoff,
    after_stop: AfterStop,
}

impl Unit {
    /// A service that wants to run.
    pub fn new(def: Service) -> Unit {
        Unit {
            def,
            state: State::Waiting,
            pid: None,
            started_at: None,
            restarts: 0,
            last_exit: None,
            backoff: Backoff::default(),
            after_stop: AfterStop::Stay,
        }
    }

    /// The timers of a loop turn: a backoff that ends, a stop that takes too long.
    pub fn tick(&mut self, now: Instant, shutting_down: bool) -> Option<Effect> {
        match self.state {
            State::Backoff { until } | State::Failed { until } if now >= until => {
                self.state = if shutting_down {
                    State::Stopped
                } else {
                    State::Waiting
                };
                None
            }
            State::Stopping {
                deadline,
                killed: false,
            } if now >= deadline => {
                self.state = State::Stopping {
                    deadline: now + KILL_GRACE,
                    killed: true,
                };
                let pid = self.pid?;
                warn!(service = %self.def.name, pid, "did not stop within {:?}; SIGKILL", self.def.stop_timeout);
                Some(Effect::Kill(pid))
            }
            State::Stopping {
                deadline,
                killed: true,
            } if now >= deadline => {
                error!(service = %self.def.name, "still alive {KILL_GRACE:?} after SIGKILL");
                self.state = State::Stopping {
                    deadline: now + Duration::from_secs(60),
                    killed: true,
                };
                None
            }
            _ => None,
        }
    }

    /// Whether the loop should start it now (`deps_ready`: every `after` is running).
    pub fn wants_start(&self, shutting_down: bool, deps_ready: bool) -> bool {
        self.state == State::Waiting && !shutting_down && deps_ready
    }

    /// Its process started.
    pub fn started(&mut self, pid: i32, now: Instant) {
        self.pid = Some(pid);
        self.started_at = Some(now);
        self.state = match self.def.ready {
            Ready::Started => State::Running,
            Ready::Notify => State::Starting,
        };
        info!(service = %self.def.name, pid, "started");
    }

    /// Its process could not be started: an exit that counts as a failure.
    pub fn start_failed(
        &mut self,
        why: String,
        now: Instant,
        policy: &BackoffPolicy,
        shutting_down: bool,
    ) -> Settled {
        error!(service = %self.def.name, exec = ?self.def.exec, "cannot start: {why}");
        self.started_at = Some(now);
        self.exited(
            ExitStatus::SpawnFailed(why),
            Exit::Failure,
            now,
            policy,
            shutting_down,
        )
    }

    /// It wrote `READY` on its readiness pipe. True when that made it running.
    pub fn ready(&mut self) -> bool {
        if self.state != State::Starting {
            return false;
        }
        info!(service = %self.def.name, "ready");
        self.state = State::Running;
        true
    }

    /// Stop it, then `then`. An effect to perform, and whether it is settled already (it had
    /// no process).
    pub fn stop(&mut self, then: AfterStop, now: Instant) -> (Option<Effect>, Option<Settled>) {
        self.after_stop = then;
        match (self.pid, self.state) {
            (Some(_), State::Stopping { .. }) => (None, None),
            (Some(pid), _) => {
                info!(service = %self.def.name, pid, "stopping (SIGTERM)");
                self.state = State::Stopping {
                    deadline: now + self.def.stop_timeout,
                    killed: false,
                };
                (Some(Effect::Term(pid)), None)
            }
            (None, _) => {
                self.state = State::Stopped;
                (None, Some(self.apply_after_stop()))
            }
        }
    }

    /// `start` from the control socket: run it again now, or after the stop in progress.
    pub fn start_request(&mut self) {
        match self.state {
            State::Stopped | State::Backoff { .. } | State::Failed { .. } => {
                self.backoff.reset();
                self.state = State::Waiting;
            }
            State::Stopping { .. } => self.after_stop = AfterStop::Start,
            _ => {}
        }
    }

    /// A shutdown began: what does not run stays stopped.
    pub fn shutdown_begun(&mut self) {
        if self.pid.is_none() {
            self.state = State::Stopped;
        }
    }

    /// Its main process ended with `status`.
    pub fn exited(
        &mut self,
        status: ExitStatus,
        exit: Exit,
        now: Instant,
        policy: &BackoffPolicy,
        shutting_down: bool,
    ) -> Settled {
        let uptime = self
            .started_at
            .map_or(Duration::ZERO, |t| now.saturating_duration_since(t));
        self.pid = None;
        self.started_at = None;
        self.last_exit = Some(status.clone());
        if let State::Stopping { .. } = self.state {
            info!(service = %self.def.name, ?status, "stopped");
            self.state = State::Stopped;
            return self.apply_after_stop();
        }
        if shutting_down || !should_restart(self.def.restart, exit) {
            info!(service = %self.def.name, ?status, "exited; not restarting");
            self.state = State::Stopped;
            return Settled::Kept;
        }
        self.restarts = self.restarts.saturating_add(1);
        match self.backoff.on_exit(policy, uptime) {
            Next::RestartAfter(d) => {
                warn!(service = %self.def.name, ?status, ?uptime, "exited; restarting in {d:?}");
                self.state = State::Backoff { until: now + d };
            }
            Next::Failed(d) => {
                error!(service = %self.def.name, ?status, quick_exits = self.backoff.quick_exits(), "crash loop: failed; retrying in {d:?}");
                self.state = State::Failed { until: now + d };
            }
        }
        Settled::Kept
    }

    fn apply_after_stop(&mut self) -> Settled {
        match self.after_stop {
            AfterStop::Stay => Settled::Kept,
            AfterStop::Start => {
                self.backoff.reset();
                self.state = State::Waiting;
                Settled::Kept
            }
            AfterStop::Remove => Settled::Remove,
        }
    }

    /// When its next timer fires, if it has one.
    pub fn deadline(&self) -> Option<Instant> {
        match self.state {
            State::Backoff { until } | State::Failed { until } => Some(until),
            State::Stopping { deadline, .. } => Some(deadline),
            _ => None,
        }
    }
}

/// Where a shutdown is.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Phase {
    /// Stopping the services one at a time, in reverse start order.
    Services,
    /// SIGTERM sent to every process left; SIGKILL at `deadline`.
    Term { deadline: Instant },
    /// SIGKILL sent; giving up waiting at `deadline`.
    Kill { deadline: Instant },
    /// Nothing left to do (or nothing more that can be done).
    Done,
}

/// A signal for every process but init.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Everyone {
    /// SIGTERM.
    Term,
    /// SIGKILL.
    Kill,
}

/// What a shutdown turn decided.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Step {
    /// The phase after this turn.
    pub phase: Phase,
    /// Stop this service (by index) now.
    pub stop: Option<usize>,
    /// Signal every process left.
    pub signal: Option<Everyone>,
}

/// One turn of a shutdown. `services` holds, per service, whether it is stopping and whether
/// it has a process; `stop_order` the indices in stopping order; `no_children` whether the
/// last reap found no child left; `grace` the time between the final SIGTERM and SIGKILL.
pub fn shutdown_step(
    phase: Phase,
    services: &[(bool, bool)],
    stop_order: &[usize],
    no_children: bool,
    now: Instant,
    grace: Duration,
) -> Step {
    let stay = Step {
        phase,
        stop: None,
        signal: None,
    };
    match phase {
        Phase::Services => {
            if services.iter().any(|&(stopping, _)| stopping) {
                return stay;
            }
            if let Some(&i) = stop_order.iter().find(|&&i| services[i].1) {
                return Step {
                    stop: Some(i),
                    ..stay
                };
            }
            if no_children {
                return Step {
                    phase: Phase::Done,
                    ..stay
                };
            }
            Step {
                phase: Phase::Term {
                    deadline: now + grace,
                },
                stop: None,
                signal: Some(Everyone::Term),
            }
        }
        Phase::Term { deadline } => {
            if no_children {
                Step {
                    phase: Phase::Done,
                    ..stay
                }
            } else if now >= deadline {
                Step {
                    phase: Phase::Kill {
                        deadline: now + FINAL_KILL_WAIT,
                    },
                    stop: None,
                    signal: Some(Everyone::Kill),
                }
            } else {
                stay
            }
        }
        Phase::Kill { deadline } => {
            if no_children || now >= deadline {
                Step {
                    phase: Phase::Done,
                    ..stay
                }
            } else {
                // orphans re-parented since the last signal get theirs too
                Step {
                    signal: Some(Everyone::Kill),
                    ..stay
                }
            }
        }
        Phase::Done => stay,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backoff::Restart;
    use std::collections::BTreeMap;

    fn def(name: &str, ready: Ready, restart: Restart) -> Service {
        Service {
            name: name.into(),
            exec: vec!["/bin/true".into()],
            after: Vec::new(),
            ready,
            restart,
            stop_timeout: Duration::from_secs(5),
            env: BTreeMap::new(),
            tty: None,
            line: 1,
        }
    }

    fn policy() -> BackoffPolicy {
        BackoffPolicy::default()
    }

    fn t0() -> Instant {
        Instant::now()
    }

    #[test]
    fn a_started_service_is_running_at_once_a_notify_one_when_ready() {
        let now = t0();
        let mut u = Unit::new(def("a", Ready::Started, Restart::Always));
        assert!(u.wants_start(false, true));
        assert!(!u.wants_start(false, false), "waits for its dependencies");
        assert!(
            !u.wants_start(true, true),
            "nothing starts during a shutdown"
        );
        u.started(10, now);
        assert_eq!((u.state, u.pid), (State::Running, Some(10)));
        assert!(!u.ready(), "READY from a running service changes nothing");

        let mut n = Unit::new(def("n", Ready::Notify, Restart::Always));
        n.started(11, now);
        assert_eq!(n.state, State::Starting);
        assert!(!n.wants_start(false, true));
        assert!(n.ready());
        assert_eq!(n.state, State::Running);
    }

    #[test]
    fn a_notify_service_that_never_says_ready_stays_starting() {
        let now = t0();
        let mut n = Unit::new(def("n", Ready::Notify, Restart::Always));
        n.started(11, now);
        // the pipe closed without READY: nothing is fed, time passes
        for s in 1..100 {
            assert_eq!(n.tick(now + Duration::from_secs(s), false), None);
        }
        assert_eq!(n.state, State::Starting);
    }

    #[test]
    fn an_exit_restarts_after_the_backoff_and_a_crash_loop_fails() {
        let now = t0();
        let p = policy();
        let mut u = Unit::new(def("a", Ready::Started, Restart::Always));
        u.started(10, now);
        let later = now + Duration::from_millis(100);
        let s = u.exited(ExitStatus::Exited(1), Exit::Failure, later, &p, false);
        assert_eq!(s, Settled::Kept);
        assert_eq!((u.pid, u.restarts), (None, 1));
        let State::Backoff { until } = u.state else {
            panic!("{:?}", u.state)
        };
        assert!(until > later);
        assert_eq!(u.deadline(), Some(until));
        assert_eq!(u.tick(until - Duration::from_millis(1), false), None);
        assert!(matches!(u.state, State::Backoff { .. }));
        u.tick(until, false);
        assert_eq!(u.state, State::Waiting);

        // quick exits in a row end in Failed, which is retried later too
        let mut t = until;
        let mut failed = false;
        for _ in 0..20 {
            u.started(12, t);
            u.exited(ExitStatus::Exited(1), Exit::Failure, t, &p, false);
            match u.state {
                State::Failed { until } => {
                    failed = true;
                    u.tick(until, false);
                    assert_eq!(u.state, State::Waiting);
                    break;
                }
                State::Backoff { until } => {
                    t = until;
                    u.tick(t, false);
                }
                s => panic!("{s:?}"),
            }
        }
        assert!(failed, "a crash loop is marked failed");
    }

    #[test]
    fn restart_policies_decide_after_an_exit_of_its_own() {
        let now = t0();
        let p = policy();
        for (restart, exit, restarts) in [
            (Restart::Never, Exit::Failure, false),
            (Restart::OnFailure, Exit::Success, false),
            (Restart::OnFailure, Exit::Failure, true),
            (Restart::Always, Exit::Success, true),
        ] {
            let mut u = Unit::new(def("a", Ready::Started, restart));
            u.started(1, now);
            u.exited(ExitStatus::Exited(0), exit, now, &p, false);
            assert_eq!(
                matches!(u.state, State::Backoff { .. }),
                restarts,
                "{restart:?} {exit:?}: {:?}",
                u.state
            );
            if !restarts {
                assert_eq!(u.state, State::Stopped);
            }
        }
        // during a shutdown nothing restarts
        let mut u = Unit::new(def("a", Ready::Started, Restart::Always));
        u.started(1, now);
        u.exited(
            ExitStatus::Signaled("SIGSEGV".into()),
            Exit::Failure,
            now,
            &p,
            true,
        );
        assert_eq!(u.state, State::Stopped);
    }

    #[test]
    fn a_spawn_failure_is_a_failed_exit() {
        let now = t0();
        let mut u = Unit::new(def("a", Ready::Started, Restart::Always));
        u.start_failed("no such file".into(), now, &policy(), false);
        assert!(matches!(u.state, State::Backoff { .. }));
        assert_eq!(
            u.last_exit,
            Some(ExitStatus::SpawnFailed("no such file".into()))
        );
    }

    #[test]
    fn a_stop_terms_then_kills_after_the_timeout() {
        let now = t0();
        let mut u = Unit::new(def("a", Ready::Started, Restart::Always));
        u.started(42, now);
        assert_eq!(u.stop(AfterStop::Stay, now), (Some(Effect::Term(42)), None));
        assert_eq!(u.stop(AfterStop::Stay, now), (None, None), "one SIGTERM");
        assert_eq!(u.tick(now + Duration::from_secs(4), false), None);
        assert_eq!(
            u.tick(now + Duration::from_secs(5), false),
            Some(Effect::Kill(42))
        );
        assert_eq!(
            u.state,
            State::Stopping {
                deadline: now + Duration::from_secs(5) + KILL_GRACE,
                killed: true
            }
        );
        assert_eq!(
            u.tick(now + Duration::from_secs(11), false),
            None,
            "one SIGKILL"
        );
        let s = u.exited(
            ExitStatus::Signaled("SIGKILL".into()),
            Exit::Failure,
            now + Duration::from_secs(12),
            &policy(),
            false,
        );
        assert_eq!((s, u.state, u.restarts), (Settled::Kept, State::Stopped, 0));
    }

    #[test]
    fn what_follows_a_stop() {
        let now = t0();
        let p = policy();
        // restart: stop, then waiting with a fresh backoff
        let mut u = Unit::new(def("a", Ready::Started, Restart::Always));
        u.started(1, now);
        u.stop(AfterStop::Start, now);
        let s = u.exited(ExitStatus::Exited(0), Exit::Success, now, &p, false);
        assert_eq!((s, u.state), (Settled::Kept, State::Waiting));
        // removed from the file: forgotten once stopped
        u.started(2, now);
        u.stop(AfterStop::Remove, now);
        let s = u.exited(ExitStatus::Exited(0), Exit::Success, now, &p, false);
        assert_eq!(s, Settled::Remove);
        // a start request while stopping starts it again after the stop
        let mut u = Unit::new(def("b", Ready::Started, Restart::Never));
        u.started(3, now);
        u.stop(AfterStop::Stay, now);
        u.start_request();
        u.exited(ExitStatus::Exited(0), Exit::Success, now, &p, false);
        assert_eq!(u.state, State::Waiting);
        // stopping what does not run settles at once
        let mut u = Unit::new(def("c", Ready::Started, Restart::Always));
        assert_eq!(u.stop(AfterStop::Stay, now), (None, Some(Settled::Kept)));
        assert_eq!(u.state, State::Stopped);
        u.start_request();
        assert_eq!(u.state, State::Waiting);
        assert_eq!(
            u.stop(AfterStop::Remove, now),
            (None, Some(Settled::Remove))
        );
    }

    #[test]
    fn a_shutdown_keeps_what_does_not_run_stopped() {
        let now = t0();
        let mut u = Unit::new(def("a", Ready::Started, Restart::Always));
        u.started(1, now);
        u.exited(ExitStatus::Exited(1), Exit::Failure, now, &policy(), false);
        u.shutdown_begun();
        assert_eq!(u.state, State::Stopped);
        let mut b = Unit::new(def("b", Ready::Started, Restart::Always));
        b.started(2, now);
        b.shutdown_begun();
        assert_eq!(b.state, State::Running, "a running one is stopped in order");
        // a backoff that ends during a shutdown ends stopped
        let mut c = Unit::new(def("c", Ready::Started, Restart::Always));
        c.started(3, now);
        c.exited(ExitStatus::Exited(1), Exit::Failure, now, &policy(), false);
        let until = c.deadline().unwrap();
        c.tick(until, true);
        assert_eq!(c.state, State::Stopped);
    }

    #[test]
    fn a_shutdown_stops_one_service_at_a_time_in_reverse_order_then_everyone() {
        let now = t0();
        let grace = Duration::from_secs(2);
        // three services started 0, 1, 2: stopped 2, 1, 0
        let order = [2, 1, 0];
        let mut running = [true, true, true];
        let mut stopped = Vec::new();
        let mut phase = Phase::Services;
        for _ in 0..10 {
            let view: Vec<(bool, bool)> = running.iter().map(|&r| (false, r)).collect();
            let step = shutdown_step(phase, &view, &order, false, now, grace);
            phase = step.phase;
            match step.stop {
                Some(i) => {
                    // while it stops, nothing else happens
                    let mut busy = view.clone();
                    busy[i].0 = true;
                    let wait = shutdown_step(phase, &busy, &order, false, now, grace);
                    assert_eq!(wait.stop, None);
                    assert_eq!(wait.phase, Phase::Services);
                    running[i] = false;
                    stopped.push(i);
                }
                None => break,
            }
        }
        assert_eq!(stopped, [2, 1, 0]);
        assert_eq!(
            phase,
            Phase::Term {
                deadline: now + grace
            }
        );
        // SIGTERM went to everyone with that step; SIGKILL when the grace is over
        let s = shutdown_step(phase, &[], &order, false, now + grace, grace);
        assert_eq!(s.signal, Some(Everyone::Kill));
        let Phase::Kill { deadline } = s.phase else {
            panic!("{:?}", s.phase)
        };
        // SIGKILL again each turn until nothing is left or the wait ends
        let s2 = shutdown_step(s.phase, &[], &order, false, now + grace, grace);
        assert_eq!((s2.phase, s2.signal), (s.phase, Some(Everyone::Kill)));
        assert_eq!(
            shutdown_step(s.phase, &[], &order, false, deadline, grace).phase,
            Phase::Done
        );
        assert_eq!(
            shutdown_step(s.phase, &[], &order, true, now, grace).phase,
            Phase::Done
        );
    }

    #[test]
    fn a_shutdown_with_nothing_left_is_done_at_once() {
        let now = t0();
        let s = shutdown_step(
            Phase::Services,
            &[(false, false)],
            &[0],
            true,
            now,
            Duration::ZERO,
        );
        assert_eq!(s.phase, Phase::Done);
        assert_eq!(s.signal, None);
        let term = Phase::Term {
            deadline: now + Duration::from_secs(9),
        };
        assert_eq!(
            shutdown_step(term, &[], &[], true, now, Duration::ZERO).phase,
            Phase::Done
        );
        assert_eq!(
            shutdown_step(term, &[], &[], false, now, Duration::ZERO).phase,
            term
        );
        assert_eq!(
            shutdown_step(Phase::Done, &[], &[], false, now, Duration::ZERO),
            Step {
                phase: Phase::Done,
                stop: None,
                signal: None
            }
        );
    }
}
