//! Notifications: telling a client that its job has ended, beyond polling and SSE.
//!
//! [`follow_ups`] is the queue's hook: when a job reaches a final state it returns the
//! notification jobs the job's spec asks for, which the store queues in the same transaction.
//! Webhooks are the only channel so far: [`signing`] signs a delivery per Standard Webhooks,
//! [`guard`] keeps callback URLs away from internal addresses, and [`webhook`] builds a delivery
//! and delivers it as a durable job of its own.

pub mod follow_ups;
pub mod guard;
pub mod signing;
pub mod webhook;

pub use follow_ups::Notifier;
pub use guard::{UrlError, check_url, resolve_allowed};
pub use signing::{SecretError, WebhookSecret};
pub use webhook::{Delivery, WebhookHandler, build_payload, delivery_job, event_type};
