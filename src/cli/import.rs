//! `ferry import FILE`: streams the file (never read whole) to `POST /v1/imports` as
//! `multipart/form-data` — a `spec` part built from the flags (or a `--spec` file they
//! override), then a `file` part — showing the bytes sent, prints the job's id and, with
//! `--wait` or `--rejects`, follows it, saves the rejects report and says rows inserted and
//! rejected.

use super::client::{CliError, Client, ClientArgs, Job, Kind, encode};
use super::download::{Destination, download};
use super::progress::{Display, follow};
use super::resumable;
use futures::StreamExt;
use reqwest::Method;
use reqwest::multipart::{Form, Part};
use serde_json::{Map, Value, json};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// How often the upload display looks at the bytes sent.
const UPLOAD_TICK: Duration = Duration::from_millis(200);

/// Options of `ferry import`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub client: ClientArgs,
    /// The CSV file to upload (gzip welcome).
    pub file: PathBuf,
    /// The data connection (may be left out when the server has exactly one).
    #[arg(long, value_name = "C")]
    pub connection: Option<String>,
    /// The target table.
    #[arg(long, value_name = "T", required_unless_present = "spec")]
    pub table: Option<String>,
    /// Create the table from the file if it does not exist.
    #[arg(long)]
    pub create: bool,
    /// append (default), replace or upsert.
    #[arg(long, value_name = "M")]
    pub mode: Option<String>,
    /// A key column of an upsert; repeat for more.
    #[arg(long = "key", value_name = "K")]
    pub keys: Vec<String>,
    /// The file's text encoding, any WHATWG label (utf-8, the default; utf-16; latin-1;
    /// windows-1252; …); a byte order mark in the file overrides it.
    #[arg(long, value_name = "LABEL")]
    pub encoding: Option<String>,
    /// A JSON import spec (SPEC §4.1); the flags above override its target, mode, key and
    /// encoding.
    #[arg(long, value_name = "SPEC.json")]
    pub spec: Option<PathBuf>,
    /// Follow the job to its end; exit 0 only if it succeeded.
    #[arg(long)]
    pub wait: bool,
    /// Save the rejected rows here, if there are any (implies --wait).
    #[arg(long, value_name = "FILE")]
    pub rejects: Option<PathBuf>,
    /// Send the file in parts that survive an interruption: running the same command again
    /// continues the upload (files of 256 MiB and more always go this way).
    #[arg(long)]
    pub resumable: bool,
    /// Continue the resumable upload of this import (its job id) instead of the one the state
    /// file remembers.
    #[arg(long, value_name = "ID")]
    pub resume: Option<String>,
    /// Where resumable uploads are remembered (default `$XDG_STATE_HOME/ferry` or
    /// `~/.local/state/ferry`).
    #[arg(long, value_name = "DIR", env = "FERRY_STATE_DIR")]
    pub state_dir: Option<PathBuf>,
}

/// Runs `ferry import`.
pub async fn run(args: &Args, out: &mut dyn Write, err: &mut dyn Write) -> Result<(), CliError> {
    let client = Client::new(&args.client)?;
    let base = match &args.spec {
        Some(path) => Some(super::client::read_json(path, "an import spec")?),
        None => None,
    };
    let spec = spec(base, args)?;
    let job = if in_parts(args)? {
        let state_dir = args.state_dir.clone().or_else(resumable::default_state_dir);
        let resume = args.resume.as_deref();
        resumable::upload(
            &client,
            &args.file,
            &spec,
            resume,
            state_dir.as_deref(),
            err,
        )
        .await?
    } else {
        upload(&client, &args.file, &spec, err).await?
    };
    writeln!(out, "{}", job.id).map_err(CliError::io("cannot write the job id"))?;
    out.flush()
        .map_err(CliError::io("cannot write the job id"))?;
    if !args.wait && args.rejects.is_none() {
        return Ok(());
    }
    let job = follow(&client, Kind::Import, &job.id, err).await?;
    let (inserted, rejected) = counts(&job);
    if let Some(path) = &args.rejects {
        let saved = save_rejects(&client, &job.id, rejected, path, err).await;
        match saved {
            Err(error) if job.state != "succeeded" => {
                // The job's own failure is what matters; say why there is no report beside it.
                let _ = writeln!(err, "rejects not saved: {error}");
            }
            other => other?,
        }
    }
    if job.state != "succeeded" {
        return Err(CliError::JobFailed(format!(
            "import {} {}",
            job.id,
            job.failure()
        )));
    }
    writeln!(err, "{inserted} rows inserted, {rejected} rejected")
        .map_err(CliError::io("cannot write to stderr"))
}

/// Whether the file goes in resumable parts: asked for, or large.
fn in_parts(args: &Args) -> Result<bool, CliError> {
    if args.resumable || args.resume.is_some() {
        return Ok(true);
    }
    let meta = std::fs::metadata(&args.file)
        .map_err(CliError::io(format!("cannot read {}", args.file.display())))?;
    Ok(meta.len() >= resumable::RESUMABLE_FROM)
}

/// The spec part: `base` (from `--spec`) with the flags written over it.
fn spec(base: Option<Value>, args: &Args) -> Result<Value, CliError> {
    let mut spec = match base {
        None => Map::new(),
        Some(Value::Object(map)) => map,
        Some(_) => return Err(CliError::Usage("--spec must hold a JSON object".into())),
    };
    let target = spec
        .entry("target")
        .or_insert_with(|| Value::Object(Map::new()));
    let Value::Object(target) = target else {
        return Err(CliError::Usage(
            "the --spec file's target must be an object".into(),
        ));
    };
    if let Some(connection) = &args.connection {
        target.insert("connection".into(), connection.as_str().into());
    }
    if let Some(table) = &args.table {
        target.insert("table".into(), table.as_str().into());
    }
    if args.create {
        target.insert("create".into(), true.into());
    }
    if let Some(mode) = &args.mode {
        spec.insert("mode".into(), mode.as_str().into());
    }
    if !args.keys.is_empty() {
        spec.insert("key".into(), json!(args.keys));
    }
    if let Some(encoding) = &args.encoding {
        let format = spec
            .entry("format")
            .or_insert_with(|| Value::Object(Map::new()));
        let Value::Object(format) = format else {
            return Err(CliError::Usage(
                "the --spec file's format must be an object".into(),
            ));
        };
        format.insert("encoding".into(), encoding.as_str().into());
    }
    Ok(Value::Object(spec))
}

/// Streams `path` with `spec`, showing the bytes sent; returns the created job.
async fn upload(
    client: &Client,
    path: &Path,
    spec: &Value,
    err: &mut dyn Write,
) -> Result<Job, CliError> {
    let context = || format!("cannot read {}", path.display());
    let file = tokio::fs::File::open(path)
        .await
        .map_err(CliError::io(context()))?;
    let size = file
        .metadata()
        .await
        .map_err(CliError::io(context()))?
        .len();
    let sent = Arc::new(AtomicU64::new(0));
    let counter = sent.clone();
    let body = tokio_util::io::ReaderStream::new(file).inspect(move |chunk| {
        if let Ok(chunk) = chunk {
            counter.fetch_add(chunk.len() as u64, Ordering::Relaxed);
        }
    });
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "upload.csv".to_owned());
    let file = Part::stream_with_length(reqwest::Body::wrap_stream(body), size);
    let request = request(client, spec, &name, file)?;
    let mut display = Display::for_stderr();
    display.upload(0, size, err);
    let sending = client.send(request);
    tokio::pin!(sending);
    let mut tick = tokio::time::interval(UPLOAD_TICK);
    let response = loop {
        tokio::select! {
            response = &mut sending => break response,
            _ = tick.tick() => display.upload(sent.load(Ordering::Relaxed), size, err),
        }
    };
    let response = match response {
        Err(broken @ CliError::Broken { .. }) => {
            display.finish();
            return Err(refusal(client, spec, &name).await.unwrap_or(broken));
        }
        other => other?,
    };
    display.upload(sent.load(Ordering::Relaxed), size, err);
    display.finish();
    Job::from_value(client.read_json(response).await?)
}

/// `POST /v1/imports` with the `spec` part, then `file` as the `file` part named `name`.
fn request(
    client: &Client,
    spec: &Value,
    name: &str,
    file: Part,
) -> Result<reqwest::RequestBuilder, CliError> {
    let invalid = |e: reqwest::Error| CliError::Protocol(e.to_string());
    let spec = Part::text(spec.to_string())
        .mime_str("application/json")
        .map_err(invalid)?;
    let file = file
        .file_name(name.to_owned())
        .mime_str("text/csv")
        .map_err(invalid)?;
    Ok(client
        .request(Method::POST, "/v1/imports")
        .header(reqwest::header::ACCEPT, "application/json")
        .multipart(Form::new().part("spec", spec).part("file", file)))
}

/// Why the server cut an upload short, if it refused it. Ferry checks the spec before it keeps
/// a byte and answers at once when it refuses one, closing the connection; while the file is
/// still being sent that answer can be lost in the broken pipe. The same spec with an empty
/// file gets the same answer about the spec, and is refused (`empty_file`) when the spec is
/// fine — either way nothing is stored.
async fn refusal(client: &Client, spec: &Value, name: &str) -> Option<CliError> {
    let request = request(client, spec, name, Part::bytes(Vec::new())).ok()?;
    match client.send(request).await {
        Err(CliError::Problem(problem)) if problem.code != "empty_file" => {
            Some(CliError::Problem(problem))
        }
        Ok(accepted) => {
            // A server that takes an empty file made a job of it: remove it again.
            let job = Job::from_value(client.read_json(accepted).await.ok()?).ok()?;
            let path = format!("/v1/imports/{}", encode(&job.id));
            let _ = client.send(client.request(Method::DELETE, &path)).await;
            None
        }
        Err(_) => None,
    }
}

/// Rows inserted and rejected, from the result or else the progress.
fn counts(job: &Job) -> (u64, u64) {
    let from_result = |field: &str| {
        job.result
            .as_ref()
            .and_then(|r| r.get(field))
            .and_then(Value::as_u64)
    };
    let inserted = from_result("rows_inserted")
        .or(job.progress.rows_inserted)
        .unwrap_or(0);
    let rejected = from_result("rows_rejected")
        .or(job.progress.rows_rejected)
        .unwrap_or(0);
    (inserted, rejected)
}

async fn save_rejects(
    client: &Client,
    id: &str,
    rejected: u64,
    path: &Path,
    err: &mut dyn Write,
) -> Result<(), CliError> {
    let line = if rejected == 0 {
        format!("no rejected rows; {} not written", path.display())
    } else {
        let rejects = format!("/v1/imports/{}/rejects", encode(id));
        download(client, &rejects, None, Destination::File(path.into())).await?;
        format!("{rejected} rejected rows saved to {}", path.display())
    };
    writeln!(err, "{line}").map_err(CliError::io("cannot write to stderr"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: Args,
    }

    fn parse(argv: &[&str]) -> Args {
        Cli::try_parse_from(std::iter::once("import").chain(argv.iter().copied()))
            .unwrap()
            .args
    }

    #[test]
    fn flags_make_the_spec() {
        let args = parse(&[
            "people.csv",
            "--connection",
            "local",
            "--table",
            "people",
            "--create",
            "--mode",
            "upsert",
            "--key",
            "id",
            "--key",
            "day",
        ]);
        assert_eq!(
            spec(None, &args).unwrap(),
            json!({"target": {"connection": "local", "table": "people", "create": true},
                   "mode": "upsert", "key": ["id", "day"]})
        );
    }

    #[test]
    fn flags_override_the_spec_file_and_keep_the_rest_of_it() {
        let args = parse(&["people.csv", "--spec", "s.json", "--table", "people"]);
        let base = json!({"target": {"connection": "main", "table": "old"}, "mode": "replace",
                          "max_errors": 5});
        assert_eq!(
            spec(Some(base), &args).unwrap(),
            json!({"target": {"connection": "main", "table": "people"}, "mode": "replace",
                   "max_errors": 5})
        );
    }

    #[test]
    fn the_encoding_flag_goes_into_the_specs_format() {
        let args = parse(&["people.csv", "--table", "people", "--encoding", "latin-1"]);
        let base = json!({"target": {"table": "people"}, "format": {"delimiter": ";"}});
        assert_eq!(
            spec(Some(base), &args).unwrap(),
            json!({"target": {"table": "people"},
                   "format": {"delimiter": ";", "encoding": "latin-1"}})
        );
        assert_eq!(
            spec(None, &args).unwrap()["format"],
            json!({"encoding": "latin-1"})
        );
    }

    #[test]
    fn a_spec_that_is_not_an_object_is_a_usage_error() {
        let args = parse(&["people.csv", "--table", "people"]);
        assert!(matches!(
            spec(Some(json!([1])), &args),
            Err(CliError::Usage(_))
        ));
        assert!(matches!(
            spec(Some(json!({"target": "x"})), &args),
            Err(CliError::Usage(_))
        ));
    }

    #[test]
    fn the_table_is_required_without_a_spec_file() {
        assert!(Cli::try_parse_from(["import", "people.csv"]).is_err());
    }
}
