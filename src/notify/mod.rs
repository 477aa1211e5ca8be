//! Notifications: telling a client that its job has ended, beyond polling and SSE.
//!
//! Webhooks are the only channel so far: [`signing`] signs a delivery per Standard Webhooks,
//! and [`guard`] keeps callback URLs away from internal addresses.

pub mod guard;
pub mod signing;

pub use guard::{UrlError, check_url, resolve_allowed};
pub use signing::{SecretError, WebhookSecret};
