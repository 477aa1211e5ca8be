//! Building a [`Storage`] from the `[storage]` settings: which backend, where, with what
//! credentials. Runs once at start-up; every problem is a [`StorageError::Config`] that stops
//! the process there.

use super::links::LinkSigner;
use super::{Backend, Inner, LocalBackend, Storage, StorageError, link_key};
use crate::config::{Settings, StorageSettings};
use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::local::LocalFileSystem;
use object_store::path::Path as StorePath;
use object_store::prefix::PrefixStore;
use object_store::{BackoffConfig, RetryConfig};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// Where the files are, from `storage.url`.
#[derive(Debug, PartialEq, Eq)]
enum Location {
    /// `file:///path`, or `data_dir/files` when no URL is set.
    Directory(PathBuf),
    /// `s3://bucket/prefix`.
    Bucket { bucket: String, prefix: String },
}

impl Storage {
    /// Opens the store the settings name: S3 for `s3://bucket/prefix`, else a local directory
    /// (`file:///path`, default `data_dir/files`), created if missing.
    pub fn from_settings(settings: &Settings) -> Result<Storage, StorageError> {
        let config = &settings.storage;
        let backend = match location(config.url.as_deref(), &settings.data_dir)? {
            Location::Directory(dir) => Backend::Local(open_local(&dir, settings)?),
            Location::Bucket { bucket, prefix } => Backend::S3(open_s3(&bucket, &prefix, config)?),
        };
        let part_size = usize::try_from(config.part_size.as_u64())
            .ok()
            .filter(|size| *size > 0)
            .ok_or_else(|| StorageError::Config("storage.part_size is out of range".to_owned()))?;
        if config.max_parts_in_flight == 0 {
            return Err(StorageError::Config(
                "storage.max_parts_in_flight must be at least 1".to_owned(),
            ));
        }
        Ok(Storage {
            inner: Arc::new(Inner {
                backend,
                part_size,
                max_parts_in_flight: config.max_parts_in_flight,
                max_upload: settings.limits.max_upload.as_u64(),
            }),
        })
    }
}

/// Reads `storage.url`.
fn location(url: Option<&str>, data_dir: &Path) -> Result<Location, StorageError> {
    let Some(text) = url else {
        return Ok(Location::Directory(data_dir.join("files")));
    };
    let bad = |why: &str| StorageError::Config(format!("storage.url {text:?}: {why}"));
    let parsed = url::Url::parse(text).map_err(|e| bad(&e.to_string()))?;
    match parsed.scheme() {
        "file" => parsed
            .to_file_path()
            .map(Location::Directory)
            .map_err(|()| bad("not an absolute local path")),
        "s3" => {
            let bucket = parsed
                .host_str()
                .filter(|b| !b.is_empty())
                .ok_or_else(|| bad("no bucket"))?;
            let prefix = percent_encoding::percent_decode_str(parsed.path())
                .decode_utf8()
                .map_err(|_| bad("the prefix is not UTF-8"))?;
            Ok(Location::Bucket {
                bucket: bucket.to_owned(),
                prefix: prefix.trim_matches('/').to_owned(),
            })
        }
        _ => Err(bad("must start with s3:// or file://")),
    }
}

/// The local directory, created if missing, and the key for its links.
fn open_local(dir: &Path, settings: &Settings) -> Result<LocalBackend, StorageError> {
    let unusable = |e: &dyn std::fmt::Display| {
        StorageError::Config(format!("storage directory {}: {e}", dir.display()))
    };
    std::fs::create_dir_all(dir).map_err(|e| unusable(&e))?;
    let root = std::fs::canonicalize(dir).map_err(|e| unusable(&e))?;
    let store = LocalFileSystem::new_with_prefix(&root)
        .map_err(|e| unusable(&e))?
        // A finished export is on disk, as it would be in S3, and empty folders go with it.
        .with_fsync(true)
        .with_automatic_cleanup(true);
    let key = match &settings.storage.signing_key {
        Some(secret) => secret.expose().as_bytes().to_vec(),
        None => link_key::load_or_create(&settings.data_dir)?,
    };
    Ok(LocalBackend {
        store: Arc::new(store),
        root,
        signer: LinkSigner::new(&key)?,
        public_base: settings.public_base(),
    })
}

/// The bucket, with the `AWS_*` environment first and the settings over it.
fn open_s3(
    bucket: &str,
    prefix: &str,
    config: &StorageSettings,
) -> Result<Arc<PrefixStore<AmazonS3>>, StorageError> {
    let mut builder = AmazonS3Builder::from_env()
        .with_bucket_name(bucket)
        .with_region(&config.region)
        .with_retry(outage_retries());
    if let Some(endpoint) = &config.endpoint {
        builder = builder
            .with_endpoint(endpoint)
            .with_allow_http(endpoint.starts_with("http://"));
    }
    if let Some(id) = &config.access_key_id {
        builder = builder.with_access_key_id(id);
    }
    if let Some(secret) = &config.secret_access_key {
        builder = builder.with_secret_access_key(secret.expose());
    }
    let s3 = builder
        .build()
        .map_err(|e| StorageError::Config(format!("S3 bucket {bucket:?}: {e}")))?;
    let prefix = StorePath::parse(prefix)
        .map_err(|e| StorageError::Config(format!("S3 key prefix {prefix:?}: {e}")))?;
    Ok(Arc::new(PrefixStore::new(s3, prefix)))
}

/// How a request to S3 is retried: object_store's default (10 retries with full-jitter backoff
/// from 100 ms) gives up after about 5 s of refused connections, so a store that restarts or a
/// network that blinks for 20 s failed every attempt of a job. These retries ride out an outage
/// of a minute or more within one request; three minutes in all keeps a signed request valid.
fn outage_retries() -> RetryConfig {
    RetryConfig {
        backoff: BackoffConfig {
            init_backoff: Duration::from_millis(250),
            max_backoff: Duration::from_secs(8),
            base: 2.0,
        },
        max_retries: 40,
        retry_timeout: Duration::from_secs(180),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn without_a_url_files_go_to_the_data_directory() {
        assert_eq!(
            location(None, Path::new("/srv/ferry")).unwrap(),
            Location::Directory(PathBuf::from("/srv/ferry/files"))
        );
    }

    #[test]
    fn file_and_s3_urls_name_a_directory_or_a_bucket_and_prefix() {
        assert_eq!(
            location(Some("file:///var/lib/ferry/files"), Path::new("x")).unwrap(),
            Location::Directory(PathBuf::from("/var/lib/ferry/files"))
        );
        assert_eq!(
            location(Some("s3://ferry-files/tenant%20a/exports/"), Path::new("x")).unwrap(),
            Location::Bucket {
                bucket: "ferry-files".to_owned(),
                prefix: "tenant a/exports".to_owned()
            }
        );
        assert_eq!(
            location(Some("s3://ferry-files"), Path::new("x")).unwrap(),
            Location::Bucket {
                bucket: "ferry-files".to_owned(),
                prefix: String::new()
            }
        );
    }

    #[test]
    fn unusable_urls_stop_the_start() {
        for bad in ["http://x/y", "s3:///prefix", "not a url"] {
            assert!(
                matches!(
                    location(Some(bad), Path::new("x")),
                    Err(StorageError::Config(_))
                ),
                "{bad}"
            );
        }
    }

    #[test]
    fn a_bad_prefix_is_refused() {
        let config = StorageSettings::default();
        assert!(open_s3("b", "a/../b", &config).is_err());
    }
}
