//! E-mail delivery. When an export or import that names an address succeeds or fails,
//! [`delivery_job`] makes an [`EmailDelivery`] — the address and the job as of its final state —
//! the spec of a job of its own (kind `email`), queued with the state change. So a message
//! survives restarts, is retried with the queue's backoff, and never delays or fails the job it
//! reports on. [`EmailHandler`] runs one attempt:
//!
//! * it signs the links the message carries now, valid for `email.link_ttl` from the attempt
//!   that sends them (a download: an S3 pre-signed `GET` or a Ferry-signed link; an import's
//!   rejects report the same way);
//! * it composes the message ([`super::message`]: plain text and HTML) and sends it through the
//!   `[email]` SMTP server with lettre (rustls), under the per-attempt time limit;
//! * the server's acceptance succeeds; a permanent refusal (a 5xx answer) is fatal
//!   (`email_refused`); a temporary refusal (4xx), a connection failure or a timeout is
//!   retryable (`email_failed`). The `Message-ID` is the same on every attempt.
//!
//! Without `[email]`, Ferry refuses requests that name an address; a delivery queued before the
//! settings were removed fails at once (`email_not_configured`).

use super::message::{Content, Links, compose};
use super::{delivery_outcome, describe};
use crate::config::EmailSettings;
use crate::domain::{ExportResult, ImportResult, Job, JobId, JobKind};
use crate::queue::{FollowUp, Handler, JobContext, JobFailure};
use crate::storage::{ObjectKey, SignedLink, Storage, StorageError, import_key};
use lettre::message::{Mailbox, MultiPart};
use lettre::{Address, AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::time::Duration;

/// Attempts of a delivery: the first and 3 retries, as for webhooks.
pub const ATTEMPTS: u32 = 4;
/// The queue's limit on one attempt: a backstop above the handler's own (`email.timeout`, at
/// most 5 minutes).
const JOB_TIMEOUT: Duration = Duration::from_secs(330);
/// A failed attempt: worth another.
const FAILED: &str = "email_failed";
/// The SMTP server refused the message for good.
const REFUSED: &str = "email_refused";
/// The job's spec is not a delivery, or no message can be made from it.
const INVALID: &str = "invalid_delivery";
/// `[email]` is not configured.
const NOT_CONFIGURED: &str = "email_not_configured";
/// The content type of an import's rejects report.
const REJECTS_TYPE: &str = "text/csv; charset=utf-8";

/// One message to send: the spec of an `email` job.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EmailDelivery {
    /// The address, as the client gave it (checked when the job was requested).
    pub to: String,
    /// The job the message is about, as of its final state.
    pub job: Job,
}

/// The `email` job that tells `to` how `job` (as of its final state change) ended. The job's
/// checkpoint is left out: it is private to its handler.
pub fn delivery_job(to: &str, job: &Job) -> FollowUp {
    let delivery = EmailDelivery {
        to: to.to_owned(),
        job: Job {
            checkpoint: None,
            ..job.clone()
        },
    };
    FollowUp {
        id: JobId::new(),
        kind: JobKind::Email,
        name: format!("{}.{} email for {}", job.kind.as_str(), job.state, job.id),
        spec: serde_json::to_value(&delivery).unwrap_or(Value::Null),
        max_attempts: ATTEMPTS,
        timeout: JOB_TIMEOUT,
    }
}

/// The configured SMTP side.
#[derive(Clone)]
struct Mailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
    link_ttl: Duration,
    timeout: Duration,
}

/// Runs `email` jobs: one SMTP submission per attempt.
#[derive(Clone)]
pub struct EmailHandler {
    mailer: Option<Mailer>,
    storage: Storage,
}

impl std::fmt::Debug for EmailHandler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmailHandler")
            .field("configured", &self.mailer.is_some())
            .finish_non_exhaustive()
    }
}

impl EmailHandler {
    /// A handler for the `[email]` settings (none: every delivery fails as not configured),
    /// signing links with `storage`. Fails if the SMTP URL or the sender cannot be used.
    pub fn new(settings: Option<&EmailSettings>, storage: Storage) -> anyhow::Result<Self> {
        let mailer = settings.map(mailer).transpose()?;
        Ok(Self { mailer, storage })
    }

    /// One attempt, without the time limit.
    async fn deliver(&self, mailer: &Mailer, id: JobId, spec: &Value) -> Result<Value, JobFailure> {
        let delivery = EmailDelivery::deserialize(spec)
            .map_err(|e| JobFailure::fatal(INVALID, e.to_string()))?;
        let to: Address = delivery
            .to
            .parse()
            .map_err(|e| JobFailure::fatal(INVALID, format!("the address is unusable: {e}")))?;
        let links = self.links(&delivery.job, mailer.link_ttl).await?;
        let content = compose(&delivery.job, &links)
            .map_err(|message| JobFailure::fatal(INVALID, message))?;
        let message_id = format!("<{id}@{}>", mailer.from.email.domain());
        let message = build(mailer, to, &message_id, content)?;
        let response = mailer.transport.send(message).await.map_err(send_failed)?;
        Ok(json!({ "message_id": message_id, "smtp": response.code().to_string() }))
    }

    /// The links the message about `job` carries, signed now for `ttl`.
    async fn links(&self, job: &Job, ttl: Duration) -> Result<Links, JobFailure> {
        let mut links = Links::default();
        let Some(result) = job.result.clone() else {
            return Ok(links);
        };
        match job.kind {
            JobKind::Export => {
                let result: ExportResult = serde_json::from_value(result)
                    .map_err(|e| JobFailure::fatal(INVALID, e.to_string()))?;
                let file = &result.file;
                let key = ObjectKey::parse(&file.key).map_err(signing_failed)?;
                links.download = Some(
                    self.sign(&key, &file.filename, &file.content_type, ttl)
                        .await?,
                );
            }
            JobKind::Import => {
                let result: ImportResult = serde_json::from_value(result)
                    .map_err(|e| JobFailure::fatal(INVALID, e.to_string()))?;
                if result.rejects_url.is_some() && result.rows_rejected > 0 {
                    let key = import_key(&job.tenant, job.id, "rejects.csv");
                    let name = format!("rejects-{}.csv", job.id);
                    links.rejects = Some(self.sign(&key, &name, REJECTS_TYPE, ttl).await?);
                }
            }
            JobKind::Webhook | JobKind::Email => {}
        }
        Ok(links)
    }

    async fn sign(
        &self,
        key: &ObjectKey,
        filename: &str,
        content_type: &str,
        ttl: Duration,
    ) -> Result<SignedLink, JobFailure> {
        self.storage
            .download_url(key, filename, content_type, ttl)
            .await
            .map_err(signing_failed)
    }
}

#[async_trait::async_trait]
impl Handler for EmailHandler {
    async fn run(&self, job: Job, ctx: JobContext) -> Result<Value, JobFailure> {
        let outcome = match &self.mailer {
            None => Err(JobFailure::fatal(
                NOT_CONFIGURED,
                "no [email] is configured to send with",
            )),
            Some(mailer) => {
                let attempt =
                    tokio::time::timeout(mailer.timeout, self.deliver(mailer, job.id, &job.spec));
                tokio::select! {
                    biased;
                    () = ctx.stop.cancelled() => Err(JobFailure::Stopped),
                    outcome = attempt => outcome.unwrap_or_else(|_| Err(JobFailure::retryable(
                        FAILED,
                        format!("no answer within {}", humantime::format_duration(mailer.timeout)),
                    ))),
                }
            }
        };
        if let Some(counted) = delivery_outcome(&outcome, job.attempt < job.max_attempts) {
            crate::metrics::email_delivery(counted);
        }
        match &outcome {
            Ok(answer) => {
                let field = |name: &str| answer[name].as_str().unwrap_or_default().to_owned();
                tracing::info!(message_id = %field("message_id"), smtp = %field("smtp"), "email sent");
            }
            Err(failure) => {
                if let Some(error) = failure.to_error() {
                    tracing::info!(code = %error.code, detail = %error.message, "email delivery attempt failed");
                }
            }
        }
        outcome
    }
}

/// The SMTP transport and sender of `settings`.
fn mailer(settings: &EmailSettings) -> anyhow::Result<Mailer> {
    let from: Mailbox = settings
        .from
        .parse()
        .map_err(|e| anyhow::anyhow!("email.from is not an address: {e}"))?;
    // lettre's error names the URL's problem, never its password.
    let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(settings.smtp_url.expose())
        .map_err(|e| anyhow::anyhow!("email.smtp_url cannot be used: {e}"))?
        .timeout(Some(settings.timeout))
        .build();
    Ok(Mailer {
        transport,
        from,
        link_ttl: settings.link_ttl,
        timeout: settings.timeout,
    })
}

/// The message itself: plain text and HTML alternatives.
fn build(
    mailer: &Mailer,
    to: Address,
    message_id: &str,
    content: Content,
) -> Result<Message, JobFailure> {
    Message::builder()
        .from(mailer.from.clone())
        .to(Mailbox::new(None, to))
        .subject(content.subject)
        .message_id(Some(message_id.to_owned()))
        .multipart(MultiPart::alternative_plain_html(
            content.text,
            content.html,
        ))
        .map_err(|e| JobFailure::fatal(INVALID, format!("the message cannot be built: {e}")))
}

/// A link that could not be signed: retried when the store may answer later.
fn signing_failed(error: StorageError) -> JobFailure {
    let message = format!("cannot sign the message's link: {error}");
    if error.is_transient() {
        JobFailure::retryable(FAILED, message)
    } else {
        JobFailure::fatal(INVALID, message)
    }
}

/// How a submission that failed ends the attempt: a permanent refusal is fatal, anything else
/// (a temporary refusal, no connection, a timeout, TLS) may pass.
fn send_failed(error: lettre::transport::smtp::Error) -> JobFailure {
    let cause = describe(&error);
    if error.is_permanent() {
        JobFailure::fatal(
            REFUSED,
            format!("the SMTP server refused the message: {cause}"),
        )
    } else {
        JobFailure::retryable(FAILED, format!("sending failed: {cause}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::JobState;

    #[test]
    fn a_delivery_job_carries_the_address_and_the_job_without_its_checkpoint() {
        let mut job = Job::for_tests(JobKind::Export, JobState::Succeeded);
        job.checkpoint = Some(json!({"upload": "u1"}));
        let follow_up = delivery_job("ops@example.com", &job);
        assert_eq!(follow_up.kind, JobKind::Email);
        assert_eq!(follow_up.max_attempts, ATTEMPTS);
        let delivery = EmailDelivery::deserialize(&follow_up.spec).unwrap();
        assert_eq!(delivery.to, "ops@example.com");
        assert_eq!(delivery.job.id, job.id);
        assert_eq!(delivery.job.checkpoint, None);
        assert!(follow_up.name.starts_with("export.succeeded email for "));
    }

    // The transport's connection pool starts a task: it needs a runtime.
    #[tokio::test]
    async fn the_settings_build_a_mailer_and_a_bad_sender_does_not() {
        let settings = EmailSettings::new("smtp://127.0.0.1:2525", "Ferry <exports@example.com>");
        let built = mailer(&settings).unwrap();
        assert_eq!(built.from.email.domain(), "example.com");
        let bad = EmailSettings::new("smtp://127.0.0.1:2525", "not an address");
        assert!(mailer(&bad).is_err());
        let scheme = EmailSettings::new("imap://127.0.0.1", "a@example.com");
        assert!(mailer(&scheme).is_err());
    }
}
