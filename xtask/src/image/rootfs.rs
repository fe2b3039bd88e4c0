//! What goes in the root filesystem: the selection (roots + ELF closure), the kernel modules,
//! busybox's applets, `overlays/`, the few files no package provides; and the lock resolution
//! that finds the packages the closure needs.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};

use super::closure::closure;
use super::cpio::{Node, Tree};
use super::debs::{self, Entry, Kind, Unpacked};
use super::disk::tool;
use super::kmod;
use super::lock::{Lock, Pin};
use super::target::{matches, Target};
use ewindow_protocol::programs::{IN_MULTICALL, MULTICALL};

/// Our binaries' pseudo-package.
const OURS: &str = "ewindow";

/// The files of the root filesystem that come from packages and our binaries.
pub struct Selection {
    /// Canonical path → where it comes from.
    pub files: BTreeMap<String, Entry>,
}

impl Selection {
    /// The Debian packages with a file in the selection.
    pub fn packages(&self) -> impl Iterator<Item = &String> {
        self.files
            .values()
            .map(|e| &e.package)
            .filter(|p| p.as_str() != OURS)
            .collect::<BTreeSet<_>>()
            .into_iter()
    }
}

fn index(
    pkgs: &BTreeMap<String, Unpacked>,
    bins: &BTreeMap<String, PathBuf>,
) -> Result<BTreeMap<String, Entry>> {
    let mut index = BTreeMap::new();
    for (name, src) in bins {
        index.insert(
            format!("usr/bin/{name}"),
            Entry {
                package: OURS.into(),
                source: src.clone(),
                kind: Kind::File,
            },
        );
    }
    for u in pkgs.values() {
        debs::index_package(&mut index, u)?;
    }
    Ok(index)
}

fn roots(target: &Target, index: &BTreeMap<String, Entry>) -> Result<Vec<String>> {
    let mut roots: Vec<String> = target
        .binaries
        .iter()
        .map(|b| format!("usr/bin/{b}"))
        .collect();
    for f in &target.files {
        for pat in &f.paths {
            let hits: Vec<&String> = index
                .iter()
                .filter(|(p, e)| e.package == f.package && matches(pat, p))
                .map(|(p, _)| p)
                .collect();
            if hits.is_empty() {
                bail!("`{pat}` matches nothing in {}", f.package);
            }
            roots.extend(hits.into_iter().cloned());
        }
    }
    Ok(roots)
}

/// The selection for a build; every library must be found in the lock's packages.
pub fn select(
    target: &Target,
    pkgs: &BTreeMap<String, Unpacked>,
    bins: &BTreeMap<String, PathBuf>,
) -> Result<Selection> {
    for f in &target.files {
        if !pkgs.contains_key(&f.package) {
            bail!(
                "{} (in image/{}.toml) is not in the lock: cargo xtask image lock",
                f.package,
                target.name
            );
        }
    }
    let index = index(pkgs, bins)?;
    let c = closure(&index, &roots(target, &index)?, &target.triplet)?;
    if !c.unresolved.is_empty() {
        let list: Vec<String> = c
            .unresolved
            .iter()
            .map(|(so, (pkg, by))| format!("{so} (needed by /{by} of {pkg})"))
            .collect();
        bail!(
            "the lock's packages do not hold these libraries: {}; refresh the lock: cargo xtask image lock",
            list.join(", ")
        );
    }
    let files = c
        .selected
        .into_iter()
        .filter_map(|p| index.get(&p).cloned().map(|e| (p, e)))
        .collect();
    Ok(Selection { files })
}

/// The kernel modules of the image.
pub struct Modules {
    /// The kernel release (`6.1.0-56-amd64`).
    pub release: String,
    /// `lib/modules/<release>` with the selected modules and depmod's files.
    pub dir: PathBuf,
}

/// The `[system] modules` and `device_modules` of a services file, read with init's own
/// parser: a file init would refuse at boot fails the build, with the same file:line:key
/// message.
pub fn wanted_modules(services: &Path) -> Result<Vec<String>> {
    let config = ewindow_init::config::load(services).map_err(|e| anyhow::anyhow!("{e}"))?;
    let sys = config.system;
    Ok(sys.modules.into_iter().chain(sys.device_modules).collect())
}

/// Copies the modules the services file loads (and their dependencies) into
/// `work/modules/lib/modules/<release>` and runs `depmod` there.
pub fn modules(repo: &Path, target: &Target, kernel: &Unpacked, work: &Path) -> Result<Modules> {
    let kroot = kernel.root.join("lib/modules");
    let release = &kernel_release(kernel)?;
    let services = repo.join(&target.services);
    let wanted = wanted_modules(&services)?;
    let kdir = kroot.join(release);
    let chosen = kmod::module_closure(&kdir, &wanted)
        .with_context(|| format!("the modules of {}", services.display()))?;
    let base = work.join("modules");
    let dir = base.join("lib/modules").join(release);
    let _ = fs::remove_dir_all(&base);
    for m in &chosen {
        let dst = dir.join(m);
        fs::create_dir_all(dst.parent().context("module path")?)?;
        fs::copy(kdir.join(m), &dst)?;
    }
    for f in [
        "modules.order",
        "modules.builtin",
        "modules.builtin.modinfo",
    ] {
        fs::copy(kdir.join(f), dir.join(f)).with_context(|| format!("copying {f}"))?;
    }
    // -C: an empty configuration, not the build machine's /etc/depmod.d
    let conf = work.join("depmod.d");
    fs::create_dir_all(&conf)?;
    tool(
        Command::new("depmod")
            .arg("-C")
            .arg(&conf)
            .arg("-b")
            .arg(&base)
            .arg(release),
    )?;
    eprintln!(
        "  {} modules for the {} in the services file",
        chosen.len(),
        wanted.len()
    );
    Ok(Modules {
        release: release.clone(),
        dir,
    })
}

/// The one kernel release (`6.1.0-56-amd64`) a kernel package ships modules for.
pub fn kernel_release(kernel: &Unpacked) -> Result<String> {
    let mut releases: Vec<String> = fs::read_dir(kernel.root.join("lib/modules"))
        .with_context(|| format!("{} has no lib/modules", kernel.name))?
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    releases.sort();
    match releases.as_slice() {
        [one] => Ok(one.clone()),
        _ => bail!(
            "{} ships {} kernel releases, not one",
            kernel.name,
            releases.len()
        ),
    }
}

/// `/usr/lib/os-release`.
pub fn os_release(commit: &str) -> String {
    format!(
        "NAME=\"ewindow\"\nID=ewindow\nPRETTY_NAME=\"ewindow ({commit})\"\nVERSION_ID={commit}\n\
         HOME_URL=\"https://github.com/ewindow\"\n"
    )
}

/// The mode a file or directory gets in the image: 0755 for directories and anything
/// executable, 0644 otherwise — never the build machine's umask or checkout modes.
fn mode_of(path: &Path) -> Result<u32> {
    let m = fs::symlink_metadata(path).with_context(|| format!("{}", path.display()))?;
    Ok(if m.is_dir() || m.permissions().mode() & 0o111 != 0 {
        0o755
    } else {
        0o644
    })
}

/// The whole root filesystem.
pub fn tree(
    repo: &Path,
    target: &Target,
    set: &Selection,
    modules: &Modules,
    commit: &str,
) -> Result<Tree> {
    let mut t = Tree::default();
    for d in [
        "dev", "proc", "sys", "run", "data", "mnt", "etc", "usr/bin", "usr/sbin", "usr/lib",
    ] {
        t.add(d, Node::Dir { mode: 0o755 })?;
    }
    t.add("tmp", Node::Dir { mode: 0o1777 })?;
    t.add("root", Node::Dir { mode: 0o700 })?;
    t.add("root/.ssh", Node::Dir { mode: 0o700 })?;
    for (link, to) in [
        ("bin", "usr/bin"),
        ("sbin", "usr/sbin"),
        ("lib", "usr/lib"),
        ("lib64", "usr/lib64"),
        ("var/tmp", "/tmp"),
        ("var/run", "/run"),
        ("init", "usr/bin/ewindow-init"),
        ("etc/mtab", "/proc/self/mounts"),
        ("etc/resolv.conf", "/run/resolv.conf"),
        ("etc/os-release", "../usr/lib/os-release"),
        // SSH: the keys and the host key live on /data, made on the device
        ("root/.ssh/authorized_keys", "/data/ewindow/authorized_keys"),
        // dropbear's host key beside the identity key (the directory the overlay makes)
        ("etc/dropbear", "/data/ewindow"),
        // OpenNTPD's privilege-separation home and state, made by the `time` service
        ("var/lib/openntpd", "/run/openntpd"),
    ] {
        t.add(link, Node::Link(to.into()))?;
    }
    // the programs of the multi-call binary, each a link by the name it runs as
    if target.binaries.iter().any(|b| b == MULTICALL) {
        for name in IN_MULTICALL {
            t.add(&format!("usr/bin/{name}"), Node::Link(MULTICALL.into()))?;
        }
    }
    // the kernel opens /dev/console before /init runs and before devtmpfs is mounted
    t.add(
        "dev/console",
        Node::CharDev {
            mode: 0o600,
            major: 5,
            minor: 1,
        },
    )?;
    for (p, e) in &set.files {
        let node = match &e.kind {
            Kind::Link(to) => Node::Link(to.clone()),
            Kind::File => Node::File {
                mode: mode_of(&e.source)?,
                source: e.source.clone(),
            },
        };
        t.add(p, node)?;
    }
    // busybox's applets where no package put a program (its list, run under the target's
    // emulator when the build machine cannot run it)
    let busybox = set
        .files
        .get("usr/bin/busybox")
        .context("busybox is not in the image")?;
    let mut cmd = match target.runner() {
        Some(r) => {
            let mut c = Command::new(r);
            c.arg(&busybox.source);
            c
        }
        None => Command::new(&busybox.source),
    };
    let out = cmd.arg("--list-full").output().with_context(|| {
        format!(
            "running busybox --list-full{}",
            target
                .runner()
                .map(|r| format!(" under {r} (apt-get install qemu-user)"))
                .unwrap_or_default()
        )
    })?;
    if !out.status.success() || out.stdout.is_empty() {
        bail!("busybox --list-full listed no applets ({})", out.status);
    }
    for a in String::from_utf8_lossy(&out.stdout).lines() {
        let a = super::target::canonical(a);
        if a.is_empty() || a == "usr/sbin/init" || a == "linuxrc" || t.contains(&a) {
            continue;
        }
        t.add(&a, Node::Link("/usr/bin/busybox".into()))?;
    }
    // the kernel modules
    add_dir(
        &mut t,
        &modules.dir,
        &format!("usr/lib/modules/{}", modules.release),
    )?;
    // the target's overlays (minus a README at their top), the services file among them
    for o in &target.overlays {
        add_dir(&mut t, &repo.join(o), "")?;
    }
    let services = target
        .overlays
        .iter()
        .find_map(|o| target.services.strip_prefix(o).ok())
        .map(|p| super::target::canonical(&p.to_string_lossy()));
    if !services.is_some_and(|p| t.contains(&p)) {
        bail!(
            "{} is not in the target's overlays",
            target.services.display()
        );
    }
    for (p, mode, text) in etc_files(commit) {
        t.add(
            p,
            Node::Data {
                mode,
                data: text.into_bytes(),
            },
        )?;
    }
    Ok(t)
}

fn etc_files(commit: &str) -> Vec<(&'static str, u32, String)> {
    vec![
        (
            "etc/passwd",
            0o644,
            "root:x:0:0:root:/root:/bin/sh\n\
             ntpd:x:101:101:OpenNTPD privilege separation:/var/lib/openntpd:/bin/false\n"
                .into(),
        ),
        // audio: alsa-lib's default device (dmix/dsnoop) shares its buffer with this group
        // (`ipc_gid audio`); without it "default" fails to open
        (
            "etc/group",
            0o644,
            "root:x:0:\naudio:x:29:\nntpd:x:101:\n".into(),
        ),
        // no password can log in: SSH keys only
        (
            "etc/shadow",
            0o600,
            "root:*::0:99999:7:::\nntpd:*::0:99999:7:::\n".into(),
        ),
        ("etc/shells", 0o644, "/bin/sh\n".into()),
        // what getservbyname/getprotobyname look up (OpenNTPD: "ntp"); netbase is bigger
        (
            "etc/services",
            0o644,
            "ssh 22/tcp\nntp 123/udp\nsip 5060/tcp\nsip 5060/udp\n".into(),
        ),
        (
            "etc/protocols",
            0o644,
            "ip 0 IP\nicmp 1 ICMP\ntcp 6 TCP\nudp 17 UDP\nipv6-icmp 58 IPv6-ICMP\n".into(),
        ),
        ("etc/hostname", 0o644, "ewindow\n".into()),
        (
            "etc/hosts",
            0o644,
            "127.0.0.1 localhost\n::1 localhost\n".into(),
        ),
        (
            "etc/nsswitch.conf",
            0o644,
            "passwd: files\ngroup: files\nshadow: files\nhosts: files dns\n".into(),
        ),
        (
            "etc/profile",
            0o644,
            "export PATH=/usr/sbin:/usr/bin\nexport PS1='\\h:\\w\\$ '\n".into(),
        ),
        ("usr/lib/os-release", 0o644, os_release(commit)),
    ]
}

/// Adds the files and links under `dir` at `prefix` (overlays: skips a top README.md).
fn add_dir(t: &mut Tree, dir: &Path, prefix: &str) -> Result<()> {
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let mut entries: Vec<_> = fs::read_dir(&d)
            .with_context(|| format!("reading {}", d.display()))?
            .flatten()
            .collect();
        entries.sort_by_key(|e| e.file_name());
        for e in entries {
            let path = e.path();
            let rel = path.strip_prefix(dir)?.to_string_lossy().into_owned();
            if prefix.is_empty() && rel == "README.md" {
                continue;
            }
            let at = if prefix.is_empty() {
                rel
            } else {
                format!("{prefix}/{rel}")
            };
            let ft = e.file_type()?;
            if ft.is_dir() {
                t.add(
                    &at,
                    Node::Dir {
                        mode: mode_of(&path)?,
                    },
                )?;
                stack.push(path);
            } else if ft.is_symlink() {
                t.add(
                    &at,
                    Node::Link(fs::read_link(&path)?.to_string_lossy().into_owned()),
                )?;
            } else {
                t.add(
                    &at,
                    Node::File {
                        mode: mode_of(&path)?,
                        source: path,
                    },
                )?;
            }
        }
    }
    Ok(())
}

/// What the root filesystem weighs.
pub struct Stats {
    /// The cpio archive, bytes.
    pub cpio: u64,
    /// Compressed, bytes.
    pub compressed: u64,
}

/// Writes the cpio and compresses it with zstd -19 (one thread: the same bytes on every
/// machine).
pub fn write_initramfs(t: &Tree, epoch: u32, work: &Path, out: &Path) -> Result<Stats> {
    let cpio = work.join("initrd.cpio");
    let mut f = std::io::BufWriter::new(fs::File::create(&cpio)?);
    let n = t.write_newc(&mut f, epoch)?;
    std::io::Write::flush(&mut f)?;
    drop(f);
    tool(
        Command::new("zstd")
            .args(["-q", "-f", "-19", "-T1", "--rm"])
            .arg(&cpio)
            .arg("-o")
            .arg(out),
    )?;
    Ok(Stats {
        cpio: n,
        compressed: fs::metadata(out)?.len(),
    })
}

/// Bytes per package in the root filesystem, biggest first; with `compressed`, also each
/// package's files compressed alone with zstd -19 (an estimate of its share of the image).
pub fn sizes_report(
    set: &Selection,
    stats: &Stats,
    modules: &Modules,
    kernel: &Path,
    compressed: bool,
) -> Result<String> {
    let mut by: BTreeMap<String, Vec<PathBuf>> = BTreeMap::new();
    for e in set.files.values() {
        if e.kind == Kind::File {
            by.entry(e.package.clone())
                .or_default()
                .push(e.source.clone());
        }
    }
    let mut stack = vec![modules.dir.clone()];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d)?.flatten() {
            if e.file_type()?.is_dir() {
                stack.push(e.path());
            } else if e.path().extension().is_some_and(|x| x == "ko") {
                by.entry("(kernel modules)".into())
                    .or_default()
                    .push(e.path());
            }
        }
    }
    let mut rows = Vec::new();
    for (pkg, mut files) in by {
        files.sort();
        let mut raw = 0u64;
        let mut all = Vec::new();
        for f in &files {
            let data = fs::read(f)?;
            raw += data.len() as u64;
            if compressed {
                all.extend_from_slice(&data);
            }
        }
        let z = if compressed { zstd_len(&all)? } else { 0 };
        rows.push((raw, z, pkg.to_string()));
    }
    rows.sort_by(|a, b| b.cmp(a));
    let vmlinuz = fs::metadata(kernel)?.len();
    let mut s = format!(
        "# kernel (vmlinuz as Debian ships it: compressed on x86, an uncompressed Image on \
         arm64): {vmlinuz} bytes\n\
         # root filesystem: cpio {} bytes, zstd -19 {} bytes\n\
         # bytes, zstd -19 bytes alone (0: not measured; --sizes), package (ewindow = our binaries)\n",
        stats.cpio, stats.compressed
    );
    for (raw, z, p) in rows {
        s.push_str(&format!("{raw:>10} {z:>10} {p}\n"));
    }
    Ok(s)
}

fn zstd_len(data: &[u8]) -> Result<u64> {
    use std::io::Write;
    let mut child = Command::new("zstd")
        .args(["-q", "-19", "-T1", "-c"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()?;
    let mut stdin = child.stdin.take().context("zstd stdin")?;
    let data = data.to_vec();
    let w = std::thread::spawn(move || stdin.write_all(&data));
    let out = child.wait_with_output()?;
    w.join().ok();
    Ok(out.stdout.len() as u64)
}

/// `cargo xtask image lock`: downloads the roots at the archive's current versions, adds the
/// packages their ELF closure needs (the provider of each missing library is looked for
/// among the needer's dependencies, as Debian's shlibs guarantee), and writes the lock with
/// the packages the image uses and the build inputs.
pub fn lock(repo: &Path, target: &Target) -> Result<()> {
    let cache = super::cache(repo, target)?;
    cache.apt.update()?;
    // the cross build's sysroot first: our binaries are linked against it
    let sysroot = super::sysroot::resolve(&cache, target)?;
    let bins = super::our_binaries(repo, target, &cache, &sysroot, true)?;
    let get = |name: &str| -> Result<Unpacked> {
        let v = debs::candidate(&cache.apt, name)?
            .with_context(|| format!("no version of {name} in the archive (apt-get update?)"))?;
        eprintln!("  + {name} {v}");
        cache.get(name, &v, None)
    };
    let meta = get(&target.kernel)?;
    let kernel = debs::depends(&meta.deb)?
        .into_iter()
        .find(|d| d.starts_with("linux-image-"))
        .with_context(|| format!("{} names no linux-image package", target.kernel))?;
    let mut pkgs: BTreeMap<String, Unpacked> = BTreeMap::new();
    for name in target
        .files
        .iter()
        .map(|f| f.package.clone())
        .chain([kernel.clone()])
        .chain(target.boot_packages())
    {
        if !pkgs.contains_key(&name) {
            pkgs.insert(name.clone(), get(&name)?);
        }
    }
    for round in 1.. {
        eprintln!("ELF closure, round {round}");
        let index = index(&pkgs, &bins)?;
        let c = closure(&index, &roots(target, &index)?, &target.triplet)?;
        if c.unresolved.is_empty() {
            let mut used: BTreeSet<String> = c
                .selected
                .iter()
                .filter_map(|p| index.get(p).map(|e| e.package.clone()))
                .filter(|p| p != OURS)
                .collect();
            used.insert(kernel.clone());
            used.extend(target.boot_packages());
            let mut lock = Lock {
                kernel: kernel.clone(),
                sysroot: sysroot.clone(),
                ..Lock::default()
            };
            for name in used {
                let u = &pkgs[&name];
                lock.packages.insert(
                    name,
                    Pin {
                        version: u.version.clone(),
                        sha256: debs::sha256_file(&u.deb)?,
                    },
                );
            }
            let path = target.lock_path(repo);
            fs::write(&path, lock.render(&target.name))?;
            eprintln!(
                "wrote {} ({} packages)",
                path.display(),
                lock.packages.len()
            );
            return Ok(());
        }
        let mut added = false;
        for (so, (needer, by)) in &c.unresolved {
            let prov = provider(&cache, so, needer, &pkgs)
                .with_context(|| format!("{so}, needed by /{by} of {needer}"))?;
            if !pkgs.contains_key(&prov) {
                pkgs.insert(prov.clone(), get(&prov)?);
                added = true;
            }
        }
        if !added {
            bail!(
                "the closure needs {:?}, which the packages that hold them do not put where the loader looks",
                c.unresolved.keys().collect::<Vec<_>>()
            );
        }
    }
    unreachable!()
}

/// The package that ships `so` among `needer`'s dependencies (for our binaries: the package
/// of the build machine that holds the library we linked against, as dpkg-shlibdeps does).
fn provider(
    cache: &debs::Cache,
    so: &str,
    needer: &str,
    pkgs: &BTreeMap<String, Unpacked>,
) -> Result<String> {
    // the program interpreter is a path (/lib64/ld-linux-x86-64.so.2)
    let so = so.rsplit('/').next().unwrap_or(so);
    let mut cands: Vec<String> = if needer == OURS {
        let out = Command::new("dpkg")
            .args(["-S", &format!("*/{so}")])
            .output()
            .context("running dpkg -S")?;
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| l.split([':', ',']).next())
            // a cross toolchain's copy of the target's C library (libc6-arm64-cross) stands
            // for the target's own package (libc6)
            .map(
                |p| match p.strip_suffix("-cross").and_then(|p| p.rsplit_once('-')) {
                    Some((name, _arch)) => name.to_string(),
                    None => p.to_string(),
                },
            )
            .collect()
    } else {
        debs::depends(&pkgs[needer].deb)?
    };
    // the likeliest first: names that start with the library's stem (libfoo.so.1 → libfoo…)
    let stem: String = so
        .split(".so")
        .next()
        .unwrap_or(so)
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .collect::<String>()
        .to_lowercase();
    let key = |c: &String| {
        let n: String = c.chars().filter(|c| c.is_ascii_alphanumeric()).collect();
        (!n.starts_with(&stem), c.len())
    };
    cands.sort_by_key(key);
    cands.dedup();
    for c in cands {
        let Some(v) = debs::candidate(&cache.apt, &c)? else {
            continue;
        };
        let deb = cache.fetch(&c, &v)?;
        if debs::contents(&deb)?
            .iter()
            .any(|p| p.rsplit('/').next() == Some(so))
        {
            return Ok(c);
        }
    }
    bail!("no dependency of {needer} ships it")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_modules_come_from_inits_parser() {
        let repo = crate::root();
        for t in crate::image::TARGETS {
            let target = super::super::target::Target::load(&repo, t).unwrap();
            let m = wanted_modules(&repo.join(&target.services)).unwrap();
            assert!(m.iter().any(|m| m == "wireguard"), "{t}: {m:?}");
        }
        let dir = std::env::temp_dir().join(format!("xtask-services-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let bad = dir.join("services.toml");
        fs::write(&bad, "[system]\nmodules = [\"wire guard\"]\n").unwrap();
        let e = wanted_modules(&bad).unwrap_err().to_string();
        assert!(
            e.contains("services.toml:2: key `system.modules[0]`"),
            "{e}"
        );
        fs::remove_dir_all(&dir).unwrap();
    }
}
