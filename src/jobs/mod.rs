//! Ferry's job kinds, where the queue meets the pipeline.

pub mod error;
pub mod export;
pub mod import;
pub mod sources;

use crate::domain::{Job, JobKind};
use crate::storage::{ObjectKey, import_key};

/// Every object a job may have left in storage: an export's file; an import's upload and
/// rejects report. Deleting a key that does not exist is fine.
pub fn files_of(job: &Job) -> Vec<ObjectKey> {
    match job.kind {
        JobKind::Export => job
            .result
            .as_ref()
            .and_then(|r| r.pointer("/file/key"))
            .and_then(serde_json::Value::as_str)
            .and_then(|key| ObjectKey::parse(key).ok())
            .into_iter()
            .collect(),
        JobKind::Import => vec![
            import_key(&job.tenant, job.id, "upload"),
            import_key(&job.tenant, job.id, "rejects.csv"),
        ],
        JobKind::Webhook | JobKind::Email => Vec::new(),
    }
}

/// Deletes what finished jobs left in storage when their retention has passed.
pub struct Expiry(pub crate::storage::Storage);

#[async_trait::async_trait]
impl crate::queue::maintenance::Expire for Expiry {
    async fn remove_output(&self, job: &Job) -> anyhow::Result<()> {
        for key in files_of(job) {
            self.0.delete(&key).await?;
        }
        Ok(())
    }

    async fn abort_upload(&self, upload: &crate::queue::UploadRecord) -> anyhow::Result<()> {
        let key = ObjectKey::parse(&upload.key)?;
        self.0
            .abort_resumable(&key, upload.upload_id.as_deref())
            .await?;
        Ok(())
    }
}
