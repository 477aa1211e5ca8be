//! The checks at the door, applied where a file arrives: the head of a multipart file part or
//! a raw body is read (a few KiB, bounded), judged by [`door::check`], and then handed on in
//! front of the rest of the body, so nothing is stored, and no job made, for a file refused;
//! a direct upload's object is judged at `start` from its first bytes.

use super::error::ApiError;
use crate::domain::import::Compression;
use crate::pipeline::import::door::{self, HEAD_BYTES, Head};
use crate::storage::{ObjectKey, Storage};
use axum::body::Bytes;
use futures::stream::{self, Stream, StreamExt};

/// Reads the head of `body` and checks it; on success, the whole body again (the head in front
/// of the rest, unread). `utf16`: the spec declares a UTF-16 encoding.
pub async fn admit<S, E>(
    mut body: S,
    compression: Compression,
    utf16: bool,
) -> Result<impl Stream<Item = Result<Bytes, E>> + Unpin + Send, ApiError>
where
    S: Stream<Item = Result<Bytes, E>> + Unpin + Send,
    E: std::fmt::Display + Send,
{
    let mut chunks = Vec::new();
    let mut head = Vec::with_capacity(HEAD_BYTES);
    let mut whole = false;
    while head.len() < HEAD_BYTES {
        match body.next().await {
            None => {
                whole = true;
                break;
            }
            Some(Ok(chunk)) => {
                let wanted = (HEAD_BYTES - head.len()).min(chunk.len());
                head.extend_from_slice(chunk.slice(..wanted).as_ref());
                chunks.push(Ok(chunk));
            }
            Some(Err(e)) => return Err(ApiError::UploadInterrupted(e.to_string())),
        }
    }
    door::check(
        Head {
            bytes: &head,
            whole,
        },
        compression,
        utf16,
    )?;
    Ok(stream::iter(chunks).chain(body.fuse()))
}

/// Checks the first bytes of a direct upload's object of `size` bytes at `key`.
pub async fn admit_stored(
    storage: &Storage,
    key: &ObjectKey,
    size: u64,
    compression: Compression,
    utf16: bool,
) -> Result<(), ApiError> {
    let len = size.min(HEAD_BYTES as u64);
    let head = storage
        .read_head(key, len)
        .await
        .map_err(|e| ApiError::Unavailable(e.into()))?;
    let head = Head {
        bytes: &head,
        whole: size == len,
    };
    Ok(door::check(head, compression, utf16)?)
}
