//! A job as stored: what the queue store reads and writes and the API shows.

use super::job::{JobError, JobId, JobKind, JobState, Progress};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use time::OffsetDateTime;

/// One job, as the queue store keeps it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Job {
    /// Its id.
    pub id: JobId,
    /// What it does.
    pub kind: JobKind,
    /// The tenant it belongs to.
    pub tenant: String,
    /// The subject that created it.
    pub owner: String,
    /// Its name.
    pub name: String,
    /// Where it is in its lifecycle.
    pub state: JobState,
    /// The request that created it, as sent.
    pub spec: Value,
    /// Other subjects of the tenant who may see it.
    pub share_with: Vec<String>,
    /// How far it has got.
    pub progress: Progress,
    /// What it produced, once succeeded.
    pub result: Option<Value>,
    /// Why its last attempt failed.
    pub error: Option<JobError>,
    /// Private to the job's handler: what a later attempt needs (never shown to clients).
    pub checkpoint: Option<Value>,
    /// Attempts started so far.
    pub attempt: u32,
    /// Attempts allowed before it fails for good.
    pub max_attempts: u32,
    /// Whether a client asked to cancel it while it ran.
    pub cancel_requested: bool,
    /// When it was created.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// When its latest attempt started.
    #[serde(with = "time::serde::rfc3339::option")]
    pub started_at: Option<OffsetDateTime>,
    /// When it reached a final state.
    #[serde(with = "time::serde::rfc3339::option")]
    pub finished_at: Option<OffsetDateTime>,
    /// When its file will be (or was) deleted.
    #[serde(with = "time::serde::rfc3339::option")]
    pub expires_at: Option<OffsetDateTime>,
    /// The sequence number of its latest event.
    pub event_seq: u64,
}

impl Job {
    /// A job of `kind` in `state` with made-up fields, for unit tests.
    #[cfg(test)]
    pub fn for_tests(kind: JobKind, state: JobState) -> Self {
        let at = time::macros::datetime!(2026-11-23 08:00:00 UTC);
        Self {
            id: JobId::new(),
            kind,
            tenant: "acme".to_owned(),
            owner: "user-1".to_owned(),
            name: "Test job".to_owned(),
            state,
            spec: Value::Object(serde_json::Map::new()),
            share_with: Vec::new(),
            progress: Progress::default(),
            result: None,
            error: None,
            checkpoint: None,
            attempt: 1,
            max_attempts: 3,
            cancel_requested: false,
            created_at: at,
            started_at: Some(at),
            finished_at: state.is_final().then_some(at),
            expires_at: None,
            event_seq: 3,
        }
    }

    /// Whether `subject` of the job's tenant may see it without the `admin` scope.
    pub fn is_visible_to(&self, subject: &str) -> bool {
        self.owner == subject || self.share_with.iter().any(|s| s == subject)
    }
}
