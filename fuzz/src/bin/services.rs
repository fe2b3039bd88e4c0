//! The supervisor's services file (`services.toml`, `ewindow_init::config::parse`): an error
//! names file, line and key; a file that is taken has a start order over all its services.
#![no_main]

use std::path::Path;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match ewindow_init::config::parse(Path::new("services.toml"), text) {
        Ok(config) => {
            let order = config.start_order();
            assert_eq!(order.len(), config.services.len());
        }
        Err(e) => assert!(e.to_string().contains("services.toml"), "{e}"),
    }
});
