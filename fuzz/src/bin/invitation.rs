//! An invitation code as typed into the wizard (`protocol::invite::Invitation::decode`):
//! a code that decodes encodes to a code that decodes to the same invitation.
#![no_main]

use ewindow_protocol::invite::Invitation;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(invitation) = Invitation::decode(text) {
        let again = Invitation::decode(&invitation.encode()).expect("our own code decodes");
        assert_eq!(again.encode(), invitation.encode());
    }
});
