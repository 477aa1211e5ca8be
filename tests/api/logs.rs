//! JSON logs of a real `ferry serve` process (`FERRY_LOG_FORMAT=json`): every line is a JSON
//! object, and every line of a job carries the job's id and tenant.
//!
//! What counts as "a line of a job", checked on every line of the run:
//!
//! 1. lines from the modules that only run inside jobs (`ferry::jobs`, `ferry::pipeline`,
//!    `ferry::queue::executor`, `ferry::notify`) carry a `job` span with `job.id` and `tenant`,
//!    whichever task or thread wrote them;
//! 2. lines from `ferry::storage` (called by jobs and by request handlers) carry a `job` span or
//!    an HTTP `request` span;
//! 3. any line whose own fields mention one of the test's job ids carries that job's span (or,
//!    for a webhook about it, the delivery job's span; or a request span), or names it itself
//!    with top-level `job.id` and `tenant` fields (the rescuer and sweeper, outside any job);
//! 4. every `job` span names a job of this test (or a webhook delivery) and tenant `default`;
//! 5. each job has at least the lines of its phases, so the checks above are not vacuous.

use crate::process::{Receiver, Served};
use serde_json::{Map, Value, json};
use std::collections::{BTreeMap, BTreeSet};

/// Targets whose every line is written while a job runs.
const JOB_TARGETS: [&str; 4] = [
    "ferry::jobs",
    "ferry::pipeline",
    "ferry::queue::executor",
    "ferry::notify",
];

/// The span of `name` a line carries, if any (the `spans` list: outermost first).
fn span<'a>(line: &'a Map<String, Value>, name: &str) -> Option<&'a Map<String, Value>> {
    line.get("spans")?
        .as_array()?
        .iter()
        .filter_map(Value::as_object)
        .find(|s| s["name"] == name)
}

fn text<'a>(object: &'a Map<String, Value>, key: &str) -> &'a str {
    object.get(key).and_then(Value::as_str).unwrap_or("")
}

/// The line without its span fields: what the line itself says.
fn own_fields(line: &Map<String, Value>) -> String {
    let mut own = line.clone();
    own.remove("span");
    own.remove("spans");
    Value::Object(own).to_string()
}

#[tokio::test]
async fn every_json_log_line_of_a_job_carries_its_id_and_tenant() {
    let receiver = Receiver::start().await;
    let served = Served::start(&[
        ("FERRY_LOG_FORMAT", "json"),
        ("FERRY_LOG", "info,ferry=debug,tower_http=debug"),
    ])
    .await;
    served
        .local_sql("CREATE TABLE people (id INTEGER PRIMARY KEY, name TEXT NOT NULL, born DATE)")
        .await;
    let export = served
        .export(&json!({
            "source": {"type": "generate", "rows": 20_000, "seed": 3, "columns": [
                {"name": "id", "kind": "uuid"}, {"name": "note", "kind": "text", "length": 40}]},
            "format": "csv.gz",
            "notify": {"webhook_url": receiver.url},
        }))
        .await;
    assert_eq!(export["state"], "succeeded", "{export}");
    let file = "id,name,born\n1,Ann,1990-01-31\n2,,1990-02-01\n3,Bo,1990-02-31\n4,Cy,1991-03-01\n";
    let import = served
        .import(&json!({"target": {"table": "people"}}), file)
        .await;
    assert_eq!(import["state"], "succeeded", "{import}");
    assert_eq!(import["result"]["rows_rejected"], 2);
    crate::helpers::eventually(
        std::time::Duration::from_secs(30),
        "the webhook to be delivered",
        || async { (receiver.calls.load(std::sync::atomic::Ordering::SeqCst) == 1).then_some(()) },
    )
    .await;
    // The delivery job records its success just after the receiver answers.
    let metadata = format!(
        "sqlite://{}?mode=rwc",
        served.dir.join("ferry.db").display()
    );
    let delivery =
        crate::helpers::final_follow_up(&metadata, ferry::domain::JobKind::Webhook).await;
    assert_eq!(delivery.state, ferry::domain::JobState::Succeeded);
    let log = served.stop();

    let ids: BTreeMap<String, &str> = [(&export, "export"), (&import, "import")]
        .into_iter()
        .map(|(job, kind)| (job["id"].as_str().unwrap_or("?").to_owned(), kind))
        .collect();
    let mut by_job: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut webhook_jobs = BTreeSet::new();
    let mut problems = Vec::new();
    let mut lines = 0;
    for raw in log.lines().filter(|l| !l.trim().is_empty()) {
        lines += 1;
        let line = match serde_json::from_str::<Value>(raw) {
            Ok(Value::Object(line)) => line,
            _ => panic!("a log line that is not a JSON object: {raw}"),
        };
        let target = text(&line, "target");
        let job = span(&line, "job");
        let request = span(&line, "request");
        if let Some(job) = job {
            let (id, kind) = (text(job, "job.id"), text(job, "job.kind"));
            if text(job, "tenant") != "default" {
                problems.push(format!("job span without tenant default: {raw}"));
            }
            match ids.get(id) {
                Some(known) if *known == kind => {}
                None if kind == "webhook" => {
                    webhook_jobs.insert(id.to_owned());
                }
                _ => problems.push(format!("job span of an unknown job: {raw}")),
            }
            by_job
                .entry(id.to_owned())
                .or_default()
                .push(text(&line, "message").to_owned());
        }
        if JOB_TARGETS.iter().any(|t| target.starts_with(t)) && job.is_none() {
            problems.push(format!("a job module's line without its job span: {raw}"));
        }
        if target.starts_with("ferry::storage") && job.is_none() && request.is_none() {
            problems.push(format!("a storage line outside a job and a request: {raw}"));
        }
        let own = own_fields(&line);
        for id in ids.keys().filter(|id| own.contains(id.as_str())) {
            let in_job = job.is_some_and(|j| text(j, "job.id") == id || j["job.kind"] == "webhook");
            let names_it = text(&line, "job.id") == id && !text(&line, "tenant").is_empty();
            if !(in_job || names_it || request.is_some()) {
                problems.push(format!(
                    "a line about job {id} without its id and tenant: {raw}"
                ));
            }
        }
    }
    assert!(
        problems.is_empty(),
        "{lines} lines; problems:\n{}",
        problems.join("\n")
    );

    let expect = |id: &str, phases: &[&str]| {
        let messages = by_job.get(id).cloned().unwrap_or_default();
        for phase in phases {
            assert!(
                messages.iter().any(|m| m == phase),
                "job {id} has no {phase:?} line: {messages:?}"
            );
        }
    };
    expect(
        export["id"].as_str().unwrap_or("?"),
        &[
            "job started",
            "synthetic source finished",
            "part stored",
            "upload complete",
            "export file stored",
            "job succeeded",
        ],
    );
    expect(
        import["id"].as_str().unwrap_or("?"),
        &[
            "job started",
            "file read and checked",
            "part stored",
            "rejects report stored",
            "load committed",
            "job succeeded",
        ],
    );
    assert_eq!(webhook_jobs.len(), 1, "one delivery: {webhook_jobs:?}");
    for id in &webhook_jobs {
        expect(id, &["job started", "webhook delivered", "job succeeded"]);
    }
}
