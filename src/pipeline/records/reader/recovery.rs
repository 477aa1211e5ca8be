//! Recovery from an unbalanced quote, by the rule in the `records` module docs: the first line
//! of a record that swallowed lines is reported broken, and the lines after it are parsed again.
//!
//! Parsing again is not free. Text like `"⏎a","⏎a","⏎a",…` is one record of many fields; read
//! from its second line it is again one record of the wrong width, and so on, line by line:
//! re-parsing it would take time quadratic in its length. So re-parsing draws on an allowance
//! of [`REPARSE_FACTOR`] bytes per byte of fresh input, never more than that many times the cap
//! at once. When the swallowed lines would overdraw it they are reported broken line by line,
//! without parsing them (what the rule yields for such text anyway), and reading goes on after
//! them. The allowance depends only on the stream, not on how it is cut into chunks. Files with
//! a few stray quotes re-parse a small fraction of their bytes and never come near it.

use super::{LineCounter, ReadRecordResult, RecordReader, broken, lines, resize_exact, start_over};
use crate::pipeline::records::{Broken, Record};

/// How many bytes may be parsed again per byte of fresh input.
pub(in crate::pipeline::records) const REPARSE_FACTOR: u64 = 4;

impl RecordReader {
    /// Fresh input was read: more may be parsed again.
    pub(super) fn accrue(&mut self, fresh: usize) {
        let more = REPARSE_FACTOR.saturating_mul(fresh as u64);
        self.allowance = self
            .allowance
            .saturating_add(more)
            .min(self.full_allowance());
    }

    /// The most that may be parsed again at once.
    pub(super) fn full_allowance(&self) -> u64 {
        REPARSE_FACTOR.saturating_mul(self.cap as u64 + 1)
    }

    /// Parses the bytes handed back by recoveries; one met while doing so hands back its own
    /// bytes, which come before what is left of the earlier ones.
    pub(super) fn drain_replay(&mut self, out: &mut Vec<Record>) {
        while !self.replay.is_empty() {
            let replay = std::mem::take(&mut self.replay);
            self.replaying = true;
            let used = self.parse(&replay, out);
            self.replaying = false;
            // `parse` uses at most the bytes it was given.
            self.replay.extend_from_slice(&replay[used..]);
        }
    }

    /// The record in `pending`, starting on `line`, swallowed lines through an unbalanced
    /// quote: its first line is broken, the rest is parsed again from a fresh state. Returns
    /// whether there is anything to parse again.
    pub(super) fn recover(&mut self, line: u64, out: &mut Vec<Record>) -> bool {
        let record = std::mem::take(&mut self.pending);
        let Some((first, rest)) = lines::split_first_line(&record) else {
            self.emit(broken(line, record, Broken::UnbalancedQuote), out);
            return false;
        };
        self.emit(broken(line, first.to_vec(), Broken::UnbalancedQuote), out);
        start_over(&mut self.csv);
        self.lines = LineCounter::at(line.saturating_add(1));
        let length = rest.len() as u64;
        if length <= self.allowance {
            self.allowance -= length;
            #[cfg(test)]
            {
                self.replayed += length;
            }
            self.replay = rest.to_vec();
        } else {
            self.break_lines(rest, out);
        }
        self.pending = record;
        !self.replay.is_empty()
    }

    /// Reports every line of `rest`, the lines a record swallowed, as broken without parsing
    /// them; the line counter is at the first of them, and ends up past them.
    fn break_lines(&mut self, mut rest: &[u8], out: &mut Vec<Record>) {
        while let Some(&first) = rest.first() {
            let (line, next) = lines::split_first_line(rest).unwrap_or((rest, &[]));
            if !lines::is_break(first) {
                let record = broken(self.lines.line(), line.to_vec(), Broken::UnbalancedQuote);
                self.emit(record, out);
            }
            // `next` is a tail of `rest`, so this is the length of what came before it.
            let used = rest.len() - next.len();
            self.lines.advance(&rest[..used]);
            rest = next;
        }
    }

    /// Reads the end of input; returns whether a recovery handed bytes back. A line break fed
    /// to the parser tells whether the record is inside a quoted field: if it ends the record,
    /// the record was complete (the break adds no bytes to it), else the quote is unbalanced.
    pub(super) fn end_of_input(&mut self, out: &mut Vec<Record>) -> bool {
        let Some(current) = self.current else {
            return false;
        };
        if self.nout >= self.fields.len() {
            resize_exact(&mut self.fields, self.nout + 1);
        }
        if self.nend >= self.ends.len() {
            resize_exact(&mut self.ends, self.nend + 1);
        }
        let end = if current.over { &b""[..] } else { b"\n" };
        let (result, _, nout, nend) = self.read(end, current.over);
        if result == ReadRecordResult::Record {
            if !current.over {
                self.nout += nout;
                self.nend += nend;
            }
            return self.end_record(&[], false, out);
        }
        self.current = None;
        let recovered = self.recover(current.line, out);
        self.pending.clear();
        self.nout = 0;
        self.nend = 0;
        recovered
    }
}
