//! Our phone against linphone 5.1 (`linphonec`, Debian's `linphone-cli`), the second
//! independent SIP stack we interoperate with: calls both ways, Opus and PCMU, VP8 video,
//! SDES-SRTP mandatory on both sides. Media is asserted decoded on our side (our statistics)
//! and heard on linphone's (what it records to a WAV file). Settings: `shared/peers/linphone.md`.

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{ChildStdin, Command};
use std::time::Duration;

use common::*;
use ewindow_protocol::{EndReason, StreamDirection};

/// 90 % of the 250 frames a 5 s call at 20 ms carries.
const MIN_FRAMES: u64 = 225;

/// How a linphone instance is set up.
#[derive(Clone, Copy)]
struct Setup {
    /// `opus` or `pcmu`: the only audio codec it enables.
    codec: &'static str,
    /// Send video (VP8, from its static picture) and accept ours.
    video: bool,
    /// Pin it to IPv4 on 127.0.0.1 (as `shared/peers/linphone.md`); without it linphone keeps
    /// its defaults and, on a host with an IPv6 route, offers IPv6 media.
    ipv4: bool,
}

/// A `linphonec` driven on its standard input, with its own HOME and configuration.
struct Linphone {
    proc: Proc,
    stdin: ChildStdin,
    dir: PathBuf,
    sip_port: u16,
}

impl Linphone {
    /// Starts linphonec (auto-answering with `answer`), in network namespace `netns` if given.
    fn start(name: &str, setup: Setup, answer: bool, netns: Option<&str>) -> Linphone {
        let dir = temp_dir(&format!("linphone-{name}"));
        let home = dir.join("home");
        std::fs::create_dir_all(home.join(".local/share/linphone")).unwrap();
        let sip_port = free_port();
        let rtp = 20000 + (sip_port % 300) * 100;
        let mut rc = String::from("[sip]\n");
        rc += &format!("sip_port={sip_port}\nsip_tcp_port=0\nsip_tls_port=0\n");
        if setup.ipv4 {
            rc += "ipv6_migration_done=1\nuse_ipv6=0\nguess_hostname=0\n";
            rc += &format!("contact=\"{name}\" <sip:{name}@127.0.0.1:{sip_port}>\n");
        }
        rc += "media_encryption=srtp\nmedia_encryption_mandatory=1\n[rtp]\n";
        if setup.ipv4 {
            rc += "bind_address=127.0.0.1\n";
        }
        rc += &format!(
            "audio_rtp_port={rtp}-{}\nvideo_rtp_port={}-{}\n",
            rtp + 49,
            rtp + 50,
            rtp + 99
        );
        rc += "[net]\nfirewall_policy=0\n[video]\ndisplay=0\n";
        if setup.video {
            rc += "capture=1\nsize=vga\ndevice=StaticImage: Static picture\n";
            rc += "automatically_initiate=1\nautomatically_accept=1\n";
            rc += "[video_codec_0]\nmime=VP8\nrate=90000\nenabled=1\n";
        } else {
            rc += "capture=0\n";
        }
        for (i, (mime, rate, channels)) in [
            ("opus", 48000, 2),
            ("speex", 16000, 1),
            ("speex", 8000, 1),
            ("PCMU", 8000, 1),
            ("PCMA", 8000, 1),
            ("G729", 8000, 1),
        ]
        .iter()
        .enumerate()
        {
            let on = u8::from(mime.eq_ignore_ascii_case(setup.codec));
            rc += &format!(
                "[audio_codec_{i}]\nmime={mime}\nrate={rate}\nchannels={channels}\nenabled={on}\n"
            );
        }
        let config = dir.join("linphonerc");
        std::fs::write(&config, rc).unwrap();
        write_tone_wav(&dir.join("tone.wav"), 16000, 60);

        let mut args: Vec<String> = Vec::new();
        if let Some(ns) = netns {
            args.extend(["netns", "exec", ns].map(String::from));
        }
        args.push("linphonec".into());
        if answer {
            args.push("-a".into());
        }
        if setup.video {
            args.push("-C".into());
        }
        args.extend(["-c".into(), config.display().to_string()]);
        args.extend(["-d".into(), "6".into(), "-l".into()]);
        args.push(dir.join("linphone.log").display().to_string());
        let mut cmd = if netns.is_some() {
            Command::new("ip")
        } else {
            Command::new(args.remove(0))
        };
        cmd.args(&args).env("HOME", &home);
        let (proc, stdin) = Proc::spawn_with_input(&format!("linphone-{name}"), cmd);
        let mut l = Linphone {
            proc,
            stdin,
            dir,
            sip_port,
        };
        l.command("soundcard use files");
        l.wait("Using wav files");
        let tone = l.dir.join("tone.wav");
        let heard = l.dir.join("heard.wav");
        l.command(&format!("play {}", tone.display()));
        l.command(&format!("record {}", heard.display()));
        l
    }

    fn uri(&self, user: &str) -> String {
        format!("sip:{user}@127.0.0.1:{}", self.sip_port)
    }

    fn command(&mut self, line: &str) {
        writeln!(self.stdin, "{line}").expect("linphonec stdin");
        self.stdin.flush().unwrap();
    }

    /// Waits for a line of its console output.
    fn wait(&mut self, needle: &str) -> String {
        self.proc
            .wait_for(needle, Duration::from_secs(30))
            .unwrap_or_else(|| {
                panic!(
                    "linphone never said {needle:?}:\n{}",
                    self.proc.seen.join("\n")
                )
            })
    }

    /// Its SIP log (the messages it sent and received).
    fn log(&self) -> String {
        std::fs::read(self.dir.join("linphone.log"))
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default()
    }

    /// What it recorded of the call: seconds of audio and their RMS level.
    fn heard(&self) -> (f64, f64) {
        wav_seconds_and_rms(&self.dir.join("heard.wav"))
    }
}

impl Drop for Linphone {
    fn drop(&mut self) {
        let _ = writeln!(self.stdin, "quit");
        let _ = self.stdin.flush();
        let _ = self.proc.finish(Duration::from_secs(5));
    }
}

/// Seconds and RMS of a 16-bit PCM WAV file, read from its `fmt ` and `data` chunks (the
/// data size is taken from the file, which linphone finalizes only on close).
fn wav_seconds_and_rms(path: &Path) -> (f64, f64) {
    let Ok(bytes) = std::fs::read(path) else {
        return (0.0, 0.0);
    };
    let find = |tag: &[u8]| bytes.windows(4).position(|w| w == tag);
    let (Some(fmt), Some(data)) = (find(b"fmt "), find(b"data")) else {
        return (0.0, 0.0);
    };
    let u16_at = |i: usize| u16::from_le_bytes([bytes[i], bytes[i + 1]]);
    let channels = f64::from(u16_at(fmt + 10));
    let rate = f64::from(u32::from_le_bytes(
        bytes[fmt + 12..fmt + 16].try_into().unwrap(),
    ));
    let samples: Vec<f64> = bytes[data + 8..]
        .chunks_exact(2)
        .map(|c| f64::from(i16::from_le_bytes([c[0], c[1]])))
        .collect();
    if samples.is_empty() || rate == 0.0 {
        return (0.0, 0.0);
    }
    let rms = (samples.iter().map(|s| s * s).sum::<f64>() / samples.len() as f64).sqrt();
    (samples.len() as f64 / rate / channels.max(1.0), rms)
}

/// linphone heard our tone for most of the call.
fn assert_heard(peer: &Linphone, seconds: f64) {
    let (secs, rms) = peer.heard();
    assert!(
        secs >= seconds && rms > 1000.0,
        "linphone heard {secs:.1} s at RMS {rms:.0} (want >= {seconds} s of our tone)"
    );
}

#[test]
fn phone_calls_linphone_with_opus_and_vp8_video_over_srtp() {
    let setup = Setup {
        codec: "opus",
        video: true,
        ipv4: true,
    };
    let peer = Linphone::start("lin", setup, true, None);
    let json = peer.dir.join("ours.json");
    let mut a = phone_call(
        &peer.uri("lin"),
        &[
            "--codecs",
            "opus,pcmu",
            "--video-codecs",
            "vp8",
            "--duration",
            "6",
            "--stats-json",
            json.to_str().unwrap(),
        ],
    );
    let (ok, out) = a.finish(Duration::from_secs(30));
    assert!(ok, "our call to linphone failed:\n{out}");
    let ours = read_stats(&json);
    assert_eq!(ours.end_reason, Some(EndReason::LocalBye));
    let audio = ours.stream("audio", StreamDirection::Recv).unwrap();
    assert_eq!(audio.codec, "opus");
    assert!(
        audio.srtp,
        "linphone with SRTP mandatory: audio must be SRTP"
    );
    assert!(audio.decoded >= MIN_FRAMES, "we decoded {}", audio.decoded);
    let video = ours.stream("video", StreamDirection::Recv).unwrap();
    assert_eq!(video.codec, "vp8");
    assert!(video.srtp, "video must be SRTP");
    // linphone's static picture is sent at about one frame per second.
    assert!(
        video.decoded >= 3,
        "we decoded {} frames of linphone's VP8",
        video.decoded
    );
    let sent = ours.stream("video", StreamDirection::Send).unwrap();
    assert!(sent.packets > 100, "we sent {} video packets", sent.packets);
    assert_heard(&peer, 5.0);
    assert!(
        peer.log().contains("m=video") && peer.log().contains("RTP/SAVP"),
        "linphone saw a secure video stream"
    );
}

#[test]
fn linphone_calls_phone_with_pcmu_over_srtp() {
    let setup = Setup {
        codec: "pcmu",
        video: false,
        ipv4: true,
    };
    let mut peer = Linphone::start("lin", setup, false, None);
    let json = peer.dir.join("ours.json");
    let port = free_port();
    let mut b = phone_listen(
        port,
        &[
            "--auto-answer",
            "--video-codecs",
            "none",
            "--duration",
            "5",
            "--stats-json",
            json.to_str().unwrap(),
        ],
    );
    peer.command(&format!("call sip:ewindow@127.0.0.1:{port}"));
    let (ok, out) = b.finish(Duration::from_secs(30));
    assert!(ok, "answering linphone failed:\n{out}");
    peer.wait("ended");
    let ours = read_stats(&json);
    assert_eq!(ours.end_reason, Some(EndReason::LocalBye));
    let recv = ours.stream("audio", StreamDirection::Recv).unwrap();
    assert_eq!(recv.codec, "pcmu");
    assert!(recv.srtp, "the call must be SRTP");
    assert!(recv.decoded >= MIN_FRAMES, "we decoded {}", recv.decoded);
    assert_heard(&peer, 4.0);
}

/// A network namespace with an IPv6 default route (as a dual-stack LAN gives), deleted on drop.
struct DualStackNs(String);

impl DualStackNs {
    fn new() -> DualStackNs {
        let tag = std::process::id() % 100_000;
        let ns = format!("ewlp6-{tag}");
        let (host, inner) = (format!("lp{tag}a"), format!("lp{tag}b"));
        let _ = Command::new("ip")
            .args(["netns", "del", &ns])
            .stderr(std::process::Stdio::null())
            .status();
        let run = |args: &[&str]| {
            let ok = Command::new("ip").args(args).status().unwrap().success();
            assert!(ok, "ip {args:?}");
        };
        run(&["netns", "add", &ns]);
        let ns_guard = DualStackNs(ns.clone());
        run(&["-n", &ns, "link", "set", "lo", "up"]);
        run(&[
            "link", "add", &host, "type", "veth", "peer", "name", &inner, "netns", &ns,
        ]);
        run(&["-n", &ns, "link", "set", &inner, "up"]);
        run(&[
            "-n",
            &ns,
            "addr",
            "add",
            "fd00::2/64",
            "dev",
            &inner,
            "nodad",
        ]);
        run(&[
            "-n", &ns, "-6", "route", "add", "default", "via", "fd00::1", "dev", &inner, "onlink",
        ]);
        ns_guard
    }
}

impl Drop for DualStackNs {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.0]).status();
    }
}

/// linphone with its defaults on a dual-stack host offers `c=IN IP6 fd00::2` even when
/// calling `sip:ewindow@127.0.0.1`. Our media is IPv4: we refuse with 488 and a Warning
/// (301) before answering, keep serving, and take the next call that offers IPv4.
#[test]
fn an_ipv6_media_offer_gets_488_with_a_warning_and_the_phone_serves_the_next_call() {
    let ns = DualStackNs::new();
    let port = free_port();
    let mut cmd = Command::new("ip");
    cmd.args(["netns", "exec", &ns.0, phone_bin(), "listen"])
        .args(["--sip", &format!("127.0.0.1:{port}")])
        .args(["--auto-answer", "--video-codecs", "none"]);
    let mut phone = Proc::spawn("phone-listen", cmd);
    assert!(phone
        .wait_for("listening on", Duration::from_secs(10))
        .is_some());

    let dual = Setup {
        codec: "opus",
        video: false,
        ipv4: false,
    };
    let mut first = Linphone::start("dual", dual, false, Some(&ns.0));
    first.command(&format!("call sip:ewindow@127.0.0.1:{port}"));
    first.wait("error");
    let log = first.log();
    assert!(
        log.contains("c=IN IP6 fd00::2"),
        "linphone offered IPv6 media"
    );
    assert!(
        log.contains("SIP/2.0 488 Not Acceptable Here")
            && log.contains("Warning: 301 ewindow \"media address fd00::2 is IPv6"),
        "linphone got a 488 that says why:\n{}",
        log.lines()
            .filter(|l| l.contains("488") || l.contains("Warning"))
            .collect::<Vec<_>>()
            .join("\n")
    );
    let refused = phone
        .wait_for("refused", Duration::from_secs(10))
        .expect("the phone says it refused");
    assert!(
        refused.contains("488") && refused.contains("IPv6"),
        "{refused}"
    );
    drop(first);

    let v4 = Setup {
        codec: "opus",
        video: false,
        ipv4: true,
    };
    let mut second = Linphone::start("v4", v4, false, Some(&ns.0));
    second.command(&format!("call sip:ewindow@127.0.0.1:{port}"));
    second.wait("Media streams established");
    std::thread::sleep(Duration::from_secs(4));
    second.command("terminate");
    let ended = phone
        .wait_for("call ended", Duration::from_secs(15))
        .unwrap_or_else(|| panic!("no second call:\n{}", phone.seen.join("\n")));
    assert!(
        ended.contains("(remote-bye)") && ended.contains("(srtp)"),
        "{ended}"
    );
    let decoded: u64 = ended
        .split("decoded ")
        .nth(1)
        .and_then(|t| t.split(|c: char| !c.is_ascii_digit()).next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    assert!(
        decoded >= 150,
        "the phone decoded {decoded} frames: {ended}"
    );
    assert_heard(&second, 3.0);
    phone.terminate();
}
