//! The record of each resumable upload in progress (`ferry_uploads`): which object it becomes,
//! the store's multipart upload id, the size the client announced and the part size. It lives
//! in the metadata database so that any process can serve the next part, and the sweeper finds
//! the abandoned ones here. The queue only keeps the record; what a part is, and how the store
//! completes or aborts an upload, is the business of `storage` and `api`.

use super::store::{Store, StoreError, from_ms, to_ms};
use crate::domain::JobId;
use sqlx::Row;
use time::OffsetDateTime;

/// How long an upload record may exist without its job before the sweeper takes it for
/// abandoned (the record is written just before the job).
const ORPHAN_GRACE_MS: i64 = 60_000;

/// One resumable upload in progress.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadRecord {
    /// The import waiting for the file.
    pub job_id: JobId,
    pub tenant: String,
    /// The object the parts become.
    pub key: String,
    /// The S3 multipart upload id; `None` on the local store.
    pub upload_id: Option<String>,
    /// The file's size in bytes, as announced.
    pub size: u64,
    /// Bytes of every part but the last.
    pub part_size: u64,
    pub created_at: OffsetDateTime,
}

impl Store {
    /// Records an upload that has just been created in the store.
    pub async fn insert_upload(&self, upload: &UploadRecord) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO ferry_uploads (job_id, tenant, object_key, upload_id, size, part_size,
                created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(upload.job_id.to_string())
        .bind(&upload.tenant)
        .bind(&upload.key)
        .bind(upload.upload_id.clone())
        .bind(i64::try_from(upload.size).unwrap_or(i64::MAX))
        .bind(i64::try_from(upload.part_size).unwrap_or(i64::MAX))
        .bind(to_ms(upload.created_at))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The upload in progress of `job`, if there is one.
    pub async fn upload(&self, job: JobId) -> Result<Option<UploadRecord>, StoreError> {
        let row = sqlx::query("SELECT * FROM ferry_uploads WHERE job_id = $1")
            .bind(job.to_string())
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(decode_upload).transpose()
    }

    /// Forgets the upload of `job` (completed or aborted); whether there was one.
    pub async fn delete_upload(&self, job: JobId) -> Result<bool, StoreError> {
        let done = sqlx::query("DELETE FROM ferry_uploads WHERE job_id = $1")
            .bind(job.to_string())
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    /// At most `limit` uploads to abort: begun before `cutoff`, or whose import no longer waits
    /// for its file (cancelled, deleted).
    pub async fn stale_uploads(
        &self,
        cutoff: OffsetDateTime,
        limit: u32,
    ) -> Result<Vec<UploadRecord>, StoreError> {
        let rows = sqlx::query(
            "SELECT u.* FROM ferry_uploads u LEFT JOIN ferry_jobs j ON j.id = u.job_id
             WHERE u.created_at < $1
                OR (j.id IS NULL AND u.created_at < $2)
                OR j.state <> 'awaiting_upload'
             ORDER BY u.created_at LIMIT $3",
        )
        .bind(to_ms(cutoff))
        .bind(self.now_ms() - ORPHAN_GRACE_MS)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(decode_upload).collect()
    }
}

fn decode_upload(row: &sqlx::any::AnyRow) -> Result<UploadRecord, StoreError> {
    let id: String = row.try_get("job_id")?;
    let non_negative = |name: &str| -> Result<u64, StoreError> {
        let value: i64 = row.try_get(name)?;
        u64::try_from(value).map_err(|_| StoreError::Corrupt(format!("upload {name} {value}")))
    };
    Ok(UploadRecord {
        job_id: JobId::parse(&id).ok_or_else(|| StoreError::Corrupt(format!("upload {id:?}")))?,
        tenant: row.try_get("tenant")?,
        key: row.try_get("object_key")?,
        upload_id: row.try_get("upload_id")?,
        size: non_negative("size")?,
        part_size: non_negative("part_size")?,
        created_at: from_ms(row.try_get("created_at")?)?,
    })
}
