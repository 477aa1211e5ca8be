//! What a succeeded job produced, as stored in its record and shown to clients.

use serde::{Deserialize, Serialize};

/// The result of a succeeded export.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ExportResult {
    /// The file written.
    pub file: ExportedFile,
    /// A fresh signed link to the file, added on every read of a succeeded export.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub download_url: Option<String>,
    /// When `download_url` stops working.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(format = DateTime)]
    pub download_url_expires_at: Option<String>,
}

/// The file of an export.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ExportedFile {
    /// The object's key in the store.
    pub key: String,
    /// The format it is written in (`csv`, `csv.gz`, …).
    pub format: String,
    /// Its size.
    pub size_bytes: u64,
    /// Rows written.
    pub rows: u64,
    /// SHA-256 of its bytes, in hex.
    pub sha256: String,
    /// The `Content-Type` it is served with.
    pub content_type: String,
    /// The name it is downloaded as.
    pub filename: String,
    /// A bundle's files (`zip`), in order; absent otherwise.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub entries: Vec<BundleEntry>,
}

/// One file of a bundle.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct BundleEntry {
    /// Its name in the zip (`users.csv`).
    pub name: String,
    /// Its format.
    pub format: String,
    /// Rows written.
    pub rows: u64,
    /// Its size unzipped.
    pub bytes: u64,
}

/// The result of a succeeded import (or of a chunked one that kept its committed chunks).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ImportResult {
    /// Rows loaded into the table.
    pub rows_inserted: u64,
    /// Rows refused, listed in the rejects report.
    pub rows_rejected: u64,
    /// The rejects report, when there are rejected rows.
    pub rejects_url: Option<String>,
    /// The target table.
    pub table: String,
    /// The data connection.
    pub connection: String,
    /// The size of the uploaded file.
    pub bytes: Option<u64>,
    /// Chunks committed, for a `"commit": "chunked"` import.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chunks_committed: Option<u64>,
    /// Only for a chunked import that was cancelled or failed (whose result is then saved with
    /// the job): the rows its committed chunks keep in the table, the same as `rows_inserted`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rows_kept: Option<u64>,
    /// The table this import created (`"target": {"create": true}` and no such table before);
    /// `null` when the table existed.
    #[serde(default)]
    pub created: Option<CreatedTable>,
}

/// A table an import created from its file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CreatedTable {
    /// Its name.
    pub table: String,
    /// Its columns, in the file's order.
    pub columns: Vec<CreatedColumn>,
}

/// A column of a created table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CreatedColumn {
    /// The column's name: the header, normalised.
    pub name: String,
    /// Its type as created (`bigint`, `date`, … on PostgreSQL; SQLite's names on SQLite).
    #[serde(rename = "type")]
    pub kind: String,
    /// The header it came from.
    pub header: String,
}
