//! The ELF closure: from the root files, every file they need to run — symbolic links
//! followed, and for each ELF object its program interpreter and its `DT_NEEDED` libraries,
//! looked up the way the dynamic loader does (`DT_RUNPATH`/`DT_RPATH` with `$ORIGIN`, then the
//! multiarch and plain library directories).

use std::collections::{BTreeMap, BTreeSet};

use anyhow::{bail, Context, Result};
use object::elf;
use object::read::elf::{Dyn, FileHeader, ProgramHeader};

use super::debs::{Entry, Kind};
use super::target::canonical;

/// What the loader needs of one ELF file.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct ElfDeps {
    /// `PT_INTERP`.
    pub interpreter: Option<String>,
    /// `DT_NEEDED` sonames.
    pub needed: Vec<String>,
    /// `DT_RUNPATH` directories, or `DT_RPATH` ones when there is no `DT_RUNPATH` (glibc
    /// ignores RPATH then), as written. (An executable's RPATH also applies to its libraries'
    /// lookups in glibc; no package of the image uses RPATH, so that is not modelled.)
    pub runpath: Vec<String>,
}

/// Reads the dynamic section of a 64-bit little-endian ELF file; `None` for other files.
pub fn elf_deps(data: &[u8]) -> Result<Option<ElfDeps>> {
    if !data.starts_with(b"\x7fELF") {
        return Ok(None);
    }
    let Ok(header) = elf::FileHeader64::<object::Endianness>::parse(data) else {
        bail!("not a 64-bit ELF file");
    };
    let endian = header.endian()?;
    let mut deps = ElfDeps::default();
    for ph in header.program_headers(endian, data)? {
        if let Some(interp) = ph.interpreter(endian, data)? {
            deps.interpreter = Some(String::from_utf8_lossy(interp).into_owned());
        }
    }
    let sections = header.sections(endian, data)?;
    let (mut runpath, mut rpath) = (Vec::new(), Vec::new());
    if let Some((dynamic, index)) = sections.dynamic(endian, data)? {
        // `index` is the string table the dynamic section links to
        let strings = sections.strings(endian, data, index)?;
        for d in dynamic {
            let tag = d.d_tag(endian);
            let string = || -> Result<String> {
                let s = d.string(endian, strings).context("a bad dynamic string")?;
                Ok(String::from_utf8_lossy(s).into_owned())
            };
            let dirs = |s: String| -> Vec<String> {
                s.split(':')
                    .filter(|s| !s.is_empty())
                    .map(String::from)
                    .collect()
            };
            match tag {
                elf::DT_NEEDED => deps.needed.push(string()?),
                elf::DT_RUNPATH => runpath.extend(dirs(string()?)),
                elf::DT_RPATH => rpath.extend(dirs(string()?)),
                _ => {}
            }
        }
    }
    deps.runpath = if runpath.is_empty() { rpath } else { runpath };
    Ok(Some(deps))
}

/// The result of [`closure`].
#[derive(Debug, Default)]
pub struct Closure {
    /// Every selected path (canonical).
    pub selected: BTreeSet<String>,
    /// Soname or interpreter → (package, path) of the first file that needed it.
    pub unresolved: BTreeMap<String, (String, String)>,
}

/// The closure of `roots` in `index` (canonical path → entry); `triplet` names the multiarch
/// library directory.
pub fn closure(
    index: &BTreeMap<String, Entry>,
    roots: &[String],
    triplet: &str,
) -> Result<Closure> {
    let mut out = Closure::default();
    // (path, what needed it)
    let mut work: Vec<(String, String)> = roots
        .iter()
        .rev()
        .map(|r| (r.clone(), "a root of the target".to_string()))
        .collect();
    let libdirs = [format!("usr/lib/{triplet}"), "usr/lib".to_string()];
    while let Some((p, by)) = work.pop() {
        if out.selected.contains(&p) {
            continue;
        }
        let Some(e) = index.get(&p) else {
            bail!("{p} (needed by {by}) is in no package of the set");
        };
        out.selected.insert(p.clone());
        let dir = p.rsplit_once('/').map_or("", |(d, _)| d);
        match &e.kind {
            Kind::Link(target) => {
                work.push((
                    if target.starts_with('/') {
                        canonical(target)
                    } else {
                        canonical(&format!("{dir}/{target}"))
                    },
                    format!("the link /{p}"),
                ));
            }
            Kind::File => {
                let data = std::fs::read(&e.source)
                    .with_context(|| format!("reading {}", e.source.display()))?;
                let deps = elf_deps(&data).with_context(|| format!("{p} (from {})", e.package))?;
                let Some(deps) = deps else { continue };
                if let Some(interp) = deps.interpreter {
                    let c = canonical(&interp);
                    if index.contains_key(&c) {
                        work.push((c, format!("/{p}")));
                    } else {
                        out.unresolved
                            .entry(interp)
                            .or_insert((e.package.clone(), p.clone()));
                    }
                }
                let runpath: Vec<String> = deps
                    .runpath
                    .iter()
                    .map(|r| {
                        r.replace("$ORIGIN", &format!("/{dir}"))
                            .replace("${ORIGIN}", &format!("/{dir}"))
                    })
                    .chain(libdirs.iter().cloned())
                    .collect();
                for so in deps.needed {
                    let found = runpath
                        .iter()
                        .map(|d| canonical(&format!("{d}/{so}")))
                        .find(|c| index.contains_key(c));
                    match found {
                        Some(c) => work.push((c, format!("/{p}"))),
                        None => {
                            out.unresolved
                                .entry(so)
                                .or_insert((e.package.clone(), p.clone()));
                        }
                    }
                }
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::{Path, PathBuf};

    fn entry(pkg: &str, source: &str) -> Entry {
        Entry {
            package: pkg.into(),
            source: PathBuf::from(source),
            kind: Kind::File,
        }
    }

    /// The build machine's own `/usr/bin/ls` and its libraries stand in for a package set.
    #[test]
    fn the_closure_of_a_real_program() {
        let t = "x86_64-linux-gnu";
        if !Path::new(&format!("/usr/lib/{t}/libc.so.6")).exists() {
            return; // another architecture: the paths below are x86_64's
        }
        let deps = elf_deps(&std::fs::read("/usr/bin/ls").unwrap())
            .unwrap()
            .unwrap();
        assert_eq!(
            deps.interpreter.as_deref(),
            Some("/lib64/ld-linux-x86-64.so.2")
        );
        assert!(deps.needed.contains(&"libc.so.6".to_string()), "{deps:?}");
        assert!(elf_deps(b"#!/bin/sh\n").unwrap().is_none());
        assert!(elf_deps(b"\x7fELF").is_err());

        let mut index = BTreeMap::new();
        index.insert("usr/bin/ls".to_string(), entry("coreutils", "/usr/bin/ls"));
        index.insert(
            "usr/lib64/ld-linux-x86-64.so.2".to_string(),
            Entry {
                package: "libc6".into(),
                source: PathBuf::new(),
                kind: Kind::Link(format!("/lib/{t}/ld-linux-x86-64.so.2")),
            },
        );
        for lib in ["ld-linux-x86-64.so.2", "libc.so.6", "libpcre2-8.so.0"] {
            index.insert(
                format!("usr/lib/{t}/{lib}"),
                entry("libc6", &format!("/usr/lib/{t}/{lib}")),
            );
        }
        let c = closure(&index, &["usr/bin/ls".to_string()], t).unwrap();
        assert!(c.selected.contains(&format!("usr/lib/{t}/libc.so.6")));
        // the interpreter link and where it points
        assert!(c.selected.contains("usr/lib64/ld-linux-x86-64.so.2"));
        assert!(c
            .selected
            .contains(&format!("usr/lib/{t}/ld-linux-x86-64.so.2")));
        // libselinux is not in this "package set": named, with who needed it
        let (pkg, by) = &c.unresolved["libselinux.so.1"];
        assert_eq!((pkg.as_str(), by.as_str()), ("coreutils", "usr/bin/ls"));
        // a root that no package ships is an error
        assert!(closure(&index, &["usr/bin/nope".to_string()], t).is_err());
    }
}
