//! What the wizard offers: the cameras, microphones and speakers this machine has, and the
//! roster files on mounted USB sticks. Read from sysfs, procfs and the mount points; the
//! parsers are pure and tested.

use std::path::{Path, PathBuf};

use crate::wizard::Device;

/// `/proc/asound/pcm` lines (`01-00: USB Audio : USB Audio : playback 1 : capture 1`) →
/// (microphones, speakers) as ALSA `hw:CARD,DEV` names.
pub fn parse_pcm(text: &str) -> (Vec<Device>, Vec<Device>) {
    let mut mics = Vec::new();
    let mut speakers = Vec::new();
    for line in text.lines() {
        let mut parts = line.split(':').map(str::trim);
        let Some(id) = parts.next() else { continue };
        let Some((card, dev)) = id.split_once('-') else {
            continue;
        };
        let (Ok(card), Ok(dev)) = (card.parse::<u32>(), dev.parse::<u32>()) else {
            continue;
        };
        let name = parts.next().unwrap_or("").to_owned();
        let rest: Vec<&str> = parts.collect();
        let device = Device {
            path: format!("hw:{card},{dev}"),
            name: if name.is_empty() {
                format!("card {card} device {dev}")
            } else {
                name
            },
        };
        if rest.iter().any(|p| p.starts_with("capture")) {
            mics.push(device.clone());
        }
        if rest.iter().any(|p| p.starts_with("playback")) {
            speakers.push(device);
        }
    }
    (mics, speakers)
}

/// Video capture devices: `/dev/videoN` with the name from sysfs; last, the test picture (a
/// window without a camera still shows the others that it is alive: first when there is no
/// camera at all).
pub fn cameras() -> Vec<Device> {
    let mut out = video_devices();
    out.push(Device {
        path: "test".into(),
        name: "Test picture (no camera)".into(),
    });
    out
}

fn video_devices() -> Vec<Device> {
    let mut out = Vec::new();
    let Ok(dir) = std::fs::read_dir("/sys/class/video4linux") else {
        return out;
    };
    let mut names: Vec<String> = dir
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("video"))
        .collect();
    names.sort();
    for n in names {
        let name = std::fs::read_to_string(format!("/sys/class/video4linux/{n}/name"))
            .map(|s| s.trim().to_owned())
            .unwrap_or_else(|_| n.clone());
        out.push(Device {
            path: format!("/dev/{n}"),
            name,
        });
    }
    out
}

/// (microphones, speakers): ALSA devices, plus the system default first.
pub fn audio() -> (Vec<Device>, Vec<Device>) {
    let (mut mics, mut speakers) =
        parse_pcm(&std::fs::read_to_string("/proc/asound/pcm").unwrap_or_default());
    let default = Device {
        path: "default".into(),
        name: "System default".into(),
    };
    mics.insert(0, default.clone());
    speakers.insert(0, default);
    (mics, speakers)
}

/// Roster files on mounted USB sticks: `*.toml` files directly in a mount point under the
/// given roots (`/media`, `/run/media/*`, `/mnt`) that contain a `[[member]]` table.
pub fn usb_rosters(roots: &[&Path]) -> Vec<(PathBuf, String)> {
    let mut out = Vec::new();
    let mut dirs: Vec<PathBuf> = Vec::new();
    for root in roots {
        if let Ok(rd) = std::fs::read_dir(root) {
            for e in rd.flatten() {
                let p = e.path();
                if p.is_dir() {
                    dirs.push(p.clone());
                    // /run/media/USER/LABEL
                    if let Ok(inner) = std::fs::read_dir(&p) {
                        dirs.extend(inner.flatten().map(|e| e.path()).filter(|p| p.is_dir()));
                    }
                }
            }
        }
    }
    dirs.sort();
    for d in dirs {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        let mut files: Vec<PathBuf> = rd
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|e| e == "toml"))
            .collect();
        files.sort();
        for f in files {
            if std::fs::metadata(&f).map(|m| m.len()).unwrap_or(u64::MAX) > 256 * 1024 {
                continue;
            }
            if let Ok(text) = std::fs::read_to_string(&f) {
                if text.contains("[[member]]") {
                    out.push((f, text));
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pcm_lines_give_hw_names() {
        let (mics, speakers) = parse_pcm(
            "00-00: ALC269VC Analog : ALC269VC Analog : playback 1 : capture 1\n\
             00-03: HDMI 0 : HDMI 0 : playback 1\n\
             01-00: USB Audio : USB Audio : playback 1 : capture 1\n\
             garbage\n\
             x-y: nope : nope : capture 1\n",
        );
        assert_eq!(
            mics.iter().map(|d| d.path.as_str()).collect::<Vec<_>>(),
            ["hw:0,0", "hw:1,0"]
        );
        assert_eq!(
            speakers.iter().map(|d| d.path.as_str()).collect::<Vec<_>>(),
            ["hw:0,0", "hw:0,3", "hw:1,0"]
        );
        assert_eq!(mics[1].name, "USB Audio");
    }

    #[test]
    fn rosters_are_found_on_sticks() {
        let root = std::env::temp_dir().join(format!("ewindow-usb-{}", std::process::id()));
        let stick = root.join("STICK");
        std::fs::create_dir_all(&stick).unwrap();
        std::fs::write(stick.join("roster.toml"), "[[member]]\nname = \"a\"\n").unwrap();
        std::fs::write(stick.join("other.toml"), "x = 1\n").unwrap();
        std::fs::write(stick.join("notes.txt"), "[[member]]").unwrap();
        let found = usb_rosters(&[&root]);
        assert_eq!(found.len(), 1);
        assert!(found[0].0.ends_with("STICK/roster.toml"));
        let _ = std::fs::remove_dir_all(&root);
    }
}
