//! The store's state transitions. Each is one guarded `UPDATE … RETURNING` plus the events it
//! causes, in one transaction; a guard that no longer holds (the job moved on, the lease went to
//! another worker) makes the transition a no-op that returns `None`.

use super::store::{Backend, Store, StoreError, decode, notification_kinds, to_ms};
use crate::domain::{EventKind, Job, JobError, JobId, JobState, Progress};
use serde_json::Value;
use sqlx::any::AnyArguments;
// Every `AssertSqlSafe` here wraps SQL built only from constant fragments of this file.
use sqlx::{Any, AssertSqlSafe, Row};
use std::time::Duration;
use time::OffsetDateTime;

type Query<'q> = sqlx::query::Query<'q, Any, AnyArguments>;

/// Who may make a transition of a running job.
#[derive(Debug, Clone)]
pub enum Holder {
    /// The worker that holds the lease.
    Worker(String),
    /// Anyone, provided the lease ran out (the rescuer).
    Lapsed,
}

/// What [`Store::cancel`] did.
#[derive(Debug)]
pub enum CancelOutcome {
    /// The job was not running: it is now `cancelled`.
    Cancelled(Job),
    /// The job is running: its worker was asked to stop and will mark it `cancelled`.
    Requested(Job),
    /// The job is already final.
    AlreadyFinal(Job),
    /// No such job.
    NotFound,
}

/// A lapsed lease the rescuer found.
#[derive(Debug, Clone)]
pub struct Lapsed {
    pub id: JobId,
    pub attempt: u32,
    pub max_attempts: u32,
}

fn ms(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}

impl Store {
    async fn apply(&self, query: Query<'_>) -> Result<Option<Job>, StoreError> {
        let mut tx = self.pool.begin().await?;
        let Some(row) = query.fetch_optional(&mut *tx).await? else {
            return Ok(None);
        };
        let job = match decode(&row) {
            Ok(job) => job,
            Err(error) => {
                drop(tx);
                self.quarantine(&row, &error).await;
                return Err(error);
            }
        };
        self.record(&mut tx, &job).await?;
        tx.commit().await?;
        self.after_commit(&job);
        Ok(Some(job))
    }

    /// Fails a row that cannot be read, so that it cannot block the queue (a claim would
    /// otherwise pick it again and again).
    async fn quarantine(&self, row: &sqlx::any::AnyRow, error: &StoreError) {
        let Ok(id) = row.try_get::<String, _>("id") else {
            return;
        };
        let reason = JobError {
            code: "corrupt_job".into(),
            message: error.to_string(),
            transient: false,
        };
        let result = sqlx::query("UPDATE ferry_jobs SET state = 'failed', error = $2, finished_at = $3, lease_owner = NULL WHERE id = $1")
            .bind(&id)
            .bind(serde_json::to_string(&reason).unwrap_or_default())
            .bind(self.now_ms())
            .execute(&self.pool)
            .await;
        tracing::error!(job.id = %id, error = %error, quarantined = result.is_ok(), "a job row cannot be read; it was failed");
    }

    /// Takes the oldest ready job for `worker` under a lease, and commits at once. Skips
    /// tenants that already run `max_running_per_tenant` jobs.
    pub async fn claim(
        &self,
        worker: &str,
        lease: Duration,
        max_running_per_tenant: u64,
    ) -> Result<Option<Job>, StoreError> {
        let lock = match self.backend {
            Backend::Postgres => "FOR UPDATE SKIP LOCKED",
            Backend::Sqlite => "",
        };
        // Notifications are never held back by a busy tenant, nor count as its running jobs.
        let notifications = notification_kinds();
        let sql = format!(
            "UPDATE ferry_jobs SET state = 'running', attempt = attempt + 1, lease_owner = $1,
                lease_expires_at = $2, started_at = $3, cancel_requested = 0,
                event_seq = event_seq + 1
             WHERE state = 'queued' AND id = (
                SELECT id FROM ferry_jobs j
                WHERE state = 'queued' AND run_at <= $3
                  AND (j.kind IN ({notifications}) OR (SELECT count(*) FROM ferry_jobs r
                       WHERE r.tenant = j.tenant AND r.state = 'running'
                         AND r.kind NOT IN ({notifications})) < $4)
                ORDER BY run_at, id LIMIT 1 {lock})
             RETURNING *"
        );
        let now = self.now_ms();
        let query = sqlx::query(AssertSqlSafe(sql))
            .bind(worker.to_owned())
            .bind(now + ms(lease))
            .bind(now)
            .bind(i64::try_from(max_running_per_tenant).unwrap_or(i64::MAX));
        self.apply(query).await
    }

    /// Extends the lease and, when given, stores progress with a `progress` event. `None` means
    /// the lease is lost: the worker must stop. The returned job tells whether a cancel was asked.
    pub async fn heartbeat(
        &self,
        id: JobId,
        worker: &str,
        lease: Duration,
        progress: Option<&Progress>,
    ) -> Result<Option<Job>, StoreError> {
        let mut tx = self.pool.begin().await?;
        let row = sqlx::query(
            "UPDATE ferry_jobs SET lease_expires_at = $3,
                progress = COALESCE($4, progress), event_seq = event_seq + $5
             WHERE id = $1 AND lease_owner = $2 AND state = 'running'
             RETURNING *",
        )
        .bind(id.to_string())
        .bind(worker.to_owned())
        .bind(self.now_ms() + ms(lease))
        .bind(progress.map(|p| serde_json::to_string(p).unwrap_or_default()))
        .bind(i64::from(progress.is_some()))
        .fetch_optional(&mut *tx)
        .await?;
        let Some(row) = row else { return Ok(None) };
        let job = decode(&row)?;
        if progress.is_some() {
            self.insert_event(&mut tx, &job, job.event_seq, EventKind::Progress)
                .await?;
        }
        tx.commit().await?;
        if progress.is_some() {
            self.after_commit(&job);
        }
        Ok(Some(job))
    }

    /// Stores the handler's checkpoint for later attempts; `false` if the lease is lost.
    pub async fn save_checkpoint(
        &self,
        id: JobId,
        worker: &str,
        checkpoint: &Value,
    ) -> Result<bool, StoreError> {
        let updated = sqlx::query(
            "UPDATE ferry_jobs SET checkpoint = $3 WHERE id = $1 AND lease_owner = $2 AND state = 'running'",
        )
        .bind(id.to_string())
        .bind(worker.to_owned())
        .bind(checkpoint.to_string())
        .execute(&self.pool)
        .await?;
        Ok(updated.rows_affected() == 1)
    }

    /// Stores a result for a running job before it ends (a chunked import that fails or is
    /// cancelled says what it kept); `false` if the lease is lost.
    pub async fn save_result(
        &self,
        id: JobId,
        worker: &str,
        result: &Value,
    ) -> Result<bool, StoreError> {
        let updated = sqlx::query(
            "UPDATE ferry_jobs SET result = $3 WHERE id = $1 AND lease_owner = $2 AND state = 'running'",
        )
        .bind(id.to_string())
        .bind(worker.to_owned())
        .bind(result.to_string())
        .execute(&self.pool)
        .await?;
        Ok(updated.rows_affected() == 1)
    }

    /// Marks a running job `succeeded` with its result; its file lives for `retention`.
    pub async fn succeed(
        &self,
        id: JobId,
        worker: &str,
        progress: &Progress,
        result: &Value,
        retention: Duration,
    ) -> Result<Option<Job>, StoreError> {
        let now = self.now_ms();
        let query = sqlx::query(
            "UPDATE ferry_jobs SET state = 'succeeded', result = $3, progress = $4, error = NULL,
                finished_at = $5, expires_at = $6, lease_owner = NULL, lease_expires_at = NULL,
                event_seq = event_seq + 2
             WHERE id = $1 AND lease_owner = $2 AND state = 'running'
             RETURNING *",
        )
        .bind(id.to_string())
        .bind(worker.to_owned())
        .bind(result.to_string())
        .bind(serde_json::to_string(progress).unwrap_or_default())
        .bind(now)
        .bind(now.saturating_add(ms(retention)));
        self.apply(query).await
    }

    /// Ends a running attempt with an error: back to `queued` at `retry_at`, or `failed`.
    pub async fn fail(
        &self,
        id: JobId,
        holder: &Holder,
        error: &JobError,
        retry_at: Option<OffsetDateTime>,
    ) -> Result<Option<Job>, StoreError> {
        let guard = match holder {
            Holder::Worker(_) => "lease_owner = $2",
            Holder::Lapsed => "lease_expires_at < $2",
        };
        let (state, bump) = match retry_at {
            Some(_) => (JobState::Queued, 1),
            None => (JobState::Failed, 2),
        };
        let sql = format!(
            "UPDATE ferry_jobs SET state = $3, error = $4, run_at = $5, lease_owner = NULL,
                lease_expires_at = NULL, finished_at = $6, event_seq = event_seq + {bump}
             WHERE id = $1 AND state = 'running' AND {guard}
             RETURNING *"
        );
        let now = self.now_ms();
        let query = sqlx::query(AssertSqlSafe(sql)).bind(id.to_string());
        let query = match holder {
            Holder::Worker(worker) => query.bind(worker.clone()),
            Holder::Lapsed => query.bind(now),
        };
        let query = query
            .bind(state.as_str())
            .bind(serde_json::to_string(error).unwrap_or_default())
            .bind(retry_at.map_or(now, to_ms))
            .bind(retry_at.is_none().then_some(now));
        self.apply(query).await
    }

    /// The worker stopped a job whose cancel was asked: `cancelled`.
    pub async fn finish_cancelled(
        &self,
        id: JobId,
        worker: &str,
    ) -> Result<Option<Job>, StoreError> {
        let query = sqlx::query(
            "UPDATE ferry_jobs SET state = 'cancelled', finished_at = $3, lease_owner = NULL,
                lease_expires_at = NULL, event_seq = event_seq + 2
             WHERE id = $1 AND lease_owner = $2 AND state = 'running'
             RETURNING *",
        )
        .bind(id.to_string())
        .bind(worker.to_owned())
        .bind(self.now_ms());
        self.apply(query).await
    }

    /// Hands a running job back on shutdown: `queued` at once, and the attempt does not count.
    pub async fn release(&self, id: JobId, worker: &str) -> Result<Option<Job>, StoreError> {
        let query = sqlx::query(
            "UPDATE ferry_jobs SET state = 'queued', run_at = $3, attempt = attempt - 1,
                lease_owner = NULL, lease_expires_at = NULL, event_seq = event_seq + 1
             WHERE id = $1 AND lease_owner = $2 AND state = 'running'
             RETURNING *",
        )
        .bind(id.to_string())
        .bind(worker.to_owned())
        .bind(self.now_ms());
        self.apply(query).await
    }

    /// A client's cancel: immediate for a job that is not running, a request to its worker for
    /// one that is.
    pub async fn cancel(&self, id: JobId) -> Result<CancelOutcome, StoreError> {
        let waiting = sqlx::query(
            "UPDATE ferry_jobs SET state = 'cancelled', finished_at = $2, event_seq = event_seq + 2
             WHERE id = $1 AND state IN ('queued', 'awaiting_upload')
             RETURNING *",
        )
        .bind(id.to_string())
        .bind(self.now_ms());
        if let Some(job) = self.apply(waiting).await? {
            return Ok(CancelOutcome::Cancelled(job));
        }
        let running = sqlx::query(
            "UPDATE ferry_jobs SET cancel_requested = 1 WHERE id = $1 AND state = 'running'
             RETURNING *",
        )
        .bind(id.to_string())
        .fetch_optional(&self.pool)
        .await?;
        if let Some(row) = running {
            return Ok(CancelOutcome::Requested(decode(&row)?));
        }
        Ok(match self.get(id).await? {
            Some(job) => CancelOutcome::AlreadyFinal(job),
            None => CancelOutcome::NotFound,
        })
    }

    /// A client's `start` of a job whose file arrived in storage: `awaiting_upload` → `queued`.
    pub async fn start(&self, id: JobId, progress: &Progress) -> Result<Option<Job>, StoreError> {
        let query = sqlx::query(
            "UPDATE ferry_jobs SET state = 'queued', run_at = $2, progress = $3, event_seq = event_seq + 1
             WHERE id = $1 AND state = 'awaiting_upload'
             RETURNING *",
        )
        .bind(id.to_string())
        .bind(self.now_ms())
        .bind(serde_json::to_string(progress).unwrap_or_default());
        self.apply(query).await
    }

    /// The sweeper gives up on an import whose resumable upload was abandoned:
    /// `awaiting_upload` → `failed` with `error`.
    pub async fn abandon_upload(
        &self,
        id: JobId,
        error: &JobError,
    ) -> Result<Option<Job>, StoreError> {
        let query = sqlx::query(
            "UPDATE ferry_jobs SET state = 'failed', error = $2, finished_at = $3,
                event_seq = event_seq + 2
             WHERE id = $1 AND state = 'awaiting_upload'
             RETURNING *",
        )
        .bind(id.to_string())
        .bind(serde_json::to_string(error).unwrap_or_default())
        .bind(self.now_ms());
        self.apply(query).await
    }

    /// A client's retry of a `failed` or `cancelled` job: `queued` now, with fresh attempts.
    pub async fn retry(&self, id: JobId) -> Result<Option<Job>, StoreError> {
        let query = sqlx::query(
            "UPDATE ferry_jobs SET state = 'queued', attempt = 0, run_at = $2, error = NULL,
                result = NULL, finished_at = NULL, expires_at = NULL, cancel_requested = 0,
                event_seq = event_seq + 1
             WHERE id = $1 AND state IN ('failed', 'cancelled')
             RETURNING *",
        )
        .bind(id.to_string())
        .bind(self.now_ms());
        self.apply(query).await
    }

    /// Running jobs whose lease ran out.
    pub async fn lapsed(&self) -> Result<Vec<Lapsed>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, attempt, max_attempts FROM ferry_jobs
             WHERE state = 'running' AND lease_expires_at < $1 LIMIT 100",
        )
        .bind(self.now_ms())
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                let id: String = row.try_get("id")?;
                Ok(Lapsed {
                    id: JobId::parse(&id).ok_or_else(|| StoreError::Corrupt(id.clone()))?,
                    attempt: row.try_get::<i64, _>("attempt")? as u32,
                    max_attempts: row.try_get::<i64, _>("max_attempts")? as u32,
                })
            })
            .collect()
    }

    /// Succeeded jobs whose retention has passed.
    pub async fn expiring(&self, limit: u32) -> Result<Vec<Job>, StoreError> {
        let rows = sqlx::query(
            "SELECT * FROM ferry_jobs WHERE state = 'succeeded' AND expires_at < $1 LIMIT $2",
        )
        .bind(self.now_ms())
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(decode).collect()
    }

    /// Marks a succeeded job whose file was deleted `expired`.
    pub async fn mark_expired(&self, id: JobId) -> Result<Option<Job>, StoreError> {
        let query = sqlx::query(
            "UPDATE ferry_jobs SET state = 'expired', event_seq = event_seq + 2
             WHERE id = $1 AND state = 'succeeded'
             RETURNING *",
        )
        .bind(id.to_string());
        self.apply(query).await
    }

    /// Deletes the records of jobs that ended before `before`: expired ones by their expiry,
    /// failed and cancelled ones by when they ended. Returns how many were deleted.
    pub async fn purge(&self, before: OffsetDateTime) -> Result<u64, StoreError> {
        let cutoff = to_ms(before);
        let mut tx = self.pool.begin().await?;
        let old = "SELECT id FROM ferry_jobs
             WHERE (state = 'expired' AND expires_at < $1)
                OR (state IN ('failed', 'cancelled') AND finished_at < $1)";
        sqlx::query(AssertSqlSafe(format!(
            "DELETE FROM ferry_job_events WHERE job_id IN ({old})"
        )))
        .bind(cutoff)
        .execute(&mut *tx)
        .await?;
        let deleted = sqlx::query(AssertSqlSafe(format!(
            "DELETE FROM ferry_jobs WHERE id IN ({old})"
        )))
        .bind(cutoff)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        tx.commit().await?;
        Ok(deleted)
    }
}
