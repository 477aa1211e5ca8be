//! `/v1/templates`, `/v1/connections`, `/v1/connections/{name}/tables`: what they list, on
//! PostgreSQL and SQLite, and that a caller sees (and may use) only the connections its scopes
//! allow.

use crate::helpers::{Shape, TestApp, spawn_with, test_settings};
use ferry::config::{ApiKey, AuthMode, ConnectionSettings, Secret, TemplateParam};
use serde_json::{Value, json};
use std::time::Duration;

fn key(key: &str, subject: &str, scopes: &[&str]) -> ApiKey {
    ApiKey {
        key: Secret::new(key),
        tenant: "acme".into(),
        subject: subject.into(),
        scopes: scopes.iter().map(|s| s.to_string()).collect(),
    }
}

/// An app with `main` (PostgreSQL, every caller), `finance` (SQLite, scope `finance` only), a
/// template on each, and keys for a plain user, a finance user and an admin.
async fn app_with_scoped_connections() -> TestApp {
    let (mut settings, data_url, prefix) = test_settings(Shape::Embedded).await;
    settings.auth.mode = AuthMode::ApiKeys;
    settings.auth.api_keys = vec![
        key("plain-key", "user-1", &[]),
        key("finance-key", "user-2", &["finance"]),
        key("admin-key", "boss", &["admin"]),
    ];
    let finance_db = settings.data_dir.join("finance.db");
    std::fs::create_dir_all(&settings.data_dir).unwrap();
    settings.connections.insert(
        "finance".into(),
        ConnectionSettings {
            url: Secret::new(format!("sqlite://{}?mode=rwc", finance_db.display())),
            allow_sql: true,
            statement_timeout: Duration::from_secs(30),
            max_connections: 2,
            scopes: vec!["finance".into()],
        },
    );
    settings.templates.insert(
        "people_named".into(),
        template(
            "main",
            "SELECT * FROM people WHERE name = $1",
            vec![param("name", "text")],
        ),
    );
    settings.templates.insert(
        "invoices_since".into(),
        template(
            "finance",
            "SELECT * FROM invoices WHERE day >= $1 AND total > $2",
            vec![param("day", "date"), param("min", "numeric")],
        ),
    );
    let app = spawn_with(settings, data_url, prefix).await;
    app.data_sql(
        "CREATE TABLE people (id bigint PRIMARY KEY, name text NOT NULL, born date);
         CREATE SCHEMA crm; CREATE TABLE crm.leads (email varchar(200), score numeric(5,2));
         CREATE VIEW people_view AS SELECT * FROM people;",
    )
    .await;
    sqlite(
        &finance_db,
        "CREATE TABLE invoices (id INTEGER PRIMARY KEY, day TEXT NOT NULL, total REAL)",
    )
    .await;
    app
}

fn param(name: &str, kind: &str) -> TemplateParam {
    serde_json::from_value(json!({"name": name, "type": kind})).unwrap()
}

fn template(
    connection: &str,
    query: &str,
    params: Vec<TemplateParam>,
) -> ferry::config::TemplateSettings {
    ferry::config::TemplateSettings {
        connection: connection.into(),
        query: query.into(),
        params,
    }
}

async fn sqlite(path: &std::path::Path, sql: &str) {
    let url = format!("sqlite://{}?mode=rwc", path.display());
    let mut conn = <sqlx::SqliteConnection as sqlx::Connection>::connect(&url)
        .await
        .unwrap();
    sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_owned()))
        .execute(&mut conn)
        .await
        .unwrap();
}

async fn get(app: &TestApp, token: &str, path: &str) -> (u16, Value) {
    let response = app
        .client
        .get(app.url(path))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

fn names(list: &Value) -> Vec<&str> {
    list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|item| item["name"].as_str().unwrap())
        .collect()
}

#[tokio::test]
async fn each_caller_sees_only_the_connections_and_templates_its_scopes_allow() {
    let app = app_with_scoped_connections().await;
    let (status, plain) = get(&app, "plain-key", "/v1/connections").await;
    assert_eq!(status, 200);
    assert_eq!(
        plain,
        json!({"items": [
            {"name": "local", "kind": "sqlite", "allow_sql": true},
            {"name": "main", "kind": "postgres", "allow_sql": true},
        ]})
    );
    let (_, finance) = get(&app, "finance-key", "/v1/connections").await;
    assert_eq!(names(&finance), ["finance", "local", "main"]);
    let (_, admin) = get(&app, "admin-key", "/v1/connections").await;
    assert_eq!(names(&admin), ["finance", "local", "main"]);

    let (status, templates) = get(&app, "plain-key", "/v1/templates").await;
    assert_eq!(status, 200);
    assert_eq!(
        templates,
        json!({"items": [{"name": "people_named", "connection": "main",
                          "params": [{"name": "name", "type": "text"}]}]})
    );
    let (_, templates) = get(&app, "finance-key", "/v1/templates").await;
    assert_eq!(
        templates["items"][0],
        json!({"name": "invoices_since", "connection": "finance",
               "params": [{"name": "day", "type": "date"}, {"name": "min", "type": "numeric"}]})
    );
    assert_eq!(names(&templates), ["invoices_since", "people_named"]);
    assert_eq!(get(&app, "", "/v1/connections").await.0, 401);
    assert_eq!(get(&app, "forged", "/v1/templates").await.0, 401);
}

#[tokio::test]
async fn tables_list_import_targets_with_their_columns_on_postgres_and_sqlite() {
    let app = app_with_scoped_connections().await;
    let (status, tables) = get(&app, "plain-key", "/v1/connections/main/tables").await;
    assert_eq!(status, 200, "{tables}");
    assert_eq!(
        tables,
        json!({"items": [
            {"schema": "crm", "name": "leads", "columns": [
                {"name": "email", "type": "character varying(200)", "nullable": true},
                {"name": "score", "type": "numeric(5,2)", "nullable": true}]},
            {"schema": "public", "name": "people", "columns": [
                {"name": "id", "type": "bigint", "nullable": false},
                {"name": "name", "type": "text", "nullable": false},
                {"name": "born", "type": "date", "nullable": true}]},
        ]}),
        "views are not import targets"
    );
    let (status, tables) = get(&app, "finance-key", "/v1/connections/finance/tables").await;
    assert_eq!(status, 200, "{tables}");
    assert_eq!(
        tables,
        json!({"items": [{"schema": null, "name": "invoices", "columns": [
            {"name": "id", "type": "INTEGER", "nullable": false},
            {"name": "day", "type": "TEXT", "nullable": false},
            {"name": "total", "type": "REAL", "nullable": true}]}]})
    );
    let (status, local) = get(&app, "plain-key", "/v1/connections/local/tables").await;
    assert_eq!((status, local), (200, json!({"items": []})));
}

#[tokio::test]
async fn a_connection_outside_the_callers_scopes_is_answered_like_one_that_does_not_exist() {
    let app = app_with_scoped_connections().await;
    let hidden = get(&app, "plain-key", "/v1/connections/finance/tables").await;
    let missing = get(&app, "plain-key", "/v1/connections/nowhere/tables").await;
    assert_eq!(hidden.0, 404);
    assert_eq!(hidden, missing);
    assert_eq!(
        get(&app, "admin-key", "/v1/connections/finance/tables")
            .await
            .0,
        200
    );

    // The same rule holds where the connection is used: exports (SQL and templates) and imports.
    let post = |token: &'static str, path: &'static str, body: Value| {
        let request = app
            .client
            .post(app.url(path))
            .bearer_auth(token)
            .json(&body);
        async move {
            let response = request.send().await.unwrap();
            let status = response.status().as_u16();
            (status, response.json::<Value>().await.unwrap())
        }
    };
    let sql = |connection: &str| json!({"source": {"type": "sql", "connection": connection, "query": "SELECT 1"}});
    let (status, hidden) = post("plain-key", "/v1/exports", sql("finance")).await;
    assert_eq!(status, 422);
    assert_eq!(hidden["errors"][0]["field"], "source.connection");
    let (_, missing) = post("plain-key", "/v1/exports", sql("nowhere")).await;
    assert_eq!(
        hidden["errors"][0]["message"]
            .as_str()
            .unwrap()
            .replace("finance", "X"),
        missing["errors"][0]["message"]
            .as_str()
            .unwrap()
            .replace("nowhere", "X")
    );
    let template = json!({"source": {"type": "template", "template": "invoices_since",
                                     "params": {"day": "2026-01-01", "min": 10}}});
    let (status, refused) = post("plain-key", "/v1/exports", template.clone()).await;
    assert_eq!(status, 422);
    assert_eq!(refused["errors"][0]["field"], "source.template");
    assert_eq!(
        refused["errors"][0]["message"],
        "unknown template \"invoices_since\""
    );
    let (status, job) = post("finance-key", "/v1/exports", template).await;
    assert_eq!(status, 202, "{job}");
    let import =
        json!({"target": {"connection": "finance", "table": "invoices"}, "upload": "direct"});
    let (status, refused) = post("plain-key", "/v1/imports", import.clone()).await;
    assert_eq!(status, 422);
    assert_eq!(refused["errors"][0]["field"], "target.connection");
    let (status, job) = post("finance-key", "/v1/imports", import).await;
    assert_eq!(status, 201, "{job}");
}

#[tokio::test]
async fn listing_the_tables_of_an_unreachable_database_is_unavailable_and_names_no_secret() {
    let (mut settings, data_url, prefix) = test_settings(Shape::Embedded).await;
    settings.connections.insert(
        "down".into(),
        ConnectionSettings {
            url: Secret::new("postgres://ferry:hunter2@127.0.0.1:1/nothing".to_owned()),
            allow_sql: false,
            statement_timeout: Duration::from_secs(30),
            max_connections: 1,
            scopes: Vec::new(),
        },
    );
    let app = spawn_with(settings, data_url, prefix).await;
    let response = app.get("/v1/connections/down/tables").await;
    assert_eq!(response.status(), 503);
    let body = response.text().await.unwrap();
    assert!(!body.contains("hunter2"), "{body}");
    let (_, connections) = get(&app, "", "/v1/connections").await;
    assert_eq!(
        connections["items"][0],
        json!({"name": "down", "kind": "postgres", "allow_sql": false})
    );
}
