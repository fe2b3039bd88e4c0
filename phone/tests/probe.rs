//! `ewindow-phone probe`: the device checks the first-boot wizard runs, on GStreamer's test
//! sources (this machine has no camera or sound card).

use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_ewindow-phone");

fn run(args: &[&str]) -> (bool, String) {
    let out = Command::new(BIN).args(args).output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

#[test]
fn a_microphone_level_ten_times_a_second() {
    let (ok, out) = run(&[
        "probe",
        "level",
        "--audio-source",
        "test",
        "--duration",
        "1",
    ]);
    assert!(ok, "{out}");
    let levels: Vec<f64> = out
        .lines()
        .filter_map(|l| l.strip_prefix("level "))
        .map(|v| v.parse().unwrap())
        .collect();
    assert!((7..=12).contains(&levels.len()), "{out}");
    // A 0.3-volume sine is about -13.5 dBFS RMS.
    assert!(
        levels.iter().all(|&db| (-16.0..-11.0).contains(&db)),
        "{out}"
    );
}

#[test]
fn a_camera_frame_rate_and_a_missing_camera() {
    let (ok, out) = run(&["probe", "camera", "--video-source", "test"]);
    assert!(ok, "{out}");
    let fps: f64 = out.trim().strip_prefix("fps ").unwrap().parse().unwrap();
    assert!((25.0..=35.0).contains(&fps), "{out}");
    let (ok, out) = run(&["probe", "camera", "--video-source", "/dev/video99"]);
    assert!(!ok && out.starts_with("error "), "{out}");
}

#[test]
fn a_test_tone_plays_to_the_end() {
    let (ok, out) = run(&["probe", "tone", "--audio-sink", "null"]);
    assert!(ok && out.trim() == "tone played", "{out}");
}
