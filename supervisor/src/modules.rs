//! Kernel modules named in `[system] modules`, loaded with their dependencies.
//!
//! Pure part: [`parse_dep`] reads `modules.dep` (as `depmod` writes it: `path: dep dep …`, each
//! dependency line listing what the module needs, the one to load first last) and [`plan`] turns
//! the wanted names into a load order, leaving out what is built in or already loaded;
//! [`waits_for`] and [`next_ready`] let several loaders share it. IO part: [`load_all`] runs
//! the plan on a loader thread per CPU (at most 4), each opening a file and calling
//! `finit_module(2)` (compressed files with `MODULE_INIT_COMPRESSED_FILE` so the kernel
//! decompresses them): under QEMU's TCG loading is most of the boot, and i915 alone a second.
//!
//! **Invariant:** a module that fails to load is reported (in `status`) and never stops init;
//! the modules that do not depend on it are still loaded; a module is loaded only after every
//! module `modules.dep` says it needs has finished loading.

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Condvar, Mutex};

use ewindow_protocol::init::ModuleStatus;

/// `modules.dep`, keyed by module name (`-` normalized to `_`).
#[derive(Debug, Default, Clone, PartialEq)]
pub struct DepTable {
    entries: BTreeMap<String, Entry>,
}

#[derive(Debug, Clone, PartialEq)]
struct Entry {
    path: String,
    deps: Vec<String>,
}

/// The module name a path in `modules.dep` stands for: `kernel/net/wireguard/wireguard.ko.xz`
/// → `wireguard`; dashes become underscores, as the kernel names modules.
pub fn module_name(path: &str) -> String {
    let file = path.rsplit('/').next().unwrap_or(path);
    let stem = file.split(".ko").next().unwrap_or(file);
    normalize(stem)
}

fn normalize(name: &str) -> String {
    name.replace('-', "_")
}

/// Parses the text of `modules.dep`; lines that do not look like `path: deps` are skipped.
pub fn parse_dep(text: &str) -> DepTable {
    let mut entries = BTreeMap::new();
    for line in text.lines() {
        let Some((path, deps)) = line.split_once(':') else {
            continue;
        };
        let path = path.trim();
        if path.is_empty() || !path.contains(".ko") {
            continue;
        }
        entries.insert(
            module_name(path),
            Entry {
                path: path.to_owned(),
                deps: deps.split_whitespace().map(module_name).collect(),
            },
        );
    }
    DepTable { entries }
}

/// Names listed in `modules.builtin` (paths, one per line) or `/proc/modules` (name first).
pub fn parse_names(text: &str, builtin_paths: bool) -> HashSet<String> {
    text.lines()
        .filter_map(|l| l.split_whitespace().next())
        .map(|w| {
            if builtin_paths {
                module_name(w)
            } else {
                normalize(w)
            }
        })
        .collect()
}

/// One step of a load plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Load this file (relative to the module tree) for this module.
    Load {
        /// Module name.
        name: String,
        /// Path relative to `/lib/modules/<release>`.
        path: String,
    },
    /// Nothing to do: built into the kernel or already loaded.
    Present(String),
    /// The module is not in `modules.dep` nor built in.
    Unknown(String),
}

/// The steps that load `wanted` in order: each module after its dependencies, every module
/// once. `present` holds built-in and already-loaded names.
pub fn plan(table: &DepTable, present: &HashSet<String>, wanted: &[String]) -> Vec<Step> {
    let mut steps = Vec::new();
    let mut seen = HashSet::new();
    for w in wanted {
        let name = normalize(w);
        if present.contains(&name) {
            if seen.insert(name.clone()) {
                steps.push(Step::Present(name));
            }
            continue;
        }
        let Some(entry) = table.entries.get(&name) else {
            if seen.insert(name.clone()) {
                steps.push(Step::Unknown(name));
            }
            continue;
        };
        // modules.dep already lists the full closure; load it from the end.
        for dep in entry.deps.iter().rev().chain(std::iter::once(&name)) {
            if present.contains(dep) || !seen.insert(dep.clone()) {
                continue;
            }
            match table.entries.get(dep) {
                Some(e) => steps.push(Step::Load {
                    name: dep.clone(),
                    path: e.path.clone(),
                }),
                None => steps.push(Step::Unknown(dep.clone())),
            }
        }
    }
    steps
}

/// The running kernel's release (`uname -r`).
pub fn kernel_release() -> String {
    nix::sys::utsname::uname()
        .map(|u| u.release().to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// Pure: the aliases of `modules.alias` (`alias PATTERN MODULE`) of the modules in `of`, as
/// (glob pattern, module name); bad patterns are left out.
pub fn parse_aliases(text: &str, of: &[String]) -> Vec<(glob::Pattern, String)> {
    let of: HashSet<String> = of.iter().map(|m| normalize(m)).collect();
    text.lines()
        .filter_map(|l| {
            let mut w = l.split_whitespace();
            (w.next()? == "alias").then_some(())?;
            let (pattern, module) = (w.next()?, normalize(w.next()?));
            of.contains(&module)
                .then(|| glob::Pattern::new(pattern).ok().map(|p| (p, module)))
                .flatten()
        })
        .collect()
}

/// Pure: which of `device_modules` drive one of the devices (their `modalias` strings,
/// `pci:v00008086d00003E92sv…`), in the order given, and which drive none.
pub fn for_devices(
    aliases: &[(glob::Pattern, String)],
    modaliases: &[String],
    device_modules: &[String],
) -> (Vec<String>, Vec<String>) {
    device_modules.iter().map(|m| normalize(m)).partition(|m| {
        aliases
            .iter()
            .any(|(p, name)| name == m && modaliases.iter().any(|d| p.matches(d)))
    })
}

/// The `modalias` of every device the kernel found on its buses (`/sys/bus/*/devices/*`):
/// PCI, the device tree's platform devices, ACPI, virtio …
fn device_modaliases(sys_bus: &Path) -> Vec<String> {
    let mut out = Vec::new();
    for bus in std::fs::read_dir(sys_bus).into_iter().flatten().flatten() {
        for dev in std::fs::read_dir(bus.path().join("devices"))
            .into_iter()
            .flatten()
            .flatten()
        {
            if let Ok(m) = std::fs::read_to_string(dev.path().join("modalias")) {
                out.extend(m.lines().map(str::to_owned).filter(|l| !l.is_empty()));
            }
        }
    }
    out
}

/// Loads `wanted` from `modules_dir/<release>/`, and of `device_modules` those that drive a
/// device present now; says what became of each module (`no-device`: a device driver left
/// out).
pub fn load_all(
    modules_dir: &Path,
    wanted: &[String],
    device_modules: &[String],
) -> Vec<ModuleStatus> {
    if wanted.is_empty() && device_modules.is_empty() {
        return Vec::new();
    }
    let root: PathBuf = modules_dir.join(kernel_release());
    let (present_devices, absent) = if device_modules.is_empty() {
        (Vec::new(), Vec::new())
    } else {
        let aliases = std::fs::read_to_string(root.join("modules.alias"))
            .map(|t| parse_aliases(&t, device_modules))
            .unwrap_or_default();
        for_devices(
            &aliases,
            &device_modaliases(Path::new("/sys/bus")),
            device_modules,
        )
    };
    let mut statuses: Vec<ModuleStatus> = absent
        .into_iter()
        .map(|name| {
            tracing::info!(module = %name, "kernel module: no device for it");
            ModuleStatus {
                name,
                state: "no-device".into(),
                error: None,
            }
        })
        .collect();
    let wanted: Vec<String> = wanted.iter().cloned().chain(present_devices).collect();
    statuses.extend(load_wanted(&root, &wanted));
    statuses
}

fn load_wanted(root: &Path, wanted: &[String]) -> Vec<ModuleStatus> {
    if wanted.is_empty() {
        return Vec::new();
    }
    let dep_text = match std::fs::read_to_string(root.join("modules.dep")) {
        Ok(t) => t,
        Err(e) => {
            let error = format!("{}: {e}", root.join("modules.dep").display());
            return wanted
                .iter()
                .map(|w| ModuleStatus {
                    name: normalize(w),
                    state: "failed".into(),
                    error: Some(error.clone()),
                })
                .collect();
        }
    };
    let table = parse_dep(&dep_text);
    let mut present = std::fs::read_to_string(root.join("modules.builtin"))
        .map(|t| parse_names(&t, true))
        .unwrap_or_default();
    present.extend(
        std::fs::read_to_string("/proc/modules")
            .map(|t| parse_names(&t, false))
            .unwrap_or_default(),
    );
    load_plan(root, &table, plan(&table, &present, wanted))
}

/// Pure: for each step of a plan, the steps it waits for (the dependencies it loads after).
pub fn waits_for(table: &DepTable, steps: &[Step]) -> Vec<Vec<usize>> {
    let index: BTreeMap<&str, usize> = steps
        .iter()
        .enumerate()
        .map(|(i, s)| (step_name(s), i))
        .collect();
    steps
        .iter()
        .map(|s| match s {
            Step::Load { name, .. } => table
                .entries
                .get(name)
                .map(|e| {
                    e.deps
                        .iter()
                        .filter_map(|d| index.get(d.as_str()).copied())
                        .collect()
                })
                .unwrap_or_default(),
            _ => Vec::new(),
        })
        .collect()
}

fn step_name(s: &Step) -> &str {
    match s {
        Step::Load { name, .. } | Step::Present(name) | Step::Unknown(name) => name,
    }
}

/// Pure: the first step, in plan order, that nobody took yet and whose dependencies are all
/// finished: what a loader takes next (none: wait for a running one, or all are taken).
pub fn next_ready(
    waits: &[Vec<usize>],
    taken: &[bool],
    finished: impl Fn(usize) -> bool,
) -> Option<usize> {
    (0..waits.len()).find(|&i| !taken[i] && waits[i].iter().all(|&d| finished(d)))
}

/// The loaders' shared state: a step is finished once its status is in `out`.
struct Progress {
    taken: Vec<bool>,
    out: Vec<Option<ModuleStatus>>,
}

/// Runs a plan with a loader thread per CPU (at most 4): each module after its dependencies,
/// independent ones at once (the kernel links and initialises them in parallel). The
/// statuses come back in plan order.
fn load_plan(root: &Path, table: &DepTable, steps: Vec<Step>) -> Vec<ModuleStatus> {
    let waits = waits_for(table, &steps);
    let n = steps.len();
    let progress = Mutex::new(Progress {
        taken: vec![false; n],
        out: vec![None; n],
    });
    let changed = Condvar::new();
    let loaders = std::thread::available_parallelism()
        .map_or(1, |c| c.get())
        .clamp(1, 4)
        .min(n.max(1));
    let lock = || progress.lock().unwrap_or_else(|p| p.into_inner());
    let loader = || {
        let mut p = lock();
        while !p.taken.iter().all(|t| *t) {
            let Some(i) = next_ready(&waits, &p.taken, |d| p.out[d].is_some()) else {
                p = changed.wait(p).unwrap_or_else(|e| e.into_inner());
                continue;
            };
            p.taken[i] = true;
            let failed: Vec<&str> = waits[i]
                .iter()
                .filter(|&&d| p.out[d].as_ref().is_some_and(|s| s.state == "failed"))
                .map(|&d| step_name(&steps[d]))
                .collect();
            drop(p);
            let status = run_step(root, &steps[i], &failed);
            match &status.error {
                None => {
                    tracing::info!(module = %status.name, state = %status.state, "kernel module")
                }
                Some(e) => tracing::error!(module = %status.name, "kernel module: {e}"),
            }
            p = lock();
            p.out[i] = Some(status);
            changed.notify_all();
        }
    };
    std::thread::scope(|s| {
        for k in 0..loaders {
            if std::thread::Builder::new()
                .name(format!("modules-{k}"))
                .spawn_scoped(s, loader)
                .is_err()
            {
                // no thread: this one loads (it returns when every step is taken)
                loader();
            }
        }
    });
    progress
        .into_inner()
        .unwrap_or_else(|p| p.into_inner())
        .out
        .into_iter()
        .flatten()
        .collect()
}

/// What became of one step, `failed`: the dependencies that failed.
fn run_step(root: &Path, step: &Step, failed: &[&str]) -> ModuleStatus {
    let (name, result) = match step {
        Step::Present(name) => {
            return ModuleStatus {
                name: name.clone(),
                state: "present".into(),
                error: None,
            }
        }
        Step::Unknown(name) => (name, Err(format!("not found in {}", root.display()))),
        Step::Load { name, .. } if !failed.is_empty() => (
            name,
            Err(format!(
                "not loaded: dependency {} failed",
                failed.join(", ")
            )),
        ),
        Step::Load { name, path } => (name, load_one(&root.join(path))),
    };
    match result {
        Ok(()) => ModuleStatus {
            name: name.clone(),
            state: "loaded".into(),
            error: None,
        },
        Err(error) => ModuleStatus {
            name: name.clone(),
            state: "failed".into(),
            error: Some(error),
        },
    }
}

/// `finit_module(2)` on one file; "already loaded" counts as success.
fn load_one(path: &Path) -> Result<(), String> {
    use nix::kmod::{finit_module, ModuleInitFlags};
    let file = std::fs::File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let name = path.to_string_lossy();
    let flags = if name.ends_with(".ko") {
        ModuleInitFlags::empty()
    } else {
        // MODULE_INIT_COMPRESSED_FILE: the kernel decompresses (.xz, .zst, .gz).
        ModuleInitFlags::from_bits_retain(4)
    };
    match finit_module(&file, c"", flags) {
        Ok(()) | Err(nix::errno::Errno::EEXIST) => Ok(()),
        Err(e) => Err(format!("finit_module {}: {}", path.display(), e.desc())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEP: &str = "\
kernel/drivers/net/wireguard/wireguard.ko.xz: kernel/lib/crypto/libchacha20poly1305.ko.xz kernel/net/ipv6/ip6_udp_tunnel.ko.xz kernel/net/ipv4/udp_tunnel.ko.xz kernel/lib/crypto/libcurve25519-generic.ko.xz kernel/lib/crypto/libpoly1305.ko.xz
kernel/lib/crypto/libchacha20poly1305.ko.xz: kernel/lib/crypto/libpoly1305.ko.xz
kernel/lib/crypto/libpoly1305.ko.xz:
kernel/net/ipv6/ip6_udp_tunnel.ko.xz:
kernel/net/ipv4/udp_tunnel.ko.xz:
kernel/lib/crypto/libcurve25519-generic.ko.xz:
kernel/drivers/net/virtio_net.ko: kernel/drivers/net/net_failover.ko kernel/net/core/failover.ko
kernel/drivers/net/net_failover.ko: kernel/net/core/failover.ko
kernel/net/core/failover.ko:
garbage line without colon
";

    #[test]
    fn loaders_take_a_module_only_after_its_dependencies_finish() {
        let t = parse_dep(DEP);
        let steps = plan(
            &t,
            &HashSet::new(),
            &["wireguard".into(), "virtio_net".into()],
        );
        let names: Vec<&str> = steps.iter().map(step_name).collect();
        let waits = waits_for(&t, &steps);
        let at = |n: &str| names.iter().position(|x| *x == n).unwrap();
        assert_eq!(waits[at("libpoly1305")], Vec::<usize>::new());
        assert_eq!(waits[at("failover")], Vec::<usize>::new());
        let mut wg = waits[at("wireguard")].clone();
        wg.sort();
        let mut want: Vec<usize> = [
            "libchacha20poly1305",
            "ip6_udp_tunnel",
            "udp_tunnel",
            "libcurve25519_generic",
            "libpoly1305",
        ]
        .iter()
        .map(|n| at(n))
        .collect();
        want.sort();
        assert_eq!(wg, want);
        // Two loaders, every interleaving of finishing: nobody ever takes a module whose
        // dependencies are unfinished, and every module gets taken.
        let n = steps.len();
        let mut taken = vec![false; n];
        let mut finished = vec![false; n];
        let mut running: Vec<usize> = Vec::new();
        let mut order = Vec::new();
        let mut turn = 0usize;
        while finished.iter().any(|f| !f) {
            while running.len() < 2 {
                let Some(i) = next_ready(&waits, &taken, |d| finished[d]) else {
                    break;
                };
                assert!(
                    waits[i].iter().all(|&d| finished[d]),
                    "{} too early",
                    names[i]
                );
                taken[i] = true;
                running.push(i);
            }
            assert!(!running.is_empty(), "stuck: nothing ready, nothing running");
            // finish the older or the newer one, alternately
            let k = if turn.is_multiple_of(3) {
                running.len() - 1
            } else {
                0
            };
            turn += 1;
            let done = running.remove(k);
            finished[done] = true;
            order.push(names[done]);
        }
        assert_eq!(order.len(), n);
        assert!(
            order.iter().position(|x| *x == "wireguard")
                > order.iter().position(|x| *x == "libpoly1305")
        );
        assert!(next_ready(&waits, &taken, |d| finished[d]).is_none());
    }

    #[test]
    fn device_drivers_load_only_for_devices_that_are_there() {
        let alias = "\
# Aliases extracted from modules themselves.
alias pci:v00008086d00003E92sv*sd*bc03sc*i* i915
alias pci:v00008086d00005916sv*sd*bc03sc*i* i915
alias pci:v00001234d00001111sv*sd*bc03sc00i00* bochs
alias pci:v000010ECd00008168sv*sd*bc*sc*i* r8169
alias pci:v*d*sv*sd*bc01sc08i02* nvme
alias usb:v*p*d*dc*dsc*dp*ic0Eisc01ip00in* uvcvideo
alias of:N*T*Cbrcm,bcm2835-hdmi* vc4
alias pci:v00008086d00003E92sv*sd*bc[ broken
weird line
";
        let mods: Vec<String> = ["i915", "bochs", "r8169", "nvme", "vc4"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let aliases = parse_aliases(alias, &mods);
        // uvcvideo is not asked for; the broken pattern is dropped
        assert_eq!(aliases.len(), 6);
        // QEMU's PC: the bochs display and an NVMe disk, no Intel GPU, no Realtek NIC
        let qemu = vec![
            "pci:v00001234d00001111sv00001AF4sd00001100bc03sc00i00".to_string(),
            "pci:v00001B36d00000010sv00001AF4sd00001100bc01sc08i02".to_string(),
            "virtio:d00000001v00001AF4".to_string(),
        ];
        let (load, skip) = for_devices(&aliases, &qemu, &mods);
        assert_eq!(load, ["bochs", "nvme"]);
        assert_eq!(skip, ["i915", "r8169", "vc4"]);
        // an Intel PC: i915 by its device id
        let intel = vec!["pci:v00008086d00003E92sv00001028sd0000085Bbc03sc00i00".to_string()];
        assert_eq!(for_devices(&aliases, &intel, &mods).0, ["i915"]);
        // a Pi's device tree
        let pi = vec!["of:NhdmiT(null)Cbrcm,bcm2835-hdmi".to_string()];
        assert_eq!(for_devices(&aliases, &pi, &mods).0, ["vc4"]);
        // nothing known: nothing loaded, every driver reported
        assert_eq!(for_devices(&[], &qemu, &mods).1.len(), 5);
    }

    fn loads(steps: &[Step]) -> Vec<&str> {
        steps
            .iter()
            .filter_map(|s| match s {
                Step::Load { name, .. } => Some(name.as_str()),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn names_come_from_file_names_with_underscores() {
        assert_eq!(
            module_name("kernel/a/b/libcurve25519-generic.ko.xz"),
            "libcurve25519_generic"
        );
        assert_eq!(module_name("virtio_net.ko"), "virtio_net");
        assert_eq!(module_name("x.ko.zst"), "x");
    }

    #[test]
    fn dependencies_load_first_in_reverse_dep_order() {
        let t = parse_dep(DEP);
        let steps = plan(&t, &HashSet::new(), &["wireguard".into()]);
        assert_eq!(
            loads(&steps),
            [
                "libpoly1305",
                "libcurve25519_generic",
                "udp_tunnel",
                "ip6_udp_tunnel",
                "libchacha20poly1305",
                "wireguard"
            ]
        );
        // The order respects every dependency line of the table.
        for (i, name) in loads(&steps).iter().enumerate() {
            for d in &t.entries[*name].deps {
                let j = loads(&steps).iter().position(|n| n == d);
                assert!(j.is_some_and(|j| j < i), "{d} before {name}");
            }
        }
    }

    #[test]
    fn each_module_once_and_present_ones_skipped() {
        let t = parse_dep(DEP);
        let present: HashSet<String> = ["udp_tunnel".to_string()].into();
        let steps = plan(
            &t,
            &present,
            &[
                "virtio-net".into(),
                "net_failover".into(),
                "udp_tunnel".into(),
            ],
        );
        assert_eq!(loads(&steps), ["failover", "net_failover", "virtio_net"]);
        assert!(steps.contains(&Step::Present("udp_tunnel".into())));
        assert!(steps
            .iter()
            .any(|s| matches!(s, Step::Load { name, path } if name == "virtio_net" && path == "kernel/drivers/net/virtio_net.ko")));
    }

    #[test]
    fn unknown_modules_are_reported_not_fatal() {
        let t = parse_dep(DEP);
        let steps = plan(&t, &HashSet::new(), &["nope".into(), "failover".into()]);
        assert_eq!(steps[0], Step::Unknown("nope".into()));
        assert_eq!(loads(&steps), ["failover"]);
    }

    #[test]
    fn builtin_and_proc_modules_lists() {
        let b = parse_names("kernel/fs/ext4/ext4.ko\nkernel/drivers/tty/vt.ko\n", true);
        assert!(b.contains("ext4") && b.contains("vt"));
        let p = parse_names(
            "wireguard 114688 0 - Live 0x0\nlibchacha20poly1305 16384 1 wireguard, Live 0x0\n",
            false,
        );
        assert!(p.contains("wireguard") && p.contains("libchacha20poly1305"));
    }

    #[test]
    fn hostile_tables_do_not_panic() {
        for text in [
            ":",
            "::::",
            ".ko:",
            "a.ko: : :",
            "\u{0}.ko:\u{0}",
            "x.ko: x.ko",
        ] {
            let t = parse_dep(text);
            let _ = plan(&t, &HashSet::new(), &["x".into(), "a".into()]);
        }
    }
}
