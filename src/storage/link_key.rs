//! The key of Ferry-signed links when none is configured: 32 random bytes, made once and kept
//! in `data_dir/link-signing.key` (mode 0600), so links survive a restart.
//!
//! The file is written under a temporary name and then hard-linked into place, which fails if
//! it exists: two processes starting at once agree on one key, and a reader never sees a
//! half-written file.

use super::StorageError;
use rand::RngCore;
use std::fs;
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

/// The file's name in the data directory.
pub const KEY_FILE: &str = "link-signing.key";
/// Random bytes in a generated key.
const KEY_BYTES: usize = 32;

/// The key kept in `data_dir`, created there first if missing.
pub fn load_or_create(data_dir: &Path) -> Result<Vec<u8>, StorageError> {
    let path = data_dir.join(KEY_FILE);
    match read(&path) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        other => return other.map_err(|e| key_file_error(&path, e)),
    }
    fs::create_dir_all(data_dir).map_err(|e| key_file_error(data_dir, e))?;
    create(&path).map_err(|e| key_file_error(&path, e))?;
    read(&path).map_err(|e| key_file_error(&path, e))
}

/// Reads and decodes the hex key file.
fn read(path: &Path) -> io::Result<Vec<u8>> {
    let text = fs::read_to_string(path)?;
    let key =
        hex::decode(text.trim()).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
    if key.len() < 16 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "the key is shorter than 16 bytes",
        ));
    }
    Ok(key)
}

/// Writes a fresh key unless another process got there first.
fn create(path: &Path) -> io::Result<()> {
    let mut key = [0u8; KEY_BYTES];
    rand::rng().fill_bytes(&mut key);
    let temporary = path.with_extension(format!("tmp-{}", uuid::Uuid::new_v4()));
    let written = write_private(&temporary, hex::encode(key).as_bytes())
        .and_then(|()| fs::hard_link(&temporary, path));
    let _ = fs::remove_file(&temporary);
    match written {
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(()),
        other => other,
    }
}

/// Creates `path` readable by its owner only, writes `bytes` and syncs.
fn write_private(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}

fn key_file_error(path: &Path, error: io::Error) -> StorageError {
    StorageError::Config(format!("link signing key {}: {error}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn temp_dir() -> std::path::PathBuf {
        std::env::temp_dir().join(format!("ferry-link-key-{}", uuid::Uuid::new_v4()))
    }

    #[test]
    fn the_key_is_made_once_private_and_then_reused() {
        let dir = temp_dir();
        let first = load_or_create(&dir).unwrap();
        assert_eq!(first.len(), KEY_BYTES);
        let mode = fs::metadata(dir.join(KEY_FILE))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        assert_eq!(load_or_create(&dir).unwrap(), first);
        assert_eq!(
            fs::read_dir(&dir).unwrap().count(),
            1,
            "a temporary file was left"
        );
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn a_damaged_key_file_stops_the_start_instead_of_being_replaced() {
        let dir = temp_dir();
        fs::create_dir_all(&dir).unwrap();
        fs::write(dir.join(KEY_FILE), "not hex").unwrap();
        let error = load_or_create(&dir).unwrap_err();
        assert!(matches!(error, StorageError::Config(_)), "{error}");
        fs::remove_dir_all(dir).unwrap();
    }
}
