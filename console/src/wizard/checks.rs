//! The checks of the wizard's answers, with the protocol's own parsers: each gives the
//! value, or a message for the person at the keyboard.

use std::path::Path;

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use ewindow_protocol::invite::Invitation;
use ewindow_protocol::window::{self, OpenHours, PublicKey, Roster};

use super::files::{roster_window, window_text};

/// The SSH public key types [`check_ssh_key`] accepts.
pub const SSH_KEY_TYPES: &[&str] = &[
    "ssh-ed25519",
    "ssh-rsa",
    "ecdsa-sha2-nistp256",
    "ecdsa-sha2-nistp384",
    "ecdsa-sha2-nistp521",
];

/// Checks the window's name; the trimmed name, or a message for the person typing it.
pub fn check_name(text: &str) -> Result<String, String> {
    let name = text.trim();
    if name.is_empty() {
        return Err("the name cannot be empty".into());
    }
    window::validate_name(name).map_err(|e| format!("the name {e}"))?;
    Ok(name.to_owned())
}

/// Reads an invitation code ([`Invitation::decode`], whose error text is shown as it is) and,
/// when the clock is known, refuses an expired one.
pub fn check_code(text: &str, now_unix: Option<u64>) -> Result<Invitation, String> {
    if text.trim().is_empty() {
        return Err("type the invitation code: it starts with EWIN1-".into());
    }
    let inv = Invitation::decode(text).map_err(|e| e.to_string())?;
    if let Some(now) = now_unix {
        if inv.is_expired(now) {
            return Err(format!(
                "this invitation expired on {} (this window's clock says {}): ask the \
                 inviting window for a new code",
                utc(u64::from(inv.expires_unix)),
                utc(now)
            ));
        }
    }
    Ok(inv)
}

/// Reads the open hours: `always` or `HH:MM-HH:MM` ([`OpenHours`]'s own message otherwise).
pub fn check_open_hours(text: &str) -> Result<OpenHours, String> {
    let text = text.trim().to_ascii_lowercase();
    if text.is_empty() {
        return Err(
            "the open hours cannot be empty: type always, or a range such as \
                    08:00-20:00"
                .into(),
        );
    }
    text.parse::<OpenHours>()
        .map_err(|e| format!("open hours {e}"))
}

/// Checks an optional OpenSSH public key line (`TYPE BASE64 [COMMENT]`, as in a `.pub` file):
/// `None` when empty; else the line with single spaces, when the type is one of
/// [`SSH_KEY_TYPES`] and the base64 decodes to a key blob of that type.
pub fn check_ssh_key(text: &str) -> Result<Option<String>, String> {
    let words: Vec<&str> = text.split_whitespace().collect();
    let Some(&kind) = words.first() else {
        return Ok(None);
    };
    if text.contains("PRIVATE KEY") {
        return Err(
            "this is a private key: paste the public key (the .pub file) instead, \
                    and keep the private key secret"
                .into(),
        );
    }
    if !SSH_KEY_TYPES.contains(&kind) {
        let shown: String = kind.chars().take(24).collect();
        return Err(format!(
            "`{shown}` is not an SSH public key type: the line starts with ssh-ed25519, \
             ssh-rsa or ecdsa-sha2-nistp256, as in ~/.ssh/id_ed25519.pub"
        ));
    }
    let Some(&blob) = words.get(1) else {
        return Err(format!(
            "the key itself is missing: after {kind} comes a long base64 text (copy the whole \
             line of the .pub file)"
        ));
    };
    let Ok(bytes) = BASE64.decode(blob) else {
        return Err(
            "the key is not valid base64: a character is missing, extra or mistyped \
                    (copy the whole line of the .pub file)"
                .into(),
        );
    };
    // The blob is SSH wire format: a string naming the type, then the key's parts.
    let damaged = |why: &str| Err(format!("the key is damaged: {why}"));
    let Some((inner, rest)) = ssh_string(&bytes) else {
        return damaged("it is too short");
    };
    if inner != kind.as_bytes() {
        let inner: String = String::from_utf8_lossy(inner).chars().take(24).collect();
        return damaged(&format!("it says {inner:?} inside but {kind} in front"));
    }
    if kind == "ssh-ed25519" {
        match ssh_string(rest) {
            Some((key, [])) if key.len() == 32 => {}
            _ => return damaged("an ssh-ed25519 key holds 32 bytes"),
        }
    } else if rest.is_empty() {
        return damaged("it holds only its type");
    }
    let mut line = format!("{kind} {blob}");
    for word in &words[2..] {
        line.push(' ');
        line.push_str(word);
    }
    Ok(Some(line))
}

/// An SSH wire-format string (u32 length, bytes) and what follows it.
fn ssh_string(bytes: &[u8]) -> Option<(&[u8], &[u8])> {
    let len = u32::from_be_bytes(bytes.get(..4)?.try_into().ok()?);
    let len = usize::try_from(len).ok()?;
    let rest = &bytes[4..];
    (len <= rest.len()).then(|| rest.split_at(len))
}

/// Checks a roster file's text for a window called `name` (with `own_key` when given) and
/// returns the roster. The text's errors name the file, line and key.
pub fn check_roster(
    path: &Path,
    text: &str,
    name: &str,
    own_key: Option<&PublicKey>,
) -> Result<Roster, String> {
    window_text(
        &roster_window(name, OpenHours::Always, path, text, own_key)?,
        own_key,
    )?;
    window::parse_roster(path, text).map_err(|e| e.to_string())
}

/// `2026-01-01 00:00 UTC`.
pub(super) fn utc(unix: u64) -> String {
    let days = unix / 86_400;
    let secs = unix % 86_400;
    // Howard Hinnant's civil_from_days, for days since 1970-01-01 (never negative here).
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02} UTC",
        secs / 3600,
        secs % 3600 / 60
    )
}

/// The first and last characters of a key, for messages.
pub(super) fn short_key(key: &str) -> String {
    let chars: Vec<char> = key.chars().collect();
    if chars.len() <= 12 {
        return key.to_owned();
    }
    let head: String = chars[..6].iter().collect();
    let tail: String = chars[chars.len() - 4..].iter().collect();
    format!("{head}…{tail}")
}
