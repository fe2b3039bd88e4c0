//! `ewindow-phone`: the program is [`ewindow_phone::cli::main`], which the multi-call `ewindow` (`multicall/`)
//! runs too.

fn main() -> std::process::ExitCode {
    ewindow_phone::cli::main(std::env::args_os().collect())
}
