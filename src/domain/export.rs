//! An export request, parsed into what a worker needs.

use super::format::Format;
use super::generate::{self, GenerateSpec, RawGenerate};
use super::invalid::{Collector, Invalid};
use super::json::{object, optional_object};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// The longest job name a client may choose, in characters.
const MAX_NAME: usize = 200;
/// At most this many subjects in `share_with`.
const MAX_SHARES: usize = 100;

/// `POST /v1/exports` as the client sends it. Unknown fields are refused so that a typo never
/// silently changes what is exported.
#[derive(Debug, Clone, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({
    "name": "customers",
    "source": {"type": "generate", "rows": 1000, "seed": 7, "columns": [
        {"name": "id", "kind": "uuid"},
        {"name": "age", "kind": "int", "min": 18, "max": 90}
    ]},
    "format": "csv.gz"
}))]
pub struct ExportRequest {
    /// Optional; made from the source and the date otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(min_length = 1, max_length = 200)]
    pub name: Option<String>,
    /// Where the rows come from.
    #[serde(deserialize_with = "object")]
    pub source: RawSource,
    /// The file format.
    #[serde(default)]
    pub format: Format,
    /// CSV options (ignored for other formats).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "optional_object"
    )]
    pub csv: Option<CsvOptions>,
    /// Where to say that the export is done.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "optional_object"
    )]
    pub notify: Option<Notify>,
    /// Other subjects of the tenant who may see the job and fetch its file.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schema(max_items = 100)]
    pub share_with: Vec<String>,
}

/// The source of an export as the client sends it. Its OpenAPI schema is written by hand in
/// [`super::schema`]: the derived one would allow unknown fields that serde refuses.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum RawSource {
    /// An arbitrary query on a connection that allows it.
    Sql {
        connection: String,
        query: String,
        #[serde(default)]
        params: Vec<Value>,
    },
    /// A named query from configuration, with typed parameters.
    Template {
        template: String,
        #[serde(default)]
        params: Map<String, Value>,
    },
    /// Synthetic data.
    Generate(RawGenerateSource),
}

/// The generate source keeps the client's text so that `spec` echoes the request.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(transparent)]
pub struct RawGenerateSource(pub Value);

/// CSV options of an export.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CsvOptions {
    /// The field delimiter: one ASCII character.
    #[serde(default = "comma")]
    #[schema(min_length = 1, max_length = 1)]
    pub delimiter: String,
    /// Whether the first line names the columns.
    #[serde(default = "yes")]
    pub header: bool,
}

fn comma() -> String {
    ",".to_owned()
}

fn yes() -> bool {
    true
}

/// Notification targets of an export.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Notify {
    /// An http(s) URL to POST a signed event to when the job ends.
    #[serde(default)]
    pub webhook_url: Option<String>,
    /// An address to mail the download link (or the error) to when the job ends; needs
    /// `[email]` on the server.
    #[serde(default)]
    #[schema(format = Email, max_length = 254)]
    pub email: Option<String>,
}

/// A checked export: everything the worker needs, nothing it must check again.
#[derive(Debug, Clone, PartialEq)]
pub struct ExportSpec {
    /// The job's name, as chosen or made.
    pub name: String,
    /// Where the rows come from.
    pub source: Source,
    /// The file format (one this build can write).
    pub format: Format,
    /// The CSV field delimiter.
    pub delimiter: u8,
    /// Whether a CSV file starts with a header line.
    pub header: bool,
    /// Subjects the job is shared with.
    pub share_with: Vec<String>,
}

/// A checked source. Connection and template names are checked against configuration by the
/// caller, which knows it.
#[derive(Debug, Clone, PartialEq)]
pub enum Source {
    /// See [`RawSource::Sql`].
    Sql {
        connection: String,
        query: String,
        params: Vec<Value>,
    },
    /// See [`RawSource::Template`].
    Template {
        template: String,
        params: Map<String, Value>,
    },
    /// See [`RawSource::Generate`].
    Generate(GenerateSpec),
}

impl ExportRequest {
    /// Checks the request; `today` (`YYYY-MM-DD`) goes into a made-up name.
    pub fn parse(&self, today: &str) -> Result<ExportSpec, Invalid> {
        let mut errors = Collector::default();
        let source = match parse_source(&self.source) {
            Ok(source) => Some(source),
            Err(invalid) => {
                errors.extend(invalid);
                None
            }
        };
        if self.format.encoding().is_none() {
            errors.push(
                "format",
                format!(
                    "format {} is not supported yet; use csv, csv.gz, jsonl or jsonl.gz",
                    self.format.as_str()
                ),
            );
        }
        let csv = self.csv.clone().unwrap_or(CsvOptions {
            delimiter: comma(),
            header: true,
        });
        let delimiter = match csv.delimiter.as_bytes() {
            [b] if b.is_ascii() && !matches!(b, b'"' | b'\n' | b'\r') => *b,
            _ => {
                errors.push(
                    "csv.delimiter",
                    "must be one ASCII character other than a quote or a line break",
                );
                b','
            }
        };
        if let Some(name) = &self.name
            && (name.trim().is_empty() || name.chars().count() > MAX_NAME)
        {
            errors.push("name", format!("1 to {MAX_NAME} characters"));
        }
        if let Some(address) = self.notify.as_ref().and_then(|n| n.email.as_deref())
            && let Err(message) = super::targets::check_address(address)
        {
            errors.push("notify.email", message);
        }
        if self.share_with.len() > MAX_SHARES || self.share_with.iter().any(|s| s.is_empty()) {
            errors.push(
                "share_with",
                format!("at most {MAX_SHARES} non-empty subjects"),
            );
        }
        let Some(source) = source else {
            return Err(errors.into_invalid());
        };
        let name = match &self.name {
            Some(name) => name.trim().to_owned(),
            None => format!("{} — {today}", describe(&source)),
        };
        errors.finish(ExportSpec {
            name,
            source,
            format: self.format,
            delimiter,
            header: csv.header,
            share_with: self.share_with.clone(),
        })
    }
}

fn parse_source(raw: &RawSource) -> Result<Source, Invalid> {
    match raw {
        RawSource::Sql {
            connection,
            query,
            params,
        } => {
            if query.trim().is_empty() {
                return Err(Invalid::field("source.query", "must not be empty"));
            }
            Ok(Source::Sql {
                connection: connection.clone(),
                query: query.clone(),
                params: params.clone(),
            })
        }
        RawSource::Template { template, params } => Ok(Source::Template {
            template: template.clone(),
            params: params.clone(),
        }),
        RawSource::Generate(RawGenerateSource(value)) => {
            let raw: RawGenerate =
                object(strip_type(value)).map_err(|e| Invalid::field("source", e.to_string()))?;
            generate::parse(&raw, "source").map(Source::Generate)
        }
    }
}

/// The generate source arrives with its `type` tag still in it.
fn strip_type(value: &Value) -> Value {
    let mut value = value.clone();
    if let Value::Object(map) = &mut value {
        map.remove("type");
    }
    value
}

fn describe(source: &Source) -> String {
    match source {
        Source::Sql { connection, .. } => format!("Query on {connection}"),
        Source::Template { template, .. } => template.clone(),
        Source::Generate(_) => "Generated data".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(json: Value) -> Result<ExportRequest, serde_json::Error> {
        serde_json::from_value(json)
    }

    #[test]
    fn arrays_are_refused_where_the_request_has_objects() {
        let good = serde_json::json!({
            "source": {"type": "generate", "rows": 10, "columns": [{"name": "a", "kind": "int"}]},
            "csv": {"delimiter": ";"},
            "notify": {"email": null}
        });
        let req = request(good.clone()).unwrap();
        assert!(req.parse("2026-01-01").is_ok());
        for (pointer, array) in [
            ("/notify", serde_json::json!([null, null])),
            ("/csv", serde_json::json!([";", true])),
            ("/source", serde_json::json!(["sql", "main", "SELECT 1"])),
        ] {
            let mut bad = good.clone();
            *bad.pointer_mut(pointer).unwrap() = array;
            assert!(request(bad.clone()).is_err(), "{bad}");
        }
        // A column given as an array passes serde here (the source is kept as sent) and is
        // refused when the generate source is parsed.
        let mut bad = good;
        bad["source"]["columns"] = serde_json::json!([["a", "int"]]);
        let invalid = request(bad).unwrap().parse("2026-01-01").unwrap_err();
        assert!(invalid.to_string().contains("invalid type"), "{invalid}");
    }

    #[test]
    fn a_generate_request_parses_with_a_made_up_name() {
        let req = request(serde_json::json!({
            "source": {"type": "generate", "rows": 10, "seed": 42,
                       "columns": [{"name": "email", "kind": "email"}]},
            "format": "csv.gz"
        }))
        .unwrap();
        let spec = req.parse("2026-11-23").unwrap();
        assert_eq!(spec.name, "Generated data — 2026-11-23");
        assert_eq!(spec.format, Format::CsvGz);
        assert!(matches!(spec.source, Source::Generate(ref g) if g.rows == 10 && g.seed == 42));
    }

    #[test]
    fn unknown_fields_are_refused() {
        assert!(request(serde_json::json!({"source": {"type": "sql", "connection": "c", "query": "select 1", "bogus": 1}})).is_err());
        assert!(request(serde_json::json!({"source": {"type": "sql", "connection": "c", "query": "select 1"}, "colour": "red"})).is_err());
    }

    #[test]
    fn unsupported_formats_and_bad_delimiters_are_named() {
        let req = request(serde_json::json!({
            "source": {"type": "sql", "connection": "c", "query": "select 1"},
            "format": "parquet", "csv": {"delimiter": ";;"}
        }))
        .unwrap();
        let fields: Vec<String> = req
            .parse("d")
            .unwrap_err()
            .0
            .into_iter()
            .map(|e| e.field)
            .collect();
        assert_eq!(fields, ["format", "csv.delimiter"]);
    }
}
