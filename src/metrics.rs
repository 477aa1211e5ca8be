//! Prometheus metrics: the process's one recorder, the names of every series Ferry records, and
//! the small functions the rest of the code calls to record them.
//!
//! The `metrics` facade holds one global recorder per process. [`handle`] installs it the first
//! time it is called and hands the same [`PrometheusHandle`] to every later caller (tests build
//! many applications in one process; none of them may fail for it). Counters and histograms
//! recorded here are per process; the job and queue gauges are not recorded at all but read from
//! the metadata database at scrape time ([`render_job_gauges`]), so every process reports the
//! same, complete figures for them. The series are listed in `docs/operations.md`.

use crate::domain::{JobKind, JobState};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use std::fmt::Write as _;
use std::sync::OnceLock;
use std::time::Duration;

/// Jobs by kind and state (gauge, from the database).
pub const JOBS: &str = "ferry_jobs";
/// Queued jobs by kind, due or not (gauge, from the database).
pub const QUEUE_DEPTH: &str = "ferry_queue_depth";
/// Seconds the oldest due queued job of a kind has waited past its `run_at` (gauge, from the
/// database).
pub const QUEUE_OLDEST_AGE: &str = "ferry_queue_oldest_age_seconds";
/// Duration of one attempt by kind and outcome (histogram).
pub const JOB_DURATION: &str = "ferry_job_duration_seconds";
/// Rows moved by succeeded jobs, by kind (counter).
pub const ROWS: &str = "ferry_rows_total";
/// Bytes moved by succeeded jobs, by kind (counter).
pub const BYTES: &str = "ferry_bytes_total";
/// Bytes of import files received from clients over HTTP (counter).
pub const UPLOAD_BYTES: &str = "ferry_upload_bytes_total";
/// Webhook delivery attempts by outcome (counter).
pub const WEBHOOK_DELIVERIES: &str = "ferry_webhook_deliveries_total";
/// E-mail delivery attempts by outcome (counter).
pub const EMAIL_DELIVERIES: &str = "ferry_email_deliveries_total";
/// HTTP requests by method, route template and status (counter).
pub const HTTP_REQUESTS: &str = "ferry_http_requests_total";
/// HTTP request duration by method and route template (histogram).
pub const HTTP_DURATION: &str = "ferry_http_request_duration_seconds";

/// Buckets of [`JOB_DURATION`]: jobs take from milliseconds (a webhook) to the job timeout.
const JOB_BUCKETS: [f64; 14] = [
    0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 1800.0, 3600.0,
];
/// Buckets of [`HTTP_DURATION`]: most answers take milliseconds; uploads take longer.
const HTTP_BUCKETS: [f64; 13] = [
    0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 60.0,
];
/// How often histogram samples are folded into their buckets when nobody scrapes (a `ferry
/// worker` has no HTTP listener), so that memory stays bounded.
const UPKEEP_INTERVAL: Duration = Duration::from_secs(5);

/// Every job kind, in the order the gauges list them.
const KINDS: [JobKind; JobKind::ALL.len()] = JobKind::ALL;

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// The process's recorder handle, installing the recorder on first use. If another recorder
/// was installed first (only a test could do that), Ferry's series are not recorded and the
/// handle renders nothing but the database gauges: metrics never stop the application.
pub fn handle() -> &'static PrometheusHandle {
    HANDLE.get_or_init(|| {
        let recorder = builder().build_recorder();
        let handle = recorder.handle();
        if let Err(error) = ::metrics::set_global_recorder(recorder) {
            tracing::warn!(error = %error, "another metrics recorder is installed; Ferry's counters are not recorded");
        }
        describe();
        let upkeep = handle.clone();
        let started = std::thread::Builder::new()
            .name("ferry-metrics-upkeep".into())
            .spawn(move || {
                loop {
                    std::thread::sleep(UPKEEP_INTERVAL);
                    upkeep.run_upkeep();
                }
            });
        if let Err(error) = started {
            tracing::warn!(error = %error, "cannot start the metrics upkeep thread; scrapes still do it");
        }
        handle
    })
}

/// The builder with the histograms' buckets (without buckets they would render as summaries).
fn builder() -> PrometheusBuilder {
    let plain = PrometheusBuilder::new;
    // Only an empty bucket list is refused, and these are constants.
    plain()
        .set_buckets_for_metric(Matcher::Full(JOB_DURATION.into()), &JOB_BUCKETS)
        .and_then(|b| b.set_buckets_for_metric(Matcher::Full(HTTP_DURATION.into()), &HTTP_BUCKETS))
        .unwrap_or_else(|_| plain())
}

/// `# HELP` texts of the recorded series.
fn describe() {
    use ::metrics::{Unit, describe_counter, describe_histogram};
    describe_histogram!(
        JOB_DURATION,
        Unit::Seconds,
        "Duration of one job attempt, by kind and outcome."
    );
    describe_counter!(
        ROWS,
        "Rows moved by succeeded jobs: written by exports, inserted by imports."
    );
    describe_counter!(
        BYTES,
        Unit::Bytes,
        "Bytes moved by succeeded jobs: file bytes written by exports, read by imports."
    );
    describe_counter!(
        UPLOAD_BYTES,
        Unit::Bytes,
        "Bytes of import files received from clients over HTTP."
    );
    describe_counter!(
        WEBHOOK_DELIVERIES,
        "Webhook delivery attempts: delivered, failed (will be retried) or gave_up."
    );
    describe_counter!(
        EMAIL_DELIVERIES,
        "E-mail delivery attempts: delivered (accepted by the SMTP server), failed (will be retried) or gave_up."
    );
    describe_counter!(
        HTTP_REQUESTS,
        "HTTP requests by method, route template and status."
    );
    describe_histogram!(
        HTTP_DURATION,
        Unit::Seconds,
        "HTTP request duration until the response head, by method and route template."
    );
}

/// How one attempt of a job ended, as the executor recorded it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttemptOutcome {
    /// The job succeeded.
    Succeeded,
    /// The attempt failed and the job is queued again after a backoff.
    Retried,
    /// The attempt failed and the job failed for good.
    Failed,
    /// The job was cancelled by its client.
    Cancelled,
    /// A shutdown handed the job back to the queue.
    HandedBack,
    /// Another worker took the job over (its lease had lapsed).
    LeaseLost,
}

impl AttemptOutcome {
    /// The `outcome` label.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Succeeded => "succeeded",
            Self::Retried => "retried",
            Self::Failed => "failed",
            Self::Cancelled => "cancelled",
            Self::HandedBack => "handed_back",
            Self::LeaseLost => "lease_lost",
        }
    }
}

/// Records the end of one attempt of a job of `kind` that ran for `elapsed`.
pub fn attempt_finished(kind: JobKind, outcome: AttemptOutcome, elapsed: Duration) {
    ::metrics::histogram!(JOB_DURATION, "kind" => kind.as_str(), "outcome" => outcome.as_str())
        .record(elapsed.as_secs_f64());
}

/// Records what a succeeded job of `kind` moved.
pub fn moved(kind: JobKind, rows: u64, bytes: u64) {
    ::metrics::counter!(ROWS, "kind" => kind.as_str()).increment(rows);
    ::metrics::counter!(BYTES, "kind" => kind.as_str()).increment(bytes);
}

/// Records `bytes` of an import file received from a client.
pub fn uploaded(bytes: usize) {
    ::metrics::counter!(UPLOAD_BYTES).increment(bytes as u64);
}

/// How one delivery attempt of a notification (a webhook, an e-mail) ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryOutcome {
    /// The receiver answered 2xx; the SMTP server accepted the message.
    Delivered,
    /// The attempt failed; another follows after a backoff.
    Failed,
    /// The attempt failed and no other follows (attempts used up, or a refused URL).
    GaveUp,
}

impl DeliveryOutcome {
    /// The `outcome` label.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Delivered => "delivered",
            Self::Failed => "failed",
            Self::GaveUp => "gave_up",
        }
    }
}

/// Records one webhook delivery attempt.
pub fn webhook_delivery(outcome: DeliveryOutcome) {
    ::metrics::counter!(WEBHOOK_DELIVERIES, "outcome" => outcome.as_str()).increment(1);
}

/// Records one e-mail delivery attempt.
pub fn email_delivery(outcome: DeliveryOutcome) {
    ::metrics::counter!(EMAIL_DELIVERIES, "outcome" => outcome.as_str()).increment(1);
}

/// Records one HTTP request; `route` is the matched route template, never the raw path.
pub fn http_request(method: &str, route: &str, status: u16, elapsed: Duration) {
    let (method, route) = (method.to_owned(), route.to_owned());
    ::metrics::counter!(HTTP_REQUESTS, "method" => method.clone(), "route" => route.clone(), "status" => status.to_string())
        .increment(1);
    ::metrics::histogram!(HTTP_DURATION, "method" => method, "route" => route)
        .record(elapsed.as_secs_f64());
}

/// The jobs table at one instant: how many jobs of each kind are in each state, and when the
/// oldest due queued job of each kind became due.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct JobCounts {
    /// (kind, state, jobs); combinations without jobs may be left out.
    pub by_state: Vec<(JobKind, JobState, u64)>,
    /// (kind, seconds the oldest due queued job has waited); kinds without one may be left out.
    pub oldest_due: Vec<(JobKind, f64)>,
}

/// The database gauges in the text exposition format. Every known kind and state is listed,
/// with 0 where there are no jobs, so a series never vanishes when its last job moves on.
pub fn render_job_gauges(counts: &JobCounts) -> String {
    let jobs = |kind: JobKind, state: JobState| {
        counts
            .by_state
            .iter()
            .filter(|(k, s, _)| *k == kind && *s == state)
            .map(|(_, _, n)| n)
            .sum::<u64>()
    };
    let mut out = String::new();
    header(
        &mut out,
        JOBS,
        "Jobs by kind and state, from the metadata database.",
    );
    for kind in KINDS {
        for state in JobState::ALL {
            let n = jobs(kind, state);
            let _ = writeln!(
                out,
                "{JOBS}{{kind=\"{}\",state=\"{}\"}} {n}",
                kind.as_str(),
                state.as_str()
            );
        }
    }
    header(
        &mut out,
        QUEUE_DEPTH,
        "Queued jobs by kind (due now or later), from the metadata database.",
    );
    for kind in KINDS {
        let n = jobs(kind, JobState::Queued);
        let _ = writeln!(out, "{QUEUE_DEPTH}{{kind=\"{}\"}} {n}", kind.as_str());
    }
    header(
        &mut out,
        QUEUE_OLDEST_AGE,
        "Seconds the oldest due queued job of a kind has waited (0 if none), from the metadata database.",
    );
    for kind in KINDS {
        let age = counts
            .oldest_due
            .iter()
            .filter(|(k, _)| *k == kind)
            .map(|(_, age)| age.max(0.0))
            .fold(0.0, f64::max);
        let _ = writeln!(
            out,
            "{QUEUE_OLDEST_AGE}{{kind=\"{}\"}} {age}",
            kind.as_str()
        );
    }
    out
}

fn header(out: &mut String, name: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} gauge");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_and_state_is_listed_with_zero_where_there_are_no_jobs() {
        let counts = JobCounts {
            by_state: vec![
                (JobKind::Export, JobState::Succeeded, 3),
                (JobKind::Import, JobState::Queued, 2),
            ],
            oldest_due: vec![(JobKind::Import, 1.5)],
        };
        let text = render_job_gauges(&counts);
        let samples: Vec<&str> = text.lines().filter(|l| !l.starts_with('#')).collect();
        assert_eq!(samples.len(), 4 * 7 + 4 + 4, "{text}");
        assert!(samples.contains(&"ferry_jobs{kind=\"export\",state=\"succeeded\"} 3"));
        assert!(samples.contains(&"ferry_jobs{kind=\"webhook\",state=\"failed\"} 0"));
        assert!(samples.contains(&"ferry_jobs{kind=\"email\",state=\"succeeded\"} 0"));
        assert!(samples.contains(&"ferry_queue_depth{kind=\"import\"} 2"));
        assert!(samples.contains(&"ferry_queue_depth{kind=\"export\"} 0"));
        assert!(samples.contains(&"ferry_queue_oldest_age_seconds{kind=\"import\"} 1.5"));
        assert!(samples.contains(&"ferry_queue_oldest_age_seconds{kind=\"export\"} 0"));
        for name in [JOBS, QUEUE_DEPTH, QUEUE_OLDEST_AGE] {
            assert_eq!(
                text.matches(&format!("# TYPE {name} gauge\n")).count(),
                1,
                "{text}"
            );
        }
    }

    #[test]
    fn a_second_handle_is_the_first_one_and_histograms_render_with_buckets() {
        let first: *const PrometheusHandle = handle();
        let second: *const PrometheusHandle = handle();
        assert_eq!(first, second);
        attempt_finished(
            JobKind::Export,
            AttemptOutcome::Succeeded,
            Duration::from_millis(700),
        );
        let text = handle().render();
        assert!(
            text.contains("# TYPE ferry_job_duration_seconds histogram"),
            "{text}"
        );
        assert!(
            text.contains(
                "ferry_job_duration_seconds_bucket{kind=\"export\",outcome=\"succeeded\",le=\"1\"}"
            ),
            "{text}"
        );
    }
}
