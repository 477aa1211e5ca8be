//! Notifications: telling a client that its job has ended, beyond polling and SSE.
//!
//! Webhooks are the only channel so far: [`signing`] signs a delivery per Standard Webhooks,
//! [`guard`] keeps callback URLs away from internal addresses, and [`webhook`] delivers one
//! notification as a durable job of its own.

pub mod guard;
pub mod signing;
pub mod webhook;

pub use guard::{UrlError, check_url, resolve_allowed};
pub use signing::{SecretError, WebhookSecret};
pub use webhook::{Delivery, WebhookHandler, build_payload, event_type};
