//! An import request (SPEC §4.1), parsed into what the API and the worker need. Rules that need
//! the target table's schema are checked later, against the database.

use super::invalid::{Collector, Invalid};
use super::json::object;
use super::rules::RuleSpec;
use super::text_encoding::TextEncoding;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;

/// The default limit of rejected rows before an import fails.
pub const DEFAULT_MAX_ERRORS: u64 = 1000;
/// Header names an import ignores: the columns of a rejects report.
pub const REPORT_COLUMNS: [&str; 3] = ["_line", "_errors", "_raw"];

/// The import spec as the client sends it.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({
    "target": {"table": "people"},
    "mode": "append",
    "columns": {"email": {"pattern": "^[^@]+@[^@]+$"}},
    "max_errors": 100,
    "upload": "direct"
}))]
pub struct ImportRequest {
    /// Where the rows go.
    #[serde(deserialize_with = "object")]
    pub target: Target,
    /// How they are loaded.
    #[serde(default)]
    pub mode: Mode,
    /// The conflict key of an `upsert`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub key: Vec<String>,
    /// How the file is read.
    #[serde(default, deserialize_with = "object")]
    pub format: FileFormat,
    /// Extra rules per column (checked against the schema by the validator).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[schema(value_type = BTreeMap<String, RuleSpec>)]
    pub columns: BTreeMap<String, Value>,
    /// File header → column; by default the same name, case-insensitively.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub mapping: BTreeMap<String, String>,
    /// More rejected rows than this fail the import, with nothing loaded.
    #[serde(default = "default_max_errors")]
    pub max_errors: u64,
    /// An http(s) URL to notify when the import ends.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub callback_url: Option<String>,
    /// An address to e-mail when the import ends (needs `[email]` on the server).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(format = Email, max_length = 254)]
    pub notify_email: Option<String>,
    /// Optional; made from the table and the date otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(min_length = 1, max_length = 200)]
    pub name: Option<String>,
    /// `"direct"`: the client puts the file straight into object storage; `"multipart"`: a
    /// resumable upload in parts (then `size` is required).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upload: Option<UploadMode>,
    /// The file's size in bytes, with `"upload": "multipart"` only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 1)]
    pub size: Option<u64>,
    /// `"single"` (the default; `"transaction"` is accepted as its old name) or `"chunked"`
    /// (append and upsert only): every `chunk_rows` rows commit with a checkpoint, and a retry
    /// resumes after the last one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commit: Option<String>,
    /// Rows per committed chunk with `"commit": "chunked"` (default 500000).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 1)]
    pub chunk_rows: Option<u64>,
}

/// Rows per chunk of a chunked import unless the request says otherwise.
pub const DEFAULT_CHUNK_ROWS: u64 = 500_000;

fn default_max_errors() -> u64 {
    DEFAULT_MAX_ERRORS
}

/// The target table.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Target {
    /// A configured data connection; may be left out when exactly one is configured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connection: Option<String>,
    /// `table` or `schema.table`.
    #[schema(min_length = 1)]
    pub table: String,
    /// Create the table from the file when it does not exist (SPEC §4.1 "New tables").
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub create: bool,
}

/// How rows are loaded.
#[derive(Debug, Clone, Copy, Default, Deserialize, Serialize, PartialEq, Eq, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// Add the rows.
    #[default]
    Append,
    /// Replace the table's rows, atomically.
    Replace,
    /// Insert, or update rows whose `key` exists.
    Upsert,
}

/// Upload straight to object storage, after the job is created.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum UploadMode {
    /// A signed `PUT` link, then `POST …/start`.
    Direct,
    /// A resumable upload in parts (`…/upload`), then `POST …/upload/complete` and `…/start`.
    Multipart,
}

/// How the file is read.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, utoipa::ToSchema)]
#[serde(deny_unknown_fields, default)]
pub struct FileFormat {
    /// Only `csv`.
    #[serde(rename = "type")]
    pub kind: String,
    /// One ASCII character.
    #[schema(min_length = 1, max_length = 1)]
    pub delimiter: String,
    /// One ASCII character.
    #[schema(min_length = 1, max_length = 1)]
    pub quote: String,
    /// Whether the first line names the columns.
    pub header: bool,
    /// Any WHATWG label (`utf-8`, the default; `utf-16`; `latin-1`; `windows-1252`; …); a
    /// byte order mark at the start of the file overrides it.
    pub encoding: String,
    /// `auto` (detect gzip), `gzip` or `none`.
    pub compression: Compression,
}

impl Default for FileFormat {
    fn default() -> Self {
        Self {
            kind: "csv".into(),
            delimiter: ",".into(),
            quote: "\"".into(),
            header: true,
            encoding: "utf-8".into(),
            compression: Compression::Auto,
        }
    }
}

/// Compression of the stored file.
#[derive(Debug, Clone, Copy, Default, Deserialize, Serialize, PartialEq, Eq, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Compression {
    /// gzip if the file starts with gzip's magic bytes.
    #[default]
    Auto,
    /// gzip; a file that is not gzip fails the import.
    Gzip,
    /// As it is.
    None,
}

/// A target table's name: `table` or `schema.table`, matched exactly as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableName {
    /// The schema; `None` for the connection's default (PostgreSQL) or SQLite's only one.
    pub schema: Option<String>,
    /// The table.
    pub name: String,
}

impl TableName {
    /// Splits `schema.table`; each part 1 to 63 bytes, without NUL.
    pub fn parse(text: &str) -> Result<Self, String> {
        let parts: Vec<&str> = text.split('.').collect();
        let valid = |s: &str| !s.is_empty() && s.len() <= 63 && !s.contains('\0');
        match parts.as_slice() {
            [table] if valid(table) => Ok(Self {
                schema: None,
                name: (*table).to_owned(),
            }),
            [schema, table] if valid(schema) && valid(table) => Ok(Self {
                schema: Some((*schema).to_owned()),
                name: (*table).to_owned(),
            }),
            _ => Err("expected table or schema.table".to_owned()),
        }
    }
}

impl std::fmt::Display for TableName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.schema {
            Some(schema) => write!(f, "{schema}.{}", self.name),
            None => f.write_str(&self.name),
        }
    }
}

/// A checked import spec, minus what needs the database.
#[derive(Debug, Clone, PartialEq)]
pub struct ImportSpec {
    pub name: String,
    pub connection: Option<String>,
    pub table: TableName,
    /// Create the table from the file when it does not exist.
    pub create: bool,
    pub mode: Mode,
    pub key: Vec<String>,
    pub delimiter: u8,
    pub quote: u8,
    pub header: bool,
    /// The declared text encoding (`format.encoding`).
    pub encoding: TextEncoding,
    pub compression: Compression,
    pub mapping: BTreeMap<String, String>,
    /// Extra rules per column, parsed (their fit with each column's type is checked against
    /// the table).
    pub columns: BTreeMap<String, RuleSpec>,
    pub max_errors: u64,
    /// The file comes after the job is created (a direct or a multipart upload).
    pub direct: bool,
    /// Rows per chunk for `"commit": "chunked"`; `None` for one transaction.
    pub chunk_rows: Option<u64>,
}

impl ImportRequest {
    /// Checks what can be checked without the database.
    pub fn parse(&self, today: &str) -> Result<ImportSpec, Invalid> {
        let mut errors = Collector::default();
        let table = TableName::parse(&self.target.table).unwrap_or_else(|message| {
            errors.push("target.table", message);
            TableName {
                schema: None,
                name: String::new(),
            }
        });
        let delimiter = one_byte(&self.format.delimiter, "format.delimiter", &mut errors);
        let quote = one_byte(&self.format.quote, "format.quote", &mut errors);
        if delimiter == quote {
            errors.push("format.quote", "must differ from the delimiter");
        }
        if self.format.kind != "csv" {
            errors.push("format.type", "only csv is supported");
        }
        let encoding = TextEncoding::parse(&self.format.encoding).unwrap_or_else(|message| {
            errors.push("format.encoding", message);
            TextEncoding::UTF_8
        });
        match (self.mode, self.key.is_empty()) {
            (Mode::Upsert, true) => errors.push("key", "an upsert needs the key columns"),
            (Mode::Append | Mode::Replace, false) => {
                errors.push("key", "only an upsert takes a key")
            }
            _ => {}
        }
        let chunk_rows = match self.commit.as_deref() {
            None | Some("single" | "transaction") => {
                if self.chunk_rows.is_some() {
                    errors.push("chunk_rows", "only a \"chunked\" commit takes chunk_rows");
                }
                None
            }
            Some("chunked") => {
                if self.mode == Mode::Replace {
                    errors.push(
                        "commit",
                        "a replace is one transaction; \"chunked\" is for append and upsert",
                    );
                }
                if self.chunk_rows == Some(0) {
                    errors.push("chunk_rows", "must be greater than 0");
                }
                Some(self.chunk_rows.unwrap_or(DEFAULT_CHUNK_ROWS))
            }
            Some(_) => {
                errors.push("commit", "expected \"single\" or \"chunked\"");
                None
            }
        };
        let mut columns = BTreeMap::new();
        for (name, value) in &self.columns {
            let mut track = serde_path_to_error::Track::new();
            let tracked = serde_path_to_error::Deserializer::new(value, &mut track);
            match object::<_, RuleSpec>(tracked) {
                Ok(rule) => {
                    columns.insert(name.clone(), rule);
                }
                Err(e) => errors.push(column_path(name, &track.path()), e.to_string()),
            }
        }
        match (self.upload, self.size) {
            (Some(UploadMode::Multipart), None) => {
                errors.push("size", "a multipart upload needs the file's size in bytes")
            }
            (Some(UploadMode::Multipart), Some(0)) => {
                errors.push("size", "must be at least 1 byte")
            }
            (Some(UploadMode::Direct) | None, Some(_)) => {
                errors.push("size", "only a \"multipart\" upload takes a size")
            }
            _ => {}
        }
        if let Some(name) = &self.name
            && (name.trim().is_empty() || name.chars().count() > 200)
        {
            errors.push("name", "1 to 200 characters");
        }
        if let Some(address) = &self.notify_email
            && let Err(message) = super::targets::check_address(address)
        {
            errors.push("notify_email", message);
        }
        let name = match &self.name {
            Some(name) => name.trim().to_owned(),
            None => format!("Import into {} — {today}", self.target.table),
        };
        errors.finish(ImportSpec {
            name,
            connection: self.target.connection.clone(),
            table,
            create: self.target.create,
            mode: self.mode,
            key: self.key.clone(),
            delimiter,
            quote,
            header: self.format.header,
            encoding,
            compression: self.format.compression,
            mapping: self.mapping.clone(),
            columns,
            max_errors: self.max_errors,
            direct: self.upload.is_some(),
            chunk_rows,
        })
    }
}

/// `columns.<name>` and the path inside its rules (`columns.note.pattern`).
fn column_path(name: &str, inside: &serde_path_to_error::Path) -> String {
    match inside.iter().next() {
        None => format!("columns.{name}"),
        Some(_) => format!("columns.{name}.{inside}"),
    }
}

fn one_byte(text: &str, field: &str, errors: &mut Collector) -> u8 {
    match text.as_bytes() {
        [b] if b.is_ascii() && !matches!(b, b'\n' | b'\r') => *b,
        _ => {
            errors.push(field, "must be one ASCII character other than a line break");
            b','
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(json: Value) -> ImportRequest {
        serde_json::from_value(json).unwrap()
    }

    #[test]
    fn arrays_are_refused_where_the_spec_has_objects() {
        for bad in [
            serde_json::json!({"target": [null, "people"]}),
            serde_json::json!({"target": {"table": "people"}, "format": ["csv", ","]}),
        ] {
            assert!(
                serde_json::from_value::<ImportRequest>(bad.clone()).is_err(),
                "{bad}"
            );
        }
    }

    #[test]
    fn a_multipart_upload_needs_a_size_and_only_it_takes_one() {
        let parse = |json: Value| request(json).parse("2026-12-02");
        let table = serde_json::json!({"table": "t"});
        let ok = parse(serde_json::json!({"target": table, "upload": "multipart", "size": 10}));
        assert!(ok.is_ok_and(|spec| spec.direct));
        for bad in [
            serde_json::json!({"target": table, "upload": "multipart"}),
            serde_json::json!({"target": table, "upload": "multipart", "size": 0}),
            serde_json::json!({"target": table, "upload": "direct", "size": 10}),
            serde_json::json!({"target": table, "size": 10}),
        ] {
            let error = parse(bad.clone()).expect_err("refused");
            assert!(format!("{error:?}").contains("size"), "{bad}: {error:?}");
        }
    }

    #[test]
    fn a_minimal_request_gets_the_defaults() {
        let spec = request(serde_json::json!({"target": {"table": "events"}}))
            .parse("2026-11-23")
            .unwrap();
        assert_eq!(spec.table.to_string(), "events");
        assert_eq!(spec.table.schema, None);
        assert_eq!(
            (spec.mode, spec.delimiter, spec.quote, spec.header),
            (Mode::Append, b',', b'"', true)
        );
        assert_eq!(spec.max_errors, DEFAULT_MAX_ERRORS);
        assert_eq!(spec.name, "Import into events — 2026-11-23");
    }

    #[test]
    fn bad_options_are_named() {
        let bad = request(serde_json::json!({
            "target": {"table": "a.b.c"}, "mode": "replace",
            "format": {"delimiter": ";;", "encoding": "latin-9x"}, "commit": "chunked",
            "chunk_rows": 0
        }));
        let fields: Vec<String> = bad
            .parse("d")
            .unwrap_err()
            .0
            .into_iter()
            .map(|e| e.field)
            .collect();
        assert_eq!(
            fields,
            [
                "target.table",
                "format.delimiter",
                "format.encoding",
                "commit",
                "chunk_rows"
            ]
        );
    }

    #[test]
    fn chunked_commits_take_chunk_rows_with_a_default() {
        let parse = |body: serde_json::Value| request(body).parse("d");
        let spec = parse(serde_json::json!({"target": {"table": "t"}, "commit": "chunked"}));
        assert_eq!(spec.unwrap().chunk_rows, Some(DEFAULT_CHUNK_ROWS));
        let spec = parse(serde_json::json!({
            "target": {"table": "t"}, "mode": "upsert", "key": ["id"],
            "commit": "chunked", "chunk_rows": 7
        }));
        assert_eq!(spec.unwrap().chunk_rows, Some(7));
        let single = parse(serde_json::json!({"target": {"table": "t"}, "chunk_rows": 7}));
        assert_eq!(single.unwrap_err().0[0].field, "chunk_rows");
        let spec = parse(serde_json::json!({"target": {"table": "t"}, "commit": "single"}));
        assert_eq!(spec.unwrap().chunk_rows, None);
    }

    #[test]
    fn unknown_fields_and_modes_do_not_deserialize() {
        assert!(
            serde_json::from_value::<ImportRequest>(
                serde_json::json!({"target": {"table": "t"}, "modee": "append"})
            )
            .is_err()
        );
        assert!(
            serde_json::from_value::<ImportRequest>(
                serde_json::json!({"target": {"table": "t"}, "mode": "merge"})
            )
            .is_err()
        );
    }

    #[test]
    fn the_encoding_is_any_whatwg_label_and_utf8_by_default() {
        let parse = |format: Value| {
            request(serde_json::json!({"target": {"table": "t"}, "format": format})).parse("d")
        };
        assert!(parse(serde_json::json!({})).unwrap().encoding.is_utf8());
        let spec = parse(serde_json::json!({"encoding": "UTF-16"})).unwrap();
        assert!(spec.encoding.is_utf16());
        let spec = parse(serde_json::json!({"encoding": "latin-1"})).unwrap();
        assert_eq!(spec.encoding.name(), "windows-1252");
        let error = parse(serde_json::json!({"encoding": "klingon"})).unwrap_err();
        assert_eq!(error.0[0].field, "format.encoding");
    }
}
