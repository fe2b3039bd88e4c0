//! `cargo xtask flash DEVICE`: writes a built image to an SD card or a USB stick with
//! `bmaptool copy` (only the used blocks, each checked against the bmap's checksums), after
//! checking that the device is a removable disk nothing on this machine uses.
//!
//! The checks read sysfs and `/proc` into [`Facts`]; whether to write is [`decide`], a pure
//! function (tested below). `--force` overrides the refusals that can be wrong (a USB disk
//! that says it is fixed, a file instead of a disk); the disk `/` is on is refused even then.
//! See `docs/flash.md`.

use std::collections::BTreeMap;
use std::fs;
use std::io::{IsTerminal, Write};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};
use sha2::{Digest, Sha256};

/// `cargo xtask flash …`
#[derive(clap::Args)]
pub struct FlashArgs {
    /// The target whose built image to write (`target/image/<target>/ewindow-<target>.img`).
    #[arg(long, default_value = "qemu-x86_64")]
    pub target: String,
    /// Another image instead: an `.img` or `.img.zst` with its `.bmap` beside it (and the
    /// `SHA256SUMS` it came with, which is then checked).
    #[arg(long)]
    pub image: Option<PathBuf>,
    /// Write even to a disk that is not removable, is mounted or in use as swap, to a
    /// partition, or into a regular file. Never to the disk `/` is on.
    #[arg(long)]
    pub force: bool,
    /// Do not ask before writing.
    #[arg(long)]
    pub yes: bool,
    /// The whole disk to overwrite: `/dev/sdX`, `/dev/mmcblkN` or a `/dev/disk/by-id/…` link
    /// (`lsblk -d -o NAME,SIZE,MODEL,TRAN,RM` lists them).
    pub device: PathBuf,
}

/// Runs `cargo xtask flash`.
pub fn run(args: FlashArgs) -> Result<()> {
    let (image, bmap, sums, built) = match &args.image {
        Some(image) => {
            if !image.is_file() {
                bail!("{} is not a file", image.display());
            }
            let bmap = bmap_beside(image)?;
            let dir = image.parent().unwrap_or(Path::new("."));
            (image.clone(), bmap, dir.join("SHA256SUMS"), false)
        }
        None => {
            let t = &args.target;
            let dir = crate::root().join("target/image").join(t);
            let img = dir.join(format!("ewindow-{t}.img"));
            let zst = dir.join(format!("ewindow-{t}.img.zst"));
            let image = if img.is_file() {
                img
            } else if zst.is_file() {
                zst
            } else {
                bail!(
                    "no image of {t} in {}: build it with `cargo xtask image --target {t}`, \
                     or give one with --image",
                    dir.display()
                );
            };
            let bmap = dir.join(format!("ewindow-{t}.img.bmap"));
            if !bmap.is_file() {
                bail!(
                    "{} is missing: build the image again (`cargo xtask image --target {t}`), \
                     or write it without a bmap: scripts/flash-window.sh --dd {} DEVICE",
                    bmap.display(),
                    image.display()
                );
            }
            (image, bmap, dir.join("SHA256SUMS"), true)
        }
    };
    let bmap_text =
        fs::read_to_string(&bmap).with_context(|| format!("reading {}", bmap.display()))?;
    let image_size = bmap_image_size(&bmap_text).with_context(|| {
        format!(
            "{} is not a bmap file (no <ImageSize>): make it again with `bmaptool create`",
            bmap.display()
        )
    })?;

    // the device first: a wrong one fails before the image is read
    let facts = gather(&args.device, image_size)?;
    verdict(&facts, args.force, true)?;

    if sums.is_file() {
        check_sums(&sums, &[image.as_path(), bmap.as_path()])?;
    } else if built {
        bail!(
            "{} is missing: build the image again (`cargo xtask image --target {}`)",
            sums.display(),
            args.target
        );
    } else {
        eprintln!(
            "xtask: warning: no {} beside the image: its sha256 is not checked (bmaptool still \
             checks what it writes against the bmap)",
            sums.display()
        );
    }

    let bmaptool = which("bmaptool").context(
        "bmaptool is not installed: apt-get install bmap-tools (or write without it: \
         scripts/flash-window.sh --dd)",
    )?;
    let sudo = facts.block && !is_root();
    let sudo_path = if sudo {
        Some(which("sudo").with_context(|| {
            format!(
                "writing {} needs root and there is no sudo: run this as root",
                facts.resolved.display()
            )
        })?)
    } else {
        None
    };

    eprintln!("xtask: about to overwrite:\n{}", describe(&facts));
    eprintln!(
        "  with {} ({} when written)",
        image.display(),
        human(image_size)
    );
    if !args.yes {
        if !std::io::stdin().is_terminal() {
            bail!(
                "no terminal to ask on: check the device above and add --yes to write without \
                 asking"
            );
        }
        if !confirm(&facts.resolved)? {
            bail!("nothing written (the answer was not `yes`)");
        }
    }
    // again: a desktop mounts a card's partitions as soon as it sees them
    let facts = gather(&args.device, image_size)?;
    verdict(&facts, args.force, false)?;

    // the program itself, or through sudo
    let as_root = |program: &Path| match &sudo_path {
        Some(s) => {
            let mut c = Command::new(s);
            c.arg(program);
            c
        }
        None => Command::new(program),
    };
    eprintln!(
        "xtask: {}bmaptool copy --bmap {} {} {}",
        if sudo { "sudo " } else { "" },
        bmap.display(),
        image.display(),
        facts.resolved.display()
    );
    let status = as_root(bmaptool.as_path())
        .arg("copy")
        .arg("--bmap")
        .arg(&bmap)
        .arg(&image)
        .arg(&facts.resolved)
        .status()
        .context("running bmaptool")?;
    if !status.success() {
        bail!(
            "bmaptool copy failed ({status}): see its message above; the device is not \
             usable as it is. A checksum mismatch: the image and its bmap differ (take both \
             from the same build); an I/O error: a failing card, stick or reader (try another)"
        );
    }
    match Command::new("sync").status() {
        Ok(s) if s.success() => {}
        _ => eprintln!("xtask: warning: sync failed: wait a minute before pulling the device"),
    }
    if let Some(blockdev) = which("blockdev").filter(|_| facts.block) {
        let ok = as_root(blockdev.as_path())
            .arg("--rereadpt")
            .arg(&facts.resolved)
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            eprintln!(
                "xtask: note: the kernel did not re-read the partition table (harmless: \
                 unplugging the device does it)"
            );
        }
    }
    eprintln!(
        "xtask: {} is written and checked. Put it in the window and switch it on: \
         docs/flash.md says what the first boot does.",
        facts.resolved.display()
    );
    Ok(())
}

/// What the refusals look at: the device as `/sys`, `/proc` and the bmap describe it. For a
/// partition, everything but `name` and `partition_of` is about its whole disk.
#[derive(Debug, Clone, Default)]
struct Facts {
    /// The path as given.
    path: PathBuf,
    /// The path with its symlinks resolved (`/dev/disk/by-id/usb-…` → `/dev/sdb`).
    resolved: PathBuf,
    /// It is a block device.
    block: bool,
    /// Not a block device but a regular file.
    regular: bool,
    /// The kernel's name of the block device (`sdb`, `mmcblk0`, `sdb1`).
    name: String,
    /// The whole disk it is a partition of (`sdb` for `sdb1`).
    partition_of: Option<String>,
    /// `/sys/class/block/<disk>/removable` is 1.
    removable: bool,
    /// `/sys/class/block/<disk>/device/type`: `SD` or `MMC` (eMMC) for `mmcblk`, a number for
    /// SCSI disks.
    device_type: String,
    /// Its sysfs path goes through USB.
    usb: bool,
    /// `/sys/class/block/<disk>/ro` is 1 (an SD card's lock switch).
    read_only: bool,
    /// Bytes (a regular file's length).
    size: u64,
    /// Vendor, model and card name from sysfs, as far as known.
    model: String,
    /// The disk's partitions: kernel name and bytes.
    partitions: Vec<(String, u64)>,
    /// Filesystems mounted from the disk, its partitions or what is built on them (dm-crypt,
    /// LVM, RAID): the kernel name and the mount point.
    mounts: Vec<(String, String)>,
    /// Swap on them: the kernel name.
    swaps: Vec<String>,
    /// `/` is on them.
    holds_root: bool,
    /// The bytes the image needs (the bmap's `ImageSize`).
    image_size: u64,
}

/// Why a device is not written.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Refusal {
    /// Not a block device; `regular`: a regular file (which `--force` writes into).
    NotBlockDevice {
        /// It is a regular file.
        regular: bool,
    },
    /// `/` is on it.
    HoldsRoot,
    /// A partition, not a whole disk.
    Partition {
        /// The disk it belongs to.
        disk: String,
    },
    /// Filesystems are mounted from it: kernel name and mount point.
    Mounted(Vec<(String, String)>),
    /// Swap is on it: kernel names.
    Swap(Vec<String>),
    /// It does not say it is removable.
    NotRemovable,
    /// It is read-only.
    ReadOnly,
    /// Its size is 0.
    NoMedium,
    /// It is smaller than the image.
    TooSmall,
}

impl Refusal {
    /// `--force` overrides it.
    fn forceable(&self) -> bool {
        matches!(
            self,
            Refusal::NotBlockDevice { regular: true }
                | Refusal::Partition { .. }
                | Refusal::Mounted(_)
                | Refusal::Swap(_)
                | Refusal::NotRemovable
        )
    }

    /// What it means and what to do.
    fn explain(&self, f: &Facts) -> String {
        let dev = f.resolved.display();
        let devs = |names: Vec<&String>| {
            names
                .into_iter()
                .map(|n| format!("/dev/{n}"))
                .collect::<Vec<_>>()
                .join(" ")
        };
        match self {
            Refusal::NotBlockDevice { regular: true } => format!(
                "{dev} is a regular file, not a disk (disks are /dev/sdX, /dev/mmcblkN: \
                 `lsblk -d -o NAME,SIZE,MODEL,TRAN,RM`); --force writes the image into the file"
            ),
            Refusal::NotBlockDevice { regular: false } => format!(
                "{dev} is neither a disk nor a file (disks are /dev/sdX, /dev/mmcblkN: \
                 `lsblk -d -o NAME,SIZE,MODEL,TRAN,RM`)"
            ),
            Refusal::HoldsRoot => format!(
                "{dev} holds this machine's root filesystem `/`: it is the disk this system \
                 runs from (never written, not even with --force)"
            ),
            Refusal::Partition { disk } => format!(
                "{dev} is a partition of /dev/{disk}: the image is a whole disk, give /dev/{disk}"
            ),
            Refusal::Mounted(m) => {
                let list: Vec<String> = m.iter().map(|(n, p)| format!("/dev/{n} on {p}")).collect();
                let mut names: Vec<&String> = m.iter().map(|(n, _)| n).collect();
                names.dedup();
                format!(
                    "mounted: {}; unmount first: `sudo umount {}` (or `udisksctl unmount -b` \
                     each)",
                    list.join(", "),
                    devs(names)
                )
            }
            Refusal::Swap(s) => format!(
                "swap is on {0}: `sudo swapoff {0}` first",
                devs(s.iter().collect())
            ),
            Refusal::NotRemovable => {
                let usb = if f.usb {
                    " It is on USB: some USB disks and sticks say they are fixed."
                } else {
                    ""
                };
                format!(
                    "{dev} does not say it is removable (/sys/class/block/{}/removable is not 1): \
                     it looks like a fixed disk.{usb} If it is the one to overwrite (check its \
                     model and size below), add --force",
                    f.partition_of.as_deref().unwrap_or(&f.name)
                )
            }
            Refusal::ReadOnly => format!(
                "{dev} is read-only: an SD card's lock switch (slide it toward the contacts) or a \
                 write-protected reader"
            ),
            Refusal::NoMedium => format!("{dev} has no space at all: is the card in the reader?"),
            Refusal::TooSmall => format!(
                "{dev} has {}, the image needs {}: use a bigger card or stick",
                human(f.size),
                human(f.image_size)
            ),
        }
    }
}

/// What [`decide`] says.
#[derive(Debug, Default)]
struct Verdict {
    /// Why it is not written (empty: it is).
    refused: Vec<Refusal>,
    /// What `--force` overrode.
    overridden: Vec<Refusal>,
}

/// Whether a device with these facts is written, and why not.
fn decide(f: &Facts, force: bool) -> Verdict {
    let mut all = Vec::new();
    if !f.block {
        all.push(Refusal::NotBlockDevice { regular: f.regular });
    } else {
        if f.holds_root {
            all.push(Refusal::HoldsRoot);
        }
        if let Some(disk) = &f.partition_of {
            all.push(Refusal::Partition { disk: disk.clone() });
        }
        if !f.mounts.is_empty() {
            all.push(Refusal::Mounted(f.mounts.clone()));
        }
        if !f.swaps.is_empty() {
            all.push(Refusal::Swap(f.swaps.clone()));
        }
        // an SD card in a built-in reader (mmcblk) says removable 0 but is one
        if !f.removable && f.device_type != "SD" {
            all.push(Refusal::NotRemovable);
        }
        if f.read_only {
            all.push(Refusal::ReadOnly);
        }
        if f.size == 0 {
            all.push(Refusal::NoMedium);
        } else if f.size < f.image_size {
            all.push(Refusal::TooSmall);
        }
    }
    let (overridden, refused): (Vec<Refusal>, Vec<Refusal>) = if force {
        all.into_iter().partition(Refusal::forceable)
    } else {
        (Vec::new(), all)
    };
    Verdict {
        refused,
        overridden,
    }
}

/// [`decide`]: an error lists the refusals; `say`: print what `--force` overrode.
fn verdict(f: &Facts, force: bool, say: bool) -> Result<()> {
    let v = decide(f, force);
    if !v.refused.is_empty() {
        let why: Vec<String> = v.refused.iter().map(|r| r.explain(f)).collect();
        let what = if f.block {
            format!("\n{}", describe(f))
        } else {
            String::new()
        };
        bail!(
            "not writing {}:\n  - {}{what}",
            f.resolved.display(),
            why.join("\n  - ")
        );
    }
    if say {
        for r in &v.overridden {
            eprintln!("xtask: --force: writing although {}", r.explain(f));
        }
    }
    Ok(())
}

/// The facts of `path` on this machine, for an image of `image_size` bytes.
fn gather(path: &Path, image_size: u64) -> Result<Facts> {
    let resolved = fs::canonicalize(path).with_context(|| {
        format!(
            "{} does not exist (`lsblk -d -o NAME,SIZE,MODEL,TRAN,RM` lists the disks)",
            path.display()
        )
    })?;
    let meta =
        fs::metadata(&resolved).with_context(|| format!("reading {}", resolved.display()))?;
    let mut f = Facts {
        path: path.to_path_buf(),
        resolved,
        image_size,
        ..Facts::default()
    };
    if !meta.file_type().is_block_device() {
        f.regular = meta.is_file();
        f.size = meta.len();
        return Ok(f);
    }
    let num = devnum(meta.rdev());
    let sys = Path::new("/sys");
    let name = kernel_name(sys, &num).with_context(|| {
        format!(
            "{} (block device {num}) is not in /sys/dev/block: is /sys mounted?",
            f.resolved.display()
        )
    })?;
    gather_block(f, &name)
}

/// [`gather`] for the block device `name`, from `/sys`, `/proc/self/mountinfo`,
/// `/proc/swaps` and the device of `/`.
fn gather_block(f: Facts, name: &str) -> Result<Facts> {
    let mountinfo =
        fs::read_to_string("/proc/self/mountinfo").context("reading /proc/self/mountinfo")?;
    // no swap support in the kernel: no file
    let swaps = fs::read_to_string("/proc/swaps").unwrap_or_default();
    let root_dev = devnum(fs::metadata("/").context("stat /")?.dev());
    let live = Live {
        sys: Path::new("/sys"),
        mountinfo: &mountinfo,
        swaps: &swaps,
        root_dev: &root_dev,
    };
    Ok(facts_of(f, &live, name))
}

/// The system state [`facts_of`] reads besides the device: the real one, or a test's.
struct Live<'a> {
    /// Where sysfs is (`/sys`).
    sys: &'a Path,
    /// The text of `/proc/self/mountinfo`.
    mountinfo: &'a str,
    /// The text of `/proc/swaps`.
    swaps: &'a str,
    /// The device number (`maj:min`) of the filesystem `/` is on.
    root_dev: &'a str,
}

/// Fills `f` with what sysfs and the mounts say about the block device `name`.
fn facts_of(mut f: Facts, live: &Live, name: &str) -> Facts {
    let class = live.sys.join("class/block");
    f.block = true;
    f.name = name.to_string();
    f.partition_of = whole_disk(live.sys, name).filter(|d| d != name);
    let disk = f.partition_of.clone().unwrap_or_else(|| name.to_string());
    let dir = class.join(&disk);
    let attr = |a: &str| read_trim(&dir.join(a)).unwrap_or_default();
    f.removable = attr("removable") == "1";
    f.read_only = attr("ro") == "1";
    f.size = attr("size").parse::<u64>().unwrap_or(0).saturating_mul(512);
    f.device_type = attr("device/type");
    let mut model: Vec<String> = Vec::new();
    for a in ["device/vendor", "device/model", "device/name"] {
        let v = attr(a);
        if !v.is_empty() && !model.contains(&v) {
            model.push(v);
        }
    }
    f.model = model.join(" ");
    f.usb = fs::canonicalize(&dir).is_ok_and(|p| p.to_string_lossy().contains("/usb"));
    f.partitions = partitions(&dir);

    // everything on the disk: it, its partitions, what is built on them, with their numbers
    let mut family: BTreeMap<String, String> = BTreeMap::new();
    let mut todo: Vec<String> = vec![disk.clone()];
    todo.extend(f.partitions.iter().map(|(n, _)| n.clone()));
    while let Some(n) = todo.pop() {
        if family.contains_key(&n) {
            continue;
        }
        let num = read_trim(&class.join(&n).join("dev")).unwrap_or_default();
        if let Ok(holders) = fs::read_dir(class.join(&n).join("holders")) {
            for h in holders.flatten() {
                todo.push(h.file_name().to_string_lossy().into_owned());
            }
        }
        family.insert(n, num);
    }
    let on = |num: Option<&str>, source: &str| member(&family, num, source);

    for m in parse_mountinfo(live.mountinfo) {
        if let Some(n) = on(Some(m.devnum.as_str()), &m.source) {
            if m.point == "/" {
                f.holds_root = true;
            }
            f.mounts.push((n, m.point));
        }
    }
    if family.values().any(|v| v == live.root_dev) {
        f.holds_root = true;
    }
    for s in parse_swaps(live.swaps) {
        if let Some(n) = on(None, &s).filter(|n| !f.swaps.contains(n)) {
            f.swaps.push(n);
        }
    }
    f
}

/// The whole disk of block device `name`: itself, or the disk a partition is in.
fn whole_disk(sys: &Path, name: &str) -> Option<String> {
    let dir = sys.join("class/block").join(name);
    if !dir.join("partition").exists() {
        return Some(name.to_string());
    }
    // /sys/class/block/sdb1 → …/block/sdb/sdb1
    let real = fs::canonicalize(&dir).ok()?;
    let parent = real.parent()?.file_name()?;
    Some(parent.to_string_lossy().into_owned())
}

/// The partitions in a disk's sysfs directory: name and bytes, sorted.
fn partitions(dir: &Path) -> Vec<(String, u64)> {
    let mut out = Vec::new();
    if let Ok(entries) = fs::read_dir(dir) {
        for e in entries.flatten() {
            let p = e.path();
            if p.join("partition").is_file() {
                let size = read_trim(&p.join("size"))
                    .and_then(|s| s.parse::<u64>().ok())
                    .unwrap_or(0);
                out.push((
                    e.file_name().to_string_lossy().into_owned(),
                    size.saturating_mul(512),
                ));
            }
        }
    }
    out.sort();
    out
}

/// Which member of `family` (kernel name → `maj:min`) a mount or swap is on: by its device
/// number, else by its source when that is a `/dev/…` path.
fn member(family: &BTreeMap<String, String>, num: Option<&str>, source: &str) -> Option<String> {
    let by_num = |d: &str| {
        family
            .iter()
            .find(|(_, v)| !v.is_empty() && v.as_str() == d)
            .map(|(n, _)| n.clone())
    };
    if let Some(n) = num.and_then(&by_num) {
        return Some(n);
    }
    if !source.starts_with("/dev/") {
        return None;
    }
    let p = Path::new(source);
    let node = fs::metadata(p)
        .ok()
        .filter(|m| m.file_type().is_block_device());
    if let Some(n) = node.and_then(|m| by_num(&devnum(m.rdev()))) {
        return Some(n);
    }
    // /dev/mapper/x → /dev/dm-0; a node that is not there: its name
    let real = fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf());
    let n = real.file_name()?.to_string_lossy().into_owned();
    family.contains_key(&n).then_some(n)
}

/// One line of `/proc/self/mountinfo`.
#[derive(Debug, PartialEq, Eq)]
struct Mount {
    /// The filesystem's device number, `maj:min`.
    devnum: String,
    /// Where it is mounted.
    point: String,
    /// What it is mounted from (`/dev/sdb1`, `overlay`, `server:/dir`).
    source: String,
}

/// The mounts of a `/proc/self/mountinfo` text; lines it cannot read are left out.
fn parse_mountinfo(text: &str) -> Vec<Mount> {
    text.lines()
        .filter_map(|l| {
            // id parent maj:min root point options [optional…] - fstype source super-options
            let fields: Vec<&str> = l.split(' ').collect();
            let sep = 6 + fields.iter().skip(6).position(|f| *f == "-")?;
            Some(Mount {
                devnum: fields.get(2)?.to_string(),
                point: unescape(fields.get(4)?),
                source: unescape(fields.get(sep + 2)?),
            })
        })
        .collect()
}

/// The swap devices and files of a `/proc/swaps` text.
fn parse_swaps(text: &str) -> Vec<String> {
    text.lines()
        .skip(1)
        .filter_map(|l| l.split_whitespace().next())
        .map(unescape)
        .collect()
}

/// Undoes the kernel's octal escapes in `/proc` paths (`\040` is a space).
fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 4 <= b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            let v = b[i + 1..i + 4]
                .iter()
                .fold(0u32, |acc, c| acc * 8 + u32::from(c - b'0'));
            if let Ok(byte) = u8::try_from(v) {
                out.push(byte);
                i += 4;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A Linux `dev_t` as `maj:min`, the form of sysfs' `dev` files.
fn devnum(dev: u64) -> String {
    let major = ((dev >> 32) & 0xffff_f000) | ((dev >> 8) & 0x0000_0fff);
    let minor = ((dev >> 12) & 0xffff_ff00) | (dev & 0x0000_00ff);
    format!("{major}:{minor}")
}

/// The kernel name of block device `maj:min` (`/sys/dev/block/8:16` → `sdb`).
fn kernel_name(sys: &Path, num: &str) -> Option<String> {
    let real = fs::canonicalize(sys.join("dev/block").join(num)).ok()?;
    Some(real.file_name()?.to_string_lossy().into_owned())
}

/// A file's content without surrounding white space.
fn read_trim(p: &Path) -> Option<String> {
    fs::read_to_string(p).ok().map(|s| s.trim().to_string())
}

/// The device as a person would recognise it: model, size, partitions.
fn describe(f: &Facts) -> String {
    let via = if f.path != f.resolved {
        format!(" (given as {})", f.path.display())
    } else {
        String::new()
    };
    if !f.block {
        return format!(
            "  {}{via}: a file of {}",
            f.resolved.display(),
            human(f.size)
        );
    }
    let model = if f.model.is_empty() {
        "unknown model"
    } else {
        f.model.as_str()
    };
    let mut what = vec![model.to_string(), human(f.size)];
    if f.device_type == "SD" {
        what.push("SD card".into());
    }
    if f.removable {
        what.push("removable".into());
    }
    if f.usb {
        what.push("on USB".into());
    }
    let parts = if f.partitions.is_empty() {
        "no partitions".to_string()
    } else {
        let list: Vec<String> = f
            .partitions
            .iter()
            .map(|(n, b)| format!("{n} ({})", human(*b)))
            .collect();
        format!("its partitions: {}", list.join(", "))
    };
    format!(
        "  {}{via}: {}\n  {parts}",
        f.resolved.display(),
        what.join(", ")
    )
}

/// Bytes for people: `31.9 GB (29.7 GiB)`, `337 MB`.
fn human(bytes: u64) -> String {
    let b = bytes as f64;
    if bytes >= 1_000_000_000 {
        let gb = b / 1e9;
        let gib = b / f64::from(1u32 << 30);
        format!("{gb:.1} GB ({gib:.1} GiB)")
    } else {
        let mb = b / 1e6;
        format!("{mb:.0} MB")
    }
}

/// Asks on the terminal; true when the answer is `yes`.
fn confirm(dev: &Path) -> Result<bool> {
    eprint!(
        "Everything on {} will be overwritten. Type yes to go on: ",
        dev.display()
    );
    std::io::stderr().flush()?;
    let mut line = String::new();
    std::io::stdin()
        .read_line(&mut line)
        .context("reading the answer")?;
    Ok(line.trim() == "yes")
}

/// The `.bmap` beside an image: `X.img.zst.bmap`, `X.img.bmap`.
fn bmap_beside(image: &Path) -> Result<PathBuf> {
    let mut same = image.as_os_str().to_os_string();
    same.push(".bmap");
    let mut tried = vec![PathBuf::from(same)];
    if image.extension().is_some_and(|e| e == "zst") {
        tried.push(image.with_extension("bmap"));
    }
    if let Some(b) = tried.iter().find(|p| p.is_file()) {
        return Ok(b.clone());
    }
    let names: Vec<String> = tried.iter().map(|p| p.display().to_string()).collect();
    bail!(
        "no bmap beside {} (looked for {}): bmaptool needs it (it writes only the used blocks \
         and checks them); without one, write everything and read it back: \
         scripts/flash-window.sh --dd {} DEVICE",
        image.display(),
        names.join(" and "),
        image.display()
    )
}

/// The `<ImageSize>` of a bmap file.
fn bmap_image_size(text: &str) -> Option<u64> {
    let (_, rest) = text.split_once("<ImageSize>")?;
    let (value, _) = rest.split_once("</ImageSize>")?;
    value.trim().parse().ok()
}

/// Checks the sha256 of each of `files` against the `SHA256SUMS` file `sums`.
fn check_sums(sums: &Path, files: &[&Path]) -> Result<()> {
    let text = fs::read_to_string(sums).with_context(|| format!("reading {}", sums.display()))?;
    for file in files {
        let name = file
            .file_name()
            .and_then(|n| n.to_str())
            .with_context(|| format!("{}: no file name", file.display()))?;
        let want = sums_entry(&text, name).with_context(|| {
            format!(
                "{} does not list {name}: not the SHA256SUMS of this image (take both from \
                 the same build)",
                sums.display()
            )
        })?;
        let got = sha256_file(file)?;
        if got != want {
            bail!(
                "{}: sha256 {got}, but {} says {want}: a damaged or different file (download \
                 or build it again)",
                file.display(),
                sums.display()
            );
        }
        eprintln!("xtask: sha256 ok: {}", file.display());
    }
    Ok(())
}

/// The hash a `sha256sum` list gives for `name` (`HASH  name` or `HASH *name`), lower case.
fn sums_entry(text: &str, name: &str) -> Option<String> {
    text.lines().find_map(|l| {
        let (hash, rest) = l.split_once(' ')?;
        let rest = rest.trim_start();
        let file = rest.strip_prefix('*').unwrap_or(rest);
        (file == name).then(|| hash.to_ascii_lowercase())
    })
}

/// The sha256 of a file, lower-case hex.
fn sha256_file(path: &Path) -> Result<String> {
    let mut f = fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let mut h = Sha256::new();
    std::io::copy(&mut f, &mut h).with_context(|| format!("reading {}", path.display()))?;
    Ok(h.finalize().iter().map(|b| format!("{b:02x}")).collect())
}

/// A program on `PATH`, or in `/usr/sbin` and `/sbin` (not on a Debian user's `PATH`).
fn which(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/sbin"), PathBuf::from("/sbin")])
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

/// We run as root.
fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A 32 GB USB card reader with a card in it, nothing mounted, and a 337 MB image.
    fn sd_in_usb_reader() -> Facts {
        Facts {
            path: "/dev/sdb".into(),
            resolved: "/dev/sdb".into(),
            block: true,
            name: "sdb".into(),
            removable: true,
            device_type: "0".into(),
            usb: true,
            size: 31_914_983_424,
            model: "Generic STORAGE DEVICE".into(),
            partitions: vec![
                ("sdb1".into(), 268_435_456),
                ("sdb2".into(), 31_000_000_000),
            ],
            image_size: 337_641_472,
            ..Facts::default()
        }
    }

    #[test]
    fn a_card_in_a_usb_reader_is_written() {
        let v = decide(&sd_in_usb_reader(), false);
        assert!(v.refused.is_empty(), "{v:?}");
        assert!(v.overridden.is_empty());
    }

    #[test]
    fn a_mounted_partition_is_refused_unless_forced() {
        let f = Facts {
            mounts: vec![("sdb1".into(), "/media/me/bootfs".into())],
            ..sd_in_usb_reader()
        };
        let v = decide(&f, false);
        assert_eq!(v.refused, vec![Refusal::Mounted(f.mounts.clone())]);
        let why = v.refused[0].explain(&f);
        assert!(why.contains("/dev/sdb1 on /media/me/bootfs"), "{why}");
        assert!(why.contains("umount /dev/sdb1"), "{why}");
        let v = decide(&f, true);
        assert!(v.refused.is_empty());
        assert_eq!(v.overridden, vec![Refusal::Mounted(f.mounts.clone())]);
    }

    #[test]
    fn swap_on_the_device_is_refused_unless_forced() {
        let f = Facts {
            swaps: vec!["sdb2".into()],
            ..sd_in_usb_reader()
        };
        assert_eq!(
            decide(&f, false).refused,
            vec![Refusal::Swap(vec!["sdb2".into()])]
        );
        assert!(decide(&f, true).refused.is_empty());
    }

    #[test]
    fn the_root_disk_is_refused_even_with_force() {
        let f = Facts {
            path: "/dev/nvme0n1".into(),
            resolved: "/dev/nvme0n1".into(),
            block: true,
            name: "nvme0n1".into(),
            size: 512_110_190_592,
            mounts: vec![
                ("nvme0n1p2".into(), "/".into()),
                ("nvme0n1p1".into(), "/boot/efi".into()),
            ],
            holds_root: true,
            image_size: 337_641_472,
            ..Facts::default()
        };
        let v = decide(&f, false);
        assert!(v.refused.contains(&Refusal::HoldsRoot));
        assert!(v.refused.contains(&Refusal::NotRemovable));
        let v = decide(&f, true);
        assert_eq!(v.refused, vec![Refusal::HoldsRoot]);
        assert!(v.overridden.contains(&Refusal::NotRemovable));
        assert!(v.refused[0].explain(&f).contains("not even with --force"));
    }

    #[test]
    fn a_fixed_disk_is_refused_unless_forced() {
        let f = Facts {
            removable: false,
            usb: false,
            device_type: "0".into(),
            ..sd_in_usb_reader()
        };
        let v = decide(&f, false);
        assert_eq!(v.refused, vec![Refusal::NotRemovable]);
        assert!(!v.refused[0].explain(&f).contains("on USB"));
        let v = decide(&f, true);
        assert!(v.refused.is_empty());
        assert_eq!(v.overridden, vec![Refusal::NotRemovable]);
        // a USB disk saying it is fixed: the hint says so
        let usb = Facts { usb: true, ..f };
        assert!(Refusal::NotRemovable.explain(&usb).contains("on USB"));
    }

    #[test]
    fn an_sd_card_in_a_built_in_reader_counts_as_removable_but_emmc_does_not() {
        let sd = Facts {
            path: "/dev/mmcblk0".into(),
            resolved: "/dev/mmcblk0".into(),
            name: "mmcblk0".into(),
            removable: false,
            usb: false,
            device_type: "SD".into(),
            ..sd_in_usb_reader()
        };
        assert!(decide(&sd, false).refused.is_empty());
        let emmc = Facts {
            device_type: "MMC".into(),
            ..sd
        };
        assert_eq!(decide(&emmc, false).refused, vec![Refusal::NotRemovable]);
    }

    #[test]
    fn a_partition_is_refused_and_the_message_names_its_disk() {
        let f = Facts {
            path: "/dev/sdb1".into(),
            resolved: "/dev/sdb1".into(),
            name: "sdb1".into(),
            partition_of: Some("sdb".into()),
            ..sd_in_usb_reader()
        };
        let v = decide(&f, false);
        assert_eq!(v.refused, vec![Refusal::Partition { disk: "sdb".into() }]);
        assert!(v.refused[0].explain(&f).contains("give /dev/sdb"));
    }

    #[test]
    fn a_file_is_written_only_with_force_and_a_directory_never() {
        let file = Facts {
            path: "/tmp/x.img".into(),
            resolved: "/tmp/x.img".into(),
            regular: true,
            ..Facts::default()
        };
        let v = decide(&file, false);
        assert_eq!(v.refused, vec![Refusal::NotBlockDevice { regular: true }]);
        assert!(decide(&file, true).refused.is_empty());
        let dir = Facts {
            regular: false,
            ..file
        };
        assert_eq!(
            decide(&dir, true).refused,
            vec![Refusal::NotBlockDevice { regular: false }]
        );
    }

    #[test]
    fn read_only_empty_and_small_devices_are_refused_even_with_force() {
        let locked = Facts {
            read_only: true,
            ..sd_in_usb_reader()
        };
        assert_eq!(decide(&locked, true).refused, vec![Refusal::ReadOnly]);
        let empty = Facts {
            size: 0,
            partitions: vec![],
            ..sd_in_usb_reader()
        };
        assert_eq!(decide(&empty, true).refused, vec![Refusal::NoMedium]);
        let small = Facts {
            size: 128 << 20,
            ..sd_in_usb_reader()
        };
        assert_eq!(decide(&small, true).refused, vec![Refusal::TooSmall]);
        assert!(Refusal::TooSmall.explain(&small).contains("134 MB"));
    }

    #[test]
    fn mountinfo_lines_are_read_with_their_escapes() {
        let text = "22 1 254:0 / / rw,relatime shared:1 - ext4 /dev/vda rw\n\
                    40 22 8:17 / /media/me/my\\040card rw master:2 shared:3 - vfat /dev/sdb1 rw\n\
                    41 22 0:45 / /mnt rw - overlay overlay rw,lowerdir=/a\n\
                    garbage\n";
        let m = parse_mountinfo(text);
        assert_eq!(m.len(), 3);
        assert_eq!(
            m[1],
            Mount {
                devnum: "8:17".into(),
                point: "/media/me/my card".into(),
                source: "/dev/sdb1".into(),
            }
        );
        assert_eq!(m[2].source, "overlay");
        assert_eq!(unescape("a\\134b\\011"), "a\\b\t");
        assert_eq!(unescape("trailing\\04"), "trailing\\04");
    }

    #[test]
    fn swaps_sums_and_bmaps_are_read() {
        let swaps = "Filename\t\t\t\tType\t\tSize\tUsed\tPriority\n\
                     /dev/sdb2                               partition\t1048572\t0\t-2\n\
                     /swap\\040file                            file\t\t1048572\t0\t-3\n";
        assert_eq!(parse_swaps(swaps), vec!["/dev/sdb2", "/swap file"]);
        let sums = "ABC123  ewindow-rpi-arm64.img\n\
                    def456 *ewindow-rpi-arm64.img.zst\n";
        assert_eq!(
            sums_entry(sums, "ewindow-rpi-arm64.img").as_deref(),
            Some("abc123")
        );
        assert_eq!(
            sums_entry(sums, "ewindow-rpi-arm64.img.zst").as_deref(),
            Some("def456")
        );
        assert_eq!(sums_entry(sums, "manifest.txt"), None);
        let bmap = "<?xml version=\"1.0\" ?>\n<bmap version=\"2.0\">\n    \
                    <ImageSize> 337641472 </ImageSize>\n    <BlockSize> 4096 </BlockSize>\n";
        assert_eq!(bmap_image_size(bmap), Some(337_641_472));
        assert_eq!(bmap_image_size("<bmap/>"), None);
        assert_eq!(devnum(0xfe00), "254:0");
        assert_eq!(devnum((259 << 8) | 3), "259:3");
        // a minor above 255 (glibc's makedev)
        let big = (259u64 << 8) | ((300_000u64 & !0xff) << 12) | (300_000 & 0xff);
        assert_eq!(devnum(big), "259:300000");
    }

    /// Writes `text` to `path`, making its directories.
    fn put(path: &Path, text: &str) {
        fs::create_dir_all(path.parent().expect("a parent")).expect("mkdir");
        fs::write(path, text).expect("write");
    }

    #[test]
    fn facts_are_gathered_from_a_sysfs_tree() {
        // an SD card in a built-in reader: mmcblk0p1 mounted, dm-0 (LUKS on mmcblk0p2) swap
        let sys = std::env::temp_dir().join(format!("ewindow-flash-sys-{}", std::process::id()));
        let _ = fs::remove_dir_all(&sys);
        let disk = sys.join("devices/platform/mmc0/mmcblk0");
        put(&disk.join("dev"), "179:0\n");
        put(&disk.join("removable"), "0\n");
        put(&disk.join("ro"), "0\n");
        put(&disk.join("size"), "62333952\n");
        put(&disk.join("device/type"), "SD\n");
        put(&disk.join("device/name"), "SN32G\n");
        for (p, n, size) in [("mmcblk0p1", "1", "524288"), ("mmcblk0p2", "2", "61800000")] {
            put(&disk.join(p).join("partition"), n);
            put(&disk.join(p).join("size"), size);
            put(&disk.join(p).join("dev"), &format!("179:{n}\n"));
        }
        fs::create_dir_all(disk.join("mmcblk0p2/holders/dm-0")).expect("mkdir");
        put(&sys.join("devices/virtual/block/dm-0/dev"), "253:0\n");
        let class = sys.join("class/block");
        fs::create_dir_all(&class).expect("mkdir");
        let link = |target: &str, name: &str| {
            std::os::unix::fs::symlink(target, class.join(name)).expect("symlink")
        };
        link("../../devices/platform/mmc0/mmcblk0", "mmcblk0");
        link("../../devices/platform/mmc0/mmcblk0/mmcblk0p1", "mmcblk0p1");
        link("../../devices/platform/mmc0/mmcblk0/mmcblk0p2", "mmcblk0p2");
        link("../../devices/virtual/block/dm-0", "dm-0");
        let mountinfo = "22 1 254:0 / / rw - ext4 /dev/vda rw\n\
                         40 22 179:1 / /media/me/bootfs rw - vfat /dev/mmcblk0p1 rw\n";
        let swaps = "Filename Type Size Used Priority\n/dev/dm-0 partition 1 0 -2\n";
        let live = Live {
            sys: &sys,
            mountinfo,
            swaps,
            root_dev: "254:0",
        };
        let f = facts_of(Facts::default(), &live, "mmcblk0");
        let p1 = facts_of(Facts::default(), &live, "mmcblk0p1");
        // the same disk with `/` on dm-0 (LUKS on mmcblk0p2)
        let on_root = facts_of(
            Facts::default(),
            &Live {
                root_dev: "253:0",
                ..live
            },
            "mmcblk0",
        );
        let _ = fs::remove_dir_all(&sys);

        assert_eq!(f.partition_of, None);
        assert_eq!(f.device_type, "SD");
        assert_eq!(f.model, "SN32G");
        assert_eq!(f.size, 62_333_952 * 512);
        assert!(!f.removable && !f.read_only && !f.usb && !f.holds_root);
        assert_eq!(
            f.partitions,
            vec![
                ("mmcblk0p1".to_string(), 524_288 * 512),
                ("mmcblk0p2".to_string(), 61_800_000 * 512)
            ]
        );
        assert_eq!(
            f.mounts,
            vec![("mmcblk0p1".to_string(), "/media/me/bootfs".to_string())]
        );
        assert_eq!(f.swaps, vec!["dm-0".to_string()]);
        let v = decide(&f, false);
        assert_eq!(v.refused.len(), 2, "{v:?}");
        assert_eq!(p1.partition_of.as_deref(), Some("mmcblk0"));
        assert_eq!(p1.mounts, f.mounts);
        assert!(on_root.holds_root);
        assert!(decide(&on_root, true).refused.contains(&Refusal::HoldsRoot));
    }

    #[test]
    fn this_machines_root_disk_is_refused_even_with_force() {
        let sys = Path::new("/sys");
        let root = fs::metadata("/").expect("stat /");
        let num = devnum(root.dev());
        let Some(name) = kernel_name(sys, &num) else {
            eprintln!("skipped: / is on no block device here ({num}: a container's overlay?)");
            return;
        };
        let disk = whole_disk(sys, &name).expect("the root's whole disk");
        let dev = Path::new("/dev").join(&disk);
        let base = Facts {
            path: dev.clone(),
            resolved: dev.clone(),
            ..Facts::default()
        };
        let f = if dev.exists() {
            gather(&dev, 1 << 20).expect("gathering")
        } else {
            gather_block(base, &disk).expect("gathering")
        };
        assert!(f.block, "{f:?}");
        assert_eq!(f.name, disk);
        assert!(f.holds_root, "{f:?}");
        let v = decide(&f, true);
        assert!(v.refused.contains(&Refusal::HoldsRoot), "{v:?}");
        eprintln!("{}", describe(&f));
        for r in &v.refused {
            eprintln!("refused: {}", r.explain(&f));
        }
    }
}
