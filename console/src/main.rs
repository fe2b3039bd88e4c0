//! `ewindow-console`, the window's status console, first-boot wizard and `ewindowctl`.
//! Not written yet: this binary only says so, and exits non-zero.

fn main() -> std::process::ExitCode {
    eprintln!("ewindow-console: not implemented yet");
    std::process::ExitCode::from(2)
}
