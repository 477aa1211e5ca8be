//! `ferry jobs [list|show|cancel|retry|delete] [ID]`: the caller's exports and imports. `list`
//! merges both kinds newest first (ids are UUIDv7, so newest first is the ids' descending
//! order) into a table or JSON lines; the other actions find a job's kind by trying exports,
//! then imports, unless `--kind` says which.

use super::client::{CliError, Client, ClientArgs, Job, Kind, encode};
use super::progress::job_line;
use reqwest::Method;
use std::io::Write;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// The longest name shown in the table, in characters.
const NAME_WIDTH: usize = 40;
/// The largest page the API gives.
const MAX_PAGE: usize = 100;

/// What to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Action {
    /// The jobs, newest first.
    #[default]
    List,
    /// One job.
    Show,
    /// Cancel a job.
    Cancel,
    /// Run a failed or cancelled job again.
    Retry,
    /// Delete a job and its file.
    Delete,
}

/// Options of `ferry jobs`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub client: ClientArgs,
    /// What to do.
    #[arg(value_enum, default_value_t = Action::List)]
    pub action: Action,
    /// The job's id (all actions but `list`).
    pub id: Option<String>,
    /// Only exports or only imports.
    #[arg(long, value_enum)]
    pub kind: Option<Kind>,
    /// Only jobs in this state (`list`).
    #[arg(long, value_name = "S")]
    pub state: Option<String>,
    /// How many jobs `list` shows.
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub limit: u32,
    /// JSON instead of text: one job per line.
    #[arg(long)]
    pub json: bool,
}

/// Runs `ferry jobs`.
pub async fn run(args: &Args, out: &mut dyn Write) -> Result<(), CliError> {
    let client = Client::new(&args.client)?;
    match (args.action, &args.id) {
        (Action::List, None) => return list(&client, args, out).await,
        (Action::List, Some(id)) => {
            return Err(CliError::Usage(format!(
                "`jobs list` takes no id ({id}); use `jobs show {id}`"
            )));
        }
        (_, None) => return Err(CliError::Usage("this action needs a job id".into())),
        (_, Some(_)) if args.state.is_some() => {
            return Err(CliError::Usage(
                "--state only applies to `jobs list`".into(),
            ));
        }
        _ => {}
    }
    let id = args.id.as_deref().unwrap_or_default();
    let (kind, job) = find(&client, id, args.kind).await?;
    let text = match args.action {
        Action::Show if args.json => format!("{}\n", job.raw),
        Action::Show => describe(&job),
        Action::Cancel => act(&client, kind, &job, "cancel").await?,
        Action::Retry => act(&client, kind, &job, "retry").await?,
        Action::Delete => {
            let path = format!("{}/{}", kind.collection(), encode(&job.id));
            client.send(client.request(Method::DELETE, &path)).await?;
            format!("deleted {} {}\n", kind.as_str(), job.id)
        }
        Action::List => String::new(),
    };
    out.write_all(text.as_bytes())
        .map_err(CliError::io("cannot write to stdout"))
}

/// The job with this id: an export, else an import (or only `kind`).
async fn find(client: &Client, id: &str, kind: Option<Kind>) -> Result<(Kind, Job), CliError> {
    let kinds = match kind {
        Some(kind) => vec![kind],
        None => vec![Kind::Export, Kind::Import],
    };
    let mut last = None;
    for kind in kinds {
        match client.job(kind, id).await {
            Ok(job) => return Ok((kind, job)),
            Err(CliError::Problem(problem)) if problem.status == 404 => last = Some(problem),
            Err(error) => return Err(error),
        }
    }
    match last {
        Some(mut problem) => {
            problem.detail = format!("no job {id} that you may see");
            Err(CliError::Problem(problem))
        }
        None => Err(CliError::Usage(format!("no job {id}"))),
    }
}

/// `POST …/{id}/cancel` or `…/retry`; says what became of the job.
async fn act(client: &Client, kind: Kind, job: &Job, action: &str) -> Result<String, CliError> {
    let path = format!("{}/{}/{action}", kind.collection(), encode(&job.id));
    let answer = client
        .send_json(client.request(Method::POST, &path), None)
        .await?;
    let job = Job::from_value(answer)?;
    let what = match (action, job.state.as_str()) {
        ("cancel", "cancelled") => "cancelled".to_owned(),
        ("cancel", state) => format!("cancellation requested ({state}; it stops within a second)"),
        (_, state) => format!("retried: {state}"),
    };
    Ok(format!("{} {} {what}\n", kind.as_str(), job.id))
}

/// Lists the jobs (of `--kind`, else both kinds merged) newest first.
async fn list(client: &Client, args: &Args, out: &mut dyn Write) -> Result<(), CliError> {
    let limit = args.limit as usize;
    let mut jobs = Vec::new();
    for kind in [Kind::Export, Kind::Import] {
        if args.kind.is_none_or(|k| k == kind) {
            jobs.extend(fetch(client, kind, args.state.as_deref(), limit).await?);
        }
    }
    jobs.sort_by(|a, b| b.id.cmp(&a.id));
    jobs.truncate(limit);
    let written = if args.json {
        jobs.iter().try_for_each(|job| writeln!(out, "{}", job.raw))
    } else {
        write!(out, "{}", table(&jobs))
    };
    written.map_err(CliError::io("cannot write to stdout"))
}

/// Up to `limit` jobs of `kind`, page by page.
async fn fetch(
    client: &Client,
    kind: Kind,
    state: Option<&str>,
    limit: usize,
) -> Result<Vec<Job>, CliError> {
    let mut jobs = Vec::new();
    let mut cursor: Option<String> = None;
    while jobs.len() < limit {
        let page = (limit - jobs.len()).min(MAX_PAGE).to_string();
        let mut query = vec![("limit", page)];
        query.extend(state.map(|s| ("state", s.to_owned())));
        query.extend(cursor.take().map(|c| ("cursor", c)));
        let query = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(&query)
            .finish();
        let request = client.request(Method::GET, &format!("{}?{query}", kind.collection()));
        let answer = client.send_json(request, None).await?;
        let items = answer.get("items").and_then(|i| i.as_array()).cloned();
        let Some(items) = items else {
            return Err(CliError::Protocol("a list without items".into()));
        };
        for item in items {
            jobs.push(Job::from_value(item)?);
        }
        cursor = answer
            .get("next_cursor")
            .and_then(|c| c.as_str())
            .map(str::to_owned);
        if cursor.is_none() {
            break;
        }
    }
    Ok(jobs)
}

/// The jobs as an aligned text table with a header line.
pub fn table(jobs: &[Job]) -> String {
    let header = ["ID", "KIND", "STATE", "NAME", "ROWS", "PROGRESS", "CREATED"].map(String::from);
    let rows: Vec<[String; 7]> = jobs.iter().map(row).collect();
    let mut widths = header.clone().map(|h| h.chars().count());
    for row in &rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let mut text = String::new();
    for row in std::iter::once(&header).chain(&rows) {
        let cells: Vec<String> = row
            .iter()
            .zip(widths)
            .enumerate()
            .map(|(i, (cell, width))| match i {
                4 | 5 => format!("{cell:>width$}"),
                _ => format!("{cell:<width$}"),
            })
            .collect();
        text.push_str(cells.join("  ").trim_end());
        text.push('\n');
    }
    text
}

fn row(job: &Job) -> [String; 7] {
    [
        job.id.clone(),
        job.kind.clone(),
        job.state.clone(),
        shorten(&job.name, NAME_WIDTH),
        job.progress.rows.to_string(),
        job.progress
            .percent
            .map(|p| format!("{p:.1}%"))
            .unwrap_or_else(|| "-".to_owned()),
        readable_time(&job.created_at),
    ]
}

/// `name` cut to `width` characters, with `…` when cut.
fn shorten(name: &str, width: usize) -> String {
    let single_line = name.replace(['\n', '\r', '\t'], " ");
    if single_line.chars().count() <= width {
        return single_line;
    }
    let mut short: String = single_line.chars().take(width.saturating_sub(1)).collect();
    short.push('…');
    short
}

/// `2026-12-02 18:47:01` (UTC) from RFC 3339; the text as it is when it cannot be read.
fn readable_time(text: &str) -> String {
    let format = time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]:[second]");
    OffsetDateTime::parse(text, &Rfc3339)
        .ok()
        .and_then(|t| t.to_offset(time::UtcOffset::UTC).format(&format).ok())
        .unwrap_or_else(|| text.to_owned())
}

/// A job for a human, one field a line.
fn describe(job: &Job) -> String {
    let mut lines = vec![
        ("id", job.id.clone()),
        ("kind", job.kind.clone()),
        ("name", job.name.clone()),
        ("state", job.state.clone()),
        ("progress", job_line(job)),
        (
            "attempt",
            format!("{} of {}", job.attempt, job.max_attempts),
        ),
    ];
    if let Some(error) = &job.error {
        lines.push(("error", format!("{}: {}", error.code, error.message)));
    }
    lines.extend(result_lines(job));
    lines.push(("created", readable_time(&job.created_at)));
    for (label, at) in [
        ("started", &job.started_at),
        ("finished", &job.finished_at),
        ("expires", &job.expires_at),
    ] {
        if let Some(at) = at {
            lines.push((label, readable_time(at)));
        }
    }
    lines
        .into_iter()
        .map(|(label, value)| format!("{label:<9} {value}\n"))
        .collect()
}

fn result_lines(job: &Job) -> Vec<(&'static str, String)> {
    let Some(result) = &job.result else {
        return Vec::new();
    };
    let text = |value: Option<&serde_json::Value>| match value {
        Some(serde_json::Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
        None => "-".to_owned(),
    };
    match job.kind() {
        Some(Kind::Export) => {
            let file = result.get("file");
            let field = |name: &str| text(file.and_then(|f| f.get(name)));
            vec![
                ("file", field("filename")),
                (
                    "size",
                    format!("{} bytes, {} rows", field("size_bytes"), field("rows")),
                ),
                ("sha256", field("sha256")),
                ("download", text(result.get("download_url"))),
            ]
        }
        Some(Kind::Import) => vec![
            ("table", text(result.get("table"))),
            ("inserted", text(result.get("rows_inserted"))),
            ("rejected", text(result.get("rows_rejected"))),
        ],
        None => vec![("result", result.to_string())],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn job(id: &str, kind: &str, name: &str, percent: Option<f64>) -> Job {
        Job::from_value(json!({
            "id": id, "kind": kind, "name": name, "state": "running",
            "progress": {"rows": 120000, "bytes": 1, "percent": percent},
            "created_at": "2026-12-02T18:47:01.123456Z"
        }))
        .unwrap()
    }

    #[test]
    fn the_table_aligns_columns_under_a_header_and_numbers_to_the_right() {
        let jobs = [
            job("b", "export", "Users", Some(24.0)),
            job("a", "import", "people.csv", None),
        ];
        assert_eq!(
            table(&jobs),
            "ID  KIND    STATE    NAME          ROWS  PROGRESS  CREATED\n\
             b   export  running  Users       120000     24.0%  2026-12-02 18:47:01\n\
             a   import  running  people.csv  120000         -  2026-12-02 18:47:01\n"
        );
    }

    #[test]
    fn an_empty_list_is_only_the_header() {
        assert_eq!(
            table(&[]),
            "ID  KIND  STATE  NAME  ROWS  PROGRESS  CREATED\n"
        );
    }

    #[test]
    fn long_names_are_cut_with_an_ellipsis_and_line_breaks_become_spaces() {
        assert_eq!(shorten("abcdef", 4), "abc…");
        assert_eq!(shorten("a\nb", 10), "a b");
        assert_eq!(shorten("abcd", 4), "abcd");
    }

    #[test]
    fn times_are_shown_in_utc_to_the_second() {
        assert_eq!(
            readable_time("2026-12-02T19:47:01.5+01:00"),
            "2026-12-02 18:47:01"
        );
        assert_eq!(readable_time("not a time"), "not a time");
    }

    #[test]
    fn a_job_is_described_one_field_a_line() {
        let text = describe(&job("a", "import", "people.csv", Some(50.0)));
        assert!(text.contains("state     running\n"), "{text}");
        assert!(
            text.contains("progress  running 120000 rows 50.0%\n"),
            "{text}"
        );
    }
}
