//! Files replaced atomically: written to a temporary file created with the final mode (a
//! secret is never readable by others, not even for a moment), synced, renamed over the old
//! one, the directory synced. A power cut leaves the old file or the new one, never half.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

/// Replaces `path` with `bytes`, mode `mode` (e.g. 0o600 for a secret), creating its
/// directory. The error names the file.
pub fn write_atomically(path: &Path, bytes: &[u8], mode: u32) -> io::Result<()> {
    let named = |what: &str, p: &Path, e: io::Error| {
        io::Error::new(e.kind(), format!("{what} {}: {e}", p.display()))
    };
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty());
    if let Some(dir) = dir {
        fs::create_dir_all(dir).map_err(|e| named("creating", dir, e))?;
    }
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = Path::new(&tmp);
    let _ = fs::remove_file(tmp);
    let write = || -> io::Result<()> {
        let mut f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(tmp)?;
        f.write_all(bytes)?;
        f.sync_all()
    };
    if let Err(e) = write() {
        let _ = fs::remove_file(tmp);
        return Err(named("writing", tmp, e));
    }
    fs::rename(tmp, path).map_err(|e| named("replacing", path, e))?;
    if let Some(dir) = dir {
        if let Ok(d) = File::open(dir) {
            let _ = d.sync_all();
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn replaces_with_the_mode_and_leaves_no_temporary() {
        let dir = std::env::temp_dir().join(format!("ewindow-io-atomic-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        let file = dir.join("sub/secret.key");
        write_atomically(&file, b"one\n", 0o600).unwrap();
        write_atomically(&file, b"two\n", 0o600).unwrap();
        assert_eq!(fs::read(&file).unwrap(), b"two\n");
        let mode = fs::metadata(&file).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let names: Vec<_> = fs::read_dir(dir.join("sub"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["secret.key"]);
        // a file where the directory should be: the error names it, the old file stays
        let blocked = dir.join("sub/secret.key/inner");
        let e = write_atomically(&blocked, b"x", 0o644).unwrap_err();
        assert!(e.to_string().contains("secret.key"), "{e}");
        assert_eq!(fs::read(&file).unwrap(), b"two\n");
        fs::remove_dir_all(&dir).unwrap();
    }
}
