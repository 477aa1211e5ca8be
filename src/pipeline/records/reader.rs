//! The push parser. csv-core does the quoting; this file feeds it slices no longer than the cap
//! allows, keeps the current record's bytes only while they may still be needed (for a broken
//! record's raw bytes or for re-parsing), and applies the module's rules for faults.

use super::bom::{BOM, Bom};
use super::lines::{self, LineCounter};
use super::{Broken, Fields, ReaderOptions, Record, RecordKind, ResumePoint};
use buffers::{FIRST_FIELD_BYTES, FIRST_FIELD_ENDS, extend_capped, resize_exact, too_long_raw};
use csv_core::{ReadRecordResult, Reader, ReaderBuilder, Terminator};

mod buffers;
mod quoting;
mod recovery;

#[cfg(test)]
pub(super) use recovery::REPARSE_FACTOR;

/// The largest cap taken as it is, far beyond any memory, so that `cap + 1` never overflows.
const MAX_CAP: usize = usize::MAX / 4;

/// Splits a stream of CSV bytes into [`Record`]s; see the module docs for the rules.
///
/// Not `Clone`: csv-core 0.1.13's `Reader::clone` gives a broken parser (its DFA's `clone`
/// copies only the transition table), so the parser is never cloned, only `reset`.
#[derive(Debug)]
pub struct RecordReader {
    cap: usize,
    delimiter: u8,
    quote: u8,
    expect: Expect,
    csv: Reader,
    bom: Bom,
    lines: LineCounter,
    current: Option<Current>,
    /// The current record's bytes from slices before the one being parsed, at most the cap
    /// plus a line break: the raw bytes of a broken record, or what to parse again.
    pending: Vec<u8>,
    /// csv-core's output for the current record: the fields' bytes, back to back.
    fields: Vec<u8>,
    /// csv-core's output for the current record: where each field ends in `fields`.
    ends: Vec<usize>,
    nout: usize,
    nend: usize,
    /// Bytes to parse again, before any further input, after an unbalanced quote.
    replay: Vec<u8>,
    /// Whether the bytes being parsed are `replay`'s rather than fresh input.
    replaying: bool,
    /// How many more bytes may be parsed again; see `recovery`.
    allowance: u64,
    bytes_read: u64,
    /// Bytes of this stream handed to csv-core as fresh input (not parsed again), and its
    /// BOM: where the next fresh byte is in the stream.
    position: u64,
    /// How many bytes recoveries have handed back for parsing again.
    #[cfg(test)]
    pub(super) replayed: u64,
}

/// How many fields a record is expected to have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    Unknown,
    FirstRecord,
    Count(usize),
}

/// The record being read.
#[derive(Debug, Clone, Copy)]
struct Current {
    /// The line it starts on.
    line: u64,
    /// Its bytes so far, line break included once read.
    len: u64,
    /// Past the cap: its bytes are no longer kept.
    over: bool,
}

impl RecordReader {
    /// A reader at the start of a stream, with no expected field count.
    pub fn new(options: ReaderOptions) -> Self {
        let cap = options.max_record_bytes.clamp(1, MAX_CAP);
        Self {
            cap,
            delimiter: options.delimiter,
            quote: options.quote,
            expect: Expect::Unknown,
            csv: parser(&options),
            bom: Bom::Matching(0),
            lines: LineCounter::at(1),
            current: None,
            pending: Vec::new(),
            fields: vec![0; FIRST_FIELD_BYTES.min(cap + 1)],
            ends: vec![0; FIRST_FIELD_ENDS],
            nout: 0,
            nend: 0,
            replay: Vec::new(),
            replaying: false,
            allowance: 0,
            bytes_read: 0,
            position: 0,
            #[cfg(test)]
            replayed: 0,
        }
    }

    /// A reader for the rest of a stream from `point`, a [`Record::end`] of an earlier reader
    /// with the same options: it reads the records that reader read after that record, with
    /// the same lines and the same `end`s. Set the expected field count again.
    pub fn resumed(options: ReaderOptions, point: ResumePoint) -> Self {
        let mut reader = Self::new(options);
        reader.bom = Bom::Done;
        reader.lines = LineCounter::at(point.line);
        reader.position = point.offset;
        reader.allowance = reader.full_allowance();
        reader
    }

    /// After the header is known: records whose field count differs AND that span several
    /// physical lines are treated as an unbalanced quote (see the module docs). Applies to
    /// records completed from now on, so without a header call it before the first `feed`.
    pub fn expect_fields(&mut self, count: usize) {
        self.expect = Expect::Count(count);
    }

    /// The first record is a header: expect every later record to have as many fields as it
    /// has. Call before the first `feed`. A header that is itself broken sets no expectation.
    pub fn expect_header_fields(&mut self) {
        self.expect = Expect::FirstRecord;
    }

    /// Feeds the next bytes; completed records are appended to `out`.
    pub fn feed(&mut self, input: &[u8], out: &mut Vec<Record>) {
        self.bytes_read = self.bytes_read.saturating_add(input.len() as u64);
        let matching = matches!(self.bom, Bom::Matching(_));
        let (held, rest) = self.bom.strip(input);
        // A whole BOM was just matched (and is in neither part): count it in the position.
        if matching && self.bom == Bom::Done && rest.len() < input.len() {
            self.position = self.position.saturating_add(BOM.len() as u64);
        }
        self.push(held, out);
        self.push(rest, out);
    }

    /// End of input: the last record, if any (a quote still open at EOF is a Broken record).
    /// The reader is then ready for a new stream, line numbers from 1; the expected field
    /// count stays and `bytes_read` goes on.
    pub fn finish(&mut self, out: &mut Vec<Record>) {
        let held = self.bom.finish();
        self.push(held, out);
        while self.end_of_input(out) {
            self.drain_replay(out);
        }
        self.restart();
    }

    /// Bytes consumed so far (for progress): every byte fed, BOM included.
    pub fn bytes_read(&self) -> u64 {
        self.bytes_read
    }

    /// The bytes the reader holds on to: its buffers' capacities, for tests of the bound.
    #[cfg(test)]
    pub(super) fn held_bytes(&self) -> usize {
        self.pending.capacity()
            + self.fields.capacity()
            + self.ends.capacity() * size_of::<usize>()
            + self.replay.capacity()
    }

    /// Parses `input` and anything a recovery hands back for parsing again.
    fn push(&mut self, mut input: &[u8], out: &mut Vec<Record>) {
        loop {
            self.drain_replay(out);
            if input.is_empty() {
                return;
            }
            let used = self.parse(input, out);
            // `parse` adds up what csv-core used of the slices it was given, all within `input`.
            input = &input[used..];
        }
    }

    /// Parses `input` until it is used up or a recovery hands bytes back, which must be
    /// parsed before the rest; returns how many bytes of `input` were used.
    fn parse(&mut self, input: &[u8], out: &mut Vec<Record>) -> usize {
        let mut used = 0;
        while let Some(rest) = input.get(used..).filter(|rest| !rest.is_empty()) {
            let (consumed, recovered) = self.step(rest, out);
            used += consumed;
            if recovered {
                break;
            }
        }
        used
    }

    /// One call to csv-core: reads at most one record from `rest`, returns how many bytes it
    /// used and whether a recovery handed bytes back.
    fn step(&mut self, rest: &[u8], out: &mut Vec<Record>) -> (usize, bool) {
        let over = self.current.is_some_and(|current| current.over);
        let slice = if over {
            rest
        } else {
            rest.get(..self.room().min(rest.len())).unwrap_or(rest)
        };
        let (result, nin, nout, nend) = self.read(slice, over);
        if !self.replaying {
            self.accrue(nin);
            self.position = self.position.saturating_add(nin as u64);
        }
        // csv-core never reports more bytes read than it was given.
        let body = self.take(&slice[..nin]);
        if !over {
            self.nout += nout;
            self.nend += nend;
        }
        if result == ReadRecordResult::Record {
            return (nin, self.end_record(body, true, out));
        }
        self.keep(body);
        if !over {
            match result {
                ReadRecordResult::OutputFull => self.grow_fields(),
                ReadRecordResult::OutputEndsFull => self.grow_ends(),
                _ => {}
            }
        }
        (nin, false)
    }

    /// How many more bytes the current record may take before it is over the cap: enough to
    /// see the cap crossed, and no more, so that nothing grows past it.
    fn room(&self) -> usize {
        let used = self.current.map_or(0, |current| current.len);
        let room = (self.cap as u64 + 1).saturating_sub(used).max(1);
        usize::try_from(room).unwrap_or(usize::MAX)
    }

    /// Calls csv-core; over the cap its output goes to the buffers as scratch, to be ignored.
    fn read(&mut self, slice: &[u8], over: bool) -> (ReadRecordResult, usize, usize, usize) {
        let (fields, ends) = if over {
            (&mut self.fields[..], &mut self.ends[..])
        } else {
            // `nout` and `nend` only grow by what csv-core wrote into these same buffers, so
            // they never pass their lengths.
            (&mut self.fields[self.nout..], &mut self.ends[self.nend..])
        };
        self.csv.read_record(slice, fields, ends)
    }

    /// Counts the lines and bytes csv-core consumed. Line breaks before a record starts are
    /// empty lines (or the LF of a CRLF), which csv-core skips: the record starts after them.
    /// Returns the part of `consumed` that belongs to the current record.
    fn take<'a>(&mut self, consumed: &'a [u8]) -> &'a [u8] {
        let body = if self.current.is_none() {
            let blank = consumed.iter().take_while(|&&b| lines::is_break(b)).count();
            let (skipped, body) = consumed.split_at(blank);
            self.lines.advance(skipped);
            if !body.is_empty() {
                self.current = Some(Current {
                    line: self.lines.line(),
                    len: 0,
                    over: false,
                });
            }
            body
        } else {
            consumed
        };
        self.lines.advance(body);
        if let Some(current) = &mut self.current {
            current.len = current.len.saturating_add(body.len() as u64);
        }
        body
    }

    /// The current record has ended, with `body` its bytes from the last slice; `terminated`
    /// unless it ended at the end of input. Returns whether a recovery handed bytes back.
    fn end_record(&mut self, body: &[u8], terminated: bool, out: &mut Vec<Record>) -> bool {
        let Some(current) = self.current.take() else {
            return false;
        };
        let length = current.len.saturating_sub(u64::from(terminated));
        let lines = self.lines.line().saturating_sub(current.line);
        let multi_line = lines > u64::from(terminated);
        let mut recovered = false;
        if current.over || length > self.cap as u64 {
            self.emit_too_long(&current, length, body, terminated, out);
        } else if multi_line && self.unexpected(self.nend) {
            extend_capped(&mut self.pending, body, self.cap + 1);
            recovered = self.recover(current.line, out);
        } else {
            // Within the buffers, as above.
            let ends = &self.ends[..self.nend];
            let quoted =
                quoting::quoted_empty([&self.pending, body], ends, self.delimiter, self.quote);
            let mut fields = Fields::from_parts(self.fields[..self.nout].to_vec(), ends.to_vec());
            if !quoted.is_empty() {
                fields.set_quoted_empty(quoted);
            }
            let kind = RecordKind::Fields(fields);
            let end = self.resume_point(terminated);
            self.emit(
                Record {
                    line: current.line,
                    kind,
                    end,
                },
                out,
            );
        }
        self.pending.clear();
        self.nout = 0;
        self.nend = 0;
        recovered
    }

    /// Where a reader may start again after the record that just ended (see [`ResumePoint`]).
    fn resume_point(&self, terminated: bool) -> Option<ResumePoint> {
        let clean = !self.replaying && self.replay.is_empty();
        if !terminated || !clean || self.allowance < self.full_allowance() {
            return None;
        }
        // A record ends on the CR of a CRLF: the new reader starts at that CR, so that it
        // counts the LF after it as part of the same line break.
        let back = u64::from(self.lines.after_cr());
        Some(ResumePoint {
            offset: self.position.saturating_sub(back),
            line: self.lines.line().saturating_sub(back),
        })
    }

    /// A record of `length` bytes, over the cap, has ended with `body`: it is too long, and its
    /// raw bytes are its first `cap` bytes, never its line break.
    fn emit_too_long(
        &mut self,
        current: &Current,
        length: u64,
        body: &[u8],
        terminated: bool,
        out: &mut Vec<Record>,
    ) {
        let content = match body.split_last() {
            Some((_, content)) if terminated => content,
            _ => body,
        };
        let raw = too_long_raw(&self.pending, content, self.cap);
        let reason = Broken::TooLong { bytes: length };
        self.emit(broken(current.line, raw, reason), out);
    }

    /// Whether a record of `fields` fields is not what is expected.
    fn unexpected(&self, fields: usize) -> bool {
        matches!(self.expect, Expect::Count(count) if count != fields)
    }

    /// Hands out a record, learning the expected field count from a header.
    fn emit(&mut self, record: Record, out: &mut Vec<Record>) {
        if self.expect == Expect::FirstRecord {
            self.expect = match &record.kind {
                RecordKind::Fields(fields) => Expect::Count(fields.len()),
                RecordKind::Broken { .. } => Expect::Unknown,
            };
        }
        out.push(record);
    }

    /// Back to the start of a stream, keeping options, expectation and the byte count.
    fn restart(&mut self) {
        start_over(&mut self.csv);
        self.bom = Bom::Matching(0);
        self.lines = LineCounter::at(1);
        self.current = None;
        self.pending.clear();
        self.nout = 0;
        self.nend = 0;
        self.replay.clear();
        self.allowance = 0;
        self.position = 0;
    }
}

/// A csv-core parser for `options`, told never to strip a BOM: `Bom` does that across chunks.
fn parser(options: &ReaderOptions) -> Reader {
    let mut csv = ReaderBuilder::new()
        .delimiter(options.delimiter)
        .quote(options.quote)
        .terminator(Terminator::CRLF)
        .build();
    never_strip_bom(&mut csv);
    csv
}

/// Back to the state of a new parser, still never stripping a BOM.
fn start_over(csv: &mut Reader) {
    csv.reset();
    never_strip_bom(csv);
}

/// csv-core strips a BOM only on its first call after being built or reset; a call with no
/// room for output reads nothing but counts as that first call.
fn never_strip_bom(csv: &mut Reader) {
    let _ = csv.read_record(b" ", &mut [], &mut []);
}

fn broken(line: u64, raw: Vec<u8>, reason: Broken) -> Record {
    Record {
        line,
        kind: RecordKind::Broken { raw, reason },
        end: None,
    }
}
