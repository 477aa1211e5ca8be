//! Checking a job's notification targets when it is requested, so that a URL Ferry will refuse
//! to call (not http(s), credentials in it, an internal address) or an address it cannot mail
//! (no `[email]` configured) is a `422` now rather than a failed delivery later.

use super::error::ApiError;
use crate::config::{EmailSettings, WebhookSettings};
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

/// Checks that the address in the request's `field` can be mailed: the server must have
/// `[email]`. (The address itself was checked when the request was parsed.)
pub fn check_email(
    settings: Option<&EmailSettings>,
    address: Option<&str>,
    field: &str,
) -> Result<(), ApiError> {
    if address.is_some() && settings.is_none() {
        return Err(Invalid::field(
            field,
            "e-mail is not configured on this server ([email] smtp_url and from)",
        )
        .into());
    }
    Ok(())
}
