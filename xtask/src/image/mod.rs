//! `cargo xtask image`: the flashable disk image of a target, from the Debian packages its lock
//! pins and our release binaries. Nothing is compiled but our crates.
//!
//! Steps (each prints its progress; a failure names the step and why):
//! 1. our release binaries (`cargo build --release`, cross-built against the lock's sysroot
//!    for another architecture), stripped;
//! 2. the packages of the lock: `apt-get download` into `target/image/cache/`, sha256 checked,
//!    `dpkg-deb -x`;
//! 3. the ELF closure of the target's root files and our binaries;
//! 4. the kernel modules the services file loads, with their dependencies (`depmod`);
//! 5. the root filesystem as a sorted `newc` cpio (in RAM at run time: see
//!    `docs/image.md`), compressed with zstd;
//! 6. the boot files: a unified kernel image (systemd-boot's stub + kernel + initramfs +
//!    command line) for UEFI; for a Raspberry Pi its firmware, `config.txt`, `cmdline.txt`,
//!    the kernel, the initramfs and the boards' device trees;
//! 7. the disk: the partition table (GPT or MBR), the FAT boot partition with the boot files,
//!    the empty data partition;
//! 8. the outputs in `target/image/<target>/`: `.img`, `.img.zst`, `.bmap`, `manifest.txt`,
//!    `sizes.txt`, `SHA256SUMS` (and `os_list.json`, Raspberry Pi Imager's entry, for a Pi).
//!
//! Reproducible: every time in the image is `SOURCE_DATE_EPOCH` (the last commit's time unless
//! set), identifiers are fixed, file lists sorted. `--check-reproducible` builds twice in
//! two directories and compares every output byte for byte.

mod apt;
mod closure;
mod cpio;
mod debs;
mod disk;
mod imager;
mod kmod;
mod lock;
mod rootfs;
mod sysroot;
mod target;
mod uki;

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand};

pub use disk::{copy_range, tool};
pub use target::{Boot, Target};

/// Every image target (`image/<target>.toml`): what `cargo xtask test` builds and boots.
pub const TARGETS: &[&str] = &["qemu-x86_64", "rpi-arm64"];

/// `cargo xtask image …`
#[derive(Args)]
pub struct ImageArgs {
    #[command(subcommand)]
    cmd: Option<ImageCmd>,
    /// The target: a definition in `image/<target>.toml`.
    #[arg(long, default_value = "qemu-x86_64", global = true)]
    target: String,
    /// Build twice in two directories and compare every output byte for byte.
    #[arg(long)]
    check_reproducible: bool,
    /// Use the release binaries in target/release as they are (no `cargo build`).
    #[arg(long)]
    no_cargo: bool,
    /// Also measure each package's share of the compressed root filesystem (slow).
    #[arg(long)]
    sizes: bool,
    /// When the archive no longer has a pinned version (Debian's security archive drops old
    /// ones), resolve the lock again first and say what changed (the tests do: a fresh CI
    /// run must not fail the day a kernel is superseded). Without it such a lock is refused.
    #[arg(long)]
    relock_if_gone: bool,
}

impl ImageArgs {
    /// `--target TARGET --check-reproducible`, as the tests run it.
    pub fn reproducibility_check(target: &str) -> ImageArgs {
        ImageArgs {
            cmd: None,
            target: target.into(),
            check_reproducible: true,
            no_cargo: false,
            sizes: false,
            relock_if_gone: true,
        }
    }
}

#[derive(Subcommand)]
enum ImageCmd {
    /// Resolve the package set again (the roots and their ELF closure at the archive's
    /// current versions) and rewrite the lock file.
    Lock,
}

/// Runs `cargo xtask image`.
pub fn run(args: ImageArgs) -> Result<()> {
    let repo = crate::root();
    let target = Target::load(&repo, &args.target)?;
    match args.cmd {
        Some(ImageCmd::Lock) => rootfs::lock(&repo, &target),
        None => {
            // one build: binaries + 7 steps; a check: binaries, the downloads, two builds of
            // 7, the comparison
            let mut steps = Steps::new(if args.check_reproducible { 3 } else { 8 });
            let cache = cache(&repo, &target)?;
            if args.relock_if_gone {
                relock_if_gone(&repo, &target, &cache)?;
            }
            let bins = steps.run("our release binaries", || {
                let lock = read_lock(&repo, &target)?;
                our_binaries(&repo, &target, &cache, &lock.sysroot, !args.no_cargo)
            })?;
            let out = repo.join("target/image").join(&target.name);
            if !args.check_reproducible {
                build(&repo, &target, &bins, &out, args.sizes, &mut steps, "")?;
                return Ok(());
            }
            // Two builds side by side (one core each), in two directories, from the same
            // inputs: the lock's packages (downloaded once, here) and our binaries.
            steps.run("downloading the lock's packages", || {
                let lock = read_lock(&repo, &target)?;
                for (name, pin) in &lock.packages {
                    cache.get(name, &pin.version, Some(&pin.sha256))?;
                }
                Ok(())
            })?;
            let other = repo.join("target/image/check").join(&target.name);
            let (a, b) = std::thread::scope(|s| {
                let a = s.spawn(|| {
                    let mut steps = Steps::new(7).prefixed("[a] ");
                    build(&repo, &target, &bins, &out, false, &mut steps, "[a] ")
                });
                let b = s.spawn(|| {
                    // a few seconds later: a time stamp that leaks into an output differs
                    std::thread::sleep(std::time::Duration::from_secs(3));
                    let mut steps = Steps::new(7).prefixed("[b] ");
                    build(&repo, &target, &bins, &other, false, &mut steps, "[b] ")
                });
                (a.join(), b.join())
            });
            a.map_err(|_| anyhow::anyhow!("build a panicked"))??;
            b.map_err(|_| anyhow::anyhow!("build b panicked"))??;
            steps.run("comparing the two builds byte for byte", || {
                compare(&out, &other, &target.name)
            })?;
            Ok(())
        }
    }
}

/// Prints each step with its number and time; a failure names the step.
pub struct Steps {
    n: usize,
    total: usize,
    prefix: &'static str,
    started: Instant,
}

impl Steps {
    fn new(total: usize) -> Steps {
        Steps {
            n: 0,
            total,
            prefix: "",
            started: Instant::now(),
        }
    }

    fn prefixed(mut self, prefix: &'static str) -> Steps {
        self.prefix = prefix;
        self
    }

    /// Runs one step.
    pub fn run<T>(&mut self, what: &str, f: impl FnOnce() -> Result<T>) -> Result<T> {
        self.n += 1;
        let t = Instant::now();
        eprintln!(
            "{}[{}/{}] {what} …  (at {:.1} s)",
            self.prefix,
            self.n,
            self.total,
            self.started.elapsed().as_secs_f64()
        );
        let r = f().with_context(|| format!("step {}/{} ({what}) failed", self.n, self.total));
        if r.is_ok() {
            eprintln!(
                "{}[{}/{}] {what}: done in {:.1} s",
                self.prefix,
                self.n,
                self.total,
                t.elapsed().as_secs_f64()
            );
        }
        r
    }
}

/// `SOURCE_DATE_EPOCH`, or the last commit's time.
pub fn source_date_epoch(repo: &Path) -> Result<u64> {
    if let Ok(v) = std::env::var("SOURCE_DATE_EPOCH") {
        return v
            .trim()
            .parse()
            .with_context(|| format!("SOURCE_DATE_EPOCH={v} is not a number"));
    }
    let out = Command::new("git")
        .args(["log", "-1", "--format=%ct"])
        .current_dir(repo)
        .output()
        .context("running git")?;
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .context("no commit time from git log (set SOURCE_DATE_EPOCH)")
}

/// The commit the image is built from (`-dirty` when the tree has changes); the same with or
/// without tags in the clone.
pub fn commit(repo: &Path) -> String {
    let git = |args: &[&str]| {
        Command::new("git")
            .args(args)
            .current_dir(repo)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
    };
    let Some(head) = git(&["rev-parse", "--short=12", "HEAD"]) else {
        return "unknown".into();
    };
    match git(&["status", "--porcelain", "--untracked-files=no"]) {
        Some(s) if s.is_empty() => head,
        _ => format!("{head}-dirty"),
    }
}

/// `rustc -V`, for the manifest.
fn rustc_version() -> String {
    Command::new("rustc")
        .arg("-V")
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default()
}

/// The package cache and the apt of `target`'s architecture.
pub fn cache(repo: &Path, target: &Target) -> Result<debs::Cache> {
    let apt = apt::Apt::new(
        &target.arch,
        &target.components,
        &repo.join("target/image/apt"),
    )?;
    Ok(debs::Cache::new(repo.join("target/image/cache"), apt))
}

/// Builds the release binaries (for a cross-built target against the sysroot of the lock's
/// `sysroot` pins, in `target/image/sysroot/<target>/`) and strips them into
/// `target/image/bin/<target>/`.
fn our_binaries(
    repo: &Path,
    target: &Target,
    cache: &debs::Cache,
    sysroot_pins: &BTreeMap<String, lock::Pin>,
    build: bool,
) -> Result<BTreeMap<String, PathBuf>> {
    if build {
        let mut args = vec!["build", "--release", "--locked"];
        if let Some(t) = &target.rust_target {
            args.extend(["--target", t.as_str()]);
        }
        for b in &target.binaries {
            args.extend(["--bin", b.as_str()]);
        }
        // The paths compiled into the binaries (panic locations) are the same wherever the
        // repository and the cargo registry are.
        let home = std::env::var("HOME").unwrap_or_default();
        let cargo_home = std::env::var("CARGO_HOME").unwrap_or_else(|_| format!("{home}/.cargo"));
        let flags = vec![
            format!("--remap-path-prefix={}=/ewindow", repo.display()),
            format!("--remap-path-prefix={cargo_home}=/cargo"),
        ];
        let env = match &target.rust_target {
            Some(rust) => {
                sysroot::ensure_rust_target(rust)?;
                let dir = repo.join("target/image/sysroot").join(&target.name);
                sysroot::assemble(cache, sysroot_pins, &dir)?;
                sysroot::cargo_env(target, &dir, &flags)
            }
            None => vec![("CARGO_ENCODED_RUSTFLAGS".into(), flags.join("\u{1f}"))],
        };
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        crate::cargo_env(&args, &env)?;
    }
    let dir = repo.join("target/image/bin").join(&target.name);
    fs::create_dir_all(&dir)?;
    let strip = match &target.rust_target {
        Some(_) => format!("{}-strip", target.triplet),
        None => "strip".into(),
    };
    let mut out = BTreeMap::new();
    for b in &target.binaries {
        let src = repo.join(target.release_dir()).join(b);
        if !src.is_file() {
            bail!(
                "{} is missing (cargo xtask image --target {} builds it)",
                src.display(),
                target.name
            );
        }
        let dst = dir.join(b);
        disk::tool(
            Command::new(&strip)
                .args(["--strip-all", "-o"])
                .arg(&dst)
                .arg(&src),
        )?;
        out.insert(b.clone(), dst);
    }
    Ok(out)
}

/// The pins of `lock` the archive no longer has (and the cache does not hold).
fn gone(cache: &debs::Cache, lock: &lock::Lock) -> Result<Vec<(String, String)>> {
    let mut out = Vec::new();
    for (name, pin) in lock.packages.iter().chain(&lock.sysroot) {
        if !cache.available(name, &pin.version)? {
            out.push((name.clone(), pin.version.clone()));
        }
    }
    Ok(out)
}

/// When pins are gone from the archive: the lock resolved again (the same as `cargo xtask
/// image lock`), and what changed printed. The builds that follow still run twice and are
/// compared byte for byte, and the boot tests run on the new lock.
fn relock_if_gone(repo: &Path, target: &Target, cache: &debs::Cache) -> Result<()> {
    let before = read_lock(repo, target)?;
    let missing = gone(cache, &before)?;
    if missing.is_empty() {
        return Ok(());
    }
    let list: Vec<String> = missing.iter().map(|(n, v)| format!("{n} {v}")).collect();
    eprintln!(
        "xtask: the archive no longer has {} of {}'s lock: resolving it again \
         (a release build would refuse: run `cargo xtask image lock --target {}`)",
        list.join(", "),
        target.name,
        target.name
    );
    rootfs::lock(repo, target)?;
    let after = read_lock(repo, target)?;
    for (name, pin) in &after.packages {
        match before.packages.get(name) {
            Some(old) if old.version == pin.version => {}
            Some(old) => eprintln!("  {name}: {} → {}", old.version, pin.version),
            None => eprintln!("  + {name} {}", pin.version),
        }
    }
    for name in before
        .packages
        .keys()
        .filter(|n| !after.packages.contains_key(*n))
    {
        eprintln!("  - {name}");
    }
    Ok(())
}

/// The target's lock file.
fn read_lock(repo: &Path, target: &Target) -> Result<lock::Lock> {
    let path = target.lock_path(repo);
    let text = fs::read_to_string(&path).with_context(|| {
        format!(
            "reading {} (make it: cargo xtask image lock --target {})",
            path.display(),
            target.name
        )
    })?;
    lock::Lock::parse(&text).with_context(|| format!("in {}", path.display()))
}

/// One build of the image into `out`.
fn build(
    repo: &Path,
    target: &Target,
    bins: &BTreeMap<String, PathBuf>,
    out: &Path,
    sizes: bool,
    steps: &mut Steps,
    tag: &str,
) -> Result<()> {
    let epoch = source_date_epoch(repo)?;
    let commit = commit(repo);
    let work = out.join("work");
    let _ = fs::remove_dir_all(out);
    fs::create_dir_all(&work).with_context(|| format!("creating {}", work.display()))?;
    let cache = cache(repo, target)?;

    let lock = steps.run("packages (apt-get download, sha256, dpkg-deb -x)", || {
        let lock = read_lock(repo, target)?;
        let mut got = BTreeMap::new();
        for (k, (name, pin)) in lock.packages.iter().enumerate() {
            if tag.is_empty() && (k % 25 == 0 || k + 1 == lock.packages.len()) {
                eprintln!("  {}/{} {name}", k + 1, lock.packages.len());
            }
            let u = cache.get(name, &pin.version, Some(&pin.sha256))?;
            got.insert(name.clone(), u);
        }
        Ok((lock, got))
    })?;
    let (lock, pkgs) = lock;

    let set = steps.run("ELF closure", || rootfs::select(target, &pkgs, bins))?;

    let kernel = pkgs
        .get(&lock.kernel)
        .context("the lock's kernel is not among its packages")?;
    let modules = steps.run("kernel modules", || {
        rootfs::modules(repo, target, kernel, &work)
    })?;

    let initrd = work.join("initrd.cpio.zst");
    let stats = steps.run("root filesystem (newc cpio, zstd -19)", || {
        let tree = rootfs::tree(repo, target, &set, &modules, &commit)?;
        rootfs::write_initramfs(&tree, epoch as u32, &work, &initrd)
    })?;

    let boot = steps.run("boot files", || {
        boot_files(
            target,
            &pkgs,
            kernel,
            &modules.release,
            &initrd,
            &rootfs::os_release(&commit),
            epoch,
            &work,
        )
    })?;

    let img = out.join(format!("ewindow-{}.img", target.name));
    steps.run("disk image (partition table, boot, data)", || {
        let files: Vec<(&str, &Path)> = boot
            .iter()
            .map(|(d, s)| (d.as_str(), s.as_path()))
            .collect();
        disk::make(&target.disk, &files, epoch, &work, &img)
    })?;

    steps.run("outputs (.img.zst, .bmap, manifest, SHA256SUMS)", || {
        outputs(
            target,
            &lock,
            &pkgs,
            &set,
            &img,
            out,
            &commit,
            epoch,
            &modules.release,
        )?;
        let vmlinuz = kernel
            .root
            .join(format!("boot/vmlinuz-{}", modules.release));
        let report = rootfs::sizes_report(&set, &stats, &modules, &vmlinuz, sizes)?;
        fs::write(out.join("sizes.txt"), report)?;
        fs::remove_dir_all(&work)?;
        if tag.is_empty() {
            for f in fs::read_dir(out)?.flatten() {
                let len = f.metadata().map(|m| m.len()).unwrap_or(0);
                eprintln!("  {:>12}  {}", len, f.path().display());
            }
        }
        Ok(())
    })?;
    Ok(())
}

#[allow(clippy::too_many_arguments)]
fn outputs(
    target: &Target,
    lock: &lock::Lock,
    pkgs: &BTreeMap<String, debs::Unpacked>,
    set: &rootfs::Selection,
    img: &Path,
    out: &Path,
    commit: &str,
    epoch: u64,
    release: &str,
) -> Result<()> {
    let name = img
        .file_name()
        .and_then(|n| n.to_str())
        .context("image name")?
        .to_string();
    disk::tool(
        Command::new("zstd")
            .args(["-q", "-f", "-T1", "-19"])
            .arg(img)
            .arg("-o")
            .arg(img.with_extension("img.zst")),
    )?;
    disk::tool(
        Command::new("bmaptool")
            .args(["-q", "create", "-o"])
            .arg(img.with_extension("img.bmap"))
            .arg(img),
    )?;
    let in_image: BTreeSet<&String> = set.packages().collect();
    let mut m = format!(
        "ewindow {} commit {commit} SOURCE_DATE_EPOCH {epoch} kernel {release}\n\
         # our binaries built by {}\n\
         # Debian packages in the image (files of their ELF closure), then build inputs (+)\n",
        target.name,
        rustc_version()
    );
    for p in &in_image {
        if let Some(u) = pkgs.get(*p) {
            m.push_str(&format!("{p} {}\n", u.version));
        }
    }
    for (p, pin) in &lock.packages {
        if !in_image.contains(p) {
            m.push_str(&format!("+{p} {}\n", pin.version));
        }
    }
    for (p, pin) in &lock.sysroot {
        m.push_str(&format!("+sysroot {p} {}\n", pin.version));
    }
    fs::write(out.join("manifest.txt"), m)?;
    if let Boot::Raspi { .. } = target.boot {
        let zst = out.join(format!("{name}.zst"));
        let entry = imager::Entry {
            name: format!("ewindow ({commit})"),
            description: target.description.clone(),
            file: format!("{name}.zst"),
            extract_size: fs::metadata(img)?.len(),
            extract_sha256: debs::sha256_file(img)?,
            download_size: fs::metadata(&zst)?.len(),
            download_sha256: debs::sha256_file(&zst)?,
            epoch,
        };
        fs::write(out.join("os_list.json"), imager::os_list(&entry))?;
    }
    let mut sums = String::new();
    for f in [
        name.clone(),
        format!("{name}.zst"),
        format!("{name}.bmap"),
        "manifest.txt".into(),
    ] {
        sums.push_str(&format!("{}  {f}\n", debs::sha256_file(&out.join(&f))?));
    }
    fs::write(out.join("SHA256SUMS"), sums)?;
    Ok(())
}

/// The floor for the boot-time figure: the same kernel and stub, an initramfs of busybox
/// alone whose `/init` prints the kernel's uptime and powers off. Written to
/// `target/image/floor/<target>/floor.img`.
pub fn build_floor(repo: &Path, target: &Target) -> Result<PathBuf> {
    let epoch = source_date_epoch(repo)?;
    let out = repo.join("target/image/floor").join(&target.name);
    let work = out.join("work");
    let _ = fs::remove_dir_all(&out);
    fs::create_dir_all(&work)?;
    let lock = read_lock(repo, target)?;
    let cache = cache(repo, target)?;
    let get = |name: &str| -> Result<debs::Unpacked> {
        let pin = lock
            .packages
            .get(name)
            .with_context(|| format!("{name} is not in the lock"))?;
        cache.get(name, &pin.version, Some(&pin.sha256))
    };
    let kernel = get(&lock.kernel)?;
    let busybox = get("busybox-static")?;
    let mut pkgs = BTreeMap::new();
    for p in target.boot_packages() {
        pkgs.insert(p.clone(), get(&p)?);
    }
    let release = rootfs::kernel_release(&kernel)?;
    let init = "#!/bin/busybox sh\n\
                /bin/busybox mount -t proc proc /proc\n\
                echo \"FLOOR: busybox /init running, uptime_s=$(/bin/busybox cut -d' ' -f1 /proc/uptime)\"\n\
                /bin/busybox poweroff -f\n";
    let mut t = cpio::Tree::default();
    let busybox = busybox.root.join("bin/busybox");
    t.add(
        "bin/busybox",
        cpio::Node::File {
            mode: 0o755,
            source: busybox,
        },
    )?;
    t.add("proc", cpio::Node::Dir { mode: 0o755 })?;
    t.add(
        "dev/console",
        cpio::Node::CharDev {
            mode: 0o600,
            major: 5,
            minor: 1,
        },
    )?;
    t.add(
        "init",
        cpio::Node::Data {
            mode: 0o755,
            data: init.as_bytes().to_vec(),
        },
    )?;
    let initrd = work.join("initrd.cpio.zst");
    rootfs::write_initramfs(&t, epoch as u32, &work, &initrd)?;
    let osrel = "NAME=\"ewindow floor\"\nID=ewindow\n";
    let boot = boot_files(
        target, &pkgs, &kernel, &release, &initrd, osrel, epoch, &work,
    )?;
    let files: Vec<(&str, &Path)> = boot
        .iter()
        .map(|(d, s)| (d.as_str(), s.as_path()))
        .collect();
    let img = out.join("floor.img");
    disk::make(&target.disk, &files, epoch, &work, &img)?;
    Ok(img)
}

/// The boot partition's files (path on it, source) for the kernel package's `release` with
/// `initrd`: UEFI's unified kernel image, or the Raspberry Pi's firmware, configuration,
/// kernel, initramfs and device trees.
#[allow(clippy::too_many_arguments)]
fn boot_files(
    target: &Target,
    pkgs: &BTreeMap<String, debs::Unpacked>,
    kernel: &debs::Unpacked,
    release: &str,
    initrd: &Path,
    osrel: &str,
    epoch: u64,
    work: &Path,
) -> Result<Vec<(String, PathBuf)>> {
    let pkg = |name: &str| {
        pkgs.get(name)
            .with_context(|| format!("{name} is not in the lock"))
    };
    let linux = kernel.root.join(format!("boot/vmlinuz-{release}"));
    match &target.boot {
        Boot::Uefi { stub, path } => {
            let stub = pkg(&stub.package)?.root.join(&stub.path);
            let mut sections = Vec::new();
            for (name, text) in [
                ("osrel", osrel),
                ("cmdline", &target.cmdline),
                ("uname", release),
            ] {
                let f = work.join(format!("{name}.txt"));
                fs::write(&f, text)?;
                sections.push((name, f));
            }
            sections.push(("linux", linux));
            sections.push(("initrd", initrd.to_path_buf()));
            let sections: Vec<(&str, &Path)> =
                sections.iter().map(|(n, f)| (*n, f.as_path())).collect();
            let uki = work.join("BOOTX64.EFI");
            uki::build(&stub, &sections, epoch as u32, &uki)?;
            Ok(vec![(path.clone(), uki)])
        }
        Boot::Raspi {
            firmware,
            dtbs,
            button,
            config,
        } => {
            let fw = pkg(&firmware.package)?;
            let base = |p: &str| p.rsplit('/').next().unwrap_or(p).to_string();
            let mut files = Vec::new();
            for p in &firmware.paths {
                let src = fw.root.join(p);
                if !src.is_file() {
                    bail!("{} ships no {p}", firmware.package);
                }
                files.push((base(p), src));
            }
            for d in dtbs {
                let src = kernel
                    .root
                    .join(format!("usr/lib/linux-image-{release}/{d}"));
                if !src.is_file() {
                    bail!("the kernel package {} ships no {d}", kernel.name);
                }
                match button {
                    Some(b) => {
                        let out = work.join(base(d));
                        fs::copy(&src, &out)?;
                        add_gpio_button(&out, b)?;
                        files.push((base(d), out));
                    }
                    None => files.push((base(d), src)),
                }
            }
            let config_txt = work.join("config.txt");
            fs::write(&config_txt, config.trim_start())?;
            let cmdline_txt = work.join("cmdline.txt");
            fs::write(&cmdline_txt, format!("{}\n", target.cmdline))?;
            files.push(("config.txt".into(), config_txt));
            files.push(("cmdline.txt".into(), cmdline_txt));
            files.push(("vmlinuz".into(), linux));
            files.push(("initrd.img".into(), initrd.to_path_buf()));
            Ok(files)
        }
    }
}

/// Adds the window's GPIO button to a device tree: a `gpio-keys` node at the root, one key
/// on `button.gpio` of `button.controller`, active low with the pull-up on (flags 1 | 16),
/// sending the window's default button key. With `fdtput` (device-tree-compiler): Debian's
/// device trees have no `__symbols__`, so an overlay could not name the controller.
fn add_gpio_button(dtb: &Path, button: &target::GpioButton) -> Result<()> {
    let run = |args: &[&str]| -> Result<String> {
        let out = std::process::Command::new(args[0])
            .args(&args[1..])
            .output()
            .with_context(|| {
                format!("running {} (apt-get install device-tree-compiler)", args[0])
            })?;
        if !out.status.success() {
            bail!(
                "{} on {}: {}",
                args.join(" "),
                dtb.display(),
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
    };
    let f = dtb.to_str().context("device tree path")?;
    let phandle = run(&["fdtget", "-t", "u", f, &button.controller, "phandle"])?;
    let node = format!("/{}", target::GPIO_BUTTON_NAME);
    let key = format!("{node}/button");
    let gpio = button.gpio.to_string();
    let code = ewindow_protocol::button::DEFAULT_KEY_CODE.to_string();
    run(&["fdtput", "-c", f, &node])?;
    run(&["fdtput", "-t", "s", f, &node, "compatible", "gpio-keys"])?;
    run(&[
        "fdtput",
        "-t",
        "s",
        f,
        &node,
        "label",
        target::GPIO_BUTTON_NAME,
    ])?;
    run(&["fdtput", "-c", f, &key])?;
    run(&["fdtput", "-t", "s", f, &key, "label", "window button"])?;
    run(&["fdtput", "-t", "u", f, &key, "gpios", &phandle, &gpio, "17"])?;
    run(&["fdtput", "-t", "u", f, &key, "linux,code", &code])?;
    run(&["fdtput", "-t", "u", f, &key, "debounce-interval", "10"])?;
    Ok(())
}

/// Compares every file of two output directories; names the first difference.
fn compare(a: &Path, b: &Path, target: &str) -> Result<()> {
    let mut names: Vec<String> = fs::read_dir(a)?
        .flatten()
        .filter(|e| e.path().is_file())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    if !names.iter().any(|n| n == &format!("ewindow-{target}.img")) {
        bail!("{} has no image", a.display());
    }
    let mut bad = Vec::new();
    for n in &names {
        let x = fs::read(a.join(n))?;
        let y =
            fs::read(b.join(n)).with_context(|| format!("{n} is missing from {}", b.display()))?;
        match x.iter().zip(&y).position(|(p, q)| p != q) {
            None if x.len() == y.len() => eprintln!("  same: {n} ({} bytes)", x.len()),
            None => bad.push(format!("{n}: lengths differ ({} and {})", x.len(), y.len())),
            Some(at) => bad.push(format!(
                "{n}: first difference at byte {at} ({:#04x} and {:#04x})",
                x[at], y[at]
            )),
        }
    }
    if !bad.is_empty() {
        bail!("not reproducible:\n  {}", bad.join("\n  "));
    }
    eprintln!("reproducible: {} outputs identical", names.len());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The day the archive drops a pinned version: that pin is told apart from one the
    /// archive has (its current version of the same package), so the tests resolve the lock
    /// again instead of failing on the download.
    #[test]
    fn a_pin_the_archive_no_longer_has_is_told_apart() {
        let repo = crate::root();
        let target = Target::load(&repo, "qemu-x86_64").unwrap();
        let cache = cache(&repo, &target).unwrap();
        let current = debs::candidate(&cache.apt, "busybox-static")
            .unwrap()
            .expect("the archive has busybox-static");
        let pin = |version: &str| lock::Pin {
            version: version.into(),
            sha256: "0".repeat(64),
        };
        let mut lock = lock::Lock::default();
        lock.packages.insert("busybox-static".into(), pin(&current));
        lock.packages
            .insert("dropbear-bin".into(), pin("0.0-no-longer-in-the-archive"));
        assert_eq!(
            gone(&cache, &lock).unwrap(),
            vec![(
                "dropbear-bin".to_string(),
                "0.0-no-longer-in-the-archive".to_string()
            )]
        );
    }
}
