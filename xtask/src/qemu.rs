//! `cargo xtask qemu`: boots a built image under TCG, and the image's boot test (`--test`)
//! and boot-time benchmark (`cargo xtask bench boot`) on top of it.
//!
//! The PC (`qemu-x86_64`): OVMF, 1 GiB, the disk as virtio, an i6300esb watchdog (so
//! ewindow-init's watchdog duty runs against a real device driver), virtio networking.
//! The Raspberry Pi (`rpi-arm64`): QEMU's `raspi3b` (4 Cortex-A53, 1 GiB, the SoC's own
//! watchdog), the image as its SD card, a USB keyboard (Ctrl-Alt-Del) and QEMU's USB
//! network adapter; QEMU does not run the Pi's GPU firmware, so the kernel, its device tree,
//! the initramfs and the command line are taken from the image's boot partition, where the
//! firmware would find them. Both: user networking with SSH forwarded from 127.0.0.1, the
//! serial console on the terminal (or a pipe the test reads), the monitor on a Unix socket
//! (the test's Ctrl-Alt-Del).

use std::fs;
use std::io::Write;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use crate::image::{copy_range, tool, Boot as BootKind, Target};
use crate::proc::{self, Running};
use ewindow_protocol::programs::MULTICALL;

const OVMF_CODE: &str = "/usr/share/OVMF/OVMF_CODE.fd";
const OVMF_VARS: &str = "/usr/share/OVMF/OVMF_VARS.fd";

/// What the Pi's command line gets under QEMU only: raspi3b's watchdog resets at once.
pub const RASPI_QEMU_CMDLINE: &str = "module_blacklist=bcm2835_wdt";

/// The machine QEMU emulates for a target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Machine {
    /// A UEFI PC.
    Pc,
    /// A Raspberry Pi 3 B; the device tree QEMU hands the kernel.
    Raspi3b {
        /// The `.dtb` on the boot partition.
        dtb: String,
    },
}

impl Machine {
    /// The machine of a target.
    pub fn of(target: &Target) -> Result<Machine> {
        Ok(match &target.boot {
            BootKind::Uefi { .. } => Machine::Pc,
            BootKind::Raspi { .. } => Machine::Raspi3b {
                dtb: target
                    .dtbs()
                    .iter()
                    .find(|d| d.ends_with("bcm2837-rpi-3-b.dtb"))
                    .and_then(|d| d.rsplit('/').next())
                    .context("the target has no Raspberry Pi 3 B device tree for QEMU's raspi3b")?
                    .to_string(),
            },
        })
    }

    /// The boot test's line of the watchdog duty: the PC's i6300esb is armed; raspi3b's is
    /// kept out ([`RASPI_QEMU_CMDLINE`]), so init finds none.
    fn watchdog_line(&self) -> &'static str {
        match self {
            Machine::Pc => "watchdog armed device=/dev/watchdog",
            Machine::Raspi3b { .. } => "no hardware watchdog device=/dev/watchdog",
        }
    }

    /// The kernel's last line after `ewindowctl poweroff`: the PC powers down (ACPI); under
    /// QEMU the Pi's power-off handler is the watchdog driver's, kept out, so the kernel halts
    /// (a real Pi powers down through it).
    fn power_off_line(&self) -> &'static str {
        match self {
            Machine::Pc => "reboot: Power down",
            Machine::Raspi3b { .. } => "reboot: System halted",
        }
    }

    /// The modules the QEMU command line refuses (init reports them failed).
    fn blacklisted_modules(&self) -> &'static [&'static str] {
        match self {
            Machine::Pc => &[],
            Machine::Raspi3b { .. } => &["bcm2835_wdt"],
        }
    }

    /// The serial line the console and ewindow-init's log are on.
    fn serial_tty(&self) -> &'static str {
        match self {
            Machine::Pc => "ttyS0",
            Machine::Raspi3b { .. } => "ttyS1",
        }
    }
}

/// The Pi's boot files for QEMU, copied out of the disk's boot partition (at 1 MiB) into
/// `dir`: the kernel, the device tree, the initramfs, and the command line.
fn raspi_boot_files(
    disk: &Path,
    dtb: &str,
    dir: &Path,
) -> Result<(PathBuf, PathBuf, PathBuf, String)> {
    let get = |name: &str| -> Result<PathBuf> {
        let out = dir.join(name);
        boot_partition_file(disk, name, &out)?;
        Ok(out)
    };
    let cmdline = fs::read_to_string(get("cmdline.txt")?)?.trim().to_string();
    Ok((get("vmlinuz")?, get(dtb)?, get("initrd.img")?, cmdline))
}

/// Copies `name` out of the boot partition (at 1 MiB) of the disk image `disk` into `out`.
pub fn boot_partition_file(disk: &Path, name: &str, out: &Path) -> Result<()> {
    let _ = fs::remove_file(out);
    tool(
        Command::new("mcopy")
            .env("MTOOLS_SKIP_CHECK", "1")
            .arg("-n")
            .arg("-i")
            .arg(format!("{}@@1M", disk.display()))
            .arg(format!("::{name}"))
            .arg(out),
    )
    .with_context(|| format!("{name} from the boot partition of {}", disk.display()))
}

/// An SD card's size must be a power of two for QEMU: grows the (sparse) copy `disk`.
fn pad_to_power_of_two(disk: &Path) -> Result<()> {
    let f = fs::File::options().write(true).open(disk)?;
    let len = f.metadata()?.len();
    let want = len.next_power_of_two();
    if want != len {
        f.set_len(want)?;
    }
    Ok(())
}

/// The image `cargo xtask image` writes for `target`.
pub fn image_path(target: &str) -> PathBuf {
    crate::root()
        .join("target/image")
        .join(target)
        .join(format!("ewindow-{target}.img"))
}

/// The network a machine is on.
pub enum Net {
    /// QEMU's user networking (a router with DHCP at 10.0.2.2), the guest's SSH forwarded
    /// from this loopback port.
    User { ssh_port: u16 },
    /// A tap device that exists already (the pair's LAN, in its network namespace), with
    /// this MAC address.
    Tap { ifname: String, mac: String },
}

/// The QEMU command for `disk` (a copy: the Pi's is padded, its boot files copied out beside
/// it; the PC's UEFI variables are kept beside it). The serial console on QEMU's stdio, or
/// with `serial` on that Unix socket (QEMU waits for the connection before it starts).
pub fn command(
    machine: &Machine,
    disk: &Path,
    monitor: Option<&Path>,
    headless: bool,
    net: &Net,
    serial: Option<&Path>,
) -> Result<Command> {
    let dir = disk.parent().context("disk path")?;
    let (net, mac) = match net {
        Net::User { ssh_port } => (
            format!("user,id=n0,hostfwd=tcp:127.0.0.1:{ssh_port}-:22"),
            None,
        ),
        Net::Tap { ifname, mac } => (
            format!("tap,id=n0,ifname={ifname},script=no,downscript=no"),
            Some(mac.as_str()),
        ),
    };
    let mut c = match machine {
        Machine::Pc => {
            let vars = dir.join("vars.fd");
            if !vars.exists() {
                fs::copy(OVMF_VARS, &vars)
                    .with_context(|| format!("copying {OVMF_VARS} (apt-get install ovmf)"))?;
            }
            let mut c = Command::new("qemu-system-x86_64");
            c.args(["-accel", "tcg", "-m", "1024", "-smp", "2", "-no-reboot"])
                .args([
                    "-drive",
                    &format!("if=pflash,format=raw,readonly=on,file={OVMF_CODE}"),
                ])
                .arg("-drive")
                .arg(format!("if=pflash,format=raw,file={}", vars.display()))
                .arg("-drive")
                .arg(format!("file={},if=virtio,format=raw", disk.display()))
                .args(["-device", "i6300esb"])
                .arg("-netdev")
                .arg(&net)
                .arg("-device")
                .arg(match mac {
                    Some(m) => format!("virtio-net-pci,netdev=n0,mac={m}"),
                    None => "virtio-net-pci,netdev=n0".into(),
                });
            c
        }
        Machine::Raspi3b { dtb } => {
            pad_to_power_of_two(disk)?;
            let (kernel, dtb, initrd, cmdline) = raspi_boot_files(disk, dtb, dir)?;
            // QEMU resets the machine the moment the SoC's watchdog is started (it does not
            // count down), so the watchdog driver stays out under QEMU, and only there
            let cmdline = format!("{cmdline} {RASPI_QEMU_CMDLINE}");
            let mut c = Command::new("qemu-system-aarch64");
            // raspi3b has exactly 1 GiB and 4 cores; one TCG thread boots them faster on
            // a 2-core build machine than one thread per core
            c.args(["-M", "raspi3b", "-accel", "tcg,thread=single", "-no-reboot"])
                .arg("-kernel")
                .arg(&kernel)
                .arg("-dtb")
                .arg(&dtb)
                .arg("-initrd")
                .arg(&initrd)
                .arg("-append")
                .arg(&cmdline)
                .arg("-drive")
                .arg(format!("if=sd,format=raw,file={}", disk.display()))
                .args(["-device", "usb-kbd"])
                .arg("-netdev")
                .arg(&net)
                // a Raspberry Pi Foundation MAC (not locally administered): the kernel names
                // the adapter eth0, as the Pi's own Ethernet
                .args(["-device", "usb-net,netdev=n0,mac=b8:27:eb:77:69:6e"])
                // the first serial port is the PL011 (Bluetooth on a Pi), the second the
                // mini-UART: the console
                .args(["-serial", "null"]);
            c
        }
    };
    if let Some(m) = monitor {
        c.arg("-monitor")
            .arg(format!("unix:{},server,nowait", m.display()));
    }
    if let Some(sock) = serial {
        c.arg("-chardev")
            .arg(format!(
                "socket,id=serial0,path={},server=on,wait=on",
                sock.display()
            ))
            .args(["-serial", "chardev:serial0"]);
        if headless {
            c.args(["-display", "none"]);
        }
        if monitor.is_none() {
            c.args(["-monitor", "none"]);
        }
    } else if headless {
        c.args(["-display", "none", "-serial", "stdio"]);
        if monitor.is_none() {
            c.args(["-monitor", "none"]);
        }
    } else {
        c.args(["-serial", "mon:stdio"]);
    }
    Ok(c)
}

/// The QEMU program of a machine, for error messages.
fn program(machine: &Machine) -> &'static str {
    match machine {
        Machine::Pc => "qemu-system-x86_64 (apt-get install qemu-system-x86 ovmf)",
        Machine::Raspi3b { .. } => "qemu-system-aarch64 (apt-get install qemu-system-arm)",
    }
}

/// `cargo xtask qemu`: boots the image interactively (serial on this terminal; the screen in
/// a window when there is a display). Ctrl-A X quits QEMU.
pub fn interactive(target: &str, image: Option<PathBuf>, headless: bool) -> Result<()> {
    let machine = Machine::of(&Target::load(&crate::root(), target)?)?;
    let img = image.unwrap_or_else(|| image_path(target));
    if !img.exists() {
        bail!(
            "{} does not exist: cargo xtask image --target {target}",
            img.display()
        );
    }
    let display =
        std::env::var_os("DISPLAY").is_some() || std::env::var_os("WAYLAND_DISPLAY").is_some();
    // Debian ships QEMU's windows apart, in qemu-system-gui
    let gui =
        Path::new("/usr/lib/x86_64-linux-gnu/qemu/ui-gtk.so").exists() && machine == Machine::Pc;
    if display && !headless && !gui && machine == Machine::Pc {
        eprintln!(
            "xtask: no window for the screen: apt-get install qemu-system-gui (serial only now)"
        );
    }
    let headless = headless || !display || !gui;
    // Never the built image itself: a boot writes /data (the identity key among it), and the
    // built image is what gets flashed onto every window. A copy in target/image/qemu-run/
    // keeps its /data from one run to the next until the image is rebuilt.
    let run = crate::root().join("target/image/qemu-run").join(target);
    fs::create_dir_all(&run)?;
    let disk = run.join("disk.img");
    let stale = match (fs::metadata(&disk), fs::metadata(&img)) {
        (Ok(d), Ok(i)) => d.modified()? < i.modified()?,
        _ => true,
    };
    if stale {
        sparse_copy(&img, &disk)?;
        let _ = fs::remove_file(run.join("vars.fd"));
        eprintln!(
            "xtask: a fresh copy of {} (blank /data: a first boot)",
            img.display()
        );
    }
    let mut c = command(
        &machine,
        &disk,
        None,
        false,
        &Net::User { ssh_port: 2222 },
        None,
    )?;
    if headless {
        c.args(["-display", "none"]);
    }
    eprintln!(
        "xtask: booting {} (TCG: about half a minute to the console on {}; Ctrl-A X quits, Ctrl-A C the monitor; ssh -p 2222 root@127.0.0.1)",
        disk.display(),
        machine.serial_tty()
    );
    let st = c
        .status()
        .with_context(|| format!("running {}", program(&machine)))?;
    if !st.success() {
        bail!("qemu exited with {st}");
    }
    Ok(())
}

/// One headless boot whose serial lines the caller reads.
pub struct Boot {
    run: Running,
    machine: Machine,
    monitor: PathBuf,
    /// The host's loopback port forwarded to the guest's port 22.
    pub ssh_port: u16,
    started: Instant,
    /// Every serial line so far, with seconds since QEMU started.
    pub log: Vec<(f64, String)>,
}

impl Boot {
    /// Starts QEMU on `disk`, echoing the serial lines with their time when `echo`.
    pub fn start(machine: &Machine, disk: &Path, echo: bool) -> Result<Boot> {
        let dir = disk.parent().context("disk path")?;
        let monitor = dir.join("monitor.sock");
        let _ = fs::remove_file(&monitor);
        let _ = fs::remove_file(dir.join("vars.fd"));
        // a free loopback port for the guest's SSH
        let ssh_port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let c = command(
            machine,
            disk,
            Some(&monitor),
            true,
            &Net::User { ssh_port },
            None,
        )?;
        let run = proc::spawn("qemu", c, echo)?;
        Ok(Boot {
            run,
            machine: machine.clone(),
            monitor,
            ssh_port,
            started: Instant::now(),
            log: Vec::new(),
        })
    }

    /// Seconds since QEMU started.
    pub fn elapsed(&self) -> f64 {
        self.started.elapsed().as_secs_f64()
    }

    /// The next serial line within `timeout`, recorded in the log with its time.
    fn read_line(&mut self, timeout: Duration) -> Result<(f64, String)> {
        let line = self.run.next_line(timeout)?;
        let t = self.elapsed();
        self.log.push((t, line.clone()));
        Ok((t, line))
    }

    /// Waits for a serial line containing `needle`; returns it with its time.
    pub fn wait_for(&mut self, needle: &str, timeout: Duration) -> Result<(f64, String)> {
        self.wait_for_any(&[needle], timeout)
    }

    /// Waits for a serial line containing one of `needles`; returns it with its time.
    pub fn wait_for_any(&mut self, needles: &[&str], timeout: Duration) -> Result<(f64, String)> {
        let hit = |l: &str| needles.iter().any(|n| l.contains(n));
        if let Some(found) = self.log.iter().find(|(_, l)| hit(l)) {
            return Ok(found.clone());
        }
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let Ok((t, line)) = self.read_line(left) else {
                bail!(
                    "no serial line with {needles:?} within {timeout:?}; the last lines:\n{}",
                    self.tail(15)
                );
            };
            if hit(&line) {
                return Ok((t, line));
            }
        }
    }

    /// Reads serial lines for `d`.
    pub fn collect(&mut self, d: Duration) {
        let until = Instant::now() + d;
        while let Some(left) = until.checked_duration_since(Instant::now()) {
            if self.read_line(left).is_err() {
                break;
            }
        }
    }

    /// The last `n` serial lines.
    pub fn tail(&self, n: usize) -> String {
        let k = self.log.len().saturating_sub(n);
        self.log[k..]
            .iter()
            .map(|(t, l)| format!("  [{t:7.2}] {l}"))
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// Sends Ctrl-Alt-Del (ewindow-init: an orderly shutdown, then reboot(2), which
    /// `-no-reboot` makes QEMU's exit) and waits for QEMU to end.
    pub fn ctrl_alt_del(&mut self, timeout: Duration) -> Result<()> {
        self.sendkey("ctrl-alt-delete", None)?;
        self.wait_exit(timeout)
    }

    /// Presses `key` (QEMU's names: `spc`, `ret`, `ctrl-alt-delete`) on the guest's keyboard
    /// through the monitor, held `hold_ms` (QEMU's default: 100 ms); returns once QEMU took
    /// the command (the release comes `hold_ms` later).
    pub fn sendkey(&mut self, key: &str, hold_ms: Option<u32>) -> Result<()> {
        sendkey(&self.monitor, key, hold_ms)
    }

    /// Waits for QEMU to exit by itself (the guest powered off or rebooted), reading the
    /// serial lines meanwhile; kills it after `timeout`.
    pub fn wait_exit(&mut self, timeout: Duration) -> Result<()> {
        let deadline = Instant::now() + timeout;
        let mut halted: Option<Instant> = None;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            // QEMU's raspi3b has no power switch: the kernel's last line is the verdict
            if self.machine != Machine::Pc
                && halted.is_none()
                && self.log.iter().any(|(_, l)| {
                    [
                        "reboot: Power down",
                        "reboot: Restarting system",
                        "reboot: System halted",
                    ]
                    .iter()
                    .any(|n| l.contains(n))
                })
            {
                halted = Some(Instant::now());
            }
            if halted.is_some_and(|t| t.elapsed() > Duration::from_secs(10)) {
                let _ = self.run.child.kill();
                let _ = self.run.child.wait();
                return Ok(());
            }
            if left.is_zero() {
                let _ = self.run.child.kill();
                bail!(
                    "QEMU still running {timeout:?} after the shutdown request; last lines:\n{}",
                    self.tail(15)
                );
            }
            if self
                .read_line(left.min(Duration::from_millis(200)))
                .is_err()
            {
                if let Some(st) = self.run.child.try_wait()? {
                    if !st.success() {
                        bail!("QEMU exited with {st}");
                    }
                    // the lines still in the pipe
                    while self.read_line(Duration::from_millis(100)).is_ok() {}
                    return Ok(());
                }
            }
        }
    }
}

/// `sendkey KEY [HOLD_MS]` on the QEMU monitor at `monitor` (see [`Boot::sendkey`]).
pub fn sendkey(monitor: &Path, key: &str, hold_ms: Option<u32>) -> Result<()> {
    let line = match hold_ms {
        Some(ms) => format!("sendkey {key} {ms}"),
        None => format!("sendkey {key}"),
    };
    monitor_command(monitor, &line)
}

/// One command on QEMU's human monitor: after its prompt, and until the next one (a
/// connection closed at once may lose the command unread).
pub fn monitor_command(monitor: &Path, command: &str) -> Result<()> {
    let mut m = UnixStream::connect(monitor).context("QEMU's monitor socket")?;
    m.set_read_timeout(Some(Duration::from_secs(10)))?;
    let prompt = |m: &mut UnixStream| -> Result<()> {
        let mut seen = Vec::new();
        let mut buf = [0u8; 512];
        while !seen.ends_with(b"(qemu) ") {
            let n = std::io::Read::read(m, &mut buf).context("QEMU's monitor")?;
            if n == 0 {
                bail!("QEMU's monitor closed");
            }
            seen.extend_from_slice(&buf[..n]);
        }
        Ok(())
    };
    prompt(&mut m)?;
    m.write_all(format!("{command}\n").as_bytes())?;
    prompt(&mut m)
}

impl Drop for Boot {
    fn drop(&mut self) {
        let _ = self.run.child.kill();
        let _ = self.run.child.wait();
    }
}

/// The data partition of a disk image: (offset, length) in bytes, from its partition table
/// (sfdisk -J): GPT's `ewindow-data`, or MBR's Linux partition.
pub fn data_partition(disk: &Path) -> Result<(u64, u64)> {
    let out = Command::new("sfdisk")
        .arg("-J")
        .arg(disk)
        .output()
        .context("running sfdisk -J")?;
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).context("sfdisk -J output")?;
    let parts = v["partitiontable"]["partitions"]
        .as_array()
        .context("no partitions")?;
    let p = parts
        .iter()
        .find(|p| p["name"] == "ewindow-data" || p["type"] == "83")
        .context("no partition named ewindow-data, nor an MBR Linux partition")?;
    let start = p["start"].as_u64().context("start")?;
    let size = p["size"].as_u64().context("size")?;
    Ok((start * 512, size * 512))
}

/// Copies the data partition out of `disk` into a new file `out`.
pub fn extract_data(disk: &Path, out: &Path) -> Result<()> {
    let (off, len) = data_partition(disk)?;
    let _ = fs::remove_file(out);
    copy_range(disk, off, len, out, 0, true)
}

/// Writes `part` back as the data partition of `disk` (every block: a block debugfs freed
/// must not keep the old bytes).
pub fn put_data(disk: &Path, part: &Path) -> Result<()> {
    let (off, _) = data_partition(disk)?;
    copy_range(part, 0, u64::MAX, disk, off, false)
}

/// `cp --sparse=always`.
pub fn sparse_copy(from: &Path, to: &Path) -> Result<()> {
    tool(Command::new("cp").arg("--sparse=always").arg(from).arg(to))
}

/// `e2fsck -fn` of a partition image: Ok when clean.
pub fn fsck_clean(part: &Path) -> Result<String> {
    let out = Command::new("e2fsck")
        .arg("-fn")
        .arg(part)
        .output()
        .context("running e2fsck")?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    if !out.status.success() {
        bail!("e2fsck -fn exited with {}:\n{text}", out.status);
    }
    Ok(text)
}

/// Runs one debugfs request on a partition image (`-w` to write).
pub fn debugfs(part: &Path, write: bool, request: &str) -> Result<String> {
    let mut c = Command::new("debugfs");
    if write {
        c.arg("-w");
    }
    let out = c
        .arg("-R")
        .arg(request)
        .arg(part)
        .output()
        .context("running debugfs")?;
    Ok(format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    ))
}

/// A copy of the built image for a test, in `dir` (sparse).
pub fn fresh_copy(target: &str, dir: &Path) -> Result<PathBuf> {
    let img = image_path(target);
    if !img.exists() {
        bail!(
            "{} does not exist: cargo xtask image --target {target}",
            img.display()
        );
    }
    let _ = fs::remove_dir_all(dir);
    fs::create_dir_all(dir)?;
    let disk = dir.join("disk.img");
    sparse_copy(&img, &disk)?;
    Ok(disk)
}

/// What the boot test measured.
#[derive(Debug, Clone, Copy)]
pub struct BootFigures {
    /// Provisioned boot: QEMU start → "all services up" on the serial line, seconds.
    pub up_wall_s: f64,
    /// The kernel's uptime in that line.
    pub up_uptime_s: f64,
    /// Provisioned boot: QEMU start → ewindow-init's first line.
    pub init_wall_s: f64,
    /// First boot: QEMU start → the set-up wizard on the serial console.
    pub wizard_wall_s: f64,
}

/// The `uptime_s=` of a serial line: ewindow-init's "all services up", the floor's `/init`.
pub fn uptime_s(line: &str) -> Option<f64> {
    let at = line.rfind("uptime_s=")? + "uptime_s=".len();
    line[at..]
        .trim_start_matches('"')
        .split(|c: char| !(c.is_ascii_digit() || c == '.'))
        .next()?
        .parse()
        .ok()
}

/// `cargo xtask qemu --test`: the image's boot test. Two boots of a copy of the built image:
///
/// 1. first boot, blank data partition: ewindow-init makes its filesystem and mounts it, the
///    overlay makes the identity key, the console shows the set-up wizard (on the serial line
///    too), the services that need no provisioning run; Ctrl-Alt-Del → orderly shutdown;
///    the data partition is fsck-clean and holds the key (0600) and the saved clock.
/// 2. provisioned (a window.toml naming this window's key and a peer's, and an
///    authorized_keys, written into the data partition): every service up — the LAN by DHCP,
///    the overlay on the kernel's WireGuard, the phone in window mode, the watchdog armed;
///    `ewindowctl status` over SSH with the member's key (a stranger's key refused); then
///    `ewindowctl poweroff` over SSH; fsck-clean again.
pub fn boot_test(target: &str, echo: bool) -> Result<BootFigures> {
    let machine = Machine::of(&Target::load(&crate::root(), target)?)?;
    let dir = crate::root().join("target/image/boot-test").join(target);
    let disk = fresh_copy(target, &dir)?;
    let part = dir.join("data.img");
    // an emulated Pi 3 (four cores on one host thread) is slower than the PC
    let limit = Duration::from_secs(match machine {
        Machine::Pc => 300,
        Machine::Raspi3b { .. } => 600,
    });

    eprintln!("boot test 1/2 ({target}): first boot (blank /data)");
    let mut b = Boot::start(&machine, &disk, echo)?;
    b.wait_for("ewindow-init starting pid1=true", limit)?;
    let (_, mounted) = b.wait_for("data partition mounted", limit)?;
    if !mounted.contains("created=true") {
        bail!("the first boot did not make /data's filesystem: {mounted}");
    }
    let (_, made) = b.wait_for("made this window's identity key", limit)?;
    let key = made
        .split("public_key=")
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .context("no public key in the identity line")?
        .to_string();
    for s in ["overlay", "console", "serial", "sshd"] {
        b.wait_for(&format!("started service={s}"), limit)?;
    }
    // the status console's "not set up yet", or the wizard itself when the identity key was
    // made before the console first drew
    let (t_wizard, _) = b.wait_for_any(&["not set up yet", "Setting up this window"], limit)?;
    b.collect(Duration::from_secs(3));
    if let Some((_, l)) = b.log.iter().find(|(_, l)| l.contains("exited; restarting")) {
        bail!("a service failed in the first boot: {l}\n{}", b.tail(20));
    }
    b.ctrl_alt_del(Duration::from_secs(60))?;
    b.wait_for("shutdown complete: no process left", Duration::from_secs(1))?;
    drop(b);
    extract_data(&disk, &part)?;
    fsck_clean(&part).context("after the first boot")?;
    let st = debugfs(&part, false, "stat /ewindow/identity.key")?;
    if !st.contains("Mode:  0600") && !st.contains("Mode:  00600") {
        bail!("identity.key is not 0600:\n{st}");
    }
    let ls = debugfs(&part, false, "ls -l /ewindow")?;
    if !ls.contains("clock") {
        bail!("no saved clock in /data/ewindow:\n{ls}");
    }
    eprintln!("boot test 1/2: ok (filesystem made, identity {key}, wizard shown, fsck clean)");

    eprintln!("boot test 2/2 ({target}): provisioned");
    // the host's multi-call binary, built with the PC image
    let peer = Command::new(crate::root().join("target/release").join(MULTICALL))
        .args(["ewindow-overlay", "identity", "--identity"])
        .arg(dir.join("peer.key"))
        .output()
        .context("ewindow-overlay identity for the peer")?;
    let peer = String::from_utf8_lossy(&peer.stdout).trim().to_string();
    let toml = format!(
        "[window]\nname = \"qemu\"\n\n[[member]]\nname = \"qemu\"\npublic_key = \"{key}\"\n\n\
         [[member]]\nname = \"peer\"\npublic_key = \"{peer}\"\nendpoints = [\"10.0.2.2:51820\"]\n"
    );
    let local = dir.join("window.toml");
    fs::write(&local, toml)?;
    // a maintainer's SSH key, as the wizard would have written it
    let member = dir.join("member.key");
    let stranger = dir.join("stranger.key");
    let line = ssh_key(&member)?;
    ssh_key(&stranger)?;
    let keys = dir.join("authorized_keys");
    fs::write(&keys, format!("{line}\n"))?;
    fs::set_permissions(&keys, std::os::unix::fs::PermissionsExt::from_mode(0o600))?;
    for (from, to) in [(&local, "window.toml"), (&keys, "authorized_keys")] {
        let out = debugfs(
            &part,
            true,
            &format!("write {} /ewindow/{to}", from.display()),
        )?;
        if !debugfs(&part, false, "ls /ewindow")?.contains(to) {
            bail!("debugfs could not write {to}: {out}");
        }
    }
    put_data(&disk, &part)?;
    let mut b = Boot::start(&machine, &disk, echo)?;
    let (t_init, _) = b.wait_for("ewindow-init starting pid1=true", limit)?;
    let (t_up, line) = b.wait_for("all services up", limit)?;
    let uptime = uptime_s(&line).unwrap_or(f64::NAN);
    // the overlay reported READY on the kernel's WireGuard; the hardware watchdog is armed
    b.wait_for("ready service=overlay", Duration::from_secs(1))?;
    let (_, up) = b.wait_for("overlay up name=qemu", Duration::from_secs(1))?;
    if !up.contains("backend=Kernel") {
        bail!("the overlay is not on the kernel's WireGuard: {up}");
    }
    b.wait_for(machine.watchdog_line(), Duration::from_secs(1))?;
    // the phone serves SIP on its overlay address, and stays up
    b.wait_for("window qemu on sip:qemu@[fd77:696e:646f:", limit)?;
    b.collect(Duration::from_secs(5));
    if let Some((_, l)) = b
        .log
        .iter()
        .find(|(_, l)| l.contains("stopped service=") || l.contains("exited; restarting"))
    {
        bail!(
            "a service stopped in the provisioned boot: {l}\n{}",
            b.tail(20)
        );
    }
    // the LAN by DHCP, then maintenance over SSH with the member's key only
    b.wait_for("udhcpc: eth0 10.0.2.15/24 via 10.0.2.2", limit)?;
    let status = ssh(b.ssh_port, &member, "ewindowctl status --json")
        .context("ewindowctl status over SSH with the authorized key")?;
    let v: serde_json::Value = serde_json::from_str(&status)
        .with_context(|| format!("ewindowctl status --json printed {status}"))?;
    let services = v["services"]
        .as_array()
        .context("no services in the status")?;
    let not_running: Vec<String> = services
        .iter()
        .filter(|s| s["state"] != "running")
        .map(|s| format!("{} {}", s["name"], s["state"]))
        .collect();
    if services.len() != 8 || !not_running.is_empty() {
        bail!(
            "ewindowctl status over SSH: {} services, not running: {not_running:?}",
            services.len()
        );
    }
    let sys = &v["system"];
    let failed: Vec<&serde_json::Value> = sys["modules"]
        .as_array()
        .context("no modules in the status")?
        .iter()
        .filter(|m| m["state"] == "failed")
        .filter(|m| {
            !machine
                .blacklisted_modules()
                .iter()
                .any(|b| m["name"] == *b)
        })
        .collect();
    if !failed.is_empty() || sys["data"]["state"] != "mounted" || sys["watchdog"].is_null() {
        bail!(
            "the boot duties over SSH: modules failed {failed:?}, data {}, watchdog {}",
            sys["data"],
            sys["watchdog"]
        );
    }
    // device drivers load by the devices there: QEMU's VGA, never Intel's GPU
    if let Machine::Pc = machine {
        let state = |name: &str| {
            sys["modules"]
                .as_array()
                .and_then(|a| a.iter().find(|m| m["name"] == name))
                .and_then(|m| m["state"].as_str())
                .unwrap_or("absent")
                .to_string()
        };
        let (bochs, i915) = (state("bochs"), state("i915"));
        if bochs != "loaded" || i915 != "no-device" {
            bail!("device drivers: bochs {bochs} (want loaded), i915 {i915} (want no-device)");
        }
    }
    if ssh(b.ssh_port, &stranger, "true").is_ok() {
        bail!("SSH let in a key that is not in authorized_keys");
    }
    button_closes_the_curtain(&mut b, &machine, &member)?;
    // power off the way a maintainer does: ewindowctl over SSH (the connection ends with
    // the sshd service, so its result is not the verdict: the guest's power-down is)
    let _ = ssh(b.ssh_port, &member, "ewindowctl poweroff");
    b.wait_exit(Duration::from_secs(60))?;
    b.wait_for("shutdown complete: no process left", Duration::from_secs(1))?;
    b.wait_for(machine.power_off_line(), Duration::from_secs(1))?;
    drop(b);
    extract_data(&disk, &part)?;
    fsck_clean(&part).context("after the second boot")?;
    eprintln!(
        "boot test 2/2: ok (all services up at {t_up:.1} s after QEMU started, kernel uptime {uptime:.2} s; fsck clean)"
    );
    let _ = fs::remove_dir_all(&dir);
    Ok(BootFigures {
        up_wall_s: t_up,
        up_uptime_s: uptime,
        init_wall_s: t_init,
        wizard_wall_s: t_wizard,
    })
}

/// The window's button on the image: the phone reads the keyboard QEMU gives the guest (on
/// a Pi also the device tree's GPIO button, `ewindow-button`: QEMU cannot press it, but the
/// kernel must have made it an input device), and a long press of the default key closes
/// the curtain, a second one opens it. On a Pi, rppal's `/dev/gpiomem` is checked absent:
/// Debian's kernel has no such device, which is why the button goes through `gpio-keys`.
fn button_closes_the_curtain(b: &mut Boot, machine: &Machine, member: &Path) -> Result<()> {
    let limit = Duration::from_secs(60);
    let seen = |b: &Boot, needle: &str| b.log.iter().any(|(_, l)| l.contains(needle));
    if !seen(b, "button: reading /dev/input/event") {
        b.wait_for("button: reading /dev/input/event", limit)?;
    }
    if let Machine::Raspi3b { .. } = machine {
        if !seen(b, "(ewindow-button)") {
            b.wait_for("(ewindow-button)", limit)
                .context("the GPIO button of the device tree is no input device")?;
        }
        let gpiomem = ssh(
            b.ssh_port,
            member,
            "ls /dev/gpiomem /dev/gpiochip0 2>&1; true",
        )?;
        if !gpiomem.contains("/dev/gpiomem: No such file") || gpiomem.contains("chip0: No") {
            bail!("expected no /dev/gpiomem and a /dev/gpiochip0 on Debian's kernel: {gpiomem}");
        }
    }
    let curtain = |b: &mut Boot| -> Result<bool> {
        let st = ssh(b.ssh_port, member, "ewindowctl status --json")?;
        let v: serde_json::Value = serde_json::from_str(&st)?;
        v["window"]["curtain"]
            .as_bool()
            .with_context(|| format!("no window.curtain in ewindowctl status --json: {st}"))
    };
    for want in [true, false] {
        b.sendkey("spc", Some(2000))?;
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            std::thread::sleep(Duration::from_millis(500));
            if curtain(b)? == want {
                break;
            }
            if Instant::now() > deadline {
                bail!(
                    "a long press of the button did not {} the curtain\n{}",
                    if want { "close" } else { "open" },
                    b.tail(20)
                );
            }
        }
    }
    eprintln!("boot test: the button (a 2 s press of space) closed and opened the curtain");
    Ok(())
}

/// Makes a maintainer's SSH key at `path` (dropbear's format, for `dbclient -i`); its public
/// line, as a person pastes it into the wizard or `authorized_keys`.
pub fn ssh_key(path: &Path) -> Result<String> {
    let _ = fs::remove_file(path);
    let st = Command::new("dropbearkey")
        .args(["-t", "ed25519", "-f"])
        .arg(path)
        .output()
        .context("dropbearkey (apt-get install dropbear-bin)")?;
    if !st.status.success() {
        bail!("dropbearkey failed");
    }
    let public = Command::new("dropbearkey")
        .arg("-y")
        .arg("-f")
        .arg(path)
        .output()?;
    Ok(String::from_utf8_lossy(&public.stdout)
        .lines()
        .find(|l| l.starts_with("ssh-"))
        .context("no public key from dropbearkey -y")?
        .to_string())
}

/// Runs `command` on the guest over SSH (dropbear's client; the guest's host key is made on
/// the device, so it cannot be known beforehand: not checked); its stdout.
fn ssh(port: u16, key: &Path, command: &str) -> Result<String> {
    ssh_at(None, "127.0.0.1", port, key, command)
}

/// [`ssh`] to `host` (inside the network namespace `netns`, when given).
pub fn ssh_at(
    netns: Option<&str>,
    host: &str,
    port: u16,
    key: &Path,
    command: &str,
) -> Result<String> {
    let mut c = match netns {
        Some(ns) => {
            let mut c = Command::new("ip");
            c.args(["netns", "exec", ns, "timeout"]);
            c
        }
        None => Command::new("timeout"),
    };
    let out = c
        .arg("60")
        .arg("dbclient")
        .args(["-y", "-y", "-i"])
        .arg(key)
        .args(["-p", &port.to_string(), &format!("root@{host}"), command])
        .stdin(std::process::Stdio::null())
        .output()
        .context("running dbclient")?;
    if !out.status.success() {
        bail!(
            "ssh exited with {}: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The floor's boot: QEMU start → the busybox `/init` line, and the uptime it printed.
pub fn boot_floor(machine: &Machine, img: &Path) -> Result<(f64, f64)> {
    let dir = img.parent().context("floor path")?;
    let disk = dir.join("disk.img");
    sparse_copy(img, &disk)?;
    let mut b = Boot::start(machine, &disk, false)?;
    let (t, line) = b.wait_for("FLOOR: busybox /init running", Duration::from_secs(300))?;
    let uptime = uptime_s(&line).unwrap_or(f64::NAN);
    Ok((t, uptime))
}

/// `cargo xtask bench boot`: boot time to "all services up" under TCG next to the floor (the
/// same kernel booting a busybox-only initramfs), in one run.
pub fn bench(target: &str) -> Result<()> {
    let repo = crate::root();
    let t = Target::load(&repo, target)?;
    let machine = Machine::of(&t)?;
    let floor = crate::image::build_floor(&repo, &t)?;
    let mut floors = Vec::new();
    for _ in 0..2 {
        floors.push(boot_floor(&machine, &floor)?);
    }
    let mut ups = Vec::new();
    for _ in 0..2 {
        ups.push(boot_test(target, false)?);
    }
    println!("\n{target} boot under QEMU TCG ({machine:?}), same kernel, same run:");
    println!("| boot | QEMU start → | wall s | kernel uptime s |");
    println!("|---|---|---|---|");
    for (w, u) in &floors {
        println!("| floor: busybox initramfs | /init runs | {w:.1} | {u:.2} |");
    }
    for f in &ups {
        println!(
            "| ewindow (first boot) | the set-up wizard on the serial console | {:.1} | |",
            f.wizard_wall_s
        );
        println!(
            "| ewindow (provisioned) | ewindow-init's first line | {:.1} | |",
            f.init_wall_s
        );
        println!(
            "| ewindow (provisioned) | all services up | {:.1} | {:.2} |",
            f.up_wall_s, f.up_uptime_s
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_all_up_line() {
        let l = "2026-11-22T08:07:01Z  INFO ewindow_init::runtime: all services up services=5 uptime_s=\"21.37\"";
        assert_eq!(uptime_s(l), Some(21.37));
        let l = "INFO ewindow_init::runtime: all services up services=5 uptime_s=9.50";
        assert_eq!(uptime_s(l), Some(9.5));
        assert_eq!(uptime_s("all services up"), None);
    }
}
