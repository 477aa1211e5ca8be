//! Resumable uploads: a file sent in numbered parts that survive a dropped connection, so a
//! client continues from the parts already stored instead of starting over.
//!
//! With S3 the parts go straight to the store: Ferry creates the store's own multipart upload,
//! hands out short-lived pre-signed `UploadPart` links, lists the stored parts with a signed
//! `ListParts` request (object_store has no call for it) and completes the upload with the
//! ETags the store itself reported — never with ones a client claims. On the local store every
//! part is an object of its own beside the target (`{name}.part-00001`, …), received through a
//! Ferry-signed `PUT` link; completing streams them, in order, into the target through the one
//! bounded [`Storage::put_stream`] and deletes them. Which parts a complete upload needs is
//! [`check_parts`]: pure, and tested beside it.

use super::links::{self, Grant, SignedLink};
use super::{Backend, ObjectKey, PutError, Storage, StorageError};
use futures::StreamExt;
use object_store::multipart::{MultipartStore, PartId};
use object_store::signer::{Method, SignedUrlOptions, Signer};
use serde::Deserialize;
use std::time::Duration;
use time::OffsetDateTime;

/// The most parts an upload may have (S3's limit).
pub const MAX_PARTS: u64 = 10_000;
/// The largest `ListParts` answer read (1,000 parts take about 200 KB).
const MAX_LISTING: usize = 4 * 1024 * 1024;
/// How long Ferry's own signed `ListParts` request may take to be used.
const LISTING_TTL: Duration = Duration::from_secs(60);

/// A part the store holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredPart {
    /// 1-based.
    pub number: u32,
    /// Bytes.
    pub size: u64,
    /// The store's ETag of an S3 part, for completion; `None` on the local store.
    pub etag: Option<String>,
}

/// Why the stored parts do not make the announced file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PartsProblem {
    /// A part is still missing.
    #[error("part {0} has not been uploaded")]
    Missing(u32),
    /// A part has another size than the upload's part size says.
    #[error("part {number} has {size} bytes; it must have {expected}")]
    WrongSize {
        number: u32,
        size: u64,
        expected: u64,
    },
    /// A part beyond the last one.
    #[error("part {0} is beyond the last part")]
    Extra(u32),
}

/// How many parts a file of `size` bytes has with parts of `part_size` (at least one).
pub fn part_count(size: u64, part_size: u64) -> u64 {
    size.div_ceil(part_size.max(1)).max(1)
}

/// The part size for a file of `size` bytes: `preferred`, or larger when the file would
/// otherwise need more than [`MAX_PARTS`] parts.
pub fn part_size_for(size: u64, preferred: u64) -> u64 {
    preferred.max(size.div_ceil(MAX_PARTS)).max(1)
}

/// The size part `number` (1-based) of a `size`-byte file must have.
pub fn expected_part_size(number: u32, size: u64, part_size: u64) -> u64 {
    let before = u64::from(number.saturating_sub(1)).saturating_mul(part_size);
    size.saturating_sub(before).min(part_size)
}

/// Checks that `parts` (sorted by number) are exactly the parts of a `size`-byte file cut into
/// `part_size` pieces: every one there, each of its size, none beyond the last.
pub fn check_parts(parts: &[StoredPart], size: u64, part_size: u64) -> Result<(), PartsProblem> {
    let count = part_count(size, part_size);
    for (index, part) in parts.iter().enumerate() {
        let wanted = u32::try_from(index + 1).unwrap_or(u32::MAX);
        if u64::from(part.number) > count {
            return Err(PartsProblem::Extra(part.number));
        }
        if part.number != wanted {
            return Err(PartsProblem::Missing(wanted));
        }
        let expected = expected_part_size(part.number, size, part_size);
        if part.size != expected {
            return Err(PartsProblem::WrongSize {
                number: part.number,
                size: part.size,
                expected,
            });
        }
    }
    let next = u32::try_from(parts.len() + 1).unwrap_or(u32::MAX);
    match u64::from(next) <= count {
        true => Err(PartsProblem::Missing(next)),
        false => Ok(()),
    }
}

/// The local store's object for part `number` of the upload to `key`.
fn part_key(key: &ObjectKey, number: u32) -> Result<ObjectKey, StorageError> {
    ObjectKey::parse(&format!("{}.part-{number:05}", key.as_str()))
}

/// The part number of `name` if it is a part of `file`'s upload.
fn part_number(name: &str, file: &str) -> Option<u32> {
    let digits = name.strip_prefix(file)?.strip_prefix(".part-")?;
    match digits.len() == 5 && digits.bytes().all(|b| b.is_ascii_digit()) {
        true => digits.parse().ok(),
        false => None,
    }
}

impl Storage {
    /// Begins a resumable upload to `key`: the S3 multipart upload's id, or `None` on the local
    /// store (where nothing needs creating).
    pub async fn create_resumable(&self, key: &ObjectKey) -> Result<Option<String>, StorageError> {
        match &self.inner.backend {
            Backend::S3(s3) => {
                let id = s3
                    .create_multipart(&key.path())
                    .await
                    .map_err(|e| StorageError::from_store(key.as_str(), e))?;
                Ok(Some(id))
            }
            Backend::Local(_) => Ok(None),
        }
    }

    /// A `PUT` link for part `number` of the upload to `key`, valid for `ttl`.
    pub async fn part_link(
        &self,
        key: &ObjectKey,
        upload_id: Option<&str>,
        number: u32,
        ttl: Duration,
    ) -> Result<SignedLink, StorageError> {
        links::check_link_args(links::UPLOAD_TYPE, ttl)?;
        let now = OffsetDateTime::now_utc();
        match (&self.inner.backend, upload_id) {
            (Backend::S3(s3), Some(id)) => {
                let options = SignedUrlOptions::default().with_query([
                    ("partNumber", number.to_string()),
                    ("uploadId", id.to_owned()),
                ]);
                let url = s3
                    .signed_url_opts(Method::PUT, &key.path(), ttl, &options)
                    .await
                    .map_err(|e| StorageError::from_store(key.as_str(), e))?;
                Ok((url.to_string(), links::expires_at(links::expiry(now, ttl))))
            }
            (Backend::Local(local), _) => {
                let grant = Grant {
                    key: part_key(key, number)?,
                    expires: links::expiry(now, ttl),
                    filename: String::new(),
                    content_type: links::UPLOAD_TYPE.to_owned(),
                };
                Ok(links::local_link(&local.signer, &local.public_base, &grant))
            }
            (Backend::S3(_), None) => Err(no_upload_id(key)),
        }
    }

    /// The parts stored so far, by number.
    pub async fn stored_parts(
        &self,
        key: &ObjectKey,
        upload_id: Option<&str>,
    ) -> Result<Vec<StoredPart>, StorageError> {
        let mut parts = match (&self.inner.backend, upload_id) {
            (Backend::S3(s3), Some(id)) => list_s3_parts(s3.as_ref(), key, id).await?,
            (Backend::Local(_), _) => self.local_parts(key).await?,
            (Backend::S3(_), None) => return Err(no_upload_id(key)),
        };
        parts.sort_by_key(|part| part.number);
        Ok(parts)
    }

    /// Makes the object at `key` from `parts` (checked with [`check_parts`] by the caller), at
    /// most `max` bytes in all.
    pub async fn complete_resumable(
        &self,
        key: &ObjectKey,
        upload_id: Option<&str>,
        parts: &[StoredPart],
        max: u64,
    ) -> Result<u64, PutError> {
        match (&self.inner.backend, upload_id) {
            (Backend::S3(s3), Some(id)) => {
                let ids = parts
                    .iter()
                    .map(|part| PartId {
                        content_id: part.etag.clone().unwrap_or_default(),
                    })
                    .collect();
                s3.complete_multipart(&key.path(), &id.to_owned(), ids)
                    .await
                    .map_err(|e| StorageError::from_store(key.as_str(), e))?;
                Ok(parts.iter().map(|part| part.size).sum())
            }
            (Backend::Local(_), _) => {
                let size = self.join_local_parts(key, parts, max).await?;
                self.abort_resumable(key, None).await?;
                Ok(size)
            }
            (Backend::S3(_), None) => Err(PutError::Store(no_upload_id(key))),
        }
    }

    /// Discards the upload to `key` and every part stored for it; an upload the store no
    /// longer knows is fine.
    pub async fn abort_resumable(
        &self,
        key: &ObjectKey,
        upload_id: Option<&str>,
    ) -> Result<(), StorageError> {
        match (&self.inner.backend, upload_id) {
            (Backend::S3(s3), Some(id)) => {
                match s3.abort_multipart(&key.path(), &id.to_owned()).await {
                    Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
                    Err(e) => Err(StorageError::from_store(key.as_str(), e)),
                }
            }
            (Backend::Local(_), _) => {
                for part in self.local_parts(key).await? {
                    self.delete(&part_key(key, part.number)?).await?;
                }
                Ok(())
            }
            (Backend::S3(_), None) => Ok(()),
        }
    }

    /// The part objects beside `key` on the local store.
    async fn local_parts(&self, key: &ObjectKey) -> Result<Vec<StoredPart>, StorageError> {
        let path = key.path();
        let parent: object_store::path::Path =
            path.parts().take(path.parts().count() - 1).collect();
        let mut listing = self.store().list(Some(&parent));
        let mut parts = Vec::new();
        while let Some(meta) = listing.next().await {
            let meta = meta.map_err(|e| StorageError::from_store(key.as_str(), e))?;
            let name = meta.location.filename().unwrap_or_default();
            if let Some(number) = part_number(name, key.file_name()) {
                parts.push(StoredPart {
                    number,
                    size: meta.size,
                    etag: None,
                });
            }
        }
        Ok(parts)
    }

    /// Streams the local parts, in order, into `key` (one part's chunk in memory at a time).
    async fn join_local_parts(
        &self,
        key: &ObjectKey,
        parts: &[StoredPart],
        max: u64,
    ) -> Result<u64, PutError> {
        let mut upload = self.begin_upload(key).await?;
        match self.copy_parts(key, parts, max, &mut upload).await {
            Ok(()) => Ok(upload.finish().await?),
            Err(error) => {
                if let Err(abort) = upload.abort().await {
                    tracing::warn!(key = %key, error = %abort, "aborting a failed join failed");
                }
                Err(error)
            }
        }
    }

    async fn copy_parts(
        &self,
        key: &ObjectKey,
        parts: &[StoredPart],
        max: u64,
        upload: &mut super::Upload,
    ) -> Result<(), PutError> {
        for part in parts {
            let mut chunks = self.read(&part_key(key, part.number)?).await?;
            while let Some(chunk) = chunks.next().await {
                let chunk = chunk?;
                if upload.bytes_written() + chunk.len() as u64 > max {
                    return Err(PutError::TooLarge { max });
                }
                upload.write(chunk).await?;
            }
        }
        Ok(())
    }
}

fn no_upload_id(key: &ObjectKey) -> StorageError {
    StorageError::InvalidArgument(format!("the S3 upload to {key} has no upload id"))
}

/// `ListPartsResult`, the parts of it Ferry reads.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ListPartsResult {
    #[serde(default)]
    is_truncated: bool,
    #[serde(default)]
    next_part_number_marker: Option<u32>,
    #[serde(default, rename = "Part")]
    parts: Vec<ListedPart>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ListedPart {
    part_number: u32,
    #[serde(rename = "ETag")]
    etag: String,
    size: u64,
}

/// Every part of the S3 upload `id`, page by page, through signed `ListParts` requests.
async fn list_s3_parts<S: Signer + ?Sized>(
    s3: &S,
    key: &ObjectKey,
    id: &str,
) -> Result<Vec<StoredPart>, StorageError> {
    let client = reqwest::Client::new();
    let mut parts = Vec::new();
    let mut marker = None;
    loop {
        let mut query = vec![("uploadId".to_owned(), id.to_owned())];
        if let Some(marker) = marker {
            query.push(("part-number-marker".to_owned(), format!("{marker}")));
        }
        let options = SignedUrlOptions::default().with_query(query);
        let url = s3
            .signed_url_opts(Method::GET, &key.path(), LISTING_TTL, &options)
            .await
            .map_err(|e| StorageError::from_store(key.as_str(), e))?;
        let page = list_page(&client, url, key).await?;
        let last = page.parts.last().map(|part| part.part_number);
        parts.extend(page.parts.into_iter().map(|part| StoredPart {
            number: part.part_number,
            size: part.size,
            etag: Some(part.etag),
        }));
        match (page.is_truncated, page.next_part_number_marker.or(last)) {
            (true, Some(next)) if Some(next) != marker => marker = Some(next),
            _ => return Ok(parts),
        }
    }
}

/// One page of a `ListParts` listing.
async fn list_page(
    client: &reqwest::Client,
    url: url::Url,
    key: &ObjectKey,
) -> Result<ListPartsResult, StorageError> {
    let unreachable = |e: reqwest::Error| StorageError::Unreachable(Box::new(e));
    let response = client.get(url).send().await.map_err(unreachable)?;
    let status = response.status();
    let mut body = response.bytes_stream();
    let mut xml = Vec::new();
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(unreachable)?;
        if xml.len() + chunk.len() > MAX_LISTING {
            return Err(StorageError::Refused(
                "the parts listing is too long".into(),
            ));
        }
        xml.extend_from_slice(&chunk);
    }
    let text = String::from_utf8_lossy(&xml);
    if status.as_u16() == 404 {
        return Err(StorageError::NotFound {
            key: key.as_str().to_owned(),
        });
    }
    if !status.is_success() {
        let cause = format!(
            "ListParts answered {status}: {}",
            text.chars().take(300).collect::<String>()
        );
        return Err(match status.is_server_error() {
            true => StorageError::Unreachable(cause.into()),
            false => StorageError::Refused(cause.into()),
        });
    }
    quick_xml::de::from_str(&text)
        .map_err(|e| StorageError::Refused(format!("unreadable ListParts answer: {e}").into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn part(number: u32, size: u64) -> StoredPart {
        StoredPart {
            number,
            size,
            etag: None,
        }
    }

    #[test]
    fn a_file_is_cut_into_equal_parts_and_a_shorter_last_one() {
        assert_eq!(part_count(25, 10), 3);
        assert_eq!(part_count(20, 10), 2);
        assert_eq!(part_count(1, 10), 1);
        assert_eq!(expected_part_size(1, 25, 10), 10);
        assert_eq!(expected_part_size(3, 25, 10), 5);
        assert_eq!(expected_part_size(2, 20, 10), 10);
    }

    #[test]
    fn the_part_size_grows_so_that_no_file_needs_more_than_ten_thousand_parts() {
        let mib = 1024 * 1024;
        assert_eq!(part_size_for(100 * mib, 8 * mib), 8 * mib);
        let huge = 200 * 1024 * mib;
        assert!(part_count(huge, part_size_for(huge, 8 * mib)) <= MAX_PARTS);
    }

    #[test]
    fn only_every_part_at_its_size_makes_the_file() {
        assert_eq!(
            check_parts(&[part(1, 10), part(2, 10), part(3, 5)], 25, 10),
            Ok(())
        );
        assert_eq!(
            check_parts(&[part(1, 10), part(3, 5)], 25, 10),
            Err(PartsProblem::Missing(2))
        );
        assert_eq!(
            check_parts(&[part(1, 10), part(2, 10)], 25, 10),
            Err(PartsProblem::Missing(3))
        );
        assert_eq!(check_parts(&[], 25, 10), Err(PartsProblem::Missing(1)));
        assert_eq!(
            check_parts(&[part(1, 10), part(2, 9), part(3, 5)], 25, 10),
            Err(PartsProblem::WrongSize {
                number: 2,
                size: 9,
                expected: 10
            })
        );
        assert_eq!(
            check_parts(&[part(1, 10), part(2, 10), part(3, 5), part(4, 1)], 25, 10),
            Err(PartsProblem::Extra(4))
        );
    }

    #[test]
    fn part_names_are_recognised_only_beside_their_file() {
        assert_eq!(part_number("upload.part-00001", "upload"), Some(1));
        assert_eq!(part_number("upload.part-10000", "upload"), Some(10_000));
        assert_eq!(part_number("upload.part-1", "upload"), None);
        assert_eq!(part_number("upload", "upload"), None);
        assert_eq!(part_number("rejects.csv", "upload"), None);
        assert_eq!(part_number("upload.part-0000x", "upload"), None);
    }

    #[test]
    fn a_list_parts_answer_is_read() {
        let xml = r#"<?xml version="1.0" encoding="UTF-8"?>
<ListPartsResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Bucket>b</Bucket><Key>k</Key>
<UploadId>u</UploadId><IsTruncated>true</IsTruncated><NextPartNumberMarker>2</NextPartNumberMarker>
<Part><PartNumber>1</PartNumber><ETag>"a"</ETag><Size>5</Size></Part>
<Part><PartNumber>2</PartNumber><LastModified>2026-01-01T00:00:00Z</LastModified><ETag>"b"</ETag><Size>3</Size></Part>
</ListPartsResult>"#;
        let page: ListPartsResult = quick_xml::de::from_str(xml).unwrap();
        assert!(page.is_truncated);
        assert_eq!(page.next_part_number_marker, Some(2));
        assert_eq!(page.parts.len(), 2);
        assert_eq!(page.parts[1].etag, "\"b\"");
        assert_eq!(page.parts[1].size, 3);
    }
}
