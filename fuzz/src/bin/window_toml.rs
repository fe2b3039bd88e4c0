//! A window file (`window.toml`) read by the phone, the overlay and the console
//! (`protocol::window::parse`): an error names file, line and key; a file that is taken is
//! written back by `to_toml` as a file that is taken again, the same.
#![no_main]

use std::path::Path;

use ewindow_protocol::window;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let file = Path::new("window.toml");
    match window::parse(file, text, None) {
        Ok(config) => {
            let again = window::to_toml(&config);
            let back = window::parse(file, &again, None)
                .unwrap_or_else(|e| panic!("our own file is refused: {e}\n{again}"));
            assert_eq!(back, config, "written back differently:\n{again}");
        }
        Err(e) => {
            let message = e.to_string();
            assert!(message.contains("window.toml"), "no file named: {message}");
        }
    }
});
