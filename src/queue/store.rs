//! The durable queue store: jobs and their events in PostgreSQL or SQLite.
//!
//! One set of statements serves both databases (text ids, millisecond timestamps); where they
//! differ — the claim's `FOR UPDATE SKIP LOCKED`, `NOTIFY` — [`Backend`] says so. Only this
//! store writes a job's `state`. Every state change writes its events in the same transaction,
//! so an event stream replays exactly what happened; a final state also inserts the jobs its
//! [`FollowUps`] hook asks for in that transaction.

use super::clock::Clock;
use super::follow_up::{FollowUp, FollowUps, Hook};
use super::signal::{Signal, Signals};
use crate::domain::{EventKind, Job, JobError, JobId, JobKind, JobState, Progress};
use serde_json::Value;
use sqlx::AnyConnection;
use sqlx::any::AnyPoolOptions;
// `AssertSqlSafe` wraps SQL built only from constant fragments (`notification_kinds`).
use sqlx::{AnyPool, AssertSqlSafe, Row};
use std::sync::Arc;
use std::time::Duration;
use time::OffsetDateTime;

/// Migrations, embedded in the binary.
static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");
/// How long an idempotency key holds.
const IDEMPOTENCY_WINDOW_MS: i64 = 24 * 3600 * 1000;

/// Errors of the store: the database failed, or a stored row makes no sense.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database could not be reached or refused a statement.
    #[error("metadata database error: {0}")]
    Database(#[from] sqlx::Error),
    /// The database could not be migrated.
    #[error("metadata database migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// A stored row could not be read back.
    #[error("corrupt job row: {0}")]
    Corrupt(String),
}

/// Which database the store runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// PostgreSQL: many processes, row locks, `LISTEN/NOTIFY`.
    Postgres,
    /// SQLite: one process, one writer.
    Sqlite,
}

/// The queue store. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Store {
    pub(super) pool: AnyPool,
    pub(super) backend: Backend,
    pub(super) signals: Signals,
    follow_ups: Hook,
    clock: Clock,
}

/// A job to create.
#[derive(Debug, Clone)]
pub struct NewJob {
    pub id: JobId,
    pub kind: JobKind,
    pub tenant: String,
    pub owner: String,
    pub name: String,
    pub spec: Value,
    pub share_with: Vec<String>,
    pub max_attempts: u32,
    pub timeout: Duration,
    /// `AwaitingUpload` or `Queued`.
    pub state: JobState,
    /// The `Idempotency-Key` and a hash of the request it came with.
    pub idempotency: Option<(String, String)>,
    /// Progress known up front (e.g. an upload's size).
    pub progress: Progress,
}

/// What [`Store::insert`] did.
#[derive(Debug)]
pub enum Inserted {
    /// A new job.
    Created(Job),
    /// The key was used within 24 h for the same request: the first job.
    Existing(Job),
    /// The key was used within 24 h for a different request.
    KeyReused,
}

/// A page of a tenant's jobs.
#[derive(Debug, Clone)]
pub struct ListQuery {
    pub tenant: String,
    pub kind: JobKind,
    /// Only jobs this subject owns or is shared; `None` for admins (all of the tenant's).
    pub visible_to: Option<String>,
    pub state: Option<JobState>,
    pub limit: u32,
    /// Only jobs older than this one (the previous page's last).
    pub before: Option<JobId>,
}

/// One stored event of a job.
#[derive(Debug, Clone)]
pub struct StoredEvent {
    pub seq: u64,
    pub kind: EventKind,
    pub job: Job,
}

pub(super) fn to_ms(at: OffsetDateTime) -> i64 {
    (at.unix_timestamp_nanos() / 1_000_000) as i64
}

pub(super) fn from_ms(ms: i64) -> Result<OffsetDateTime, StoreError> {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .map_err(|e| StoreError::Corrupt(e.to_string()))
}

impl Store {
    /// Connects to `url` (`postgres://…` or `sqlite:…`) and applies the migrations.
    pub async fn connect(url: &str, signals: Signals) -> Result<Self, StoreError> {
        sqlx::any::install_default_drivers();
        let backend = if crate::config::is_postgres(url) {
            Backend::Postgres
        } else {
            Backend::Sqlite
        };
        // SQLite has one writer; one connection avoids "database is locked" altogether.
        let max = if backend == Backend::Sqlite { 1 } else { 8 };
        let pool = AnyPoolOptions::new()
            .max_connections(max)
            .acquire_timeout(Duration::from_secs(10))
            .connect(url)
            .await?;
        MIGRATOR.run(&pool).await?;
        Ok(Self {
            pool,
            backend,
            signals,
            follow_ups: Hook::default(),
            clock: Clock::default(),
        })
    }

    /// The same store, asking `hook` which jobs to queue when a job reaches a final state.
    /// Without one (as [`connect`](Self::connect) makes it) nothing follows a final state.
    pub fn with_follow_ups(self, hook: Arc<dyn FollowUps>) -> Self {
        Self {
            follow_ups: Hook(hook),
            ..self
        }
    }

    /// The same store, keeping time by `clock` (tests advance it instead of sleeping).
    pub fn with_clock(self, clock: Clock) -> Self {
        Self { clock, ..self }
    }

    /// The store's clock: leases, retries, run times and retention are judged by it.
    pub fn clock(&self) -> &Clock {
        &self.clock
    }

    /// Milliseconds since the epoch, now, by the store's clock.
    pub(super) fn now_ms(&self) -> i64 {
        self.clock.now_ms()
    }

    /// Applies the migrations only.
    pub async fn migrate(url: &str) -> Result<(), StoreError> {
        Self::connect(url, Signals::default()).await.map(drop)
    }

    /// The database this store runs on.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The in-process signals this store sends.
    pub fn signals(&self) -> &Signals {
        &self.signals
    }

    /// Checks that the database answers.
    pub async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    /// Creates a job, honouring an idempotency key.
    pub async fn insert(&self, new: NewJob) -> Result<Inserted, StoreError> {
        if let Some((key, hash)) = &new.idempotency
            && let Some(found) = self.by_idempotency_key(&new, key, hash).await?
        {
            return Ok(found);
        }
        match self.insert_row(&new).await {
            Ok(job) => Ok(Inserted::Created(job)),
            Err(StoreError::Database(sqlx::Error::Database(e))) if e.is_unique_violation() => {
                // Another request with the same key won the race: answer as it did.
                let (key, hash) = new.idempotency.clone().unwrap_or_default();
                let found = self.by_idempotency_key(&new, &key, &hash).await?;
                found.ok_or_else(|| StoreError::Corrupt("idempotency key vanished".into()))
            }
            Err(e) => Err(e),
        }
    }

    async fn by_idempotency_key(
        &self,
        new: &NewJob,
        key: &str,
        hash: &str,
    ) -> Result<Option<Inserted>, StoreError> {
        let row = sqlx::query(
            "SELECT id, request_hash, created_at FROM ferry_jobs
             WHERE tenant = $1 AND kind = $2 AND idempotency_key = $3",
        )
        .bind(&new.tenant)
        .bind(new.kind.as_str())
        .bind(key)
        .fetch_optional(&self.pool)
        .await?;
        let Some(row) = row else { return Ok(None) };
        let id: String = row.try_get("id")?;
        let created_at: i64 = row.try_get("created_at")?;
        if created_at < self.now_ms() - IDEMPOTENCY_WINDOW_MS {
            // The key has lapsed: free it for the new job.
            sqlx::query("UPDATE ferry_jobs SET idempotency_key = NULL WHERE id = $1")
                .bind(&id)
                .execute(&self.pool)
                .await?;
            return Ok(None);
        }
        let stored_hash: Option<String> = row.try_get("request_hash")?;
        if stored_hash.as_deref() != Some(hash) {
            return Ok(Some(Inserted::KeyReused));
        }
        let job = self.get_by_text(&id).await?;
        Ok(job.map(Inserted::Existing))
    }

    async fn insert_row(&self, new: &NewJob) -> Result<Job, StoreError> {
        let now = self.now_ms();
        let (key, hash) = new.idempotency.clone().unzip();
        let mut tx = self.pool.begin().await?;
        let row = sqlx::query(
            "INSERT INTO ferry_jobs (id, kind, tenant, owner, name, state, spec, share_with,
                progress, max_attempts, timeout_ms, run_at, idempotency_key, request_hash,
                event_seq, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, 1, $12)
             RETURNING *",
        )
        .bind(new.id.to_string())
        .bind(new.kind.as_str())
        .bind(&new.tenant)
        .bind(&new.owner)
        .bind(&new.name)
        .bind(new.state.as_str())
        .bind(new.spec.to_string())
        .bind(json_text(&new.share_with))
        .bind(json_text(&new.progress))
        .bind(i64::from(new.max_attempts))
        .bind(i64::try_from(new.timeout.as_millis()).unwrap_or(i64::MAX))
        .bind(now)
        .bind(key)
        .bind(hash)
        .fetch_one(&mut *tx)
        .await?;
        let job = decode(&row)?;
        self.record(&mut tx, &job).await?;
        tx.commit().await?;
        self.after_commit(&job);
        Ok(job)
    }

    /// Jobs waiting to run (queued or awaiting their upload), of one tenant or of all;
    /// notifications do not count.
    pub async fn count_waiting(&self, tenant: Option<&str>) -> Result<u64, StoreError> {
        let count: i64 = sqlx::query_scalar(AssertSqlSafe(format!(
            "SELECT count(*) FROM ferry_jobs
             WHERE state IN ('queued', 'awaiting_upload') AND kind NOT IN ({})
               AND ($1 IS NULL OR tenant = $1)",
            notification_kinds()
        )))
        .bind(tenant.map(str::to_owned))
        .fetch_one(&self.pool)
        .await?;
        Ok(count.max(0) as u64)
    }

    /// How many jobs of each kind are in each state, and how long the oldest due queued job of
    /// each kind has waited: one grouped read of the jobs table, for the metrics. Names this
    /// build does not know (rows of a newer version) are left out.
    pub async fn job_counts(&self) -> Result<crate::metrics::JobCounts, StoreError> {
        let now = self.now_ms();
        let rows = sqlx::query(
            "SELECT kind, state, count(*) AS jobs,
                    min(CASE WHEN state = 'queued' AND run_at <= $1 THEN run_at END) AS oldest_due
             FROM ferry_jobs GROUP BY kind, state",
        )
        .bind(now)
        .fetch_all(&self.pool)
        .await?;
        let mut counts = crate::metrics::JobCounts::default();
        for row in &rows {
            let kind: String = row.try_get("kind")?;
            let state: String = row.try_get("state")?;
            let (Ok(kind), Ok(state)) = (kind.parse::<JobKind>(), state.parse::<JobState>()) else {
                continue;
            };
            let jobs: i64 = row.try_get("jobs")?;
            counts.by_state.push((kind, state, jobs.max(0) as u64));
            if let Some(due) = row.try_get::<Option<i64>, _>("oldest_due")? {
                counts.oldest_due.push((kind, (now - due) as f64 / 1000.0));
            }
        }
        Ok(counts)
    }

    /// One job by id.
    pub async fn get(&self, id: JobId) -> Result<Option<Job>, StoreError> {
        self.get_by_text(&id.to_string()).await
    }

    async fn get_by_text(&self, id: &str) -> Result<Option<Job>, StoreError> {
        let row = sqlx::query("SELECT * FROM ferry_jobs WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(decode).transpose()
    }

    /// A page of jobs, newest first.
    pub async fn list(&self, query: &ListQuery) -> Result<Vec<Job>, StoreError> {
        // The LIKE is a pre-filter on the JSON array; `is_visible_to` decides exactly.
        let pattern = query.visible_to.as_ref().map(|subject| {
            let quoted = serde_json::to_string(subject).unwrap_or_default();
            format!("%{}%", escape_like(&quoted))
        });
        let rows = sqlx::query(
            "SELECT * FROM ferry_jobs
             WHERE tenant = $1 AND kind = $2
               AND ($3 IS NULL OR state = $3)
               AND ($4 IS NULL OR id < $4)
               AND ($5 IS NULL OR owner = $5 OR share_with LIKE $6 ESCAPE '\\')
             ORDER BY id DESC LIMIT $7",
        )
        .bind(&query.tenant)
        .bind(query.kind.as_str())
        .bind(query.state.map(JobState::as_str))
        .bind(query.before.map(|id| id.to_string()))
        .bind(query.visible_to.clone())
        .bind(pattern)
        .bind(i64::from(query.limit))
        .fetch_all(&self.pool)
        .await?;
        let jobs = rows.iter().map(decode).collect::<Result<Vec<_>, _>>()?;
        Ok(match &query.visible_to {
            Some(subject) => jobs
                .into_iter()
                .filter(|j| j.is_visible_to(subject))
                .collect(),
            None => jobs,
        })
    }

    /// Deletes a job and its events; returns it as it was.
    pub async fn delete(&self, id: JobId) -> Result<Option<Job>, StoreError> {
        let mut tx = self.pool.begin().await?;
        let row = sqlx::query("DELETE FROM ferry_jobs WHERE id = $1 RETURNING *")
            .bind(id.to_string())
            .fetch_optional(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM ferry_job_events WHERE job_id = $1")
            .bind(id.to_string())
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        row.as_ref().map(decode).transpose()
    }

    /// The job's events after `after`, oldest first.
    pub async fn events_since(
        &self,
        id: JobId,
        after: u64,
    ) -> Result<Vec<StoredEvent>, StoreError> {
        let rows = sqlx::query(
            "SELECT seq, event, data FROM ferry_job_events
             WHERE job_id = $1 AND seq > $2 ORDER BY seq LIMIT 1000",
        )
        .bind(id.to_string())
        .bind(i64::try_from(after).unwrap_or(i64::MAX))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                let seq: i64 = row.try_get("seq")?;
                let event: String = row.try_get("event")?;
                let data: String = row.try_get("data")?;
                Ok(StoredEvent {
                    seq: seq as u64,
                    kind: event
                        .parse()
                        .map_err(|e| StoreError::Corrupt(format!("{e}")))?,
                    job: serde_json::from_str(&data)
                        .map_err(|e| StoreError::Corrupt(e.to_string()))?,
                })
            })
            .collect()
    }

    /// Writes the events of the job's latest change: `state`, plus `done` when final, or a
    /// `progress` event when the state did not change. A final state also queues the jobs the
    /// follow-up hook asks for, in the same transaction.
    pub(super) async fn record(&self, tx: &mut AnyConnection, job: &Job) -> Result<(), StoreError> {
        let events: &[(u64, EventKind)] = if job.state.is_final() {
            &[(1, EventKind::State), (0, EventKind::Done)]
        } else {
            &[(0, EventKind::State)]
        };
        for (back, kind) in events {
            self.insert_event(tx, job, job.event_seq - back, *kind)
                .await?;
        }
        if job.state.is_final() {
            for follow_up in self.follow_ups.0.follow_ups(job) {
                self.insert_follow_up(tx, job, &follow_up).await?;
            }
        }
        Ok(())
    }

    /// Queues a job that `after` asks for, with `after`'s tenant and owner, and wakes the
    /// workers when the transaction commits.
    async fn insert_follow_up(
        &self,
        tx: &mut AnyConnection,
        after: &Job,
        follow_up: &FollowUp,
    ) -> Result<(), StoreError> {
        let now = self.now_ms();
        sqlx::query(
            "INSERT INTO ferry_jobs (id, kind, tenant, owner, name, state, spec, max_attempts,
                timeout_ms, run_at, event_seq, created_at)
             VALUES ($1, $2, $3, $4, $5, 'queued', $6, $7, $8, $9, 0, $9)",
        )
        .bind(follow_up.id.to_string())
        .bind(follow_up.kind.as_str())
        .bind(&after.tenant)
        .bind(&after.owner)
        .bind(&follow_up.name)
        .bind(follow_up.spec.to_string())
        .bind(i64::from(follow_up.max_attempts))
        .bind(i64::try_from(follow_up.timeout.as_millis()).unwrap_or(i64::MAX))
        .bind(now)
        .execute(&mut *tx)
        .await?;
        if self.backend == Backend::Postgres {
            sqlx::query("SELECT pg_notify($1, '')")
                .bind(super::listen::JOBS_CHANNEL)
                .execute(&mut *tx)
                .await?;
        } else {
            // SQLite has one connection, held by this transaction until it commits: a worker
            // woken now claims only after the commit.
            self.signals.send(Signal::JobsReady);
        }
        Ok(())
    }

    pub(super) async fn insert_event(
        &self,
        tx: &mut AnyConnection,
        job: &Job,
        seq: u64,
        kind: EventKind,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO ferry_job_events (job_id, seq, event, data, created_at)
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(job.id.to_string())
        .bind(seq as i64)
        .bind(kind.as_str())
        .bind(json_text(job))
        .bind(self.now_ms())
        .execute(&mut *tx)
        .await?;
        if self.backend == Backend::Postgres {
            sqlx::query("SELECT pg_notify($1, $2)")
                .bind(super::listen::EVENTS_CHANNEL)
                .bind(job.id.to_string())
                .execute(&mut *tx)
                .await?;
            if job.state == JobState::Queued {
                sqlx::query("SELECT pg_notify($1, '')")
                    .bind(super::listen::JOBS_CHANNEL)
                    .execute(&mut *tx)
                    .await?;
            }
        }
        Ok(())
    }

    /// In-process signals after a commit. With PostgreSQL they come back through `LISTEN`,
    /// for this process and every other.
    pub(super) fn after_commit(&self, job: &Job) {
        if self.backend == Backend::Sqlite {
            self.signals.send(Signal::Event(job.id));
            if job.state == JobState::Queued {
                self.signals.send(Signal::JobsReady);
            }
        }
    }
}

/// The kinds that are notifications, as a list of SQL string literals (`'webhook', …`); built
/// from constant names only.
pub(super) fn notification_kinds() -> String {
    let kinds: Vec<String> = JobKind::ALL
        .into_iter()
        .filter(|kind| kind.is_notification())
        .map(|kind| format!("'{}'", kind.as_str()))
        .collect();
    kinds.join(", ")
}

fn json_text<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_string(value).unwrap_or_else(|_| "null".to_owned())
}

fn escape_like(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for ch in text.chars() {
        if matches!(ch, '\\' | '%' | '_') {
            out.push('\\');
        }
        out.push(ch);
    }
    out
}

/// Reads a `ferry_jobs` row.
pub(super) fn decode(row: &sqlx::any::AnyRow) -> Result<Job, StoreError> {
    let corrupt =
        |what: &str, e: &dyn std::fmt::Display| StoreError::Corrupt(format!("{what}: {e}"));
    let text = |name: &str| row.try_get::<String, _>(name);
    let opt_text = |name: &str| row.try_get::<Option<String>, _>(name);
    let opt_time = |name: &str| -> Result<Option<OffsetDateTime>, StoreError> {
        row.try_get::<Option<i64>, _>(name)?
            .map(from_ms)
            .transpose()
    };
    let id = text("id")?;
    let error = opt_text("error")?
        .map(|e| serde_json::from_str::<JobError>(&e))
        .transpose()
        .map_err(|e| corrupt("error", &e))?;
    let result = opt_text("result")?
        .map(|r| serde_json::from_str::<Value>(&r))
        .transpose()
        .map_err(|e| corrupt("result", &e))?;
    let checkpoint = opt_text("checkpoint")?
        .map(|c| serde_json::from_str::<Value>(&c))
        .transpose()
        .map_err(|e| corrupt("checkpoint", &e))?;
    Ok(Job {
        id: JobId::parse(&id).ok_or_else(|| StoreError::Corrupt(format!("id {id:?}")))?,
        kind: text("kind")?.parse().map_err(|e| corrupt("kind", &e))?,
        tenant: text("tenant")?,
        owner: text("owner")?,
        name: text("name")?,
        state: text("state")?.parse().map_err(|e| corrupt("state", &e))?,
        spec: serde_json::from_str(&text("spec")?).map_err(|e| corrupt("spec", &e))?,
        share_with: serde_json::from_str(&text("share_with")?)
            .map_err(|e| corrupt("share_with", &e))?,
        progress: serde_json::from_str(&text("progress")?).map_err(|e| corrupt("progress", &e))?,
        result,
        error,
        checkpoint,
        attempt: row.try_get::<i64, _>("attempt")? as u32,
        max_attempts: row.try_get::<i64, _>("max_attempts")? as u32,
        cancel_requested: row.try_get::<i64, _>("cancel_requested")? != 0,
        created_at: from_ms(row.try_get("created_at")?)?,
        started_at: opt_time("started_at")?,
        finished_at: opt_time("finished_at")?,
        expires_at: opt_time("expires_at")?,
        event_seq: row.try_get::<i64, _>("event_seq")? as u64,
    })
}
