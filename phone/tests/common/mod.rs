//! Test harness: our phone and baresip as real processes on loopback.
//!
//! Shared by the integration tests and `benches/phone.rs` (included with `#[path]`), so not
//! every item is used by every test binary.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use ewindow_protocol::CallStats;

/// Our phone binary, built by cargo for this test run.
pub fn phone_bin() -> &'static str {
    env!("CARGO_BIN_EXE_ewindow-phone")
}

/// A fresh temporary directory for one test.
pub fn temp_dir(name: &str) -> PathBuf {
    static N: AtomicU32 = AtomicU32::new(0);
    let dir = std::env::temp_dir().join(format!(
        "ewindow-test-{}-{}-{name}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create temp dir");
    dir
}

/// A port free on 127.0.0.1 for UDP and TCP, and port+1 too (baresip binds SIP+1 for TLS).
pub fn free_port() -> u16 {
    for _ in 0..200 {
        let Ok(udp) = UdpSocket::bind("127.0.0.1:0") else {
            continue;
        };
        let port = udp.local_addr().unwrap().port();
        if port > 60000 {
            continue;
        }
        let ok = std::net::TcpListener::bind(("127.0.0.1", port)).is_ok()
            && UdpSocket::bind(("127.0.0.1", port + 1)).is_ok()
            && std::net::TcpListener::bind(("127.0.0.1", port + 1)).is_ok();
        if ok {
            return port;
        }
    }
    panic!("no free port on 127.0.0.1");
}

/// A child process that is killed when dropped, with its output collected line by line.
pub struct Proc {
    pub child: Child,
    lines: mpsc::Receiver<String>,
    pub seen: Vec<String>,
    name: String,
}

impl Proc {
    /// Spawns `cmd` with stdout and stderr captured.
    pub fn spawn(name: &str, mut cmd: Command) -> Proc {
        cmd.stdin(Stdio::null());
        Proc::start(name, cmd)
    }

    /// Spawns `cmd` with stdout and stderr captured and its standard input a pipe.
    pub fn spawn_with_input(name: &str, mut cmd: Command) -> (Proc, std::process::ChildStdin) {
        cmd.stdin(Stdio::piped());
        let mut p = Proc::start(name, cmd);
        let stdin = p.child.stdin.take().expect("piped stdin");
        (p, stdin)
    }

    fn start(name: &str, mut cmd: Command) -> Proc {
        cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut child = cmd.spawn().unwrap_or_else(|e| panic!("spawn {name}: {e}"));
        let (tx, rx) = mpsc::channel();
        let streams: Vec<Box<dyn Read + Send>> = vec![
            Box::new(child.stdout.take().unwrap()),
            Box::new(child.stderr.take().unwrap()),
        ];
        for stream in streams {
            let tx = tx.clone();
            std::thread::spawn(move || {
                // baresip redraws its status line with '\r': split on both.
                let mut reader = BufReader::new(stream);
                let mut buf = Vec::new();
                loop {
                    buf.clear();
                    match reader.read_until(b'\n', &mut buf) {
                        Ok(0) | Err(_) => break,
                        Ok(_) => {
                            for part in String::from_utf8_lossy(&buf).split(['\r', '\n']) {
                                if !part.trim().is_empty() {
                                    let _ = tx.send(part.to_string());
                                }
                            }
                        }
                    }
                }
            });
        }
        Proc {
            child,
            lines: rx,
            seen: Vec::new(),
            name: name.to_string(),
        }
    }

    /// Waits for an output line containing `needle`.
    pub fn wait_for(&mut self, needle: &str, timeout: Duration) -> Option<String> {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return None;
            }
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    if line.contains(needle) {
                        return Some(line);
                    }
                }
                Err(mpsc::RecvTimeoutError::Timeout) => return None,
                Err(mpsc::RecvTimeoutError::Disconnected) => return None,
            }
        }
    }

    /// Waits for the process to exit (killing it after `timeout`); returns whether it
    /// succeeded and all of its output.
    pub fn finish(&mut self, timeout: Duration) -> (bool, String) {
        let deadline = Instant::now() + timeout;
        let status = loop {
            if let Some(s) = self.child.try_wait().expect("try_wait") {
                break Some(s);
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                break None;
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        // Drain what is left.
        std::thread::sleep(Duration::from_millis(100));
        while let Ok(line) = self.lines.try_recv() {
            self.seen.push(line);
        }
        let ok = status.is_some_and(|s| s.success());
        (ok, self.seen.join("\n"))
    }

    /// Sends SIGTERM.
    pub fn terminate(&self) {
        unsafe_kill(self.child.id(), "TERM");
    }

    /// The process name given at spawn.
    pub fn name(&self) -> &str {
        &self.name
    }
}

fn unsafe_kill(pid: u32, sig: &str) {
    let _ = Command::new("kill")
        .args([format!("-{sig}"), pid.to_string()])
        .status();
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `ewindow-phone listen` and waits until it listens.
pub fn phone_listen(port: u16, args: &[&str]) -> Proc {
    phone_listen_env(port, args, &[])
}

/// [`phone_listen`] with extra environment variables for the phone.
pub fn phone_listen_env(port: u16, args: &[&str], env: &[(&str, &Path)]) -> Proc {
    let mut cmd = Command::new(phone_bin());
    cmd.args(["listen", "--sip", &format!("127.0.0.1:{port}")])
        .args(args)
        .envs(env.iter().copied());
    let mut p = Proc::spawn("phone-listen", cmd);
    assert!(
        p.wait_for("listening on", Duration::from_secs(10))
            .is_some(),
        "phone did not start listening: {}",
        p.seen.join("\n")
    );
    p
}

/// Starts `ewindow-phone call URI ARGS`.
pub fn phone_call(uri: &str, args: &[&str]) -> Proc {
    phone_call_env(uri, args, &[])
}

/// [`phone_call`] with extra environment variables for the phone.
pub fn phone_call_env(uri: &str, args: &[&str], env: &[(&str, &Path)]) -> Proc {
    let mut cmd = Command::new(phone_bin());
    cmd.args(["call", uri]).args(args).envs(env.iter().copied());
    Proc::spawn("phone-call", cmd)
}

/// Reads a `--stats-json` file.
pub fn read_stats(path: &Path) -> CallStats {
    let text =
        std::fs::read_to_string(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("parsing {}: {e}\n{text}", path.display()))
}

/// A 16-bit mono WAV of a 440 Hz tone (baresip's `aufile` source for 8 kHz codecs).
pub fn write_tone_wav(path: &Path, rate: u32, seconds: u32) {
    let samples = rate * seconds;
    let mut data = Vec::with_capacity(44 + 2 * samples as usize);
    data.extend_from_slice(b"RIFF");
    data.extend_from_slice(&(36 + 2 * samples).to_le_bytes());
    data.extend_from_slice(b"WAVEfmt ");
    data.extend_from_slice(&16u32.to_le_bytes());
    data.extend_from_slice(&1u16.to_le_bytes()); // PCM
    data.extend_from_slice(&1u16.to_le_bytes()); // mono
    data.extend_from_slice(&rate.to_le_bytes());
    data.extend_from_slice(&(rate * 2).to_le_bytes());
    data.extend_from_slice(&2u16.to_le_bytes());
    data.extend_from_slice(&16u16.to_le_bytes());
    data.extend_from_slice(b"data");
    data.extend_from_slice(&(2 * samples).to_le_bytes());
    for i in 0..samples {
        let v =
            (8000.0 * (2.0 * std::f64::consts::PI * 440.0 * i as f64 / rate as f64).sin()) as i16;
        data.extend_from_slice(&v.to_le_bytes());
    }
    std::fs::write(path, data).expect("write wav");
}

/// Which audio codec a baresip peer offers/accepts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BaresipCodec {
    /// Opus 48 kHz, with the `ausine` source.
    Opus,
    /// PCMU, with an 8 kHz WAV through `aufile` (ausine is 48 kHz only).
    Pcmu,
}

/// A baresip 1.0 instance configured as in `shared/peers/baresip.md`, driven over ctrl_tcp.
pub struct Baresip {
    pub proc: Proc,
    pub sip_port: u16,
    ctrl_port: u16,
    pub dir: PathBuf,
    pub user: String,
}

/// What baresip reported for a finished call (its `rtp_stats` table).
#[derive(Debug, Default, Clone, Copy)]
pub struct BaresipCall {
    /// Audio RTP packets baresip sent.
    pub tx_packets: u64,
    /// Audio RTP packets baresip received.
    pub rx_packets: u64,
    /// Video RTP packets baresip sent (0 without video).
    pub video_tx_packets: u64,
    /// Video RTP packets baresip received.
    pub video_rx_packets: u64,
}

impl Baresip {
    /// Starts an audio-only baresip listening on a free port, auto-answering calls, with
    /// SRTP mandatory (`mediaenc=srtp-mand`).
    pub fn start(user: &str, codec: BaresipCodec) -> Baresip {
        Baresip::start_with(user, codec, None)
    }

    /// Starts baresip with audio and video (`fakevideo` source, 640x480 at 30 fps,
    /// `video_bitrate` 500 kbit/s) limited to one video codec (`vp8`, `vp9` or `h264`).
    pub fn start_video(user: &str, video: &str) -> Baresip {
        Baresip::start_with(
            user,
            BaresipCodec::Opus,
            Some((video, "fakevideo,nil", 500_000)),
        )
    }

    /// Like [`Baresip::start_video`] with another video source (`avformat,CLIP`) and its
    /// `video_bitrate` setting (bit/s): baresip 1.0's VP8 sends about 2.4 times that.
    pub fn start_video_from(user: &str, video: &str, source: &str, video_bps: u32) -> Baresip {
        Baresip::start_with(user, BaresipCodec::Opus, Some((video, source, video_bps)))
    }

    fn start_with(user: &str, codec: BaresipCodec, video: Option<(&str, &str, u32)>) -> Baresip {
        let dir = temp_dir(&format!("baresip-{user}"));
        let sip_port = free_port();
        let ctrl_port = free_port();
        let rtp_base = 40000 + (sip_port % 200) * 100;
        let (source, rate, channels, codecs) = match codec {
            BaresipCodec::Opus => ("ausine,440".to_string(), 48000, 2, "opus/48000/2"),
            BaresipCodec::Pcmu => {
                let wav = dir.join("tone8k.wav");
                write_tone_wav(&wav, 8000, 60);
                (format!("aufile,{}", wav.display()), 8000, 1, "pcmu")
            }
        };
        // Opus at 32 kbit/s, as ours sends it (baresip's default is about 100).
        let config = format!(
            "poll_method epoll\n\
             sip_listen 127.0.0.1:{sip_port}\n\
             net_interface 127.0.0.1\n\
             rtp_ports {rtp_base}-{}\n\
             call_max_calls 4\n\
             audio_player aubridge,nil\n\
             audio_source {source}\n\
             audio_alert aubridge,nil\n\
             ausrc_srate {rate}\n\
             auplay_srate {rate}\n\
             ausrc_channels {channels}\n\
             auplay_channels {channels}\n\
             rtcp_mux no\n\
             jitter_buffer_delay 5-10\n\
             rtp_stats yes\n\
             module_path /usr/lib/baresip/modules\n\
             opus_bitrate 32000\n\
             module opus.so\n\
             module g711.so\n\
             module ausine.so\n\
             module aufile.so\n\
             module aubridge.so\n\
             module srtp.so\n\
             module_tmp account.so\n\
             module_app menu.so\n\
             module_app ctrl_tcp.so\n\
             ctrl_tcp_listen 127.0.0.1:{ctrl_port}\n",
            rtp_base + 99
        );
        let config = match video {
            None => config,
            Some((_, source, bps)) => format!(
                "{config}video_source {source}\n\
                 video_display fakevideo,nil\n\
                 video_size 640x480\n\
                 video_bitrate {bps}\n\
                 video_fps 30.00\n\
                 module vp8.so\n\
                 module vp9.so\n\
                 module avcodec.so\n\
                 module avformat.so\n\
                 module fakevideo.so\n"
            ),
        };
        let video_param = video.map_or(String::new(), |(v, _, _)| {
            let name = match v {
                "h264" => "H264",
                "vp9" => "VP9",
                _ => "VP8",
            };
            format!(";video_codecs={name}")
        });
        std::fs::write(dir.join("config"), config).unwrap();
        std::fs::write(
            dir.join("accounts"),
            format!(
                "<sip:{user}@127.0.0.1:{sip_port}>;regint=0;answermode=auto;mediaenc=srtp-mand;audio_codecs={codecs}{video_param}\n"
            ),
        )
        .unwrap();
        let mut cmd = Command::new("baresip");
        cmd.arg("-f").arg(&dir);
        let mut proc = Proc::spawn("baresip", cmd);
        assert!(
            proc.wait_for("baresip is ready", Duration::from_secs(10))
                .is_some(),
            "baresip did not start: {}",
            proc.seen.join("\n")
        );
        Baresip {
            proc,
            sip_port,
            ctrl_port,
            dir,
            user: user.to_string(),
        }
    }

    /// The URI that reaches this baresip.
    pub fn uri(&self) -> String {
        format!("sip:{}@127.0.0.1:{}", self.user, self.sip_port)
    }

    /// Sends a ctrl_tcp command (netstring-framed JSON) and returns the `data` of its
    /// response (events that arrive first are skipped).
    pub fn command(&self, command: &str, params: &str) -> String {
        let mut s = TcpStream::connect(("127.0.0.1", self.ctrl_port)).expect("ctrl_tcp connect");
        let msg =
            serde_json::json!({"command": command, "params": params, "token": "t"}).to_string();
        s.write_all(format!("{}:{},", msg.len(), msg).as_bytes())
            .expect("ctrl_tcp write");
        s.set_read_timeout(Some(Duration::from_millis(300))).ok();
        let deadline = Instant::now() + Duration::from_secs(3);
        let mut buf = Vec::new();
        let mut chunk = [0u8; 4096];
        while Instant::now() < deadline {
            if let Ok(n) = s.read(&mut chunk) {
                if n == 0 {
                    break;
                }
                buf.extend_from_slice(&chunk[..n]);
            }
            // Netstrings: LEN:JSON,
            let text = String::from_utf8_lossy(&buf).into_owned();
            let mut rest = text.as_str();
            while let Some((len, after)) = rest.split_once(':') {
                let Ok(len) = len.trim().parse::<usize>() else {
                    break;
                };
                if after.len() <= len {
                    break;
                }
                let json = &after[..len];
                rest = &after[len + 1..];
                if let Ok(v) = serde_json::from_str::<serde_json::Value>(json) {
                    if v["response"].as_bool() == Some(true) {
                        return v["data"].as_str().unwrap_or_default().to_string();
                    }
                }
            }
        }
        String::new()
    }

    /// Video frames baresip took from its source and fully decoded in the current call
    /// (its `video_debug` command), if it has a video stream.
    pub fn video_frames(&self) -> Option<(u64, u64)> {
        let text = self.command("video_debug", "");
        let frames_after = |needle: &str| -> Option<u64> {
            let line = text.lines().find(|l| l.contains(needle))?;
            let v = line.split("frames=").nth(1)?;
            v.split_whitespace().next()?.parse().ok()
        };
        Some((frames_after("source:")?, frames_after("vidisp:")?))
    }

    /// Waits until baresip prints its end-of-call RTP statistics and returns them.
    pub fn wait_call_end(&mut self, timeout: Duration) -> Option<BaresipCall> {
        self.proc.wait_for("terminated (duration", timeout)?;
        // Tables follow: "audio  Transmit: Receive:" then "packets:  252  250", and the
        // same for video when the call had video.
        let mut call = BaresipCall::default();
        let mut current = "";
        let deadline = Instant::now() + Duration::from_secs(3);
        while Instant::now() < deadline {
            let Some(line) = self.proc.wait_for("", Duration::from_millis(300)) else {
                break;
            };
            let t = line.trim_start();
            if t.starts_with("audio") && t.contains("Transmit") {
                current = "audio";
            } else if t.starts_with("video") && t.contains("Transmit") {
                current = "video";
            } else if let Some(rest) = t.strip_prefix("packets:") {
                let nums: Vec<u64> = rest
                    .split_whitespace()
                    .filter_map(|w| w.parse().ok())
                    .collect();
                if let [tx, rx, ..] = nums[..] {
                    match current {
                        "audio" => (call.tx_packets, call.rx_packets) = (tx, rx),
                        "video" => (call.video_tx_packets, call.video_rx_packets) = (tx, rx),
                        _ => {}
                    }
                }
            }
        }
        (call.tx_packets + call.rx_packets > 0).then_some(call)
    }
}

/// Sends one SIP message over UDP from a fresh socket and returns the first final response's
/// status line, if one arrives within `wait`.
pub fn udp_request(target: u16, bytes: &[u8], wait: Duration) -> Option<String> {
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.send_to(bytes, ("127.0.0.1", target)).ok()?;
    final_status(
        |buf| {
            sock.set_read_timeout(Some(Duration::from_millis(100))).ok();
            sock.recv(buf).ok()
        },
        wait,
    )
}

/// Sends one SIP message over a fresh TCP connection; same as [`udp_request`].
pub fn tcp_request(target: u16, bytes: &[u8], wait: Duration) -> Option<String> {
    let mut s = TcpStream::connect(("127.0.0.1", target)).ok()?;
    s.write_all(bytes).ok()?;
    final_status(
        |buf| {
            s.set_read_timeout(Some(Duration::from_millis(100))).ok();
            match s.read(buf) {
                Ok(0) => None,
                Ok(n) => Some(n),
                Err(_) => None,
            }
        },
        wait,
    )
}

fn final_status(
    mut recv: impl FnMut(&mut [u8]) -> Option<usize>,
    wait: Duration,
) -> Option<String> {
    let deadline = Instant::now() + wait;
    let mut buf = vec![0u8; 65536];
    let mut acc = String::new();
    while Instant::now() < deadline {
        if let Some(n) = recv(&mut buf) {
            acc.push_str(&String::from_utf8_lossy(&buf[..n]));
            for line in acc.lines() {
                if let Some(rest) = line.strip_prefix("SIP/2.0 ") {
                    if !rest.starts_with('1') {
                        return Some(rest.to_string());
                    }
                }
            }
        }
    }
    None
}

/// A well-formed OPTIONS to 127.0.0.1:port.
pub fn options_request(port: u16, tag: &str) -> Vec<u8> {
    format!(
        "OPTIONS sip:ewindow@127.0.0.1:{port} SIP/2.0\r\n\
         Via: SIP/2.0/UDP 127.0.0.1:9;branch=z9hG4bK-{tag};rport\r\n\
         Max-Forwards: 70\r\n\
         From: <sip:probe@127.0.0.1>;tag={tag}\r\n\
         To: <sip:ewindow@127.0.0.1:{port}>\r\n\
         Call-ID: options-{tag}@test\r\n\
         CSeq: 1 OPTIONS\r\n\
         Accept: application/sdp\r\n\
         Content-Length: 0\r\n\r\n"
    )
    .into_bytes()
}

/// CPU seconds (user + system) and peak RSS in KiB (`VmHWM`) of a live process.
pub fn proc_usage(pid: u32) -> Option<(f64, u64)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The fields after the command name, which is in parentheses and may hold spaces.
    let rest = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // `rest` starts at field 3 (state); utime and stime are fields 14 and 15.
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let hwm = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())?;
    // USER_HZ is 100 on Linux.
    Some(((utime + stime) / 100.0, hwm))
}

/// CPU % and peak RSS (MiB) of processes over a window of a running call: waits until
/// `warmup` after `from` (start-up is not what we measure), then samples for `window`.
/// A process that is gone reads as zeros.
pub fn cpu_and_rss(
    pids: &[u32],
    from: Instant,
    warmup: Duration,
    window: Duration,
) -> Vec<(f64, f64)> {
    std::thread::sleep(warmup.saturating_sub(from.elapsed()));
    let t0 = Instant::now();
    let start: Vec<_> = pids.iter().map(|p| proc_usage(*p)).collect();
    std::thread::sleep(window);
    let wall = t0.elapsed().as_secs_f64();
    pids.iter()
        .zip(start)
        .map(|(pid, s0)| match (s0, proc_usage(*pid)) {
            (Some((c0, _)), Some((c1, hwm))) => ((c1 - c0) / wall * 100.0, hwm as f64 / 1024.0),
            _ => (0.0, 0.0),
        })
        .collect()
}
