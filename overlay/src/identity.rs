//! The window's identity: its WireGuard private key, made on the device at first boot and
//! kept in `/data/ewindow/identity.key` (mode 0600, base64 as `wg genkey` writes it). Never in
//! the image, never in git, never printed.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use anyhow::{anyhow, Context, Result};
use ewindow_protocol::keys::PrivateKey;

/// Reads the key, or makes one when the file does not exist. A file that exists but is not a
/// key is an error (never overwritten: it may be the only copy of a window's identity).
pub fn load_or_create(path: &Path) -> Result<PrivateKey> {
    match std::fs::read_to_string(path) {
        Ok(text) => {
            let mode = std::fs::metadata(path)?.permissions().mode() & 0o777;
            if mode & 0o077 != 0 {
                tracing::warn!(
                    "{} is readable by others (mode {mode:o}); making it 0600",
                    path.display()
                );
                std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
            }
            PrivateKey::from_base64(text.trim())
                .map_err(|e| anyhow!("{}: not a WireGuard private key: {e}", path.display()))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => create(path),
        Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
    }
}

fn create(path: &Path) -> Result<PrivateKey> {
    let key = PrivateKey::generate().map_err(|e| anyhow!("{e}"))?;
    // created 0600 before a byte is written, synced, renamed: a power cut leaves no half key
    // and no moment where the key is readable by others
    let line = format!("{}\n", key.to_base64());
    ewindow_io::write_atomically(path, line.as_bytes(), 0o600)?;
    tracing::info!(public_key = %key.public_key(), "made this window's identity key");
    Ok(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn made_once_0600_and_read_back() {
        let dir = std::env::temp_dir().join(format!("ewindow-identity-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let path = dir.join("ewindow/identity.key");
        let a = load_or_create(&path).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let b = load_or_create(&path).unwrap();
        assert_eq!(a.public_key(), b.public_key());
        // Loosened permissions are tightened; garbage is refused, not replaced.
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        load_or_create(&path).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        std::fs::write(&path, "garbage").unwrap();
        assert!(load_or_create(&path).is_err());
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "garbage");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
