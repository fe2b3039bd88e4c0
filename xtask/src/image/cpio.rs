//! The root filesystem as a `newc` cpio archive (the kernel's initramfs format), written in
//! one pass from an in-memory tree: sorted paths, every parent directory before its
//! children, inode numbers in path order, one fixed time, owner root. The same tree gives the
//! same bytes.

use std::collections::BTreeMap;
use std::io::{self, Write};
use std::path::PathBuf;

/// What a path is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Node {
    /// A directory.
    Dir {
        /// Permission bits.
        mode: u32,
    },
    /// A file copied from the build machine.
    File {
        /// Permission bits.
        mode: u32,
        /// Where its bytes are.
        source: PathBuf,
    },
    /// A file made by the build.
    Data {
        /// Permission bits.
        mode: u32,
        /// Its bytes.
        data: Vec<u8>,
    },
    /// A symbolic link.
    Link(String),
    /// A character device node (`/dev/console`, which the kernel opens before `/init` runs).
    CharDev {
        /// Permission bits.
        mode: u32,
        /// Major number.
        major: u32,
        /// Minor number.
        minor: u32,
    },
}

/// A tree of paths (relative, without a leading `/`).
#[derive(Debug, Default)]
pub struct Tree {
    nodes: BTreeMap<String, Node>,
}

impl Tree {
    /// Adds `node` at `path` (replacing what was there), and its missing parent directories
    /// (0755). A parent that is a file or a link is an error: the kernel would put the child
    /// somewhere else, or nowhere.
    pub fn add(&mut self, path: &str, node: Node) -> anyhow::Result<()> {
        let comps: Vec<&str> = path.split('/').collect();
        if comps
            .iter()
            .any(|c| c.is_empty() || *c == "." || *c == "..")
        {
            anyhow::bail!("`{path}` is not a plain relative path");
        }
        let mut parent = String::new();
        for comp in &comps[..comps.len() - 1] {
            if !parent.is_empty() {
                parent.push('/');
            }
            parent.push_str(comp);
            let p = self
                .nodes
                .entry(parent.clone())
                .or_insert(Node::Dir { mode: 0o755 });
            if !matches!(p, Node::Dir { .. }) {
                anyhow::bail!("cannot put {path} under {parent}, which is not a directory");
            }
        }
        self.nodes.insert(path.to_string(), node);
        Ok(())
    }

    /// Whether `path` is in the tree.
    pub fn contains(&self, path: &str) -> bool {
        self.nodes.contains_key(path)
    }

    /// Writes the archive; every entry gets `mtime`.
    pub fn write_newc(&self, out: &mut impl Write, mtime: u32) -> io::Result<u64> {
        let mut w = Counter { inner: out, n: 0 };
        // Directories first in sorted order puts each parent before its children: a parent
        // is a prefix of its child's path, so it sorts before it.
        for (ino, (path, node)) in self.nodes.iter().enumerate() {
            let (mode, data, rdev) = match node {
                Node::Dir { mode } => (0o040000 | mode, Vec::new(), (0, 0)),
                Node::File { mode, source } => (
                    0o100000 | mode,
                    std::fs::read(source).map_err(|e| {
                        io::Error::new(e.kind(), format!("{}: {e}", source.display()))
                    })?,
                    (0, 0),
                ),
                Node::Data { mode, data } => (0o100000 | mode, data.clone(), (0, 0)),
                Node::Link(target) => (0o120777, target.as_bytes().to_vec(), (0, 0)),
                Node::CharDev { mode, major, minor } => {
                    (0o020000 | mode, Vec::new(), (*major, *minor))
                }
            };
            let nlink = if matches!(node, Node::Dir { .. }) {
                2
            } else {
                1
            };
            header(
                &mut w,
                ino as u32 + 1,
                mode,
                nlink,
                mtime,
                data.len(),
                rdev,
                path,
            )?;
            w.write_all(&data)?;
            pad(&mut w)?;
        }
        header(&mut w, 0, 0, 1, 0, 0, (0, 0), "TRAILER!!!")?;
        Ok(w.n)
    }
}

#[allow(clippy::too_many_arguments)]
fn header(
    w: &mut Counter<impl Write>,
    ino: u32,
    mode: u32,
    nlink: u32,
    mtime: u32,
    size: usize,
    rdev: (u32, u32),
    name: &str,
) -> io::Result<()> {
    let fields = [
        ino,
        mode,
        0,
        0,
        nlink,
        mtime,
        size as u32,
        0,
        0,
        rdev.0,
        rdev.1,
        name.len() as u32 + 1,
        0,
    ];
    let mut h = String::from("070701");
    for f in fields {
        h.push_str(&format!("{f:08X}"));
    }
    w.write_all(h.as_bytes())?;
    w.write_all(name.as_bytes())?;
    w.write_all(&[0])?;
    pad(w)
}

fn pad(w: &mut Counter<impl Write>) -> io::Result<()> {
    let n = (4 - w.n % 4) % 4;
    w.write_all(&[0u8; 3][..n as usize])
}

struct Counter<W> {
    inner: W,
    n: u64,
}

impl<W: Write> Write for Counter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let k = self.inner.write(buf)?;
        self.n += k as u64;
        Ok(k)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::{Command, Stdio};

    /// GNU cpio reads back what we wrote: names, kinds, link targets, contents.
    #[test]
    fn gnu_cpio_lists_and_extracts_the_archive() {
        let mut t = Tree::default();
        t.add(
            "usr/bin/hello",
            Node::Data {
                mode: 0o755,
                data: b"hi\n".to_vec(),
            },
        )
        .unwrap();
        t.add("bin", Node::Link("usr/bin".into())).unwrap();
        t.add(
            "etc/motd",
            Node::Data {
                mode: 0o644,
                data: b"12345".to_vec(),
            },
        )
        .unwrap();
        t.add(
            "dev/console",
            Node::CharDev {
                mode: 0o600,
                major: 5,
                minor: 1,
            },
        )
        .unwrap();
        assert!(t.contains("usr") && t.contains("usr/bin"));
        let link = || Node::Link("y".into());
        assert!(t
            .add("bin/x", link())
            .unwrap_err()
            .to_string()
            .contains("not a directory"));
        assert!(t.add("etc/motd/x", link()).is_err());
        assert!(t.add("../x", link()).is_err() && t.add("/x", link()).is_err());
        assert!(t.add("", link()).is_err());
        let mut a = Vec::new();
        let n = t.write_newc(&mut a, 1_700_000_000).unwrap();
        assert_eq!(n as usize, a.len());
        assert_eq!(a.len() % 4, 0);
        let mut b = Vec::new();
        t.write_newc(&mut b, 1_700_000_000).unwrap();
        assert_eq!(a, b, "the same tree gives the same bytes");

        let Ok(mut cpio) = Command::new("cpio")
            .args(["-t", "-v", "--quiet"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
        else {
            panic!("cpio is needed for this test (apt-get install cpio)");
        };
        cpio.stdin.take().unwrap().write_all(&a).unwrap();
        let out = cpio.wait_with_output().unwrap();
        assert!(out.status.success());
        let listing = String::from_utf8(out.stdout).unwrap();
        let names: Vec<&str> = listing
            .lines()
            .map(|l| {
                l.split(" -> ")
                    .next()
                    .unwrap()
                    .split_whitespace()
                    .last()
                    .unwrap()
            })
            .collect();
        assert_eq!(
            names,
            [
                "bin",
                "dev",
                "dev/console",
                "etc",
                "etc/motd",
                "usr",
                "usr/bin",
                "usr/bin/hello"
            ]
        );
        assert!(listing.contains("bin -> usr/bin"), "{listing}");
        assert!(
            listing
                .lines()
                .any(|l| l.starts_with("crw-------") && l.contains("5,")),
            "{listing}"
        );
        assert!(
            listing.lines().any(|l| l.starts_with("-rw-r--r--")
                && l.contains(" 5 ")
                && l.ends_with("etc/motd")),
            "{listing}"
        );
    }
}
