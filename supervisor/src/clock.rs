//! The saved clock (`[system.clock]`). A Raspberry Pi has no real-time clock: it boots in
//! 1970 until time sync works, and WireGuard refuses handshakes whose timestamp is older than
//! one it has seen. So init restores the last saved time at boot when the clock is behind it,
//! and saves the time periodically and at shutdown.
//!
//! The file holds Unix seconds as decimal text and a newline; it is written atomically (temp
//! file, fsync, rename), so a power cut leaves either the old or the new time.

use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// What to do with the saved time at boot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Restore {
    /// The clock is at or after the saved time: leave it.
    Keep,
    /// The clock is behind: set it to the saved time.
    SetTo(u64),
}

/// Decides from the clock now and the saved time (both Unix seconds).
pub fn decide(now: u64, saved: u64) -> Restore {
    if now < saved {
        Restore::SetTo(saved)
    } else {
        Restore::Keep
    }
}

/// Reads the saved time: decimal Unix seconds, surrounding whitespace allowed.
pub fn parse(text: &str) -> Result<u64, String> {
    let t = text.trim();
    t.parse::<u64>()
        .map_err(|_| format!("`{}` is not a time in Unix seconds", t.escape_debug()))
}

/// The clock now, in Unix seconds.
pub fn now_unix() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
        .as_secs()
}

/// Reads the file and, when `set` is true and the clock is behind, sets the clock. Returns the
/// time set, if any.
pub fn restore(file: &Path, set: bool) -> Result<Option<u64>, String> {
    let text = match std::fs::read_to_string(file) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("{}: {e}", file.display())),
    };
    let saved = parse(&text).map_err(|m| format!("{}: {m}", file.display()))?;
    match decide(now_unix(), saved) {
        Restore::Keep => Ok(None),
        Restore::SetTo(t) if set => {
            let ts = nix::sys::time::TimeSpec::new(t as nix::libc::time_t, 0);
            nix::time::clock_settime(nix::time::ClockId::CLOCK_REALTIME, ts)
                .map_err(|e| format!("setting the clock to {t}: {}", e.desc()))?;
            Ok(Some(t))
        }
        Restore::SetTo(t) => {
            tracing::info!(
                saved = t,
                "clock is behind the saved time (not set: not a real boot)"
            );
            Ok(None)
        }
    }
}

/// Writes the current time to the file atomically and returns it.
pub fn save(file: &Path) -> Result<u64, String> {
    let now = now_unix();
    ewindow_io::write_atomically(file, format!("{now}\n").as_bytes(), 0o644)
        .map_err(|e| format!("saving the clock: {e}"))?;
    Ok(now)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_clock_behind_is_set() {
        assert_eq!(decide(0, 1_700_000_000), Restore::SetTo(1_700_000_000));
        assert_eq!(decide(1_700_000_000, 1_700_000_000), Restore::Keep);
        assert_eq!(decide(1_800_000_000, 1_700_000_000), Restore::Keep);
    }

    #[test]
    fn file_format() {
        assert_eq!(parse("1700000000\n"), Ok(1_700_000_000));
        assert_eq!(parse(" 42 "), Ok(42));
        for bad in ["", "-1", "1.5", "abc", "99999999999999999999999", "\u{0}"] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn save_then_restore_round_trip() {
        let dir = std::env::temp_dir().join(format!("ewindow-clock-{}", std::process::id()));
        let file = dir.join("sub/clock");
        let t = save(&file).unwrap();
        assert!(t >= now_unix() - 5);
        assert_eq!(parse(&std::fs::read_to_string(&file).unwrap()), Ok(t));
        // The clock is not behind a time just saved: nothing to set.
        assert_eq!(restore(&file, false), Ok(None));
        std::fs::write(&file, "garbage").unwrap();
        assert!(restore(&file, false).unwrap_err().contains("not a time"));
        assert_eq!(restore(&dir.join("missing"), false), Ok(None));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
