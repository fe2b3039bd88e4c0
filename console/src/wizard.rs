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

use std::fmt;
use std::path::{Path, PathBuf};

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use ewindow_protocol::invite::Invitation;
use ewindow_protocol::window::{self, OpenHours, PublicKey, Roster, WindowConfig};
use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers};
use ratatui::layout::Rect;
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, List, ListItem, ListState, Paragraph, Wrap};
use ratatui::Frame;

/// Where the window file is written; its absence is what starts the wizard. Also the file
/// name in validation messages about a window file built here.
pub const WINDOW_TOML: &str = "/data/ewindow/window.toml";

/// How many steps the title counts ("step k of 11").
pub const STEPS: usize = 11;

/// The SSH public key types [`check_ssh_key`] accepts.
pub const SSH_KEY_TYPES: &[&str] = &[
    "ssh-ed25519",
    "ssh-rsa",
    "ecdsa-sha2-nistp256",
    "ecdsa-sha2-nistp384",
    "ecdsa-sha2-nistp521",
];

/// The longest text a field takes, in characters (an RSA-4096 key line is about 750).
const MAX_FIELD_CHARS: usize = 8192;

/// The level meter shows −60 dBFS (empty) to 0 dBFS (full).
const METER_FLOOR_DB: f32 = -60.0;

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
    /// Invitation code or roster file.
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
        roster_window_toml(
            name,
            OpenHours::Always,
            &file.path,
            &file.text,
            self.own_key().as_ref(),
        )?;
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

    fn join_step(&self) -> Step {
        match self.method {
            JoinMethod::Invitation => Step::InvitationCode,
            JoinMethod::Roster => Step::RosterFile,
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
                let method = match key {
                    Key::Up | Key::Char('1') => JoinMethod::Invitation,
                    Key::Down | Key::Char('2') => JoinMethod::Roster,
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
    roster_window_toml(name, OpenHours::Always, path, text, own_key)?;
    window::parse_roster(path, text).map_err(|e| e.to_string())
}

/// The window file for a roster join: `[window]` with the name and open hours, then the
/// roster as it came (signature included); validated by parsing it back.
fn roster_window_toml(
    name: &str,
    open_hours: OpenHours,
    path: &Path,
    text: &str,
    own_key: Option<&PublicKey>,
) -> Result<String, String> {
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
    let config = WindowConfig {
        name: name.to_owned(),
        listen_port: window::DEFAULT_LISTEN_PORT,
        open_hours,
        partner: None,
        presence_interval_s: window::DEFAULT_PRESENCE_INTERVAL_S,
        roster,
        media: Default::default(),
    };
    let toml = window::to_toml(&config);
    window::parse(Path::new(WINDOW_TOML), &toml, own_key).map_err(|e| e.to_string())?;
    Ok(toml)
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

/// What the IO layer writes after [`Action::Finish`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Files {
    /// The text of [`WINDOW_TOML`] for a roster join (validated: it parses with the own key).
    /// `None` for an invitation join: `ewindow-overlay redeem` writes the file; then
    /// [`patch_redeemed`] puts [`Files::open_hours`] into it.
    pub window_toml: Option<String>,
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
    let window_toml = match &answers.join {
        Join::Invitation { .. } => None,
        Join::Roster { path, text } => Some(roster_window_toml(
            &answers.name,
            answers.open_hours,
            path,
            text,
            own_key,
        )?),
    };
    Ok(Files {
        window_toml,
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

/// The window file `ewindow-overlay redeem` wrote, with the open hours set; validated by
/// parsing it back (with `own_key` when given).
pub fn patch_redeemed(
    window_toml: &str,
    open_hours: OpenHours,
    own_key: Option<&PublicKey>,
) -> Result<String, String> {
    let file = Path::new(WINDOW_TOML);
    let mut config = window::parse(file, window_toml, own_key).map_err(|e| e.to_string())?;
    config.open_hours = open_hours;
    let text = window::to_toml(&config);
    window::parse(file, &text, own_key).map_err(|e| e.to_string())?;
    Ok(text)
}

/// `2026-01-01 00:00 UTC`.
fn utc(unix: u64) -> String {
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
fn short_key(key: &str) -> String {
    let chars: Vec<char> = key.chars().collect();
    if chars.len() <= 12 {
        return key.to_owned();
    }
    let head: String = chars[..6].iter().collect();
    let tail: String = chars[chars.len() - 4..].iter().collect();
    format!("{head}…{tail}")
}

// ---------------------------------------------------------------------------------------
// Drawing

const ERROR: Style = Style::new()
    .fg(Color::LightRed)
    .add_modifier(Modifier::BOLD);
const GOOD: Style = Style::new()
    .fg(Color::LightGreen)
    .add_modifier(Modifier::BOLD);
const STRONG: Style = Style::new().add_modifier(Modifier::BOLD);
const HEADING: Style = Style::new()
    .fg(Color::LightCyan)
    .add_modifier(Modifier::BOLD);
const VALUE: Style = Style::new()
    .fg(Color::LightYellow)
    .add_modifier(Modifier::BOLD);
const KEYCAP: Style = Style::new().add_modifier(Modifier::REVERSED);
const SELECTED: Style = Style::new().add_modifier(Modifier::REVERSED);

/// The widest the screen's column gets, in terminal columns.
const MAX_WIDTH: u16 = 100;

/// Words of `text` in lines of at most `width` columns (longer words are cut).
fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut lines = Vec::new();
    if width == 0 {
        return lines;
    }
    for paragraph in text.split('\n') {
        let mut line = String::new();
        let mut len = 0;
        for word in paragraph.split(' ').filter(|w| !w.is_empty()) {
            let mut word: Vec<char> = word.chars().collect();
            // A word longer than a line is cut into pieces.
            while word.len() > width {
                if len > 0 {
                    lines.push(std::mem::take(&mut line));
                    len = 0;
                }
                let rest = word.split_off(width);
                lines.push(word.into_iter().collect());
                word = rest;
            }
            if word.is_empty() {
                continue;
            }
            if len > 0 && len + 1 + word.len() > width {
                lines.push(std::mem::take(&mut line));
                len = 0;
            }
            if len > 0 {
                line.push(' ');
                len += 1;
            }
            len += word.len();
            line.extend(word);
        }
        lines.push(line);
    }
    lines
}

/// A key on one line, or cut into equal parts when it does not fit (easier to read out than a
/// line and a stub).
fn key_lines(key: &str, width: u16) -> Vec<Line<'static>> {
    let chars: Vec<char> = key.chars().collect();
    let width = usize::from(width);
    if width == 0 {
        return Vec::new();
    }
    let parts = chars.len().div_ceil(width).max(1);
    let part = chars.len().div_ceil(parts).max(1);
    chars
        .chunks(part)
        .map(|c| Line::styled(c.iter().collect::<String>(), VALUE))
        .collect()
}

/// `text` wrapped to `width`, every line in `style`.
fn para(text: &str, width: u16, style: Style) -> Vec<Line<'static>> {
    wrap(text, usize::from(width))
        .into_iter()
        .map(|l| Line::styled(l, style))
        .collect()
}

/// `label` and `value`, the value wrapped beside the label.
fn label_value(label: &str, value: &str, width: u16, style: Style) -> Vec<Line<'static>> {
    const LABEL: usize = 13;
    let width = usize::from(width);
    if width < LABEL + 10 {
        let mut out = para(label, width as u16, STRONG);
        out.extend(para(value, width as u16, style));
        return out;
    }
    wrap(value, width - LABEL)
        .into_iter()
        .enumerate()
        .map(|(i, v)| {
            let head = if i == 0 { label } else { "" };
            Line::from(vec![
                Span::styled(format!("{head:<LABEL$}"), STRONG),
                Span::styled(v, style),
            ])
        })
        .collect()
}

/// One part of a screen's body, laid out top to bottom.
enum Piece {
    /// Lines already wrapped to the width.
    Text(Vec<Line<'static>>),
    /// A bordered one-line text field.
    Field {
        label: &'static str,
        text: String,
        cursor: usize,
    },
    /// A bordered list taking the room that is left.
    List {
        title: &'static str,
        items: Vec<String>,
        selected: usize,
        empty: &'static str,
    },
}

impl Piece {
    fn height(&self) -> u16 {
        match self {
            Piece::Text(lines) => u16::try_from(lines.len()).unwrap_or(u16::MAX),
            Piece::Field { .. } => 3,
            Piece::List { items, .. } => u16::try_from(items.len().max(1) + 2).unwrap_or(u16::MAX),
        }
    }
}

fn blank() -> Piece {
    Piece::Text(vec![Line::default()])
}

/// Draws the wizard's current screen. Any size works; below about 40×12 parts are cut off.
pub fn render(frame: &mut Frame, w: &Wizard) {
    let area = frame.area();
    if area.width == 0 || area.height == 0 {
        return;
    }
    // One column of margin; on a wide screen, a centred column of readable width.
    let area = if area.width > MAX_WIDTH + 2 {
        Rect::new(
            area.x + (area.width - MAX_WIDTH) / 2,
            area.y,
            MAX_WIDTH,
            area.height,
        )
    } else if area.width >= 20 {
        Rect::new(area.x + 1, area.y, area.width - 2, area.height)
    } else {
        area
    };
    let row = |y: u16| Rect::new(area.x, area.y + y, area.width, 1);
    let title = format!(
        "Setting up this window — step {} of {STEPS}",
        w.step.number()
    );
    frame.render_widget(Paragraph::new(Line::styled(title, STRONG)), row(0));
    if area.height < 3 {
        return;
    }
    frame.render_widget(
        Paragraph::new(Line::styled(w.step.title(), HEADING)),
        row(1),
    );
    let help_rows = if area.height >= 6 { 2 } else { 0 };
    if help_rows > 0 {
        frame.render_widget(Paragraph::new(help_line(w)), row(area.height - 1));
    }
    let top = if area.height >= 8 { 3 } else { 2 };
    let body = Rect::new(
        area.x,
        area.y + top,
        area.width,
        area.height.saturating_sub(top + help_rows),
    );
    if body.height == 0 {
        return;
    }
    if w.step == Step::Welcome {
        render_welcome(frame, w, body);
        return;
    }
    let pieces = pieces(w, body.width);
    render_pieces(frame, body, pieces);
}

fn help_line(w: &Wizard) -> Line<'static> {
    let keys: &[(&str, &str)] = match w.step {
        Step::Welcome => &[("Enter", "start")],
        Step::Name | Step::InvitationCode | Step::OpenHours | Step::SshKey => &[
            ("Enter", "next"),
            ("Esc", "back"),
            ("Backspace", "delete"),
            ("Ctrl-U", "clear"),
        ],
        Step::JoinMethod => &[("↑↓ 1 2", "choose"), ("Enter", "next"), ("Esc", "back")],
        Step::RosterFile | Step::Camera | Step::Microphone => {
            &[("↑↓", "choose"), ("Enter", "next"), ("Esc", "back")]
        }
        Step::Speaker => &[
            ("↑↓", "choose"),
            ("t", "test tone"),
            ("Enter", "next"),
            ("Esc", "back"),
        ],
        Step::Summary => &[("Enter", "confirm and join"), ("Esc", "back")],
        Step::Joining => match w.joining {
            JoinState::Working => &[],
            JoinState::Failed(_) => &[("Enter", "try again"), ("Esc", "back to the summary")],
            JoinState::Joined(_) => &[],
        },
    };
    let mut spans = Vec::new();
    for (key, what) in keys {
        spans.push(Span::styled(format!(" {key} "), KEYCAP));
        spans.push(Span::raw(format!(" {what}   ")));
    }
    if keys.is_empty() && w.joining == JoinState::Working {
        spans.push(Span::raw("please wait…"));
    }
    Line::from(spans)
}

fn render_welcome(frame: &mut Frame, w: &Wizard, body: Rect) {
    let qr = w.qr.as_deref().unwrap_or_default();
    let qr_w = qr.iter().map(|l| l.chars().count()).max().unwrap_or(0);
    let qr_w = u16::try_from(qr_w).unwrap_or(u16::MAX);
    let qr_h = u16::try_from(qr.len()).unwrap_or(u16::MAX);
    // Beside the text when there is room for both, else below it if it fits whole (a cut
    // QR code cannot be read, so it is not drawn at all then).
    let beside = !qr.is_empty() && body.width >= qr_w.saturating_add(40) && body.height >= qr_h;
    let text_w = if beside {
        body.width - qr_w - 2
    } else {
        body.width
    };
    let mut lines = para(
        "This window has no settings yet, so it starts with this set-up. It asks for a name, \
         how to join the network of windows, when the window is open, the camera, microphone \
         and speaker, and optionally an SSH key for remote maintenance. Nothing is saved \
         before you confirm the summary at the end.",
        text_w,
        Style::new(),
    );
    lines.push(Line::default());
    lines.extend(para("This window's public key:", text_w, STRONG));
    lines.extend(key_lines(&w.public_key, text_w));
    lines.push(Line::default());
    lines.extend(para(
        "To join with a roster file, a member of the network adds this key to the roster.",
        text_w,
        Style::new(),
    ));
    let text_h = u16::try_from(lines.len()).unwrap_or(u16::MAX);
    frame.render_widget(
        Paragraph::new(lines),
        Rect::new(body.x, body.y, text_w, body.height),
    );
    if qr.is_empty() {
        return;
    }
    let qr_lines: Vec<Line> = qr.iter().map(|l| Line::raw(l.as_str())).collect();
    if beside {
        let area = Rect::new(body.x + body.width - qr_w, body.y, qr_w, qr_h);
        frame.render_widget(Paragraph::new(qr_lines), area);
    } else if body.height >= text_h.saturating_add(1).saturating_add(qr_h) && body.width >= qr_w {
        let area = Rect::new(body.x, body.y + text_h + 1, qr_w, qr_h);
        frame.render_widget(Paragraph::new(qr_lines), area);
    }
}

/// The parts of every screen but the welcome one.
fn pieces(w: &Wizard, width: u16) -> Vec<Piece> {
    let mut out = Vec::new();
    let question = |text: &str| Piece::Text(para(text, width, Style::new()));
    let field = |label, f: &TextField| Piece::Field {
        label,
        text: f.text.clone(),
        cursor: f.cursor,
    };
    match w.step {
        Step::Welcome => {}
        Step::Name => {
            out.push(question(
                "What is this window called? The other windows show and call it by this name. \
                 Use lowercase letters, digits and dashes, up to 32, e.g. fablab-lyon.",
            ));
            out.push(blank());
            out.push(field("Name", &w.name));
        }
        Step::JoinMethod => {
            out.push(question(
                "How does this window join the network of windows? A member window makes an \
                 invitation code with: ewindowctl invite NAME. Or a member adds this window's \
                 public key to the roster and gives you the roster file on a USB stick.",
            ));
            out.push(blank());
            out.push(Piece::List {
                title: "How to join",
                items: vec![
                    "1  Type an invitation code".into(),
                    "2  Read a roster file from a USB stick".into(),
                ],
                selected: match w.method {
                    JoinMethod::Invitation => 0,
                    JoinMethod::Roster => 1,
                },
                empty: "",
            });
        }
        Step::InvitationCode => {
            out.push(question(
                "Type the invitation code as you got it; it starts with EWIN1-. Capitals, \
                 spaces and dashes do not matter.",
            ));
            out.push(blank());
            out.push(field("Invitation code", &w.code));
            // A complete code is described at once; a wrong one only after Enter (no red
            // while typing).
            if w.message.is_none() {
                if let Ok(inv) = Invitation::decode(&w.code.text) {
                    let status = match check_code(&w.code.text, w.now_unix) {
                        Ok(_) => para(
                            &format!(
                                "A valid invitation from the window at {} (key {}), valid \
                                 until {}.",
                                inv.endpoint,
                                short_key(&inv.inviter_key.to_base64()),
                                utc(u64::from(inv.expires_unix))
                            ),
                            width,
                            GOOD,
                        ),
                        Err(e) => para(&e, width, ERROR),
                    };
                    out.push(blank());
                    out.push(Piece::Text(status));
                }
            }
        }
        Step::RosterFile => {
            out.push(question(
                "Choose the roster file on the USB stick. It lists the windows of the network; \
                 a member has added this window to it, with this window's key:",
            ));
            out.push(Piece::Text(key_lines(&w.public_key, width)));
            out.push(blank());
            let items = w
                .rosters
                .iter()
                .map(|r| match &r.parsed {
                    Ok(roster) => format!(
                        "{}  ({} windows, version {})",
                        r.path.display(),
                        roster.members.len(),
                        roster.version
                    ),
                    Err(_) => format!("{}  (not a usable roster)", r.path.display()),
                })
                .collect();
            out.push(Piece::List {
                title: "Roster files on USB sticks",
                items,
                selected: w.roster_sel,
                empty: if w.rosters_seen {
                    "No roster file found: insert the USB stick; the list updates by itself."
                } else {
                    "Looking for USB sticks…"
                },
            });
            if w.message.is_none() {
                if let Some(r) = w.rosters.get(w.roster_sel) {
                    let status = match (&r.parsed, w.roster_check()) {
                        (Ok(roster), Ok(_)) => para(
                            &format!(
                                "This roster has this window as {}. Windows: {}.",
                                w.name.text.trim(),
                                roster
                                    .members
                                    .iter()
                                    .map(|m| m.name.as_str())
                                    .collect::<Vec<_>>()
                                    .join(", ")
                            ),
                            width,
                            GOOD,
                        ),
                        (_, Err(e)) => para(&e, width, ERROR),
                        (Err(e), _) => para(e, width, ERROR),
                    };
                    out.push(blank());
                    out.push(Piece::Text(status));
                }
            }
        }
        Step::OpenHours => {
            out.push(question(
                "When may this window take calls? Type always, or a time range on the 24-hour \
                 clock such as 08:00-20:00 (22:00-06:00 runs over midnight).",
            ));
            out.push(blank());
            out.push(field("Open hours", &w.hours));
        }
        Step::Camera => {
            out.push(question(
                "Which camera shows this space? A test picture is taken from the one chosen.",
            ));
            out.push(blank());
            let mut items: Vec<String> = w.cameras.iter().map(device_item).collect();
            items.push("No camera (sound only)".into());
            out.push(Piece::List {
                title: "Cameras",
                items,
                selected: w.camera_sel,
                empty: "",
            });
            let status = match (w.cameras.get(w.camera_sel), w.fps) {
                (None, _) if !w.devices_seen => para("Looking for cameras…", width, Style::new()),
                (None, _) => para(
                    "The window sends no picture, only sound.",
                    width,
                    Style::new(),
                ),
                (Some(_), None) => para("Taking a test picture…", width, Style::new()),
                (Some(_), Some(fps)) if fps.is_finite() && fps >= 1.0 => {
                    para(&format!("test picture: {fps:.0} fps"), width, GOOD)
                }
                (Some(_), Some(_)) => para(
                    "test picture: 0 fps — no picture from this camera: check its cable, or \
                     choose another",
                    width,
                    ERROR,
                ),
            };
            out.push(blank());
            out.push(Piece::Text(status));
        }
        Step::Microphone => {
            out.push(question(
                "Which microphone hears this space? Speak or clap: the bar should move.",
            ));
            out.push(blank());
            out.push(Piece::List {
                title: "Microphones",
                items: w.microphones.iter().map(device_item).collect(),
                selected: w.microphone_sel,
                empty: if w.devices_seen {
                    "No microphone found."
                } else {
                    "Looking for microphones…"
                },
            });
            if !w.microphones.is_empty() {
                out.push(blank());
                out.push(Piece::Text(vec![meter(w.level, width)]));
            }
        }
        Step::Speaker => {
            out.push(question(
                "Which speaker plays the sound of the other space? Press t to play a test tone.",
            ));
            out.push(blank());
            out.push(Piece::List {
                title: "Speakers",
                items: w.speakers.iter().map(device_item).collect(),
                selected: w.speaker_sel,
                empty: if w.devices_seen {
                    "No speaker found."
                } else {
                    "Looking for speakers…"
                },
            });
            if let (true, Some(d)) = (w.tone_played, w.speakers.get(w.speaker_sel)) {
                out.push(blank());
                out.push(Piece::Text(para(
                    &format!("Playing a test tone on {}: did you hear it?", d.name),
                    width,
                    Style::new(),
                )));
            }
        }
        Step::SshKey => {
            out.push(question(
                "Optional: an SSH public key for remote maintenance, the one line of a .pub \
                 file (e.g. ~/.ssh/id_ed25519.pub). Leave it empty to skip.",
            ));
            out.push(blank());
            out.push(field("SSH public key", &w.ssh));
        }
        Step::Summary => {
            out.push(question(
                "Check the answers. Enter sets this window up with them; Esc goes back to \
                 change them.",
            ));
            out.push(blank());
            out.push(Piece::Text(summary(w, width)));
        }
        Step::Joining => {
            let lines = match &w.joining {
                JoinState::Working => para(
                    match w.method {
                        JoinMethod::Invitation => {
                            "Joining the network… This window reaches the inviting window and \
                             asks to be let in; it takes a few seconds."
                        }
                        JoinMethod::Roster => {
                            "Joining the network… This window writes its settings and starts."
                        }
                    },
                    width,
                    Style::new(),
                ),
                JoinState::Failed(e) => {
                    let mut l = para("Joining the network failed:", width, STRONG);
                    l.extend(para(e, width, ERROR));
                    l.push(Line::default());
                    l.extend(para(
                        "Enter tries again; Esc goes back to the summary to change the answers.",
                        width,
                        Style::new(),
                    ));
                    l
                }
                JoinState::Joined(line) => {
                    let mut l = para(line, width, GOOD);
                    l.push(Line::default());
                    l.extend(para(
                        "This window is set up. It starts now; this screen becomes its status \
                         console.",
                        width,
                        Style::new(),
                    ));
                    l
                }
            };
            out.push(Piece::Text(lines));
        }
    }
    if let Some(m) = &w.message {
        out.push(blank());
        out.push(Piece::Text(para(m, width, ERROR)));
    }
    out
}

fn device_item(d: &Device) -> String {
    format!("{}  ({})", d.name, d.path)
}

/// `level  ███████░░░░░  -23 dBFS`.
fn meter(level: Option<f32>, width: u16) -> Line<'static> {
    let label = match level {
        Some(db) if db.is_finite() && db > METER_FLOOR_DB => format!(" {db:>4.0} dBFS"),
        Some(_) => " silent".to_owned(),
        None => " waiting…".to_owned(),
    };
    let bar_w = usize::from(width)
        .saturating_sub(6 + label.chars().count())
        .min(60);
    let ratio = match level {
        Some(db) if db.is_finite() => ((db - METER_FLOOR_DB) / -METER_FLOOR_DB).clamp(0.0, 1.0),
        _ => 0.0,
    };
    let filled = ((bar_w as f32) * ratio).round() as usize;
    let color = match level {
        Some(db) if db > -6.0 => Color::LightRed,
        Some(db) if db > -20.0 => Color::LightYellow,
        _ => Color::LightGreen,
    };
    Line::from(vec![
        Span::styled("level ", STRONG),
        Span::styled("█".repeat(filled), Style::new().fg(color)),
        Span::raw("░".repeat(bar_w - filled)),
        Span::raw(label),
    ])
}

fn summary(w: &Wizard, width: u16) -> Vec<Line<'static>> {
    let mut lines = Vec::new();
    let mut add = |label: &str, value: String| {
        lines.extend(label_value(label, &value, width, VALUE));
    };
    add("Name", w.name.text.trim().to_owned());
    add(
        "Join",
        match w.method {
            JoinMethod::Invitation => match Invitation::decode(&w.code.text) {
                Ok(inv) => format!(
                    "invitation from the window at {}, valid until {}",
                    inv.endpoint,
                    utc(u64::from(inv.expires_unix))
                ),
                Err(_) => "invitation code".into(),
            },
            JoinMethod::Roster => match w.rosters.get(w.roster_sel) {
                Some(r) => format!(
                    "roster file {}{}",
                    r.path.display(),
                    r.parsed.as_ref().map_or(String::new(), |roster| format!(
                        " ({} windows, version {})",
                        roster.members.len(),
                        roster.version
                    ))
                ),
                None => "roster file (none chosen)".into(),
            },
        },
    );
    add("Open hours", w.hours.text.trim().to_ascii_lowercase());
    add(
        "Camera",
        w.cameras
            .get(w.camera_sel)
            .map_or("none (sound only)".into(), device_item),
    );
    add(
        "Microphone",
        w.microphones
            .get(w.microphone_sel)
            .map_or("none".into(), device_item),
    );
    add(
        "Speaker",
        w.speakers
            .get(w.speaker_sel)
            .map_or("none".into(), device_item),
    );
    add(
        "SSH key",
        match check_ssh_key(&w.ssh.text) {
            Ok(Some(line)) => {
                let mut words = line.split(' ');
                let kind = words.next().unwrap_or_default();
                let blob = words.next().unwrap_or_default();
                let comment: Vec<&str> = words.collect();
                format!("{kind} {} {}", short_key(blob), comment.join(" "))
                    .trim_end()
                    .to_owned()
            }
            Ok(None) => "none".into(),
            Err(_) => "(not valid)".into(),
        },
    );
    lines
}

/// Lays out `pieces` top to bottom in `body`: lists get the room the others leave; what does
/// not fit is cut at the bottom.
fn render_pieces(frame: &mut Frame, body: Rect, pieces: Vec<Piece>) {
    let fixed: u16 = pieces
        .iter()
        .filter(|p| !matches!(p, Piece::List { .. }))
        .map(Piece::height)
        .fold(0, u16::saturating_add);
    let mut y = body.y;
    let bottom = body.y.saturating_add(body.height);
    for piece in pieces {
        if y >= bottom {
            break;
        }
        let room = bottom - y;
        let want = match &piece {
            Piece::List { .. } => piece.height().min(body.height.saturating_sub(fixed).max(3)),
            _ => piece.height(),
        };
        let area = Rect::new(body.x, y, body.width, want.min(room));
        match piece {
            Piece::Text(lines) => frame.render_widget(Paragraph::new(lines), area),
            Piece::Field {
                label,
                text,
                cursor,
            } => {
                let block = Block::bordered().title(label);
                let inner = block.inner(area);
                frame.render_widget(block, area);
                let field = TextField { text, cursor };
                let (shown, col) = field.visible(usize::from(inner.width));
                frame.render_widget(Paragraph::new(shown), inner);
                if inner.width > 0 && inner.height > 0 {
                    let col = u16::try_from(col).unwrap_or(0);
                    frame.set_cursor_position((inner.x + col, inner.y));
                }
            }
            Piece::List {
                title,
                items,
                selected,
                empty,
            } => {
                let block = Block::bordered().title(title);
                if items.is_empty() {
                    frame.render_widget(
                        Paragraph::new(empty).block(block).wrap(Wrap { trim: true }),
                        area,
                    );
                } else {
                    let items: Vec<ListItem> = items.into_iter().map(ListItem::new).collect();
                    let list = List::new(items)
                        .block(block)
                        .highlight_symbol("> ")
                        .highlight_style(SELECTED);
                    let mut state = ListState::default().with_selected(Some(selected));
                    frame.render_stateful_widget(list, area, &mut state);
                }
            }
        }
        y = y.saturating_add(area.height);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ewindow_protocol::window::Member;
    use ratatui::backend::TestBackend;
    use ratatui::Terminal;
    use std::time::Duration;

    /// 2026-01-01 00:00 UTC.
    const NOW: u64 = 1_767_225_600;

    fn own() -> PublicKey {
        PublicKey([11; 32])
    }

    fn inviter() -> PublicKey {
        PublicKey([22; 32])
    }

    fn wizard() -> Wizard {
        Wizard::new(own().to_base64())
    }

    fn dev(path: &str, name: &str) -> Device {
        Device {
            path: path.into(),
            name: name.into(),
        }
    }

    fn devices() -> Input {
        Input::Devices {
            cameras: vec![
                dev("/dev/video0", "USB Camera"),
                dev("/dev/video2", "Logitech C920"),
            ],
            microphones: vec![
                dev("hw:1,0", "Jabra Speak 410"),
                dev("hw:2,0", "USB Camera microphone"),
            ],
            speakers: vec![dev("hw:1,0", "Jabra Speak 410")],
        }
    }

    /// A real invitation, with a random secret.
    fn invitation() -> Invitation {
        Invitation::new(
            inviter(),
            "203.0.113.7:51820".parse().unwrap(),
            Duration::from_secs(3600),
            NOW,
        )
        .unwrap()
    }

    /// The same every run, for the snapshots.
    fn fixed_invitation() -> Invitation {
        Invitation {
            inviter_key: inviter(),
            endpoint: "203.0.113.7:51820".parse().unwrap(),
            secret: *b"twelve bytes",
            expires_unix: 1_767_312_000,
        }
    }

    /// A signed roster with this window as `fablab-nantes`.
    fn roster() -> Roster {
        Roster {
            version: 4,
            signed_by: Some("fablab-lyon".into()),
            signature: Some([5; 64]),
            members: vec![
                Member {
                    name: "fablab-lyon".into(),
                    public_key: inviter(),
                    endpoints: vec!["192.0.2.1:51820".parse().unwrap()],
                    relay: false,
                },
                Member {
                    name: "fablab-nantes".into(),
                    public_key: own(),
                    endpoints: vec![],
                    relay: false,
                },
            ],
        }
    }

    fn usb_rosters() -> Input {
        Input::UsbRosters(vec![
            (
                PathBuf::from("/media/usb0/notes.toml"),
                "shopping = [\"glue\"]\n".into(),
            ),
            (
                PathBuf::from("/media/usb0/roster.toml"),
                window::roster_to_toml(&roster()),
            ),
        ])
    }

    /// An ed25519 OpenSSH public key blob, base64.
    fn ed25519_blob(kind: &str, key_len: usize) -> String {
        let mut b = Vec::new();
        b.extend_from_slice(&(kind.len() as u32).to_be_bytes());
        b.extend_from_slice(kind.as_bytes());
        b.extend_from_slice(&(key_len as u32).to_be_bytes());
        b.extend(std::iter::repeat_n(7u8, key_len));
        BASE64.encode(b)
    }

    fn ssh_key() -> String {
        format!(
            "ssh-ed25519 {} maker@fablab",
            ed25519_blob("ssh-ed25519", 32)
        )
    }

    fn k(key: Key) -> Input {
        Input::Key(key)
    }

    fn enters(n: usize) -> Vec<Input> {
        (0..n).map(|_| k(Key::Enter)).collect()
    }

    fn typed(text: &str) -> Vec<Input> {
        text.chars().map(|c| Input::Key(Key::Char(c))).collect()
    }

    /// Feeds inputs; returns every action.
    fn feed(w: &mut Wizard, inputs: impl IntoIterator<Item = Input>) -> Vec<Action> {
        inputs.into_iter().flat_map(|i| w.handle(i)).collect()
    }

    fn finishes(actions: &[Action]) -> usize {
        actions
            .iter()
            .filter(|a| matches!(a, Action::Finish(_)))
            .count()
    }

    /// A wizard driven to the invitation code step.
    fn at_code() -> Wizard {
        let mut w = wizard();
        feed(&mut w, [Input::Now(NOW), devices(), k(Key::Enter)]);
        feed(&mut w, typed("fablab-nantes"));
        feed(&mut w, [k(Key::Enter), k(Key::Enter)]);
        assert_eq!(w.step(), Step::InvitationCode);
        w
    }

    /// A wizard driven to the open hours step with `code`.
    fn at_hours(code: &str) -> Wizard {
        let mut w = at_code();
        feed(&mut w, [Input::Paste(code.into()), k(Key::Enter)]);
        assert_eq!(w.step(), Step::OpenHours, "{:?}", w.message());
        w
    }

    /// Text of the screen, trailing spaces cut.
    fn screen(w: &Wizard, width: u16, height: u16) -> String {
        let mut term = Terminal::new(TestBackend::new(width, height)).unwrap();
        term.draw(|f| render(f, w)).unwrap();
        let buf = term.backend().buffer();
        let mut out = String::new();
        for y in 0..buf.area.height {
            let mut line = String::new();
            for x in 0..buf.area.width {
                line.push_str(buf.cell((x, y)).map_or(" ", |c| c.symbol()));
            }
            out.push_str(line.trim_end());
            out.push('\n');
        }
        out
    }

    #[test]
    fn joins_with_an_invitation_end_to_end() {
        let inv = invitation();
        let code = inv.encode();
        assert_eq!(code.len(), 119);
        let mut w = wizard();
        let mut all = feed(&mut w, [Input::Now(NOW), devices()]);
        assert!(screen(&w, 80, 25).contains(&own().to_base64()));
        all.extend(feed(&mut w, [k(Key::Enter)]));
        all.extend(feed(&mut w, typed("fablab-nantes")));
        all.extend(feed(&mut w, [k(Key::Enter)]));
        assert_eq!(w.step(), Step::JoinMethod);
        all.extend(feed(&mut w, [k(Key::Enter)]));
        assert_eq!(w.step(), Step::InvitationCode);
        // Typed key by key, in lower case with spaces instead of dashes: still the code.
        all.extend(feed(&mut w, typed(&code.to_lowercase().replace('-', " "))));
        let s = screen(&w, 80, 25);
        assert!(s.contains("203.0.113.7:51820"), "{s}");
        all.extend(feed(&mut w, [k(Key::Enter)]));
        assert_eq!(w.step(), Step::OpenHours);
        assert!(all.is_empty(), "{all:?}");

        feed(&mut w, [k(Key::ClearField)]);
        feed(&mut w, typed("08:00-20:00"));
        let a = feed(&mut w, [k(Key::Enter)]);
        assert_eq!(w.step(), Step::Camera);
        assert_eq!(a, [Action::ProbeCamera("/dev/video0".into())]);
        feed(&mut w, [Input::CameraProbe { fps: 29.97 }]);
        assert!(screen(&w, 80, 25).contains("test picture: 30 fps"));
        let a = feed(&mut w, [k(Key::Down)]);
        assert_eq!(a, [Action::ProbeCamera("/dev/video2".into())]);
        assert!(!screen(&w, 80, 25).contains("test picture: 30 fps"));

        let a = feed(&mut w, [k(Key::Enter)]);
        assert_eq!(w.step(), Step::Microphone);
        assert_eq!(a, [Action::StartLevel("hw:1,0".into())]);
        feed(&mut w, [Input::Level(-23.0)]);
        assert!(screen(&w, 80, 25).contains("-23 dBFS"));
        let a = feed(&mut w, [k(Key::Down)]);
        assert_eq!(a, [Action::StartLevel("hw:2,0".into())]);
        let a = feed(&mut w, [k(Key::Enter)]);
        assert_eq!(a, [Action::StopLevel]);
        assert_eq!(w.step(), Step::Speaker);
        let a = feed(&mut w, [k(Key::Char('t'))]);
        assert_eq!(a, [Action::PlayTone("hw:1,0".into())]);
        feed(&mut w, [k(Key::Enter)]);
        assert_eq!(w.step(), Step::SshKey);
        feed(&mut w, [Input::Paste(format!("  {}\n", ssh_key()))]);
        feed(&mut w, [k(Key::Enter)]);
        assert_eq!(w.step(), Step::Summary);
        let s = screen(&w, 80, 25);
        assert!(
            s.contains("08:00-20:00") && s.contains("Logitech C920"),
            "{s}"
        );

        let a = feed(&mut w, [k(Key::Enter)]);
        let want = Answers {
            name: "fablab-nantes".into(),
            join: Join::Invitation { code: code.clone() },
            open_hours: "08:00-20:00".parse().unwrap(),
            camera: Some("/dev/video2".into()),
            microphone: "hw:2,0".into(),
            speaker: "hw:1,0".into(),
            ssh_key: Some(ssh_key()),
        };
        assert_eq!(a, [Action::Finish(want.clone())]);
        assert_eq!(w.step(), Step::Joining);
        assert_eq!(w.join_state(), &JoinState::Working);
        // No way back while joining.
        assert!(feed(&mut w, [k(Key::Esc), k(Key::Enter)]).is_empty());
        assert_eq!(w.step(), Step::Joining);

        feed(
            &mut w,
            [Input::Outcome(Err(
                "cannot reach 203.0.113.7:51820: no answer".into(),
            ))],
        );
        assert!(screen(&w, 80, 25).contains("cannot reach 203.0.113.7:51820"));
        let a = feed(&mut w, [k(Key::Enter)]);
        assert_eq!(a, [Action::Finish(want.clone())]);
        feed(
            &mut w,
            [Input::Outcome(Ok("joined as fablab-nantes".into()))],
        );
        assert_eq!(
            w.join_state(),
            &JoinState::Joined("joined as fablab-nantes".into())
        );
        assert!(feed(&mut w, [k(Key::Esc), k(Key::Enter)]).is_empty());

        // The files: the overlay writes window.toml on redeem; the rest is here.
        let files = answers_to_files(&want, Some(&own())).unwrap();
        assert_eq!(files.window_toml, None);
        assert_eq!(files.open_hours.to_string(), "08:00-20:00");
        assert_eq!(files.authorized_keys, Some(format!("{}\n", ssh_key())));
        assert_eq!(
            files.media.phone_args(),
            [
                "--video-source",
                "/dev/video2",
                "--audio-source",
                "hw:2,0",
                "--audio-sink",
                "hw:1,0"
            ]
        );
    }

    #[test]
    fn joins_with_a_roster_file_end_to_end() {
        let mut w = wizard();
        let mut all = feed(&mut w, [devices(), k(Key::Enter)]);
        all.extend(feed(&mut w, typed("fablab-nantes")));
        all.extend(feed(&mut w, [k(Key::Enter), k(Key::Down), k(Key::Enter)]));
        assert_eq!(w.step(), Step::RosterFile);
        assert!(screen(&w, 80, 25).contains("Looking for USB sticks"));
        feed(&mut w, [k(Key::Enter)]);
        assert!(w.message().unwrap().starts_with("no roster file found"));
        feed(&mut w, [usb_rosters()]);
        // The first file is not a roster: its error shows, Enter does not go on.
        let s = screen(&w, 80, 25);
        assert!(s.contains("/media/usb0/notes.toml:1: key `member`"), "{s}");
        feed(&mut w, [k(Key::Enter)]);
        assert_eq!(w.step(), Step::RosterFile);
        feed(&mut w, [k(Key::Down)]);
        let s = screen(&w, 80, 25);
        assert!(
            s.contains("This roster has this window as fablab-nantes"),
            "{s}"
        );
        // The list is refreshed (a second stick): the choice stays on the same file.
        let Input::UsbRosters(mut files) = usb_rosters() else {
            unreachable!()
        };
        files.insert(0, (PathBuf::from("/media/usb1/a.toml"), "x".into()));
        feed(&mut w, [Input::UsbRosters(files)]);
        feed(&mut w, [k(Key::Enter)]);
        assert_eq!(w.step(), Step::OpenHours);
        all.extend(feed(&mut w, [k(Key::Enter)]));
        assert_eq!(w.step(), Step::Camera);
        // "No camera": no probe.
        let a = feed(&mut w, [k(Key::Down), k(Key::Down), k(Key::Down)]);
        assert_eq!(a, [Action::ProbeCamera("/dev/video2".into())]);
        assert!(screen(&w, 80, 25).contains("only sound"));
        all.extend(feed(&mut w, [k(Key::Enter), k(Key::Enter)]));
        all.extend(feed(&mut w, [k(Key::Enter)]));
        assert_eq!(w.step(), Step::SshKey);
        all.extend(feed(&mut w, [k(Key::Enter), k(Key::Enter)]));
        let answers = match all.last() {
            Some(Action::Finish(a)) => a.clone(),
            other => panic!("{other:?}"),
        };
        assert_eq!(finishes(&all), 1);
        assert_eq!(answers.camera, None);
        assert_eq!(answers.ssh_key, None);
        assert_eq!(answers.open_hours, OpenHours::Always);
        assert_eq!(
            answers.join,
            Join::Roster {
                path: "/media/usb0/roster.toml".into(),
                text: window::roster_to_toml(&roster())
            }
        );

        let files = answers_to_files(&answers, Some(&own())).unwrap();
        let toml = files.window_toml.unwrap();
        let config = window::parse(Path::new("w"), &toml, Some(&own())).unwrap();
        assert_eq!(config.name, "fablab-nantes");
        assert_eq!(
            config.roster,
            roster(),
            "the signed roster is kept as it came"
        );
        assert_eq!(files.authorized_keys, None);
        assert_eq!(files.media.phone_args()[1], "none");
        // The own key check is passed through.
        let e = answers_to_files(&answers, Some(&PublicKey([33; 32]))).unwrap_err();
        assert!(e.contains("made for another window"), "{e}");
    }

    #[test]
    fn empty_and_malformed_names_are_refused() {
        let mut w = wizard();
        feed(&mut w, [k(Key::Enter)]);
        for (text, want) in [
            ("", "the name cannot be empty"),
            ("   ", "the name cannot be empty"),
            (
                "Fablab",
                "the name `Fablab` contains 'F' (names are lowercase)",
            ),
            ("-lab", "the name `-lab` starts with `-`"),
        ] {
            feed(&mut w, [k(Key::ClearField)]);
            feed(&mut w, typed(text));
            let a = feed(&mut w, [k(Key::Enter)]);
            assert!(a.is_empty());
            assert_eq!(w.step(), Step::Name);
            let m = w.message().unwrap();
            assert!(m.starts_with(want), "{m}");
            assert!(screen(&w, 80, 25).contains(want));
            // Typing clears the message.
            feed(&mut w, typed("x"));
            assert_eq!(w.message(), None);
        }
    }

    #[test]
    fn a_mistyped_code_says_typo() {
        let code = invitation().encode();
        // One character changed in the middle.
        let mut chars: Vec<char> = code.chars().collect();
        chars[60] = if chars[60] == 'A' { 'B' } else { 'A' };
        let bad: String = chars.into_iter().collect();
        let mut w = at_code();
        feed(&mut w, typed(&bad));
        // No red while typing.
        assert!(!screen(&w, 80, 25).contains("typo"));
        let a = feed(&mut w, [k(Key::Enter)]);
        assert!(a.is_empty());
        assert_eq!(w.step(), Step::InvitationCode);
        assert_eq!(w.message(), Some("the code has a typo: check it again"));
        assert!(screen(&w, 80, 25).contains("the code has a typo: check it again"));

        let mut w = at_code();
        feed(&mut w, typed("EWIN1-ABCDE"));
        feed(&mut w, [k(Key::Enter)]);
        assert_eq!(
            w.message(),
            Some("the code is too short: part of it is missing, check it again")
        );
        let mut w = at_code();
        feed(&mut w, [k(Key::Enter)]);
        assert_eq!(
            w.message(),
            Some("type the invitation code: it starts with EWIN1-")
        );
        feed(&mut w, typed("hello"));
        feed(&mut w, [k(Key::Enter)]);
        assert_eq!(
            w.message(),
            Some("this is not an invitation code: those start with EWIN1-")
        );
    }

    #[test]
    fn an_expired_code_is_refused_with_its_date() {
        let inv = invitation();
        let expiry = u64::from(inv.expires_unix);
        let mut w = at_code();
        feed(
            &mut w,
            [Input::Now(expiry + 60), Input::Paste(inv.encode())],
        );
        // A complete code is judged at once.
        assert!(screen(&w, 80, 25).contains("this invitation expired on"));
        let a = feed(&mut w, [k(Key::Enter)]);
        assert!(a.is_empty());
        assert_eq!(w.step(), Step::InvitationCode);
        assert_eq!(
            w.message(),
            Some(
                "this invitation expired on 2026-01-01 01:00 UTC (this window's clock says \
                 2026-01-01 01:01 UTC): ask the inviting window for a new code"
            )
        );
        // Valid when typed, expired by the time of the summary: no Finish.
        let mut w = at_hours(&inv.encode());
        let mut all = feed(&mut w, enters(5));
        assert_eq!(w.step(), Step::Summary);
        all.extend(feed(&mut w, [Input::Now(expiry), k(Key::Enter)]));
        assert_eq!(finishes(&all), 0);
        assert_eq!(w.step(), Step::Summary);
        let m = w.message().unwrap();
        assert!(
            m.starts_with("step 4 (Invitation code): this invitation expired on"),
            "{m}"
        );
    }

    #[test]
    fn bad_open_hours_are_refused() {
        let mut w = at_hours(&invitation().encode());
        for (text, want) in [
            (
                "8-20",
                "open hours `8-20`: expected \"always\" or \"HH:MM-HH:MM\"",
            ),
            ("08:00-24:00", "(hours 00 to 23, minutes 00 to 59"),
            ("10:00-10:00", "starts and ends at the same time"),
            ("", "the open hours cannot be empty"),
        ] {
            feed(&mut w, [k(Key::ClearField)]);
            feed(&mut w, typed(text));
            let a = feed(&mut w, [k(Key::Enter)]);
            assert!(a.is_empty());
            assert_eq!(w.step(), Step::OpenHours);
            let m = w.message().unwrap();
            assert!(m.contains(want), "{m}");
        }
        feed(&mut w, [k(Key::ClearField)]);
        feed(&mut w, typed(" Always "));
        feed(&mut w, [k(Key::Enter)]);
        assert_eq!(w.step(), Step::Camera);
    }

    #[test]
    fn a_bad_ssh_key_is_refused() {
        let mut w = at_hours(&invitation().encode());
        let mut all = feed(&mut w, enters(4));
        assert_eq!(w.step(), Step::SshKey);
        feed(&mut w, typed("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5!!"));
        all.extend(feed(&mut w, [k(Key::Enter)]));
        assert_eq!(w.step(), Step::SshKey);
        assert!(w
            .message()
            .unwrap()
            .starts_with("the key is not valid base64"));
        assert_eq!(finishes(&all), 0);
    }

    #[test]
    fn ssh_key_lines() {
        let blob = ed25519_blob("ssh-ed25519", 32);
        assert_eq!(check_ssh_key(""), Ok(None));
        assert_eq!(check_ssh_key("  \t "), Ok(None));
        assert_eq!(
            check_ssh_key(&format!(" ssh-ed25519   {blob}  a b \n")),
            Ok(Some(format!("ssh-ed25519 {blob} a b")))
        );
        assert_eq!(
            check_ssh_key(&format!("ssh-ed25519 {blob}")),
            Ok(Some(format!("ssh-ed25519 {blob}")))
        );
        let rsa = ed25519_blob("ssh-rsa", 257);
        assert!(check_ssh_key(&format!("ssh-rsa {rsa} me")).is_ok());
        let err = |s: &str| check_ssh_key(s).unwrap_err();
        assert!(err("ssh-dss AAAA").starts_with("`ssh-dss` is not an SSH public key type"));
        assert!(err(&blob).contains("is not an SSH public key type"));
        assert!(err("ssh-ed25519").starts_with("the key itself is missing"));
        assert!(err("ssh-ed25519 ****").starts_with("the key is not valid base64"));
        assert!(err(&format!("ssh-rsa {blob}")).contains("says \"ssh-ed25519\" inside"));
        assert!(
            err(&format!("ssh-ed25519 {}", ed25519_blob("ssh-ed25519", 31))).contains("32 bytes")
        );
        assert!(err("ssh-ed25519 AAAA").contains("too short"));
        assert!(
            err("-----BEGIN OPENSSH PRIVATE KEY----- b3BlbnNzaC1rZXktdjEAAAAA")
                .starts_with("this is a private key")
        );
    }

    #[test]
    fn rosters_without_this_window_are_refused() {
        let path = Path::new("/media/usb0/roster.toml");
        let text = window::roster_to_toml(&roster());
        assert!(check_roster(path, &text, "fablab-nantes", Some(&own())).is_ok());
        assert!(check_roster(path, &text, "fablab-nantes", None).is_ok());
        let e = check_roster(path, &text, "makerspace-x", Some(&own())).unwrap_err();
        assert!(e.starts_with("this roster has this window's key under the name `fablab-nantes`"));
        let e = check_roster(path, &text, "makerspace-x", None).unwrap_err();
        assert!(
            e.starts_with("this roster has no window called `makerspace-x` (it has fablab-lyon, fablab-nantes)"),
            "{e}"
        );
        let e = check_roster(path, &text, "fablab-lyon", Some(&own())).unwrap_err();
        assert!(e.contains("made for another window"), "{e}");
        let bad = "[[member]]\nname = \"a\"\npublic_key = \"x\"\n";
        let e = check_roster(path, bad, "a", None).unwrap_err();
        assert!(
            e.starts_with("/media/usb0/roster.toml:3: key `member[0].public_key`"),
            "{e}"
        );

        // In the wizard: the name typed at step 2 is checked against the chosen roster.
        let mut w = wizard();
        feed(&mut w, [k(Key::Enter)]);
        feed(&mut w, typed("atelier"));
        feed(
            &mut w,
            [
                k(Key::Enter),
                k(Key::Char('2')),
                k(Key::Enter),
                usb_rosters(),
            ],
        );
        feed(&mut w, [k(Key::Down), k(Key::Enter)]);
        assert_eq!(w.step(), Step::RosterFile);
        assert!(w
            .message()
            .unwrap()
            .contains("name this window fablab-nantes"));
    }

    #[test]
    fn patching_the_redeemed_window_file() {
        let config = WindowConfig {
            name: "fablab-nantes".into(),
            listen_port: 51820,
            open_hours: OpenHours::Always,
            partner: None,
            presence_interval_s: 10,
            roster: roster(),
            media: Default::default(),
        };
        let redeemed = window::to_toml(&config);
        let hours: OpenHours = "22:00-06:00".parse().unwrap();
        let patched = patch_redeemed(&redeemed, hours, Some(&own())).unwrap();
        let back = window::parse(Path::new("w"), &patched, Some(&own())).unwrap();
        assert_eq!(back.open_hours, hours);
        assert_eq!(back.roster, config.roster);
        assert!(patch_redeemed(&redeemed, hours, Some(&inviter())).is_err());
        assert!(patch_redeemed("[window]\n", hours, None).is_err());
    }

    #[test]
    fn going_back_keeps_the_answers() {
        let code = invitation().encode();
        let mut w = at_hours(&code);
        feed(&mut w, [k(Key::Enter), k(Key::Enter)]);
        assert_eq!(w.step(), Step::Microphone);
        let a = feed(&mut w, [k(Key::Esc)]);
        assert_eq!(
            a,
            [Action::StopLevel, Action::ProbeCamera("/dev/video0".into())]
        );
        let a = feed(&mut w, (0..5).map(|_| k(Key::Esc)));
        assert!(a.is_empty());
        assert_eq!(w.step(), Step::Welcome);
        assert!(feed(&mut w, [k(Key::Esc)]).is_empty());
        assert_eq!(w.step(), Step::Welcome);
        feed(&mut w, enters(3));
        assert_eq!(w.step(), Step::InvitationCode);
        assert!(screen(&w, 200, 60).contains(&code[code.len() - 20..]));
    }

    #[test]
    fn devices_plugged_in_later() {
        let mut w = at_hours(&invitation().encode());
        // No devices yet: "no camera" is the only choice, and microphone/speaker wait.
        let mut w2 = wizard();
        feed(&mut w2, [Input::Now(NOW), k(Key::Enter)]);
        feed(&mut w2, typed("a"));
        feed(&mut w2, [k(Key::Enter), k(Key::Enter)]);
        feed(
            &mut w2,
            [Input::Paste(invitation().encode()), k(Key::Enter)],
        );
        let a = feed(&mut w2, [k(Key::Enter)]);
        assert!(a.is_empty());
        assert!(screen(&w2, 80, 25).contains("Looking for cameras"));
        // A camera appears while on the camera step: it is chosen and probed.
        let a = feed(&mut w2, [devices()]);
        assert_eq!(a, [Action::ProbeCamera("/dev/video0".into())]);
        feed(&mut w2, [k(Key::Enter)]);
        // The chosen microphone is unplugged: the next one is measured.
        let Input::Devices {
            cameras, speakers, ..
        } = devices()
        else {
            unreachable!()
        };
        let a = feed(
            &mut w2,
            [Input::Devices {
                cameras: cameras.clone(),
                microphones: vec![dev("hw:2,0", "USB Camera microphone")],
                speakers: speakers.clone(),
            }],
        );
        assert_eq!(a, [Action::StartLevel("hw:2,0".into())]);
        let a = feed(
            &mut w2,
            [Input::Devices {
                cameras,
                microphones: vec![],
                speakers: vec![],
            }],
        );
        assert_eq!(a, [Action::StopLevel]);
        feed(&mut w2, [k(Key::Enter)]);
        assert_eq!(w2.step(), Step::Microphone);
        assert_eq!(
            w2.message(),
            Some("no microphone was found: plug one in (USB); the list updates by itself")
        );

        // "No camera" chosen stays chosen when the list changes.
        feed(&mut w, [k(Key::Enter), k(Key::Down), k(Key::Down)]);
        feed(&mut w, [devices()]);
        feed(&mut w, [k(Key::Esc), k(Key::Enter)]);
        feed(
            &mut w,
            [k(Key::Enter), k(Key::Enter), k(Key::Enter), k(Key::Enter)],
        );
        assert_eq!(w.answers().unwrap().camera, None);
    }

    #[test]
    fn text_fields_edit_and_scroll() {
        let mut f = TextField::default();
        for c in "abc".chars() {
            f.edit(Key::Char(c));
        }
        f.edit(Key::Left);
        f.edit(Key::Backspace);
        assert_eq!((f.text.as_str(), f.cursor), ("ac", 1));
        f.edit(Key::Delete);
        assert_eq!(f.text, "a");
        f.edit(Key::Home);
        f.edit(Key::Char('é'));
        f.edit(Key::End);
        f.edit(Key::Char('\u{7}'));
        assert_eq!((f.text.as_str(), f.cursor), ("éa", 2));
        f.edit(Key::ClearField);
        assert_eq!((f.text.as_str(), f.cursor), ("", 0));

        let f = TextField::with("0123456789");
        assert_eq!(f.visible(20), ("0123456789".into(), 10));
        assert_eq!(f.visible(5), ("…789".into(), 4));
        assert_eq!(f.visible(0), (String::new(), 0));
        let f = TextField {
            text: "0123456789".into(),
            cursor: 0,
        };
        assert_eq!(f.visible(5), ("0123…".into(), 0));

        // A pasted 119-character code on 80 columns: the end is shown.
        let code = invitation().encode();
        let mut w = at_code();
        feed(&mut w, [Input::Paste(code.clone())]);
        let s = screen(&w, 80, 25);
        let row = s.lines().find(|l| l.contains('…')).expect(&s);
        assert!(row.contains(&code[code.len() - 40..]), "{row}");
        assert!(!row.contains(&code[..20]), "{row}");
        let mut term = Terminal::new(TestBackend::new(80, 25)).unwrap();
        term.draw(|f| render(f, &w)).unwrap();
        let cursor = term.get_cursor_position().unwrap();
        assert_eq!((cursor.x, cursor.y), (77, 7));
    }

    #[test]
    fn errors_are_drawn_in_red() {
        let mut w = wizard();
        feed(&mut w, [k(Key::Enter), k(Key::Enter)]);
        let mut term = Terminal::new(TestBackend::new(80, 25)).unwrap();
        term.draw(|f| render(f, &w)).unwrap();
        let buf = term.backend().buffer();
        let (x, y) = (0..25)
            .flat_map(|y| (0..80).map(move |x| (x, y)))
            .find(|&(x, y)| {
                buf.cell((x, y)).unwrap().symbol() == "t"
                    && (x..x + 8)
                        .map(|x| buf.cell((x, y)).unwrap().symbol())
                        .collect::<String>()
                        == "the name"
            })
            .unwrap();
        assert_eq!(buf.cell((x, y)).unwrap().fg, Color::LightRed);
    }

    #[test]
    fn wrapping() {
        assert_eq!(wrap("a bb ccc", 4), ["a bb", "ccc"]);
        assert_eq!(wrap("abcdefghij", 4), ["abcd", "efgh", "ij"]);
        assert_eq!(wrap("x abcdefghij", 4), ["x", "abcd", "efgh", "ij"]);
        assert_eq!(wrap("a\n\nb", 4), ["a", "", "b"]);
        assert!(wrap("abc", 0).is_empty());
        assert_eq!(utc(NOW), "2026-01-01 00:00 UTC");
        assert_eq!(utc(0), "1970-01-01 00:00 UTC");
        assert_eq!(utc(951_825_600 + 3661), "2000-02-29 13:01 UTC");
        assert_eq!(utc(u64::from(u32::MAX)), "2106-02-07 06:28 UTC");
    }

    #[test]
    fn keys_from_crossterm() {
        let ev = |code, mods| KeyEvent::new(code, mods);
        assert_eq!(
            Key::from_crossterm(&ev(KeyCode::Char('a'), KeyModifiers::NONE)),
            Some(Key::Char('a'))
        );
        assert_eq!(
            Key::from_crossterm(&ev(KeyCode::Char('A'), KeyModifiers::SHIFT)),
            Some(Key::Char('A'))
        );
        assert_eq!(
            Key::from_crossterm(&ev(KeyCode::Char('u'), KeyModifiers::CONTROL)),
            Some(Key::ClearField)
        );
        assert_eq!(
            Key::from_crossterm(&ev(KeyCode::Char('c'), KeyModifiers::CONTROL)),
            None
        );
        assert_eq!(
            Key::from_crossterm(&ev(KeyCode::Enter, KeyModifiers::NONE)),
            Some(Key::Enter)
        );
        let mut release = ev(KeyCode::Enter, KeyModifiers::NONE);
        release.kind = KeyEventKind::Release;
        assert_eq!(Key::from_crossterm(&release), None);
    }

    #[test]
    fn debug_never_shows_a_code() {
        let code = invitation().encode();
        let mut w = at_hours(&code);
        let a = feed(&mut w, enters(6));
        let printed = format!("{a:?} {:?}", Input::Paste(code.clone()));
        assert_eq!(finishes(&a), 1, "{printed}");
        let body = &code[6..30];
        assert!(!printed.contains(body), "{printed}");
        assert!(printed.contains("Invitation { code: .. }"), "{printed}");
    }

    /// A stand-in for the QR module's output: 37 columns by 19 rows of half blocks.
    fn fake_qr() -> Vec<String> {
        let mut x: u32 = 0x2545_f491;
        (0..19)
            .map(|_| {
                (0..37)
                    .map(|_| {
                        x ^= x << 13;
                        x ^= x >> 17;
                        x ^= x << 5;
                        [' ', '▀', '▄', '█'][(x % 4) as usize]
                    })
                    .collect()
            })
            .collect()
    }

    /// Every screen the snapshots show, by name.
    fn screens() -> Vec<(&'static str, Wizard)> {
        let code = fixed_invitation().encode();
        let mut out = Vec::new();
        let mut w = wizard();
        w.qr = Some(fake_qr());
        feed(&mut w, [Input::Now(NOW), devices()]);
        out.push(("01_welcome", clone(&w, &[])));
        feed(&mut w, [k(Key::Enter), k(Key::Enter)]);
        out.push(("02_name_empty", clone(&w, &[])));
        feed(&mut w, typed("fablab-nantes"));
        feed(&mut w, [k(Key::Enter)]);
        out.push(("03_join_method", clone(&w, &[])));
        let mut r = clone(
            &w,
            &[k(Key::Down), k(Key::Enter), usb_rosters(), k(Key::Down)],
        );
        out.push(("04_roster_file", clone(&r, &[])));
        feed(&mut r, [k(Key::Up)]);
        out.push(("04_roster_file_bad", r));
        feed(&mut w, [k(Key::Enter)]);
        let mut typo: Vec<char> = code.chars().collect();
        typo[60] = if typo[60] == 'A' { 'B' } else { 'A' };
        let typo: String = typo.into_iter().collect();
        out.push((
            "04_invitation_typo",
            clone(&w, &[Input::Paste(typo), k(Key::Enter)]),
        ));
        feed(&mut w, [Input::Paste(code)]);
        out.push(("04_invitation_valid", clone(&w, &[])));
        out.push((
            "04_invitation_expired",
            clone(&w, &[Input::Now(1_767_312_000 + 3600), k(Key::Enter)]),
        ));
        feed(&mut w, [k(Key::Enter)]);
        out.push((
            "05_open_hours_bad",
            clone(&w, &[k(Key::ClearField)])
                .with(&typed("8:00-20:00"))
                .with(&[k(Key::Enter)]),
        ));
        feed(&mut w, [k(Key::ClearField)]);
        feed(&mut w, typed("08:00-20:00"));
        feed(&mut w, [k(Key::Enter), Input::CameraProbe { fps: 30.0 }]);
        out.push(("06_camera", clone(&w, &[])));
        feed(&mut w, [k(Key::Enter), Input::Level(-23.0)]);
        out.push(("07_microphone", clone(&w, &[])));
        feed(&mut w, [k(Key::Enter), k(Key::Char('t'))]);
        out.push(("08_speaker", clone(&w, &[])));
        feed(&mut w, [k(Key::Enter)]);
        out.push((
            "09_ssh_key_bad",
            clone(
                &w,
                &[
                    Input::Paste("ssh-dss AAAAB3NzaC1kc3M me".into()),
                    k(Key::Enter),
                ],
            ),
        ));
        feed(&mut w, [Input::Paste(ssh_key()), k(Key::Enter)]);
        out.push(("10_summary", clone(&w, &[])));
        feed(&mut w, [k(Key::Enter)]);
        out.push(("11_joining", clone(&w, &[])));
        out.push((
            "11_join_failed",
            clone(
                &w,
                &[Input::Outcome(Err(
                    "the inviting window at 203.0.113.7:51820 did not answer within 30 s: \
                     check this window's network cable"
                        .into(),
                ))],
            ),
        ));
        out.push((
            "11_joined",
            clone(
                &w,
                &[Input::Outcome(Ok(
                    "This window joined the network as fablab-nantes.".into(),
                ))],
            ),
        ));
        out
    }

    /// A wizard in the same state, with more inputs (the real one has no Clone: no copies of
    /// codes lying around outside tests).
    fn clone(w: &Wizard, more: &[Input]) -> Wizard {
        let mut c = Wizard {
            qr: w.qr.clone(),
            public_key: w.public_key.clone(),
            step: w.step,
            message: w.message.clone(),
            now_unix: w.now_unix,
            name: w.name.clone(),
            method: w.method,
            code: w.code.clone(),
            rosters: w
                .rosters
                .iter()
                .map(|r| RosterFile {
                    path: r.path.clone(),
                    text: r.text.clone(),
                    parsed: r.parsed.clone(),
                })
                .collect(),
            rosters_seen: w.rosters_seen,
            roster_sel: w.roster_sel,
            hours: w.hours.clone(),
            devices_seen: w.devices_seen,
            cameras: w.cameras.clone(),
            camera_sel: w.camera_sel,
            fps: w.fps,
            microphones: w.microphones.clone(),
            microphone_sel: w.microphone_sel,
            level: w.level,
            speakers: w.speakers.clone(),
            speaker_sel: w.speaker_sel,
            tone_played: w.tone_played,
            ssh: w.ssh.clone(),
            joining: w.joining.clone(),
        };
        feed(&mut c, more.iter().cloned());
        c
    }

    impl Wizard {
        fn with(mut self, inputs: &[Input]) -> Wizard {
            feed(&mut self, inputs.iter().cloned());
            self
        }
    }

    /// Compares each screen at 80×25 and 200×60 with `src/snapshots/`; with
    /// `UPDATE_SNAPSHOTS=1` writes them instead (review the files before committing).
    #[test]
    fn snapshots() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/snapshots");
        let update = std::env::var_os("UPDATE_SNAPSHOTS").is_some();
        let mut failed = Vec::new();
        for (name, w) in screens() {
            for (width, height) in [(80, 25), (200, 60)] {
                let got = screen(&w, width, height);
                let file = dir.join(format!("wizard_{name}_{width}x{height}.txt"));
                if update {
                    std::fs::create_dir_all(&dir).unwrap();
                    std::fs::write(&file, &got).unwrap();
                } else {
                    let want = std::fs::read_to_string(&file).unwrap_or_default();
                    if want != got {
                        failed.push(format!("{}:\n{got}", file.display()));
                    }
                }
            }
        }
        assert!(
            failed.is_empty(),
            "screens differ from their snapshots (UPDATE_SNAPSHOTS=1 rewrites them):\n{}",
            failed.join("\n")
        );
    }

    #[test]
    fn no_panic_at_any_small_size() {
        let screens = screens();
        for width in 0..=45 {
            for height in 0..=14 {
                for (_, w) in &screens {
                    screen(w, width, height);
                }
            }
        }
        for (width, height) in [(1, 1), (1, 200), (300, 1), (2, 2), (19, 30), (20, 5)] {
            for (_, w) in &screens {
                screen(w, width, height);
            }
        }
    }
}
