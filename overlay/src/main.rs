//! `ewindow-overlay`: the program is [`ewindow_overlay::cli::main`], which the multi-call `ewindow` (`multicall/`)
//! runs too.

fn main() -> std::process::ExitCode {
    ewindow_overlay::cli::main(std::env::args_os().collect())
}
