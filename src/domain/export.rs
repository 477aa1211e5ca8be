//! An export request, parsed into what a worker needs.

use super::format::Format;
use super::generate::{self, GenerateSpec, RawGenerate};
use super::invalid::{Collector, Invalid};
use super::json::{object, objects, optional_object};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// The longest job name a client may choose, in characters.
const MAX_NAME: usize = 200;
/// At most this many subjects in `share_with`.
const MAX_SHARES: usize = 100;
/// At most this many files in a bundle.
pub const MAX_FILES: usize = 32;
/// The longest name of a bundle's file, in characters (before its extension).
const MAX_FILE_NAME: usize = 100;

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
    /// Where the rows come from (every format but `zip`).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "optional_object"
    )]
    pub source: Option<RawSource>,
    /// The file format; `zip` makes a bundle of `files`.
    #[serde(default)]
    pub format: Format,
    /// A bundle's files (`"format": "zip"` only), written in turn into one zip.
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "objects"
    )]
    #[schema(max_items = 32)]
    pub files: Vec<RawFile>,
    /// Compression options (gzip and zip levels, Parquet's zstd level).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "optional_object"
    )]
    pub compression: Option<CompressionOptions>,
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

/// One file of a bundle: `{name}.{extension of format}` in the zip.
#[derive(Debug, Clone, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RawFile {
    /// The file's name in the zip, without extension: no `/`, `\\` or control characters, not
    /// starting with a dot, unique in the bundle.
    #[schema(min_length = 1, max_length = 100)]
    pub name: String,
    /// Where its rows come from.
    #[serde(deserialize_with = "object")]
    pub source: RawSource,
    /// Its format (any but `zip`).
    #[serde(default)]
    pub format: Format,
    /// CSV options (ignored for other formats).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "optional_object"
    )]
    pub csv: Option<CsvOptions>,
}

/// Compression options of an export.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CompressionOptions {
    /// gzip level (`csv.gz`, `jsonl.gz`) and a bundle's deflate level, 1 (fastest) to 9
    /// (smallest), default 1; Parquet's zstd level, 1 to 22, default 1.
    #[schema(minimum = 1, maximum = 22)]
    pub level: u32,
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
    /// The file format; [`Format::Zip`] for a bundle.
    pub format: Format,
    /// The file's one part, or a bundle's files in order.
    pub parts: Vec<Part>,
    /// The compression level the request chose, if any (range checked for the formats).
    pub level: Option<u32>,
    /// Subjects the job is shared with.
    pub share_with: Vec<String>,
}

/// One source written in one format: the whole file, or one file of a bundle.
#[derive(Debug, Clone, PartialEq)]
pub struct Part {
    /// A bundle file's name, without extension; `None` for a single file.
    pub name: Option<String>,
    /// Where the rows come from.
    pub source: Source,
    /// The format (never [`Format::Zip`]).
    pub format: Format,
    /// The CSV field delimiter.
    pub delimiter: u8,
    /// Whether a CSV file starts with a header line.
    pub header: bool,
    /// Where the source is in the request (`source`, `files[2].source`), for error fields.
    pub field: String,
}

impl Part {
    /// A bundle file's name in the zip: `{name}.{extension}`.
    pub fn file_name(&self) -> String {
        format!(
            "{}.{}",
            self.name.as_deref().unwrap_or("export"),
            self.format.as_str()
        )
    }
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
        let parts = match self.format {
            Format::Zip => self.bundle_parts(&mut errors),
            _ => self.single_part(&mut errors).into_iter().collect(),
        };
        let level = self.compression.as_ref().map(|c| c.level);
        let most = if self.format == Format::Parquet {
            22
        } else {
            9
        };
        if level.is_some_and(|level| !(1..=most).contains(&level)) {
            errors.push(
                "compression.level",
                format!("1 to {most} for {}", self.format.as_str()),
            );
        }
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
        if parts.is_empty() {
            return Err(errors.into_invalid());
        }
        let name = match &self.name {
            Some(name) => name.trim().to_owned(),
            None => format!("{} — {today}", describe(self.format, &parts)),
        };
        errors.finish(ExportSpec {
            name,
            format: self.format,
            parts,
            level,
            share_with: self.share_with.clone(),
        })
    }

    /// The one part of a single-file export.
    fn single_part(&self, errors: &mut Collector) -> Option<Part> {
        if !self.files.is_empty() {
            errors.push("files", "only a zip bundle (\"format\": \"zip\") has files");
        }
        let Some(raw) = &self.source else {
            errors.push("source", "missing");
            return None;
        };
        part(None, raw, self.format, self.csv.as_ref(), "source", errors)
    }

    /// The parts of a bundle, one per file.
    fn bundle_parts(&self, errors: &mut Collector) -> Vec<Part> {
        if self.source.is_some() {
            errors.push("source", "a zip bundle takes its sources in files");
        }
        if self.files.is_empty() || self.files.len() > MAX_FILES {
            errors.push("files", format!("1 to {MAX_FILES} files"));
        }
        let mut parts: Vec<Part> = Vec::with_capacity(self.files.len());
        for (i, file) in self.files.iter().enumerate() {
            let at = format!("files[{i}]");
            if let Err(message) = check_file_name(&file.name) {
                errors.push(format!("{at}.name"), message);
            }
            if file.format == Format::Zip {
                errors.push(format!("{at}.format"), "a bundle's file cannot be a zip");
                continue;
            }
            let field = format!("{at}.source");
            let Some(part) = part(
                Some(&file.name),
                &file.source,
                file.format,
                file.csv.as_ref(),
                &field,
                errors,
            ) else {
                continue;
            };
            if parts
                .iter()
                .any(|p| p.file_name().eq_ignore_ascii_case(&part.file_name()))
            {
                errors.push(
                    format!("{at}.name"),
                    format!("{} is in the bundle twice", part.file_name()),
                );
            }
            parts.push(part);
        }
        parts
    }
}

/// Checks one part's source and CSV options; errors are named under `field`'s parent.
fn part(
    name: Option<&String>,
    raw: &RawSource,
    format: Format,
    csv: Option<&CsvOptions>,
    field: &str,
    errors: &mut Collector,
) -> Option<Part> {
    let parent = field.strip_suffix("source").unwrap_or("");
    let csv = csv.cloned().unwrap_or(CsvOptions {
        delimiter: comma(),
        header: true,
    });
    let delimiter = match csv.delimiter.as_bytes() {
        [b] if b.is_ascii() && !matches!(b, b'"' | b'\n' | b'\r') => *b,
        _ => {
            errors.push(
                format!("{parent}csv.delimiter"),
                "must be one ASCII character other than a quote or a line break",
            );
            b','
        }
    };
    let source = match parse_source(raw, field) {
        Ok(source) => source,
        Err(invalid) => {
            errors.extend(invalid);
            return None;
        }
    };
    Some(Part {
        name: name.map(|n| n.trim().to_owned()),
        source,
        format,
        delimiter,
        header: csv.header,
        field: field.to_owned(),
    })
}

/// A bundle file's name: safe as a path inside any zip tool's output folder.
fn check_file_name(name: &str) -> Result<(), String> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > MAX_FILE_NAME {
        return Err(format!("1 to {MAX_FILE_NAME} characters"));
    }
    if name.starts_with('.')
        || name
            .chars()
            .any(|c| matches!(c, '/' | '\\') || c.is_control())
    {
        return Err("no /, \\ or control characters, and not starting with a dot".to_owned());
    }
    Ok(())
}

fn parse_source(raw: &RawSource, field: &str) -> Result<Source, Invalid> {
    match raw {
        RawSource::Sql {
            connection,
            query,
            params,
        } => {
            if query.trim().is_empty() {
                return Err(Invalid::field(
                    format!("{field}.query"),
                    "must not be empty",
                ));
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
                object(strip_type(value)).map_err(|e| Invalid::field(field, e.to_string()))?;
            generate::parse(&raw, field).map(Source::Generate)
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

fn describe(format: Format, parts: &[Part]) -> String {
    match (format, parts) {
        (Format::Zip, _) | (_, []) => format!("Bundle of {} files", parts.len()),
        (_, [first, ..]) => describe_source(&first.source),
    }
}

fn describe_source(source: &Source) -> String {
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
        assert!(
            matches!(spec.parts[0].source, Source::Generate(ref g) if g.rows == 10 && g.seed == 42)
        );
    }

    #[test]
    fn unknown_fields_are_refused() {
        assert!(request(serde_json::json!({"source": {"type": "sql", "connection": "c", "query": "select 1", "bogus": 1}})).is_err());
        assert!(request(serde_json::json!({"source": {"type": "sql", "connection": "c", "query": "select 1"}, "colour": "red"})).is_err());
    }

    fn fields(json: Value) -> Vec<String> {
        request(json)
            .unwrap()
            .parse("d")
            .unwrap_err()
            .0
            .into_iter()
            .map(|e| e.field)
            .collect()
    }

    #[test]
    fn bad_delimiters_and_compression_levels_are_named() {
        let fields = fields(serde_json::json!({
            "source": {"type": "sql", "connection": "c", "query": "select 1"},
            "format": "csv.gz", "csv": {"delimiter": ";;"}, "compression": {"level": 10}
        }));
        assert_eq!(fields, ["csv.delimiter", "compression.level"]);
        let parquet = request(serde_json::json!({
            "source": {"type": "sql", "connection": "c", "query": "select 1"},
            "format": "parquet", "compression": {"level": 19}
        }))
        .unwrap();
        assert_eq!(parquet.parse("d").unwrap().level, Some(19));
    }

    #[test]
    fn a_bundle_parses_its_files_in_order_with_their_own_formats() {
        let req = request(serde_json::json!({
            "format": "zip",
            "files": [
                {"name": "users", "source": {"type": "sql", "connection": "c", "query": "select 1"}, "format": "csv"},
                {"name": "orders", "source": {"type": "generate", "rows": 5, "columns": [{"name": "a", "kind": "int"}]}, "format": "xlsx"}
            ]
        }))
        .unwrap();
        let spec = req.parse("2026-12-02").unwrap();
        assert_eq!(spec.name, "Bundle of 2 files — 2026-12-02");
        let names: Vec<String> = spec.parts.iter().map(Part::file_name).collect();
        assert_eq!(names, ["users.csv", "orders.xlsx"]);
        assert_eq!(spec.parts[1].field, "files[1].source");
    }

    #[test]
    fn bundles_refuse_nesting_duplicates_unsafe_names_and_a_lone_source() {
        let generate = serde_json::json!({"type": "generate", "rows": 1, "columns": [{"name": "a", "kind": "int"}]});
        let bundle = fields(serde_json::json!({
            "format": "zip",
            "source": generate,
            "files": [
                {"name": "a", "source": generate},
                {"name": "A", "source": generate},
                {"name": "../etc", "source": generate},
                {"name": "inner", "source": generate, "format": "zip"},
                {"name": "bad", "source": {"type": "generate", "rows": 1, "columns": []}}
            ]
        }));
        assert_eq!(
            bundle,
            [
                "source",
                "files[1].name",
                "files[2].name",
                "files[3].format",
                "files[4].source.columns"
            ]
        );
        assert_eq!(fields(serde_json::json!({"format": "zip"})), ["files"]);
        let single = fields(
            serde_json::json!({"format": "csv", "files": [{"name": "a", "source": generate}]}),
        );
        assert_eq!(single, ["files", "source"]);
    }
}
