//! Imports end to end over HTTP: uploads, validation against the table's schema, the rejects
//! report, modes, limits.

use crate::helpers::{Shape, TestApp, spawn_app, spawn_with, test_settings};
use serde_json::{Value, json};

const EVENTS: &str = "CREATE TYPE status AS ENUM ('ok', 'error');
    CREATE TABLE webhook_events (id int PRIMARY KEY, status status NOT NULL, received_at timestamptz,
        email text NOT NULL, score numeric(5,2), payload jsonb, code varchar(5));";

fn events_spec() -> Value {
    json!({
        "target": {"connection": "main", "table": "webhook_events"},
        "columns": {"email": {"pattern": "^[^@]+@[^@]+$"}},
        "mapping": {"Received At": "received_at"},
        "max_errors": 100,
    })
}

async fn rejects(app: &TestApp, job: &Value) -> String {
    let id = job["id"].as_str().unwrap();
    let response = app.get(&format!("/v1/imports/{id}/rejects")).await;
    assert_eq!(response.status(), 200);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/csv")
    );
    response.text().await.unwrap()
}

#[tokio::test]
async fn a_multipart_upload_loads_valid_rows_and_the_fixed_rejects_load_once_more() {
    let app = spawn_app(Shape::Production).await;
    app.data_sql(EVENTS).await;
    let file = "id,status,Received At,email,score,payload,code\n\
                1,ok,2026-11-23T10:00:00Z,a@x.io,1.5,{\"a\":1},AB\n\
                2,maybe,2026-11-23T10:00:00Z,b@x.io,2,{},AB\n\
                3,error,not a time,c@x.io,3,{},AB\n\
                4,ok,,no-at-sign,4,{},AB\n\
                5,ok,,e@x.io,5,{},TOOLONG\n\
                6, error ,2026-11-23 11:00:00+01:00,f@x.io,,,\n";
    let job = app.import(&events_spec(), file).await;
    assert_eq!(job["state"], "succeeded", "{job}");
    assert_eq!(job["result"]["rows_inserted"], 2);
    assert_eq!(job["result"]["rows_rejected"], 4);
    assert_eq!(
        app.data_count("SELECT count(*) FROM webhook_events").await,
        2
    );
    let report = rejects(&app, &job).await;
    let mut lines = report.lines();
    assert_eq!(
        lines.next(),
        Some("id,status,Received At,email,score,payload,code,_line,_errors,_raw")
    );
    let rows: Vec<&str> = lines.collect();
    assert_eq!(rows.len(), 4, "{report}");
    assert!(
        rows[0].starts_with("2,maybe,") && rows[0].contains(",3,") && rows[0].contains("status:"),
        "{}",
        rows[0]
    );
    assert!(rows[1].contains("received_at:"), "{}", rows[1]);
    assert!(rows[2].contains("email:"), "{}", rows[2]);
    assert!(rows[3].contains("code:"), "{}", rows[3]);

    // Fix the rejected rows in the report itself and upload it again: _line, _errors and _raw
    // are ignored.
    let fixed = report
        .replace("2,maybe,", "2,ok,")
        .replace("not a time", "2026-11-23T12:00:00Z")
        .replace("no-at-sign", "d@x.io")
        .replace("TOOLONG", "SHORT");
    let again = app.import(&events_spec(), fixed).await;
    assert_eq!(again["state"], "succeeded", "{again}");
    assert_eq!(again["result"]["rows_inserted"], 4);
    assert_eq!(again["result"]["rows_rejected"], 0);
    assert_eq!(
        app.data_count("SELECT count(*) FROM webhook_events").await,
        6
    );
    assert_eq!(
        app.data_count("SELECT count(DISTINCT id) FROM webhook_events")
            .await,
        6,
        "every row loaded once"
    );
    assert_eq!(
        app.get(&format!(
            "/v1/imports/{}/rejects",
            again["id"].as_str().unwrap()
        ))
        .await
        .status(),
        404
    );
    app.stop().await;
}

#[tokio::test]
async fn a_raw_gzip_body_with_query_parameters_loads_and_normalises_values() {
    let app = spawn_app(Shape::Embedded).await;
    app.data_sql("CREATE TABLE t (id bigint, ok boolean, day date, at timestamptz)")
        .await;
    let csv = "id,ok,day,at\n1,yes,2026-02-28,2026-11-23T10:00:00+02:00\n2,0,2024-02-29,2026-11-23T10:00:00Z\n";
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    std::io::Write::write_all(&mut gz, csv.as_bytes()).unwrap();
    let response = app
        .client
        .post(app.url("/v1/imports?table=t&mode=append"))
        .header("content-type", "text/csv")
        .header("content-encoding", "gzip")
        .body(gz.finish().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 202);
    let job: Value = response.json().await.unwrap();
    assert_eq!(job["state"], "queued");
    assert!(job["progress"]["total_bytes"].as_u64().unwrap() > 0);
    let done = app
        .wait_final_at(&format!("/v1/imports/{}", job["id"].as_str().unwrap()))
        .await;
    assert_eq!(done["state"], "succeeded", "{done}");
    assert_eq!(done["progress"]["percent"], 100.0);
    assert_eq!(
        app.data_count("SELECT count(*) FROM t WHERE ok AND at = '2026-11-23T08:00:00Z'")
            .await,
        1
    );
    assert_eq!(
        app.data_count("SELECT count(*) FROM t WHERE NOT ok AND day = '2024-02-29'")
            .await,
        1
    );
}

#[tokio::test]
async fn the_spec_is_checked_before_a_byte_is_stored() {
    let app = spawn_app(Shape::Embedded).await;
    app.data_sql(EVENTS).await;
    let cases = [
        (
            json!({"target": {"connection": "nope", "table": "webhook_events"}}),
            "target.connection",
        ),
        (
            json!({"target": {"connection": "main", "table": "missing"}}),
            "target.table",
        ),
        (
            json!({"target": {"connection": "main", "table": "webhook_events"}, "columns": {"colour": {"required": true}}}),
            "columns.colour",
        ),
        (
            json!({"target": {"connection": "main", "table": "webhook_events"}, "columns": {"email": {"pattern": "(unclosed"}}}),
            "columns.email.pattern",
        ),
        (
            json!({"target": {"connection": "main", "table": "webhook_events"}, "mode": "upsert"}),
            "key",
        ),
        (
            json!({"target": {"connection": "main", "table": "webhook_events"}, "mode": "upsert", "key": ["nope"]}),
            "key",
        ),
        (
            json!({"target": {"connection": "main", "table": "webhook_events"}, "mapping": {"X": "nope"}}),
            "mapping.X",
        ),
        (
            json!({"target": {"connection": "main", "table": "webhook_events"}, "callback_url": "ftp://example.com"}),
            "callback_url",
        ),
    ];
    for (spec, field) in cases {
        let response = app.import_multipart(&spec, b"id\n1\n".to_vec()).await;
        assert_eq!(response.status(), 422, "{spec}");
        assert_eq!(
            response.headers()["content-type"],
            "application/problem+json"
        );
        let problem: Value = response.json().await.unwrap();
        let fields: Vec<&str> = problem["errors"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|e| e["field"].as_str())
            .collect();
        assert!(
            fields.iter().any(|f| f.starts_with(field)),
            "{spec} → {problem}"
        );
    }
    let bad_mode = app
        .client
        .post(app.url("/v1/imports?table=webhook_events&mode=merge"))
        .body("id\n")
        .send()
        .await
        .unwrap();
    assert_eq!(bad_mode.status(), 422);
    // Query parameters belong to raw-body uploads: with a spec in the body they are refused,
    // never silently ignored (found by schemathesis).
    let spec =
        json!({"target": {"connection": "main", "table": "webhook_events"}, "upload": "direct"});
    let mixed = app
        .client
        .post(app.url("/v1/imports?max_errors=5"))
        .json(&spec)
        .send()
        .await
        .unwrap();
    assert_eq!(mixed.status(), 422);
    let problem: Value = mixed.json().await.unwrap();
    assert_eq!(problem["errors"][0]["field"], "query", "{problem}");
    assert!(
        !app.settings.data_dir.join("files/imports").exists(),
        "nothing may be stored"
    );
    let list: Value = app.get("/v1/imports").await.json().await.unwrap();
    assert!(list["items"].as_array().unwrap().is_empty());
}

#[tokio::test]
async fn an_upload_over_max_upload_is_413_and_leaves_nothing_behind() {
    let (mut settings, data_url, prefix) = test_settings(Shape::Production).await;
    settings.limits.max_upload = bytesize::ByteSize::kib(64);
    let app = spawn_with(settings, data_url, prefix).await;
    app.data_sql("CREATE TABLE t (a text)").await;
    let big = format!("a\n{}", "x\n".repeat(100_000));
    let response = app
        .client
        .post(app.url("/v1/imports?table=t"))
        .body(big)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 413);
    assert_eq!(
        response.headers()["content-type"],
        "application/problem+json"
    );
    let prefix = app.s3_prefix.clone().unwrap();
    assert!(crate::helpers::objects(&prefix).is_empty(), "no object");
    assert!(
        crate::helpers::incomplete_uploads(&prefix).is_empty(),
        "no multipart upload"
    );
    let list: Value = app.get("/v1/imports").await.json().await.unwrap();
    assert!(list["items"].as_array().unwrap().is_empty(), "no job");
    app.stop().await;
}

#[tokio::test]
async fn more_rejects_than_max_errors_fail_the_import_with_nothing_loaded() {
    let app = spawn_app(Shape::Embedded).await;
    app.data_sql("CREATE TABLE t (n int)").await;
    let spec = json!({"target": {"table": "t"}, "max_errors": 2});
    let job = app.import(&spec, "n\n1\nx\n2\ny\nz\n3\n").await;
    assert_eq!(job["state"], "failed");
    assert_eq!(job["error"]["code"], "too_many_errors");
    assert_eq!(job["attempt"], 1, "a permanent failure is not retried");
    assert_eq!(app.data_count("SELECT count(*) FROM t").await, 0);
    let retried = app
        .client
        .post(app.url(&format!(
            "/v1/imports/{}/retry",
            job["id"].as_str().unwrap()
        )))
        .send()
        .await
        .unwrap();
    assert_eq!(
        retried.status(),
        202,
        "the upload is kept after a failure, so retry needs no re-upload"
    );
}

#[tokio::test]
async fn replace_swaps_the_rows_and_upsert_merges_on_the_key() {
    let app = spawn_app(Shape::Embedded).await;
    app.data_sql(
        "CREATE TABLE t (id int PRIMARY KEY, v text); INSERT INTO t VALUES (1, 'old'), (2, 'old');",
    )
    .await;
    let upsert = json!({"target": {"table": "t"}, "mode": "upsert", "key": ["id"]});
    assert_eq!(
        app.import(&upsert, "id,v\n2,new\n3,new\n").await["state"],
        "succeeded"
    );
    assert_eq!(app.data_count("SELECT count(*) FROM t").await, 3);
    assert_eq!(
        app.data_count("SELECT count(*) FROM t WHERE v = 'new'")
            .await,
        2
    );
    let replace = json!({"target": {"table": "t"}, "mode": "replace"});
    assert_eq!(
        app.import(&replace, "id,v\n9,only\n").await["state"],
        "succeeded"
    );
    assert_eq!(app.data_count("SELECT count(*) FROM t").await, 1);
    assert_eq!(app.data_count("SELECT id::bigint FROM t").await, 9);
}

#[tokio::test]
async fn the_embedded_sqlite_connection_loads_with_the_same_rules() {
    let (mut settings, data_url, prefix) = test_settings(Shape::Embedded).await;
    settings.connections.clear();
    let app = spawn_with(settings, data_url, prefix).await;
    let local = app.settings.local_connection();
    let mut conn = <sqlx::SqliteConnection as sqlx::Connection>::connect(local.url.expose())
        .await
        .unwrap();
    sqlx::raw_sql(
        "CREATE TABLE people (id INTEGER PRIMARY KEY, name TEXT NOT NULL, born DATE, tall BOOLEAN)",
    )
    .execute(&mut conn)
    .await
    .unwrap();
    let spec = json!({"target": {"table": "people"}});
    let job = app
        .import(
            &spec,
            "id,name,born,tall\n1,Ann,1990-01-31,yes\n2,,1990-02-01,no\n3,Bo,1990-02-31,no\n",
        )
        .await;
    assert_eq!(job["state"], "succeeded", "{job}");
    assert_eq!(
        (
            job["result"]["rows_inserted"].as_u64(),
            job["result"]["rows_rejected"].as_u64()
        ),
        (Some(1), Some(2))
    );
    let tall: i64 = sqlx::query_scalar("SELECT tall FROM people WHERE id = 1")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(tall, 1);
}

#[tokio::test]
async fn a_direct_upload_goes_through_a_signed_put_link_then_start() {
    for shape in [Shape::Embedded, Shape::Production] {
        let app = spawn_app(shape).await;
        app.data_sql("CREATE TABLE t (id int, v text)").await;
        let spec = json!({"target": {"table": "t"}, "upload": "direct"});
        let response = app.post_json("/v1/imports", &spec).await;
        assert_eq!(response.status(), 201, "{shape:?}");
        let job: Value = response.json().await.unwrap();
        assert_eq!(job["state"], "awaiting_upload");
        let id = job["id"].as_str().unwrap().to_owned();
        let url = job["upload"]["url"].as_str().unwrap().to_owned();
        assert_eq!(job["upload"]["method"], "PUT");
        let early = app
            .client
            .post(app.url(&format!("/v1/imports/{id}/start")))
            .send()
            .await
            .unwrap();
        assert_eq!(early.status(), 409, "{shape:?}: nothing uploaded yet");
        if shape == Shape::Embedded {
            let tampered = url.replace("sig=", "sig=0");
            let refused = app
                .client
                .put(&tampered)
                .body("id,v\n1,x\n")
                .send()
                .await
                .unwrap();
            assert_eq!(refused.status(), 403);
        }
        let put = app
            .client
            .put(&url)
            .body("id,v\n1,x\n2,y\n")
            .send()
            .await
            .unwrap();
        assert!(put.status().is_success(), "{shape:?}: {}", put.status());
        let started = app
            .client
            .post(app.url(&format!("/v1/imports/{id}/start")))
            .send()
            .await
            .unwrap();
        assert_eq!(started.status(), 202);
        let done = app.wait_final_at(&format!("/v1/imports/{id}")).await;
        assert_eq!(done["state"], "succeeded", "{shape:?}: {done}");
        assert_eq!(app.data_count("SELECT count(*) FROM t").await, 2);
        app.stop().await;
    }
}

#[tokio::test]
async fn rows_the_database_refuses_are_rejects_in_the_report_and_the_others_load() {
    let app = spawn_app(Shape::Embedded).await;
    app.data_sql(
        "CREATE TABLE people (id int PRIMARY KEY, age int CHECK (age >= 0), name text);
         INSERT INTO people VALUES (42, 30, 'there before');",
    )
    .await;
    let spec = json!({"target": {"table": "people"}});
    let job = app
        .import(
            &spec,
            "id,age,name\n1,20,a\n42,20,b\n2,-1,c\n1,25,d\n3,40,e\n",
        )
        .await;
    assert_eq!(job["state"], "succeeded", "{job}");
    assert_eq!(job["result"]["rows_inserted"], 2);
    assert_eq!(job["result"]["rows_rejected"], 3);
    assert_eq!(job["progress"]["rows_rejected"], 3);
    let report = rejects(&app, &job).await;
    assert_eq!(
        report.lines().collect::<Vec<_>>(),
        [
            "id,age,name,_line,_errors,_raw",
            "42,20,b,3,constraint people_pkey: Key (id)=(42) already exists,",
            "2,-1,c,4,\"constraint people_age_check: new row for relation \"\"people\"\" violates check constraint \"\"people_age_check\"\"\",",
            "1,25,d,5,constraint people_pkey: Key (id)=(1) already exists (line 2),",
        ]
    );
    assert_eq!(
        app.data_count("SELECT count(*) FROM people WHERE id IN (1, 3, 42)")
            .await,
        3
    );
}
