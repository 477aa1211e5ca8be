//! Property tests: generated CSV reads back as the rows it was written from, and no way of
//! cutting a stream into chunks changes what comes out, broken input included.

use super::*;
use crate::pipeline::records::reader::REPARSE_FACTOR;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::time::Instant;

/// Cuts `text` at random places, sometimes into empty chunks, often into one- or two-byte
/// chunks so that CRLFs, doubled quotes and BOMs get split.
fn random_chunks<'a>(rng: &mut ChaCha8Rng, text: &'a [u8]) -> Vec<&'a [u8]> {
    let mut chunks = Vec::new();
    let mut rest = text;
    while !rest.is_empty() {
        let most = if rng.random_bool(0.5) { 3 } else { rest.len() };
        let (chunk, tail) = rest.split_at(rng.random_range(0..=most.min(rest.len())));
        chunks.push(chunk);
        rest = tail;
    }
    chunks
}

/// A CSV file written from known rows, and the records reading it must give.
struct Generated {
    text: Vec<u8>,
    records: Vec<Record>,
    line: u64,
}

impl Generated {
    /// Writes a line break; never a lone LF right after a CR, which would merge with it.
    fn line_break(&mut self, rng: &mut ChaCha8Rng) {
        let choices: &[&[u8]] = if self.text.ends_with(b"\r") {
            &[b"\r", b"\r\n"]
        } else {
            &[b"\n", b"\r\n", b"\r"]
        };
        self.text
            .extend_from_slice(choices[rng.random_range(0..choices.len())]);
        self.line += 1;
    }

    /// Writes a field, quoted when it must be and sometimes when it need not; an empty field
    /// is quoted when `quote_empty`. Returns whether it was quoted.
    fn field(
        &mut self,
        rng: &mut ChaCha8Rng,
        field: &[u8],
        delimiter: u8,
        quote_empty: bool,
    ) -> bool {
        let special = |&byte: &u8| byte == delimiter || byte == b'"' || lines::is_break(byte);
        let quoted = if field.is_empty() {
            quote_empty
        } else {
            field.iter().any(special) || rng.random_bool(0.1)
        };
        if quoted {
            self.text.push(b'"');
            for &byte in field {
                if byte == b'"' {
                    self.text.push(b'"');
                }
                self.text.push(byte);
            }
            self.text.push(b'"');
            self.line += lines_in(field);
        } else {
            self.text.extend_from_slice(field);
        }
        quoted
    }
}

/// Line breaks inside a field, counted the obvious way.
fn lines_in(field: &[u8]) -> u64 {
    let mut counter = lines::LineCounter::at(0);
    counter.advance(field);
    counter.line()
}

fn random_field(rng: &mut ChaCha8Rng) -> Vec<u8> {
    let pieces: [&[u8]; 12] = [
        b"a",
        b"b",
        b" ",
        b",",
        b";",
        b"\t",
        b"\"",
        b"\r",
        b"\n",
        b"\r\n",
        "é".as_bytes(),
        b"\0",
    ];
    let length = rng.random_range(0..6);
    (0..length)
        .flat_map(|_| pieces[rng.random_range(0..pieces.len())].iter().copied())
        .collect()
}

fn generate(rng: &mut ChaCha8Rng, delimiter: u8) -> Generated {
    let mut file = Generated {
        text: Vec::new(),
        records: Vec::new(),
        line: 1,
    };
    if rng.random_bool(0.3) {
        file.text.extend_from_slice(BOM);
    }
    let rows = rng.random_range(0..10);
    for row in 0..rows {
        while rng.random_bool(0.2) {
            file.line_break(rng);
        }
        let values: Vec<Vec<u8>> = (0..rng.random_range(1..5))
            .map(|_| random_field(rng))
            .collect();
        let line = file.line;
        let mut fields = Fields::default();
        for (index, value) in values.iter().enumerate() {
            if index > 0 {
                file.text.push(delimiter);
            }
            // A record of one unquoted empty field would be an empty line, which is skipped.
            let quote_empty = values.len() == 1 || rng.random_bool(0.5);
            let quoted = file.field(rng, value, delimiter, quote_empty);
            fields.push(value, quoted);
        }
        let kind = RecordKind::Fields(fields);
        file.records.push(Record {
            line,
            kind,
            end: None,
        });
        if row + 1 < rows || rng.random_bool(0.5) {
            file.line_break(rng);
        }
    }
    file
}

#[test]
fn generated_csv_cut_anywhere_reads_back_as_the_rows_it_was_written_from() {
    let mut rng = ChaCha8Rng::seed_from_u64(4180);
    for case in 0..3000 {
        let delimiter = [b',', b';', b'\t'][case % 3];
        let file = generate(&mut rng, delimiter);
        let options = ReaderOptions {
            delimiter,
            ..ReaderOptions::default()
        };
        let chunks = random_chunks(&mut rng, &file.text);
        let records = read_chunks(options, None, &chunks);
        assert_eq!(
            records,
            file.records,
            "case {case}: {:?}",
            String::from_utf8_lossy(&file.text)
        );
    }
}

/// Short lines of mostly quotes, delimiters and line breaks: every kind of broken record.
fn garbage(rng: &mut ChaCha8Rng) -> Vec<u8> {
    let pieces: [&[u8]; 9] = [
        b"a", b"bc", b",", b"\"", b"\"\"", b"\r", b"\n", b"\r\n", BOM,
    ];
    let length = rng.random_range(0..40);
    (0..length)
        .flat_map(|_| pieces[rng.random_range(0..pieces.len())].iter().copied())
        .collect()
}

#[test]
fn broken_input_gives_the_same_records_and_resume_points_however_it_is_cut() {
    let mut rng = ChaCha8Rng::seed_from_u64(1997);
    for case in 0..5000 {
        let text = garbage(&mut rng);
        let options = small_cap(rng.random_range(1..24));
        let expect = rng.random_bool(0.8).then(|| rng.random_range(1..4));
        let whole = read_with_ends(RecordReader::new(options), expect, &[&text]);
        let chunks = random_chunks(&mut rng, &text);
        let cut = read_with_ends(RecordReader::new(options), expect, &chunks);
        assert_eq!(
            cut,
            whole,
            "case {case}: {:?}",
            String::from_utf8_lossy(&text)
        );
    }
}

/// Checks every resume point of `text`: a reader started there reads exactly the records
/// (with their resume points) that came after its record. Returns how many there were.
fn check_resume_points(options: ReaderOptions, expect: Option<usize>, text: &[u8]) -> usize {
    let whole = read_with_ends(RecordReader::new(options), expect, &[text]);
    let mut points = 0;
    for (index, record) in whole.iter().enumerate() {
        let Some(point) = record.end else {
            continue;
        };
        points += 1;
        let rest = &text[point.offset as usize..];
        let resumed = read_with_ends(RecordReader::resumed(options, point), expect, &[rest]);
        assert_eq!(
            resumed,
            whole[index + 1..],
            "resumed at {point:?} in {:?}",
            String::from_utf8_lossy(text)
        );
    }
    points
}

#[test]
fn a_reader_resumed_at_any_resume_point_reads_what_the_first_read_after_it() {
    let mut rng = ChaCha8Rng::seed_from_u64(1203);
    let mut points = 0;
    for case in 0..3000 {
        let delimiter = [b',', b';', b'\t'][case % 3];
        let file = generate(&mut rng, delimiter);
        let options = ReaderOptions {
            delimiter,
            max_record_bytes: rng.random_range(1..16),
            ..ReaderOptions::default()
        };
        points += check_resume_points(options, None, &file.text);
        let text = garbage(&mut rng);
        let expect = rng.random_bool(0.8).then(|| rng.random_range(1..4));
        points += check_resume_points(small_cap(rng.random_range(1..24)), expect, &text);
    }
    assert!(points > 3000, "only {points} resume points");
}

#[test]
fn broken_records_never_hold_more_than_the_cap_nor_a_line_break_at_the_end() {
    let mut rng = ChaCha8Rng::seed_from_u64(2024);
    for _ in 0..5000 {
        let text = garbage(&mut rng);
        let cap = rng.random_range(1..24);
        for record in read_chunks(small_cap(cap), Some(2), &[&text]) {
            if let RecordKind::Broken { raw, reason } = record.kind {
                assert!(raw.len() <= cap, "{raw:?}");
                let unbalanced = reason == Broken::UnbalancedQuote;
                assert!(!(unbalanced && raw.iter().any(|&b| lines::is_break(b))));
            }
        }
    }
}

#[test]
fn re_parsing_after_unbalanced_quotes_stays_within_its_allowance() {
    let mut rng = ChaCha8Rng::seed_from_u64(77);
    let (mut fed, mut replayed) = (0u64, 0u64);
    for _ in 0..5000 {
        let text = garbage(&mut rng);
        let mut reader = RecordReader::new(small_cap(1024));
        reader.expect_fields(rng.random_range(1..4));
        let mut out = Vec::new();
        reader.feed(&text, &mut out);
        reader.finish(&mut out);
        assert!(
            reader.replayed <= REPARSE_FACTOR * text.len() as u64,
            "{text:?}"
        );
        fed += text.len() as u64;
        replayed += reader.replayed;
    }
    assert!(replayed < fed, "re-parsed {replayed} of {fed} bytes");
}

#[test]
fn text_that_would_re_parse_quadratically_is_broken_line_by_line_in_linear_time() {
    let text = "\"\na\",".repeat(20_000);
    let mut reader = RecordReader::new(ReaderOptions::default());
    reader.expect_fields(3);
    let mut out = Vec::new();
    for chunk in text.as_bytes().chunks(1000) {
        reader.feed(chunk, &mut out);
    }
    reader.finish(&mut out);
    assert!(reader.replayed <= REPARSE_FACTOR * text.len() as u64);
    assert_eq!(out.len(), 20_001);
    assert_eq!(out[0], unbalanced(1, "\""));
    for (index, record) in out.iter().enumerate().skip(1).take(19_999) {
        assert_eq!(*record, unbalanced(index as u64 + 1, "a\",\""));
    }
    assert_eq!(out[20_000], unbalanced(20_001, "a\","));
}

/// About 8 MiB of plain CSV: ids, names, emails, a few quoted fields with commas.
fn throughput_block() -> Vec<u8> {
    let mut block = Vec::with_capacity(9 << 20);
    let mut id = 0u64;
    while block.len() < 8 << 20 {
        id += 1;
        let line = format!(
            "{id},user {id},user{id}@example.com,\"Street {id}, Town\",{},2024-05-{:02}T10:00:00Z\n",
            id % 997,
            id % 28 + 1
        );
        block.extend_from_slice(line.as_bytes());
    }
    block
}

#[test]
#[ignore = "throughput: run in release with --ignored --nocapture"]
fn throughput_on_200_mb_of_csv() {
    let block = throughput_block();
    let mut reader = RecordReader::new(ReaderOptions::default());
    reader.expect_fields(6);
    let mut out = Vec::with_capacity(2048);
    let (mut records, mut fields) = (0u64, 0u64);
    let started = Instant::now();
    for _ in 0..25 {
        for chunk in block.chunks(64 * 1024) {
            reader.feed(chunk, &mut out);
            records += out.len() as u64;
            fields += out
                .iter()
                .map(|record| match &record.kind {
                    RecordKind::Fields(fields) => fields.len() as u64,
                    RecordKind::Broken { .. } => 0,
                })
                .sum::<u64>();
            out.clear();
        }
    }
    reader.finish(&mut out);
    let seconds = started.elapsed().as_secs_f64();
    let megabytes = reader.bytes_read() as f64 / 1e6;
    println!(
        "{megabytes:.0} MB, {records} records, {fields} fields in {seconds:.2} s: {:.0} MB/s",
        megabytes / seconds
    );
    assert_eq!(fields, records * 6);
}
