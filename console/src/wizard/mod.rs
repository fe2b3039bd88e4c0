//! The first-boot wizard: what the console shows on tty1 while `/data/ewindow/window.toml`
//! does not exist, for a member setting up a new window with a USB keyboard.
//!
//! Pure logic and drawing, no IO: the console's IO layer feeds [`Input`]s (keys, the devices
//! it found, roster files on USB sticks, microphone levels, camera probe results, the clock,
//! the outcome of joining) to [`Wizard::handle`], carries out the [`Action`]s it returns, and
//! draws the model with [`render`]. [`Action::Finish`] is returned only with answers that
//! are all valid ([`Wizard::answers`] checks every one again at that moment);
//! [`answers_to_files`] turns them into what the IO layer writes.
//!
//! The steps, one screen each:
//!
//! ```text
//!  1 Welcome          what happens; this window's public key (and a QR code of it)
//!  2 Name             window::validate_name
//!  3 How to join      (1) invitation code, or (2) roster file from a USB stick
//!  4 Invitation code  Invitation::decode, expiry against the clock      ─┐ one of the two
//!  4 Roster file      window::parse_roster, and this window in it       ─┘
//!  5 Open hours       "always" or "HH:MM-HH:MM"
//!  6 Camera           a device or none; ProbeCamera → "test picture: N fps"
//!  7 Microphone       StartLevel/StopLevel; a level meter from Input::Level
//!  8 Speaker          t → PlayTone
//!  9 SSH key          optional OpenSSH public key line
//! 10 Summary          Enter → Finish, Esc → back
//! 11 Joining          "joining the network…", then success or the error (Enter retries)
//! ```
//!
//! Keys: typing, Backspace/Delete, Left/Right/Home/End and Ctrl-U (clear) in text fields;
//! pasted text ([`Input::Paste`]) is inserted as typed; Up/Down choose in lists; Enter goes
//! on when the answer is valid, else shows why in red; Esc goes back, keeping the answers.
//!
//! **Invariant:** no `Debug` of this module prints an invitation code (its secret lets anyone
//! join in this window's place): [`Join`] and [`Input`] redact it, and [`Wizard`] has no
//! `Debug`.
//!
//! Here: the state machine. `checks.rs`: the checks of the answers (name, invitation code,
//! roster, open hours, SSH key); `files.rs`: what the answers become on disk; `draw.rs`: the
//! screens; `tests.rs`: the tests, with the snapshots in `src/snapshots/`.

use std::fmt;
use std::path::PathBuf;

use ewindow_protocol::window::{self, OpenHours, PublicKey, Roster};
use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers};

mod checks;
mod draw;
mod files;
#[cfg(test)]
mod tests;

pub use checks::{
    check_code, check_name, check_open_hours, check_roster, check_ssh_key, SSH_KEY_TYPES,
};
pub use draw::render;
pub use files::{answers_to_files, patch_redeemed, window_text, Files, MediaSettings, WINDOW_TOML};

use files::roster_window;

/// How many steps the title counts ("step k of 11").
pub const STEPS: usize = 11;

/// The longest text a field takes, in characters (an RSA-4096 key line is about 750).
const MAX_FIELD_CHARS: usize = 8192;

/// A key press, independent of the terminal library (see [`Key::from_crossterm`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Key {
    /// A printable character.
    Char(char),
    /// Delete the character before the cursor.
    Backspace,
    /// Delete the character under the cursor.
    Delete,
    /// Go on.
    Enter,
    /// Go back.
    Esc,
    /// Previous item of a list.
    Up,
    /// Next item of a list.
    Down,
    /// Cursor left in a text field.
    Left,
    /// Cursor right in a text field.
    Right,
    /// Cursor to the start of a text field.
    Home,
    /// Cursor to the end of a text field.
    End,
    /// Tab (unused).
    Tab,
    /// Shift-Tab (unused).
    BackTab,
    /// Empty the text field (Ctrl-U).
    ClearField,
}

impl Key {
    /// The key of a crossterm key event (ratatui's re-export); `None` for releases and for
    /// keys the wizard does not use. Ctrl-U is [`Key::ClearField`].
    pub fn from_crossterm(event: &KeyEvent) -> Option<Key> {
        if event.kind == KeyEventKind::Release {
            return None;
        }
        let ctrl_or_alt = event
            .modifiers
            .intersects(KeyModifiers::CONTROL | KeyModifiers::ALT);
        Some(match event.code {
            KeyCode::Char('u') if event.modifiers.contains(KeyModifiers::CONTROL) => {
                Key::ClearField
            }
            KeyCode::Char(_) if ctrl_or_alt => return None,
            KeyCode::Char(c) => Key::Char(c),
            KeyCode::Backspace => Key::Backspace,
            KeyCode::Delete => Key::Delete,
            KeyCode::Enter => Key::Enter,
            KeyCode::Esc => Key::Esc,
            KeyCode::Up => Key::Up,
            KeyCode::Down => Key::Down,
            KeyCode::Left => Key::Left,
            KeyCode::Right => Key::Right,
            KeyCode::Home => Key::Home,
            KeyCode::End => Key::End,
            KeyCode::Tab => Key::Tab,
            KeyCode::BackTab => Key::BackTab,
            _ => return None,
        })
    }
}

/// A camera, microphone or speaker the IO layer found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Device {
    /// What the phone is given: `/dev/video0`, or an ALSA/PulseAudio device name.
    pub path: String,
    /// What a person reads: "USB Camera", "Jabra Speak 410".
    pub name: String,
}

/// What the IO layer tells the wizard.
#[derive(Clone)]
pub enum Input {
    /// A key press.
    Key(Key),
    /// Text pasted at once (a terminal's bracketed paste); inserted into the text field as if
    /// typed, line breaks and tabs as spaces.
    Paste(String),
    /// The devices found now (sent again whenever they change: hot-plug).
    Devices {
        /// Video capture devices.
        cameras: Vec<Device>,
        /// Audio capture devices.
        microphones: Vec<Device>,
        /// Audio playback devices.
        speakers: Vec<Device>,
    },
    /// The candidate roster files on mounted USB sticks, with their text (sent again when
    /// sticks come and go).
    UsbRosters(Vec<(PathBuf, String)>),
    /// The chosen microphone's level now, in dBFS (after [`Action::StartLevel`]).
    Level(f32),
    /// The result of [`Action::ProbeCamera`]: frames per second of the test picture (0: none).
    CameraProbe {
        /// Frames per second measured.
        fps: f64,
    },
    /// The outcome of joining after [`Action::Finish`]: a line to show, or the error.
    Outcome(Result<String, String>),
    /// The time now, unix seconds (for the invitation's expiry).
    Now(u64),
}

impl fmt::Debug for Input {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Input::Key(k) => f.debug_tuple("Key").field(k).finish(),
            // Pasted text may be an invitation code: never printed.
            Input::Paste(s) => write!(f, "Paste({} chars)", s.chars().count()),
            Input::Devices {
                cameras,
                microphones,
                speakers,
            } => f
                .debug_struct("Devices")
                .field("cameras", cameras)
                .field("microphones", microphones)
                .field("speakers", speakers)
                .finish(),
            Input::UsbRosters(r) => {
                let paths: Vec<&PathBuf> = r.iter().map(|(p, _)| p).collect();
                f.debug_tuple("UsbRosters").field(&paths).finish()
            }
            Input::Level(db) => f.debug_tuple("Level").field(db).finish(),
            Input::CameraProbe { fps } => f.debug_struct("CameraProbe").field("fps", fps).finish(),
            Input::Outcome(r) => f.debug_tuple("Outcome").field(r).finish(),
            Input::Now(t) => f.debug_tuple("Now").field(t).finish(),
        }
    }
}

/// What the wizard asks the IO layer to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Open this camera briefly and report [`Input::CameraProbe`].
    ProbeCamera(String),
    /// Measure this microphone and send [`Input::Level`] several times a second, until
    /// [`Action::StopLevel`] or another `StartLevel`.
    StartLevel(String),
    /// Stop measuring the microphone.
    StopLevel,
    /// Play a short test tone on this speaker.
    PlayTone(String),
    /// Set the window up with these answers (all valid) and report [`Input::Outcome`].
    Finish(Answers),
}

/// How the window joins the network.
#[derive(Clone, PartialEq, Eq)]
pub enum Join {
    /// Redeem this invitation code (`ewindow-overlay redeem CODE`); the canonical `EWIN1-…`
    /// form, valid and unexpired when the wizard finished.
    Invitation {
        /// The code. Holds the invitation's secret: never logged.
        code: String,
    },
    /// Start a new network: this window its first member (`ewindow-overlay found NAME`).
    Found,
    /// Use this roster file, read from a USB stick.
    Roster {
        /// Where it was found.
        path: PathBuf,
        /// Its text, as read (signature included).
        text: String,
    },
}

impl fmt::Debug for Join {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Join::Invitation { .. } => f.write_str("Invitation { code: .. }"),
            Join::Found => f.write_str("Found"),
            Join::Roster { path, .. } => f
                .debug_struct("Roster")
                .field("path", path)
                .finish_non_exhaustive(),
        }
    }
}

/// Everything the wizard asked, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answers {
    /// This window's member name ([`window::validate_name`]).
    pub name: String,
    /// How it joins.
    pub join: Join,
    /// When it takes calls.
    pub open_hours: OpenHours,
    /// The camera's device path; `None`: no camera (audio only).
    pub camera: Option<String>,
    /// The microphone's device name.
    pub microphone: String,
    /// The speaker's device name.
    pub speaker: String,
    /// One OpenSSH public key line for `authorized_keys`, normalized; `None`: skipped.
    pub ssh_key: Option<String>,
}

/// The screens of the wizard, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// What happens; the window's public key.
    Welcome,
    /// The window's name.
    Name,
    /// Invitation code, roster file, or a new network.
    JoinMethod,
    /// Typing the invitation code.
    InvitationCode,
    /// Choosing a roster file from a USB stick.
    RosterFile,
    /// When the window takes calls.
    OpenHours,
    /// Which camera.
    Camera,
    /// Which microphone.
    Microphone,
    /// Which speaker.
    Speaker,
    /// An optional SSH key.
    SshKey,
    /// All answers, to confirm.
    Summary,
    /// Joining, and its outcome.
    Joining,
}

impl Step {
    /// The step's number in "step k of [`STEPS`]" (both ways to join are step 4).
    pub fn number(self) -> usize {
        match self {
            Step::Welcome => 1,
            Step::Name => 2,
            Step::JoinMethod => 3,
            Step::InvitationCode | Step::RosterFile => 4,
            Step::OpenHours => 5,
            Step::Camera => 6,
            Step::Microphone => 7,
            Step::Speaker => 8,
            Step::SshKey => 9,
            Step::Summary => 10,
            Step::Joining => 11,
        }
    }

    /// The step's heading.
    pub fn title(self) -> &'static str {
        match self {
            Step::Welcome => "Welcome",
            Step::Name => "Name",
            Step::JoinMethod => "How to join",
            Step::InvitationCode => "Invitation code",
            Step::RosterFile => "Roster file",
            Step::OpenHours => "Open hours",
            Step::Camera => "Camera",
            Step::Microphone => "Microphone",
            Step::Speaker => "Speaker",
            Step::SshKey => "SSH key",
            Step::Summary => "Summary",
            Step::Joining => "Joining",
        }
    }
}

/// Which way to join the user chose.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JoinMethod {
    /// Type an invitation code.
    Invitation,
    /// Read a roster file from a USB stick.
    Roster,
    /// Start a new network (the first window of a group).
    Found,
}

/// The last screen's state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JoinState {
    /// [`Action::Finish`] was sent; waiting for [`Input::Outcome`].
    Working,
    /// It failed; Enter tries again, Esc goes back to the summary.
    Failed(String),
    /// It worked.
    Joined(String),
}

/// A one-line text field: the text and the cursor, in characters.
#[derive(Clone, Default)]
struct TextField {
    text: String,
    cursor: usize,
}

impl TextField {
    fn with(text: &str) -> TextField {
        TextField {
            text: text.to_owned(),
            cursor: text.chars().count(),
        }
    }

    fn len(&self) -> usize {
        self.text.chars().count()
    }

    fn byte_at(&self, chars: usize) -> usize {
        self.text
            .char_indices()
            .nth(chars)
            .map_or(self.text.len(), |(b, _)| b)
    }

    fn insert(&mut self, c: char) -> bool {
        let c = if c.is_whitespace() { ' ' } else { c };
        if c.is_control() || self.len() >= MAX_FIELD_CHARS {
            return false;
        }
        let at = self.byte_at(self.cursor);
        self.text.insert(at, c);
        self.cursor += 1;
        true
    }

    /// Applies an editing key; true when the text changed.
    fn edit(&mut self, key: Key) -> bool {
        match key {
            Key::Char(c) => self.insert(c),
            Key::Backspace if self.cursor > 0 => {
                self.cursor -= 1;
                let at = self.byte_at(self.cursor);
                self.text.remove(at);
                true
            }
            Key::Delete if self.cursor < self.len() => {
                let at = self.byte_at(self.cursor);
                self.text.remove(at);
                true
            }
            Key::ClearField if !self.text.is_empty() => {
                self.text.clear();
                self.cursor = 0;
                true
            }
            Key::Left => {
                self.cursor = self.cursor.saturating_sub(1);
                false
            }
            Key::Right => {
                self.cursor = (self.cursor + 1).min(self.len());
                false
            }
            Key::Home => {
                self.cursor = 0;
                false
            }
            Key::End => {
                self.cursor = self.len();
                false
            }
            _ => false,
        }
    }

    /// The part that fits in `width` columns with the cursor visible (at the end: the end of
    /// the text), `…` where text is hidden, and the cursor's column.
    fn visible(&self, width: usize) -> (String, usize) {
        if width == 0 {
            return (String::new(), 0);
        }
        let chars: Vec<char> = self.text.chars().collect();
        let start = (self.cursor + 1).saturating_sub(width);
        let end = (start + width).min(chars.len());
        let mut shown: Vec<char> = chars[start..end].to_vec();
        if start > 0 {
            if let Some(first) = shown.first_mut() {
                *first = '…';
            }
        }
        if end < chars.len() {
            if let Some(last) = shown.last_mut() {
                *last = '…';
            }
        }
        (shown.into_iter().collect(), self.cursor - start)
    }
}

/// A roster file found on a USB stick, parsed once on arrival.
struct RosterFile {
    path: PathBuf,
    text: String,
    parsed: Result<Roster, String>,
}

/// The wizard's state. Create with [`Wizard::new`], feed with [`Wizard::handle`], draw with
/// [`render`].
pub struct Wizard {
    /// QR code of the public key, one string per terminal row (made by another module);
    /// drawn on the welcome screen when present and when it fits whole.
    pub qr: Option<Vec<String>>,
    public_key: String,
    step: Step,
    message: Option<String>,
    now_unix: Option<u64>,
    name: TextField,
    method: JoinMethod,
    code: TextField,
    rosters: Vec<RosterFile>,
    rosters_seen: bool,
    roster_sel: usize,
    hours: TextField,
    devices_seen: bool,
    cameras: Vec<Device>,
    /// `cameras.len()` is "no camera".
    camera_sel: usize,
    fps: Option<f64>,
    microphones: Vec<Device>,
    microphone_sel: usize,
    level: Option<f32>,
    speakers: Vec<Device>,
    speaker_sel: usize,
    tone_played: bool,
    ssh: TextField,
    joining: JoinState,
}

impl Wizard {
    /// A wizard on its welcome screen; `public_key` is this window's WireGuard public key
    /// (base64), shown to the user and checked against a roster file.
    pub fn new(public_key: String) -> Wizard {
        Wizard {
            qr: None,
            public_key,
            step: Step::Welcome,
            message: None,
            now_unix: None,
            name: TextField::default(),
            method: JoinMethod::Invitation,
            code: TextField::default(),
            rosters: Vec::new(),
            rosters_seen: false,
            roster_sel: 0,
            hours: TextField::with("always"),
            devices_seen: false,
            cameras: Vec::new(),
            camera_sel: 0,
            fps: None,
            microphones: Vec::new(),
            microphone_sel: 0,
            level: None,
            speakers: Vec::new(),
            speaker_sel: 0,
            tone_played: false,
            ssh: TextField::default(),
            joining: JoinState::Working,
        }
    }

    /// The screen shown now.
    pub fn step(&self) -> Step {
        self.step
    }

    /// The validation message shown now, if any.
    pub fn message(&self) -> Option<&str> {
        self.message.as_deref()
    }

    /// The state of the last screen (meaningful on [`Step::Joining`]).
    pub fn join_state(&self) -> &JoinState {
        &self.joining
    }

    /// This window's public key, as given.
    pub fn public_key(&self) -> &str {
        &self.public_key
    }

    /// Takes one input; returns what the IO layer must do now.
    pub fn handle(&mut self, input: Input) -> Vec<Action> {
        match input {
            Input::Key(Key::Enter) => self.enter(),
            Input::Key(Key::Esc) => self.back(),
            Input::Key(key) => self.key(key),
            Input::Paste(text) => {
                if let Some(field) = self.field_mut() {
                    let mut changed = false;
                    for c in text.chars() {
                        changed |= field.insert(c);
                    }
                    if changed {
                        self.message = None;
                    }
                }
                Vec::new()
            }
            Input::Devices {
                cameras,
                microphones,
                speakers,
            } => self.set_devices(cameras, microphones, speakers),
            Input::UsbRosters(files) => {
                let old = self.rosters.get(self.roster_sel).map(|r| r.path.clone());
                self.rosters = files
                    .into_iter()
                    .map(|(path, text)| {
                        let parsed = window::parse_roster(&path, &text).map_err(|e| e.to_string());
                        RosterFile { path, text, parsed }
                    })
                    .collect();
                self.rosters_seen = true;
                if self.step == Step::RosterFile {
                    self.message = None;
                }
                self.roster_sel = old
                    .and_then(|p| self.rosters.iter().position(|r| r.path == p))
                    .unwrap_or(0);
                Vec::new()
            }
            Input::Level(db) => {
                self.level = Some(db);
                Vec::new()
            }
            Input::CameraProbe { fps } => {
                self.fps = Some(fps);
                Vec::new()
            }
            Input::Outcome(result) => {
                if self.step == Step::Joining && self.joining == JoinState::Working {
                    self.joining = match result {
                        Ok(line) => JoinState::Joined(line),
                        Err(e) => JoinState::Failed(e),
                    };
                }
                Vec::new()
            }
            Input::Now(t) => {
                self.now_unix = Some(t);
                Vec::new()
            }
        }
    }

    /// Every answer, checked again now; or the first step whose answer is not valid, and why.
    pub fn answers(&self) -> Result<Answers, (Step, String)> {
        let name = check_name(&self.name.text).map_err(|e| (Step::Name, e))?;
        let join = match self.method {
            JoinMethod::Invitation => {
                let inv = check_code(&self.code.text, self.now_unix)
                    .map_err(|e| (Step::InvitationCode, e))?;
                Join::Invitation { code: inv.encode() }
            }
            JoinMethod::Roster => {
                let r = self.roster_check().map_err(|e| (Step::RosterFile, e))?;
                Join::Roster {
                    path: r.path.clone(),
                    text: r.text.clone(),
                }
            }
            JoinMethod::Found => Join::Found,
        };
        let open_hours = check_open_hours(&self.hours.text).map_err(|e| (Step::OpenHours, e))?;
        let camera = self.cameras.get(self.camera_sel).map(|d| d.path.clone());
        let microphone = self
            .microphones
            .get(self.microphone_sel)
            .map(|d| d.path.clone())
            .ok_or((Step::Microphone, no_device("microphone")))?;
        let speaker = self
            .speakers
            .get(self.speaker_sel)
            .map(|d| d.path.clone())
            .ok_or((Step::Speaker, no_device("speaker")))?;
        let ssh_key = check_ssh_key(&self.ssh.text).map_err(|e| (Step::SshKey, e))?;
        Ok(Answers {
            name,
            join,
            open_hours,
            camera,
            microphone,
            speaker,
            ssh_key,
        })
    }

    fn own_key(&self) -> Option<PublicKey> {
        PublicKey::from_base64(&self.public_key).ok()
    }

    /// The chosen roster file, checked for this window's name and key.
    fn roster_check(&self) -> Result<&RosterFile, String> {
        let Some(file) = self.rosters.get(self.roster_sel) else {
            return Err(
                "no roster file found: insert the USB stick with the roster file; the list \
                 updates by itself"
                    .into(),
            );
        };
        let name = self.name.text.trim();
        let own = self.own_key();
        let config = roster_window(
            name,
            OpenHours::Always,
            &file.path,
            &file.text,
            own.as_ref(),
        )?;
        window_text(&config, own.as_ref())?;
        Ok(file)
    }

    fn field_mut(&mut self) -> Option<&mut TextField> {
        match self.step {
            Step::Name => Some(&mut self.name),
            Step::InvitationCode => Some(&mut self.code),
            Step::OpenHours => Some(&mut self.hours),
            Step::SshKey => Some(&mut self.ssh),
            _ => None,
        }
    }

    /// The step after the choice of how to join (a new network needs nothing more).
    fn join_step(&self) -> Step {
        match self.method {
            JoinMethod::Invitation => Step::InvitationCode,
            JoinMethod::Roster => Step::RosterFile,
            JoinMethod::Found => Step::OpenHours,
        }
    }

    /// Moves to `to`, with what leaving and entering the steps asks of the IO layer.
    fn go(&mut self, to: Step) -> Vec<Action> {
        let mut out = Vec::new();
        if self.step == Step::Microphone && to != Step::Microphone {
            out.push(Action::StopLevel);
        }
        self.step = to;
        self.message = None;
        match to {
            Step::Camera => {
                self.fps = None;
                out.extend(self.probe());
            }
            Step::Microphone => {
                self.level = None;
                out.extend(self.listen());
            }
            Step::Speaker => self.tone_played = false,
            _ => {}
        }
        out
    }

    fn probe(&self) -> Option<Action> {
        self.cameras
            .get(self.camera_sel)
            .map(|d| Action::ProbeCamera(d.path.clone()))
    }

    fn listen(&self) -> Option<Action> {
        self.microphones
            .get(self.microphone_sel)
            .map(|d| Action::StartLevel(d.path.clone()))
    }

    fn fail(&mut self, message: String) -> Vec<Action> {
        self.message = Some(message);
        Vec::new()
    }

    fn enter(&mut self) -> Vec<Action> {
        match self.step {
            Step::Welcome => self.go(Step::Name),
            Step::Name => match check_name(&self.name.text) {
                Ok(_) => self.go(Step::JoinMethod),
                Err(e) => self.fail(e),
            },
            Step::JoinMethod => self.go(self.join_step()),
            Step::InvitationCode => match check_code(&self.code.text, self.now_unix) {
                Ok(_) => self.go(Step::OpenHours),
                Err(e) => self.fail(e),
            },
            Step::RosterFile => match self.roster_check() {
                Ok(_) => self.go(Step::OpenHours),
                Err(e) => self.fail(e),
            },
            Step::OpenHours => match check_open_hours(&self.hours.text) {
                Ok(_) => self.go(Step::Camera),
                Err(e) => self.fail(e),
            },
            Step::Camera => self.go(Step::Microphone),
            Step::Microphone if self.microphones.is_empty() => self.fail(no_device("microphone")),
            Step::Microphone => self.go(Step::Speaker),
            Step::Speaker if self.speakers.is_empty() => self.fail(no_device("speaker")),
            Step::Speaker => self.go(Step::SshKey),
            Step::SshKey => match check_ssh_key(&self.ssh.text) {
                Ok(_) => self.go(Step::Summary),
                Err(e) => self.fail(e),
            },
            Step::Summary => self.finish(),
            Step::Joining => match self.joining {
                JoinState::Failed(_) => self.finish(),
                _ => Vec::new(),
            },
        }
    }

    fn finish(&mut self) -> Vec<Action> {
        match self.answers() {
            Ok(answers) => {
                self.step = Step::Joining;
                self.message = None;
                self.joining = JoinState::Working;
                vec![Action::Finish(answers)]
            }
            Err((step, e)) => {
                self.step = Step::Summary;
                self.message = Some(format!(
                    "step {} ({}): {e} (Esc goes back to it)",
                    step.number(),
                    step.title()
                ));
                Vec::new()
            }
        }
    }

    fn back(&mut self) -> Vec<Action> {
        let to = match self.step {
            Step::Welcome => return Vec::new(),
            Step::Name => Step::Welcome,
            Step::JoinMethod => Step::Name,
            Step::InvitationCode | Step::RosterFile => Step::JoinMethod,
            Step::OpenHours if self.method == JoinMethod::Found => Step::JoinMethod,
            Step::OpenHours => self.join_step(),
            Step::Camera => Step::OpenHours,
            Step::Microphone => Step::Camera,
            Step::Speaker => Step::Microphone,
            Step::SshKey => Step::Speaker,
            Step::Summary => Step::SshKey,
            Step::Joining => match self.joining {
                JoinState::Failed(_) => Step::Summary,
                // Joining cannot be called off half-way; after success there is no way back.
                _ => return Vec::new(),
            },
        };
        self.go(to)
    }

    fn key(&mut self, key: Key) -> Vec<Action> {
        if let Some(field) = self.field_mut() {
            if field.edit(key) {
                self.message = None;
            }
            return Vec::new();
        }
        match self.step {
            Step::JoinMethod => {
                use JoinMethod::{Found, Invitation, Roster};
                let method = match (key, self.method) {
                    (Key::Char('1'), _) | (Key::Up, Invitation | Roster) => Invitation,
                    (Key::Char('2'), _) | (Key::Up, Found) | (Key::Down, Invitation) => Roster,
                    (Key::Char('3'), _) | (Key::Down, Roster | Found) => Found,
                    _ => self.method,
                };
                self.method = method;
                Vec::new()
            }
            Step::RosterFile => {
                if step_selection(&mut self.roster_sel, self.rosters.len(), key) {
                    self.message = None;
                }
                Vec::new()
            }
            Step::Camera => {
                if step_selection(&mut self.camera_sel, self.cameras.len() + 1, key) {
                    self.message = None;
                    self.fps = None;
                    return self.probe().into_iter().collect();
                }
                Vec::new()
            }
            Step::Microphone => {
                if step_selection(&mut self.microphone_sel, self.microphones.len(), key) {
                    self.message = None;
                    self.level = None;
                    return self.listen().into_iter().collect();
                }
                Vec::new()
            }
            Step::Speaker => {
                if step_selection(&mut self.speaker_sel, self.speakers.len(), key) {
                    self.message = None;
                    self.tone_played = false;
                    return Vec::new();
                }
                match (key, self.speakers.get(self.speaker_sel)) {
                    (Key::Char('t' | 'T'), Some(d)) => {
                        self.tone_played = true;
                        vec![Action::PlayTone(d.path.clone())]
                    }
                    _ => Vec::new(),
                }
            }
            _ => Vec::new(),
        }
    }

    fn set_devices(
        &mut self,
        cameras: Vec<Device>,
        microphones: Vec<Device>,
        speakers: Vec<Device>,
    ) -> Vec<Action> {
        let old_camera = self.cameras.get(self.camera_sel).map(|d| d.path.clone());
        let old_microphone = self
            .microphones
            .get(self.microphone_sel)
            .map(|d| d.path.clone());
        // "No camera" chosen on purpose stays chosen; before the first list, the first
        // camera is the default.
        let no_camera = self.devices_seen && old_camera.is_none();
        self.camera_sel = if no_camera {
            cameras.len()
        } else {
            reselect(old_camera.as_deref(), &cameras)
        };
        self.microphone_sel = reselect(old_microphone.as_deref(), &microphones);
        self.speaker_sel = reselect(
            self.speakers.get(self.speaker_sel).map(|d| d.path.as_str()),
            &speakers,
        );
        self.cameras = cameras;
        self.microphones = microphones;
        self.speakers = speakers;
        self.devices_seen = true;
        if matches!(self.step, Step::Camera | Step::Microphone | Step::Speaker) {
            self.message = None;
        }

        let mut out = Vec::new();
        let new_camera = self.cameras.get(self.camera_sel).map(|d| d.path.clone());
        if self.step == Step::Camera && new_camera != old_camera {
            self.fps = None;
            out.extend(self.probe());
        }
        let new_microphone = self
            .microphones
            .get(self.microphone_sel)
            .map(|d| d.path.clone());
        if self.step == Step::Microphone && new_microphone != old_microphone {
            self.level = None;
            out.push(match new_microphone {
                Some(path) => Action::StartLevel(path),
                None => Action::StopLevel,
            });
        }
        out
    }
}

/// The index of `old` in `new`, else the first.
fn reselect(old: Option<&str>, new: &[Device]) -> usize {
    old.and_then(|p| new.iter().position(|d| d.path == p))
        .unwrap_or(0)
}

/// Up/Down in a list of `len` items; true when the selection moved.
fn step_selection(sel: &mut usize, len: usize, key: Key) -> bool {
    let to = match key {
        Key::Up => sel.saturating_sub(1),
        Key::Down => (*sel + 1).min(len.saturating_sub(1)),
        Key::Home => 0,
        Key::End => len.saturating_sub(1),
        _ => return false,
    };
    let moved = to != *sel;
    *sel = to;
    moved
}

fn no_device(what: &str) -> String {
    format!("no {what} was found: plug one in (USB); the list updates by itself")
}
