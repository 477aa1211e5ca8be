//! What a new user meets first, on the real `ferry serve` binary in a fresh data directory with
//! no configuration beyond the test timings: the built-in `local` connection works before anyone
//! created its file, an event stream of a finished job ends and tells `EventSource` to stop, and
//! a generated export has a real `percent`.

use crate::exports::parse_sse;
use crate::process::Served;
use serde_json::json;
use std::time::Duration;

#[tokio::test]
async fn a_sql_export_on_the_local_connection_works_in_a_fresh_data_directory() {
    let served = Served::start(&[]).await;
    let job = served
        .export(&json!({"source": {"type": "sql", "connection": "local",
                                   "query": "SELECT 1 AS one, 'two' AS two"}}))
        .await;
    assert_eq!(job["state"], "succeeded", "{job}");
    let link = job["result"]["download_url"].as_str().unwrap();
    let file = served
        .client
        .get(link)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(file, "one,two\n1,two\n");
}

#[tokio::test]
async fn the_event_stream_of_a_finished_job_ends_and_a_reconnect_after_done_gets_204() {
    let served = Served::start(&[]).await;
    let job = served
        .export(&json!({"source": {"type": "generate", "rows": 10,
                                   "columns": [{"name": "n", "kind": "int"}]}}))
        .await;
    let path = format!("/v1/exports/{}/events", job["id"].as_str().unwrap());
    let events = |last: Option<u64>| {
        let mut request = served.client.get(served.url(&path));
        if let Some(last) = last {
            request = request.header("Last-Event-ID", last.to_string());
        }
        async move {
            let response = request.send().await.unwrap();
            let status = response.status().as_u16();
            let text = tokio::time::timeout(Duration::from_secs(5), response.text())
                .await
                .expect("the stream of a finished job ends at once")
                .unwrap();
            (status, parse_sse(&text))
        }
    };
    let (status, all) = events(None).await;
    assert_eq!(status, 200);
    let (done, name, _) = all.last().expect("events").clone();
    assert_eq!(name, "done");
    let (status, replay) = events(Some(done - 1)).await;
    assert_eq!(status, 200);
    let replayed: Vec<_> = replay
        .iter()
        .map(|(id, name, _)| (*id, name.as_str()))
        .collect();
    assert_eq!(replayed, [(done, "done")]);
    for after in [done, done + 5] {
        let (status, rest) = events(Some(after)).await;
        assert_eq!((status, rest.len()), (204, 0), "Last-Event-ID {after}");
    }
}

#[tokio::test]
async fn a_generated_export_reports_percent_from_its_row_count() {
    let served = Served::start(&[]).await;
    let created = served
        .create_export(&json!({"source": {"type": "generate", "rows": 300_000,
                                 "columns": [{"name": "id", "kind": "uuid"}, {"name": "e", "kind": "email"}]}}))
        .await;
    assert_eq!(created["progress"]["total_rows_estimate"], 300_000);
    assert_eq!(created["progress"]["percent"], 0.0);
    let path = format!("/v1/exports/{}/events", created["id"].as_str().unwrap());
    let text = tokio::time::timeout(
        Duration::from_secs(60),
        served
            .client
            .get(served.url(&path))
            .send()
            .await
            .unwrap()
            .text(),
    )
    .await
    .expect("the export ends")
    .unwrap();
    let events = parse_sse(&text);
    let (_, last, done) = events.last().unwrap();
    assert_eq!(last, "done");
    assert_eq!(done["progress"]["percent"], 100.0);
    let running: Vec<f64> = events
        .iter()
        .filter(|(_, name, _)| name == "progress")
        .map(|(_, _, job)| job["progress"]["percent"].as_f64().expect("a percent"))
        .collect();
    assert!(!running.is_empty(), "progress events were sent");
    assert!(
        running.windows(2).all(|w| w[0] <= w[1]) && running.iter().all(|p| *p < 100.0),
        "percent grows and stays below 100 until the end: {running:?}"
    );
}
