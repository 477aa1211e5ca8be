//! The durable job queue: the store (PostgreSQL or SQLite), the worker pool and its executor,
//! the retry policy, and the rescuer and sweeper. It knows nothing of exports, imports or HTTP.

pub mod executor;
pub mod handler;
pub mod lifecycle;
pub mod listen;
pub mod maintenance;
pub mod pool;
pub mod retry;
pub mod signal;
pub mod store;

pub use handler::{Handler, JobContext, JobFailure};
pub use lifecycle::{CancelOutcome, Holder};
pub use signal::{Signal, Signals};
pub use store::{Backend, Inserted, ListQuery, NewJob, Store, StoreError, StoredEvent};
