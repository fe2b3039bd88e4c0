//! The disk: a partition table with fixed identifiers (GPT for UEFI, MBR for the Raspberry
//! Pi), the boot partition (FAT32, `mkfs.vfat --invariant`, files copied with mtools at the
//! build's epoch: the ESP with the unified kernel image, or the Pi's firmware, kernel and
//! device trees), and an empty data partition that ewindow-init formats at the first boot.

use std::fs;
use std::io::{Seek, SeekFrom, Write};
use std::path::Path;
use std::process::Command;

use anyhow::{bail, Context, Result};

use super::target::{Disk, Table};

const MIB: u64 = 1 << 20;

/// The partition label the services file finds `/data` by.
pub const DATA_LABEL: &str = "ewindow-data";

/// Runs a tool, failing with its name and output.
pub fn tool(cmd: &mut Command) -> Result<()> {
    let name = cmd.get_program().to_string_lossy().into_owned();
    let out = cmd
        .output()
        .with_context(|| format!("running {name} (is it installed? cargo xtask deps)"))?;
    if !out.status.success() {
        bail!(
            "{name} failed ({}): {}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout).trim(),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

/// The sfdisk script of the layout: the boot partition at 1 MiB, then the data partition.
pub fn sfdisk_script(d: &Disk, boot_mib: u64) -> String {
    let (boot, data) = (boot_mib * 2048, d.data_mib * 2048);
    let data_at = (1 + boot_mib) * 2048;
    match d.table {
        Table::Gpt => format!(
            "label: gpt\nlabel-id: {}\nunit: sectors\nfirst-lba: 2048\n\
             start=2048, size={boot}, type=C12A7328-F81F-11D2-BA4B-00A0C93EC93B, uuid={}, name=\"EFI system\"\n\
             start={data_at}, size={data}, type=0FC63DAF-8483-4772-8E79-3D69D8477DE4, uuid={}, name=\"{DATA_LABEL}\"\n",
            d.disk_id,
            d.boot_guid.as_deref().unwrap_or_default(),
            d.data_guid.as_deref().unwrap_or_default(),
        ),
        // 0c: FAT32 (LBA), the type the Pi's firmware looks for; 83: Linux
        Table::Dos => format!(
            "label: dos\nlabel-id: {}\nunit: sectors\n\
             start=2048, size={boot}, type=c, bootable\n\
             start={data_at}, size={data}, type=83\n",
            d.disk_id,
        ),
    }
}

/// The boot partition's size for boot files of `bytes`: room for them twice (an update next
/// to the running kernel) and 4 MiB, in whole 4 MiB, at least `boot_min_mib`.
pub fn boot_mib(d: &Disk, bytes: u64) -> u64 {
    let want = (2 * bytes).div_ceil(MIB) + 4;
    (want.div_ceil(4) * 4).max(d.boot_min_mib)
}

/// Makes the disk image `img`: the boot partition with `files` (path on it, source), then
/// the partition table.
pub fn make(d: &Disk, files: &[(&str, &Path)], epoch: u64, work: &Path, img: &Path) -> Result<()> {
    let total: u64 = files
        .iter()
        .map(|(_, f)| fs::metadata(f).map(|m| m.len()).unwrap_or(0))
        .sum();
    let esp_mib = boot_mib(d, total);
    let esp = work.join("esp.img");
    let _ = fs::remove_file(&esp);
    let label = match d.table {
        Table::Gpt => "EWINDOW-EFI",
        Table::Dos => "EWINDOW",
    };
    tool(
        Command::new("mkfs.vfat")
            // FAT32: some PC firmware boots only from a FAT32 ESP; the Pi reads it too
            .args([
                "--invariant",
                "-F",
                "32",
                "-i",
                &d.boot_volume_id,
                "-n",
                label,
                "-C",
            ])
            .arg(&esp)
            .arg((esp_mib * 1024).to_string()),
    )?;
    let stamp = |f: &Path| -> Result<()> {
        let t = std::time::UNIX_EPOCH + std::time::Duration::from_secs(epoch);
        fs::File::options().write(true).open(f)?.set_modified(t)?;
        Ok(())
    };
    let mut dirs: Vec<String> = Vec::new();
    for (dest, _) in files {
        let parts: Vec<&str> = dest.split('/').collect();
        for k in 1..parts.len() {
            let dir = parts[..k].join("/");
            if !dirs.contains(&dir) {
                dirs.push(dir);
            }
        }
    }
    // mtools stamps directories with the time it runs: SOURCE_DATE_EPOCH freezes it; FAT
    // times are local times, so the time zone is fixed too.
    for dir in &dirs {
        tool(
            Command::new("mmd")
                .env("MTOOLS_SKIP_CHECK", "1")
                .env("SOURCE_DATE_EPOCH", epoch.to_string())
                .env("TZ", "UTC")
                .arg("-i")
                .arg(&esp)
                .arg(format!("::{dir}")),
        )?;
    }
    for (dest, src) in files {
        stamp(src)?;
        tool(
            Command::new("mcopy")
                .env("MTOOLS_SKIP_CHECK", "1")
                .env("SOURCE_DATE_EPOCH", epoch.to_string())
                .env("TZ", "UTC")
                .args(["-m", "-i"])
                .arg(&esp)
                .arg(src)
                .arg(format!("::{dest}")),
        )?;
    }
    let _ = fs::remove_file(img);
    let size = (1 + esp_mib + d.data_mib + 1) * MIB;
    {
        let f = fs::File::create(img)?;
        f.set_len(size)?;
    }
    let mut sfdisk = Command::new("sfdisk")
        .args(["-q", "--no-reread", "--no-tell-kernel"])
        .arg(img)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .context("running sfdisk (apt-get install fdisk)")?;
    sfdisk
        .stdin
        .take()
        .context("sfdisk stdin")?
        .write_all(sfdisk_script(d, esp_mib).as_bytes())?;
    let out = sfdisk.wait_with_output()?;
    if !out.status.success() {
        bail!(
            "sfdisk failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    // the ESP at 1 MiB of the fresh (all holes) disk
    copy_range(&esp, 0, u64::MAX, img, MIB, true)?;
    fs::remove_file(&esp)?;
    Ok(())
}

/// Copies `len` bytes (or up to the end) of `src` from `from` into `dst` at `at`, creating
/// `dst` if needed. With `holes`, all-zero MiB blocks are skipped: only for a destination
/// whose range is known to be zeros (a new file, a fresh sparse image).
pub fn copy_range(src: &Path, from: u64, len: u64, dst: &Path, at: u64, holes: bool) -> Result<()> {
    let mut input = fs::File::open(src).with_context(|| format!("{}", src.display()))?;
    input.seek(SeekFrom::Start(from))?;
    let mut input = std::io::Read::take(input, len);
    let mut out = fs::File::options()
        .write(true)
        .create(true)
        .truncate(false)
        .open(dst)
        .with_context(|| format!("{}", dst.display()))?;
    let mut buf = vec![0u8; MIB as usize];
    let mut pos = at;
    loop {
        let n = read_full(&mut input, &mut buf)?;
        if n == 0 {
            break;
        }
        if !holes || buf[..n].iter().any(|&b| b != 0) {
            out.seek(SeekFrom::Start(pos))?;
            out.write_all(&buf[..n])?;
        }
        pos += n as u64;
    }
    // a trailing hole still counts in the length
    if out.metadata()?.len() < pos {
        out.set_len(pos)?;
    }
    out.sync_all()?;
    Ok(())
}

fn read_full(f: &mut impl std::io::Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match f.read(&mut buf[n..])? {
            0 => break,
            k => n += k,
        }
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn disk() -> Disk {
        Disk {
            table: Table::Gpt,
            disk_id: "6f2c6b8e-1d3a-4b7e-9a51-0e77696e646f".into(),
            boot_guid: Some("c0ffee00-e1e1-4a11-8d2e-0e77696e0001".into()),
            data_guid: Some("c0ffee00-e1e1-4a11-8d2e-0e77696e0002".into()),
            boot_volume_id: "0E1D0001".into(),
            boot_min_mib: 64,
            data_mib: 256,
        }
    }

    #[test]
    fn boot_partition_sizes() {
        assert_eq!(boot_mib(&disk(), 10 * MIB), 64);
        assert_eq!(boot_mib(&disk(), 40 * MIB), 84);
        assert_eq!(boot_mib(&disk(), 40 * MIB + 1), 88);
    }

    #[test]
    fn the_layout_script() {
        let s = sfdisk_script(&disk(), 64);
        assert!(s.contains("start=2048, size=131072, type=C12A7328"));
        assert!(s.contains("start=133120, size=524288, type=0FC63DAF"));
        assert!(s.contains("name=\"ewindow-data\""));
        let mbr = Disk {
            table: Table::Dos,
            disk_id: "0x0e77696e".into(),
            boot_guid: None,
            data_guid: None,
            ..disk()
        };
        let s = sfdisk_script(&mbr, 128);
        assert!(s.starts_with("label: dos\nlabel-id: 0x0e77696e\n"), "{s}");
        assert!(s.contains("start=2048, size=262144, type=c, bootable\n"));
        assert!(s.contains("start=264192, size=524288, type=83\n"));
    }
}
