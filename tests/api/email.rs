//! E-mail notifications against a real SMTP server: aiosmtpd (PyPI) runs as a process on a free
//! loopback port and writes what it receives into a Maildir, which Python's own `email` package
//! reads back (headers decoded, plain-text and HTML parts taken apart), so the messages are
//! checked by another implementation than the one that wrote them. `scripts/test` installs
//! aiosmtpd.

use crate::helpers::{Shape, TestApp, eventually, spawn_with, test_settings};
use ferry::config::EmailSettings;
use ferry::domain::{Job, JobKind, JobState};
use ferry::queue::{ListQuery, Signals, Store};
use serde_json::{Value, json};
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

/// The aiosmtpd release the tests run (what `scripts/test` installs).
const AIOSMTPD: &str = "aiosmtpd==1.4.6";
/// The sender the test apps use.
const FROM: &str = "Ferry exports <exports@ferry.test>";
/// The address the test jobs name.
const TO: &str = "ada@example.com";
/// `email.link_ttl` of the test apps: two hours, unlike `storage.link_ttl` (one hour).
const LINK_TTL: Duration = Duration::from_secs(2 * 3600);

/// The Python interpreter that has aiosmtpd installed.
fn python() -> String {
    std::env::var("FERRY_TEST_PYTHON").unwrap_or_else(|_| "python3".to_owned())
}

/// One message as Python's `email` package reads it.
#[derive(Debug, Clone)]
struct Mail {
    subject: String,
    from: String,
    to: String,
    message_id: String,
    text: String,
    html: String,
    raw: String,
}

/// An SMTP server on a loopback port chosen up front; started when the test says so, stopped
/// when dropped.
struct Smtp {
    port: u16,
    maildir: PathBuf,
    server: Option<tokio::process::Child>,
}

impl Smtp {
    /// A free port and an empty Maildir, with no server yet.
    fn reserve() -> Self {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
        let port = listener.local_addr().expect("its address").port();
        drop(listener);
        let maildir = std::env::temp_dir().join(format!("ferry-mail-{}", uuid::Uuid::new_v4()));
        Self {
            port,
            maildir,
            server: None,
        }
    }

    /// A server, running.
    async fn start() -> Self {
        let mut smtp = Self::reserve();
        smtp.run().await;
        smtp
    }

    /// Starts aiosmtpd on the reserved port and waits until it accepts connections.
    async fn run(&mut self) {
        self.run_with(&[]).await;
    }

    /// The same, with extra aiosmtpd options (TLS).
    async fn run_with(&mut self, options: &[&std::ffi::OsStr]) {
        let python = python();
        let listen = format!("127.0.0.1:{}", self.port);
        let server = tokio::process::Command::new(&python)
            .args(["-m", "aiosmtpd", "-n", "-l", &listen])
            .args(options)
            .args(["-c", "aiosmtpd.handlers.Mailbox"])
            .arg(&self.maildir)
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {python} ({e}); install Python 3 and `{python} -m pip install {AIOSMTPD}` (scripts/test does), or set FERRY_TEST_PYTHON"));
        self.server = Some(server);
        let port = self.port;
        eventually(
            Duration::from_secs(15),
            "aiosmtpd to listen (is it installed? scripts/test installs it)",
            || async move {
                tokio::net::TcpStream::connect(("127.0.0.1", port))
                    .await
                    .ok()
                    .map(drop)
            },
        )
        .await;
    }

    fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}", self.port)
    }

    /// Every message received so far, oldest first.
    async fn messages(&self) -> Vec<Mail> {
        const SCRIPT: &str = r#"
import email, json, os, sys
from email import policy
out = []
for sub in ("new", "cur"):
    folder = os.path.join(sys.argv[1], sub)
    if not os.path.isdir(folder):
        continue
    for name in os.listdir(folder):
        path = os.path.join(folder, name)
        with open(path, "rb") as f:
            raw = f.read()
        msg = email.message_from_bytes(raw, policy=policy.default)
        out.append({
            "at": os.path.getmtime(path),
            "subject": str(msg["subject"]), "from": str(msg["from"]), "to": str(msg["to"]),
            "message_id": str(msg["message-id"]),
            "text": msg.get_body(("plain",)).get_content(),
            "html": msg.get_body(("html",)).get_content(),
            "raw": raw.decode("utf-8", "replace"),
        })
out.sort(key=lambda m: m["at"])
print(json.dumps(out))
"#;
        let output = tokio::process::Command::new(python())
            .args(["-c", SCRIPT])
            .arg(&self.maildir)
            .output()
            .await
            .expect("python reads the Maildir");
        assert!(
            output.status.success(),
            "reading the Maildir failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let found: Vec<Value> = serde_json::from_slice(&output.stdout).expect("JSON from python");
        let text = |m: &Value, k: &str| m[k].as_str().unwrap_or_default().to_owned();
        found
            .iter()
            .map(|m| Mail {
                subject: text(m, "subject"),
                from: text(m, "from"),
                to: text(m, "to"),
                message_id: text(m, "message_id"),
                text: text(m, "text"),
                html: text(m, "html"),
                raw: text(m, "raw"),
            })
            .collect()
    }

    /// Waits for the `n`th message and returns all of them.
    async fn wait_for(&self, n: usize) -> Vec<Mail> {
        eventually(Duration::from_secs(30), "the message to arrive", || async {
            let messages = self.messages().await;
            (messages.len() >= n).then_some(messages)
        })
        .await
    }
}

impl Drop for Smtp {
    fn drop(&mut self) {
        if let Some(server) = &mut self.server {
            let _ = server.start_kill();
        }
        let _ = std::fs::remove_dir_all(&self.maildir);
    }
}

/// An app of `shape` that mails through `smtp_url`.
async fn app_with_email(shape: Shape, smtp_url: &str) -> TestApp {
    let (mut settings, data_url, prefix) = test_settings(shape).await;
    settings.email = Some(EmailSettings {
        link_ttl: LINK_TTL,
        timeout: Duration::from_secs(5),
        ..EmailSettings::new(smtp_url, FROM)
    });
    spawn_with(settings, data_url, prefix).await
}

/// The one `https?://` line of a plain-text body.
fn link_in(text: &str) -> String {
    let links: Vec<&str> = text
        .lines()
        .filter(|line| line.starts_with("http://") || line.starts_with("https://"))
        .collect();
    assert_eq!(links.len(), 1, "one link in {text}");
    links[0].to_owned()
}

/// The unix time a signed link expires at: a Ferry-signed link's `expires`, or an S3 link's
/// `X-Amz-Date` plus `X-Amz-Expires`.
fn expiry_of(link: &str) -> i64 {
    let url = url::Url::parse(link).expect("a URL");
    let param = |name: &str| {
        url.query_pairs()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
    };
    if let Some(expires) = param("expires") {
        return expires.parse().expect("a unix time");
    }
    let signed = param("X-Amz-Date").expect("a Ferry-signed or S3 pre-signed link");
    let format = time::macros::format_description!("[year][month][day]T[hour][minute][second]Z");
    let signed = time::PrimitiveDateTime::parse(&signed, format).expect("an S3 date");
    let life: i64 = param("X-Amz-Expires")
        .expect("X-Amz-Expires")
        .parse()
        .expect("seconds");
    signed.assume_utc().unix_timestamp() + life
}

fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

async fn check_ready_export_message(shape: Shape) {
    let smtp = Smtp::start().await;
    let app = app_with_email(shape, &smtp.url()).await;
    let name = "Q4 <users> & \"friends\"";
    let job = app
        .create_export(json!({
            "name": name,
            "source": {"type": "generate", "rows": 25, "seed": 7,
                       "columns": [{"name": "id", "kind": "int"}, {"name": "city", "kind": "city"}]},
            "format": "csv",
            "notify": {"email": TO},
        }))
        .await;
    let id = job["id"].as_str().unwrap().to_owned();
    assert_eq!(
        job["spec"]["notify"]["email"], TO,
        "the spec echoes the address"
    );
    let done = app.wait_final(&id).await;
    assert_eq!(done["state"], "succeeded", "{done}");
    let mail = smtp.wait_for(1).await.remove(0);

    assert_eq!(mail.subject, format!("Your export “{name}” is ready"));
    assert_eq!(mail.to, TO);
    assert_eq!(mail.from, FROM);
    assert!(
        mail.message_id.ends_with("@ferry.test>"),
        "{}",
        mail.message_id
    );
    assert!(mail.text.contains("Rows: 25\n"), "{}", mail.text);
    let size = done["result"]["file"]["size_bytes"].as_u64().unwrap();
    assert!(
        mail.text.contains(&format!("({size} bytes)")),
        "{}",
        mail.text
    );

    let link = link_in(&mail.text);
    let expires = expiry_of(&link);
    let ttl = LINK_TTL.as_secs() as i64;
    assert!(
        (now() + ttl - 120..=now() + ttl).contains(&expires),
        "the link lives email.link_ttl, not storage.link_ttl: {link}"
    );
    let (_, file) = app.download(&id).await;
    let fetched = reqwest::get(&link).await.expect("fetch the mailed link");
    assert_eq!(fetched.status(), 200, "{link}");
    assert_eq!(
        fetched.bytes().await.unwrap(),
        file,
        "the mailed link is the file"
    );

    let escaped_name = "Q4 &lt;users&gt; &amp; &quot;friends&quot;";
    assert!(mail.html.contains(escaped_name), "{}", mail.html);
    assert!(!mail.html.contains("<users>"), "{}", mail.html);
    let href = format!("<a href=\"{}\">", link.replace('&', "&amp;"));
    assert!(mail.html.contains(&href), "{}", mail.html);
    assert!(mail.raw.contains("multipart/alternative"), "{}", mail.raw);
}

#[tokio::test]
async fn a_ready_export_is_mailed_with_its_rows_size_and_a_ferry_signed_link_to_the_file() {
    check_ready_export_message(Shape::Embedded).await;
}

#[tokio::test]
async fn a_ready_export_on_s3_is_mailed_with_a_pre_signed_link_of_the_email_link_ttl() {
    check_ready_export_message(Shape::Production).await;
}

#[tokio::test]
async fn a_failed_export_is_mailed_with_its_error() {
    let smtp = Smtp::start().await;
    let app = app_with_email(Shape::Embedded, &smtp.url()).await;
    app.data_sql("CREATE TABLE keep (id int); INSERT INTO keep VALUES (1);")
        .await;
    let job = app
        .create_export(json!({
            "name": "Deleting export",
            "source": {"type": "sql", "connection": "main", "query": "DELETE FROM keep RETURNING id"},
            "notify": {"email": TO},
        }))
        .await;
    let done = app.wait_final(job["id"].as_str().unwrap()).await;
    assert_eq!(done["state"], "failed", "{done}");
    let mail = smtp.wait_for(1).await.remove(0);
    assert_eq!(mail.subject, "Your export “Deleting export” failed");
    let message = done["error"]["message"].as_str().unwrap();
    assert!(message.contains("read-only"), "{message}");
    assert!(
        mail.text.contains(&format!("Error: {message}\n")),
        "{}",
        mail.text
    );
    assert!(mail.text.contains("Code: read_only\n"), "{}", mail.text);
    assert!(
        !mail.text.contains("http"),
        "no link for a failed job: {}",
        mail.text
    );
}

#[tokio::test]
async fn an_import_is_mailed_with_its_counts_and_a_signed_link_to_its_rejects() {
    let smtp = Smtp::start().await;
    let app = app_with_email(Shape::Production, &smtp.url()).await;
    app.data_sql("CREATE TABLE people (id int PRIMARY KEY, name text NOT NULL);")
        .await;
    let spec = json!({
        "target": {"connection": "main", "table": "people"},
        "name": "People <import>",
        "notify_email": TO,
    });
    let file = "id,name\n1,Ada\n2,\n3,Grace\nx,Alan\n";
    let job = app.import(&spec, file).await;
    assert_eq!(job["state"], "succeeded", "{job}");
    let mail = smtp.wait_for(1).await.remove(0);
    assert_eq!(mail.subject, "Your import “People <import>” has finished");
    assert!(
        mail.text.contains("Rows inserted: 2\nRows rejected: 2\n"),
        "{}",
        mail.text
    );
    assert!(mail.html.contains("People &lt;import&gt;"), "{}", mail.html);
    let link = link_in(&mail.text);
    // Fetched without a token: the link itself is the permission.
    let report = reqwest::get(&link).await.expect("fetch the rejects link");
    assert_eq!(report.status(), 200, "{link}");
    let report = report.text().await.unwrap();
    assert!(report.starts_with("id,name,_line,_errors"), "{report}");
    assert_eq!(
        report.lines().count(),
        3,
        "a header and two rejected rows: {report}"
    );

    let clean = app.import(&spec, "id,name\n10,Edsger\n").await;
    assert_eq!(clean["result"]["rows_rejected"], 0, "{clean}");
    let mail = smtp.wait_for(2).await.remove(1);
    assert!(
        mail.text.contains("Rows inserted: 1\nRows rejected: 0\n"),
        "{}",
        mail.text
    );
    assert!(
        !mail.text.contains("http"),
        "no rejects, no link: {}",
        mail.text
    );
}

/// The `email` jobs of the default tenant, newest first.
async fn email_jobs(store: &Store) -> Vec<Job> {
    let query = ListQuery {
        tenant: "default".into(),
        kind: JobKind::Email,
        visible_to: None,
        state: None,
        limit: 10,
        before: None,
    };
    store.list(&query).await.unwrap_or_default()
}

#[tokio::test]
async fn a_message_whose_smtp_server_was_down_arrives_once_the_server_is_up() {
    let mut smtp = Smtp::reserve();
    let (mut settings, data_url, prefix) = test_settings(Shape::Production).await;
    settings.email = Some(EmailSettings {
        timeout: Duration::from_secs(5),
        ..EmailSettings::new(smtp.url(), FROM)
    });
    // Retries 0.5–1 s, 1–2 s, then 2–4 s apart: time to start the server after two failures.
    settings.workers.backoff_base = Duration::from_secs(1);
    settings.workers.backoff_cap = Duration::from_secs(4);
    let metadata = settings.database_url.clone().unwrap();
    let app = spawn_with(settings, data_url, prefix).await;
    let job = app
        .create_export(json!({
            "name": "While the mail is down",
            "source": {"type": "generate", "rows": 3, "columns": [{"name": "a", "kind": "int"}]},
            "notify": {"email": TO},
        }))
        .await;
    let id = job["id"].as_str().unwrap().to_owned();
    let done = app.wait_final(&id).await;
    assert_eq!(
        done["state"], "succeeded",
        "the export does not wait for its e-mail"
    );

    let store = Store::connect(metadata.expose(), Signals::default())
        .await
        .unwrap();
    let waiting = eventually(Duration::from_secs(20), "two failed attempts", || async {
        let jobs = email_jobs(&store).await;
        let job = jobs.into_iter().next()?;
        (job.state == JobState::Queued && job.attempt >= 2).then_some(job)
    })
    .await;
    let error = waiting.error.clone().expect("the last attempt's error");
    assert_eq!(error.code, "email_failed", "{error:?}");
    assert!(error.transient);
    assert!(smtp.messages().await.is_empty());

    smtp.run().await;
    let mail = smtp.wait_for(1).await.remove(0);
    assert_eq!(
        mail.subject,
        "Your export “While the mail is down” is ready"
    );
    let sent = eventually(
        Duration::from_secs(10),
        "the e-mail job to succeed",
        || async {
            let job = email_jobs(&store).await.into_iter().next()?;
            job.state.is_final().then_some(job)
        },
    )
    .await;
    assert_eq!(sent.state, JobState::Succeeded);
    assert!(
        sent.attempt >= 3,
        "sent on a retry: attempt {}",
        sent.attempt
    );
    assert_eq!(
        sent.result.as_ref().map(|r| r["message_id"].clone()),
        Some(Value::String(mail.message_id.clone())),
        "the message id is the delivery job's, the same on every attempt"
    );
    // The delivery is final: no attempt can follow its success.
    assert_eq!(smtp.messages().await.len(), 1, "sent once");
    // The process's counters (shared by the tests of this binary) saw both kinds of attempt.
    let metrics = ferry::metrics::handle().render();
    for outcome in ["failed", "delivered"] {
        let series = format!("ferry_email_deliveries_total{{outcome=\"{outcome}\"}}");
        assert!(metrics.contains(&series), "{series} in {metrics}");
    }
    let export: Value = app
        .get(&format!("/v1/exports/{id}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(export["state"], "succeeded", "the export is unaffected");
}

#[tokio::test]
async fn an_address_is_refused_without_email_configured_and_a_malformed_one_always() {
    let (settings, data_url, prefix) = test_settings(Shape::Embedded).await;
    let plain = spawn_with(settings, data_url, prefix).await;
    let smtp = Smtp::reserve();
    let mailing = app_with_email(Shape::Embedded, &smtp.url()).await;
    let export = |email: &str| {
        json!({
            "source": {"type": "generate", "rows": 1, "columns": [{"name": "a", "kind": "int"}]},
            "notify": {"email": email},
        })
    };
    let cases = [
        (&plain, TO, "not configured"),
        (&mailing, "ada at example.com", "not an e-mail address"),
        (&mailing, "Ada <ada@example.com>", "not an e-mail address"),
    ];
    for (app, address, says) in cases {
        let response = app.post_json("/v1/exports", &export(address)).await;
        assert_eq!(response.status(), 422, "{address}");
        let problem: Value = response.json().await.unwrap();
        assert_eq!(problem["errors"][0]["field"], "notify.email", "{problem}");
        let message = problem["errors"][0]["message"].as_str().unwrap_or_default();
        assert!(message.contains(says), "{problem}");

        let direct = json!({"target": {"table": "t"}, "upload": "direct", "notify_email": address});
        let response = app.post_json("/v1/imports", &direct).await;
        assert_eq!(response.status(), 422, "{address}");
        let problem: Value = response.json().await.unwrap();
        assert_eq!(problem["errors"][0]["field"], "notify_email", "{problem}");
    }
    let raw = mailing
        .client
        .post(mailing.url("/v1/imports?table=t&notify_email=nobody"))
        .header("content-type", "text/csv")
        .body("a\n1\n")
        .send()
        .await
        .unwrap();
    assert_eq!(raw.status(), 422);
    let problem: Value = raw.json().await.unwrap();
    assert_eq!(problem["errors"][0]["field"], "notify_email", "{problem}");
}

/// A scripted SMTP server on loopback that answers `MAIL FROM` with `reply` and every other
/// command as a willing server would. Returns its port; it lives as long as the test.
async fn scripted_server(reply: &'static str) -> u16 {
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = listener.local_addr().expect("an address").port();
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            tokio::spawn(async move {
                let (read, mut write) = socket.into_split();
                let mut lines = BufReader::new(read).lines();
                write.write_all(b"220 scripted ESMTP\r\n").await.ok()?;
                while let Ok(Some(line)) = lines.next_line().await {
                    let command = line.to_ascii_uppercase();
                    let answer = if command.starts_with("MAIL FROM") {
                        reply
                    } else if command.starts_with("QUIT") {
                        "221 bye\r\n"
                    } else {
                        "250 ok\r\n"
                    };
                    write.write_all(answer.as_bytes()).await.ok()?;
                }
                Some(())
            });
        }
    });
    port
}

/// A running `email` job about a failed export (a message without links).
fn email_job() -> Job {
    let now = time::OffsetDateTime::now_utc();
    let mut failed = Job {
        id: ferry::domain::JobId::new(),
        kind: JobKind::Export,
        tenant: "default".into(),
        owner: "anonymous".into(),
        name: "Nightly".into(),
        state: JobState::Failed,
        spec: json!({}),
        share_with: vec![],
        progress: ferry::domain::Progress::default(),
        result: None,
        error: Some(ferry::domain::JobError {
            code: "query_failed".into(),
            message: "relation \"users\" does not exist".into(),
            transient: false,
        }),
        checkpoint: None,
        attempt: 1,
        max_attempts: 3,
        cancel_requested: false,
        created_at: now,
        started_at: Some(now),
        finished_at: Some(now),
        expires_at: None,
        event_seq: 3,
    };
    let follow_up = ferry::notify::email::delivery_job(TO, &failed);
    failed.id = follow_up.id;
    failed.kind = follow_up.kind;
    failed.state = JobState::Running;
    failed.spec = follow_up.spec;
    failed.error = None;
    failed.max_attempts = follow_up.max_attempts;
    failed
}

/// One attempt of an `email` job through the SMTP server on `port`.
async fn attempt(port: u16) -> Result<Value, ferry::queue::JobFailure> {
    let (settings, _, _) = test_settings(Shape::Embedded).await;
    let storage = ferry::storage::Storage::from_settings(&settings).expect("a local store");
    let email = EmailSettings {
        timeout: Duration::from_secs(5),
        ..EmailSettings::new(format!("smtp://127.0.0.1:{port}"), FROM)
    };
    let handler = ferry::notify::EmailHandler::new(Some(&email), storage).expect("a handler");
    let job = email_job();
    let store = Store::connect(&crate::helpers::fresh_sqlite(), Signals::default())
        .await
        .expect("a store");
    let ctx = ferry::queue::JobContext::detached(store, job.id);
    ferry::queue::Handler::run(&handler, job, ctx).await
}

#[tokio::test]
async fn a_permanent_smtp_refusal_ends_the_delivery_and_a_temporary_one_is_retried() {
    use ferry::queue::JobFailure;
    let refusing = scripted_server("550 5.7.1 sender not allowed\r\n").await;
    match attempt(refusing).await {
        Err(JobFailure::Fatal { code, message }) => {
            assert_eq!(code, "email_refused");
            assert!(message.contains("sender not allowed"), "{message}");
        }
        other => panic!("a 550 is final: {other:?}"),
    }
    let busy = scripted_server("451 4.3.0 try again later\r\n").await;
    match attempt(busy).await {
        Err(JobFailure::Retryable { code, message }) => {
            assert_eq!(code, "email_failed");
            assert!(message.contains("try again later"), "{message}");
        }
        other => panic!("a 451 is retried: {other:?}"),
    }
    let nobody = Smtp::reserve().port;
    assert!(
        matches!(attempt(nobody).await, Err(JobFailure::Retryable { ref code, .. }) if code == "email_failed"),
        "no server is retried"
    );
    let accepting = scripted_server("250 ok\r\n").await;
    let sent = attempt(accepting).await.expect("accepted");
    assert_eq!(sent["smtp"], "250");
}

/// A certificate authority and a certificate for `localhost` it signed, made with the `openssl`
/// command in `dir`: `ca.pem`, `localhost.pem`, `localhost.key`.
fn certificates(dir: &std::path::Path) {
    std::fs::create_dir_all(dir).expect("a directory for the certificates");
    std::fs::write(
        dir.join("leaf.ext"),
        "subjectAltName=DNS:localhost\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
    )
    .expect("write the extensions");
    let steps: [&[&str]; 3] = [
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
            "-days",
            "2",
            "-subj",
            "/CN=Ferry test CA",
        ],
        &[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "localhost.key",
            "-out",
            "localhost.csr",
            "-subj",
            "/CN=localhost",
        ],
        &[
            "x509",
            "-req",
            "-in",
            "localhost.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "localhost.pem",
            "-days",
            "2",
            "-extfile",
            "leaf.ext",
        ],
    ];
    for args in steps {
        let output = std::process::Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .output()
            .expect("run openssl (Debian's openssl package)");
        assert!(
            output.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
}

/// A `ferry serve` process that mails through `smtp_url`, trusting the certificates in
/// `trust` (as `SSL_CERT_FILE`: the platform verifier's roots on Linux) when given, the
/// system's otherwise. A process of its own, since the trust store is read from its environment.
async fn served_with_email(
    smtp_url: &str,
    trust: Option<&std::path::Path>,
) -> crate::process::Served {
    let trust = trust.map(|path| path.display().to_string());
    let mut env = vec![
        ("FERRY_EMAIL__SMTP_URL", smtp_url),
        ("FERRY_EMAIL__FROM", FROM),
        ("FERRY_LOG", "info"),
    ];
    if let Some(file) = &trust {
        env.push(("SSL_CERT_FILE", file.as_str()));
    }
    crate::process::Served::start(&env).await
}

/// Starts a small export that mails `TO` on `served`.
async fn export_mailed(served: &crate::process::Served) {
    let response = served
        .client
        .post(served.url("/v1/exports"))
        .json(&json!({
            "name": "Over TLS",
            "source": {"type": "generate", "rows": 2, "columns": [{"name": "a", "kind": "int"}]},
            "notify": {"email": TO},
        }))
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), 202);
}

#[tokio::test]
async fn mail_goes_over_starttls_and_implicit_tls_and_an_untrusted_certificate_is_refused() {
    let dir = std::env::temp_dir().join(format!("ferry-tls-{}", uuid::Uuid::new_v4()));
    certificates(&dir);
    let (cert, key) = (dir.join("localhost.pem"), dir.join("localhost.key"));
    // aiosmtpd with a certificate refuses mail until the client has said STARTTLS.
    let mut starttls = Smtp::reserve();
    starttls
        .run_with(&[
            "--tlscert".as_ref(),
            cert.as_os_str(),
            "--tlskey".as_ref(),
            key.as_os_str(),
        ])
        .await;
    let mut implicit = Smtp::reserve();
    implicit
        .run_with(&[
            "--smtpscert".as_ref(),
            cert.as_os_str(),
            "--smtpskey".as_ref(),
            key.as_os_str(),
        ])
        .await;
    let ca = dir.join("ca.pem");
    let urls = [
        (
            format!("smtp://localhost:{}?tls=required", starttls.port),
            &starttls,
        ),
        (format!("smtps://localhost:{}", implicit.port), &implicit),
    ];
    for (url, server) in urls {
        let served = served_with_email(&url, Some(&ca)).await;
        export_mailed(&served).await;
        let mail = server.wait_for(1).await.remove(0);
        assert_eq!(mail.subject, "Your export “Over TLS” is ready", "{url}");
    }

    // Without the test CA among its roots, Ferry does not send (and says why).
    let untrusting = served_with_email(&format!("smtps://localhost:{}", implicit.port), None).await;
    export_mailed(&untrusting).await;
    let log = untrusting.dir.join("stderr.log");
    let line = eventually(Duration::from_secs(20), "a refused TLS attempt", || async {
        let text = std::fs::read_to_string(&log).ok()?;
        text.lines()
            .find(|l| l.contains("email delivery attempt failed"))
            .map(str::to_owned)
    })
    .await;
    assert!(line.to_lowercase().contains("certificate"), "{line}");
    assert_eq!(
        implicit.messages().await.len(),
        1,
        "nothing more was delivered"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
