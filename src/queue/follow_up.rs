//! The hook a final state calls: which jobs the end of a job asks for.
//!
//! When a job reaches a final state, the store asks its [`FollowUps`] hook which jobs to queue
//! because of it (a webhook delivery, an e-mail: `notify/` implements the hook) and inserts
//! them in the same transaction as the state change. A follow-up is therefore never lost (it
//! commits with the change) and never queued for a change that rolled back (it rolls back with
//! it). The queue only stores and runs what it is given: it knows neither what a follow-up is
//! for nor how its spec looks.

use crate::domain::{Job, JobId, JobKind};
use serde_json::Value;
use std::sync::Arc;
use std::time::Duration;

/// A job to queue because another one ended. Its tenant and owner are those of the job that
/// ended; it is `queued` and due at once.
#[derive(Debug, Clone, PartialEq)]
pub struct FollowUp {
    /// Its id, chosen by the hook so that the spec may refer to it (e.g. a message id that stays
    /// the same on every attempt).
    pub id: JobId,
    /// What it does; a handler for this kind must be registered with the worker pool.
    pub kind: JobKind,
    /// Its name, for logs and listings.
    pub name: String,
    /// What its handler needs.
    pub spec: Value,
    /// Attempts before it fails for good.
    pub max_attempts: u32,
    /// How long one attempt may run.
    pub timeout: Duration,
}

/// Says which jobs a job's final state asks for; implemented in `notify/`.
pub trait FollowUps: Send + Sync + 'static {
    /// The jobs to queue because `job` (as of its change) has just reached a final state
    /// (`succeeded`, `failed`, `cancelled` or `expired`). It is called inside the state change's
    /// transaction, so it does no I/O: it only reads `job` and builds specs. It cannot fail;
    /// what it cannot build it reports itself and leaves out, since failing here would undo the
    /// state change it reports on.
    fn follow_ups(&self, job: &Job) -> Vec<FollowUp>;
}

/// The hook of a store that queues nothing when a job ends (the default of [`Store`]).
///
/// [`Store`]: super::Store
#[derive(Debug, Clone, Copy, Default)]
pub struct NoFollowUps;

impl FollowUps for NoFollowUps {
    fn follow_ups(&self, _job: &Job) -> Vec<FollowUp> {
        Vec::new()
    }
}

/// A store's hook; shown as its type's name only.
#[derive(Clone)]
pub(super) struct Hook(pub(super) Arc<dyn FollowUps>);

impl Default for Hook {
    fn default() -> Self {
        Self(Arc::new(NoFollowUps))
    }
}

impl std::fmt::Debug for Hook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("FollowUps")
    }
}
