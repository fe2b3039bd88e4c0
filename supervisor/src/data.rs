//! The data partition (`[system.data]`): wait for the device, make its filesystem when the
//! partition is blank (first boot), fsck it, mount it at `/data`; at shutdown, unmount it.
//!
//! The only writable, persistent state of a window lives here. If fsck cannot repair it the
//! window keeps running with the partition mounted read-only, and says so in `status`; if it
//! cannot be mounted at all, the window runs without it. Init never stops over its data.
//!
//! These steps run before the first service starts, so the children they wait for (mkfs,
//! fsck) are the only children init has: waiting for them by pid cannot steal a service's
//! exit status from the main loop's `waitpid(-1)`.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use ewindow_protocol::init::DataStatus;
use nix::mount::{mount, umount2, MntFlags, MsFlags};
use tracing::{error, info, warn};

use crate::config::DataDisk;

/// What fsck's exit status means for the mount (fsck(8): 1 = errors corrected, 2 = corrected,
/// reboot advised, 4 = errors left uncorrected, 8 = operational error, …; bits combine).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FsckVerdict {
    /// Clean.
    Clean,
    /// Repaired; mount read-write.
    Repaired,
    /// Errors left, or fsck could not run: mount read-only.
    Broken,
}

/// Reads fsck's exit status.
pub fn fsck_verdict(code: i32) -> FsckVerdict {
    match code {
        0 => FsckVerdict::Clean,
        c if (1..4).contains(&c) => FsckVerdict::Repaired,
        _ => FsckVerdict::Broken,
    }
}

/// A partition is blank when its first bytes are all zero: a fresh image leaves the data
/// partition empty; anything else (another filesystem, garbage) is never formatted.
pub fn is_blank(head: &[u8]) -> bool {
    !head.is_empty() && head.iter().all(|&b| b == 0)
}

const FLAGS: MsFlags = MsFlags::MS_NOSUID
    .union(MsFlags::MS_NODEV)
    .union(MsFlags::MS_NOEXEC)
    .union(MsFlags::MS_NOATIME);

/// Does the whole sequence and reports the outcome.
pub fn bring_up(d: &DataDisk) -> DataStatus {
    let mut st = DataStatus {
        device: d.device.display().to_string(),
        mountpoint: d.mountpoint.display().to_string(),
        state: "unavailable".into(),
        created: false,
        message: None,
    };
    let fail = |mut st: DataStatus, m: String| {
        error!(device = %st.device, "data partition: {m}");
        st.message = Some(m);
        st
    };
    let device = match wait_for(&d.device, d.wait) {
        Ok(dev) => dev,
        Err(m) => return fail(st, m),
    };
    if device != d.device {
        st.device = format!("{} ({})", d.device.display(), device.display());
    }
    let head = match read_head(&device) {
        Ok(h) => h,
        Err(e) => return fail(st, format!("cannot read {}: {e}", device.display())),
    };
    if is_blank(&head) {
        if !d.mkfs_if_blank {
            return fail(
                st,
                "the partition is blank (no filesystem) and mkfs_if_blank is off".into(),
            );
        }
        info!(device = %st.device, "blank data partition: making an {} filesystem", d.fstype);
        match run(
            &format!("mkfs.{}", d.fstype),
            &["-q", "-F", "-L", "ewindow-data"],
            &device,
        ) {
            Ok(0) => st.created = true,
            Ok(c) => return fail(st, format!("mkfs.{} exited with {c}", d.fstype)),
            Err(e) => return fail(st, format!("mkfs.{}: {e}", d.fstype)),
        }
    }
    let mut flags = FLAGS;
    match run("e2fsck", &["-p"], &device) {
        Ok(code) => match fsck_verdict(code) {
            FsckVerdict::Clean => {}
            FsckVerdict::Repaired => {
                warn!(device = %st.device, code, "fsck repaired the data partition");
                st.message = Some(format!("fsck repaired errors (exit {code})"));
            }
            FsckVerdict::Broken => {
                flags |= MsFlags::MS_RDONLY;
                st.message = Some(format!(
                    "fsck exit {code}: errors left uncorrected; mounted read-only"
                ));
            }
        },
        Err(e) => {
            flags |= MsFlags::MS_RDONLY;
            st.message = Some(format!("fsck could not run ({e}); mounted read-only"));
        }
    }
    if let Err(e) = std::fs::create_dir_all(&d.mountpoint) {
        warn!("creating {}: {e}", d.mountpoint.display());
    }
    let fstype = d.fstype.as_str();
    match mount(
        Some(&device),
        &d.mountpoint,
        Some(fstype),
        flags,
        None::<&str>,
    ) {
        Ok(()) => {}
        Err(e) if !flags.contains(MsFlags::MS_RDONLY) => {
            // A read-write mount refused (journal trouble, a write-protected card): try
            // read-only so the window still has its configuration.
            flags |= MsFlags::MS_RDONLY;
            st.message = Some(format!(
                "read-write mount failed ({}); mounted read-only",
                e.desc()
            ));
            if let Err(e2) = mount(
                Some(&device),
                &d.mountpoint,
                Some(fstype),
                flags,
                None::<&str>,
            ) {
                return fail(st, format!("mount: {}", e2.desc()));
            }
        }
        Err(e) => return fail(st, format!("mount: {}", e.desc())),
    }
    st.state = if flags.contains(MsFlags::MS_RDONLY) {
        "read-only"
    } else {
        "mounted"
    }
    .into();
    match &st.message {
        Some(m) if st.state == "read-only" => error!(device = %st.device, "data partition: {m}"),
        _ => {
            info!(device = %st.device, mountpoint = %st.mountpoint, created = st.created, "data partition mounted")
        }
    }
    st
}

/// Unmounts the data partition at shutdown (read-only remount when something holds it).
pub fn take_down(mountpoint: &Path) {
    match umount2(mountpoint, MntFlags::empty()) {
        Ok(()) => info!(mountpoint = %mountpoint.display(), "data partition unmounted"),
        Err(e) => {
            warn!(mountpoint = %mountpoint.display(), "unmount: {}; remounting read-only", e.desc());
            let flags = FLAGS | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY;
            if let Err(e) = mount(None::<&str>, mountpoint, None::<&str>, flags, None::<&str>) {
                error!(mountpoint = %mountpoint.display(), "remount read-only: {}", e.desc());
            }
        }
    }
}

/// Waits (bounded) for a device node that may appear late (USB, SD card readers) and
/// returns its path. `PARTLABEL=NAME` names a GPT partition by its label, `PARTUUID=` an
/// MBR partition by its disk's identifier and its number: there is no udev (so no
/// `/dev/disk/by-*/`), and the kernel's name for the disk differs from one machine to the
/// next (`vda2`, `sda2`, `nvme0n1p2`, `mmcblk0p2`); init finds the partition in
/// `/sys/class/block` and opens its devtmpfs node.
fn wait_for(device: &Path, limit: Duration) -> Result<PathBuf, String> {
    let start = Instant::now();
    let spec = device.to_str().unwrap_or("");
    let sys = Path::new("/sys/class/block");
    loop {
        // Some(kernel name or not found yet) for a spec looked up in sysfs, None for a path
        let name = match (
            spec.strip_prefix("PARTLABEL="),
            spec.strip_prefix("PARTUUID=").and_then(parse_mbr_partuuid),
        ) {
            (Some(label), _) => Some(find_partlabel(sys, label)),
            (None, Some(id)) => Some(find_mbr_partition(sys, Path::new("/dev"), id)),
            (None, None) => None,
        };
        let found = match name {
            Some(name) => name
                .map(|name| Path::new("/dev").join(name))
                .filter(|p| p.exists()),
            None => Some(device.to_path_buf()).filter(|p| p.exists()),
        };
        if let Some(p) = found {
            return Ok(p);
        }
        if start.elapsed() >= limit {
            return Err(format!(
                "{} did not appear within {} s",
                device.display(),
                limit.as_secs_f64()
            ));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The entries of `sys_block` (`/sys/class/block`), sorted (the same disk wins every boot).
fn block_devices(sys_block: &Path) -> Option<Vec<PathBuf>> {
    let mut names: Vec<_> = std::fs::read_dir(sys_block)
        .ok()?
        .flatten()
        .map(|e| e.path())
        .collect();
    names.sort();
    Some(names)
}

/// The kernel name (`vda2`) of the partition labelled `label`, from the `uevent` files of
/// `sys_block` (`/sys/class/block`).
fn find_partlabel(sys_block: &Path, label: &str) -> Option<String> {
    block_devices(sys_block)?.into_iter().find_map(|dir| {
        let uevent = std::fs::read_to_string(dir.join("uevent")).ok()?;
        partlabel_devname(&uevent, label)
    })
}

/// An MBR `PARTUUID` (`0e77696e-02`): the disk identifier and the partition number.
pub fn parse_mbr_partuuid(s: &str) -> Option<(u32, u32)> {
    let (disk, part) = s.split_once('-')?;
    if disk.len() != 8 || part.len() != 2 {
        return None;
    }
    let disk = u32::from_str_radix(disk, 16).ok()?;
    let part = u32::from_str_radix(part, 16).ok()?;
    (part > 0).then_some((disk, part))
}

/// The disk identifier of an MBR (the 4 bytes at 440 of the first sector, little-endian),
/// when the sector is an MBR (`55 aa` at 510) and not GPT's protective one.
pub fn mbr_disk_id(sector: &[u8]) -> Option<u32> {
    if sector.len() < 512 || sector[510..512] != [0x55, 0xaa] {
        return None;
    }
    // a protective MBR (type 0xee) stands for a GPT, whose PARTUUIDs are GUIDs
    if (0..4).any(|k| sector[446 + 16 * k + 4] == 0xee) {
        return None;
    }
    Some(u32::from_le_bytes(sector[440..444].try_into().ok()?))
}

/// The kernel name of partition `id.1` of the MBR disk whose identifier is `id.0`: each
/// partition in `sys_block` names its number (`partition`) and its disk (the directory
/// above it in sysfs), whose first sector is read from `dev` (`/dev`).
fn find_mbr_partition(
    sys_block: &Path,
    dev: &Path,
    (disk_id, number): (u32, u32),
) -> Option<String> {
    block_devices(sys_block)?.into_iter().find_map(|dir| {
        let n: u32 = std::fs::read_to_string(dir.join("partition"))
            .ok()?
            .trim()
            .parse()
            .ok()?;
        if n != number {
            return None;
        }
        let real = std::fs::canonicalize(&dir).ok()?;
        let disk = real.parent()?.file_name()?.to_str()?.to_string();
        let mut sector = [0u8; 512];
        let mut f = std::fs::File::open(dev.join(&disk)).ok()?;
        f.read_exact(&mut sector).ok()?;
        (mbr_disk_id(&sector)? == disk_id)
            .then(|| dir.file_name()?.to_str().map(str::to_string))
            .flatten()
    })
}

/// `DEVNAME` of a block device's `uevent` text when its `PARTNAME` is `label`.
pub fn partlabel_devname(uevent: &str, label: &str) -> Option<String> {
    let field = |key: &str| {
        uevent
            .lines()
            .find_map(|l| l.strip_prefix(key)?.strip_prefix('='))
    };
    (field("PARTNAME")? == label)
        .then(|| field("DEVNAME"))
        .flatten()
        .filter(|n| !n.is_empty() && !n.contains(".."))
        .map(str::to_string)
}

fn read_head(device: &Path) -> std::io::Result<Vec<u8>> {
    let mut f = std::fs::File::open(device)?;
    let mut buf = vec![0u8; 1 << 20];
    let mut n = 0;
    while n < buf.len() {
        match f.read(&mut buf[n..])? {
            0 => break,
            k => n += k,
        }
    }
    buf.truncate(n);
    Ok(buf)
}

/// Runs a tool on the device and returns its exit status (signals count as 8, "operational
/// error"). Found in `PATH`, then in /sbin and /usr/sbin.
fn run(program: &str, args: &[&str], device: &Path) -> std::io::Result<i32> {
    let status = Command::new(program)
        .args(args)
        .arg(device)
        .env(
            "PATH",
            "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        )
        .stdin(std::process::Stdio::null())
        .status()?;
    Ok(status.code().unwrap_or(8))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fsck_codes() {
        assert_eq!(fsck_verdict(0), FsckVerdict::Clean);
        assert_eq!(fsck_verdict(1), FsckVerdict::Repaired);
        assert_eq!(fsck_verdict(2), FsckVerdict::Repaired);
        assert_eq!(fsck_verdict(3), FsckVerdict::Repaired);
        for c in [4, 5, 8, 12, 16, 32, 128, -1] {
            assert_eq!(fsck_verdict(c), FsckVerdict::Broken, "{c}");
        }
    }

    #[test]
    fn partitions_are_found_by_label_in_uevent() {
        let ev = "MAJOR=254\nMINOR=2\nDEVNAME=vda2\nDEVTYPE=partition\nDISKSEQ=9\nPARTN=2\nPARTNAME=ewindow-data\n";
        assert_eq!(
            partlabel_devname(ev, "ewindow-data").as_deref(),
            Some("vda2")
        );
        assert_eq!(partlabel_devname(ev, "ewindow"), None);
        assert_eq!(partlabel_devname(ev, "ewindow-data-2"), None);
        let disk = "MAJOR=254\nMINOR=0\nDEVNAME=vda\nDEVTYPE=disk\n";
        assert_eq!(partlabel_devname(disk, "ewindow-data"), None);
        let evil = "DEVNAME=../sda\nPARTNAME=ewindow-data\n";
        assert_eq!(partlabel_devname(evil, "ewindow-data"), None);
    }

    #[test]
    fn mbr_partitions_are_found_by_disk_id_and_number() {
        assert_eq!(parse_mbr_partuuid("0e77696e-02"), Some((0x0e77696e, 2)));
        assert_eq!(parse_mbr_partuuid("0E77696E-0a"), Some((0x0e77696e, 10)));
        for bad in [
            "0e77696e",
            "0e77696e-2",
            "0e7769-02",
            "0e77696e-00",
            "zz77696e-02",
        ] {
            assert_eq!(parse_mbr_partuuid(bad), None, "{bad}");
        }
        let mut mbr = [0u8; 512];
        mbr[440..444].copy_from_slice(&0x0e77696eu32.to_le_bytes());
        assert_eq!(mbr_disk_id(&mbr), None, "no boot signature");
        mbr[510] = 0x55;
        mbr[511] = 0xaa;
        mbr[446 + 4] = 0x0c;
        assert_eq!(mbr_disk_id(&mbr), Some(0x0e77696e));
        mbr[446 + 16 + 4] = 0xee;
        assert_eq!(mbr_disk_id(&mbr), None, "GPT's protective MBR");
        assert_eq!(mbr_disk_id(&mbr[..100]), None);
    }

    /// The lookup over a sysfs-like tree (`class/block/<part>` links into `devices/<disk>/`)
    /// and a `/dev` with the disks' first sectors: the partition of the right number on the
    /// disk with the right identifier, and nothing else. (The build machine's kernel has no
    /// MBR partition support for loop devices; the Pi image's boot test under QEMU finds
    /// `mmcblk0p2` this way.)
    #[test]
    fn mbr_partitions_are_found_in_sysfs() {
        let root = std::env::temp_dir().join(format!("ewindow-partuuid-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        let (class, devices, dev) = (root.join("class"), root.join("devices"), root.join("dev"));
        for d in [&class, &dev] {
            std::fs::create_dir_all(d).unwrap();
        }
        let sector = |id: u32| {
            let mut s = vec![0u8; 512];
            s[440..444].copy_from_slice(&id.to_le_bytes());
            s[446 + 4] = 0x0c;
            s[510] = 0x55;
            s[511] = 0xaa;
            s
        };
        for (disk, id) in [("mmcblk0", 0x0e77696e_u32), ("sda", 0x12345678)] {
            std::fs::write(dev.join(disk), sector(id)).unwrap();
            for n in 1..=2 {
                let part = if disk == "sda" {
                    format!("{disk}{n}")
                } else {
                    format!("{disk}p{n}")
                };
                let d = devices.join(disk).join(&part);
                std::fs::create_dir_all(&d).unwrap();
                std::fs::write(d.join("partition"), format!("{n}\n")).unwrap();
                std::os::unix::fs::symlink(&d, class.join(&part)).unwrap();
            }
            std::os::unix::fs::symlink(devices.join(disk), class.join(disk)).unwrap();
        }
        let find = |id| find_mbr_partition(&class, &dev, id);
        assert_eq!(find((0x0e77696e, 2)).as_deref(), Some("mmcblk0p2"));
        assert_eq!(find((0x12345678, 1)).as_deref(), Some("sda1"));
        assert_eq!(find((0x0e77696e, 3)), None);
        assert_eq!(find((0x0e77696f, 2)), None);
        let _ = std::fs::remove_dir_all(&root);
    }

    #[test]
    fn only_all_zero_heads_are_blank() {
        assert!(is_blank(&[0; 4096]));
        assert!(!is_blank(&[]));
        let mut ext4 = vec![0u8; 4096];
        ext4[1080] = 0x53;
        ext4[1081] = 0xef;
        assert!(!is_blank(&ext4));
    }
}
