//! A line on a control socket: the phone's (`protocol::phone::Request`), the overlay's
//! (`protocol::overlay::Request`) and a member's on the enrollment port
//! (`protocol::overlay::PeerRequest`), through the line reader with its length limit.
#![no_main]

use ewindow_protocol::{overlay, phone};

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let mut reader = std::io::BufReader::new(data);
    while let Ok(Some(line)) = ewindow_io::lines::read_line(&mut reader, 4096) {
        if let Ok(req) = serde_json::from_str::<phone::Request>(&line) {
            let _ = ewindow_io::lines::encode(&req);
        }
        if let Ok(req) = serde_json::from_str::<overlay::Request>(&line) {
            let _ = ewindow_io::lines::encode(&req);
        }
        if let Ok(req) = serde_json::from_str::<overlay::PeerRequest>(&line) {
            let _ = ewindow_io::lines::encode(&req);
        }
    }
});
