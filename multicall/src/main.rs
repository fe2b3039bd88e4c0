//! `ewindow`: `ewindow-phone`, `ewindow-overlay`, `ewindow-console` and `ewindowctl` in one
//! binary (see `ewindow_protocol::programs`). Run as one of those names (a link), it is that
//! program; `ewindow NAME ARGS…` runs NAME too; anything else prints the names.

use std::ffi::OsString;
use std::path::Path;
use std::process::ExitCode;

use ewindow_protocol::programs::{IN_MULTICALL, MULTICALL};

type Main = fn(Vec<OsString>) -> ExitCode;

/// Each program by its name; the names are `IN_MULTICALL`'s (a test holds them together).
const PROGRAMS: [(&str, Main); 4] = [
    ("ewindow-phone", ewindow_phone::cli::main),
    ("ewindow-overlay", ewindow_overlay::cli::main),
    ("ewindow-console", ewindow_console::cli::main),
    ("ewindowctl", ewindow_console::ctl::main),
];

/// Pure: the program a command line names and the arguments it gets (its own name first),
/// from the file name of `argv[0]`, or else from `argv[1]` when run as `ewindow`.
fn choose(mut args: Vec<OsString>) -> Option<(Main, Vec<OsString>)> {
    let find = |arg: &OsString| {
        let name = Path::new(arg).file_name()?.to_str()?;
        PROGRAMS.iter().find(|(n, _)| *n == name).map(|(_, m)| *m)
    };
    if let Some(main) = args.first().and_then(find) {
        return Some((main, args));
    }
    let main = args.get(1).and_then(find)?;
    args.remove(0);
    Some((main, args))
}

fn main() -> ExitCode {
    match choose(std::env::args_os().collect()) {
        Some((main, args)) => main(args),
        None => {
            eprintln!(
                "usage: {MULTICALL} PROGRAM [ARGS…], or run it as one of: {}",
                IN_MULTICALL.join(", ")
            );
            ExitCode::from(2)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(v: &[&str]) -> Vec<OsString> {
        v.iter().map(OsString::from).collect()
    }

    #[test]
    fn the_table_is_the_protocols_list() {
        let names: Vec<&str> = PROGRAMS.iter().map(|(n, _)| *n).collect();
        assert_eq!(names, IN_MULTICALL);
    }

    #[test]
    fn a_program_is_chosen_by_the_link_it_runs_as_or_by_its_first_argument() {
        let is = |chosen: Option<(Main, Vec<OsString>)>, program: usize, rest: &[&str]| {
            let (main, a) = chosen.expect("a program");
            assert!(std::ptr::fn_addr_eq(main, PROGRAMS[program].1));
            assert_eq!(a, args(rest));
        };
        is(
            choose(args(&["/usr/bin/ewindowctl", "status"])),
            3,
            &["/usr/bin/ewindowctl", "status"],
        );
        is(
            choose(args(&["ewindow-phone", "window"])),
            0,
            &["ewindow-phone", "window"],
        );
        is(
            choose(args(&["/usr/bin/ewindow", "ewindow-overlay", "up"])),
            1,
            &["ewindow-overlay", "up"],
        );
        assert!(choose(args(&["/usr/bin/ewindow"])).is_none());
        assert!(choose(args(&["ewindow", "sh"])).is_none());
        assert!(choose(args(&["busybox", "ewindow-init"])).is_none());
        assert!(choose(Vec::new()).is_none());
    }
}
