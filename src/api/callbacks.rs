//! Checking a callback URL when a job is requested, so that a URL Ferry will refuse to call
//! (not http(s), credentials in it, an internal address) is a `422` now rather than a failed
//! delivery later.

use super::error::ApiError;
use crate::config::WebhookSettings;
use crate::domain::Invalid;
use crate::notify::{check_url, resolve_allowed};

/// Checks `url` (the request's `field`) against the webhook settings.
pub async fn check(
    settings: &WebhookSettings,
    url: Option<&str>,
    field: &str,
) -> Result<(), ApiError> {
    let Some(url) = url else { return Ok(()) };
    if settings.secret.is_none() {
        return Err(Invalid::field(
            field,
            "webhooks are not configured on this server (webhooks.secret)",
        )
        .into());
    }
    let parsed = check_url(url).map_err(|e| Invalid::field(field, e.to_string()))?;
    resolve_allowed(&parsed, settings.allow_private)
        .await
        .map_err(|e| Invalid::field(field, e.to_string()))?;
    Ok(())
}
