//! SIPp (`sip-tester`) as a member of the overlay: windows a and b open to each other, and
//! member c (its own wireguard-go and overlay, SIPp for a phone) floods a with INVITEs at
//! 200/s for 30 s, then OPTIONS at 1,000/s for 10 s. The call keeps its media, every INVITE
//! gets 486 (a is busy), every OPTIONS its 200, and a's phone lets go of every transaction
//! afterwards. Its CPU and memory are printed (`sipp:` lines; a debug build), not asserted.

mod lab;
#[path = "../../phone/tests/sipp/run.rs"]
mod sipp;

use std::time::{Duration, Instant};

use lab::*;
use serde_json::json;
use sipp::Sipp;

/// Decoded audio of a's and b's call, and how long a's call has been up.
fn media(lab: &Lab, a: usize, b: usize) -> (u64, u64, f64) {
    let call = live_call(lab, a);
    let up = call["duration_s"].as_f64().unwrap_or(0.0);
    (
        decoded(&call, "audio"),
        decoded(&live_call(lab, b), "audio"),
        up,
    )
}

#[test]
fn a_member_flooding_invites_and_options_gets_486_and_200_while_the_call_keeps_its_media() {
    let mut lab = Lab::new('P');
    let a = lab.host("a");
    let b = lab.host("b");
    let c = lab.host("c");
    lab.roster_with(
        &[(a, true, false), (b, true, false), (c, true, false)],
        &[(a, "b"), (b, "a")],
    );
    lab.start_window_mode(a);
    lab.start_window_mode(b);
    lab.start_overlay(c);
    lab.wait_state(a, "open", "b", 60);
    lab.wait_state(b, "open", "a", 30);
    let a_addr = lab.windows[a].overlay_addr();
    let c_addr = lab.windows[c].overlay_addr();
    let ns = lab.windows[c].ns.clone();
    let dir = lab.windows[c].dir.clone();
    let remote = format!("[{a_addr}]:5060");
    let phone = lab.pid(a, "phone");
    let sock = lab.windows[a].phone_sock();
    std::thread::sleep(Duration::from_secs(2));
    let rss0 = proc_status(phone, "VmRSS:");
    let media0 = media(&lab, a, b);

    // Runs a scenario from c at a, measuring a's phone meanwhile; asserts every call of it
    // ran to its end. Returns the phone's CPU and the seconds it took.
    let flood = |lab: &Lab, scenario: &'static str, port: u16, calls: u64, rate: u32| {
        let (c_addr, remote, ns, dir) = (c_addr.clone(), remote.clone(), ns.clone(), dir.clone());
        let t0 = Instant::now();
        let run = std::thread::spawn(move || {
            Sipp {
                scenario,
                local: (&c_addr, port),
                remote: &remote,
                caller: "c",
                calls,
                rate,
                netns: Some(&ns),
                dir: &dir,
            }
            .run()
        });
        let busy = calls as f64 / rate as f64 - 2.0;
        let phone_cpu = cpu(lab, &[(a, "phone")], busy)[0];
        let got = run.join().unwrap();
        assert_eq!(
            (got.successful, got.failed),
            (calls, 0),
            "{scenario}: {calls} calls, every one as the scenario says: {}",
            got.output
        );
        (phone_cpu, t0.elapsed().as_secs_f64())
    };
    let (invite_cpu, invite_s) = flood(&lab, "invite-busy.xml", 5070, 6000, 200);
    let media1 = media(&lab, a, b);
    let rss1 = proc_status(phone, "VmRSS:");
    let (options_cpu, options_s) = flood(&lab, "options.xml", 5072, 10_000, 1000);
    let media2 = media(&lab, a, b);

    // The same call all along, with media both ways through both floods.
    assert!(
        media1.0 > media0.0 + 1000 && media1.1 > media0.1 + 1000,
        "audio decoded during the INVITE flood: {media0:?} → {media1:?}"
    );
    assert!(
        media2.0 > media1.0 + 300 && media2.1 > media1.1 + 300,
        "audio decoded during the OPTIONS flood: {media1:?} → {media2:?}"
    );
    assert!(
        media2.2 >= media0.2 + invite_s + options_s - 2.0,
        "a's call was never replaced: {media0:?} → {media2:?}"
    );
    assert_eq!(lab.state(a), ("open".into(), "b".into()));

    // Every refused INVITE's transaction ends (Timer I, 5 s after its ACK).
    let t2 = Instant::now();
    wait_for("a's phone lets go of the flood's transactions", 60, || {
        let sip = ask(&sock, json!({"cmd": "sip"}))["sip"].clone();
        let idle = sip["transactions"] == 0 && sip["waiting_ack"] == 0 && sip["dialogs"] == 1;
        (!idle).then(|| sip.to_string())
    });
    let settled = t2.elapsed().as_secs_f64();
    std::thread::sleep(Duration::from_secs(5));
    eprintln!(
        "sipp: 6,000 INVITEs at 200/s from member c during a's call: all 486, in {invite_s:.1} s; \
         a's phone {invite_cpu:.0} % of a core; 10,000 OPTIONS at 1,000/s: all 200, in \
         {options_s:.1} s, {options_cpu:.0} % of a core; transactions all ended {settled:.1} s \
         later"
    );
    eprintln!(
        "sipp: a's phone RSS {:.1} MiB before, {:.1} after the INVITEs, {:.1} at the end \
         (peak {:.1})",
        rss0 as f64 / 1024.0,
        rss1 as f64 / 1024.0,
        proc_status(phone, "VmRSS:") as f64 / 1024.0,
        proc_status(phone, "VmHWM:") as f64 / 1024.0
    );
}
