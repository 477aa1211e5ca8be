//! Notifications: telling a client that its job has ended, beyond polling and SSE.
//!
//! Webhooks are the only channel so far: [`signing`] signs a delivery per Standard Webhooks.

pub mod signing;

pub use signing::{SecretError, WebhookSecret};
