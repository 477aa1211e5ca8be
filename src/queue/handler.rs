//! The seam between the queue and the work: a [`Handler`] runs one job and says how it ended,
//! classifying failures where they happen.

use super::store::Store;
use crate::domain::{Job, JobError, JobId, Progress};
use serde_json::Value;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

/// How an attempt ended badly.
#[derive(Debug, Clone, PartialEq)]
pub enum JobFailure {
    /// Worth another attempt: a database or the store was unreachable, a connection reset.
    Retryable { code: String, message: String },
    /// Will fail again: bad SQL, a missing table, an error limit exceeded.
    Fatal { code: String, message: String },
    /// The attempt stopped because it was asked to (cancel, shutdown, timeout, lost lease).
    Stopped,
}

impl JobFailure {
    /// A transient failure.
    pub fn retryable(code: &str, message: impl Into<String>) -> Self {
        Self::Retryable {
            code: code.to_owned(),
            message: message.into(),
        }
    }

    /// A permanent failure.
    pub fn fatal(code: &str, message: impl Into<String>) -> Self {
        Self::Fatal {
            code: code.to_owned(),
            message: message.into(),
        }
    }

    /// The error shown to the client, if this failure has one.
    pub fn to_error(&self) -> Option<JobError> {
        match self {
            Self::Retryable { code, message } => Some(JobError {
                code: code.clone(),
                message: message.clone(),
                transient: true,
            }),
            Self::Fatal { code, message } => Some(JobError {
                code: code.clone(),
                message: message.clone(),
                transient: false,
            }),
            Self::Stopped => None,
        }
    }
}

/// What a handler gets besides the job: a token that fires when it must stop, a place to put
/// its progress (the executor stores it, rate-limited), and a way to save a checkpoint.
#[derive(Debug, Clone)]
pub struct JobContext {
    /// Fires on cancel, shutdown hand-back, timeout or a lost lease. Stop promptly, clean up
    /// partial output, and return [`JobFailure::Stopped`].
    pub stop: CancellationToken,
    /// The latest progress.
    pub progress: watch::Sender<Progress>,
    pub(super) store: Store,
    pub(super) worker: String,
    pub(super) job: JobId,
}

impl JobContext {
    /// A context for running a handler outside the worker pool, as integration tests do. No
    /// worker holds the job's lease, so [`save_checkpoint`](Self::save_checkpoint) fails as
    /// [`JobFailure::Stopped`]; progress goes to a channel nobody reads.
    pub fn detached(store: Store, job: JobId) -> Self {
        let (progress, _) = watch::channel(Progress::default());
        Self {
            stop: CancellationToken::new(),
            progress,
            store,
            worker: String::new(),
            job,
        }
    }

    /// Saves what a later attempt of this job needs (see [`Job::checkpoint`]). Fails as
    /// [`JobFailure::Stopped`] when the lease is lost, so the handler stops.
    pub async fn save_checkpoint(&self, checkpoint: &Value) -> Result<(), JobFailure> {
        match self
            .store
            .save_checkpoint(self.job, &self.worker, checkpoint)
            .await
        {
            Ok(true) => Ok(()),
            Ok(false) => Err(JobFailure::Stopped),
            Err(error) => Err(JobFailure::retryable(
                "metadata_unavailable",
                error.to_string(),
            )),
        }
    }

    /// Saves a result before the attempt ends (kept whether it then fails or is cancelled);
    /// `false` when no lease is held.
    pub async fn save_result(&self, result: &Value) -> Result<bool, JobFailure> {
        self.store
            .save_result(self.job, &self.worker, result)
            .await
            .map_err(|error| JobFailure::retryable("metadata_unavailable", error.to_string()))
    }

    /// Replaces the progress with `f` applied to it.
    pub fn update_progress(&self, f: impl FnOnce(&mut Progress)) {
        self.progress.send_modify(f);
    }
}

/// Runs jobs of one kind.
#[async_trait::async_trait]
pub trait Handler: Send + Sync + 'static {
    /// Runs one attempt of `job`, returning its result.
    async fn run(&self, job: Job, ctx: JobContext) -> Result<Value, JobFailure>;
}
