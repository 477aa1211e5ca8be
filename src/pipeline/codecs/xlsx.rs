//! Excel workbooks (XLSX), written in constant memory with `rust_xlsxwriter`.
//!
//! Each sheet's rows go to a temporary file in [`XlsxConfig::temp_dir`] (Ferry's `data_dir`)
//! as they are written, so memory does not grow with the rows; [`Encoder::finish`] assembles
//! the workbook (a zip) straight into the output. Like every encoder, it runs on the pipeline's
//! blocking thread, fed through its bounded channel.
//!
//! Cells keep their types: the header row is bold text; integers, floats and decimals are
//! numbers (decimals with their scale as the number format); booleans are booleans; dates and
//! timestamps are Excel date serials with a date format (`timestamptz` in UTC, as Excel has no
//! zones; Excel keeps times to the millisecond); NULL and the empty string are empty cells; everything else is text. What Excel cannot hold exactly stays
//! text rather than change: integers beyond ±2^53, decimals of more than 15 digits, NaN and
//! the infinities, dates before 1900-03-01. Text longer than a cell's 32,767 characters is cut
//! there. Rows past a sheet's 1,048,576 (header included) continue on `Sheet2`, … which
//! repeat the header.

use super::{Encoder, Out};
use crate::pipeline::Row;
use crate::pipeline::types::{self, Column, ColumnType, Mismatch};
use rust_xlsxwriter::{Format, Workbook, Worksheet, XlsxError};
use serde_json::Value;
use std::io;
use std::path::PathBuf;

/// Rows of an Excel sheet, the header included.
pub const MAX_SHEET_ROWS: u32 = 1_048_576;
/// Columns of an Excel sheet.
const MAX_SHEET_COLUMNS: usize = 16_384;
/// Characters (UTF-16 units) in a cell.
const MAX_CELL_TEXT: usize = 32_767;
/// Integers Excel's doubles hold exactly.
const MAX_EXACT_INTEGER: i64 = 1 << 53;
/// Decimal digits Excel's doubles hold exactly.
const MAX_EXACT_DIGITS: u8 = 15;
/// Excel's serial of 1970-01-01 (serial 0 is 1899-12-30 in the 1900 date system).
const EXCEL_UNIX_EPOCH: f64 = 25_569.0;
/// Serial 61 is 1900-03-01; earlier serials are off by Excel's 1900-02-29.
const FIRST_EXACT_SERIAL: f64 = 61.0;

/// How to write XLSX.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct XlsxConfig {
    /// Where the sheets' temporary files go.
    pub temp_dir: PathBuf,
    /// Rows per sheet, the header included (Excel's limit, lower in tests).
    pub max_sheet_rows: u32,
}

impl Default for XlsxConfig {
    fn default() -> Self {
        Self {
            temp_dir: std::env::temp_dir(),
            max_sheet_rows: MAX_SHEET_ROWS,
        }
    }
}

impl XlsxConfig {
    /// An encoder writing XLSX.
    pub fn build(self) -> XlsxEncoder {
        XlsxEncoder {
            config: self,
            workbook: Workbook::new(),
            columns: Vec::new(),
            formats: Formats::new(),
            sheets: 0,
            next_row: 0,
        }
    }
}

/// Writes rows into a workbook; see the module docs.
pub struct XlsxEncoder {
    config: XlsxConfig,
    workbook: Workbook,
    columns: Vec<Column>,
    formats: Formats,
    /// Sheets added so far; the last is the one being written.
    sheets: usize,
    /// The next row of the current sheet.
    next_row: u32,
}

impl std::fmt::Debug for XlsxEncoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("XlsxEncoder")
            .field("config", &self.config)
            .field("sheets", &self.sheets)
            .field("next_row", &self.next_row)
            .finish_non_exhaustive()
    }
}

/// The cell formats, made once.
struct Formats {
    header: Format,
    date: Format,
    timestamp: Format,
    /// Number formats of decimals by scale (`0`, `0.0`, `0.00`, …).
    decimals: Vec<Format>,
}

impl Formats {
    fn new() -> Self {
        Self {
            header: Format::new().set_bold(),
            date: Format::new().set_num_format("yyyy-mm-dd"),
            timestamp: Format::new().set_num_format("yyyy-mm-dd hh:mm:ss"),
            decimals: (0..=MAX_EXACT_DIGITS)
                .map(|scale| {
                    let fraction = "0".repeat(usize::from(scale));
                    let pattern = if scale == 0 {
                        "0".to_owned()
                    } else {
                        format!("0.{fraction}")
                    };
                    Format::new().set_num_format(pattern)
                })
                .collect(),
        }
    }
}

fn xlsx_error(error: XlsxError) -> io::Error {
    io::Error::other(error)
}

impl Encoder for XlsxEncoder {
    fn begin(&mut self, columns: &[Column], _out: Out<'_>) -> io::Result<()> {
        if columns.len() > MAX_SHEET_COLUMNS {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("an Excel sheet holds at most {MAX_SHEET_COLUMNS} columns"),
            ));
        }
        self.columns = columns.to_vec();
        self.workbook
            .set_tempdir(&self.config.temp_dir)
            .map_err(xlsx_error)?;
        self.add_sheet()
    }

    fn encode(&mut self, rows: &[Row], _out: Out<'_>) -> io::Result<()> {
        for row in rows {
            if self.next_row >= self.config.max_sheet_rows {
                self.add_sheet()?;
            }
            let at = self.next_row;
            let sheet = self
                .workbook
                .worksheet_from_index(self.sheets - 1)
                .map_err(xlsx_error)?;
            for (i, (column, value)) in self.columns.iter().zip(row).enumerate() {
                write_cell(sheet, &self.formats, at, i as u16, column, value)?;
            }
            self.next_row += 1;
        }
        Ok(())
    }

    fn finish(&mut self, out: Out<'_>) -> io::Result<()> {
        self.workbook.save_to_writer(out).map_err(xlsx_error)
    }
}

impl XlsxEncoder {
    /// Adds a sheet (`Sheet1`, `Sheet2`, …) and writes the header into it.
    fn add_sheet(&mut self) -> io::Result<()> {
        let sheet = self
            .workbook
            .add_worksheet_with_constant_memory()
            .map_err(xlsx_error)?;
        for (i, column) in self.columns.iter().enumerate() {
            sheet
                .write_string_with_format(
                    0,
                    i as u16,
                    cell_text(&column.name),
                    &self.formats.header,
                )
                .map_err(xlsx_error)?;
        }
        self.sheets += 1;
        self.next_row = 1;
        Ok(())
    }
}

/// Writes one value as the cell its column's type calls for.
fn write_cell(
    sheet: &mut Worksheet,
    formats: &Formats,
    row: u32,
    col: u16,
    column: &Column,
    value: &Value,
) -> io::Result<()> {
    if value.is_null() {
        return Ok(());
    }
    let mismatch = |expected| io::Error::from(Mismatch::new(column, value, expected));
    let written = match column.kind {
        ColumnType::Bool => sheet.write_boolean(
            row,
            col,
            types::as_bool(value).ok_or_else(|| mismatch("boolean"))?,
        ),
        ColumnType::Int16 | ColumnType::Int32 | ColumnType::Int64 => {
            let n = types::as_i64(value).ok_or_else(|| mismatch("integer"))?;
            if n.unsigned_abs() <= MAX_EXACT_INTEGER as u64 {
                sheet.write_number(row, col, n as f64)
            } else {
                sheet.write_string(row, col, n.to_string())
            }
        }
        ColumnType::Float32 | ColumnType::Float64 => {
            let f = types::as_f64(value).ok_or_else(|| mismatch("float"))?;
            if f.is_finite() {
                sheet.write_number(row, col, f)
            } else {
                sheet.write_string(row, col, types::as_text(value))
            }
        }
        ColumnType::Decimal { precision, scale } => {
            let exact = precision <= MAX_EXACT_DIGITS;
            match (exact, types::as_text(value).parse::<f64>()) {
                (true, Ok(f)) => sheet.write_number_with_format(
                    row,
                    col,
                    f,
                    &formats.decimals[usize::from(scale.min(MAX_EXACT_DIGITS))],
                ),
                _ => sheet.write_string(row, col, types::as_text(value)),
            }
        }
        ColumnType::Date => {
            let days = types::as_days(value).ok_or_else(|| mismatch("date"))?;
            date_cell(sheet, row, col, days as f64, &formats.date, value)
        }
        ColumnType::Timestamp | ColumnType::Timestamptz => {
            let micros = types::as_micros(value).ok_or_else(|| mismatch("timestamp"))?;
            let days = micros as f64 / 86_400_000_000.0;
            date_cell(sheet, row, col, days, &formats.timestamp, value)
        }
        ColumnType::Uuid | ColumnType::Json | ColumnType::Text => {
            sheet.write_string(row, col, cell_text(&types::as_text(value)))
        }
    };
    written.map(drop).map_err(xlsx_error)
}

/// A date or timestamp (days since 1970, with a fraction) as an Excel serial with `format`;
/// as text before 1900-03-01, where Excel's serials are wrong.
fn date_cell<'a>(
    sheet: &'a mut Worksheet,
    row: u32,
    col: u16,
    days: f64,
    format: &Format,
    value: &Value,
) -> Result<&'a mut Worksheet, XlsxError> {
    let serial = days + EXCEL_UNIX_EPOCH;
    if serial >= FIRST_EXACT_SERIAL {
        sheet.write_number_with_format(row, col, serial, format)
    } else {
        sheet.write_string(row, col, types::as_text(value))
    }
}

/// `text`, cut to what a cell holds (32,767 UTF-16 units).
fn cell_text(text: &str) -> String {
    if text.len() <= MAX_CELL_TEXT {
        return text.to_owned();
    }
    let mut units = 0;
    let end = text
        .char_indices()
        .find(|(_, c)| {
            units += c.len_utf16();
            units > MAX_CELL_TEXT
        })
        .map_or(text.len(), |(at, _)| at);
    text[..end].to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_text_is_cut_at_the_cell_limit_in_utf16_units() {
        assert_eq!(cell_text("short"), "short");
        let long = "é".repeat(40_000);
        assert_eq!(cell_text(&long).chars().count(), MAX_CELL_TEXT);
        let astral = "𝄞".repeat(20_000); // two UTF-16 units each
        assert_eq!(cell_text(&astral).chars().count(), MAX_CELL_TEXT / 2);
    }

    #[test]
    fn a_workbook_is_a_zip_and_a_bad_value_names_its_column() {
        let columns = [
            Column::new("n", ColumnType::Int64),
            Column::new("d", ColumnType::Date),
        ];
        let mut encoder = XlsxConfig::default().build();
        let mut out = Vec::new();
        encoder.begin(&columns, &mut out).unwrap();
        encoder
            .encode(
                &[vec![serde_json::json!(1), serde_json::json!("2024-01-02")]],
                &mut out,
            )
            .unwrap();
        encoder.finish(&mut out).unwrap();
        assert_eq!(&out[..2], b"PK");
        let mut encoder = XlsxConfig::default().build();
        encoder.begin(&columns, &mut Vec::new()).unwrap();
        let error = encoder
            .encode(
                &[vec![serde_json::json!("x"), serde_json::Value::Null]],
                &mut Vec::new(),
            )
            .unwrap_err();
        assert!(error.to_string().contains("\"n\""), "{error}");
    }
}
