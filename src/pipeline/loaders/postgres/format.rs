//! The two COPY formats a load may use, and what differs between them: the options of the
//! statement, the stream's header and trailer, and how a row gets its line number in front when
//! it goes to the temporary table.

use super::{binary, text};
use crate::pipeline::loaders::Batch;
use crate::pipeline::validate::ColumnType;

/// The COPY format of a load.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Binary,
    Text,
}

impl Format {
    /// Binary when every column has a binary encoding here.
    pub fn of(types: &[ColumnType]) -> Self {
        if binary::supports(types) {
            Self::Binary
        } else {
            Self::Text
        }
    }

    pub fn options(self) -> &'static str {
        match self {
            Self::Binary => " (FORMAT binary)",
            Self::Text => "",
        }
    }

    pub fn header(self) -> &'static [u8] {
        match self {
            Self::Binary => binary::HEADER,
            Self::Text => b"",
        }
    }

    pub fn trailer(self) -> &'static [u8] {
        match self {
            Self::Binary => binary::TRAILER,
            Self::Text => b"",
        }
    }

    /// A batch again, each row with its line number as a first column.
    pub fn with_lines(self, batch: &Batch) -> Vec<u8> {
        let mut out = Vec::with_capacity(batch.data.len() + 16 * batch.rows.len());
        for row in batch.iter() {
            let line = i64::try_from(row.line).unwrap_or(i64::MAX);
            match self {
                Self::Binary => binary::with_leading_int8(row.data, line, &mut out),
                Self::Text => text::with_leading_int8(row.data, line, &mut out),
            }
        }
        out
    }
}
