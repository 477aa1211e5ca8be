//! The streaming CSV record reader for imports: a push parser, fed the decompressed upload chunk
//! by chunk as it streams from storage, that splits it into records with bounded memory and
//! reports structural faults record by record. It never fails the stream; whether a file is
//! CSV at all is [`looks_like_text`]'s question, asked once about its first bytes.
//!
//! Quoting is parsed by `csv-core` (record terminator `Terminator::CRLF`, doubled quotes, no
//! escape byte, no comment lines). This module adds what csv-core lacks: physical line numbers,
//! a BOM split across chunks, a cap on a record's size and recovery from an unbalanced quote.
//! The output for a stream does not depend on how it is cut into chunks.
//!
//! # Records
//!
//! * LF, CRLF and a lone CR each end a record, mixed freely. Line numbers are physical lines
//!   counted the same way, including line breaks inside quoted fields: a record on line 3 with
//!   one line break inside a quoted field is followed by a record on line 5.
//! * Empty lines are skipped but counted. (A line of spaces is a record of one field.)
//! * The last record needs no line break after it.
//! * A UTF-8 BOM is skipped at the very start of the stream only; anywhere else it is data.
//! * A field that starts with the quote is quoted: delimiters and line breaks in it are data
//!   and a doubled quote is one quote. csv-core rejects nothing: a quote that does not start a
//!   field is data (`ab"c` is `ab"c`), and text after a closing quote is appended unquoted up to
//!   the next delimiter (`"ab"c` is `abc`, `"ab"c"d` is `abc"d`).
//! * Bytes are passed through untouched, NUL and invalid UTF-8 included: the validator rejects
//!   such rows with the column at fault.
//! * An empty field and a quoted empty one (`,,` and `,"",`) are both empty, but the second is
//!   marked ([`Fields::is_quoted_empty`]): NULL and the empty string (SPEC §4.2). Only records
//!   with an empty field are looked at again for this, in their raw bytes.
//!
//! # Structural faults
//!
//! A record too broken to split into fields comes back as [`RecordKind::Broken`] with its raw
//! bytes, and reading goes on with the next record.
//!
//! * **Too long.** A record of more than `max_record_bytes` bytes (not counting its line
//!   break) is [`Broken::TooLong`], with `raw` cut at the cap. Once over the cap the reader stops
//!   keeping its bytes and only follows the quoting to find where it ends, counting bytes and
//!   lines, so that the next record is read as usual. A record of more than
//!   `max_record_bytes / 8` fields (at least 4096) is too long as well: its field offsets alone
//!   would outgrow the cap.
//! * **Unbalanced quote.** A quote that opens a field but is never closed swallows the lines
//!   after it into that field, up to the next quote anywhere. Once the expected field count is
//!   known ([`RecordReader::expect_fields`], [`RecordReader::expect_header_fields`]) the rule is:
//!   a record that spans more than one physical line and whose field count is not the expected
//!   one is not a record. Its first physical line is reported as [`Broken::UnbalancedQuote`]
//!   (`raw` is that line, without its line break), and the bytes after that line, up to and
//!   including the line break that ended the swallowing record, are parsed again from a fresh
//!   state, followed by the rest of the input, so the lines it swallowed are still loaded (or
//!   rejected on their own merits; the rule applies again to what is re-parsed). A quote still
//!   open at the end of input is unbalanced whatever the field counts, and is recovered the
//!   same way. A multi-line record with the expected number of fields is taken as it is.
//!
//! Re-parsing is bounded: it may re-read at most four bytes per byte of input, and at most four
//! times the cap at once. Only contrived text gets there (`"⏎a","⏎a",…`, which re-parsed line
//! after line would take time quadratic in its length); its swallowed lines are then reported
//! as [`Broken::UnbalancedQuote`] one by one without being re-parsed, which is what the rule
//! yields for such text anyway.
//!
//! What the rule cannot do: a stray quote whose swallowed text happens to give the expected
//! field count is loaded as one (wrong) row, for the validator to judge; a genuine multi-line
//! record with a missing field is reported as its first line plus its other lines as records
//! of their own, each most likely rejected; and a swallowing record longer than the cap is
//! [`Broken::TooLong`], not recovered, because recovering it would mean keeping all of it.
//!
//! # Memory and speed
//!
//! Whatever the input, the reader holds at most the current record's bytes (up to the cap plus
//! its line break), its fields' bytes (up to the cap), its field offsets (about the cap) and,
//! after an unbalanced quote, the bytes to re-parse (up to the cap): about four times the cap
//! at worst. Ordinary records need far less: the buffers start small and grow only for long
//! records. Records are handed out as [`Fields`]: two allocations per record, none per field
//! or byte, and a record that ends in the chunk it starts in is never copied aside, its fields
//! going straight from csv-core's output into the record.

mod bom;
mod fields;
mod lines;
mod reader;
mod sniff;
#[cfg(test)]
mod tests;

pub use fields::{Fields, FieldsIter};
pub use reader::RecordReader;
pub use sniff::{TEXT_SAMPLE_BYTES, looks_like_text};

/// The default cap on a record's size, 1 MiB: the specification's maximum line length.
pub const DEFAULT_MAX_RECORD_BYTES: usize = 1024 * 1024;

/// How to split a CSV file into records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReaderOptions {
    /// The field delimiter; neither a line break nor the quote.
    pub delimiter: u8,
    /// The quote byte; neither a line break nor the delimiter.
    pub quote: u8,
    /// Records longer than this many bytes, line break excluded, are [`Broken::TooLong`]; it
    /// also bounds the memory the reader keeps per record. Zero counts as one.
    pub max_record_bytes: usize,
}

impl Default for ReaderOptions {
    fn default() -> Self {
        Self {
            delimiter: b',',
            quote: b'"',
            max_record_bytes: DEFAULT_MAX_RECORD_BYTES,
        }
    }
}

/// One record of the file, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// The 1-based physical line the record starts on.
    pub line: u64,
    /// Its fields, or why it has none.
    pub kind: RecordKind,
    /// Where a reader may start again right after this record
    /// ([`RecordReader::resumed`]); see [`ResumePoint`] for when there is one.
    pub end: Option<ResumePoint>,
}

/// A place in the stream where a new reader, started there with [`RecordReader::resumed`],
/// reads exactly the records the first one read after a given record: a record boundary where
/// nothing about the first reader's state is lost by starting afresh. There is one after a
/// record of fields that ended with a line break read as fresh input (not while parsing again
/// after an unbalanced quote) once the reader has its full allowance for parsing again (after
/// about the cap's size of input since the start or since the last recovery); after the last
/// record of the stream there is none.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResumePoint {
    /// Bytes of the stream before it, a byte order mark included.
    pub offset: u64,
    /// The physical line the byte at `offset` is on.
    pub line: u64,
}

/// What a record turned out to be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecordKind {
    /// Split into fields, raw bytes (UTF-8 is checked later, by the validator), quoted empty
    /// fields marked.
    Fields(Fields),
    /// Too broken to split into fields.
    Broken {
        /// The record's bytes, at most the cap: its first line for an unbalanced quote, its
        /// first `max_record_bytes` bytes for a record too long. No line break at the end.
        raw: Vec<u8>,
        /// What is wrong with it.
        reason: Broken,
    },
}

/// Why a record could not be split into fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Broken {
    /// A quote opened a field and did not close where the record should end; see the module
    /// docs for the rule.
    UnbalancedQuote,
    /// The record is over the cap.
    TooLong {
        /// Its whole length, not counting its line break.
        bytes: u64,
    },
}
