//! Pure: what the window's button means. Key edges from any number of input devices go in,
//! with the time in milliseconds; a short press ([`Action::Next`]) or a long press
//! ([`Action::Curtain`]) comes out. No IO, no clock: `input.rs` feeds it and sleeps until
//! [`Button::next_deadline`].
//!
//! Rules:
//! - **Debounce:** a device's contact counts as changed once it has held its new state for
//!   `debounce_ms`, and the change dates from when it happened. Bounces shorter than that
//!   are never edges; a press shorter than that is no press.
//! - **One button:** the button is down while any device holds it down; a press starts when
//!   the first device goes down and ends when the last one goes up.
//! - **Long press:** held `long_press_ms` → `Curtain`, at that moment, without waiting for the
//!   release (the curtain moves while the finger is still on the button); the release then
//!   does nothing. Released earlier → `Next`, once the release is settled (a release just
//!   before the long press is waited for, so the long press never fires for a short press).
//! - **A device that goes away** (unplugged, mid-press or not) takes its contact with it: a
//!   press it alone held ends with no action — a pulled cable is not a press.
//! - Key repeats (evdev value 2) are not edges: the caller does not pass them.
//!
//! Invariant: every press yields at most one action.

use std::collections::BTreeMap;

/// What a press means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// A short press: the next online window.
    Next,
    /// A long press: the curtain closes (or opens).
    Curtain,
}

/// One device's contact.
#[derive(Debug, Clone, Copy)]
struct Contact {
    /// What the device last said, and since when.
    raw: bool,
    raw_since: u64,
    /// What counts.
    stable: bool,
}

/// The press in progress.
#[derive(Debug, Clone, Copy)]
struct Press {
    since: u64,
    long_done: bool,
}

/// The button's state; see the module doc.
#[derive(Debug)]
pub struct Button {
    long_press_ms: u64,
    debounce_ms: u64,
    contacts: BTreeMap<u32, Contact>,
    press: Option<Press>,
}

impl Button {
    pub fn new(long_press_ms: u32, debounce_ms: u32) -> Button {
        Button {
            long_press_ms: long_press_ms.into(),
            debounce_ms: debounce_ms.into(),
            contacts: BTreeMap::new(),
            press: None,
        }
    }

    /// Device `device` says its key is `down` (or up) at `now`.
    pub fn key(&mut self, now: u64, device: u32, down: bool) -> Option<Action> {
        // Settle what was pending before this edge: it is dated before it.
        let before = self.tick(now);
        let c = self.contacts.entry(device).or_insert(Contact {
            raw: false,
            raw_since: now,
            stable: false,
        });
        if c.raw != down {
            c.raw = down;
            c.raw_since = now;
        }
        before.or_else(|| self.tick(now))
    }

    /// Device `device` is gone.
    pub fn gone(&mut self, now: u64, device: u32) -> Option<Action> {
        let before = self.tick(now);
        self.contacts.remove(&device);
        if !self.any_down() {
            // the press ends with the device that held it: no action
            self.press = None;
        }
        before
    }

    /// Time passed; call at [`Button::next_deadline`].
    pub fn tick(&mut self, now: u64) -> Option<Action> {
        let mut action = None;
        // Contacts that held still long enough count now, in the order they changed.
        let mut settled: Vec<(u64, u32)> = self
            .contacts
            .iter()
            .filter(|(_, c)| c.raw != c.stable && now >= c.raw_since + self.debounce_ms)
            .map(|(d, c)| (c.raw_since, *d))
            .collect();
        settled.sort_unstable();
        for (at, d) in settled {
            let was_down = self.any_down();
            if let Some(c) = self.contacts.get_mut(&d) {
                c.stable = c.raw;
            }
            let down = self.any_down();
            if !was_down && down {
                self.press = Some(Press {
                    since: at,
                    long_done: false,
                });
            } else if was_down && !down {
                if let Some(p) = self.press.take() {
                    if !p.long_done {
                        action = action.or(Some(if at >= p.since + self.long_press_ms {
                            Action::Curtain
                        } else {
                            Action::Next
                        }));
                    }
                }
            }
        }
        // A contact still settling may be the release that ends the press short: wait for it.
        let settling = self.contacts.values().any(|c| c.raw != c.stable);
        if let Some(p) = &mut self.press {
            if !p.long_done && !settling && now >= p.since + self.long_press_ms {
                p.long_done = true;
                action = action.or(Some(Action::Curtain));
            }
        }
        action
    }

    /// When [`Button::tick`] has something to decide, if ever.
    pub fn next_deadline(&self) -> Option<u64> {
        let settle = self
            .contacts
            .values()
            .filter(|c| c.raw != c.stable)
            .map(|c| c.raw_since + self.debounce_ms);
        let long = self
            .press
            .filter(|p| !p.long_done)
            .map(|p| p.since + self.long_press_ms);
        // while a contact settles, its deadline comes first (see `tick`)
        settle.min().or(long)
    }

    fn any_down(&self) -> bool {
        self.contacts.values().any(|c| c.stable)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LONG: u32 = 1500;
    const DEBOUNCE: u32 = 30;

    /// Plays `edges` (time, device, down, or `None` for the device going away) and ticks at
    /// every deadline until `end`; every action with its time.
    fn play(edges: &[(u64, u32, Option<bool>)], end: u64) -> Vec<(u64, Action)> {
        let mut b = Button::new(LONG, DEBOUNCE);
        let mut out = Vec::new();
        let mut edges = edges.to_vec();
        edges.sort_by_key(|e| e.0);
        let mut i = 0;
        loop {
            let next_edge = edges.get(i).map(|e| e.0);
            let deadline = b.next_deadline();
            let t = match (next_edge, deadline) {
                (Some(e), Some(d)) if d < e => d,
                (Some(e), _) => e,
                (None, Some(d)) if d <= end => d,
                _ => break,
            };
            if next_edge == Some(t) && deadline.is_none_or(|d| d >= t) {
                let (t, dev, what) = edges[i];
                i += 1;
                let a = match what {
                    Some(down) => b.key(t, dev, down),
                    None => b.gone(t, dev),
                };
                out.extend(a.map(|a| (t, a)));
            } else {
                out.extend(b.tick(t).map(|a| (t, a)));
            }
            assert!(out.len() < 100, "runaway");
        }
        out
    }

    #[test]
    fn every_press_length_on_a_10_ms_grid_means_one_thing() {
        for held in (0..4000u64).step_by(10) {
            let got = play(
                &[(1000, 0, Some(true)), (1000 + held, 0, Some(false))],
                9000,
            );
            let want: Vec<(u64, Action)> = if held < DEBOUNCE as u64 {
                vec![]
            } else if held < LONG as u64 {
                vec![(1000 + held + DEBOUNCE as u64, Action::Next)]
            } else {
                vec![(1000 + LONG as u64, Action::Curtain)]
            };
            assert_eq!(got, want, "held {held} ms");
        }
    }

    #[test]
    fn every_bounce_pattern_at_press_and_release_is_one_clean_press() {
        // Eight toggles 3 ms apart after the first contact (within the debounce): all 256
        // patterns, at the press and at the release, short and long.
        for pattern in 0u32..256 {
            for held in [400u64, 2000] {
                let mut edges = vec![(1000, 0, Some(true))];
                let mut state = true;
                for k in 0..8u64 {
                    if pattern & (1 << k) != 0 {
                        state = !state;
                        edges.push((1000 + 3 * (k + 1), 0, Some(state)));
                    }
                }
                if !state {
                    edges.push((1000 + 27, 0, Some(true)));
                }
                let release = 1000 + held;
                edges.push((release, 0, Some(false)));
                let mut down = false;
                for k in 0..8u64 {
                    if pattern & (1 << k) != 0 {
                        down = !down;
                        edges.push((release + 3 * (k + 1), 0, Some(down)));
                    }
                }
                if down {
                    edges.push((release + 27, 0, Some(false)));
                }
                let got = play(&edges, release + 5000);
                let kinds: Vec<Action> = got.iter().map(|g| g.1).collect();
                let want = if held < LONG as u64 {
                    Action::Next
                } else {
                    Action::Curtain
                };
                assert_eq!(kinds, vec![want], "pattern {pattern:08b}, held {held}");
            }
        }
    }

    #[test]
    fn repeats_and_same_state_edges_change_nothing() {
        let got = play(
            &[
                (0, 0, Some(true)),
                (100, 0, Some(true)),
                (200, 0, Some(true)),
                (300, 0, Some(false)),
                (400, 0, Some(false)),
            ],
            5000,
        );
        assert_eq!(got, vec![(330, Action::Next)]);
    }

    #[test]
    fn two_devices_make_one_button() {
        // overlapping presses on two devices: one press from the first down to the last up
        let got = play(
            &[
                (0, 1, Some(true)),
                (200, 2, Some(true)),
                (500, 1, Some(false)),
                (900, 2, Some(false)),
            ],
            5000,
        );
        assert_eq!(got, vec![(930, Action::Next)]);
        // held together past the long press: one curtain, nothing at the releases
        let got = play(
            &[
                (0, 1, Some(true)),
                (1000, 2, Some(true)),
                (1200, 1, Some(false)),
                (2500, 2, Some(false)),
            ],
            5000,
        );
        assert_eq!(got, vec![(1500, Action::Curtain)]);
        // one after the other: two presses
        let got = play(
            &[
                (0, 1, Some(true)),
                (100, 1, Some(false)),
                (500, 2, Some(true)),
                (600, 2, Some(false)),
            ],
            5000,
        );
        assert_eq!(got, vec![(130, Action::Next), (630, Action::Next)]);
    }

    #[test]
    fn a_device_that_goes_away_mid_press_presses_nothing() {
        for gone_at in (0..1500u64).step_by(50) {
            let got = play(&[(0, 7, Some(true)), (gone_at, 7, None)], 5000);
            assert_eq!(got, vec![], "gone at {gone_at}");
        }
        // after the long press fired, going away adds nothing
        let got = play(&[(0, 7, Some(true)), (2000, 7, None)], 5000);
        assert_eq!(got, vec![(1500, Action::Curtain)]);
        // another device still holding keeps the press
        let got = play(
            &[
                (0, 1, Some(true)),
                (10, 2, Some(true)),
                (300, 1, None),
                (600, 2, Some(false)),
            ],
            5000,
        );
        assert_eq!(got, vec![(630, Action::Next)]);
        // a device that comes back starts afresh
        let got = play(
            &[(0, 1, Some(true)), (300, 1, None), (400, 1, Some(false))],
            5000,
        );
        assert_eq!(got, vec![]);
    }

    #[test]
    fn a_late_tick_still_dates_the_release() {
        // released at 1400 (short), but nothing ticks until 1700: still Next, not Curtain
        let mut b = Button::new(LONG, DEBOUNCE);
        assert_eq!(b.key(0, 0, true), None);
        assert_eq!(b.tick(30), None);
        assert_eq!(b.key(1400, 0, false), None);
        assert_eq!(b.tick(1700), Some(Action::Next));
        assert_eq!(b.next_deadline(), None);
        assert_eq!(b.tick(99_999), None);
    }
}
