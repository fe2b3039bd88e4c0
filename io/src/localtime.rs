//! The local time of day (the window's open hours and the console's clock are local time):
//! the C library's `localtime_r`, which reads TZ and /etc/localtime.

use std::time::{SystemTime, UNIX_EPOCH};

/// Hour and minute, local time, of the Unix time `unix` (UTC when the C library cannot tell).
pub fn hour_minute(unix: u64) -> (u8, u8) {
    let t = nix::libc::time_t::try_from(unix).unwrap_or(0);
    // SAFETY: localtime_r only writes into the tm we own and returns null or a pointer to it.
    let mut tm: nix::libc::tm = unsafe { std::mem::zeroed() };
    if unsafe { nix::libc::localtime_r(&t, &mut tm) }.is_null() {
        let m = (unix / 60) % 1440;
        return ((m / 60) as u8, (m % 60) as u8);
    }
    (tm.tm_hour.clamp(0, 23) as u8, tm.tm_min.clamp(0, 59) as u8)
}

/// Seconds since the Unix epoch now (0 if the clock is before it).
pub fn now_unix() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// The local minute of the day now, 0..1440.
pub fn minute_of_day() -> u16 {
    let (h, m) = hour_minute(now_unix());
    u16::from(h) * 60 + u16::from(m)
}

/// "14:05", local time, now.
pub fn clock() -> String {
    let (h, m) = hour_minute(now_unix());
    format!("{h:02}:{m:02}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_time_of_day_is_in_range() {
        for t in [0, 59, 3600 * 13 + 60 * 7, 1_700_000_000, u64::MAX] {
            let (h, m) = hour_minute(t);
            assert!(h < 24 && m < 60, "{t}: {h}:{m}");
        }
        assert!(minute_of_day() < 1440);
        assert_eq!(clock().len(), 5);
    }
}
