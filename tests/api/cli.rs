//! The client commands — `ferry export`, `ferry import`, `ferry jobs` — run as the real binary
//! against a real `ferry serve`, the way a user runs them: exit codes, stdout, stderr and the
//! files they write. Their stderr is a pipe here, so progress comes as plain lines.

use crate::helpers::eventually;
use crate::process::Served;
use regex::Regex;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The longest one client command may take in these tests.
const COMMAND_LIMIT: Duration = Duration::from_secs(120);

/// What a finished `ferry` command left behind.
struct Ran {
    code: i32,
    stdout: Vec<u8>,
    stderr: String,
}

impl Ran {
    fn out(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }
}

impl std::fmt::Debug for Ran {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "exit {}\n--- stdout\n{}\n--- stderr\n{}",
            self.code,
            self.out(),
            self.stderr
        )
    }
}

/// Runs `ferry ARGS` against `server` with only `env` as its client variables.
async fn ferry_with(server: &str, args: &[&str], env: &[(&str, &str)]) -> Ran {
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_ferry"));
    command
        .args(args)
        .env_remove("FERRY_TOKEN")
        .env_remove("FERRY_LOG_FORMAT")
        .env("FERRY_SERVER", server)
        .env("FERRY_LOG", "warn")
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true);
    for (name, value) in env {
        command.env(name, value);
    }
    let output = tokio::time::timeout(COMMAND_LIMIT, command.output())
        .await
        .unwrap_or_else(|_| panic!("ferry {args:?} did not end within {COMMAND_LIMIT:?}"))
        .expect("run ferry");
    Ran {
        code: output.status.code().unwrap_or(-1),
        stdout: output.stdout,
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

async fn ferry(served: &Served, args: &[&str]) -> Ran {
    ferry_with(&served.base, args, &[]).await
}

/// The one line of stdout, checked to be a job id.
fn job_id(text: &str) -> String {
    let id = text.trim().to_owned();
    assert!(uuid::Uuid::parse_str(&id).is_ok(), "not a job id: {text:?}");
    id
}

fn path_arg(path: &Path) -> &str {
    path.to_str().expect("a UTF-8 path")
}

/// The files in `dir` whose names end with `.part` (unfinished downloads).
fn leftovers(dir: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(dir)
        .expect("read the directory")
        .map(|e| e.expect("an entry").path())
        .filter(|p| p.to_string_lossy().ends_with(".part"))
        .collect()
}

/// Every line of a waited-for job's progress is `STATE N rows [P%]…`.
fn assert_plain_job_lines(stderr: &str) {
    let shape = Regex::new(
        r"^(queued|running|succeeded|failed|cancelled) \d+ rows( \d+\.\d%)?( \(\d+ inserted, \d+ rejected\))?$",
    )
    .expect("a regex");
    let lines: Vec<&str> = stderr.lines().filter(|l| shape.is_match(l)).collect();
    assert!(
        lines.last().is_some_and(|l| l.starts_with("succeeded ")),
        "progress lines ending with succeeded: {stderr}"
    );
    assert!(
        !stderr.contains('\u{1b}') && !stderr.contains('\r'),
        "no terminal control characters when stderr is not a terminal: {stderr:?}"
    );
}

#[tokio::test]
async fn export_of_generated_rows_with_wait_and_output_writes_the_generated_file() {
    let served = Served::start(&[]).await;
    let file = served.dir.join("people.csv");
    let ran = ferry(
        &served,
        &[
            "export",
            "--generate",
            "id:int",
            "--generate",
            "email:email",
            "--rows",
            "2000",
            "--seed",
            "9",
            "--wait",
            "-o",
            path_arg(&file),
        ],
    )
    .await;
    assert_eq!(ran.code, 0, "{ran:?}");
    job_id(&ran.out());
    assert_plain_job_lines(&ran.stderr);
    assert!(ran.stderr.contains("saved "), "{ran:?}");
    let generated = ferry(
        &served,
        &[
            "generate",
            "--column",
            "id:int",
            "--column",
            "email:email",
            "--rows",
            "2000",
            "--seed",
            "9",
        ],
    )
    .await;
    assert_eq!(generated.code, 0, "{generated:?}");
    let downloaded = std::fs::read(&file).expect("the downloaded file");
    assert_eq!(downloaded.iter().filter(|b| **b == b'\n').count(), 2001);
    assert!(downloaded.starts_with(b"id,email\n"));
    assert!(
        downloaded == generated.stdout,
        "the export is the same file as `ferry generate` with the same seed"
    );
    assert_eq!(leftovers(&served.dir), Vec::<PathBuf>::new());
}

#[tokio::test]
async fn export_on_a_terminal_draws_a_progress_bar_and_still_ends_with_the_outcome() {
    let served = Served::start(&[]).await;
    let file = served.dir.join("bar.csv");
    // util-linux `script` gives the command a terminal (a pty) and copies what it draws.
    let command = format!(
        "{} export --generate id:uuid --rows 300000 -o {}",
        env!("CARGO_BIN_EXE_ferry"),
        path_arg(&file)
    );
    let ran = tokio::time::timeout(
        COMMAND_LIMIT,
        tokio::process::Command::new("script")
            .args(["-qec", &command, "/dev/null"])
            .env("FERRY_SERVER", &served.base)
            .env("FERRY_LOG", "warn")
            .env_remove("FERRY_TOKEN")
            .stdin(std::process::Stdio::null())
            .kill_on_drop(true)
            .output(),
    )
    .await
    .expect("the command ends")
    .expect("run `script` (util-linux) to give ferry a terminal");
    let screen = String::from_utf8_lossy(&ran.stdout);
    assert!(ran.status.success(), "{screen}");
    assert!(
        screen.contains("\u{1b}["),
        "a bar drawn with terminal control sequences: {screen:?}"
    );
    let bar = Regex::new(r"\] (queued|running|succeeded) \d+ rows").expect("a regex");
    assert!(
        bar.is_match(&screen),
        "a bar with the job's line: {screen:?}"
    );
    assert!(
        screen.contains("\u{1b}[2Ksucceeded 300000 rows"),
        "the outcome, once the bar is gone: {screen:?}"
    );
    assert!(screen.contains("saved "), "{screen:?}");
    let lines = std::fs::read_to_string(&file)
        .expect("the file")
        .lines()
        .count();
    assert_eq!(lines, 300_001);
}

#[tokio::test]
async fn export_to_dash_sends_the_file_to_stdout_and_the_id_to_stderr() {
    let served = Served::start(&[]).await;
    let ran = ferry(
        &served,
        &[
            "export",
            "--generate",
            "n:int",
            "--rows",
            "50",
            "--format",
            "jsonl",
            "-o",
            "-",
        ],
    )
    .await;
    assert_eq!(ran.code, 0, "{ran:?}");
    let lines: Vec<Value> = ran
        .out()
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect();
    assert_eq!(lines.len(), 50, "{ran:?}");
    assert!(lines.iter().all(|l| l["n"].is_number()), "{ran:?}");
    let id = ran.stderr.lines().next().expect("the id first on stderr");
    job_id(id);
}

#[tokio::test]
async fn export_of_sql_on_a_missing_table_exits_one_with_the_servers_message() {
    let served = Served::start(&[]).await;
    served.local_sql("CREATE TABLE present (id INTEGER)").await;
    let ran = ferry(
        &served,
        &[
            "export",
            "--connection",
            "local",
            "--sql",
            "SELECT * FROM missing",
            "--wait",
        ],
    )
    .await;
    assert_eq!(ran.code, 1, "{ran:?}");
    assert!(
        ran.stdout.is_empty(),
        "no job id when no job was made: {ran:?}"
    );
    assert!(ran.stderr.starts_with("error: "), "{ran:?}");
    assert!(ran.stderr.contains("HTTP 422"), "{ran:?}");
    assert!(
        ran.stderr.contains("source.query") && ran.stderr.contains("missing"),
        "{ran:?}"
    );
}

#[tokio::test]
async fn export_of_sql_on_a_local_table_waits_and_downloads_its_rows() {
    let served = Served::start(&[]).await;
    served
        .local_sql(
            "CREATE TABLE towns (id INTEGER PRIMARY KEY, name TEXT NOT NULL);
             INSERT INTO towns VALUES (1, 'Oslo'), (2, 'Lyon'), (3, 'Graz');",
        )
        .await;
    let file = served.dir.join("towns.csv");
    let ran = ferry(
        &served,
        &[
            "export",
            "--connection",
            "local",
            "--sql",
            "SELECT id, name FROM towns ORDER BY id",
            "--name",
            "towns",
            "--wait",
            "-o",
            path_arg(&file),
        ],
    )
    .await;
    assert_eq!(ran.code, 0, "{ran:?}");
    assert_plain_job_lines(&ran.stderr);
    assert_eq!(
        std::fs::read_to_string(&file).expect("the file"),
        "id,name\n1,Oslo\n2,Lyon\n3,Graz\n"
    );
    let id = job_id(&ran.out());
    let shown = ferry(&served, &["jobs", "show", &id]).await;
    assert_eq!(shown.code, 0, "{shown:?}");
    assert!(shown.out().contains("name      towns\n"), "{shown:?}");
    assert!(shown.out().contains("state     succeeded\n"), "{shown:?}");
}

#[tokio::test]
async fn export_of_a_bundle_spec_waits_and_downloads_one_zip_of_its_entries() {
    let served = Served::start(&[]).await;
    served
        .local_sql(
            "CREATE TABLE towns (id INTEGER PRIMARY KEY, name TEXT NOT NULL);
             INSERT INTO towns VALUES (1, 'Oslo'), (2, 'Lyon'), (3, 'Graz');",
        )
        .await;
    let spec = served.dir.join("bundle.json");
    std::fs::write(
        &spec,
        serde_json::json!({"name": "ignored", "format": "zip", "files": [
            {"name": "people", "format": "csv", "source": {"type": "generate", "rows": 25,
                "seed": 4, "columns": [{"name": "id", "kind": "int", "min": 1, "max": 9}]}},
            {"name": "towns", "format": "jsonl", "source": {"type": "sql", "connection": "local",
                "query": "SELECT id, name FROM towns ORDER BY id"}}]})
        .to_string(),
    )
    .expect("write the bundle request");
    let file = served.dir.join("monthly.zip");
    let ran = ferry(
        &served,
        &[
            "export",
            "--spec",
            path_arg(&spec),
            "--name",
            "monthly",
            "--wait",
            "-o",
            path_arg(&file),
        ],
    )
    .await;
    assert_eq!(ran.code, 0, "{ran:?}");
    assert_plain_job_lines(&ran.stderr);
    assert!(ran.stderr.contains("succeeded 28 rows"), "{ran:?}");
    let id = job_id(&ran.out());
    let zip = std::fs::File::open(&file).expect("the downloaded zip");
    let mut zip = zip::ZipArchive::new(zip).expect("a zip file");
    let mut read = Vec::new();
    for i in 0..zip.len() {
        let mut entry = zip.by_index(i).expect("an entry");
        let mut text = String::new();
        std::io::Read::read_to_string(&mut entry, &mut text).expect("read the entry");
        read.push((entry.name().expect("an entry name").into_owned(), text));
    }
    let names: Vec<&str> = read.iter().map(|(name, _)| name.as_str()).collect();
    assert_eq!(names, ["people.csv", "towns.jsonl"]);
    let people: Vec<&str> = read[0].1.lines().collect();
    assert_eq!((people.len(), people[0]), (26, "id"));
    assert_eq!(
        read[1].1,
        "{\"id\":1,\"name\":\"Oslo\"}\n{\"id\":2,\"name\":\"Lyon\"}\n{\"id\":3,\"name\":\"Graz\"}\n"
    );
    let job: Value = served
        .client
        .get(served.url(&format!("/v1/exports/{id}")))
        .send()
        .await
        .expect("GET the export")
        .json()
        .await
        .expect("a job");
    assert_eq!(
        job["name"], "monthly",
        "--name took the place of the file's"
    );
    let entries = &job["result"]["file"]["entries"];
    assert_eq!(entries[0]["rows"], 25, "{job}");
    assert_eq!(entries[1]["rows"], 3, "{job}");
    assert_eq!(leftovers(&served.dir), Vec::<PathBuf>::new());
}

#[tokio::test]
async fn export_of_a_template_sends_params_as_text_that_the_server_types() {
    let served = Served::start_with(
        &[],
        "[templates.towns_after]\nconnection = \"local\"\n\
         query = \"SELECT id, name FROM towns WHERE id > $1 ORDER BY id\"\n\
         params = [{ name = \"after\", type = \"int\" }]\n",
    )
    .await;
    served
        .local_sql(
            "CREATE TABLE towns (id INTEGER PRIMARY KEY, name TEXT NOT NULL);
             INSERT INTO towns VALUES (1, 'Oslo'), (2, 'Lyon'), (3, 'Graz');",
        )
        .await;
    let ran = ferry(
        &served,
        &[
            "export",
            "--template",
            "towns_after",
            "--param",
            "after=1",
            "-o",
            "-",
        ],
    )
    .await;
    assert_eq!(ran.code, 0, "{ran:?}");
    assert_eq!(ran.out(), "id,name\n2,Lyon\n3,Graz\n");
    let wrong = ferry(
        &served,
        &[
            "export",
            "--template",
            "towns_after",
            "--param",
            "after=one",
            "--wait",
        ],
    )
    .await;
    assert_eq!(wrong.code, 1, "{wrong:?}");
    assert!(
        wrong.stderr.contains("  source.params.after: "),
        "{wrong:?}"
    );
    let malformed = ferry(
        &served,
        &["export", "--template", "towns_after", "--param", "after"],
    )
    .await;
    assert_eq!(malformed.code, 2, "a usage error: {malformed:?}");
    assert!(malformed.stderr.contains("KEY=VALUE"), "{malformed:?}");
}

#[tokio::test]
async fn export_that_fails_while_running_exits_one_with_the_jobs_error() {
    let served = Served::start(&[]).await;
    served.local_sql("CREATE TABLE present (id INTEGER)").await;
    // The statement is prepared at request time; the bad value only fails as rows are read.
    let ran = ferry(
        &served,
        &[
            "export",
            "--connection",
            "local",
            "--sql",
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 3) \
             SELECT i, json_extract('not json', '$') AS bad FROM n",
            "--wait",
        ],
    )
    .await;
    assert_eq!(ran.code, 1, "{ran:?}");
    let id = job_id(&ran.out());
    assert_eq!(
        ran.stderr.lines().last(),
        Some(format!("error: export {id} failed: query_failed: malformed JSON").as_str()),
        "{ran:?}"
    );
    assert!(ran.stderr.contains("\nfailed 0 rows"), "{ran:?}");
}

/// A table of people in `local.db` and a file with three good rows and two bad ones.
async fn people(served: &Served) -> PathBuf {
    served
        .local_sql("CREATE TABLE people (id INTEGER PRIMARY KEY, name TEXT NOT NULL, born DATE)")
        .await;
    let file = served.dir.join("people.csv");
    std::fs::write(
        &file,
        "id,name,born\n1,Ann,1990-01-31\n2,,1990-02-01\n3,Bo,1990-02-31\n4,Cy,1991-03-01\n5,Di,1992-04-02\n",
    )
    .expect("write the file");
    file
}

async fn local_names(served: &Served) -> Vec<(i64, String)> {
    let url = format!("sqlite://{}", served.dir.join("local.db").display());
    let mut conn = <sqlx::SqliteConnection as sqlx::Connection>::connect(&url)
        .await
        .expect("open local.db");
    sqlx::query_as("SELECT id, name FROM people ORDER BY id")
        .fetch_all(&mut conn)
        .await
        .expect("read people")
}

#[tokio::test]
async fn import_with_two_bad_rows_loads_the_others_and_saves_the_rejects() {
    let served = Served::start(&[]).await;
    let file = people(&served).await;
    let rejects = served.dir.join("R.csv");
    let ran = ferry(
        &served,
        &[
            "import",
            path_arg(&file),
            "--connection",
            "local",
            "--table",
            "people",
            "--wait",
            "--rejects",
            path_arg(&rejects),
        ],
    )
    .await;
    assert_eq!(ran.code, 0, "{ran:?}");
    job_id(&ran.out());
    let upload = Regex::new(r"(?m)^uploading \d+ of \d+ bytes \d+\.\d%$").expect("a regex");
    assert!(upload.is_match(&ran.stderr), "{ran:?}");
    let size = std::fs::metadata(&file).expect("the file's size").len();
    assert!(
        ran.stderr
            .contains(&format!("uploading {size} of {size} bytes 100.0%\n")),
        "{ran:?}"
    );
    assert_plain_job_lines(&ran.stderr);
    assert_eq!(
        ran.stderr.lines().last(),
        Some("3 rows inserted, 2 rejected"),
        "{ran:?}"
    );
    let report = std::fs::read_to_string(&rejects).expect("the rejects file");
    let mut reader = csv::Reader::from_reader(report.as_bytes());
    let header = reader.headers().expect("a header").clone();
    assert!(header.iter().any(|h| h == "_line"), "{report}");
    assert!(header.iter().any(|h| h == "_errors"), "{report}");
    let lines: Vec<csv::StringRecord> = reader.records().map(|r| r.expect("a record")).collect();
    assert_eq!(lines.len(), 2, "{report}");
    let line = header.iter().position(|h| h == "_line").unwrap_or(0);
    assert_eq!(lines[0].get(line), Some("3"), "{report}");
    assert_eq!(lines[1].get(line), Some("4"), "{report}");
    assert_eq!(
        local_names(&served).await,
        vec![(1, "Ann".into()), (4, "Cy".into()), (5, "Di".into())]
    );
    assert_eq!(leftovers(&served.dir), Vec::<PathBuf>::new());
}

#[tokio::test]
async fn import_with_create_makes_the_table_from_the_file() {
    let served = Served::start(&[]).await;
    let file = served.dir.join("pets.csv");
    std::fs::write(&file, "Name,Age,Vaccinated On\nRex,3,2026-01-05\nTom,5,\n")
        .expect("write the file");
    let ran = ferry(
        &served,
        &[
            "import",
            path_arg(&file),
            "--connection",
            "local",
            "--table",
            "pets",
            "--create",
            "--wait",
        ],
    )
    .await;
    assert_eq!(ran.code, 0, "{ran:?}");
    assert_eq!(
        ran.stderr.lines().last(),
        Some("2 rows inserted, 0 rejected"),
        "{ran:?}"
    );
    let url = format!("sqlite://{}", served.dir.join("local.db").display());
    let mut conn = <sqlx::SqliteConnection as sqlx::Connection>::connect(&url)
        .await
        .expect("open local.db");
    let columns: Vec<(String, String)> =
        sqlx::query_as("SELECT name, lower(type) FROM pragma_table_info('pets') ORDER BY cid")
            .fetch_all(&mut conn)
            .await
            .expect("read the columns");
    assert_eq!(
        columns,
        [
            ("name".to_owned(), "text".to_owned()),
            ("age".to_owned(), "integer".to_owned()),
            ("vaccinated_on".to_owned(), "date".to_owned()),
        ]
    );
    let ages: Vec<i64> = sqlx::query_scalar("SELECT age FROM pets ORDER BY age")
        .fetch_all(&mut conn)
        .await
        .expect("read the rows");
    assert_eq!(ages, [3, 5]);
}

#[tokio::test]
async fn import_with_a_spec_file_keeps_its_rules_and_fails_past_its_error_limit() {
    let served = Served::start(&[]).await;
    let file = people(&served).await;
    let spec = served.dir.join("spec.json");
    std::fs::write(
        &spec,
        r#"{"target": {"connection": "local", "table": "elsewhere"}, "max_errors": 1}"#,
    )
    .expect("write the spec");
    let rejects = served.dir.join("R.csv");
    let ran = ferry(
        &served,
        &[
            "import",
            path_arg(&file),
            "--spec",
            path_arg(&spec),
            "--table",
            "people",
            "--rejects",
            path_arg(&rejects),
        ],
    )
    .await;
    assert_eq!(ran.code, 1, "{ran:?}");
    let id = job_id(&ran.out());
    let last = ran.stderr.lines().last().unwrap_or_default();
    assert!(
        last.starts_with(&format!("error: import {id} failed: ")),
        "the --table flag took the place of the spec's table, its max_errors stayed: {ran:?}"
    );
    assert_eq!(local_names(&served).await, vec![], "nothing loaded");
    let job: Value = served
        .client
        .get(served.url(&format!("/v1/imports/{id}")))
        .send()
        .await
        .expect("GET the import")
        .json()
        .await
        .expect("a job");
    assert_eq!(job["spec"]["max_errors"], 1, "{job}");
    assert_eq!(job["spec"]["target"]["table"], "people", "{job}");
    assert_eq!(leftovers(&served.dir), Vec::<PathBuf>::new());
}

#[tokio::test]
async fn import_of_a_large_file_refused_while_it_streams_still_shows_the_servers_problem() {
    let served = Served::start(&[]).await;
    let file = served.dir.join("large.csv");
    let line = format!("{}\n", "x".repeat(99));
    std::fs::write(&file, line.repeat(300_000)).expect("write 30 MB");
    let ran = ferry(
        &served,
        &[
            "import",
            path_arg(&file),
            "--connection",
            "local",
            "--table",
            "nowhere",
        ],
    )
    .await;
    assert_eq!(ran.code, 1, "{ran:?}");
    assert!(ran.stderr.contains("HTTP 422"), "{ran:?}");
    assert!(ran.stderr.contains("  target.table: "), "{ran:?}");
    assert!(ran.stderr.contains("nowhere"), "{ran:?}");
}

#[tokio::test]
async fn jobs_list_show_and_delete_cover_both_kinds() {
    let served = Served::start(&[]).await;
    let file = people(&served).await;
    let import = ferry(
        &served,
        &["import", path_arg(&file), "--table", "people", "--wait"],
    )
    .await;
    assert_eq!(import.code, 0, "{import:?}");
    let import_id = job_id(&import.out());
    let export = ferry(
        &served,
        &["export", "--generate", "id:uuid", "--rows", "10", "--wait"],
    )
    .await;
    assert_eq!(export.code, 0, "{export:?}");
    let export_id = job_id(&export.out());

    let table = ferry(&served, &["jobs"]).await;
    assert_eq!(table.code, 0, "{table:?}");
    let lines: Vec<String> = table.out().lines().map(str::to_owned).collect();
    assert_eq!(lines.len(), 3, "{table:?}");
    let header = Regex::new(r"^ID +KIND +STATE +NAME +ROWS +PROGRESS +CREATED$").expect("a regex");
    assert!(header.is_match(&lines[0]), "{table:?}");
    assert!(
        lines[1].starts_with(&format!("{export_id}  export  succeeded")),
        "newest first: {table:?}"
    );
    assert!(
        lines[2].starts_with(&format!("{import_id}  import  succeeded")),
        "{table:?}"
    );

    let json = ferry(&served, &["jobs", "list", "--json"]).await;
    assert_eq!(json.code, 0, "{json:?}");
    let jobs: Vec<Value> = json
        .out()
        .lines()
        .map(|l| serde_json::from_str(l).expect("one job per line"))
        .collect();
    let ids: Vec<&str> = jobs.iter().filter_map(|j| j["id"].as_str()).collect();
    assert_eq!(ids, vec![export_id.as_str(), import_id.as_str()]);

    let imports = ferry(&served, &["jobs", "--kind", "import", "--json"]).await;
    assert_eq!(imports.out().lines().count(), 1, "{imports:?}");
    let none = ferry(&served, &["jobs", "--state", "failed"]).await;
    assert_eq!(none.out().lines().count(), 1, "only the header: {none:?}");

    let shown = ferry(&served, &["jobs", "show", &import_id]).await;
    assert_eq!(shown.code, 0, "{shown:?}");
    assert!(shown.out().contains("kind      import\n"), "{shown:?}");
    assert!(shown.out().contains("inserted  3\n"), "{shown:?}");
    assert!(shown.out().contains("rejected  2\n"), "{shown:?}");
    let shown = ferry(&served, &["jobs", "show", &export_id, "--json"]).await;
    let job: Value = serde_json::from_slice(&shown.stdout).expect("the job as JSON");
    assert_eq!(job["id"], export_id.as_str());

    let deleted = ferry(&served, &["jobs", "delete", &export_id]).await;
    assert_eq!(deleted.code, 0, "{deleted:?}");
    assert_eq!(deleted.out(), format!("deleted export {export_id}\n"));
    let gone = ferry(&served, &["jobs", "show", &export_id]).await;
    assert_eq!(gone.code, 1, "{gone:?}");
    assert!(gone.stderr.contains("HTTP 404"), "{gone:?}");
    let missing_id = ferry(&served, &["jobs", "show"]).await;
    assert_eq!(missing_id.code, 2, "{missing_id:?}");
}

#[tokio::test]
async fn jobs_cancel_of_a_running_export_leaves_it_cancelled() {
    let served = Served::start(&[]).await;
    let started = ferry(
        &served,
        &[
            "export",
            "--generate",
            "id:uuid",
            "--generate",
            "name:name",
            "--rows",
            "50000000",
        ],
    )
    .await;
    assert_eq!(started.code, 0, "{started:?}");
    let id = job_id(&started.out());
    eventually(Duration::from_secs(30), "the export to run", || async {
        let job: Value = served
            .client
            .get(served.url(&format!("/v1/exports/{id}")))
            .send()
            .await
            .ok()?
            .json()
            .await
            .ok()?;
        (job["state"] == "running" && job["progress"]["rows"].as_u64()? > 0).then_some(())
    })
    .await;
    let cancelled = ferry(&served, &["jobs", "cancel", &id]).await;
    assert_eq!(cancelled.code, 0, "{cancelled:?}");
    assert!(
        cancelled.out().starts_with(&format!("export {id} ")),
        "{cancelled:?}"
    );
    let shown = eventually(Duration::from_secs(10), "the export to stop", || async {
        let shown = ferry(&served, &["jobs", "show", &id]).await;
        shown
            .out()
            .contains("state     cancelled\n")
            .then_some(shown)
    })
    .await;
    assert_eq!(shown.code, 0, "{shown:?}");
    let again = ferry(&served, &["jobs", "cancel", &id]).await;
    assert_eq!(again.code, 1, "{again:?}");
    assert!(again.stderr.contains("HTTP 409"), "{again:?}");
    let retried = ferry(&served, &["jobs", "retry", &id, "--kind", "export"]).await;
    assert_eq!(retried.code, 0, "{retried:?}");
    assert!(
        retried.out().starts_with(&format!("export {id} retried: ")),
        "{retried:?}"
    );
    let deleted = ferry(&served, &["jobs", "delete", &id]).await;
    assert_eq!(deleted.code, 0, "a running job is deleted too: {deleted:?}");
}

#[tokio::test]
async fn the_token_from_ferry_token_is_sent_and_without_it_the_server_says_unauthorized() {
    let served = Served::start_with(
        &[],
        "[auth]\nmode = \"api_keys\"\n[[auth.api_keys]]\nkey = \"cli-test-key\"\ntenant = \"acme\"\nsubject = \"ann\"\n",
    )
    .await;
    let args = ["export", "--generate", "id:int", "--rows", "5", "--wait"];
    let refused = ferry(&served, &args).await;
    assert_eq!(refused.code, 1, "{refused:?}");
    assert!(
        refused.stderr.contains("Unauthorized (HTTP 401"),
        "{refused:?}"
    );
    assert!(refused.stderr.contains("FERRY_TOKEN"), "{refused:?}");
    let accepted = ferry_with(&served.base, &args, &[("FERRY_TOKEN", "cli-test-key")]).await;
    assert_eq!(accepted.code, 0, "{accepted:?}");
    let id = job_id(&accepted.out());
    let listed = ferry(&served, &["jobs", "--token", "cli-test-key", "--json"]).await;
    assert_eq!(listed.code, 0, "{listed:?}");
    let job: Value = serde_json::from_str(listed.out().trim()).expect("one job");
    assert_eq!(
        (job["id"].as_str(), job["tenant"].as_str()),
        (Some(id.as_str()), Some("acme"))
    );
    let wrong = ferry_with(&served.base, &["jobs"], &[("FERRY_TOKEN", "nope")]).await;
    assert_eq!(wrong.code, 1, "{wrong:?}");
    assert!(wrong.stderr.contains("Unauthorized"), "{wrong:?}");
}

#[tokio::test]
async fn an_unreachable_server_is_one_line_naming_its_url() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let server = format!("http://127.0.0.1:{port}");
    let ran = ferry_with(&server, &["jobs"], &[]).await;
    assert_eq!(ran.code, 1, "{ran:?}");
    assert_eq!(ran.stderr.lines().count(), 1, "{ran:?}");
    assert!(
        ran.stderr.starts_with(&format!(
            "error: cannot reach the Ferry server at {server}: "
        )),
        "{ran:?}"
    );
}

/// `ferry import --resume ID` after an interrupted upload sends only the missing parts, and
/// `--resumable` keeps its state file only while the upload is unfinished.
#[tokio::test]
async fn import_resume_sends_only_the_missing_parts_and_loads_every_row_once() {
    let served = Served::start(&[]).await;
    let part = 8 * 1024 * 1024; // the default part size
    served
        .local_sql("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)")
        .await;
    let mut text = String::from("id,v\n");
    for id in 1..=400_000 {
        text.push_str(&format!("{id},row {id:08} of a file sent in parts\n"));
    }
    let file = served.dir.join("t.csv");
    std::fs::write(&file, &text).expect("write the file");
    let size = text.len();
    // An earlier run that stopped after two of the parts.
    let spec = serde_json::json!({"target": {"connection": "local", "table": "t"},
        "upload": "multipart", "size": size});
    let created: Value = served
        .client
        .post(format!("{}/v1/imports", served.base))
        .json(&spec)
        .send()
        .await
        .expect("create the upload")
        .json()
        .await
        .expect("a job");
    let id = created["id"].as_str().expect("an id").to_owned();
    for number in 1..=2usize {
        let link: Value = served
            .client
            .get(format!(
                "{}/v1/imports/{id}/upload/parts/{number}",
                served.base
            ))
            .send()
            .await
            .expect("a part link")
            .json()
            .await
            .expect("a link");
        let bytes = &text.as_bytes()[(number - 1) * part..number * part];
        let put = served
            .client
            .put(link["url"].as_str().expect("a url"))
            .body(bytes.to_vec())
            .send()
            .await
            .expect("send a part");
        assert!(put.status().is_success());
    }
    let parts = size.div_ceil(part);
    let state = served.dir.join("state");
    let state_env = [("FERRY_STATE_DIR", path_arg(&state))];
    let args = [
        "import",
        path_arg(&file),
        "--connection",
        "local",
        "--table",
        "t",
        "--wait",
    ];
    let resume = [&args[..], &["--resume", &id]].concat();
    let ran = ferry_with(&served.base, &resume, &state_env).await;
    assert_eq!(ran.code, 0, "{ran:?}");
    assert_eq!(job_id(&ran.out()), id, "the same import, resumed");
    assert!(
        ran.stderr.contains(&format!(
            "resuming upload {id}: 2 of {parts} parts already stored"
        )),
        "{ran:?}"
    );
    assert_eq!(
        ran.stderr.lines().last(),
        Some("400000 rows inserted, 0 rejected"),
        "{ran:?}"
    );
    let again = [&args[..], &["--resumable"]].concat();
    served.local_sql("DELETE FROM t").await;
    let ran = ferry_with(&served.base, &again, &state_env).await;
    assert_eq!(ran.code, 0, "{ran:?}");
    assert_ne!(job_id(&ran.out()), id);
    assert_eq!(
        ran.stderr.lines().last(),
        Some("400000 rows inserted, 0 rejected"),
        "{ran:?}"
    );
    let kept: Vec<_> = std::fs::read_dir(&state)
        .map(|d| d.flatten().count())
        .into_iter()
        .collect();
    assert_eq!(
        kept,
        [0],
        "the state file is removed once the upload is complete"
    );
}
