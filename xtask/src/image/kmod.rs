//! Kernel modules: the modules a target's services file loads, and every module they depend
//! on (`depends=` of each module's `.modinfo`), found in the kernel package's tree.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use anyhow::{bail, Context, Result};
use object::{Object, ObjectSection};

/// `-` and `_` are the same in module names.
pub fn normalize(name: &str) -> String {
    name.replace('-', "_")
}

/// The module name of a path in `modules.order` (`kernel/net/wireguard/wireguard.ko`).
fn name_of(path: &str) -> String {
    let file = path.rsplit('/').next().unwrap_or(path);
    normalize(file.split(".ko").next().unwrap_or(file))
}

/// The `depends=` of a module's `.modinfo` section.
pub fn depends(ko: &[u8]) -> Result<Vec<String>> {
    if ko.starts_with(b"\xfd7zXZ")
        || ko.starts_with(b"\x28\xb5\x2f\xfd")
        || ko.starts_with(b"\x1f\x8b")
    {
        bail!("a compressed module (.ko.xz/.ko.zst/.ko.gz): not supported yet, the kernel package ships them uncompressed in Debian 12");
    }
    let file = object::File::parse(ko)?;
    let Some(section) = file.section_by_name(".modinfo") else {
        return Ok(Vec::new());
    };
    Ok(section
        .data()?
        .split(|&b| b == 0)
        .filter_map(|kv| kv.strip_prefix(b"depends="))
        .flat_map(|v| {
            String::from_utf8_lossy(v)
                .split(',')
                .map(normalize)
                .collect::<Vec<_>>()
        })
        .filter(|n| !n.is_empty())
        .collect())
}

/// The `.ko` paths (relative to `kdir`, `lib/modules/<release>` of the kernel package) of
/// `wanted` and their dependencies; built-in modules need no file.
pub fn module_closure(kdir: &Path, wanted: &[String]) -> Result<BTreeSet<String>> {
    let read = |f: &str| {
        std::fs::read_to_string(kdir.join(f))
            .with_context(|| format!("reading {}", kdir.join(f).display()))
    };
    let by_name: BTreeMap<String, String> = read("modules.order")?
        .lines()
        .map(|p| (name_of(p), p.to_string()))
        .collect();
    let builtin: BTreeSet<String> = read("modules.builtin")?.lines().map(name_of).collect();
    let mut out = BTreeSet::new();
    let mut seen = BTreeSet::new();
    let mut work: Vec<(String, Option<String>)> =
        wanted.iter().map(|w| (normalize(w), None)).collect();
    while let Some((m, needed_by)) = work.pop() {
        if !seen.insert(m.clone()) || builtin.contains(&m) {
            continue;
        }
        let Some(path) = by_name.get(&m) else {
            match needed_by {
                Some(by) => bail!("module {m} (needed by {by}) is not in the kernel package"),
                None => bail!("module {m} (in the services file's [system] modules) is not in the kernel package"),
            }
        };
        let data = std::fs::read(kdir.join(path)).with_context(|| format!("reading {path}"))?;
        for d in depends(&data).with_context(|| format!("reading the .modinfo of {path}"))? {
            work.push((d, Some(m.clone())));
        }
        out.insert(path.clone());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(name_of("kernel/drivers/hid/hid-generic.ko"), "hid_generic");
        assert_eq!(name_of("kernel/net/wireguard/wireguard.ko.xz"), "wireguard");
        assert_eq!(normalize("snd-usb-audio"), "snd_usb_audio");
    }

    /// Real relocatable ELF objects, made by gcc with a `.modinfo` section as a `.ko` has.
    #[test]
    fn the_closure_follows_modinfo_depends() {
        let dir = std::env::temp_dir().join(format!("ewindow-kmod-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("kernel/fs")).unwrap();
        let ko = |name: &str, depends: &str| {
            let c = dir.join(format!("{name}.c"));
            std::fs::write(
                &c,
                format!(
                    "__attribute__((section(\".modinfo\"), used)) static const char m[] = \
                     \"license=GPL\\0depends={depends}\\0name={name}\";\n"
                ),
            )
            .unwrap();
            let st = std::process::Command::new("gcc")
                .args(["-c", "-o"])
                .arg(dir.join(format!("kernel/fs/{name}.ko")))
                .arg(&c)
                .status()
                .unwrap();
            assert!(st.success());
        };
        ko("ext4", "mbcache,jbd2,crc16");
        ko("jbd2", "");
        ko("mbcache", "");
        ko("vfat", "fat");
        std::fs::write(
            dir.join("modules.order"),
            "kernel/fs/ext4.ko\nkernel/fs/jbd2.ko\nkernel/fs/mbcache.ko\nkernel/fs/vfat.ko\n",
        )
        .unwrap();
        std::fs::write(dir.join("modules.builtin"), "kernel/lib/crc16.ko\n").unwrap();
        assert_eq!(
            depends(&std::fs::read(dir.join("kernel/fs/ext4.ko")).unwrap()).unwrap(),
            ["mbcache", "jbd2", "crc16"]
        );
        let got = module_closure(&dir, &["ext4".to_string()]).unwrap();
        assert_eq!(
            got.into_iter().collect::<Vec<_>>(),
            [
                "kernel/fs/ext4.ko",
                "kernel/fs/jbd2.ko",
                "kernel/fs/mbcache.ko"
            ]
        );
        let e = module_closure(&dir, &["vfat".to_string()]).unwrap_err();
        assert_eq!(
            e.to_string(),
            "module fat (needed by vfat) is not in the kernel package"
        );
        let e = module_closure(&dir, &["wireguard".to_string()]).unwrap_err();
        assert!(e
            .to_string()
            .starts_with("module wireguard (in the services file"));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
