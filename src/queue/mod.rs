//! The durable job queue: the store (PostgreSQL or SQLite), the worker pool and its executor,
//! the retry policy, and the rescuer and sweeper. It knows nothing of exports, imports, webhooks
//! or HTTP: the jobs a final state asks for come from a [`FollowUps`] hook, as the deletion of
//! expired files comes from the sweeper's `Expire` hook.

pub mod clock;
pub mod executor;
pub mod follow_up;
pub mod handler;
pub mod lifecycle;
pub mod listen;
pub mod maintenance;
pub mod pool;
pub mod retry;
pub mod signal;
pub mod store;
pub mod uploads;

pub use clock::Clock;
pub use follow_up::{FollowUp, FollowUps, NoFollowUps};
pub use handler::{Handler, JobContext, JobFailure};
pub use lifecycle::{CancelOutcome, Holder};
pub use signal::{Signal, Signals};
pub use store::{Backend, Inserted, ListQuery, NewJob, Store, StoreError, StoredEvent};
pub use uploads::UploadRecord;
