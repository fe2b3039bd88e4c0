//! What the status console draws: a pure function of a [`Model`] and a [`Screen`].
//!
//! The console runs on tty1 of the window (people in the café see it whenever no video
//! shows) and in any terminal, from an 80x25 serial line to a large HDMI console read from
//! three metres. So:
//!
//! - the window's state is a centred headline: drawn in block letters (the public-domain
//!   8x8 font of the `font8x8` crate, drawn here with `▀▄█`) when the area is at least
//!   [`BIG_MIN_WIDTH`]x[`BIG_MIN_HEIGHT`], a bold boxed line below that, a bold line when
//!   even the box does not fit;
//! - below it: the members with presence and WireGuard handshake age, the call's quality,
//!   service health, the last log lines, and a footer with the keys;
//! - "Setting up" shows the window's public key as text and as a QR code, and an
//!   invitation (`ewindowctl invite`) is shown with its QR code too;
//! - only glyphs of the Linux console's default (CP437) font are used: ASCII, box drawing
//!   (`─│┌╔═`), `▀▄█`, `■○·`; colours are the 16 of the Linux console, backgrounds only the
//!   first 8, and meaning never rests on colour alone (words say it too);
//! - every size renders, down to 1x1, and nothing is written outside the area.
//!
//! No IO and no clock: time comes in the model ([`Model::clock`], ages and durations).
//! Every string from the model is cleaned of control characters before it reaches the
//! terminal, so a log line cannot carry an escape sequence to tty1.

use std::borrow::Cow;

use font8x8::UnicodeFonts;
use qrcode::{EcLevel, QrCode};
use ratatui::buffer::Buffer;
use ratatui::layout::{Alignment, Position, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, BorderType, Borders, Clear, Paragraph, Widget};
use ratatui::Frame;
use unicode_width::UnicodeWidthStr;

#[cfg(test)]
mod tests;

/// Narrowest area whose headline is drawn in block letters.
pub const BIG_MIN_WIDTH: u16 = 120;
/// Lowest area whose headline is drawn in block letters.
pub const BIG_MIN_HEIGHT: u16 = 40;

/// Everything the console shows. The console's main loop fills it from the sockets of
/// `ewindow-init`, `ewindow-phone` and `ewindow-overlay`; this module only draws it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Model {
    /// This window's name, `None` before provisioning.
    pub window_name: Option<String>,
    /// What the window is doing: the headline.
    pub state: WindowState,
    /// The other members, in the order to show them.
    pub members: Vec<MemberView>,
    /// The call in progress, if any.
    pub call: Option<CallView>,
    /// The services of `ewindow-init`, in start order.
    pub services: Vec<ServiceView>,
    /// The last log lines, oldest first.
    pub logs: Vec<String>,
    /// Sources that are not there yet, e.g. `"ewindow-init (/run/ewindow/init.sock)"`: shown
    /// as "Waiting for …" instead of failing. An entry whose first word is `ewindow-init`
    /// stands in for the services, `ewindow-phone` for the members and the call, and
    /// `ewindow-overlay` for the public key on the "setting up" screen; the others (and
    /// those whose section is not on the screen) are listed under the headline.
    pub waiting_for: Vec<String>,
    /// The local time, already formatted (`"14:05"`).
    pub clock: String,
    /// This window's WireGuard public key (base64, 44 characters): shown as text and as a
    /// QR code on the "setting up" screen.
    pub public_key: Option<String>,
    /// An invitation this window made (the `i` key): shown with its QR code on the main
    /// screen until it is redeemed or expires.
    pub invitation: Option<ShownInvitation>,
    /// A transient line under the headline ("curtain closed", "calling fablab-nantes…").
    pub message: Option<String>,
}

/// An invitation on the screen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShownInvitation {
    /// The code (`EWIN1-…`).
    pub code: String,
    /// The member name it admits.
    pub name: String,
    /// When it expires, Unix seconds.
    pub expires_unix: u64,
}

/// What the window is doing, which is the headline: the phone's state as it publishes it.
pub use ewindow_protocol::phone::WindowState;

/// One other member, as the phone (presence) and the overlay (handshake) see it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MemberView {
    /// The member's name.
    pub name: String,
    /// Whether its last SIP OPTIONS was answered.
    pub online: bool,
    /// Round trip of that OPTIONS, when answered.
    pub rtt_ms: Option<f64>,
    /// Seconds since the last WireGuard handshake with it, if there was one.
    pub handshake_age_s: Option<u64>,
    /// How the overlay reaches it: `direct`, `via relay NAME`, `trying`, `unreachable`.
    pub path: Option<String>,
}

/// The call in progress and its quality (received streams).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CallView {
    /// The member at the other end.
    pub peer: String,
    /// Audio codec (`opus`, `pcmu`, …).
    pub audio_codec: Option<String>,
    /// Video codec (`vp8`, `vp9`, `h264`), if the call has video.
    pub video_codec: Option<String>,
    /// Width of the received picture.
    pub width: Option<u32>,
    /// Height of the received picture.
    pub height: Option<u32>,
    /// Received frames per second.
    pub fps: Option<f64>,
    /// Received bitrate, all streams, kbit/s.
    pub bitrate_kbps: Option<f64>,
    /// Packets lost, percent.
    pub loss_pct: Option<f64>,
    /// Round-trip time from RTCP, ms.
    pub rtt_ms: Option<f64>,
    /// Seconds since the call was established.
    pub duration_s: f64,
}

/// One service of `ewindow-init`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ServiceView {
    /// Its name.
    pub name: String,
    /// Its state as init reports it: `running`, `backoff`, `failed`, `starting`, …
    pub state: String,
    /// Times it was started again after exiting on its own.
    pub restarts: u32,
}

/// Which screen to draw.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Screen {
    /// The state, members, call, services and the last log lines.
    #[default]
    Main,
    /// As many log lines as fit.
    Logs,
    /// The keys and what the window is, for a café visitor.
    Help,
}

/// Draws `screen` for `model` over the whole frame.
pub fn render(frame: &mut Frame, model: &Model, screen: Screen) {
    let area = frame.area();
    frame.render_widget(Console { model, screen }, area);
}

/// The console as a widget, to draw it into any area of a buffer; it writes nothing
/// outside that area. [`render`] draws it over the whole frame.
#[derive(Debug, Clone, Copy)]
pub struct Console<'a> {
    /// What to show.
    pub model: &'a Model,
    /// Which screen.
    pub screen: Screen,
}

impl Widget for Console<'_> {
    fn render(self, area: Rect, buf: &mut Buffer) {
        let area = area.intersection(buf.area);
        if area.is_empty() {
            return;
        }
        Clear.render(area, buf);
        let mut rest = area;
        if rest.height >= 4 {
            top_bar(take_top(&mut rest, 1), buf, self.model);
        }
        if rest.height >= 3 {
            footer(take_bottom(&mut rest, 1), buf, self.screen);
        }
        match self.screen {
            Screen::Main => main_screen(rest, buf, self.model, area),
            Screen::Logs => logs_screen(rest, buf, self.model),
            Screen::Help => help_screen(rest, buf),
        }
    }
}

// ---------------------------------------------------------------------------------------
// Styles: the 16 colours of the Linux console; backgrounds only from the first 8.

fn dim() -> Style {
    Style::new().fg(Color::DarkGray)
}

fn bold() -> Style {
    Style::new().add_modifier(Modifier::BOLD)
}

fn warn() -> Style {
    Style::new().fg(Color::LightYellow)
}

fn bad() -> Style {
    Style::new()
        .fg(Color::LightRed)
        .add_modifier(Modifier::BOLD)
}

fn good() -> Style {
    Style::new().fg(Color::LightGreen)
}

/// The light background and dark foreground of a QR code, whatever the terminal's own
/// colours are (Gray is colour 7, a background every console has).
const QR_DARK: Color = Color::Black;
const QR_LIGHT: Color = Color::Gray;

fn state_color(state: &WindowState) -> Color {
    match state {
        WindowState::SettingUp => Color::LightYellow,
        WindowState::Open { .. } => Color::LightGreen,
        WindowState::Connecting { .. } => Color::LightYellow,
        WindowState::Waiting => Color::LightCyan,
        WindowState::ClosedUntil { .. } => Color::LightBlue,
        WindowState::Curtain => Color::LightMagenta,
    }
}

// ---------------------------------------------------------------------------------------
// Text helpers.

/// `s` without control characters (a tab becomes a space, others `?`).
fn clean(s: &str) -> Cow<'_, str> {
    if s.chars().any(char::is_control) {
        Cow::Owned(
            s.chars()
                .map(|c| match c {
                    '\t' => ' ',
                    c if c.is_control() => '?',
                    c => c,
                })
                .collect(),
        )
    } else {
        Cow::Borrowed(s)
    }
}

fn width_of(s: &str) -> usize {
    UnicodeWidthStr::width(s)
}

/// `s` cut to `width` columns.
fn cut(s: &str, width: usize) -> String {
    let mut out = String::new();
    let mut used = 0;
    for c in s.chars() {
        let w = UnicodeWidthStr::width(c.encode_utf8(&mut [0; 4]) as &str);
        if used + w > width {
            break;
        }
        used += w;
        out.push(c);
    }
    out
}

/// Greedy word wrap to `width` terminal columns (display width, so a wide character takes
/// two); a word longer than a line is split. Words are separated by any whitespace, and no
/// line is empty. The wizard wraps with it too, line by line of its text.
pub(crate) fn wrap_words(text: &str, width: usize) -> Vec<String> {
    let mut lines = Vec::new();
    if width == 0 {
        return lines;
    }
    let mut line = String::new();
    for word in text.split_whitespace() {
        let mut word = word.to_string();
        loop {
            let sep = usize::from(!line.is_empty());
            if width_of(&line) + sep + width_of(&word) <= width {
                if sep == 1 {
                    line.push(' ');
                }
                line.push_str(&word);
                break;
            }
            if !line.is_empty() {
                lines.push(std::mem::take(&mut line));
                continue;
            }
            // The word alone is wider than a line.
            let head = cut(&word, width);
            let head = if head.is_empty() {
                word.chars().take(1).collect()
            } else {
                head
            };
            word = word[head.len()..].to_string();
            lines.push(head);
            if word.is_empty() {
                break;
            }
        }
    }
    if !line.is_empty() {
        lines.push(line);
    }
    lines
}

/// A code (no spaces) in lines of at most `width` columns: broken after a `-` when it has
/// dashes (`EWIN1-…`), else in pieces of even length.
fn wrap_code(code: &str, width: usize) -> Vec<String> {
    if width == 0 {
        return Vec::new();
    }
    if code.contains('-') {
        let mut lines: Vec<String> = Vec::new();
        let mut line = String::new();
        for piece in code.split_inclusive('-') {
            if !line.is_empty() && width_of(&line) + width_of(piece) > width {
                lines.push(std::mem::take(&mut line));
            }
            line.push_str(piece);
            while width_of(&line) > width {
                let mut head = cut(&line, width);
                if head.is_empty() {
                    // A character wider than the line: alone on one.
                    head = line.chars().take(1).collect();
                }
                line = line[head.len()..].to_string();
                lines.push(head);
            }
        }
        if !line.is_empty() {
            lines.push(line);
        }
        lines
    } else {
        let chars: Vec<char> = code.chars().collect();
        let n = chars.len().div_ceil(width).max(1);
        let per = chars.len().div_ceil(n).max(1);
        chars.chunks(per).map(|c| c.iter().collect()).collect()
    }
}

/// Lines of items joined by `sep`, a new line when the next item does not fit.
fn pack(items: Vec<Vec<Span<'static>>>, width: usize, sep: &'static str) -> Vec<Line<'static>> {
    let mut lines = Vec::new();
    let mut line: Vec<Span<'static>> = Vec::new();
    let mut used = 0;
    for item in items {
        let w: usize = item.iter().map(|s| s.width()).sum();
        if !line.is_empty() && used + width_of(sep) + w > width {
            lines.push(Line::from(std::mem::take(&mut line)));
            used = 0;
        }
        if !line.is_empty() {
            line.push(Span::styled(sep, dim()));
            used += width_of(sep);
        }
        line.extend(item);
        used += w;
    }
    if !line.is_empty() {
        lines.push(Line::from(line));
    }
    lines
}

fn num(v: f64, decimals: usize) -> String {
    if v.is_finite() {
        format!("{v:.decimals$}")
    } else {
        "?".to_string()
    }
}

fn ms(v: f64) -> String {
    if v.is_finite() && v < 10.0 {
        format!("{} ms", num(v, 1))
    } else {
        format!("{} ms", num(v, 0))
    }
}

/// An age in its largest unit: `4s`, `12m`, `3h`, `2d`.
fn age(s: u64) -> String {
    match s {
        0..60 => format!("{s}s"),
        60..3_600 => format!("{}m", s / 60),
        3_600..86_400 => format!("{}h", s / 3_600),
        _ => format!("{}d", s / 86_400),
    }
}

/// A call's duration: `m:ss` or `h:mm:ss`.
fn duration(s: f64) -> String {
    let s = if s.is_finite() && s > 0.0 {
        s as u64
    } else {
        0
    };
    if s >= 3_600 {
        format!("{}:{:02}:{:02}", s / 3_600, s / 60 % 60, s % 60)
    } else {
        format!("{}:{:02}", s / 60, s % 60)
    }
}

fn headline(state: &WindowState) -> String {
    match state {
        WindowState::SettingUp => "Setting up".into(),
        WindowState::Open { with } => format!("Open to {}", clean(with)),
        WindowState::Connecting { to } => format!("Connecting to {}", clean(to)),
        WindowState::Waiting => "Waiting for a window to come online".into(),
        WindowState::ClosedUntil { hh, mm } => format!("Closed until {hh:02}:{mm:02}"),
        WindowState::Curtain => "Curtain".into(),
    }
}

/// The headline in plain words, for whoever stands in front of the window.
fn subline(model: &Model) -> String {
    match &model.state {
        WindowState::SettingUp => "This window is new and not connected yet.".into(),
        WindowState::Open { with: to } => {
            let to = clean(to);
            format!("You see and hear {to}, and they see and hear you.")
        }
        WindowState::Connecting { to } => format!("The window is calling {}.", clean(to)),
        // the members are known (the phone answers) and there are none
        WindowState::Waiting
            if model.members.is_empty()
                && !model
                    .waiting_for
                    .iter()
                    .any(|w| w.starts_with("ewindow-phone")) =>
        {
            "This window is the only member of its network. Press i to invite another window \
             (or run ewindowctl invite NAME over SSH)."
                .into()
        }
        WindowState::Waiting => {
            "No other window is on right now. This one connects by itself.".into()
        }
        WindowState::ClosedUntil { hh, mm } => {
            format!("The window is asleep. It opens by itself at {hh:02}:{mm:02}.")
        }
        WindowState::Curtain => "The curtain is drawn. Press c to open it.".into(),
    }
}

// ---------------------------------------------------------------------------------------
// Rectangles.

fn take_top(r: &mut Rect, n: u16) -> Rect {
    let n = n.min(r.height);
    let top = Rect { height: n, ..*r };
    r.y += n;
    r.height -= n;
    top
}

fn take_bottom(r: &mut Rect, n: u16) -> Rect {
    let n = n.min(r.height);
    r.height -= n;
    Rect {
        y: r.y + r.height,
        height: n,
        ..*r
    }
}

fn take_left(r: &mut Rect, n: u16) -> Rect {
    let n = n.min(r.width);
    let left = Rect { width: n, ..*r };
    r.x += n;
    r.width -= n;
    left
}

fn put(buf: &mut Buffer, clip: Rect, x: u16, y: u16, symbol: &str, style: Style) {
    let pos = Position { x, y };
    if clip.contains(pos) {
        if let Some(cell) = buf.cell_mut(pos) {
            cell.set_symbol(symbol).set_style(style);
        }
    }
}

fn lines_height(n: usize) -> u16 {
    u16::try_from(n).unwrap_or(u16::MAX)
}

/// At most `height` lines; the last says how many were left out.
fn fit(mut lines: Vec<Line<'static>>, height: usize) -> Vec<Line<'static>> {
    if lines.len() > height && height > 0 {
        let more = lines.len() - (height - 1);
        lines.truncate(height - 1);
        lines.push(Line::styled(format!("  and {more} more"), dim()));
    }
    lines
}

// ---------------------------------------------------------------------------------------
// Chrome: top bar and footer.

fn top_bar(area: Rect, buf: &mut Buffer, model: &Model) {
    let style = Style::new().add_modifier(Modifier::REVERSED);
    buf.set_style(area, style);
    let name = match &model.window_name {
        Some(n) => clean(n).into_owned(),
        None => "not set up yet".to_string(),
    };
    let clock = format!("{} ", cut(&clean(&model.clock), 8));
    let width = usize::from(area.width);
    let clock_w = width_of(&clock);
    let room = width.saturating_sub(clock_w + 1);
    // The product's name when there is room for it, the window's name first.
    let full = format!(" ewindow · {name}");
    let left = if width_of(&full) <= room {
        full
    } else {
        cut(&format!(" {name}"), room)
    };
    Paragraph::new(Line::styled(left, style.add_modifier(Modifier::BOLD))).render(area, buf);
    if clock_w <= width {
        Paragraph::new(Line::styled(clock, style))
            .alignment(Alignment::Right)
            .render(area, buf);
    }
}

fn footer(area: Rect, buf: &mut Buffer, screen: Screen) {
    let keys = [
        ("n", "next window"),
        ("c", "curtain"),
        ("h", "hang up"),
        (
            "l",
            if screen == Screen::Logs {
                "back"
            } else {
                "logs"
            },
        ),
        (
            "?",
            if screen == Screen::Help {
                "back"
            } else {
                "help"
            },
        ),
    ];
    let key_style = Style::new().add_modifier(Modifier::REVERSED | Modifier::BOLD);
    let full: usize = keys.iter().map(|(_, l)| 5 + l.len()).sum();
    let mut spans = Vec::new();
    for (key, label) in keys {
        spans.push(Span::raw(" "));
        spans.push(Span::styled(format!(" {key} "), key_style));
        if full <= usize::from(area.width) {
            spans.push(Span::raw(format!(" {label}")));
        }
    }
    Paragraph::new(Line::from(spans)).render(area, buf);
}

// ---------------------------------------------------------------------------------------
// The headline.

/// A size of block letters: font pixels per cell.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BigSize {
    /// A pixel is two columns by one row: 16x8 cells a letter.
    Large,
    /// A pixel is one column by half a row (`▀▄`): 8x4 cells a letter.
    Medium,
}

impl BigSize {
    fn cols(self, px: usize) -> usize {
        match self {
            BigSize::Large => 2 * px,
            BigSize::Medium => px,
        }
    }
    fn rows(self) -> usize {
        match self {
            BigSize::Large => 8,
            BigSize::Medium => 4,
        }
    }
}

fn glyph(c: char) -> [u8; 8] {
    font8x8::BASIC_FONTS
        .get(c)
        .or_else(|| font8x8::LATIN_FONTS.get(c))
        .or_else(|| font8x8::BASIC_FONTS.get('?'))
        .unwrap_or([0; 8])
}

/// The columns a glyph uses (bit 0 is the leftmost pixel): first and count; a space is 3.
fn glyph_span(g: [u8; 8]) -> (u32, u32) {
    let mask = g.iter().fold(0u8, |a, r| a | r);
    if mask == 0 {
        (0, 3)
    } else {
        let first = mask.trailing_zeros();
        let last = 7 - mask.leading_zeros();
        (first, last - first + 1)
    }
}

/// Width of `text` in font pixels: proportional, one pixel between letters.
fn big_px_width(text: &str) -> usize {
    text.chars()
        .map(|c| glyph_span(glyph(c)).1 as usize + 1)
        .sum::<usize>()
        .saturating_sub(1)
}

/// Words of `text` in lines no wider than `width` cells at `size`, or `None` if a word
/// does not fit.
fn big_wrap(text: &str, width: usize, size: BigSize) -> Option<Vec<String>> {
    let mut lines: Vec<String> = Vec::new();
    for word in text.split_whitespace() {
        if size.cols(big_px_width(word)) > width {
            return None;
        }
        match lines.last_mut() {
            Some(line) if size.cols(big_px_width(&format!("{line} {word}"))) <= width => {
                line.push(' ');
                line.push_str(word);
            }
            _ => lines.push(word.to_string()),
        }
    }
    Some(lines)
}

/// Rows of `n` lines of block letters, one blank row between lines.
fn big_rows(size: BigSize, n: usize) -> usize {
    (n * (size.rows() + 1)).saturating_sub(1)
}

/// The biggest block-letter layout of `text` that fits `width` x `max_rows`.
fn big_layout(text: &str, width: usize, max_rows: usize) -> Option<(BigSize, Vec<String>)> {
    for size in [BigSize::Large, BigSize::Medium] {
        if size.cols(big_px_width(text)) <= width && size.rows() <= max_rows {
            return Some((size, vec![text.to_string()]));
        }
        if let Some(lines) = big_wrap(text, width, size) {
            if big_rows(size, lines.len()) <= max_rows {
                return Some((size, lines));
            }
        }
    }
    None
}

/// Draws one line of block letters centred in `area` (clipped to it).
fn draw_big_line(buf: &mut Buffer, area: Rect, text: &str, size: BigSize, style: Style) {
    let width = size.cols(big_px_width(text));
    let mut x = usize::from(area.x) + usize::from(area.width).saturating_sub(width) / 2;
    for c in text.chars() {
        let g = glyph(c);
        let (first, w) = glyph_span(g);
        if g.iter().any(|r| *r != 0) {
            for px in 0..w {
                let bit = 1u8 << (first + px);
                for row in 0..size.rows() {
                    let (top, bottom) = match size {
                        BigSize::Large => (g[row] & bit != 0, g[row] & bit != 0),
                        BigSize::Medium => (g[2 * row] & bit != 0, g[2 * row + 1] & bit != 0),
                    };
                    let symbol = match (top, bottom) {
                        (true, true) => "█",
                        (true, false) => "▀",
                        (false, true) => "▄",
                        (false, false) => continue,
                    };
                    let y = usize::from(area.y) + row;
                    for dx in 0..size.cols(1) {
                        let cx = x + size.cols(px as usize) + dx;
                        if let (Ok(cx), Ok(y)) = (u16::try_from(cx), u16::try_from(y)) {
                            put(buf, area, cx, y, symbol, style);
                        }
                    }
                }
            }
        }
        x += size.cols(w as usize + 1);
    }
}

/// Draws the headline at the top of `rest` and takes the rows it used. `big_ok` allows
/// block letters; `with_subline` adds the plain-words line when there is room.
fn draw_headline(
    rest: &mut Rect,
    buf: &mut Buffer,
    model: &Model,
    big_ok: bool,
    with_subline: bool,
) {
    let text = headline(&model.state);
    let color = state_color(&model.state);
    let head_style = Style::new().fg(color).add_modifier(Modifier::BOLD);
    if big_ok {
        let width = usize::from(rest.width.saturating_sub(2));
        let max_rows = usize::from(rest.height) * 2 / 5;
        if let Some((size, lines)) = big_layout(&text, width, max_rows) {
            let sub = if with_subline {
                wrap_words(&subline(model), width)
            } else {
                Vec::new()
            };
            let h = 1 + big_rows(size, lines.len()) + 1 + sub.len() + usize::from(!sub.is_empty());
            let mut area = take_top(rest, lines_height(h));
            take_top(&mut area, 1);
            for line in &lines {
                let row = take_top(&mut area, lines_height(size.rows()));
                draw_big_line(buf, row, line, size, Style::new().fg(color));
                take_top(&mut area, 1);
            }
            Paragraph::new(sub.into_iter().map(Line::from).collect::<Vec<_>>())
                .style(head_style)
                .alignment(Alignment::Center)
                .render(area, buf);
            return;
        }
    }
    if rest.height >= 7 && rest.width >= 10 {
        let inner_w = usize::from(rest.width - 2);
        let mut lines: Vec<Line> = wrap_words(&text, inner_w)
            .into_iter()
            .map(|l| Line::styled(l, head_style))
            .collect();
        if with_subline && rest.height >= 14 {
            let sub = wrap_words(&subline(model), inner_w);
            lines.extend(sub.into_iter().take(2).map(Line::from));
        }
        let area = take_top(rest, lines_height(lines.len() + 2));
        Paragraph::new(lines)
            .alignment(Alignment::Center)
            .block(
                Block::bordered()
                    .border_type(BorderType::Double)
                    .border_style(Style::new().fg(color)),
            )
            .render(area, buf);
    } else {
        let lines: Vec<Line> = wrap_words(&text, usize::from(rest.width))
            .into_iter()
            .map(|l| Line::styled(l, head_style))
            .collect();
        let area = take_top(rest, lines_height(lines.len()));
        Paragraph::new(lines)
            .alignment(Alignment::Center)
            .render(area, buf);
    }
}

// ---------------------------------------------------------------------------------------
// Waiting for sources.

/// The process a `waiting_for` entry is about: its first word.
fn waiting_process(entry: &str) -> &str {
    entry.split_whitespace().next().unwrap_or("")
}

/// "Waiting for `entry`...", indented by one column and wrapped to `width`.
fn waiting_lines(entry: &str, width: usize) -> Vec<Line<'static>> {
    wrap_words(
        &format!("Waiting for {}...", clean(entry)),
        width.saturating_sub(1),
    )
    .into_iter()
    .map(|l| Line::styled(format!(" {l}"), warn()))
    .collect()
}

/// The `waiting_for` lines about `process`, wrapped to `width`.
fn waiting_on(model: &Model, process: &str, width: usize) -> Vec<Line<'static>> {
    model
        .waiting_for
        .iter()
        .filter(|e| waiting_process(e) == process)
        .flat_map(|e| waiting_lines(e, width))
        .collect()
}

// ---------------------------------------------------------------------------------------
// The main screen.

fn main_screen(mut rest: Rect, buf: &mut Buffer, model: &Model, whole: Rect) {
    let setting_up = model.state == WindowState::SettingUp;
    let big = whole.width >= BIG_MIN_WIDTH && whole.height >= BIG_MIN_HEIGHT;
    // The plain-words line, unless the rows are needed for a QR code.
    let subline = big || (!setting_up && model.invitation.is_none());
    draw_headline(&mut rest, buf, model, big, subline);
    if let Some(message) = &model.message {
        let area = take_top(&mut rest, 1);
        Paragraph::new(Line::styled(
            clean(message).into_owned(),
            warn().add_modifier(Modifier::BOLD),
        ))
        .alignment(Alignment::Center)
        .render(area, buf);
    }
    // Sources nobody else stands in for on this screen.
    let shown_in_sections: &[&str] = if setting_up {
        &["ewindow-init", "ewindow-overlay"]
    } else {
        &["ewindow-init", "ewindow-phone"]
    };
    let general: Vec<Line> = model
        .waiting_for
        .iter()
        .filter(|e| !shown_in_sections.contains(&waiting_process(e)))
        .flat_map(|e| waiting_lines(e, usize::from(rest.width)))
        .collect();
    if !general.is_empty() {
        let area = take_top(&mut rest, lines_height(general.len()));
        Paragraph::new(general).render(area, buf);
    }
    if rest.height == 0 {
        return;
    }
    let panel = if setting_up {
        Some(setup_panel(model))
    } else {
        model.invitation.as_ref().map(invitation_panel)
    };
    if let Some(panel) = panel {
        let want = panel.wanted_height(rest.width);
        let area = take_top(&mut rest, want);
        panel.render(area, buf);
        if rest.height < 4 {
            return;
        }
    }
    sections(rest, buf, model, !setting_up);
}

fn section_block(title: Line<'static>) -> Block<'static> {
    Block::new()
        .borders(Borders::TOP)
        .border_style(dim())
        .title(title)
}

fn section_title(text: String) -> Line<'static> {
    Line::styled(format!(" {text} "), bold())
}

/// Draws a titled section of `lines` into `area`.
fn draw_section(area: Rect, buf: &mut Buffer, title: Line<'static>, lines: Vec<Line<'static>>) {
    if area.height < 2 {
        // A title without a line under it says nothing.
        return;
    }
    let block = section_block(title);
    let inner = block.inner(area);
    block.render(area, buf);
    let lines = fit(lines, usize::from(inner.height));
    Paragraph::new(lines).render(inner, buf);
}

fn member_lines(model: &Model, width: usize) -> Vec<Line<'static>> {
    let waiting = waiting_on(model, "ewindow-phone", width);
    if !waiting.is_empty() {
        return waiting;
    }
    if model.members.is_empty() {
        return vec![Line::styled(" No other windows yet.", dim())];
    }
    let name_w = model
        .members
        .iter()
        .map(|m| width_of(&clean(&m.name)))
        .max()
        .unwrap_or(0)
        .min(20);
    // " ■ " name "  offline" " 12.3 ms" "  handshake 12m ago" (or "  hs 12m")
    let full = 3 + name_w + 9 + 7 + 19 <= width;
    model
        .members
        .iter()
        .map(|m| {
            let name = cut(&clean(&m.name), name_w);
            let mut spans = vec![
                Span::raw(" "),
                if m.online {
                    Span::styled("■", good())
                } else {
                    Span::styled("○", bad())
                },
                Span::raw(" "),
                Span::styled(format!("{name:<name_w$}"), bold()),
                if m.online {
                    Span::styled("  online ", good())
                } else {
                    Span::styled("  offline", bad())
                },
            ];
            let rtt = m.rtt_ms.filter(|_| m.online).map(ms).unwrap_or_default();
            spans.push(Span::raw(format!(" {rtt:>6}")));
            let hs = match (m.handshake_age_s, full) {
                (Some(a), true) => format!("  handshake {} ago", age(a)),
                (None, true) => "  no handshake".to_string(),
                (Some(a), false) => format!("  hs {}", age(a)),
                (None, false) => "  hs -".to_string(),
            };
            // No handshake for three minutes: WireGuard has no session with it.
            let hs_style = match m.handshake_age_s {
                Some(a) if a <= 180 => Style::new(),
                _ => dim(),
            };
            spans.push(Span::styled(hs, hs_style));
            if let Some(path) = &m.path {
                let style = if path == "unreachable" { bad() } else { dim() };
                spans.push(Span::styled(format!("  {}", clean(path)), style));
            }
            Line::from(spans)
        })
        .collect()
}

fn service_lines(model: &Model, width: usize) -> Vec<Line<'static>> {
    let waiting = waiting_on(model, "ewindow-init", width);
    if !waiting.is_empty() {
        return waiting;
    }
    if model.services.is_empty() {
        return vec![Line::styled(" No services.", dim())];
    }
    let name_w = model
        .services
        .iter()
        .map(|s| width_of(&clean(&s.name)))
        .max()
        .unwrap_or(0)
        .min(16);
    model
        .services
        .iter()
        .map(|s| {
            let name = cut(&clean(&s.name), name_w);
            let state = clean(&s.state);
            let restarts = match s.restarts {
                0 => String::new(),
                1 => "  1 restart".to_string(),
                n => format!("  {n} restarts"),
            };
            if s.state == "failed" {
                let style = Style::new()
                    .fg(Color::White)
                    .bg(Color::Red)
                    .add_modifier(Modifier::BOLD);
                return Line::styled(format!(" ■ {name:<name_w$}  FAILED{restarts} "), style);
            }
            let marker_style = match s.state.as_str() {
                "running" => good(),
                "stopped" => dim(),
                _ => warn(),
            };
            Line::from(vec![
                Span::raw(" "),
                Span::styled("■", marker_style),
                Span::raw(format!(" {name:<name_w$}  ")),
                Span::styled(state.into_owned(), marker_style),
                Span::styled(restarts, warn()),
            ])
        })
        .collect()
}

fn call_section(model: &Model, width: usize) -> (Line<'static>, Vec<Line<'static>>) {
    let waiting = waiting_on(model, "ewindow-phone", width);
    let Some(call) = model.call.as_ref().filter(|_| waiting.is_empty()) else {
        let lines = if waiting.is_empty() {
            vec![Line::styled(" No call.", dim())]
        } else {
            waiting
        };
        return (section_title("Call".into()), lines);
    };
    let title = section_title(format!(
        "Call with {} · {}",
        clean(&call.peer),
        duration(call.duration_s)
    ));
    let mut items: Vec<Vec<Span<'static>>> = Vec::new();
    if let Some(a) = &call.audio_codec {
        items.push(vec![Span::raw(format!("audio {}", clean(a)))]);
    }
    if let Some(v) = &call.video_codec {
        let mut s = format!("video {}", clean(v));
        if let (Some(w), Some(h)) = (call.width, call.height) {
            s.push_str(&format!(" {w}x{h}"));
        }
        if let Some(f) = call.fps {
            s.push_str(&format!(" {} fps", num(f, 0)));
        }
        items.push(vec![Span::raw(s)]);
    } else {
        items.push(vec![Span::styled("no video", dim())]);
    }
    if let Some(b) = call.bitrate_kbps {
        items.push(vec![Span::raw(format!("{} kbit/s", num(b, 0)))]);
    }
    if let Some(l) = call.loss_pct {
        let style = if l >= 5.0 {
            bad()
        } else if l >= 1.0 {
            warn()
        } else {
            good()
        };
        items.push(vec![
            Span::raw("loss "),
            Span::styled(format!("{}%", num(l, 1)), style),
        ]);
    }
    if let Some(r) = call.rtt_ms {
        // ITU-T G.114: one way under 150 ms, so a round trip under 300.
        let style = if r >= 300.0 {
            bad()
        } else if r >= 150.0 {
            warn()
        } else {
            good()
        };
        items.push(vec![Span::raw("rtt "), Span::styled(ms(r), style)]);
    }
    let lines = pack(items, width.saturating_sub(1), " · ")
        .into_iter()
        .map(|l| {
            let mut spans = vec![Span::raw(" ")];
            spans.extend(l.spans);
            Line::from(spans)
        })
        .collect();
    (title, lines)
}

fn draw_logs(area: Rect, buf: &mut Buffer, model: &Model) {
    let block = section_block(section_title("Log".into()));
    let inner = block.inner(area);
    block.render(area, buf);
    let n = usize::from(inner.height);
    let skip = model.logs.len().saturating_sub(n);
    let lines: Vec<Line> = model.logs[skip..]
        .iter()
        .map(|l| Line::raw(format!(" {}", clean(l))))
        .collect();
    if lines.is_empty() {
        Paragraph::new(Line::styled(" No log lines yet.", dim())).render(inner, buf);
    } else {
        Paragraph::new(lines).render(inner, buf);
    }
}

/// Members, services, the call and the log, in `area`. Without `people` (setting up),
/// only services and log.
fn sections(mut area: Rect, buf: &mut Buffer, model: &Model, people: bool) {
    let width = usize::from(area.width);
    if !people {
        let services = service_lines(model, width);
        // All services if they fit, keeping three rows for the log.
        let h = lines_height(services.len() + 1).min(area.height.saturating_sub(3).max(2));
        draw_section(
            take_top(&mut area, h),
            buf,
            section_title("Services".into()),
            services,
        );
        if area.height >= 2 {
            draw_logs(area, buf, model);
        }
        return;
    }
    let two_columns = area.width >= 64;
    // Lists get at most about half of the rows; the rest is for the call and the log.
    let list_cap = (usize::from(area.height) * 45 / 100).max(2);
    let mut services = None;
    if two_columns {
        // Services on the right, as wide as their longest line (at most half), with one
        // column between; members get the rest.
        let longest = service_lines(model, width / 2)
            .iter()
            .map(Line::width)
            .max()
            .unwrap_or(0);
        let right_w = lines_height(longest + 2).min(area.width / 2);
        let left_w = area.width - right_w;
        let members = member_lines(model, usize::from(left_w));
        let right_lines = service_lines(model, usize::from(right_w - 1));
        let h = lines_height((members.len().max(right_lines.len()) + 1).min(list_cap));
        let mut upper = take_top(&mut area, h);
        let left = take_left(&mut upper, left_w);
        draw_section(left, buf, section_title("Members".into()), members);
        take_left(&mut upper, 1);
        draw_section(upper, buf, section_title("Services".into()), right_lines);
    } else {
        let members = member_lines(model, width);
        let h = lines_height((members.len() + 1).min(list_cap));
        draw_section(
            take_top(&mut area, h),
            buf,
            section_title("Members".into()),
            members,
        );
        services = Some(service_lines(model, width));
    }
    let (title, call) = call_section(model, width);
    let h = lines_height(call.len() + 1);
    draw_section(take_top(&mut area, h), buf, title, call);
    if let Some(services) = services.filter(|_| area.height >= 2) {
        let h = lines_height((services.len() + 1).min(list_cap));
        draw_section(
            take_top(&mut area, h),
            buf,
            section_title("Services".into()),
            services,
        );
    }
    if area.height >= 2 {
        draw_logs(area, buf, model);
    }
}

// ---------------------------------------------------------------------------------------
// Panels with a QR code: the public key when setting up, an invitation.

/// Text on the left, a QR code on the right (or the text alone when the code does not
/// fit).
struct QrPanel {
    /// Paragraphs of text: each is wrapped to the text column.
    text: Vec<(String, Style)>,
    /// The code to show as text (wrapped by [`wrap_code`]) under the paragraphs.
    code: Option<String>,
    /// What the QR code holds; `None`: no QR code.
    qr: Option<QrCode>,
}

/// Quiet zones tried, widest first: ISO 18004 asks for 4 modules; phones read 2.
const QUIET_ZONES: [usize; 3] = [4, 3, 2];
/// The narrowest text column beside a QR code.
const MIN_TEXT_W: u16 = 24;
/// The widest text column beside a QR code (wider, the code would be far from its text).
const MAX_TEXT_W: u16 = 72;

/// Columns and rows a QR code of `modules` takes with quiet zone `qz`, two modules a row.
fn qr_cells(modules: usize, qz: usize) -> (u16, u16) {
    let n = modules + 2 * qz;
    (lines_height(n), lines_height(n.div_ceil(2)))
}

/// The QR code of `data` at error correction L (44 base64 characters: version 3).
/// A QR code of `data` as text for a dark terminal (light modules drawn, two module rows per
/// character line, a quiet zone of 2), as `ewindowctl invite` prints it. `None` if `data` is
/// too long for a QR code.
pub fn qr_text(data: &str) -> Option<String> {
    let code = make_qr(data)?;
    let n = code.width();
    let qz = 2usize;
    let size = n + 2 * qz;
    let dark = |x: usize, y: usize| -> bool {
        x >= qz
            && y >= qz
            && x < n + qz
            && y < n + qz
            && code[(x - qz, y - qz)] == qrcode::Color::Dark
    };
    let mut out = String::new();
    let mut y = 0;
    while y < size {
        for x in 0..size {
            let top = !dark(x, y);
            let bottom = y + 1 < size && !dark(x, y + 1);
            out.push(match (top, bottom) {
                (true, true) => '█',
                (true, false) => '▀',
                (false, true) => '▄',
                (false, false) => ' ',
            });
        }
        out.push('\n');
        y += 2;
    }
    Some(out)
}

fn make_qr(data: &str) -> Option<QrCode> {
    QrCode::with_error_correction_level(data.as_bytes(), EcLevel::L).ok()
}

/// Draws `code` with its top left corner (quiet zone included) at `x`, `y`, clipped to
/// `clip`: dark modules black on a light background, two module rows per cell row.
fn draw_qr(buf: &mut Buffer, clip: Rect, x: u16, y: u16, code: &QrCode, qz: usize) {
    let m = code.width();
    let colors = code.to_colors();
    let n = m + 2 * qz;
    let dark = |mx: usize, my: usize| -> bool {
        mx >= qz
            && my >= qz
            && mx < qz + m
            && my < qz + m
            && colors[(my - qz) * m + (mx - qz)] == qrcode::Color::Dark
    };
    // With an odd number of module rows, the last half row is one more light row of the
    // quiet zone.
    let style = Style::new().fg(QR_DARK).bg(QR_LIGHT);
    for row in 0..n.div_ceil(2) {
        for col in 0..n {
            let symbol = match (dark(col, 2 * row), dark(col, 2 * row + 1)) {
                (true, true) => "█",
                (true, false) => "▀",
                (false, true) => "▄",
                (false, false) => " ",
            };
            let (Ok(cx), Ok(cy)) = (u16::try_from(col), u16::try_from(row)) else {
                continue;
            };
            put(
                buf,
                clip,
                x.saturating_add(cx),
                y.saturating_add(cy),
                symbol,
                style,
            );
        }
    }
}

impl QrPanel {
    fn text_lines(&self, width: usize) -> Vec<Line<'static>> {
        let mut lines = Vec::new();
        for (i, (para, style)) in self.text.iter().enumerate() {
            if i > 0 {
                lines.push(Line::raw(""));
            }
            lines.extend(
                wrap_words(para, width)
                    .into_iter()
                    .map(|l| Line::styled(l, *style)),
            );
        }
        if let Some(code) = &self.code {
            lines.extend(
                wrap_code(code, width)
                    .into_iter()
                    .map(|l| Line::styled(l, bold().fg(Color::White))),
            );
        }
        lines
    }

    /// Where the text and the QR code go in `area`, with the widest quiet zone that fits:
    /// `None` when the code does not fit beside a text column. The text column is at most
    /// [`MAX_TEXT_W`] wide and the pair is centred.
    fn qr_layout(&self, area: Rect) -> Option<(usize, Rect, Rect)> {
        let code = self.qr.as_ref()?;
        QUIET_ZONES.iter().find_map(|&qz| {
            let (w, h) = qr_cells(code.width(), qz);
            if h > area.height || w.saturating_add(MIN_TEXT_W + 2) > area.width {
                return None;
            }
            let text_w = (area.width - w - 2).min(MAX_TEXT_W);
            let x = area.x + (area.width - (text_w + 2 + w)) / 2;
            let text = Rect::new(x + 1, area.y, text_w, area.height);
            let qr = Rect::new(x + 2 + text_w, area.y + (area.height - h) / 2, w, h);
            Some((qz, text, qr))
        })
    }

    /// Rows this panel would like at `width`.
    fn wanted_height(&self, width: u16) -> u16 {
        match self.qr_layout(Rect::new(0, 0, width, u16::MAX)) {
            Some((_, text, qr)) => qr
                .height
                .max(lines_height(self.text_lines(usize::from(text.width)).len())),
            None => lines_height(self.text_lines(usize::from(width.saturating_sub(1))).len() + 1),
        }
    }

    fn render(&self, area: Rect, buf: &mut Buffer) {
        match self.qr_layout(area) {
            Some((qz, text, qr)) => {
                Paragraph::new(self.text_lines(usize::from(text.width))).render(text, buf);
                if let Some(code) = &self.qr {
                    draw_qr(buf, qr, qr.x, qr.y, code, qz);
                }
            }
            None => {
                let inner = Rect {
                    x: area.x.saturating_add(1).min(area.right()),
                    width: area.width.saturating_sub(1),
                    ..area
                };
                let mut lines = self.text_lines(usize::from(inner.width));
                if self.qr.is_some() {
                    lines.push(Line::styled("(a larger terminal shows a QR code)", dim()));
                }
                Paragraph::new(lines).render(inner, buf);
            }
        }
    }
}

fn setup_panel(model: &Model) -> QrPanel {
    let mut text = vec![
        (
            "This window is not part of a network of windows yet.".to_string(),
            bold(),
        ),
        (
            "To join, ask someone at a member window to run `ewindowctl invite` and give you \
             the code, then enter it on this window."
                .to_string(),
            Style::new(),
        ),
    ];
    let waiting = model
        .waiting_for
        .iter()
        .any(|e| waiting_process(e) == "ewindow-overlay");
    let key = model.public_key.as_deref().map(|k| clean(k).into_owned());
    match (&key, waiting) {
        (Some(_), _) => text.push((
            "This window's public key (not a secret):".to_string(),
            Style::new(),
        )),
        (None, true) => text.extend(
            model
                .waiting_for
                .iter()
                .filter(|e| waiting_process(e) == "ewindow-overlay")
                .map(|e| (format!("Waiting for {}...", clean(e)), warn())),
        ),
        (None, false) => text.push(("The public key is not known yet.".to_string(), dim())),
    }
    QrPanel {
        text,
        qr: key.as_deref().and_then(make_qr),
        code: key,
    }
}

fn invitation_panel(inv: &ShownInvitation) -> QrPanel {
    let code = clean(&inv.code).into_owned();
    // The dashes are for people: `Invitation::decode` reads the code without them, and
    // without them a QR code of an IPv4 invitation is version 4 instead of 5.
    let dense: String = match code.strip_prefix("EWIN1-") {
        Some(rest) => format!("EWIN1-{}", rest.replace('-', "")),
        None => code.clone(),
    };
    QrPanel {
        text: vec![
            ("Invitation".to_string(), bold().fg(Color::LightCyan)),
            (
                format!(
                    "For {}: on the new window, enter this code or scan the QR code. It works \
                     once, until {} UTC.",
                    clean(&inv.name),
                    utc_hhmm(inv.expires_unix)
                ),
                Style::new(),
            ),
        ],
        qr: make_qr(&dense),
        code: Some(code),
    }
}

/// `14:05` of a Unix time, UTC.
fn utc_hhmm(unix: u64) -> String {
    let m = (unix / 60) % 1440;
    format!("{:02}:{:02}", m / 60, m % 60)
}

// ---------------------------------------------------------------------------------------
// The log and help screens.

fn logs_screen(mut rest: Rect, buf: &mut Buffer, model: &Model) {
    let waiting: Vec<Line> = model
        .waiting_for
        .iter()
        .flat_map(|e| waiting_lines(e, usize::from(rest.width)))
        .collect();
    if !waiting.is_empty() {
        let h = lines_height(waiting.len()).min(rest.height / 2);
        Paragraph::new(waiting).render(take_top(&mut rest, h), buf);
    }
    draw_logs(rest, buf, model);
}

fn help_lines() -> Vec<Line<'static>> {
    let head = |s: &'static str| Line::styled(s, bold().fg(Color::LightCyan));
    let item = |k: &'static str, what: &'static str| {
        Line::from(vec![
            Span::styled(format!("  {k:<22}"), bold()),
            Span::raw(what),
        ])
    };
    let key = |k: &'static str, what: &'static str| {
        Line::from(vec![
            Span::raw("  "),
            Span::styled(format!(" {k} "), bold().add_modifier(Modifier::REVERSED)),
            Span::raw(format!("  {what}")),
        ])
    };
    vec![
        head("What is this?"),
        Line::raw("This is ewindow, a window between makerspaces that stays open all day."),
        Line::raw("When it is open, you see and hear people in another makerspace, live,"),
        Line::raw("and they see and hear you. Just walk up and say hello!"),
        Line::raw(""),
        head("What the screen says"),
        item("Open to ...", "you are connected to that place right now"),
        item("Connecting to ...", "the window is calling that place"),
        item(
            "Waiting for a window",
            "no other place is on; it connects by itself",
        ),
        item(
            "Closed until 08:00",
            "the window sleeps and opens by itself then",
        ),
        item("Curtain", "someone closed the window for a while"),
        item("Setting up", "this window is new and not connected yet"),
        Line::raw(""),
        head("Keys"),
        key("n", "next window: call another place that is online"),
        key("c", "curtain: close the window; press again to open it"),
        key("h", "hang up: end this call"),
        key(
            "i",
            "invite: type the new window's name; its invitation code and QR code show here",
        ),
        key(
            "l",
            "logs: messages for the people who look after the window",
        ),
        key("?", "help: this page; press again to go back"),
    ]
}

fn help_screen(rest: Rect, buf: &mut Buffer) {
    // A readable column, centred on wide screens.
    let width = rest.width.min(78);
    let area = Rect {
        x: rest.x + (rest.width - width) / 2,
        width,
        ..rest
    };
    let area = Rect {
        y: area.y.saturating_add(1).min(area.bottom()),
        height: area.height.saturating_sub(1),
        ..area
    };
    Paragraph::new(help_lines())
        .wrap(ratatui::widgets::Wrap { trim: false })
        .render(area, buf);
}
