//! `ewindowctl`: the program is [`ewindow_console::ctl::main`], which the multi-call `ewindow` (`multicall/`)
//! runs too.

fn main() -> std::process::ExitCode {
    ewindow_console::ctl::main(std::env::args_os().collect())
}
