//! `GET /metrics` of a real `ferry serve` process: a known export, imports, a webhook and a few
//! bad requests, then exact values read back from the Prometheus text exposition.

use crate::helpers::eventually;
use crate::process::{Receiver, Served};
use serde_json::json;
use std::collections::BTreeMap;
use std::time::Duration;

/// One sample line: `name{label="value",…} value`.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub value: f64,
}

/// The parsed exposition: its `# TYPE` lines and its samples.
#[derive(Debug, Default)]
pub struct Exposition {
    pub types: BTreeMap<String, String>,
    pub samples: Vec<Sample>,
}

impl Exposition {
    /// Parses the text format; panics on a line it cannot read.
    pub fn parse(text: &str) -> Self {
        let mut parsed = Self::default();
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                let (name, kind) = rest.split_once(' ').expect("# TYPE name kind");
                parsed.types.insert(name.to_owned(), kind.to_owned());
            } else if !line.starts_with('#') {
                parsed.samples.push(parse_sample(line));
            }
        }
        parsed
    }

    /// The value of the one sample of `name` whose labels are exactly `labels`.
    pub fn value(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        let wanted: BTreeMap<String, String> = labels
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        let found: Vec<f64> = self
            .samples
            .iter()
            .filter(|s| s.name == name && s.labels == wanted)
            .map(|s| s.value)
            .collect();
        assert!(found.len() <= 1, "{name} {labels:?} appears twice");
        found.first().copied()
    }

    /// Every sample of `name`.
    pub fn all(&self, name: &str) -> Vec<&Sample> {
        self.samples.iter().filter(|s| s.name == name).collect()
    }
}

fn parse_sample(line: &str) -> Sample {
    let (series, value) = line.rsplit_once(' ').expect("a sample has a value");
    let value = match value {
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        other => other
            .parse()
            .unwrap_or_else(|_| panic!("a number in {line:?}")),
    };
    let Some((name, rest)) = series.split_once('{') else {
        return Sample {
            name: series.to_owned(),
            labels: BTreeMap::new(),
            value,
        };
    };
    let body = rest.strip_suffix('}').expect("labels end with }");
    let mut labels = BTreeMap::new();
    let mut chars = body.chars().peekable();
    while chars.peek().is_some() {
        let key: String = chars.by_ref().take_while(|c| *c != '=').collect();
        assert_eq!(chars.next(), Some('"'), "a quoted value in {line:?}");
        let mut value = String::new();
        loop {
            match chars.next().expect("a closing quote") {
                '\\' => match chars.next().expect("an escaped character") {
                    'n' => value.push('\n'),
                    other => value.push(other),
                },
                '"' => break,
                other => value.push(other),
            }
        }
        labels.insert(key.trim_start_matches(',').to_owned(), value);
        if chars.peek() == Some(&',') {
            chars.next();
        }
    }
    Sample {
        name: name.to_owned(),
        labels,
        value,
    }
}

#[test]
fn the_parser_reads_route_templates_with_braces_and_escaped_quotes() {
    let text = "# TYPE x counter\nx{route=\"/v1/exports/{id}\",a=\"q\\\"z\"} 3\ny 1.5\n";
    let parsed = Exposition::parse(text);
    assert_eq!(parsed.types["x"], "counter");
    assert_eq!(
        parsed.value("x", &[("route", "/v1/exports/{id}"), ("a", "q\"z")]),
        Some(3.0)
    );
    assert_eq!(parsed.value("y", &[]), Some(1.5));
}

async fn scrape(served: &Served) -> Exposition {
    let response = served
        .client
        .get(served.url("/metrics"))
        .send()
        .await
        .expect("GET /metrics");
    assert_eq!(response.status(), 200);
    let content_type = response.headers()["content-type"].to_str().unwrap_or("");
    assert!(content_type.starts_with("text/plain"), "{content_type}");
    Exposition::parse(&response.text().await.expect("a body"))
}

const PEOPLE: &str = "id,name,born\n1,Ann,1990-01-31\n2,,1990-02-01\n3,Bo,1990-02-31\n4,Cy,1991-03-01\n5,Di,1992-04-01\n";
const DIRECT: &str = "id,name,born\n10,Ed,1980-01-01\n11,Flo,1981-01-01\n";

#[tokio::test]
async fn metrics_count_jobs_rows_bytes_uploads_webhooks_and_requests_by_route_template() {
    let receiver = Receiver::start().await;
    let served = Served::start(&[]).await;
    served
        .local_sql("CREATE TABLE people (id INTEGER PRIMARY KEY, name TEXT NOT NULL, born DATE)")
        .await;

    // An export of a known number of rows, with a webhook.
    let export = served
        .export(&json!({
            "source": {"type": "generate", "rows": 1234, "seed": 7, "columns": [
                {"name": "id", "kind": "uuid"}, {"name": "email", "kind": "email"}]},
            "format": "csv",
            "notify": {"webhook_url": receiver.url},
        }))
        .await;
    assert_eq!(export["state"], "succeeded", "{export}");
    let export_bytes = export["result"]["file"]["size_bytes"]
        .as_u64()
        .expect("a size");

    // A multipart import: 3 good rows, 2 bad (a NOT NULL name, a bad date).
    let spec = json!({"target": {"table": "people"}});
    let import = served.import(&spec, PEOPLE).await;
    assert_eq!(import["state"], "succeeded", "{import}");
    assert_eq!(import["result"]["rows_inserted"], 3);
    assert_eq!(import["result"]["rows_rejected"], 2);

    // A direct upload through a signed PUT link (received by Ferry's local store).
    let direct = served
        .client
        .post(served.url("/v1/imports"))
        .json(&json!({"target": {"table": "people"}, "upload": "direct"}))
        .send()
        .await
        .expect("POST /v1/imports");
    assert_eq!(direct.status(), 201);
    let direct: serde_json::Value = direct.json().await.expect("a job");
    let link = direct["upload"]["url"].as_str().expect("a link");
    let put = served
        .client
        .put(link)
        .body(DIRECT)
        .send()
        .await
        .expect("PUT");
    assert!(put.status().is_success(), "{}", put.status());
    let id = direct["id"].as_str().expect("an id");
    let started = served
        .client
        .post(served.url(&format!("/v1/imports/{id}/start")))
        .send()
        .await
        .expect("start");
    assert_eq!(started.status(), 202);

    // A 404 on a route, a 404 on no route, a 422.
    let missing = served
        .client
        .get(served.url(&format!("/v1/exports/{}", uuid::Uuid::new_v4())))
        .send()
        .await
        .expect("GET");
    assert_eq!(missing.status(), 404);
    let nowhere = served
        .client
        .get(served.url("/no/such/path"))
        .send()
        .await
        .expect("GET");
    assert_eq!(nowhere.status(), 404);
    let invalid = served
        .client
        .post(served.url("/v1/exports"))
        .json(&json!({"source": {"type": "generate", "rows": 1, "columns": []}, "nope": 1}))
        .send()
        .await
        .expect("POST");
    assert_eq!(invalid.status(), 422);

    // Wait for the direct import and the webhook to finish and be recorded.
    let m = eventually(
        Duration::from_secs(30),
        "the direct import and the webhook to be counted",
        || async {
            let m = scrape(&served).await;
            let done = |kind: &str| {
                m.value(
                    "ferry_job_duration_seconds_count",
                    &[("kind", kind), ("outcome", "succeeded")],
                )
            };
            (done("import") == Some(2.0) && done("webhook") == Some(1.0)).then_some(m)
        },
    )
    .await;
    assert_eq!(receiver.calls.load(std::sync::atomic::Ordering::SeqCst), 1);

    for (name, kind) in [
        ("ferry_jobs", "gauge"),
        ("ferry_queue_depth", "gauge"),
        ("ferry_queue_oldest_age_seconds", "gauge"),
        ("ferry_job_duration_seconds", "histogram"),
        ("ferry_rows_total", "counter"),
        ("ferry_bytes_total", "counter"),
        ("ferry_upload_bytes_total", "counter"),
        ("ferry_webhook_deliveries_total", "counter"),
        ("ferry_http_requests_total", "counter"),
        ("ferry_http_request_duration_seconds", "histogram"),
    ] {
        assert_eq!(m.types.get(name).map(String::as_str), Some(kind), "{name}");
    }

    // Jobs and the queue, from the database.
    let jobs = |kind: &str, state: &str| m.value("ferry_jobs", &[("kind", kind), ("state", state)]);
    assert_eq!(jobs("export", "succeeded"), Some(1.0));
    assert_eq!(jobs("import", "succeeded"), Some(2.0));
    assert_eq!(jobs("webhook", "succeeded"), Some(1.0));
    assert_eq!(jobs("export", "failed"), Some(0.0));
    assert_eq!(jobs("email", "succeeded"), Some(0.0));
    assert_eq!(m.all("ferry_jobs").len(), 4 * 7);
    for kind in ["export", "import", "webhook", "email"] {
        assert_eq!(m.value("ferry_queue_depth", &[("kind", kind)]), Some(0.0));
        assert_eq!(
            m.value("ferry_queue_oldest_age_seconds", &[("kind", kind)]),
            Some(0.0)
        );
    }

    // What the jobs moved, and how long they took.
    assert_eq!(
        m.value("ferry_rows_total", &[("kind", "export")]),
        Some(1234.0)
    );
    assert_eq!(
        m.value("ferry_bytes_total", &[("kind", "export")]),
        Some(export_bytes as f64)
    );
    assert_eq!(
        m.value("ferry_rows_total", &[("kind", "import")]),
        Some(5.0)
    );
    assert_eq!(
        m.value("ferry_bytes_total", &[("kind", "import")]),
        Some((PEOPLE.len() + DIRECT.len()) as f64)
    );
    assert_eq!(
        m.value("ferry_upload_bytes_total", &[]),
        Some((PEOPLE.len() + DIRECT.len()) as f64)
    );
    let export_done = [("kind", "export"), ("outcome", "succeeded")];
    assert_eq!(
        m.value("ferry_job_duration_seconds_count", &export_done),
        Some(1.0)
    );
    let inf = [("kind", "export"), ("outcome", "succeeded"), ("le", "+Inf")];
    assert_eq!(
        m.value("ferry_job_duration_seconds_bucket", &inf),
        Some(1.0)
    );
    assert!(
        m.value("ferry_job_duration_seconds_sum", &export_done)
            .is_some_and(|s| s > 0.0)
    );
    assert_eq!(
        m.value(
            "ferry_webhook_deliveries_total",
            &[("outcome", "delivered")]
        ),
        Some(1.0)
    );

    // HTTP requests by route template, never by raw path.
    let requests = |method: &str, route: &str, status: &str| {
        m.value(
            "ferry_http_requests_total",
            &[("method", method), ("route", route), ("status", status)],
        )
    };
    assert_eq!(requests("POST", "/v1/exports", "202"), Some(1.0));
    assert_eq!(requests("POST", "/v1/exports", "422"), Some(1.0));
    assert_eq!(requests("GET", "/v1/exports/{id}", "404"), Some(1.0));
    assert_eq!(requests("GET", "unmatched", "404"), Some(1.0));
    assert_eq!(requests("POST", "/v1/imports", "202"), Some(1.0));
    assert_eq!(requests("POST", "/v1/imports", "201"), Some(1.0));
    assert_eq!(requests("PUT", "/files/{*key}", "200"), Some(1.0));
    assert_eq!(requests("POST", "/v1/imports/{id}/start", "202"), Some(1.0));
    assert_eq!(
        m.value(
            "ferry_http_request_duration_seconds_count",
            &[("method", "POST"), ("route", "/v1/exports")]
        ),
        Some(2.0)
    );
    for sample in m.all("ferry_http_requests_total") {
        let route = &sample.labels["route"];
        assert!(
            route == "unmatched" || route.starts_with('/') && !route.contains(id),
            "{route}"
        );
        assert!(
            !route.contains(export["id"].as_str().unwrap_or("?")),
            "{route}"
        );
    }
    drop(served.stop());
}
