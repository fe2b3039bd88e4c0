//! `ewindow-init`, the window's PID 1 (mounts, reaping, ordered services, watchdog, WireGuard).
//! Not written yet: this binary only says so, and exits non-zero so nothing mistakes it for
//! a working init.

fn main() -> std::process::ExitCode {
    eprintln!("ewindow-init: not implemented yet");
    std::process::ExitCode::from(2)
}
