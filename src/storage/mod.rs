//! Object storage: where exported files and uploads live, and how clients get at them.
//!
//! [`Storage`] wraps one object_store backend — a local directory (the embedded default) or
//! any S3-compatible bucket — behind the few operations Ferry needs: streaming multipart
//! uploads with a bounded number of parts in flight ([`Upload`]), clean-up of an upload a
//! killed worker left behind, delete, size, read, and short-lived download links. S3 signs its
//! own links; for the local directory Ferry signs them and serves them through [`router`].
//! Keys follow one layout ([`export_key`]) and are checked so that no key can leave the store.
//! Every failure is one [`StorageError`] that says whether trying again may help.

mod disposition;
mod error;
mod explain;
mod key;
mod link_key;
mod links;
mod open;
mod put;
mod redeem;
mod resumable;
mod stale;
mod upload;

pub use disposition::{content_disposition, safe_filename};
pub use error::StorageError;
pub use explain::explain;
pub use key::{ObjectKey, export_key, import_key};
pub use links::content_type_header;
pub use links::{MAX_LINK_TTL, SignedLink};
pub use put::PutError;
pub use redeem::{LinkError, LinkUse, Redeemed};
pub use resumable::{MAX_PARTS, PartsProblem, StoredPart, check_parts, part_count, part_size_for};
pub use upload::Upload;

use bytes::Bytes;
use futures::stream::{BoxStream, StreamExt, TryStreamExt};
use links::LinkSigner;
use object_store::aws::AmazonS3;
use object_store::local::LocalFileSystem;
use object_store::prefix::PrefixStore;
use object_store::{ObjectStore, ObjectStoreExt};
use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use time::OffsetDateTime;

/// How long a readiness check waits for the store (object_store itself retries for minutes).
const PING_TIMEOUT: Duration = Duration::from_secs(5);

/// The object store for files. Cheap to clone: clones share one backend.
#[derive(Clone)]
pub struct Storage {
    inner: Arc<Inner>,
}

/// What the clones of a [`Storage`] share.
struct Inner {
    backend: Backend,
    /// Bytes per multipart part.
    part_size: usize,
    /// Parts uploaded at once by one [`Upload`].
    max_parts_in_flight: usize,
    /// The largest file a signed upload link accepts.
    max_upload: u64,
}

/// The two kinds of store.
enum Backend {
    /// A directory; links are signed by Ferry and served by [`router`].
    Local(LocalBackend),
    /// An S3-compatible bucket, with the configured key prefix applied; links are pre-signed.
    S3(Arc<PrefixStore<AmazonS3>>),
}

/// The local directory and what its links need.
struct LocalBackend {
    store: Arc<LocalFileSystem>,
    /// The directory, canonical.
    root: PathBuf,
    signer: LinkSigner,
    /// Base URL of the links, without a trailing `/`.
    public_base: String,
}

impl fmt::Debug for Storage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.inner.backend {
            Backend::Local(local) => write!(f, "Storage(local {})", local.root.display()),
            Backend::S3(s3) => write!(f, "Storage({s3})"),
        }
    }
}

impl Storage {
    /// The backend's object_store, for the operations both backends share.
    fn store(&self) -> &dyn ObjectStore {
        match &self.inner.backend {
            Backend::Local(local) => local.store.as_ref(),
            Backend::S3(s3) => s3.as_ref(),
        }
    }

    /// Whether files live in a local directory (and links are served by [`router`]).
    pub fn is_local(&self) -> bool {
        matches!(self.inner.backend, Backend::Local(_))
    }

    /// Deletes the object at `key`; a missing object is not an error.
    pub async fn delete(&self, key: &ObjectKey) -> Result<(), StorageError> {
        match self.store().delete(&key.path()).await {
            Ok(()) => Ok(()),
            Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(StorageError::from_store(key.as_str(), e)),
        }
    }

    /// The size in bytes of the object at `key`, or `None` if there is none.
    pub async fn size(&self, key: &ObjectKey) -> Result<Option<u64>, StorageError> {
        match self.store().head(&key.path()).await {
            Ok(meta) => Ok(Some(meta.size)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(StorageError::from_store(key.as_str(), e)),
        }
    }

    /// The object at `key` as a stream of chunks, read as the consumer pulls.
    pub async fn read(
        &self,
        key: &ObjectKey,
    ) -> Result<BoxStream<'static, Result<Bytes, StorageError>>, StorageError> {
        self.get(key, object_store::GetOptions::default()).await
    }

    /// The object at `key` from byte `offset` on (nothing when it has no more bytes), as
    /// [`Storage::read`] gives it: a chunked import's retry enters the file at its checkpoint.
    pub async fn read_from(
        &self,
        key: &ObjectKey,
        offset: u64,
    ) -> Result<BoxStream<'static, Result<Bytes, StorageError>>, StorageError> {
        if offset == 0 {
            return self.read(key).await;
        }
        let size = self
            .size(key)
            .await?
            .ok_or_else(|| StorageError::NotFound {
                key: key.as_str().to_owned(),
            })?;
        if offset >= size {
            return Ok(futures::stream::empty().boxed());
        }
        let options = object_store::GetOptions {
            range: Some(object_store::GetRange::Offset(offset)),
            ..Default::default()
        };
        self.get(key, options).await
    }

    async fn get(
        &self,
        key: &ObjectKey,
        options: object_store::GetOptions,
    ) -> Result<BoxStream<'static, Result<Bytes, StorageError>>, StorageError> {
        let result = self
            .store()
            .get_opts(&key.path(), options)
            .await
            .map_err(|e| StorageError::from_store(key.as_str(), e))?;
        let key = key.as_str().to_owned();
        Ok(result
            .into_stream()
            .map_err(move |e| StorageError::from_store(&key, e))
            .boxed())
    }

    /// The first `len` bytes of the object at `key`, which must be at least that long (ask
    /// [`Storage::size`] first).
    pub async fn read_head(&self, key: &ObjectKey, len: u64) -> Result<Bytes, StorageError> {
        if len == 0 {
            return Ok(Bytes::new());
        }
        self.store()
            .get_range(&key.path(), 0..len)
            .await
            .map_err(|e| StorageError::from_store(key.as_str(), e))
    }

    /// Checks that the store answers within a few seconds, for readiness: the directory
    /// exists, or the bucket accepts an authenticated request.
    pub async fn ping(&self) -> Result<(), StorageError> {
        match tokio::time::timeout(PING_TIMEOUT, self.probe()).await {
            Ok(result) => result,
            Err(elapsed) => Err(StorageError::Unreachable(Box::new(elapsed))),
        }
    }

    async fn probe(&self) -> Result<(), StorageError> {
        match &self.inner.backend {
            Backend::Local(local) => {
                let meta = tokio::fs::metadata(&local.root)
                    .await
                    .map_err(StorageError::from_io)?;
                if meta.is_dir() {
                    Ok(())
                } else {
                    let root = local.root.display();
                    Err(StorageError::Config(format!("{root} is not a directory")))
                }
            }
            Backend::S3(s3) => {
                // One page of a listing: unlike a HEAD of a missing key, whose 404 has no body,
                // it tells a missing bucket (`NoSuchBucket`) from a working one.
                match s3.list(None).next().await {
                    None | Some(Ok(_)) => Ok(()),
                    Some(Err(e)) => Err(StorageError::from_store("", e)),
                }
            }
        }
    }

    /// A link that downloads `key` as an attachment named `filename` with `content_type`,
    /// valid for `ttl` (1 s to 7 days), and the moment it expires.
    pub async fn download_url(
        &self,
        key: &ObjectKey,
        filename: &str,
        content_type: &str,
        ttl: Duration,
    ) -> Result<(String, OffsetDateTime), StorageError> {
        links::check_link_args(content_type, ttl)?;
        match &self.inner.backend {
            Backend::S3(s3) => {
                links::presigned_get(s3.as_ref(), key, filename, content_type, ttl).await
            }
            Backend::Local(local) => {
                let grant = links::Grant {
                    key: key.clone(),
                    expires: links::expiry(OffsetDateTime::now_utc(), ttl),
                    filename: safe_filename(filename),
                    content_type: content_type.to_owned(),
                };
                Ok(links::local_link(&local.signer, &local.public_base, &grant))
            }
        }
    }

    /// A link that uploads `key` with one `PUT`, valid for `ttl`, and the moment it expires:
    /// pre-signed by S3, or signed by Ferry and received by [`router`] for the local store.
    pub async fn upload_url(
        &self,
        key: &ObjectKey,
        ttl: Duration,
    ) -> Result<(String, OffsetDateTime), StorageError> {
        links::check_link_args(links::UPLOAD_TYPE, ttl)?;
        let now = OffsetDateTime::now_utc();
        match &self.inner.backend {
            Backend::S3(s3) => {
                let url = object_store::signer::Signer::signed_url(
                    s3.as_ref(),
                    object_store::signer::Method::PUT,
                    &key.path(),
                    ttl,
                )
                .await
                .map_err(|e| StorageError::from_store(key.as_str(), e))?;
                Ok((url.to_string(), links::expires_at(links::expiry(now, ttl))))
            }
            Backend::Local(local) => {
                let grant = links::Grant {
                    key: key.clone(),
                    expires: links::expiry(now, ttl),
                    filename: String::new(),
                    content_type: links::UPLOAD_TYPE.to_owned(),
                };
                Ok(links::local_link(&local.signer, &local.public_base, &grant))
            }
        }
    }
}
