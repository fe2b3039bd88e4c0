//! What every ewindow process does with its files and sockets, in one place: files replaced
//! atomically with the right mode ([`atomic`]), line JSON with a length limit ([`lines`]),
//! an accept loop that backs off on errors and caps its connections ([`accept`], with the
//! `tokio` feature), the well-known paths ([`paths`]) and the local time ([`localtime`]).
//! `ewindow-protocol` holds what is said; this crate how it is carried.

pub mod atomic;
pub mod lines;
pub mod localtime;
pub mod paths;

#[cfg(feature = "tokio")]
pub mod accept;

pub use atomic::write_atomically;

/// The pause after the `n`-th accept error in a row (0 for the first): 50 ms doubling up to
/// 5 s. The async accept loop and init's poll loop both wait it out.
pub fn accept_backoff(n: u32) -> std::time::Duration {
    let ms = 50u64.saturating_mul(1 << n.min(7));
    std::time::Duration::from_millis(ms).min(std::time::Duration::from_secs(5))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn the_pause_grows_and_stops_growing() {
        assert_eq!(accept_backoff(0), Duration::from_millis(50));
        assert_eq!(accept_backoff(1), Duration::from_millis(100));
        assert_eq!(accept_backoff(6), Duration::from_millis(3200));
        assert_eq!(accept_backoff(7), Duration::from_secs(5));
        assert_eq!(accept_backoff(u32::MAX), Duration::from_secs(5));
    }
}
