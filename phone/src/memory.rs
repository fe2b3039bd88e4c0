//! Handing freed memory back to the system.
//!
//! A burst of SIP (a member flooding 200 INVITEs a second) fills the stack's table of
//! finished transactions, which rsipstack keeps 64*T1 = 32 s each to absorb retransmissions.
//! Once they are freed, glibc keeps the freed pages in its per-thread arenas, so the phone's
//! RSS stayed at the burst's high-water mark for good: measured with 4,000 plain-RTP INVITEs
//! at 200/s against `listen`, 17.3 → 45.6 MB, still 44.5 MB with every transaction gone, and
//! 21.6 MB after one `malloc_trim(0)`. Further bursts reused that memory (+1.0, +0.7 MB): a
//! high-water mark, not a leak. Once a minute the phone gives it back.

use std::time::Duration;

/// How often freed memory is handed back.
pub const TRIM_EVERY: Duration = Duration::from_secs(60);

/// Hands freed memory back every [`TRIM_EVERY`], forever (a task of the runtime).
pub async fn trim_forever() {
    let mut every = tokio::time::interval(TRIM_EVERY);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        every.tick().await;
        trim();
    }
}

/// Returns the allocator's free pages to the system (glibc; elsewhere nothing to do).
fn trim() {
    #[cfg(target_env = "gnu")]
    // SAFETY: malloc_trim takes no pointers and only touches the allocator's own state,
    // under the allocator's locks.
    unsafe {
        libc::malloc_trim(0);
    }
}
