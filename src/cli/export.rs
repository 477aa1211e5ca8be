//! `ferry export`: builds a SPEC §3.1 request from the flags, creates the export, prints its id
//! and, with `--wait` or `-o`, follows it to the end; `-o FILE` then downloads the file (through
//! `GET /v1/exports/{id}/download`, streamed to a temporary file beside FILE and renamed at the
//! end, its SHA-256 checked), `-o -` to stdout. `--spec FILE` sends a whole request written as
//! JSON instead of the source flags: a zip bundle (`"format": "zip"`, `"files"`), or anything
//! else the API takes that has no flag.

use super::client::{CliError, Client, ClientArgs, Job, Kind, encode};
use super::download::{Destination, download};
use super::progress::follow;
use clap::ArgGroup;
use reqwest::Method;
use serde_json::{Map, Value, json};
use std::io::Write;
use std::path::PathBuf;

/// Options of `ferry export`.
#[derive(Debug, clap::Args)]
#[command(group(
    ArgGroup::new("source")
        .required(true)
        .args(["template", "sql", "generate", "spec"])
))]
pub struct Args {
    #[command(flatten)]
    pub client: ClientArgs,
    /// A template from the server's configuration.
    #[arg(long, value_name = "NAME")]
    pub template: Option<String>,
    /// A template parameter as KEY=VALUE (repeat for more; the server types the values).
    #[arg(long = "param", value_name = "KEY=VALUE", requires = "template")]
    pub params: Vec<String>,
    /// The data connection of `--sql`.
    #[arg(long, value_name = "C", requires = "sql")]
    pub connection: Option<String>,
    /// An SQL query (on a connection that allows SQL).
    #[arg(long, value_name = "QUERY", requires = "connection")]
    pub sql: Option<String>,
    /// A synthetic column as COLUMN:KIND (uuid, int, float, bool, name, email, company, city,
    /// country, phone, date, timestamp, text, json); repeat once per column.
    #[arg(long = "generate", value_name = "COLUMN:KIND", requires = "rows")]
    pub generate: Vec<String>,
    /// Rows of synthetic data.
    #[arg(long, value_name = "N", requires = "generate")]
    pub rows: Option<u64>,
    /// The seed of the synthetic data (the same seed gives the same file).
    #[arg(long, requires = "generate")]
    pub seed: Option<u64>,
    /// A JSON export request (SPEC §3.1), e.g. a zip bundle with its `files`; --format and
    /// --name override its own.
    #[arg(long, value_name = "REQUEST.json")]
    pub spec: Option<PathBuf>,
    /// csv, csv.gz, jsonl, jsonl.gz, parquet, xlsx, zip (the server's default when left out: csv).
    #[arg(long, value_name = "F")]
    pub format: Option<String>,
    /// The job's name.
    #[arg(long, value_name = "N")]
    pub name: Option<String>,
    /// Follow the job to its end; exit 0 only if it succeeded.
    #[arg(long)]
    pub wait: bool,
    /// Download the file here when it is ready (implies --wait); `-` for stdout.
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    pub output: Option<String>,
}

/// Runs `ferry export`.
pub async fn run(args: &Args, out: &mut dyn Write, err: &mut dyn Write) -> Result<(), CliError> {
    let client = Client::new(&args.client)?;
    let request = request(args)?;
    let created = client
        .send_json(client.request(Method::POST, "/v1/exports"), Some(&request))
        .await?;
    let job = Job::from_value(created)?;
    let to_stdout = args.output.as_deref() == Some("-");
    let id_to: &mut dyn Write = if to_stdout { &mut *err } else { &mut *out };
    writeln!(id_to, "{}", job.id).map_err(CliError::io("cannot write the job id"))?;
    id_to
        .flush()
        .map_err(CliError::io("cannot write the job id"))?;
    if !args.wait && args.output.is_none() {
        return Ok(());
    }
    let job = follow(&client, Kind::Export, &job.id, err).await?;
    if job.state != "succeeded" {
        return Err(CliError::JobFailed(format!(
            "export {} {}",
            job.id,
            job.failure()
        )));
    }
    let Some(output) = &args.output else {
        return Ok(());
    };
    let file = job.result.as_ref().and_then(|r| r.get("file"));
    let path = format!("/v1/exports/{}/download", encode(&job.id));
    let destination = match output.as_str() {
        "-" => Destination::Writer(out),
        path => Destination::File(path.into()),
    };
    let saved = download(&client, &path, file, destination).await?;
    if output != "-" {
        writeln!(err, "saved {output} ({saved} bytes)")
            .map_err(CliError::io("cannot write to stderr"))?;
    }
    Ok(())
}

/// The request body of `POST /v1/exports`: the `--spec` file's, or one source from the flags;
/// `--format` and `--name` written over either.
fn request(args: &Args) -> Result<Value, CliError> {
    let mut body = match &args.spec {
        Some(path) => match super::client::read_json(path, "an export request")? {
            Value::Object(map) => map,
            _ => return Err(CliError::Usage("--spec must hold a JSON object".into())),
        },
        None => {
            let mut body = Map::new();
            body.insert("source".into(), source(args)?);
            body
        }
    };
    if let Some(format) = &args.format {
        body.insert("format".into(), format.as_str().into());
    }
    if let Some(name) = &args.name {
        body.insert("name".into(), name.as_str().into());
    }
    Ok(Value::Object(body))
}

/// The source the flags describe.
fn source(args: &Args) -> Result<Value, CliError> {
    let source = if let Some(template) = &args.template {
        json!({"type": "template", "template": template, "params": params(&args.params)?})
    } else if let (Some(connection), Some(query)) = (&args.connection, &args.sql) {
        json!({"type": "sql", "connection": connection, "query": query})
    } else {
        let columns: Vec<Value> = args
            .generate
            .iter()
            .map(|c| super::generate::column(c))
            .collect();
        let mut source = json!({"type": "generate", "rows": args.rows, "columns": columns});
        if let (Some(seed), Value::Object(map)) = (args.seed, &mut source) {
            map.insert("seed".into(), seed.into());
        }
        source
    };
    Ok(source)
}

/// `--param k=v` flags as a JSON object of strings (the server types them by the template).
pub fn params(flags: &[String]) -> Result<Map<String, Value>, CliError> {
    let mut params = Map::new();
    for flag in flags {
        let Some((key, value)) = flag.split_once('=') else {
            return Err(CliError::Usage(format!(
                "--param {flag:?} must be KEY=VALUE"
            )));
        };
        let key = key.trim();
        if key.is_empty() {
            return Err(CliError::Usage(format!("--param {flag:?} has no key")));
        }
        if params.insert(key.to_owned(), value.into()).is_some() {
            return Err(CliError::Usage(format!("--param {key} is given twice")));
        }
    }
    Ok(params)
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

    fn parse(argv: &[&str]) -> Result<Args, clap::Error> {
        Cli::try_parse_from(std::iter::once("export").chain(argv.iter().copied())).map(|c| c.args)
    }

    #[test]
    fn params_are_split_at_the_first_equals_sign_and_kept_as_strings() {
        let flags = vec![
            "plan=pro".to_owned(),
            "filter=a=b".to_owned(),
            "n=42".to_owned(),
        ];
        assert_eq!(
            Value::Object(params(&flags).unwrap()),
            json!({"plan": "pro", "filter": "a=b", "n": "42"})
        );
    }

    #[test]
    fn a_param_without_equals_or_key_or_given_twice_is_a_usage_error() {
        for flags in [vec!["plan"], vec!["=x"], vec!["a=1", "a=2"]] {
            let flags: Vec<String> = flags.into_iter().map(String::from).collect();
            assert!(
                matches!(params(&flags), Err(CliError::Usage(_))),
                "{flags:?}"
            );
        }
    }

    #[test]
    fn generate_flags_make_a_generate_source_with_one_column_per_flag() {
        let args = parse(&[
            "--generate",
            "id:uuid",
            "--generate",
            "email:email",
            "--rows",
            "10",
            "--seed",
            "7",
            "--format",
            "csv.gz",
            "--name",
            "test",
        ])
        .unwrap();
        assert_eq!(
            request(&args).unwrap(),
            json!({
                "source": {"type": "generate", "rows": 10, "seed": 7, "columns": [
                    {"name": "id", "kind": "uuid"}, {"name": "email", "kind": "email"}]},
                "format": "csv.gz", "name": "test"
            })
        );
    }

    #[test]
    fn sql_and_template_flags_make_their_sources() {
        let sql = parse(&["--connection", "local", "--sql", "SELECT 1"]).unwrap();
        assert_eq!(
            request(&sql).unwrap(),
            json!({"source": {"type": "sql", "connection": "local", "query": "SELECT 1"}})
        );
        let template = parse(&["--template", "users", "--param", "plan=pro"]).unwrap();
        assert_eq!(
            request(&template).unwrap(),
            json!({"source": {"type": "template", "template": "users", "params": {"plan": "pro"}}})
        );
    }

    #[test]
    fn a_spec_file_is_sent_as_it_is_with_format_and_name_written_over_it() {
        let path = std::env::temp_dir().join(format!("ferry-spec-{}.json", uuid::Uuid::new_v4()));
        let bundle = json!({"format": "zip", "name": "monthly", "files": [
            {"name": "users", "format": "csv", "source": {"type": "sql", "connection": "local", "query": "SELECT 1"}}]});
        std::fs::write(&path, bundle.to_string()).unwrap();
        let spec = path.to_str().unwrap();
        assert_eq!(request(&parse(&["--spec", spec]).unwrap()).unwrap(), bundle);
        let renamed = parse(&["--spec", spec, "--name", "june", "--format", "zip"]).unwrap();
        let mut expected = bundle.clone();
        expected["name"] = json!("june");
        assert_eq!(request(&renamed).unwrap(), expected);
        std::fs::write(&path, "[1, 2]").unwrap();
        assert!(matches!(
            request(&parse(&["--spec", spec]).unwrap()),
            Err(CliError::Usage(_))
        ));
        std::fs::write(&path, "{\"format\": ").unwrap();
        let broken = request(&parse(&["--spec", spec]).unwrap());
        std::fs::remove_file(&path).unwrap();
        assert!(matches!(broken, Err(CliError::Usage(_))));
    }

    #[test]
    fn a_spec_file_takes_the_place_of_the_source_flags() {
        assert!(parse(&["--spec", "b.json", "--template", "t"]).is_err());
        assert!(parse(&["--spec", "b.json", "--connection", "c", "--sql", "q"]).is_err());
        assert!(parse(&["--spec", "b.json", "--generate", "id:uuid", "--rows", "1"]).is_err());
    }

    #[test]
    fn exactly_one_source_is_required() {
        assert!(parse(&[]).is_err());
        assert!(parse(&["--template", "t", "--connection", "c", "--sql", "q"]).is_err());
        assert!(
            parse(&["--generate", "id:uuid"]).is_err(),
            "--rows is required"
        );
        assert!(
            parse(&["--sql", "SELECT 1"]).is_err(),
            "--connection is required"
        );
    }
}
