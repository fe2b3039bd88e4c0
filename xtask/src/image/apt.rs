//! Which apt the build asks for a target's packages. The build machine's own apt for its own
//! architecture; for another one (arm64 on an x86_64 build machine) a private apt
//! configuration under `target/image/apt/<arch>/`: the same archive as the build machine's
//! sources (read from them, so no host name is written here), that architecture only, the
//! target's components (`non-free-firmware` for the Pi's boot firmware), its own package
//! lists and state. The build machine's dpkg is never told of the foreign architecture and
//! nothing is ever installed from it: the packages are only downloaded and unpacked.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;

use anyhow::{bail, Context, Result};

/// How to run apt for one architecture.
#[derive(Debug, Clone)]
pub struct Apt {
    /// Debian architecture (`arm64`).
    pub arch: String,
    /// `APT_CONFIG` of the private configuration; `None`: the build machine's.
    config: Option<PathBuf>,
}

/// One `deb` source of the build machine: where and which suites.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    /// The archive's URI.
    pub uri: String,
    /// Suites (`bookworm`, `bookworm-updates`, `bookworm-security`).
    pub suites: Vec<String>,
    /// The keyring apt checks it with, when named.
    pub signed_by: Option<String>,
}

/// The build machine's Debian architecture (`dpkg --print-architecture`).
pub fn host_arch() -> Result<String> {
    let out = Command::new("dpkg")
        .arg("--print-architecture")
        .output()
        .context("running dpkg --print-architecture")?;
    let a = String::from_utf8_lossy(&out.stdout).trim().to_string();
    if a.is_empty() {
        bail!("dpkg --print-architecture printed nothing");
    }
    Ok(a)
}

/// One `apt-get update` of a private configuration per process (two builds side by side
/// share it).
static UPDATED: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());

impl Apt {
    /// The apt for `arch` with `components`, its private state under `dir`
    /// (`target/image/apt`) when `arch` is not the build machine's.
    pub fn new(arch: &str, components: &[String], dir: &Path) -> Result<Apt> {
        if arch == host_arch()? {
            return Ok(Apt {
                arch: arch.into(),
                config: None,
            });
        }
        let root = dir.join(arch);
        let sources = host_sources()?;
        if sources.is_empty() {
            bail!("the build machine's apt has no Debian `deb` source to take the {arch} packages from");
        }
        for d in ["lists/partial", "cache/archives/partial", "parts", "prefs"] {
            fs::create_dir_all(root.join(d))?;
        }
        let status = root.join("status");
        if !status.exists() {
            fs::write(&status, "")?;
        }
        let list = sources_list(&sources, arch, components);
        write_if_changed(&root.join("sources.list"), &list)?;
        let conf = format!(
            "// written by cargo xtask image: downloads of {arch} packages, nothing installed\n\
             APT::Architecture \"{arch}\";\n\
             APT::Architectures {{ \"{arch}\"; }};\n\
             Dir::State \"{r}\";\n\
             Dir::State::Lists \"{r}/lists\";\n\
             Dir::State::status \"{r}/status\";\n\
             Dir::Cache \"{r}/cache\";\n\
             Dir::Etc::SourceList \"{r}/sources.list\";\n\
             Dir::Etc::SourceParts \"{r}/parts\";\n\
             Dir::Etc::Preferences \"{r}/prefs/none\";\n\
             Dir::Etc::PreferencesParts \"{r}/prefs\";\n\
             Acquire::Languages \"none\";\n",
            r = root.display()
        );
        let config = root.join("apt.conf");
        write_if_changed(&config, &conf)?;
        Ok(Apt {
            arch: arch.into(),
            config: Some(config),
        })
    }

    /// `program` (apt-get, apt-cache) with this configuration and a fixed locale.
    pub fn command(&self, program: &str) -> Command {
        let mut c = Command::new(program);
        c.env("LC_ALL", "C");
        if let Some(conf) = &self.config {
            c.env("APT_CONFIG", conf);
        }
        c
    }

    /// Reads the archive's package lists (`apt-get update`), once per process for a
    /// private configuration; for the build machine's, whenever asked (a fresh machine may
    /// not have read them yet).
    pub fn update(&self) -> Result<()> {
        let mut done = UPDATED.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(c) = &self.config {
            if done.contains(c) {
                return Ok(());
            }
        }
        let out = self
            .command("apt-get")
            .args(["-q", "update"])
            .output()
            .context("running apt-get update")?;
        if !out.status.success() {
            bail!(
                "apt-get update ({} packages) failed: {}",
                self.arch,
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        if let Some(c) = &self.config {
            done.push(c.clone());
        }
        Ok(())
    }

    /// Whether this is a private configuration whose lists were never read.
    pub fn needs_update(&self) -> bool {
        match &self.config {
            None => false,
            Some(c) => {
                let lists = c.with_file_name("lists");
                !fs::read_dir(lists)
                    .map(|d| {
                        d.flatten()
                            .any(|e| e.file_name().to_string_lossy().ends_with("_Packages"))
                    })
                    .unwrap_or(false)
            }
        }
    }
}

fn write_if_changed(path: &Path, text: &str) -> Result<()> {
    if fs::read_to_string(path).ok().as_deref() != Some(text) {
        fs::write(path, text).with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}

/// The `sources.list` of a private configuration.
pub fn sources_list(sources: &[Source], arch: &str, components: &[String]) -> String {
    let mut comps: Vec<&str> = vec!["main"];
    for c in components {
        if !comps.contains(&c.as_str()) {
            comps.push(c);
        }
    }
    let mut s = String::new();
    for src in sources {
        for suite in &src.suites {
            let mut opts = vec![format!("arch={arch}")];
            if let Some(k) = &src.signed_by {
                opts.push(format!("signed-by={k}"));
            }
            s.push_str(&format!(
                "deb [{}] {} {suite} {}\n",
                opts.join(" "),
                src.uri,
                comps.join(" ")
            ));
        }
    }
    s
}

/// The Debian `deb` sources the build machine's apt reads (`sources.list`,
/// `sources.list.d/*.list` and `*.sources`), those of Debian's archive only (signed by
/// Debian's keyring, or with no keyring named).
pub fn host_sources() -> Result<Vec<Source>> {
    let mut files = vec![PathBuf::from("/etc/apt/sources.list")];
    if let Ok(d) = fs::read_dir("/etc/apt/sources.list.d") {
        let mut more: Vec<PathBuf> = d.flatten().map(|e| e.path()).collect();
        more.sort();
        files.extend(more);
    }
    let mut out = Vec::new();
    for f in files {
        let Ok(text) = fs::read_to_string(&f) else {
            continue;
        };
        let name = f.to_string_lossy();
        let found = if name.ends_with(".sources") {
            parse_deb822(&text)
        } else if name.ends_with(".list") {
            parse_one_line(&text)
        } else {
            continue;
        };
        out.extend(found.into_iter().filter(|s| {
            s.signed_by
                .as_deref()
                .is_none_or(|k| k.contains("debian-archive-keyring"))
        }));
    }
    Ok(out)
}

/// `deb822` stanzas (`Types: deb`, `URIs:`, `Suites:`, `Signed-By:`, `Enabled:`).
pub fn parse_deb822(text: &str) -> Vec<Source> {
    let mut out = Vec::new();
    for stanza in text.split("\n\n") {
        let field = |key: &str| {
            stanza.lines().find_map(|l| {
                let (k, v) = l.split_once(':')?;
                (k.trim().eq_ignore_ascii_case(key)).then(|| v.trim().to_string())
            })
        };
        let types = field("Types").unwrap_or_default();
        if !types.split_whitespace().any(|t| t == "deb")
            || field("Enabled").is_some_and(|e| e.eq_ignore_ascii_case("no"))
        {
            continue;
        }
        let suites: Vec<String> = field("Suites")
            .unwrap_or_default()
            .split_whitespace()
            .map(String::from)
            .collect();
        for uri in field("URIs").unwrap_or_default().split_whitespace() {
            if !suites.is_empty() {
                out.push(Source {
                    uri: uri.to_string(),
                    suites: suites.clone(),
                    signed_by: field("Signed-By"),
                });
            }
        }
    }
    out
}

/// One-line `deb [opts] URI SUITE COMPONENTS…` entries.
pub fn parse_one_line(text: &str) -> Vec<Source> {
    let mut out = Vec::new();
    for line in text.lines() {
        let line = line.split('#').next().unwrap_or("").trim();
        let Some(rest) = line.strip_prefix("deb ") else {
            continue;
        };
        let mut rest = rest.trim();
        let mut signed_by = None;
        if let Some(r) = rest.strip_prefix('[') {
            let Some((opts, after)) = r.split_once(']') else {
                continue;
            };
            signed_by = opts
                .split_whitespace()
                .find_map(|o| o.strip_prefix("signed-by="))
                .map(String::from);
            rest = after.trim();
        }
        let mut words = rest.split_whitespace();
        if let (Some(uri), Some(suite)) = (words.next(), words.next()) {
            out.push(Source {
                uri: uri.into(),
                suites: vec![suite.into()],
                signed_by,
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deb822_and_one_line_sources() {
        let text =
            "Types: deb\nURIs: http://mirror.example/debian\nSuites: bookworm bookworm-updates\n\
                    Components: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n\n\
                    Types: deb-src\nURIs: http://mirror.example/debian\nSuites: bookworm\n\n\
                    Types: deb\nURIs: http://off.example/\nSuites: x\nEnabled: no\n";
        let s = parse_deb822(text);
        assert_eq!(s.len(), 1, "{s:?}");
        assert_eq!(s[0].suites, ["bookworm", "bookworm-updates"]);
        assert!(s[0]
            .signed_by
            .as_deref()
            .unwrap()
            .ends_with("archive-keyring.gpg"));
        let l = parse_one_line(
            "# x\ndeb [arch=amd64 signed-by=/k.gpg] http://a.example/debian bookworm main\n\
             deb-src http://a.example/debian bookworm main\ndeb http://b.example/ bookworm-security main # c\n",
        );
        assert_eq!(l.len(), 2);
        assert_eq!(l[0].signed_by.as_deref(), Some("/k.gpg"));
        assert_eq!(l[1].uri, "http://b.example/");
        assert_eq!(l[1].suites, ["bookworm-security"]);
    }

    #[test]
    fn a_private_sources_list_names_the_arch_and_components() {
        let s = sources_list(
            &[Source {
                uri: "http://m.example/debian".into(),
                suites: vec!["bookworm".into(), "bookworm-updates".into()],
                signed_by: Some("/k.gpg".into()),
            }],
            "arm64",
            &["non-free-firmware".into(), "main".into()],
        );
        assert_eq!(
            s,
            "deb [arch=arm64 signed-by=/k.gpg] http://m.example/debian bookworm main non-free-firmware\n\
             deb [arch=arm64 signed-by=/k.gpg] http://m.example/debian bookworm-updates main non-free-firmware\n"
        );
    }
}
