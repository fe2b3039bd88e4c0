//! What the wizard's answers become on disk: the window file (built here for a roster
//! join, patched after `ewindow-overlay redeem` for an invitation join), `authorized_keys`
//! and the devices for `[media]`.

use std::path::Path;

use ewindow_protocol::window::{self, OpenHours, PublicKey, WindowConfig};

use super::checks::short_key;
use super::{Answers, Join};

/// Where the window file is written; its absence is what starts the wizard. Also the file
/// name in validation messages about a window file built here.
pub const WINDOW_TOML: &str = ewindow_io::paths::WINDOW_FILE;

/// The window for a roster join: `[window]` with the name and open hours, then the roster
/// as it came (signature included); [`window_text`] validates it as the file it becomes.
pub(super) fn roster_window(
    name: &str,
    open_hours: OpenHours,
    path: &Path,
    text: &str,
    own_key: Option<&PublicKey>,
) -> Result<WindowConfig, String> {
    let roster = window::parse_roster(path, text).map_err(|e| e.to_string())?;
    let own_entry = own_key.and_then(|k| roster.by_key(k));
    match (roster.member(name), own_entry) {
        (None, Some(m)) => {
            return Err(format!(
                "this roster has this window's key under the name `{}`, not `{name}`: go back \
                 to step 2 and name this window {}",
                m.name, m.name
            ))
        }
        (None, None) => {
            let mut names: Vec<&str> = roster.members.iter().map(|m| m.name.as_str()).collect();
            if names.len() > 6 {
                names.truncate(6);
                names.push("…");
            }
            return Err(format!(
                "this roster has no window called `{name}` (it has {}): ask for a roster that \
                 includes this window with its key, or go back to step 2 to change the name",
                names.join(", ")
            ));
        }
        (Some(m), _) if own_key.is_some_and(|k| m.public_key != *k) => {
            return Err(format!(
                "in this roster, `{name}` has the key {} but this window's key is {}: the \
                 roster was made for another window",
                short_key(&m.public_key.to_base64()),
                short_key(&own_key.map(|k| k.to_base64()).unwrap_or_default()),
            ));
        }
        _ => {}
    }
    Ok(WindowConfig {
        name: name.to_owned(),
        listen_port: window::DEFAULT_LISTEN_PORT,
        open_hours,
        partner: None,
        presence_interval_s: window::DEFAULT_PRESENCE_INTERVAL_S,
        roster,
        media: Default::default(),
        button: Default::default(),
    })
}

/// The text of the window file for `config`, validated as the file it becomes: it parses
/// back (with `own_key` when given). The one serialization of provisioning.
pub fn window_text(config: &WindowConfig, own_key: Option<&PublicKey>) -> Result<String, String> {
    window::validated_text(Path::new(WINDOW_TOML), config, own_key).map_err(|e| e.to_string())
}

/// The devices the phone uses: its `--video-source`, `--audio-source` and `--audio-sink`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaSettings {
    /// Camera device path; `None`: no video.
    pub camera: Option<String>,
    /// Microphone device name.
    pub microphone: String,
    /// Speaker device name.
    pub speaker: String,
}

impl MediaSettings {
    /// `config` with these devices in `[media]`; the video settings (the board's profile
    /// unless set) stay as they are.
    pub fn apply(&self, config: &mut WindowConfig) {
        config.media = window::Media {
            camera: Some(self.camera.clone().unwrap_or_else(|| "none".into())),
            microphone: Some(self.microphone.clone()),
            speaker: Some(self.speaker.clone()),
            ..std::mem::take(&mut config.media)
        };
    }

    /// The `ewindow-phone` arguments that select these devices.
    pub fn phone_args(&self) -> Vec<String> {
        vec![
            "--video-source".into(),
            self.camera.clone().unwrap_or_else(|| "none".into()),
            "--audio-source".into(),
            self.microphone.clone(),
            "--audio-sink".into(),
            self.speaker.clone(),
        ]
    }
}

/// What the IO layer writes after [`Action::Finish`](super::Action::Finish).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Files {
    /// The window for a roster join (its text: [`window_text`]). `None` for an invitation
    /// join or a new network: `ewindow-overlay redeem` or `found` writes the file; then
    /// [`patch_redeemed`] puts [`Files::open_hours`] into it.
    pub window: Option<WindowConfig>,
    /// The name the user gave (for an invitation join the inviter's name for this window
    /// wins: it is in the signed roster).
    pub name: String,
    /// The open hours.
    pub open_hours: OpenHours,
    /// The `authorized_keys` text (one line and a newline), when a key was given.
    pub authorized_keys: Option<String>,
    /// The devices.
    pub media: MediaSettings,
}

/// Turns valid answers into files. `own_key` is this window's identity key, which a roster
/// join's window file must give this window's name (the IO layer reads it; `None` skips the
/// check).
pub fn answers_to_files(answers: &Answers, own_key: Option<&PublicKey>) -> Result<Files, String> {
    let window = match &answers.join {
        Join::Invitation { .. } | Join::Found => None,
        Join::Roster { path, text } => Some(roster_window(
            &answers.name,
            answers.open_hours,
            path,
            text,
            own_key,
        )?),
    };
    Ok(Files {
        window,
        name: answers.name.clone(),
        open_hours: answers.open_hours,
        authorized_keys: answers.ssh_key.as_ref().map(|k| format!("{k}\n")),
        media: MediaSettings {
            camera: answers.camera.clone(),
            microphone: answers.microphone.clone(),
            speaker: answers.speaker.clone(),
        },
    })
}

/// The window file `ewindow-overlay redeem` wrote (checked with `own_key` when given), with
/// the open hours set.
pub fn patch_redeemed(
    window_toml: &str,
    open_hours: OpenHours,
    own_key: Option<&PublicKey>,
) -> Result<WindowConfig, String> {
    let file = Path::new(WINDOW_TOML);
    let mut config = window::parse(file, window_toml, own_key).map_err(|e| e.to_string())?;
    config.open_hours = open_hours;
    Ok(config)
}
