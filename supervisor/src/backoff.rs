//! Restart policy and restart backoff: when a service that exited starts again.
//!
//! Pure logic, no clocks: callers pass how long the service ran and get back a delay.
//!
//! **Invariants:** the delay before a restart is never below [`BackoffPolicy::min_delay`]
//! (at least 1 s, enforced when the policy is read), doubles with each quick exit up to
//! [`BackoffPolicy::max_delay`], and goes back to the minimum once a service stayed up for
//! [`BackoffPolicy::reset_after`]. After [`BackoffPolicy::failed_after`] quick exits in a row
//! the service is `failed` and is retried only every [`BackoffPolicy::failed_retry`].

use std::time::Duration;

use serde::Serialize;

/// What to do with a service when it exits on its own (not because we stopped it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, Serialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum Restart {
    /// Restart whatever the exit status.
    #[default]
    Always,
    /// Restart unless it exited with status 0.
    OnFailure,
    /// Never restart.
    Never,
}

/// How a process ended, as far as the restart policy cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// Exit status 0.
    Success,
    /// Non-zero exit status, killed by a signal, or could not be started at all.
    Failure,
}

/// Whether a service that exited on its own should be started again.
pub fn should_restart(policy: Restart, exit: Exit) -> bool {
    match policy {
        Restart::Always => true,
        Restart::OnFailure => exit == Exit::Failure,
        Restart::Never => false,
    }
}

/// The timing of restarts; one per services file (`[backoff]`), shared by all services.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BackoffPolicy {
    /// Delay after the first quick exit; never below 1 s.
    pub min_delay: Duration,
    /// The delay doubles up to this cap.
    pub max_delay: Duration,
    /// A run at least this long counts as healthy and resets the delay.
    pub reset_after: Duration,
    /// This many quick exits in a row make the service `failed`.
    pub failed_after: u32,
    /// How often a `failed` service is tried again.
    pub failed_retry: Duration,
}

impl Default for BackoffPolicy {
    fn default() -> Self {
        BackoffPolicy {
            min_delay: Duration::from_secs(1),
            max_delay: Duration::from_secs(30),
            reset_after: Duration::from_secs(10),
            failed_after: 5,
            failed_retry: Duration::from_secs(60),
        }
    }
}

/// What happens after a service exited and its restart policy wants it back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// Start it again after this delay (state `backoff`).
    RestartAfter(Duration),
    /// A crash loop: report `failed`, try again after this (long) delay.
    Failed(Duration),
}

impl Next {
    /// The delay before the next start, whichever the outcome.
    pub fn delay(self) -> Duration {
        match self {
            Next::RestartAfter(d) | Next::Failed(d) => d,
        }
    }
}

/// The backoff state of one service: how many quick exits in a row it has had.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Backoff {
    quick_exits: u32,
}

impl Backoff {
    /// A service ran for `uptime` and exited; returns when to start it again.
    pub fn on_exit(&mut self, policy: &BackoffPolicy, uptime: Duration) -> Next {
        if uptime >= policy.reset_after {
            self.quick_exits = 0;
        }
        self.quick_exits = self.quick_exits.saturating_add(1);
        if self.quick_exits >= policy.failed_after.max(1) {
            Next::Failed(policy.failed_retry.max(policy.min_delay))
        } else {
            Next::RestartAfter(delay_for(policy, self.quick_exits))
        }
    }

    /// Forgets past exits (an operator started the service by hand).
    pub fn reset(&mut self) {
        self.quick_exits = 0;
    }

    /// Quick exits in a row so far.
    pub fn quick_exits(&self) -> u32 {
        self.quick_exits
    }
}

/// The delay after the `n`th quick exit in a row (`n >= 1`): `min * 2^(n-1)`, capped.
pub fn delay_for(policy: &BackoffPolicy, n: u32) -> Duration {
    let shift = n.saturating_sub(1).min(31);
    let delay = policy
        .min_delay
        .checked_mul(1u32 << shift)
        .unwrap_or(policy.max_delay);
    delay.min(policy.max_delay).max(policy.min_delay)
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: fn(u64) -> Duration = Duration::from_secs;

    fn quick(b: &mut Backoff, p: &BackoffPolicy) -> Next {
        b.on_exit(p, Duration::from_millis(100))
    }

    #[test]
    fn restart_policy_table() {
        use Exit::*;
        use Restart::*;
        let table = [
            (Always, Success, true),
            (Always, Failure, true),
            (OnFailure, Success, false),
            (OnFailure, Failure, true),
            (Never, Success, false),
            (Never, Failure, false),
        ];
        for (policy, exit, want) in table {
            assert_eq!(should_restart(policy, exit), want, "{policy:?} {exit:?}");
        }
    }

    #[test]
    fn delays_double_from_one_second_to_the_cap() {
        let p = BackoffPolicy {
            failed_after: 100,
            ..Default::default()
        };
        let mut b = Backoff::default();
        let delays: Vec<u64> = (0..9)
            .map(|_| quick(&mut b, &p).delay().as_secs())
            .collect();
        assert_eq!(delays, vec![1, 2, 4, 8, 16, 30, 30, 30, 30]);
    }

    #[test]
    fn crash_loop_becomes_failed_and_stays_failed_with_slow_retries() {
        let p = BackoffPolicy::default();
        let mut b = Backoff::default();
        for want in [1, 2, 4, 8] {
            assert_eq!(quick(&mut b, &p), Next::RestartAfter(S(want)));
        }
        assert_eq!(quick(&mut b, &p), Next::Failed(S(60)));
        assert_eq!(quick(&mut b, &p), Next::Failed(S(60)));
        assert_eq!(b.quick_exits(), 6);
    }

    #[test]
    fn a_healthy_run_resets_the_delay_even_when_failed() {
        let p = BackoffPolicy::default();
        let mut b = Backoff::default();
        for _ in 0..6 {
            quick(&mut b, &p);
        }
        assert_eq!(b.on_exit(&p, S(10)), Next::RestartAfter(S(1)));
        assert_eq!(quick(&mut b, &p), Next::RestartAfter(S(2)));
        // Just under the reset threshold is still a quick exit.
        assert_eq!(
            b.on_exit(&p, S(10) - Duration::from_millis(1)),
            Next::RestartAfter(S(4))
        );
    }

    #[test]
    fn reset_forgets_the_count() {
        let p = BackoffPolicy::default();
        let mut b = Backoff::default();
        quick(&mut b, &p);
        quick(&mut b, &p);
        b.reset();
        assert_eq!(quick(&mut b, &p), Next::RestartAfter(S(1)));
    }

    #[test]
    fn never_below_the_minimum_nor_above_the_cap_for_any_count() {
        let p = BackoffPolicy {
            min_delay: S(3),
            max_delay: S(20),
            ..Default::default()
        };
        for n in 0..=200 {
            let d = delay_for(&p, n);
            assert!(d >= S(3) && d <= S(20), "n={n}: {d:?}");
        }
        assert_eq!(delay_for(&p, u32::MAX), S(20));
        // Failed retry is never faster than the minimum delay.
        let p = BackoffPolicy {
            failed_after: 1,
            failed_retry: Duration::ZERO,
            ..Default::default()
        };
        assert_eq!(quick(&mut Backoff::default(), &p), Next::Failed(S(1)));
    }

    #[test]
    fn failed_after_zero_behaves_as_one() {
        let p = BackoffPolicy {
            failed_after: 0,
            ..Default::default()
        };
        assert!(matches!(
            quick(&mut Backoff::default(), &p),
            Next::Failed(_)
        ));
    }

    #[test]
    fn counter_saturates() {
        let p = BackoffPolicy::default();
        let mut b = Backoff {
            quick_exits: u32::MAX,
        };
        assert_eq!(quick(&mut b, &p), Next::Failed(S(60)));
        assert_eq!(b.quick_exits(), u32::MAX);
    }
}
