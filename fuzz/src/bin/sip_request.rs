//! A datagram from the network through the phone's SIP entry point: the transport's parse,
//! the request guard, the refusal it sends, and what a new INVITE is read for
//! (`ewindow_phone::sip::screen`). No bytes may panic it.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Some(status) = ewindow_phone::sip::screen(data) {
        assert!(
            (400..500).contains(&status),
            "the guard refused with {status}"
        );
    }
});
