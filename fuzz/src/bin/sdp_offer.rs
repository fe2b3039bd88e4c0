//! A peer's SDP offer answered by us (`sdp::answer_session`): an error for anything we
//! cannot take, never a panic; what we answer is SDP our own parser reads.
#![no_main]

use ewindow_phone::sdp::{answer_session, SdpError};

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Some((local, offer)) = ewindow_fuzz::session(data) else {
        return;
    };
    match answer_session(offer, &local, 1, 1) {
        Ok((answer, _)) => {
            // Our answer, read as an offer by ourselves, must at least parse.
            if let Err(SdpError::Parse(e)) = answer_session(&answer, &local, 2, 1) {
                panic!("our answer does not parse ({e}):\n{answer}");
            }
        }
        Err(e) => {
            let status = e.sip_status();
            assert!(
                status == 488 || status == 400 || status == 500,
                "{e}: {status}"
            );
        }
    }
});
