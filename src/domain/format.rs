//! File formats an export can be written in.

use serde::{Deserialize, Serialize};

/// An export's file format: an encoding plus an optional compression.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, utoipa::ToSchema)]
pub enum Format {
    /// Comma-separated values (RFC 4180).
    #[default]
    #[serde(rename = "csv")]
    Csv,
    /// CSV, gzip-compressed.
    #[serde(rename = "csv.gz")]
    CsvGz,
    /// One JSON object per line.
    #[serde(rename = "jsonl")]
    Jsonl,
    /// JSON lines, gzip-compressed.
    #[serde(rename = "jsonl.gz")]
    JsonlGz,
    /// Apache Parquet: typed columns, zstd-compressed.
    #[serde(rename = "parquet")]
    Parquet,
    /// Excel workbook: typed cells, a bold header, a new sheet every 1,048,575 rows.
    #[serde(rename = "xlsx")]
    Xlsx,
    /// A bundle: several files (`files`), each in its own format, in one zip.
    #[serde(rename = "zip")]
    Zip,
}

/// The encoding of rows into bytes, before any compression.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    /// See [`Format::Csv`].
    Csv,
    /// See [`Format::Jsonl`].
    Jsonl,
    /// See [`Format::Parquet`].
    Parquet,
    /// See [`Format::Xlsx`].
    Xlsx,
}

impl Format {
    /// The name clients use, which is also the file extension.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Csv => "csv",
            Self::CsvGz => "csv.gz",
            Self::Jsonl => "jsonl",
            Self::JsonlGz => "jsonl.gz",
            Self::Parquet => "parquet",
            Self::Xlsx => "xlsx",
            Self::Zip => "zip",
        }
    }

    /// The encoding of a single file's rows; `None` for a bundle, whose entries have theirs.
    pub fn encoding(self) -> Option<Encoding> {
        match self {
            Self::Csv | Self::CsvGz => Some(Encoding::Csv),
            Self::Jsonl | Self::JsonlGz => Some(Encoding::Jsonl),
            Self::Parquet => Some(Encoding::Parquet),
            Self::Xlsx => Some(Encoding::Xlsx),
            Self::Zip => None,
        }
    }

    /// Whether the file is compressed already (so a zip stores it rather than deflating it).
    pub fn is_compressed(self) -> bool {
        !matches!(self, Self::Csv | Self::Jsonl)
    }

    /// Whether the encoded bytes are gzip-compressed.
    pub fn is_gzip(self) -> bool {
        matches!(self, Self::CsvGz | Self::JsonlGz)
    }

    /// The `Content-Type` of the file. Compressed files are served as `application/gzip` so
    /// that browsers save them as they are instead of decompressing them on the fly.
    pub fn content_type(self) -> &'static str {
        match self {
            Self::Csv => "text/csv",
            Self::Jsonl => "application/jsonl",
            Self::CsvGz | Self::JsonlGz => "application/gzip",
            Self::Parquet => "application/vnd.apache.parquet",
            Self::Xlsx => "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            Self::Zip => "application/zip",
        }
    }
}
