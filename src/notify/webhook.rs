//! Webhook delivery. When a job with a callback URL reaches a final state, [`delivery_job`]
//! makes a [`Delivery`] the spec of a job of its own (kind `webhook`), which the queue inserts
//! with the state change; so a delivery survives restarts, is retried with the queue's backoff,
//! and never delays or fails the job it reports on. [`WebhookHandler`] runs one attempt:
//!
//! * the callback URL is checked and resolved by the [guard](super::guard), and the request
//!   goes to exactly the addresses it approved (no second lookup, no proxy);
//! * the body is the delivery's payload as JSON, signed per Standard Webhooks;
//! * a 2xx answer succeeds; any other answer, a timeout or a connection failure is retryable
//!   (`webhook_failed`). Redirects are not followed: the target of a redirect was never
//!   checked, so a 3xx counts as a failed attempt like any other non-2xx;
//! * a refused URL is fatal (`callback_refused`), and so is a spec that is not a delivery
//!   (`invalid_delivery`).
//!
//! Deliveries are always signed. Without a `[webhooks] secret` Ferry starts, but every
//! delivery fails at once with `webhook_secret_missing`: an unsigned webhook cannot be told
//! apart from a forged one, and a secret made up at start-up could be checked by no receiver.

use super::guard::{UrlError, check_url, resolve_allowed};
use super::signing::{SecretError, WebhookSecret, headers};
use super::{delivery_outcome, describe};
use crate::config::WebhookSettings;
use crate::domain::{Job, JobId, JobKind, JobState};
use crate::queue::{FollowUp, Handler, JobContext, JobFailure};
use reqwest::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::time::Duration;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use url::{Host, Url};

/// How long one attempt may take, from resolving the host to the answer's status line.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
/// Attempts of a delivery: the first and 3 retries (SPEC §5).
pub const ATTEMPTS: u32 = 4;
/// The queue's limit on one attempt of a delivery job: a backstop well above the handler's own
/// time limit ([`DEFAULT_TIMEOUT`] or `webhooks.timeout`).
const JOB_TIMEOUT: Duration = Duration::from_secs(60);
/// The `user-agent` of deliveries.
const USER_AGENT: &str = concat!("ferry-webhooks/", env!("CARGO_PKG_VERSION"));
/// A failed attempt: worth another.
const FAILED: &str = "webhook_failed";
/// The guard refused the callback URL.
const REFUSED: &str = "callback_refused";
/// The job's spec is not a delivery.
const INVALID: &str = "invalid_delivery";
/// No secret is configured to sign with.
const NO_SECRET: &str = "webhook_secret_missing";

/// One webhook to deliver: the spec of a `webhook` job.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Delivery {
    /// The callback URL, as the client gave it.
    pub url: String,
    /// The event, e.g. `export.succeeded` (see [`event_type`]).
    pub event_type: String,
    /// The whole body to send (see [`build_payload`]).
    pub payload: Value,
    /// The Standard Webhooks message id, the same on every attempt so receivers can deduplicate.
    pub message_id: String,
}

/// Runs `webhook` jobs: one signed POST per attempt.
#[derive(Debug, Clone)]
pub struct WebhookHandler {
    secret: Option<WebhookSecret>,
    allow_private: bool,
    timeout: Duration,
}

impl WebhookHandler {
    /// A handler for the `[webhooks]` settings; fails if the secret is set but unusable.
    pub fn new(settings: &WebhookSettings) -> Result<Self, SecretError> {
        let secret = settings
            .secret
            .as_ref()
            .map(|secret| WebhookSecret::parse(secret.expose()))
            .transpose()?;
        Ok(Self {
            secret,
            allow_private: settings.allow_private,
            timeout: DEFAULT_TIMEOUT,
        })
    }

    /// The same handler with another time limit per attempt (default [`DEFAULT_TIMEOUT`]).
    pub fn with_timeout(self, timeout: Duration) -> Self {
        Self { timeout, ..self }
    }

    /// One attempt, without the time limit.
    async fn deliver(&self, spec: &Value) -> Result<Value, JobFailure> {
        let delivery =
            Delivery::deserialize(spec).map_err(|e| JobFailure::fatal(INVALID, e.to_string()))?;
        let secret = self.secret.as_ref().ok_or_else(|| {
            JobFailure::fatal(NO_SECRET, "no [webhooks] secret is configured to sign with")
        })?;
        let url = check_url(&delivery.url).map_err(refused)?;
        let addrs = resolve_allowed(&url, self.allow_private)
            .await
            .map_err(refused)?;
        let client = pinned_client(&url, &addrs)?;
        let body = serde_json::to_vec(&delivery.payload)
            .map_err(|e| JobFailure::fatal(INVALID, e.to_string()))?;
        let timestamp = OffsetDateTime::now_utc().unix_timestamp();
        let mut request = client
            .post(url)
            .header(reqwest::header::CONTENT_TYPE, "application/json");
        for (name, value) in headers(secret, &delivery.message_id, timestamp, &body) {
            request = request.header(name, value);
        }
        let response = request.body(body).send().await.map_err(send_failed)?;
        answered(response.status())
    }
}

#[async_trait::async_trait]
impl Handler for WebhookHandler {
    async fn run(&self, job: Job, ctx: JobContext) -> Result<Value, JobFailure> {
        let attempt = tokio::time::timeout(self.timeout, self.deliver(&job.spec));
        let outcome = tokio::select! {
            biased;
            () = ctx.stop.cancelled() => Err(JobFailure::Stopped),
            outcome = attempt => outcome.unwrap_or_else(|_| Err(JobFailure::retryable(
                FAILED,
                format!("no answer within {}", humantime::format_duration(self.timeout)),
            ))),
        };
        if let Some(counted) = delivery_outcome(&outcome, job.attempt < job.max_attempts) {
            crate::metrics::webhook_delivery(counted);
        }
        match &outcome {
            Ok(answer) => tracing::info!(status = %answer["status"], "webhook delivered"),
            Err(failure) => {
                if let Some(error) = failure.to_error() {
                    tracing::info!(code = %error.code, detail = %error.message, "webhook delivery attempt failed");
                }
            }
        }
        outcome
    }
}

/// The `webhook` job that tells `url` that `job` (as of its final state change) ended as
/// `event_type`, at `now`. The delivery's message id comes from the job's own id, so it is the
/// same on every attempt. `data` is the job's record without its checkpoint (private to its
/// handler). Fails only for a `now` RFC 3339 cannot write.
pub fn delivery_job(
    url: &str,
    event_type: &str,
    job: &Job,
    now: OffsetDateTime,
) -> Result<FollowUp, time::error::Format> {
    let mut data = serde_json::to_value(job).unwrap_or(Value::Null);
    if let Value::Object(map) = &mut data {
        map.remove("checkpoint");
    }
    let id = JobId::new();
    let delivery = Delivery {
        url: url.to_owned(),
        event_type: event_type.to_owned(),
        payload: build_payload(event_type, data, now)?,
        message_id: format!("msg_{id}"),
    };
    Ok(FollowUp {
        id,
        kind: JobKind::Webhook,
        name: format!("{event_type} for {}", job.id),
        spec: serde_json::to_value(&delivery).unwrap_or(Value::Null),
        max_attempts: ATTEMPTS,
        timeout: JOB_TIMEOUT,
    })
}

/// The event type for a job of `kind` that reached `state`, e.g. `export.succeeded`; `None`
/// for states that send no webhook (not final, or `expired`) and for notifications themselves.
pub fn event_type(kind: JobKind, state: JobState) -> Option<String> {
    let reported = matches!(kind, JobKind::Export | JobKind::Import)
        && matches!(
            state,
            JobState::Succeeded | JobState::Failed | JobState::Cancelled
        );
    reported.then(|| format!("{}.{}", kind.as_str(), state.as_str()))
}

/// The body of a delivery: `{"type", "timestamp" (RFC 3339, UTC), "data": <the job>}`.
/// Fails only for a timestamp RFC 3339 cannot write (a year outside 0–9999).
pub fn build_payload(
    event_type: &str,
    job_json: Value,
    timestamp: OffsetDateTime,
) -> Result<Value, time::error::Format> {
    let timestamp = timestamp.to_offset(time::UtcOffset::UTC).format(&Rfc3339)?;
    Ok(json!({ "type": event_type, "timestamp": timestamp, "data": job_json }))
}

/// A client that connects only to `addrs` for the URL's host, follows no redirect and uses no
/// proxy (a proxy would resolve the host again, out of the guard's sight).
fn pinned_client(url: &Url, addrs: &[SocketAddr]) -> Result<reqwest::Client, JobFailure> {
    let mut builder = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .user_agent(USER_AGENT);
    // An address literal is connected to as written; only a name needs pinning.
    if let Some(Host::Domain(domain)) = url.host() {
        builder = builder.resolve_to_addrs(domain, addrs);
    }
    builder
        .build()
        .map_err(|e| JobFailure::retryable(FAILED, describe(&e)))
}

/// How a guard error ends the attempt: a DNS failure may pass, a refusal will not.
fn refused(error: UrlError) -> JobFailure {
    if error.is_transient() {
        JobFailure::retryable(FAILED, error.to_string())
    } else {
        JobFailure::fatal(REFUSED, error.to_string())
    }
}

/// A request that got no answer. The URL is left out of the message: it may carry a token.
fn send_failed(error: reqwest::Error) -> JobFailure {
    if error.is_builder() {
        return JobFailure::fatal(INVALID, describe(&error.without_url()));
    }
    let what = if error.is_timeout() {
        "timed out"
    } else if error.is_connect() {
        "could not connect"
    } else {
        "failed"
    };
    let cause = describe(&error.without_url());
    JobFailure::retryable(FAILED, format!("the request {what}: {cause}"))
}

/// A 2xx answer succeeds; any other is a failed attempt.
fn answered(status: StatusCode) -> Result<Value, JobFailure> {
    if status.is_success() {
        return Ok(json!({ "status": status.as_u16() }));
    }
    let note = if status.is_redirection() {
        " (redirects are not followed)"
    } else {
        ""
    };
    Err(JobFailure::retryable(
        FAILED,
        format!("the receiver answered {status}{note}"),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::DeliveryOutcome;
    use time::macros::datetime;

    #[test]
    fn final_states_of_exports_and_imports_have_an_event_type() {
        assert_eq!(
            event_type(JobKind::Export, JobState::Succeeded).as_deref(),
            Some("export.succeeded")
        );
        assert_eq!(
            event_type(JobKind::Import, JobState::Failed).as_deref(),
            Some("import.failed")
        );
        assert_eq!(
            event_type(JobKind::Export, JobState::Cancelled).as_deref(),
            Some("export.cancelled")
        );
    }

    #[test]
    fn other_states_and_notifications_themselves_have_none() {
        for kind in JobKind::ALL {
            for state in JobState::ALL {
                let reported = !kind.is_notification()
                    && matches!(
                        state,
                        JobState::Succeeded | JobState::Failed | JobState::Cancelled
                    );
                assert_eq!(
                    event_type(kind, state).is_some(),
                    reported,
                    "{kind:?} {state}"
                );
            }
        }
    }

    #[test]
    fn a_delivery_job_carries_the_signed_body_and_one_message_id_for_every_attempt() {
        let mut job = crate::domain::Job::for_tests(JobKind::Import, JobState::Failed);
        job.checkpoint = Some(json!({"offset": 10}));
        let at = datetime!(2026-11-03 12:00:00 UTC);
        let follow_up = delivery_job("https://example.com/h", "import.failed", &job, at).unwrap();
        assert_eq!(follow_up.kind, JobKind::Webhook);
        assert_eq!(
            (follow_up.max_attempts, follow_up.timeout),
            (ATTEMPTS, JOB_TIMEOUT)
        );
        let delivery = Delivery::deserialize(&follow_up.spec).unwrap();
        assert_eq!(delivery.message_id, format!("msg_{}", follow_up.id));
        assert_eq!(delivery.url, "https://example.com/h");
        assert_eq!(delivery.payload["type"], "import.failed");
        assert_eq!(delivery.payload["timestamp"], "2026-11-03T12:00:00Z");
        assert_eq!(delivery.payload["data"]["id"], job.id.to_string());
        assert_eq!(delivery.payload["data"]["state"], "failed");
        assert!(
            delivery.payload["data"].get("checkpoint").is_none(),
            "the checkpoint is private"
        );
    }

    #[test]
    fn the_payload_wraps_the_job_with_its_type_and_a_utc_rfc3339_timestamp() {
        let at = datetime!(2026-11-03 14:05:06.5 +02:00);
        let payload = build_payload("export.succeeded", json!({"id": "j1"}), at);
        assert_eq!(
            payload.ok(),
            Some(json!({
                "type": "export.succeeded",
                "timestamp": "2026-11-03T12:05:06.5Z",
                "data": {"id": "j1"},
            }))
        );
    }

    #[test]
    fn a_delivery_round_trips_through_a_job_spec() {
        let delivery = Delivery {
            url: "https://example.com/hook".into(),
            event_type: "import.failed".into(),
            payload: json!({"type": "import.failed"}),
            message_id: "msg_1".into(),
        };
        let spec = serde_json::to_value(&delivery).ok();
        let back = spec.and_then(|spec| Delivery::deserialize(&spec).ok());
        assert_eq!(back, Some(delivery));
    }

    #[test]
    fn only_two_hundreds_succeed_and_redirects_say_they_were_not_followed() {
        assert_eq!(answered(StatusCode::OK).ok(), Some(json!({"status": 200})));
        assert_eq!(
            answered(StatusCode::NO_CONTENT).ok(),
            Some(json!({"status": 204}))
        );
        for status in [
            StatusCode::FOUND,
            StatusCode::BAD_REQUEST,
            StatusCode::GONE,
            StatusCode::TOO_MANY_REQUESTS,
            StatusCode::SERVICE_UNAVAILABLE,
        ] {
            assert!(
                matches!(answered(status), Err(JobFailure::Retryable { ref code, .. }) if code == FAILED),
                "{status}"
            );
        }
        let redirect = answered(StatusCode::MOVED_PERMANENTLY).err();
        assert!(
            matches!(redirect, Some(JobFailure::Retryable { message, .. })
            if message.contains("redirects are not followed"))
        );
    }

    #[test]
    fn a_failed_attempt_gives_up_when_it_is_fatal_or_the_last_and_a_stop_does_not_count() {
        let failed = Err(JobFailure::retryable(FAILED, "503"));
        let fatal = Err(JobFailure::fatal(REFUSED, "private address"));
        assert_eq!(
            delivery_outcome(&Ok(json!({"status": 200})), false),
            Some(DeliveryOutcome::Delivered)
        );
        assert_eq!(
            delivery_outcome(&failed, true),
            Some(DeliveryOutcome::Failed)
        );
        assert_eq!(
            delivery_outcome(&failed, false),
            Some(DeliveryOutcome::GaveUp)
        );
        assert_eq!(
            delivery_outcome(&fatal, true),
            Some(DeliveryOutcome::GaveUp)
        );
        assert_eq!(delivery_outcome(&Err(JobFailure::Stopped), true), None);
    }

    #[test]
    fn a_bad_secret_stops_the_handler_from_being_built() {
        let settings = WebhookSettings {
            secret: Some(crate::config::Secret::new("whsec_???")),
            ..WebhookSettings::default()
        };
        assert_eq!(
            WebhookHandler::new(&settings).err(),
            Some(SecretError::NotBase64)
        );
        assert!(WebhookHandler::new(&WebhookSettings::default()).is_ok());
    }
}
