//! A peer's SDP answer to our offer read by us (`sdp::read_session_answer`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Some((local, answer)) = ewindow_fuzz::session(data) else {
        return;
    };
    let _ = ewindow_phone::sdp::read_session_answer(answer, &local);
});
