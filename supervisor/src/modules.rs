//! Kernel modules named in `[system] modules`, loaded with their dependencies.
//!
//! Pure part: [`parse_dep`] reads `modules.dep` (as `depmod` writes it: `path: dep dep …`, each
//! dependency line listing what the module needs, the one to load first last) and [`plan`] turns
//! the wanted names into a load order, leaving out what is built in or already loaded. IO part:
//! [`load_all`] opens each file and calls `finit_module(2)`, compressed files with
//! `MODULE_INIT_COMPRESSED_FILE` so the kernel decompresses them.
//!
//! **Invariant:** a module that fails to load is reported (in `status`) and never stops init;
//! the modules that do not depend on it are still loaded.

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};

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

/// Loads `wanted` from `modules_dir/<release>/` and says what became of each module.
pub fn load_all(modules_dir: &Path, wanted: &[String]) -> Vec<ModuleStatus> {
    if wanted.is_empty() {
        return Vec::new();
    }
    let root: PathBuf = modules_dir.join(kernel_release());
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
    let mut out = Vec::new();
    let mut failed: HashSet<String> = HashSet::new();
    for step in plan(&table, &present, wanted) {
        let status = match step {
            Step::Present(name) => ModuleStatus {
                name,
                state: "present".into(),
                error: None,
            },
            Step::Unknown(name) => {
                failed.insert(name.clone());
                ModuleStatus {
                    error: Some(format!("not found in {}", root.display())),
                    name,
                    state: "failed".into(),
                }
            }
            Step::Load { name, path } => {
                let deps_failed: Vec<&String> = table
                    .entries
                    .get(&name)
                    .map(|e| e.deps.iter().filter(|d| failed.contains(*d)).collect())
                    .unwrap_or_default();
                let result = if deps_failed.is_empty() {
                    load_one(&root.join(&path))
                } else {
                    Err(format!(
                        "not loaded: dependency {} failed",
                        deps_failed
                            .iter()
                            .map(|s| s.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ))
                };
                match result {
                    Ok(()) => ModuleStatus {
                        name,
                        state: "loaded".into(),
                        error: None,
                    },
                    Err(error) => {
                        failed.insert(name.clone());
                        ModuleStatus {
                            name,
                            state: "failed".into(),
                            error: Some(error),
                        }
                    }
                }
            }
        };
        match &status.error {
            None => tracing::info!(module = %status.name, state = %status.state, "kernel module"),
            Some(e) => tracing::error!(module = %status.name, "kernel module: {e}"),
        }
        out.push(status);
    }
    out
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
