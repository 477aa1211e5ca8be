//! The queue's follow-up hook: which notifications a job's final state asks for.
//!
//! The store calls [`Notifier`] inside the transaction of every final state change; it reads the
//! targets the client named in the job's spec and returns one job per target (a `webhook`
//! delivery, an `email`), which the store inserts in that same transaction.

use super::message::is_mailed;
use super::webhook::{delivery_job, event_type};
use crate::domain::{Job, NotifyTargets};
use crate::queue::{FollowUp, FollowUps};
use time::OffsetDateTime;

/// Builds the notifications of a job that ended.
#[derive(Debug, Clone, Default)]
pub struct Notifier;

impl FollowUps for Notifier {
    fn follow_ups(&self, job: &Job) -> Vec<FollowUp> {
        let Some(event_type) = event_type(job.kind, job.state) else {
            return Vec::new();
        };
        let targets = match NotifyTargets::of(job.kind, &job.spec) {
            Ok(targets) => targets,
            Err(error) => {
                tracing::error!(job.id = %job.id, tenant = %job.tenant, error = %error, "the job's spec names no readable notification targets; none is sent");
                return Vec::new();
            }
        };
        let mut jobs = Vec::new();
        if let Some(url) = &targets.webhook_url {
            match delivery_job(url, &event_type, job, OffsetDateTime::now_utc()) {
                Ok(delivery) => jobs.push(delivery),
                Err(error) => {
                    tracing::error!(job.id = %job.id, tenant = %job.tenant, error = %error, "cannot build a webhook delivery; none is sent")
                }
            }
        }
        if let Some(address) = &targets.email
            && is_mailed(job.kind, job.state)
        {
            jobs.push(super::email::delivery_job(address, job));
        }
        jobs
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{JobKind, JobState};
    use serde_json::json;

    fn ended(kind: JobKind, state: JobState, spec: serde_json::Value) -> Job {
        Job {
            spec,
            ..Job::for_tests(kind, state)
        }
    }

    #[test]
    fn a_final_state_of_a_job_with_a_callback_asks_for_one_webhook_delivery() {
        let export = json!({"source": {"type": "generate"}, "notify": {"webhook_url": "https://a.example/h"}});
        for state in [JobState::Succeeded, JobState::Failed, JobState::Cancelled] {
            let jobs = Notifier.follow_ups(&ended(JobKind::Export, state, export.clone()));
            assert_eq!(jobs.len(), 1, "{state}");
            assert_eq!(jobs[0].kind, JobKind::Webhook);
            assert_eq!(jobs[0].spec["event_type"], format!("export.{state}"));
        }
        let import = json!({"target": {"table": "t"}, "callback_url": "https://b.example/h"});
        let jobs = Notifier.follow_ups(&ended(JobKind::Import, JobState::Succeeded, import));
        assert_eq!(jobs[0].spec["url"], "https://b.example/h");
    }

    #[test]
    fn a_job_that_names_an_address_asks_for_an_email_when_it_succeeds_or_fails() {
        let export = json!({"source": {"type": "generate"},
            "notify": {"webhook_url": "https://a.example/h", "email": "ops@example.com"}});
        let jobs = Notifier.follow_ups(&ended(JobKind::Export, JobState::Failed, export.clone()));
        let kinds: Vec<JobKind> = jobs.iter().map(|j| j.kind).collect();
        assert_eq!(kinds, [JobKind::Webhook, JobKind::Email]);
        assert_eq!(jobs[1].spec["to"], "ops@example.com");
        let cancelled = Notifier.follow_ups(&ended(JobKind::Export, JobState::Cancelled, export));
        let kinds: Vec<JobKind> = cancelled.iter().map(|j| j.kind).collect();
        assert_eq!(kinds, [JobKind::Webhook], "a cancelled job is not mailed");
        let import = json!({"target": {"table": "t"}, "notify_email": "ada@example.com"});
        let jobs = Notifier.follow_ups(&ended(JobKind::Import, JobState::Succeeded, import));
        assert_eq!(jobs.len(), 1);
        assert_eq!(jobs[0].kind, JobKind::Email);
    }

    #[test]
    fn expiry_notifications_themselves_and_jobs_without_targets_ask_for_nothing() {
        let export = json!({"source": {"type": "generate"}, "notify": {"webhook_url": "https://a.example/h"}});
        assert!(
            Notifier
                .follow_ups(&ended(JobKind::Export, JobState::Expired, export.clone()))
                .is_empty()
        );
        assert!(
            Notifier
                .follow_ups(&ended(JobKind::Webhook, JobState::Failed, export))
                .is_empty()
        );
        let bare = json!({"source": {"type": "generate"}});
        assert!(
            Notifier
                .follow_ups(&ended(JobKind::Export, JobState::Succeeded, bare))
                .is_empty()
        );
        let corrupt = json!(["not", "a", "request"]);
        assert!(
            Notifier
                .follow_ups(&ended(JobKind::Import, JobState::Failed, corrupt))
                .is_empty()
        );
    }
}
