//! Clean-up after a worker that died mid-upload.
//!
//! A worker killed with SIGKILL cannot abort its upload. With S3 that leaves an incomplete
//! multipart upload (invisible, but billed until aborted); the job's checkpoint holds its id,
//! so the next attempt aborts it by id. The local store leaves its staging file next to the
//! target — `name#1`, `name#2`, … (object_store's `LocalFileSystem` naming) — which is simply
//! removed.
//!
//! Call this only for an attempt known to be dead (its lease ran out): it also removes the
//! staging file of a live local upload to the same key.

use super::{Backend, LocalBackend, ObjectKey, Storage, StorageError};
use object_store::multipart::MultipartStore;
use std::ffi::OsStr;
use std::io;

impl Storage {
    /// Aborts what an interrupted upload to `key` left behind: the S3 multipart upload
    /// `upload_id` (one the store no longer knows is fine; without an id there is nothing to
    /// do), or the local store's staging files for `key`.
    pub async fn abort_stale_upload(
        &self,
        key: &ObjectKey,
        upload_id: Option<&str>,
    ) -> Result<(), StorageError> {
        match &self.inner.backend {
            Backend::S3(store) => {
                let Some(id) = upload_id else {
                    return Ok(());
                };
                match store.abort_multipart(&key.path(), &id.to_owned()).await {
                    Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
                    Err(e) => Err(StorageError::from_store(key.as_str(), e)),
                }
            }
            Backend::Local(local) => remove_staging_files(local, key).await,
        }
    }
}

/// Removes every `{file}#{digits}` next to `key`'s file.
async fn remove_staging_files(local: &LocalBackend, key: &ObjectKey) -> Result<(), StorageError> {
    let target = local
        .store
        .path_to_filesystem(&key.path())
        .map_err(|e| StorageError::from_store(key.as_str(), e))?;
    let (Some(dir), Some(name)) = (target.parent(), target.file_name()) else {
        return Ok(());
    };
    let mut entries = match tokio::fs::read_dir(dir).await {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(StorageError::from_io(e)),
    };
    while let Some(entry) = entries.next_entry().await.map_err(StorageError::from_io)? {
        if is_staging_file_of(&entry.file_name(), name) {
            match tokio::fs::remove_file(entry.path()).await {
                Err(e) if e.kind() != io::ErrorKind::NotFound => {
                    return Err(StorageError::from_io(e));
                }
                _ => {}
            }
        }
    }
    Ok(())
}

/// Whether `candidate` is `{name}#{digits}`.
fn is_staging_file_of(candidate: &OsStr, name: &OsStr) -> bool {
    let (Some(candidate), Some(name)) = (candidate.to_str(), name.to_str()) else {
        return false;
    };
    candidate
        .strip_prefix(name)
        .and_then(|rest| rest.strip_prefix('#'))
        .is_some_and(|digits| !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_numbered_staging_files_of_the_same_name_match() {
        let name = OsStr::new("users.csv");
        assert!(is_staging_file_of(OsStr::new("users.csv#1"), name));
        assert!(is_staging_file_of(OsStr::new("users.csv#42"), name));
        assert!(!is_staging_file_of(OsStr::new("users.csv"), name));
        assert!(!is_staging_file_of(OsStr::new("users.csv#"), name));
        assert!(!is_staging_file_of(OsStr::new("users.csv#1a"), name));
        assert!(!is_staging_file_of(OsStr::new("users.csv.gz#1"), name));
        assert!(!is_staging_file_of(OsStr::new("xusers.csv#1"), name));
    }
}
