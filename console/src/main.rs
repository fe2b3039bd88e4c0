//! `ewindow-console`: the program is [`ewindow_console::cli::main`], which the multi-call `ewindow` (`multicall/`)
//! runs too.

fn main() -> std::process::ExitCode {
    ewindow_console::cli::main(std::env::args_os().collect())
}
