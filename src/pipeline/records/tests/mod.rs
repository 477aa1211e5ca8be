//! The reader's behaviour, record by record and line by line.

mod properties;

use super::*;

const BOM: &[u8] = b"\xef\xbb\xbf";

/// Reads `chunks` as one stream; `expect` is the expected field count, if any.
fn read_chunks(options: ReaderOptions, expect: Option<usize>, chunks: &[&[u8]]) -> Vec<Record> {
    without_ends(read_with_ends(RecordReader::new(options), expect, chunks))
}

/// Reads `chunks` with `reader` to the end of the stream, resume points kept.
fn read_with_ends(
    mut reader: RecordReader,
    expect: Option<usize>,
    chunks: &[&[u8]],
) -> Vec<Record> {
    if let Some(count) = expect {
        reader.expect_fields(count);
    }
    let mut out = Vec::new();
    for chunk in chunks {
        reader.feed(chunk, &mut out);
    }
    reader.finish(&mut out);
    out
}

/// The records without their resume points (which `resume_points_*` tests check).
fn without_ends(records: Vec<Record>) -> Vec<Record> {
    records
        .into_iter()
        .map(|record| Record {
            end: None,
            ..record
        })
        .collect()
}

fn read(text: &[u8]) -> Vec<Record> {
    read_chunks(ReaderOptions::default(), None, &[text])
}

fn read_expecting(count: usize, text: &[u8]) -> Vec<Record> {
    read_chunks(ReaderOptions::default(), Some(count), &[text])
}

fn fields(line: u64, values: &[&str]) -> Record {
    let kind = RecordKind::Fields(values.iter().map(|value| value.as_bytes()).collect());
    Record {
        line,
        kind,
        end: None,
    }
}

fn raw_fields(line: u64, values: &[&[u8]]) -> Record {
    let kind = RecordKind::Fields(values.iter().copied().collect());
    Record {
        line,
        kind,
        end: None,
    }
}

fn broken(line: u64, raw: &[u8], reason: Broken) -> Record {
    let raw = raw.to_vec();
    Record {
        line,
        kind: RecordKind::Broken { raw, reason },
        end: None,
    }
}

fn unbalanced(line: u64, raw: &str) -> Record {
    broken(line, raw.as_bytes(), Broken::UnbalancedQuote)
}

#[test]
fn lf_crlf_and_lone_cr_mixed_in_one_file_each_end_a_record_and_a_line() {
    let records = read(b"a,1\nb,2\r\nc,3\rd,4\r\n\re,5\n");
    let expected = [
        fields(1, &["a", "1"]),
        fields(2, &["b", "2"]),
        fields(3, &["c", "3"]),
        fields(4, &["d", "4"]),
        fields(6, &["e", "5"]),
    ];
    assert_eq!(records, expected);
}

#[test]
fn a_line_break_inside_quotes_moves_the_next_record_down_a_line() {
    let text = b"h1,h2\nx,y\n3,\"two\nlines\"\nnext,5\n";
    let expected = [
        fields(1, &["h1", "h2"]),
        fields(2, &["x", "y"]),
        fields(3, &["3", "two\nlines"]),
        fields(5, &["next", "5"]),
    ];
    assert_eq!(read(text), expected);
}

#[test]
fn crlf_and_lone_cr_inside_quotes_count_as_one_line_each() {
    let records = read(b"\"a\r\nb\rc\",1\r\nd,2\r\n");
    assert_eq!(
        records,
        [fields(1, &["a\r\nb\rc", "1"]), fields(4, &["d", "2"])]
    );
}

#[test]
fn a_bom_at_the_very_start_is_skipped() {
    let mut text = BOM.to_vec();
    text.extend_from_slice(b"id,name\n1,x\n");
    assert_eq!(
        read(&text),
        [fields(1, &["id", "name"]), fields(2, &["1", "x"])]
    );
}

#[test]
fn a_bom_anywhere_but_the_very_start_is_data() {
    let text = [BOM, BOM, b"a\n", BOM, b"b\n"].concat();
    let records = read(&text);
    assert_eq!(
        records,
        [fields(1, &["\u{feff}a"]), fields(2, &["\u{feff}b"])]
    );
}

#[test]
fn the_start_of_a_bom_followed_by_something_else_is_data() {
    assert_eq!(read(b"\xef\xbb,x\n"), [raw_fields(1, &[b"\xef\xbb", b"x"])]);
    assert_eq!(read(b"\xef"), [raw_fields(1, &[b"\xef"])]);
}

#[test]
fn empty_lines_are_skipped_but_counted() {
    let records = read(b"\n\r\n\ra\n\n\nb\r\n\r\n");
    assert_eq!(records, [fields(4, &["a"]), fields(7, &["b"])]);
    assert_eq!(read(b"\n\n\r\n"), []);
    assert_eq!(read(b""), []);
}

#[test]
fn a_line_of_spaces_is_a_record_of_one_field() {
    assert_eq!(
        read(b"a\n  \nb\n"),
        [fields(1, &["a"]), fields(2, &["  "]), fields(3, &["b"])]
    );
}

#[test]
fn quoted_fields_hold_doubled_quotes_delimiters_and_line_breaks() {
    let records = read(b"\"say \"\"hi\"\"\",\"a,b\",\"x\ny\",\"\"\n");
    let mut expected: Fields = ["say \"hi\"", "a,b", "x\ny"]
        .iter()
        .map(|f| f.as_bytes())
        .collect();
    expected.push(b"", true);
    let kind = RecordKind::Fields(expected);
    let end = None;
    assert_eq!(records, [Record { line: 1, kind, end }]);
}

#[test]
fn an_empty_field_is_told_from_a_quoted_empty_one_however_the_input_is_cut() {
    let text = b"id,a,b,c\r\n1,,\"\",\"x\"\n\"\",\"\"\"\",\"\n\",\n";
    let mut first = Fields::default();
    for (field, quoted) in [(&b"1"[..], false), (b"", false), (b"", true), (b"x", true)] {
        first.push(field, quoted);
    }
    let mut second = Fields::default();
    for (field, quoted) in [(&b""[..], true), (b"\"", true), (b"\n", true), (b"", false)] {
        second.push(field, quoted);
    }
    let expected = [
        fields(1, &["id", "a", "b", "c"]),
        Record {
            line: 2,
            kind: RecordKind::Fields(first),
            end: None,
        },
        Record {
            line: 3,
            kind: RecordKind::Fields(second),
            end: None,
        },
    ];
    for cut in 0..text.len() {
        let (a, b) = text.split_at(cut);
        let records = read_chunks(ReaderOptions::default(), None, &[a, b]);
        assert_eq!(records, expected, "cut at {cut}");
    }
    let nulls = |r: &Record| match &r.kind {
        RecordKind::Fields(f) => (0..f.len()).map(|i| f.is_null(i)).collect::<Vec<_>>(),
        RecordKind::Broken { .. } => Vec::new(),
    };
    assert_eq!(nulls(&read(text)[1]), [false, true, false, false]);
    assert_eq!(nulls(&read(text)[2]), [false, false, false, true]);
}

#[test]
fn a_quote_inside_an_unquoted_field_is_data() {
    assert_eq!(read(b"ab\"c,d\"\n"), [fields(1, &["ab\"c", "d\""])]);
}

#[test]
fn text_after_a_closing_quote_is_appended_to_the_field() {
    assert_eq!(
        read(b"\"ab\"c,\"ab\"c\"d\n"),
        [fields(1, &["abc", "abc\"d"])]
    );
}

#[test]
fn the_last_line_without_a_line_break_is_still_a_record() {
    assert_eq!(
        read(b"a,b\nc,d"),
        [fields(1, &["a", "b"]), fields(2, &["c", "d"])]
    );
    assert_eq!(read(b"a,\"b\"\"\""), [fields(1, &["a", "b\""])]);
    assert_eq!(read(b"a,"), [fields(1, &["a", ""])]);
}

#[test]
fn other_delimiters_and_quotes_work_the_same_way() {
    let options = ReaderOptions {
        delimiter: b';',
        quote: b'\'',
        ..ReaderOptions::default()
    };
    let records = read_chunks(options, None, &[b"'a;''b'''; \"c\"\n"]);
    assert_eq!(records, [fields(1, &["a;'b'", " \"c\""])]);
}

#[test]
fn nul_bytes_and_invalid_utf8_pass_through_as_data() {
    let records = read(b"a\0b,\xff\xfe\n\"\0\",\xc3\n");
    let expected = [
        raw_fields(1, &[b"a\0b", b"\xff\xfe"]),
        raw_fields(2, &[b"\0", b"\xc3"]),
    ];
    assert_eq!(records, expected);
}

#[test]
fn bytes_read_counts_every_byte_fed_bom_included() {
    let mut reader = RecordReader::new(ReaderOptions::default());
    let mut out = Vec::new();
    reader.feed(b"\xef\xbb", &mut out);
    reader.feed(b"\xbfa,b\n\"c", &mut out);
    assert_eq!(reader.bytes_read(), 9);
    reader.finish(&mut out);
    assert_eq!(reader.bytes_read(), 9);
}

#[test]
fn after_finish_the_reader_starts_a_new_stream_at_line_one() {
    let mut reader = RecordReader::new(ReaderOptions::default());
    let mut out = Vec::new();
    reader.feed(b"a\nb", &mut out);
    reader.finish(&mut out);
    reader.feed(b"\xef\xbb\xbfc\n", &mut out);
    reader.finish(&mut out);
    assert_eq!(
        without_ends(out),
        [fields(1, &["a"]), fields(2, &["b"]), fields(1, &["c"])]
    );
}

#[test]
fn resume_points_sit_after_each_record_and_on_the_cr_of_a_crlf() {
    // With a 16-byte cap the allowance for parsing again is full after 17 bytes of input:
    // from then on every record ending in a line break has a resume point.
    let text = b"\xef\xbb\xbfid,name\r\n1,alpha\r\n2,\"b\nc\"\n3,delta\r\n4,e";
    let records = read_with_ends(RecordReader::new(small_cap(16)), None, &[text]);
    let ends: Vec<_> = records
        .iter()
        .map(|r| r.end.map(|e| (e.offset, e.line)))
        .collect();
    // Byte 19 is the CR after `alpha`, on line 2; byte 29 is `3`, on line 5; byte 36 the CR
    // after `delta`. The last record, ended by the end of the stream, has none.
    assert_eq!(
        ends,
        [None, Some((19, 2)), Some((29, 5)), Some((36, 5)), None]
    );
    let Some(point) = records[2].end else {
        unreachable!("checked above")
    };
    let resumed = RecordReader::resumed(small_cap(16), point);
    let rest = read_with_ends(resumed, None, &[&text[29..]]);
    assert_eq!(rest, records[3..]);
    assert_eq!(
        without_ends(rest),
        [fields(5, &["3", "delta"]), fields(6, &["4", "e"])]
    );
}

fn small_cap(max_record_bytes: usize) -> ReaderOptions {
    ReaderOptions {
        max_record_bytes,
        ..ReaderOptions::default()
    }
}

#[test]
fn a_two_mib_line_is_too_long_cut_at_the_cap_and_the_next_records_parse() {
    let long = "x".repeat(2 * 1024 * 1024);
    let text = format!("a,b\n{long},y\r\nc,d\n");
    let chunks: Vec<&[u8]> = text.as_bytes().chunks(64 * 1024).collect();
    let records = read_chunks(ReaderOptions::default(), Some(2), &chunks);
    let reason = Broken::TooLong {
        bytes: long.len() as u64 + 2,
    };
    let raw = &long.as_bytes()[..DEFAULT_MAX_RECORD_BYTES];
    let expected = [
        fields(1, &["a", "b"]),
        broken(2, raw, reason),
        fields(3, &["c", "d"]),
    ];
    assert_eq!(records, expected);
}

#[test]
fn memory_stays_near_the_cap_while_a_huge_record_streams_past() {
    let mut reader = RecordReader::new(ReaderOptions::default());
    let mut out = Vec::new();
    let chunk = vec![b'x'; 64 * 1024];
    let mut most = 0;
    for _ in 0..200 {
        reader.feed(&chunk, &mut out);
        most = most.max(reader.held_bytes());
    }
    reader.feed(b"\nok\n", &mut out);
    reader.finish(&mut out);
    assert!(
        most <= 2 * DEFAULT_MAX_RECORD_BYTES + 64 * 1024,
        "held {most} bytes"
    );
    assert_eq!(out.len(), 2);
    assert_eq!(without_ends(out)[1], fields(2, &["ok"]));
}

#[test]
fn a_record_exactly_at_the_cap_is_fine_and_one_byte_more_is_too_long() {
    let records = read_chunks(small_cap(5), None, &[b"abcde\r\nabcdef\nabc\"d\n"]);
    let reason = Broken::TooLong { bytes: 6 };
    let expected = [
        fields(1, &["abcde"]),
        broken(2, b"abcde", reason),
        fields(3, &["abc\"d"]),
    ];
    assert_eq!(records, expected);
}

#[test]
fn a_too_long_record_is_followed_through_its_quotes_and_lines() {
    let text = b"1,\"long\nquoted,\nfield\",z\n2,b\n";
    let reason = Broken::TooLong { bytes: 24 };
    let expected = [broken(1, b"1,\"long\nq", reason), fields(4, &["2", "b"])];
    assert_eq!(read_chunks(small_cap(9), Some(3), &[text]), expected);
}

#[test]
fn a_record_with_too_many_fields_for_the_cap_is_too_long() {
    let commas = ",".repeat(5000);
    let text = format!("{commas}\na\n");
    let records = read_chunks(small_cap(16 * 1024), None, &[text.as_bytes()]);
    let reason = Broken::TooLong { bytes: 5000 };
    assert_eq!(
        records,
        [
            broken(1, &commas.as_bytes()[..5000], reason),
            fields(2, &["a"])
        ]
    );
}

#[test]
fn an_unbalanced_quote_mid_file_breaks_its_first_line_and_the_swallowed_lines_load() {
    let text = b"h,i,j\n1,\"abc,x\n2,def,y\n3,ghi,\"z\"\n4,jkl,w\n";
    let expected = [
        fields(1, &["h", "i", "j"]),
        unbalanced(2, "1,\"abc,x"),
        fields(3, &["2", "def", "y"]),
        fields(4, &["3", "ghi", "z"]),
        fields(5, &["4", "jkl", "w"]),
    ];
    assert_eq!(read_expecting(3, text), expected);
}

#[test]
fn a_quote_open_at_the_end_breaks_its_first_line_and_the_lines_after_load() {
    let expected = [
        unbalanced(1, "1,\"abc,x"),
        fields(2, &["2", "def", "y"]),
        fields(3, &["3", "ghi", "z"]),
    ];
    assert_eq!(
        read_expecting(3, b"1,\"abc,x\n2,def,y\n3,ghi,z\n"),
        expected
    );
    assert_eq!(read(b"1,\"abc,x\r\n2,def,y\r\n3,ghi,z"), expected);
}

#[test]
fn a_quote_open_at_the_end_on_the_last_line_breaks_only_that_line() {
    let expected = [fields(1, &["a", "b"]), unbalanced(2, "c,\"d")];
    assert_eq!(read(b"a,b\nc,\"d"), expected);
}

#[test]
fn a_line_swallowed_by_one_unbalanced_quote_can_hold_another() {
    let text = b"1,\"a\n2,\"b\n3,c,z\n";
    let expected = [
        unbalanced(1, "1,\"a"),
        unbalanced(2, "2,\"b"),
        fields(3, &["3", "c", "z"]),
    ];
    assert_eq!(read_expecting(3, text), expected);
}

#[test]
fn a_stray_quote_whose_swallowed_text_has_the_expected_count_is_one_row() {
    let text = b"1,\"a,x\n2,\"b,y\n";
    assert_eq!(
        read_expecting(3, text),
        [fields(1, &["1", "a,x\n2,b", "y"])]
    );
}

#[test]
fn a_multi_line_record_with_the_expected_field_count_is_loaded_whole() {
    let text = b"1,\"two\r\nlines\",x\r\n2,b,y\r\n";
    let expected = [
        fields(1, &["1", "two\r\nlines", "x"]),
        fields(3, &["2", "b", "y"]),
    ];
    assert_eq!(read_expecting(3, text), expected);
}

#[test]
fn without_an_expected_count_a_closed_multi_line_record_is_taken_as_it_is() {
    let text = b"1,\"abc,x\n2,\"def\n";
    assert_eq!(read(text), [fields(1, &["1", "abc,x\n2,def"])]);
}

#[test]
fn the_expected_count_can_come_from_the_header() {
    let mut reader = RecordReader::new(ReaderOptions::default());
    reader.expect_header_fields();
    let mut out = Vec::new();
    reader.feed(b"a,b\n1,\"x\n2,y\n", &mut out);
    reader.finish(&mut out);
    let expected = [
        fields(1, &["a", "b"]),
        unbalanced(2, "1,\"x"),
        fields(3, &["2", "y"]),
    ];
    assert_eq!(without_ends(out), expected);
}

#[test]
fn a_swallowing_record_over_the_cap_is_too_long_not_recovered() {
    let text = b"1,\"abc,x\n2,def,y\n3,ghi,z\n";
    let reason = Broken::TooLong { bytes: 25 };
    assert_eq!(
        read_chunks(small_cap(12), Some(3), &[text]),
        [broken(1, b"1,\"abc,x\n2,d", reason)]
    );
}

#[test]
fn line_numbers_after_a_recovery_continue_from_the_recovered_lines() {
    let text = b"1,\"a\r\n\r\n2,b\"\"c\n\n3,d\r4,e\n";
    let expected = [
        unbalanced(1, "1,\"a"),
        fields(3, &["2", "b\"\"c"]),
        fields(5, &["3", "d"]),
        fields(6, &["4", "e"]),
    ];
    assert_eq!(read_expecting(2, text), expected);
}

#[test]
fn a_broken_header_sets_no_expected_count() {
    let mut reader = RecordReader::new(small_cap(8));
    reader.expect_header_fields();
    let mut out = Vec::new();
    reader.feed(b"abcdefghij\n1,\"x\ny\"\n", &mut out);
    reader.finish(&mut out);
    let too_long = broken(1, b"abcdefgh", Broken::TooLong { bytes: 10 });
    assert_eq!(without_ends(out), [too_long, fields(2, &["1", "x\ny"])]);
}
