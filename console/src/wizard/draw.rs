//! Drawing the wizard's screens with ratatui: a title, the step's question and its field,
//! list or status, the validation message in red, and the keys at the bottom.

use ewindow_protocol::invite::Invitation;
use ratatui::layout::Rect;
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, List, ListItem, ListState, Paragraph, Wrap};
use ratatui::Frame;

use super::checks::{check_code, check_ssh_key, short_key, utc};
use super::{Device, JoinMethod, JoinState, Step, TextField, Wizard, STEPS};
use crate::view;

/// The level meter shows −60 dBFS (empty) to 0 dBFS (full).
const METER_FLOOR_DB: f32 = -60.0;

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

/// Words of `text` in lines of at most `width` terminal columns (longer words are cut), with
/// [`view::wrap_words`]; each line of `text` starts a new one, and an empty line stays.
pub(super) fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut lines = Vec::new();
    if width == 0 {
        return lines;
    }
    for paragraph in text.split('\n') {
        let words = view::wrap_words(paragraph, width);
        if words.is_empty() {
            lines.push(String::new());
        } else {
            lines.extend(words);
        }
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
        Step::JoinMethod => &[("↑↓ 1 2 3", "choose"), ("Enter", "next"), ("Esc", "back")],
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
                 public key to the roster and gives you the roster file on a USB stick. The \
                 first window of a group starts a new network and invites the others.",
            ));
            out.push(blank());
            out.push(Piece::List {
                title: "How to join",
                items: vec![
                    "1  Type an invitation code".into(),
                    "2  Read a roster file from a USB stick".into(),
                    "3  Start a new network (the first window)".into(),
                ],
                selected: match w.method {
                    JoinMethod::Invitation => 0,
                    JoinMethod::Roster => 1,
                    JoinMethod::Found => 2,
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
                        JoinMethod::Found => {
                            "Starting a new network… This window writes its settings and starts."
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
            JoinMethod::Found => {
                "a new network, this window its first member; invite the others from here".into()
            }
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
