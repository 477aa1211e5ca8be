//! The job lifecycle, written down once.
//!
//! Every export and import is a job. Only the queue store moves a job from one state to
//! another; this module names the states, says who moves a job out of each one, and holds the
//! plain records the store reads and writes.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;
use uuid::Uuid;

/// A job's identity: a UUIDv7, so ids sort by creation time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct JobId(Uuid);

impl JobId {
    /// A new, time-ordered id.
    pub fn new() -> Self {
        Self(Uuid::now_v7())
    }

    /// Parses the textual form a client sends in a path.
    pub fn parse(text: &str) -> Option<Self> {
        Uuid::parse_str(text).ok().map(Self)
    }
}

impl Default for JobId {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Display for JobId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.hyphenated().fmt(f)
    }
}

/// What a job does; each kind has its own handler and its own API resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum JobKind {
    /// Streams a query result into a file in object storage.
    Export,
    /// Loads a stored file into a table.
    Import,
    /// Delivers one webhook for a job that reached a final state.
    Webhook,
    /// Sends one e-mail about a job that reached a final state.
    Email,
}

impl JobKind {
    /// Every kind, for metrics and for the queue's notion of notifications.
    pub const ALL: [JobKind; 4] = [Self::Export, Self::Import, Self::Webhook, Self::Email];

    /// Whether jobs of this kind are notifications: follow-ups Ferry queues itself when another
    /// job ends, rather than work a client asked for. They do not count towards a tenant's
    /// limits, and a busy tenant does not hold them back.
    pub fn is_notification(self) -> bool {
        matches!(self, Self::Webhook | Self::Email)
    }

    /// The stable name stored in the database and shown to clients.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Export => "export",
            Self::Import => "import",
            Self::Webhook => "webhook",
            Self::Email => "email",
        }
    }
}

impl FromStr for JobKind {
    type Err = UnknownName;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "export" => Ok(Self::Export),
            "import" => Ok(Self::Import),
            "webhook" => Ok(Self::Webhook),
            "email" => Ok(Self::Email),
            other => Err(UnknownName(other.to_owned())),
        }
    }
}

/// A name read back from storage that this build does not know.
#[derive(Debug, thiserror::Error)]
#[error("unknown name {0:?}")]
pub struct UnknownName(pub String);

/// The states of a job. Who moves a job out of each one is part of its documentation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum JobState {
    /// An import waiting for its file in object storage. Exits: `queued` when the client calls
    /// `start`; `cancelled` by the client; `failed` by the sweeper when its resumable upload was
    /// abandoned.
    AwaitingUpload,
    /// Ready to run once `run_at` has passed. Exits: `running` when a worker claims it;
    /// `cancelled` by the client.
    Queued,
    /// Held by a worker under a lease. Exits: `succeeded`; `queued` again on a transient failure
    /// with attempts left, on a lapsed lease (the rescuer) or on shutdown (handed back);
    /// `failed`; `cancelled` once the worker has stopped.
    Running,
    /// Finished with a result. Exit: `expired`, by the sweeper after the retention time.
    Succeeded,
    /// Attempts used up or a permanent error: the dead-letter list. Exit: `queued` by `retry`.
    Failed,
    /// Stopped by the client. Exit: `queued` by `retry`.
    Cancelled,
    /// The file was deleted after the retention time. Final; the record is deleted later.
    Expired,
}

impl JobState {
    /// Every state, for metrics and documentation.
    pub const ALL: [JobState; 7] = [
        Self::AwaitingUpload,
        Self::Queued,
        Self::Running,
        Self::Succeeded,
        Self::Failed,
        Self::Cancelled,
        Self::Expired,
    ];

    /// The stable name stored in the database and shown to clients.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::AwaitingUpload => "awaiting_upload",
            Self::Queued => "queued",
            Self::Running => "running",
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
            Self::Cancelled => "cancelled",
            Self::Expired => "expired",
        }
    }

    /// Final states: no worker will touch the job again unless a client retries it.
    pub fn is_final(self) -> bool {
        matches!(
            self,
            Self::Succeeded | Self::Failed | Self::Cancelled | Self::Expired
        )
    }

    /// States a client may ask to retry.
    pub fn is_retryable_by_client(self) -> bool {
        matches!(self, Self::Failed | Self::Cancelled)
    }
}

impl FromStr for JobState {
    type Err = UnknownName;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|state| state.as_str() == s)
            .ok_or_else(|| UnknownName(s.to_owned()))
    }
}

impl fmt::Display for JobState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a job failed, as shown to the client.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct JobError {
    /// A stable snake_case code, e.g. `query_failed`.
    pub code: String,
    /// A human-readable explanation that never contains secrets.
    pub message: String,
    /// Whether the failure was transient (the job may run again).
    pub transient: bool,
}

/// How far a running job has got. Counters only grow within one attempt.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(default)]
pub struct Progress {
    /// Rows written (export) or read (import).
    pub rows: u64,
    /// Bytes written (export) or read (import).
    pub bytes: u64,
    /// Imports: size of the upload, when known.
    pub total_bytes: Option<u64>,
    /// Exports: the planner's row estimate, when known.
    pub total_rows_estimate: Option<u64>,
    /// Imports: rows loaded so far.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub rows_inserted: Option<u64>,
    /// Imports: rows rejected so far.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub rows_rejected: Option<u64>,
}

/// The most `percent` says before a job has succeeded.
const UNFINISHED_PERCENT: f64 = 99.9;

impl Progress {
    /// Percent done, from whichever total is known; `None` without a total. Until the job has
    /// `succeeded` it stays below 100 (an estimate can be passed, and bytes read are not rows
    /// committed); a succeeded job is at 100, whether a total was known or not.
    pub fn percent(&self, succeeded: bool) -> Option<f64> {
        if succeeded {
            return Some(100.0);
        }
        let (done, total) = match (self.total_bytes, self.total_rows_estimate) {
            (Some(total), _) => (self.bytes, total),
            (None, Some(total)) => (self.rows, total),
            (None, None) => return None,
        };
        if total == 0 {
            return Some(0.0);
        }
        let percent = (done as f64 / total as f64 * 100.0).min(UNFINISHED_PERCENT);
        Some((percent * 10.0).round() / 10.0)
    }
}

/// The names of the events a job emits on its event stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    /// The job changed state.
    State,
    /// The job made progress (rate-limited by the worker).
    Progress,
    /// The job reached a final state; the last event of the stream.
    Done,
}

impl EventKind {
    /// The SSE `event:` name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::State => "state",
            Self::Progress => "progress",
            Self::Done => "done",
        }
    }
}

impl FromStr for EventKind {
    type Err = UnknownName;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "state" => Ok(Self::State),
            "progress" => Ok(Self::Progress),
            "done" => Ok(Self::Done),
            other => Err(UnknownName(other.to_owned())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_state_round_trips_through_its_name() {
        for state in JobState::ALL {
            assert_eq!(state.as_str().parse::<JobState>().ok(), Some(state));
        }
    }

    #[test]
    fn percent_prefers_bytes_and_stays_below_one_hundred_until_success() {
        let progress = Progress {
            rows: 10,
            bytes: 50,
            total_bytes: Some(200),
            total_rows_estimate: Some(5),
            ..Progress::default()
        };
        assert_eq!(progress.percent(false), Some(25.0));
        let over = Progress {
            rows: 10,
            total_rows_estimate: Some(5),
            ..Progress::default()
        };
        assert_eq!(over.percent(false), Some(99.9));
        assert_eq!(over.percent(true), Some(100.0));
        let empty_total = Progress {
            total_rows_estimate: Some(0),
            ..Progress::default()
        };
        assert_eq!(empty_total.percent(false), Some(0.0));
        assert_eq!(Progress::default().percent(false), None);
        assert_eq!(Progress::default().percent(true), Some(100.0));
    }

    #[test]
    fn job_ids_parse_only_uuids() {
        assert!(JobId::parse("not-a-uuid").is_none());
        let id = JobId::new();
        assert_eq!(JobId::parse(&id.to_string()), Some(id));
    }
}
