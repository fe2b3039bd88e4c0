//! `[button]` of `window.toml`: the window's one button — a GPIO push button on a Pi (the
//! image describes it to the kernel as a `gpio-keys` device), a USB button, a foot switch, or a
//! key of a keyboard. A short press moves the window to the next online window; a long press
//! closes or opens the curtain.
//!
//! ```toml
//! [button]
//! key = "KEY_SPACE"        # a Linux key name (KEY_*, BTN_*), or "none": no button
//! devices = []             # input devices: a path (/dev/input/event3) or part of a name;
//!                          # empty: every input device that has the key
//! long_press_ms = 1500     # held this long: the curtain
//! debounce_ms = 30         # a contact must hold still this long to count
//! ```
//!
//! Every key is optional; without the table a window has the button above, the one the Pi
//! image's GPIO button sends ([`DEFAULT_KEY`], [`DEFAULT_KEY_CODE`]).

use std::ops::Range;

use serde::{Deserialize, Serialize};
use toml::Spanned;

use crate::config::ConfigError;

/// The key a window's button sends unless `[button] key` says otherwise, by its Linux name …
pub const DEFAULT_KEY: &str = "KEY_SPACE";
/// … and by its code (`linux/input-event-codes.h`), as the Pi image's `gpio-keys` node has it.
pub const DEFAULT_KEY_CODE: u32 = 57;
/// A press held this long is a long press (the curtain).
pub const DEFAULT_LONG_PRESS_MS: u32 = 1500;
/// A contact that changes must hold still this long to count.
pub const DEFAULT_DEBOUNCE_MS: u32 = 30;
/// The range `long_press_ms` takes.
pub const LONG_PRESS_MS: Range<u32> = 300..10_001;
/// The range `debounce_ms` takes.
pub const DEBOUNCE_MS: Range<u32> = 0..201;

/// A validated `[button]` table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Button {
    /// The Linux name of the key (`KEY_SPACE`, `BTN_0`, …), or `none` for no button.
    pub key: String,
    /// The input devices it is read from: a `/dev/...` path, or part of the device's name;
    /// empty: every input device that has the key.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub devices: Vec<String>,
    /// Milliseconds a press is held to be a long press.
    pub long_press_ms: u32,
    /// Milliseconds a contact must hold still to count.
    pub debounce_ms: u32,
}

impl Default for Button {
    fn default() -> Self {
        Button {
            key: DEFAULT_KEY.into(),
            devices: Vec::new(),
            long_press_ms: DEFAULT_LONG_PRESS_MS,
            debounce_ms: DEFAULT_DEBOUNCE_MS,
        }
    }
}

impl Button {
    /// The key's name, or `None` when the window has no button (`key = "none"`).
    pub fn key(&self) -> Option<&str> {
        (self.key != "none").then_some(self.key.as_str())
    }

    /// Whether the device at `path` named `name` is one the button is read from.
    pub fn reads(&self, path: &str, name: &str) -> bool {
        self.devices.is_empty()
            || self.devices.iter().any(|d| {
                if d.starts_with('/') {
                    d == path
                } else {
                    name.contains(d.as_str())
                }
            })
    }
}

/// `[button]` as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawButton {
    key: Option<Spanned<String>>,
    devices: Option<Vec<Spanned<String>>>,
    long_press_ms: Option<Spanned<i64>>,
    debounce_ms: Option<Spanned<i64>>,
}

/// Checks `[button]`; `invalid(span, key, message)` makes the error (file, line, key).
pub(crate) fn validate(
    raw: Option<RawButton>,
    invalid: impl Fn(Range<usize>, String, String) -> ConfigError,
) -> Result<Button, ConfigError> {
    let Some(raw) = raw else {
        return Ok(Button::default());
    };
    let mut b = Button::default();
    if let Some(k) = raw.key {
        let (span, k) = (k.span(), k.into_inner());
        if k != "none" && !is_key_name(&k) {
            return Err(invalid(
                span,
                "button.key".into(),
                format!(
                    "`{k}` is not a Linux key name: e.g. \"KEY_SPACE\", \"KEY_ENTER\", \"BTN_0\" (linux/input-event-codes.h), or \"none\""
                ),
            ));
        }
        b.key = k;
    }
    for (i, d) in raw.devices.unwrap_or_default().into_iter().enumerate() {
        let (span, d) = (d.span(), d.into_inner());
        let bad = if d.trim().is_empty() {
            Some("is empty: name a device path (/dev/input/event3) or part of its name")
        } else if d.starts_with('/') && !d.starts_with("/dev/") {
            Some("is a path outside /dev: input devices are /dev/input/eventN")
        } else if d.len() > 256 || d.chars().any(char::is_control) {
            Some("is not a device path or name")
        } else {
            None
        };
        if let Some(why) = bad {
            return Err(invalid(
                span,
                format!("button.devices[{i}]"),
                format!("{d:?} {why}"),
            ));
        }
        b.devices.push(d);
    }
    let ranged = |v: Option<Spanned<i64>>,
                  key: &str,
                  range: Range<u32>,
                  default: u32|
     -> Result<u32, ConfigError> {
        let Some(v) = v else { return Ok(default) };
        match u32::try_from(*v.get_ref()) {
            Ok(n) if range.contains(&n) => Ok(n),
            _ => Err(invalid(
                v.span(),
                format!("button.{key}"),
                format!(
                    "{} is out of range: expected milliseconds from {} to {}",
                    v.get_ref(),
                    range.start,
                    range.end - 1
                ),
            )),
        }
    };
    let long_span = raw.long_press_ms.as_ref().map(|v| v.span());
    b.long_press_ms = ranged(
        raw.long_press_ms,
        "long_press_ms",
        LONG_PRESS_MS,
        DEFAULT_LONG_PRESS_MS,
    )?;
    b.debounce_ms = ranged(
        raw.debounce_ms,
        "debounce_ms",
        DEBOUNCE_MS,
        DEFAULT_DEBOUNCE_MS,
    )?;
    if b.debounce_ms * 2 >= b.long_press_ms {
        return Err(invalid(
            long_span.unwrap_or(0..0),
            "button.long_press_ms".into(),
            format!(
                "{} ms is too short beside debounce_ms = {}: a long press lasts more than twice the debounce",
                b.long_press_ms, b.debounce_ms
            ),
        ));
    }
    Ok(b)
}

/// `KEY_…` or `BTN_…`, upper case letters, digits and `_`.
fn is_key_name(k: &str) -> bool {
    (k.starts_with("KEY_") || k.starts_with("BTN_"))
        && k.len() > 4
        && k.len() <= 32
        && k.bytes()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn devices_match_by_path_or_part_of_the_name() {
        let any = Button::default();
        assert!(any.reads("/dev/input/event0", "AT Translated Set 2 keyboard"));
        let b = Button {
            devices: vec!["/dev/input/event3".into(), "ewindow-button".into()],
            ..Button::default()
        };
        assert!(b.reads("/dev/input/event3", "QEMU USB Keyboard"));
        assert!(!b.reads("/dev/input/event30", "QEMU USB Keyboard"));
        assert!(b.reads("/dev/input/event1", "ewindow-button"));
        assert!(!b.reads("/dev/input/event1", "USB Foot Switch"));
        assert_eq!(Button::default().key(), Some(DEFAULT_KEY));
        let none = Button {
            key: "none".into(),
            ..Button::default()
        };
        assert_eq!(none.key(), None);
    }

    #[test]
    fn key_names() {
        for good in ["KEY_SPACE", "KEY_F13", "BTN_0", "KEY_PLAYPAUSE"] {
            assert!(is_key_name(good), "{good}");
        }
        for bad in ["space", "KEY_", "KEY_space", "BTN", "KEY_A B", "", "KEY_Ä"] {
            assert!(!is_key_name(bad), "{bad}");
        }
    }
}
