//! The streaming CSV record reader, then the validator on every field it yields.
//!
//! Input layout: byte 0 picks the delimiter/quote pair, bytes 1-2 the record cap (64..=4096),
//! byte 3 the expected field count (none, the header's, or 1..=8), bytes 4-7 seed the chunk
//! sizes; the rest is the CSV text.
//!
//! Invariants: no panic; a `Broken` record's raw bytes are never longer than the cap; line
//! numbers start at 1 and strictly increase; the records for the whole input fed at once equal
//! the records for the same input fed in fuzzer-chosen chunks (and `bytes_read` agrees); a
//! value the validator accepts is accepted again, unchanged, when checked a second time.
#![no_main]

use ferry::pipeline::records::{ReaderOptions, Record, RecordKind, RecordReader};
use ferry::pipeline::validate::{ColumnRule, ColumnType};
use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;

const PAIRS: [(u8, u8); 5] = [
    (b',', b'"'),
    (b';', b'"'),
    (b'\t', b'"'),
    (b'|', b'\''),
    (b',', b'\''),
];

fn rules() -> &'static [ColumnRule] {
    static RULES: OnceLock<Vec<ColumnRule>> = OnceLock::new();
    RULES.get_or_init(|| {
        let kinds = [
            ColumnType::SmallInt,
            ColumnType::BigInt,
            ColumnType::Numeric {
                precision: Some(10),
                scale: Some(2),
            },
            ColumnType::Numeric {
                precision: None,
                scale: None,
            },
            ColumnType::Real,
            ColumnType::Double,
            ColumnType::Boolean,
            ColumnType::Text,
            ColumnType::Varchar(Some(5)),
            ColumnType::Char(Some(3)),
            ColumnType::Uuid,
            ColumnType::Date,
            ColumnType::Timestamp,
            ColumnType::Timestamptz,
            ColumnType::Json,
            ColumnType::Jsonb,
            ColumnType::Enum(vec!["ok".into(), "error".into()]),
            ColumnType::Other("inet".into()),
        ];
        kinds
            .into_iter()
            .enumerate()
            .map(|(i, kind)| ColumnRule::build(&format!("c{i}"), kind, i % 2 == 0, None).unwrap())
            .collect()
    })
}

/// A tiny xorshift for chunk sizes, so that one input always splits the same way.
struct Chunks(u32);

impl Chunks {
    fn next(&mut self, max: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 17;
        self.0 ^= self.0 << 5;
        self.0 as usize % (max + 1)
    }
}

fn reader(options: ReaderOptions, expect: u8) -> RecordReader {
    let mut reader = RecordReader::new(options);
    match expect % 10 {
        0 => {}
        1 => reader.expect_header_fields(),
        n => reader.expect_fields(usize::from(n - 1)),
    }
    reader
}

fn check_records(records: &[Record], cap: usize) {
    let mut last = 0;
    for record in records {
        assert!(record.line > last, "line {} after line {last}", record.line);
        last = record.line;
        if let RecordKind::Broken { raw, .. } = &record.kind {
            assert!(
                raw.len() <= cap,
                "broken raw of {} bytes, cap {cap}",
                raw.len()
            );
        }
    }
}

fn check_fields(records: &[Record]) {
    for record in records {
        let RecordKind::Fields(fields) = &record.kind else {
            continue;
        };
        for raw in fields.iter() {
            for rule in rules() {
                if let Ok(Some(value)) = rule.check(raw) {
                    let again = rule.check(value.as_bytes());
                    assert_eq!(
                        again.as_ref().map(|v| v.as_deref()),
                        Ok(Some(&*value)),
                        "{:?}: {:?} normalised to {value:?}, which re-checks differently",
                        rule.kind,
                        String::from_utf8_lossy(raw),
                    );
                }
            }
        }
    }
}

fuzz_target!(|data: &[u8]| {
    if data.len() < 8 {
        return;
    }
    let (head, text) = data.split_at(8);
    let (delimiter, quote) = PAIRS[usize::from(head[0]) % PAIRS.len()];
    let cap = 64 + usize::from(u16::from_le_bytes([head[1], head[2]])) % (4096 - 64 + 1);
    let options = ReaderOptions {
        delimiter,
        quote,
        max_record_bytes: cap,
    };

    let mut whole = Vec::new();
    let mut one = reader(options, head[3]);
    one.feed(text, &mut whole);
    one.finish(&mut whole);

    let seed = u32::from_le_bytes([head[4], head[5], head[6], head[7]]) | 1;
    let mut sizes = Chunks(seed);
    let max_chunk = 1 + (seed as usize >> 8) % 64;
    let mut chunked = Vec::new();
    let mut many = reader(options, head[3]);
    let mut rest = text;
    while !rest.is_empty() {
        let (chunk, tail) = rest.split_at(sizes.next(max_chunk).min(rest.len()));
        many.feed(chunk, &mut chunked);
        rest = tail;
    }
    many.finish(&mut chunked);

    check_records(&whole, cap);
    assert_eq!(whole, chunked, "chunking changed the records");
    assert_eq!(one.bytes_read(), many.bytes_read());
    check_fields(&whole);
});
