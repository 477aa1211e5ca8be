//! Object keys: the layout of the bucket, and the rules that keep a key inside it.
//!
//! A key is relative to the store's root (the bucket prefix or the local directory), which
//! [`Storage`](super::Storage) applies; a key never carries it. Every key is checked once, when
//! it is made: no `.` or `..` segment, no absolute path, no empty segment, no control
//! character or backslash, and no `#N` suffix (the local store's names for staging files).
//! So a key read back from a database or taken from a link's path can never point outside the
//! store.

use super::StorageError;
use crate::domain::JobId;
use crate::domain::names::slug;
use object_store::path::Path;
use std::fmt;

/// The longest key accepted, in bytes (S3 allows 1024 with the prefix).
const MAX_KEY: usize = 900;

/// A checked, store-relative object key such as `exports/acme/0192…/users.csv`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ObjectKey(String);

impl ObjectKey {
    /// Checks `text` and wraps it; see the module documentation for the rules.
    pub fn parse(text: &str) -> Result<Self, StorageError> {
        match problem(text) {
            None => Ok(Self(text.to_owned())),
            Some(reason) => Err(StorageError::InvalidKey {
                key: text.chars().take(200).collect(),
                reason,
            }),
        }
    }

    /// The key as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The object_store path of this key, relative to the store's root.
    pub(crate) fn path(&self) -> Path {
        // Every rule of `Path::parse` is one of ours, so this only fails if they drift apart;
        // then the raw form (which percent-encodes what it cannot keep) is still confined.
        Path::parse(&self.0).unwrap_or_else(|_| Path::from(self.0.as_str()))
    }

    /// The last segment: the object's own name.
    pub fn file_name(&self) -> &str {
        self.0.rsplit('/').next().unwrap_or(&self.0)
    }
}

impl fmt::Display for ObjectKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The key of an export's file: `exports/{tenant}/{job id}/{name}.{ext}`, each part slugged.
pub fn export_key(tenant: &str, job: JobId, name: &str, ext: &str) -> ObjectKey {
    let ext = slug(ext, "bin");
    let file = format!("{}.{ext}", slug(name, "export"));
    ObjectKey(format!("exports/{}/{job}/{file}", slug(tenant, "tenant")))
}

/// The key of an import's file: `imports/{tenant}/{job id}/{file}` with `file` one of
/// `upload` (the stored upload) or `rejects.csv` (its rejects report).
pub fn import_key(tenant: &str, job: JobId, file: &str) -> ObjectKey {
    ObjectKey(format!(
        "imports/{}/{job}/{}",
        slug(tenant, "tenant"),
        slug(file, "file")
    ))
}

/// Why `text` is not a safe key, if it is not.
fn problem(text: &str) -> Option<&'static str> {
    if text.is_empty() {
        return Some("it is empty");
    }
    if text.len() > MAX_KEY {
        return Some("it is too long");
    }
    if text.starts_with('/') || text.ends_with('/') {
        return Some("it starts or ends with '/'");
    }
    if text.chars().any(|c| c.is_control() || c == '\\') {
        return Some("it contains a control character or a backslash");
    }
    if text
        .split('/')
        .any(|s| s.is_empty() || s == "." || s == "..")
    {
        return Some("it has an empty, '.' or '..' segment");
    }
    let last = text.rsplit('/').next().unwrap_or(text);
    if let Some((_, suffix)) = last.rsplit_once('#')
        && !suffix.is_empty()
        && suffix.bytes().all(|b| b.is_ascii_digit())
    {
        return Some("it ends in '#' and digits, the local store's staging names");
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_export_key_follows_the_documented_layout() {
        let job = JobId::new();
        let key = export_key("Acme Inc", job, "Users — pro plan", "csv.gz");
        assert_eq!(
            key.as_str(),
            format!("exports/Acme-Inc/{job}/Users-pro-plan.csv.gz")
        );
        assert_eq!(key.file_name(), "Users-pro-plan.csv.gz");
    }

    #[test]
    fn hostile_names_cannot_leave_the_exports_folder() {
        let job = JobId::new();
        let key = export_key("../..", job, "../../etc/passwd", "/x/../y");
        assert_eq!(
            key.as_str(),
            format!("exports/tenant/{job}/etc-passwd.x-..-y")
        );
        assert!(ObjectKey::parse(key.as_str()).is_ok());
    }

    #[test]
    fn keys_that_could_escape_the_store_are_refused() {
        for bad in [
            "",
            "../secret",
            "a/../../b",
            "a/./b",
            "/etc/passwd",
            "a//b",
            "a/",
            "a\\..\\b",
            "a/b\0c",
            "a/b\nc",
            "a/file.csv#1",
        ] {
            assert!(ObjectKey::parse(bad).is_err(), "{bad:?} was accepted");
        }
        assert!(ObjectKey::parse(&"a".repeat(MAX_KEY + 1)).is_err());
    }

    #[test]
    fn ordinary_keys_are_accepted() {
        for good in [
            "a",
            "exports/t/1/file.csv",
            "x/ü ß/name#tag",
            "a/.hidden",
            "a/..b",
        ] {
            assert!(ObjectKey::parse(good).is_ok(), "{good:?} was refused");
        }
    }

    #[test]
    fn object_store_paths_refuse_parent_segments_too() {
        assert!(Path::parse("a/../b").is_err());
        assert!(Path::parse("..").is_err());
    }
}
