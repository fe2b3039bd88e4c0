//! `cargo xtask tidy`: the house rules a compiler does not check, run by `cargo xtask test`
//! (rust-analyzer keeps the same habit in its `tidy` test):
//!
//! - every module of every crate is named in `docs/architecture.md`, in its crate's section
//!   (`## \`phone/\` …`; see [`named`] for the forms a name may take);
//!   test-only files (`tests.rs`, `…/tests/…`) are not modules of the map;
//! - no `allow(dead_code)` outside test code (code kept for "later callers" is deleted, a
//!   test helper lives in the test module);
//! - no file has more than [`MAX_CODE_LINES`] lines of non-test code (non-blank lines that
//!   are not only a comment, before the file's `#[cfg(test)]` module).
//!
//! The checks are pure over the map's text and the files' texts; [`run`] reads the tree.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

/// The most non-test code lines a file may have.
pub const MAX_CODE_LINES: usize = 1500;

/// A source file of a crate: the crate's directory (`phone`), the path under `src/`
/// (`media/video.rs`) and its text.
pub struct Source {
    pub krate: String,
    pub rel: String,
    pub text: String,
}

/// The crate directories the map has a section for, each with the section's text.
fn sections(map: &str) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    for line in map.lines() {
        if let Some(rest) = line.strip_prefix("## ") {
            let krate = rest
                .strip_prefix('`')
                .and_then(|r| r.split_once("/`"))
                .map(|(k, _)| k.to_owned());
            out.push((krate.unwrap_or_default(), String::new()));
        } else if let Some((_, text)) = out.last_mut() {
            text.push_str(line);
            text.push('\n');
        }
    }
    out.retain(|(k, _)| !k.is_empty());
    out
}

/// Whether `rel` (a path under `src/`) is test code only.
fn is_test_file(rel: &str) -> bool {
    rel == "tests.rs" || rel.ends_with("/tests.rs") || rel.contains("tests/")
}

/// Whether a crate's section of the map names the module in `rel`: by its path under `src/`
/// or its file name in backticks (`` `media/video.rs` ``, `` `video.rs` ``), by a longer path
/// ending in it (`` `xtask/src/qemu.rs` ``) or by its module path (`` `config` ``,
/// `` `media::video` ``); a `mod.rs` by its directory (`` `media/` ``, `` `media` ``).
fn named(section: &str, rel: &str) -> bool {
    let (path, module) = match rel.strip_suffix("/mod.rs") {
        Some(dir) => (format!("{dir}/"), dir.to_owned()),
        None => (rel.to_owned(), rel.trim_end_matches(".rs").to_owned()),
    };
    let base = path
        .trim_end_matches('/')
        .rsplit('/')
        .next()
        .unwrap_or(&path)
        .to_owned();
    let base = if path.ends_with('/') {
        format!("{base}/")
    } else {
        base
    };
    [
        format!("`{path}`"),
        format!("`{base}`"),
        format!("/{path}`"),
        format!("`{rel}`"),
        format!("`{}`", module.replace('/', "::")),
    ]
    .iter()
    .any(|n| section.contains(n.as_str()))
}

/// The lines of non-test code: before the `#[cfg(test)]` that opens the test module, not
/// blank, not only a comment.
pub fn code_lines(text: &str) -> usize {
    let mut n = 0;
    let mut lines = text.lines().peekable();
    while let Some(line) = lines.next() {
        let t = line.trim();
        if t == "#[cfg(test)]"
            && lines
                .peek()
                .is_some_and(|next| next.trim_start().starts_with("mod "))
        {
            break;
        }
        if !t.is_empty() && !t.starts_with("//") {
            n += 1;
        }
    }
    n
}

/// What breaks the house rules, one line each (empty: tidy).
pub fn check(map: &str, sources: &[Source]) -> Vec<String> {
    let sections = sections(map);
    let mut problems = Vec::new();
    for s in sources {
        let file = format!("{}/src/{}", s.krate, s.rel);
        let test_file = is_test_file(&s.rel);
        if !test_file && s.rel != "lib.rs" && s.rel != "main.rs" {
            match sections.iter().find(|(k, _)| *k == s.krate) {
                None => problems.push(format!(
                    "{file}: docs/architecture.md has no section `## \\`{}/\\``",
                    s.krate
                )),
                Some((_, text)) => {
                    if !named(text, &s.rel) {
                        problems.push(format!(
                            "{file}: not named in docs/architecture.md: add a line for `{}` \
                             to the `{}/` section",
                            s.rel, s.krate
                        ));
                    }
                }
            }
        }
        if !test_file {
            let code_end = test_module_start(&s.text);
            for (i, line) in s.text.lines().enumerate().take(code_end) {
                let t = line.trim_start();
                if t.starts_with("#") && t.contains("allow(dead_code)") {
                    problems.push(format!(
                        "{file}:{}: allow(dead_code) outside test code",
                        i + 1
                    ));
                }
            }
            let n = code_lines(&s.text);
            if n > MAX_CODE_LINES {
                problems.push(format!(
                    "{file}: {n} lines of non-test code (at most {MAX_CODE_LINES}): split it"
                ));
            }
        }
    }
    problems
}

/// The index of the line that opens the test module (the line count when there is none).
fn test_module_start(text: &str) -> usize {
    let lines: Vec<&str> = text.lines().collect();
    lines
        .windows(2)
        .position(|w| w[0].trim() == "#[cfg(test)]" && w[1].trim_start().starts_with("mod "))
        .unwrap_or(lines.len())
}

/// Every `.rs` file under each workspace crate's `src/`.
fn read_sources(repo: &Path) -> Result<Vec<Source>> {
    let manifest = fs::read_to_string(repo.join("Cargo.toml"))?;
    let table: toml::Table = toml::from_str(&manifest)?;
    let members = table
        .get("workspace")
        .and_then(|w| w.get("members"))
        .and_then(|m| m.as_array())
        .context("Cargo.toml: no [workspace] members")?;
    let mut out = Vec::new();
    for m in members {
        let krate = m
            .as_str()
            .context("a workspace member that is not a string")?;
        let src = repo.join(krate).join("src");
        let mut files = Vec::new();
        walk(&src, &mut files)?;
        files.sort();
        for f in files {
            let rel = f
                .strip_prefix(&src)
                .unwrap_or(&f)
                .to_string_lossy()
                .into_owned();
            let text =
                fs::read_to_string(&f).with_context(|| format!("reading {}", f.display()))?;
            out.push(Source {
                krate: krate.to_owned(),
                rel,
                text,
            });
        }
    }
    Ok(out)
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
    for e in fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let p = e?.path();
        if p.is_dir() {
            walk(&p, out)?;
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
    Ok(())
}

/// `cargo xtask tidy`.
pub fn run() -> Result<()> {
    let repo = crate::root();
    let map = fs::read_to_string(repo.join("docs/architecture.md"))
        .context("reading docs/architecture.md")?;
    let sources = read_sources(&repo)?;
    let problems = check(&map, &sources);
    for p in &problems {
        eprintln!("tidy: {p}");
    }
    if !problems.is_empty() {
        bail!("tidy: {} problem(s)", problems.len());
    }
    println!("tidy: {} files, every module in the map", sources.len());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAP: &str = "# map\n\n## `phone/` — ewindow-phone\n\n| `call.rs` | a call |\n\
                       | `media/` | GStreamer |\n| `video.rs` | video |\n\n## Tests\n\n`sdp.rs`\n";

    fn src(rel: &str, text: &str) -> Source {
        Source {
            krate: "phone".into(),
            rel: rel.into(),
            text: text.into(),
        }
    }

    #[test]
    fn a_module_without_a_line_in_the_map_fails() {
        let tree = vec![
            src("main.rs", "fn main() {}\n"),
            src("call.rs", "pub fn f() {}\n"),
            src("media/mod.rs", "pub mod video;\n"),
            src("media/video.rs", "pub fn v() {}\n"),
            src("media/tests.rs", "#[test]\nfn t() {}\n"),
        ];
        assert_eq!(check(MAP, &tree), Vec::<String>::new());
        let mut tree = tree;
        // named only outside its crate's section
        tree.push(src("sdp.rs", "pub fn s() {}\n"));
        let p = check(MAP, &tree);
        assert_eq!(p.len(), 1, "{p:?}");
        assert!(p[0].starts_with("phone/src/sdp.rs: not named"), "{p:?}");
        let other = Source {
            krate: "newcrate".into(),
            rel: "thing.rs".into(),
            text: String::new(),
        };
        let p = check(MAP, &[other]);
        assert!(p[0].contains("no section"), "{p:?}");
    }

    #[test]
    fn dead_code_allowed_only_in_tests() {
        let kept = "#[allow(dead_code)]\npub fn later() {}\n";
        let p = check(MAP, &[src("call.rs", kept)]);
        assert_eq!(
            p,
            ["phone/src/call.rs:1: allow(dead_code) outside test code"]
        );
        let cfg_attr = "#[cfg_attr(not(test), allow(dead_code))]\npub fn later() {}\n";
        assert_eq!(check(MAP, &[src("call.rs", cfg_attr)]).len(), 1);
        let in_tests = "pub fn f() {}\n\n#[cfg(test)]\nmod tests {\n    #[allow(dead_code)]\n    fn h() {}\n}\n";
        assert!(check(MAP, &[src("call.rs", in_tests)]).is_empty());
        assert!(check(MAP, &[src("media/tests.rs", kept)]).is_empty());
    }

    #[test]
    fn long_files_are_counted_without_tests_comments_and_blanks() {
        let mut text = String::new();
        for i in 0..MAX_CODE_LINES {
            text.push_str(&format!("const C{i}: u32 = {i};\n// a comment\n\n"));
        }
        text.push_str("#[cfg(test)]\nmod tests {\n");
        for _ in 0..100 {
            text.push_str("    fn t() {}\n");
        }
        text.push_str("}\n");
        assert_eq!(code_lines(&text), MAX_CODE_LINES);
        assert!(check(MAP, &[src("call.rs", &text)]).is_empty());
        let longer = format!("const X: u32 = 0;\n{text}");
        let p = check(MAP, &[src("call.rs", &longer)]);
        assert_eq!(p.len(), 1, "{p:?}");
        assert!(p[0].contains("1501 lines of non-test code"), "{p:?}");
    }
}
