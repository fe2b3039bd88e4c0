//! The window's button, read from the kernel's input devices (`/dev/input/event*`, through
//! the `evdev` crate): a Pi's GPIO button (a `gpio-keys` device the image's device tree
//! declares), USB buttons and foot switches, keyboards. Every device that has the configured
//! key is read at once; devices that appear later are found by inotify on `/dev/input`
//! (there is no udev: devtmpfs makes the nodes), and one that disappears — mid-press or not —
//! is let go. The edges go to [`crate::button::Button`]; what it decides goes to the window's
//! loop as the same [`Command`]s the control socket sends (`Next`, `CurtainToggle`).
//!
//! Invariant: this module decides nothing about the window: it turns key edges into
//! commands; the loop and its policy do the rest.

use std::collections::HashSet;
use std::os::fd::{AsFd, AsRawFd, RawFd};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Result;
use evdev::{Device, EventSummary, KeyCode};
use ewindow_protocol::button::Button as ButtonConfig;
use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify};
use tokio::io::unix::AsyncFd;
use tokio::sync::mpsc;

use crate::button::{Action, Button};
use crate::control::Command;

/// Where the kernel's input devices appear.
pub const INPUT_DIR: &str = "/dev/input";

/// What a device reader tells the button.
enum Edge {
    Key { device: u32, down: bool },
    Gone { device: u32, path: PathBuf },
}

/// Starts reading the button (nothing when `[button] key = "none"`). An unknown key name is
/// an error here, at start.
pub fn spawn(config: &ButtonConfig, dir: &Path, commands: mpsc::Sender<Command>) -> Result<()> {
    let Some(name) = config.key() else {
        tracing::info!("no button ([button] key = \"none\")");
        return Ok(());
    };
    let key = KeyCode::from_str(name).map_err(|_| {
        anyhow::anyhow!(
            "window.toml [button] key: {name} is not a key Linux knows (linux/input-event-codes.h)"
        )
    })?;
    let (tx, rx) = mpsc::channel(64);
    let watcher = Watcher {
        config: config.clone(),
        key,
        dir: dir.to_owned(),
        open: Arc::new(Mutex::new(HashSet::new())),
        next_id: 0,
        edges: tx,
    };
    tokio::spawn(watcher.run());
    tokio::spawn(press_loop(
        Button::new(config.long_press_ms, config.debounce_ms),
        rx,
        commands,
    ));
    tracing::info!(
        "button: {name} on {} (long press {} ms)",
        if config.devices.is_empty() {
            "every input device that has it".to_string()
        } else {
            config.devices.join(", ")
        },
        config.long_press_ms
    );
    Ok(())
}

/// Feeds the edges to the button, sleeping until its next deadline; sends what it decides.
async fn press_loop(
    mut button: Button,
    mut edges: mpsc::Receiver<Edge>,
    commands: mpsc::Sender<Command>,
) {
    let start = Instant::now();
    let now = || start.elapsed().as_millis() as u64;
    loop {
        let wake = button
            .next_deadline()
            .map(|ms| tokio::time::Instant::from_std(start + Duration::from_millis(ms)));
        let action = tokio::select! {
            e = edges.recv() => match e {
                Some(Edge::Key { device, down }) => button.key(now(), device, down),
                Some(Edge::Gone { device, path }) => {
                    tracing::info!("button: {} is gone", path.display());
                    button.gone(now(), device)
                }
                None => return,
            },
            _ = async {
                match wake {
                    Some(t) => tokio::time::sleep_until(t).await,
                    None => std::future::pending().await,
                }
            } => button.tick(now()),
        };
        let Some(action) = action else { continue };
        tracing::info!("button: {action:?}");
        let cmd = match action {
            Action::Next => Command::Next,
            Action::Curtain => Command::CurtainToggle,
        };
        if commands.send(cmd).await.is_err() {
            return;
        }
    }
}

/// Finds the devices, now and as they appear.
struct Watcher {
    config: ButtonConfig,
    key: KeyCode,
    dir: PathBuf,
    /// The paths being read (a device found twice — by the scan and by inotify — is read once).
    open: Arc<Mutex<HashSet<PathBuf>>>,
    next_id: u32,
    edges: mpsc::Sender<Edge>,
}

/// nix's inotify as something tokio can wait on.
struct Fd(Inotify);

impl AsRawFd for Fd {
    fn as_raw_fd(&self) -> RawFd {
        self.0.as_fd().as_raw_fd()
    }
}

impl Watcher {
    async fn run(mut self) {
        // /dev/input exists once the first input driver registered a device; until then,
        // watch /dev for it
        let dev = self.dir.parent().map(Path::to_owned).unwrap_or_default();
        let inotify = match Inotify::init(InitFlags::IN_NONBLOCK | InitFlags::IN_CLOEXEC)
            .map_err(std::io::Error::from)
            // SAFETY: the Inotify owns its fd, which is neither closed nor replaced while
            // registered (it lives as long as this task)
            .and_then(|i| unsafe { AsyncFd::register(Fd(i)) }.map_err(std::io::Error::from))
        {
            Ok(i) => i,
            Err(e) => {
                tracing::error!("button: inotify: {e}; only the devices present now are read");
                self.scan().await;
                return;
            }
        };
        let flags = AddWatchFlags::IN_CREATE | AddWatchFlags::IN_ATTRIB;
        let mut watching_dir = inotify.get_ref().0.add_watch(&self.dir, flags).is_ok();
        if !watching_dir {
            if let Err(e) = inotify
                .get_ref()
                .0
                .add_watch(&dev, AddWatchFlags::IN_CREATE)
            {
                tracing::error!("button: watching {}: {e}", dev.display());
            }
        }
        self.scan().await;
        loop {
            let mut guard = match inotify.readable().await {
                Ok(g) => g,
                Err(e) => {
                    tracing::error!("button: inotify: {e}");
                    return;
                }
            };
            let events = match guard
                .try_io(|fd| fd.get_ref().0.read_events().map_err(std::io::Error::from))
            {
                Ok(Ok(events)) => events,
                Ok(Err(e)) => {
                    tracing::error!("button: inotify: {e}");
                    return;
                }
                Err(_would_block) => continue,
            };
            let mut rescan = false;
            for e in events {
                let name = e.name.as_ref().map(|n| n.to_string_lossy().into_owned());
                if !watching_dir && name.as_deref() == self.dir.file_name().and_then(|n| n.to_str())
                {
                    watching_dir = inotify.get_ref().0.add_watch(&self.dir, flags).is_ok();
                    rescan = true;
                } else if name.is_some_and(|n| n.starts_with("event")) {
                    rescan = true;
                }
            }
            if rescan {
                self.scan().await;
            }
        }
    }

    /// Opens every `event*` device not read yet that has the key and is one of the
    /// configured devices.
    async fn scan(&mut self) {
        let Ok(entries) = std::fs::read_dir(&self.dir) else {
            return;
        };
        let mut paths: Vec<PathBuf> = entries
            .flatten()
            .map(|e| e.path())
            .filter(|p| {
                p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with("event"))
            })
            .collect();
        paths.sort();
        for path in paths {
            if self
                .open
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .contains(&path)
            {
                continue;
            }
            // a node inotify just announced may not be openable for a moment
            let mut device = None;
            for _ in 0..5 {
                match Device::open(&path) {
                    Ok(d) => {
                        device = Some(d);
                        break;
                    }
                    Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
                }
            }
            let Some(device) = device else {
                continue;
            };
            let name = device.name().unwrap_or("").to_string();
            let has_key = device
                .supported_keys()
                .is_some_and(|keys| keys.contains(self.key));
            if !has_key || !self.config.reads(&path.to_string_lossy(), &name) {
                continue;
            }
            let stream = match device.into_event_stream() {
                Ok(s) => s,
                Err(e) => {
                    tracing::error!("button: {}: {e}", path.display());
                    continue;
                }
            };
            self.next_id = self.next_id.wrapping_add(1);
            let id = self.next_id;
            tracing::info!("button: reading {} ({name})", path.display());
            self.open
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(path.clone());
            tokio::spawn(read_device(
                stream,
                id,
                path,
                self.key,
                self.edges.clone(),
                self.open.clone(),
            ));
        }
    }
}

/// Reads one device until it goes away; key presses and releases only (repeats are not edges).
async fn read_device(
    mut stream: evdev::EventStream,
    device: u32,
    path: PathBuf,
    key: KeyCode,
    edges: mpsc::Sender<Edge>,
    open: Arc<Mutex<HashSet<PathBuf>>>,
) {
    loop {
        match stream.next_event().await {
            Ok(ev) => {
                if let EventSummary::Key(_, code, value) = ev.destructure() {
                    if code == key && (value == 0 || value == 1) {
                        let down = value == 1;
                        if edges.send(Edge::Key { device, down }).await.is_err() {
                            return;
                        }
                    }
                }
            }
            Err(e) => {
                tracing::debug!("button: {}: {e}", path.display());
                break;
            }
        }
    }
    open.lock().unwrap_or_else(|e| e.into_inner()).remove(&path);
    let _ = edges.send(Edge::Gone { device, path }).await;
}
