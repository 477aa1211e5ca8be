//! Notifications: telling a client that its job has ended, beyond polling and SSE.
//!
//! [`follow_ups`] is the queue's hook: when a job reaches a final state it returns the
//! notification jobs the job's spec asks for, which the store queues in the same transaction.
//! Two channels, each delivered as a durable job of its own:
//!
//! * webhooks: [`signing`] signs a delivery per Standard Webhooks, [`guard`] keeps callback URLs
//!   away from internal addresses, and [`webhook`] builds a delivery and sends it;
//! * e-mail: [`message`] writes what a message says (plain text and HTML), and [`email`] builds
//!   a delivery and sends it over SMTP with its links signed at sending time.

pub mod email;
pub mod follow_ups;
pub mod guard;
pub mod message;
pub mod signing;
pub mod webhook;

pub use email::{EmailDelivery, EmailHandler};
pub use follow_ups::Notifier;
pub use guard::{UrlError, check_url, resolve_allowed};
pub use signing::{SecretError, WebhookSecret};
pub use webhook::{Delivery, WebhookHandler, build_payload, delivery_job, event_type};

use crate::metrics::DeliveryOutcome;
use crate::queue::JobFailure;
use serde_json::Value;
use std::error::Error;

/// How an attempt counts in the metrics: a failure is retried only if it is transient and
/// attempts are left (the executor's rule); an attempt told to stop does not count.
pub(crate) fn delivery_outcome(
    outcome: &Result<Value, JobFailure>,
    attempts_left: bool,
) -> Option<DeliveryOutcome> {
    match outcome {
        Ok(_) => Some(DeliveryOutcome::Delivered),
        Err(JobFailure::Retryable { .. }) if attempts_left => Some(DeliveryOutcome::Failed),
        Err(JobFailure::Retryable { .. } | JobFailure::Fatal { .. }) => {
            Some(DeliveryOutcome::GaveUp)
        }
        Err(JobFailure::Stopped) => None,
    }
}

/// An error and its causes, joined by `: `.
pub(crate) fn describe(error: &dyn Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
