//! One bounded way to put a stream of bytes under a key: every upload Ferry receives itself (a
//! multipart file part, a raw body, a `PUT` to a Ferry-signed link) goes through
//! [`Storage::put_stream`], which streams it into a multipart upload, stops at the size limit and
//! aborts on any failure, so that nothing is left behind.

use super::{ObjectKey, Storage, StorageError};
use bytes::Bytes;
use futures::{Stream, StreamExt};

/// Why a streamed put failed. Nothing was kept in any case.
#[derive(Debug, thiserror::Error)]
pub enum PutError {
    /// The body stopped before its end (the client went away).
    #[error("the upload was interrupted: {0}")]
    Interrupted(String),
    /// The body passed `max` bytes.
    #[error("the file is larger than the maximum upload of {max} bytes")]
    TooLarge {
        /// The limit it passed.
        max: u64,
    },
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StorageError),
}

impl Storage {
    /// Streams `body` into `key`, at most `max` bytes, and returns its size. The body is only
    /// read as fast as the store takes it.
    pub async fn put_stream<S, E>(
        &self,
        key: &ObjectKey,
        mut body: S,
        max: u64,
    ) -> Result<u64, PutError>
    where
        S: Stream<Item = Result<Bytes, E>> + Unpin + Send,
        E: std::fmt::Display,
    {
        let mut upload = self.begin_upload(key).await?;
        let mut size = 0u64;
        let failure = loop {
            let chunk = match body.next().await {
                None => break None,
                Some(Ok(chunk)) => chunk,
                Some(Err(e)) => break Some(PutError::Interrupted(e.to_string())),
            };
            size += chunk.len() as u64;
            crate::metrics::uploaded(chunk.len());
            if size > max {
                break Some(PutError::TooLarge { max });
            }
            if let Err(e) = upload.write(chunk).await {
                break Some(PutError::Store(e));
            }
        };
        match failure {
            None => Ok(upload.finish().await?),
            Some(error) => {
                if let Err(abort) = upload.abort().await {
                    tracing::warn!(key = %key, error = %abort, "aborting a failed upload failed");
                }
                Err(error)
            }
        }
    }

    /// The largest upload a Ferry-signed `PUT` link takes.
    pub fn max_upload(&self) -> u64 {
        self.inner.max_upload
    }
}
