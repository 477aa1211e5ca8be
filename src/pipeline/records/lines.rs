//! Physical line numbers. LF, CRLF and a lone CR each end one line, exactly as each ends a
//! record in csv-core's `Terminator::CRLF` mode, so a record's line is the line a text editor
//! shows it on. A CR is counted when it is seen; an LF right after it (even in the next chunk)
//! then completes the same line break rather than starting another.

/// Whether `byte` is (part of) a line break.
pub(super) fn is_break(byte: u8) -> bool {
    byte == b'\n' || byte == b'\r'
}

/// Splits off the first physical line: the bytes before its line break and the bytes after
/// that break (CRLF being one break). `None` when `bytes` holds no line break.
pub(super) fn split_first_line(bytes: &[u8]) -> Option<(&[u8], &[u8])> {
    let at = bytes.iter().position(|&byte| is_break(byte))?;
    let (line, rest) = bytes.split_at(at);
    let width = if rest.starts_with(b"\r\n") { 2 } else { 1 };
    // `rest` starts with the break found above, and with both bytes of a CRLF when `width` is 2.
    Some((line, &rest[width..]))
}

/// The physical line the next byte is on, carried from chunk to chunk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct LineCounter {
    line: u64,
    after_cr: bool,
}

impl LineCounter {
    /// Counting from the first byte of line `line`, right after a complete line break.
    pub(super) fn at(line: u64) -> Self {
        Self {
            line,
            after_cr: false,
        }
    }

    /// The 1-based line the next byte is on.
    pub(super) fn line(&self) -> u64 {
        self.line
    }

    /// Whether the last byte was a CR (so that an LF next ends no further line).
    pub(super) fn after_cr(&self) -> bool {
        self.after_cr
    }

    /// Moves past `bytes`. One pass counts CRs and LFs alike (the compiler vectorises it); a
    /// CRLF needs two of them, so only a slice with two or more pays for a pass finding pairs.
    /// (A record's bytes usually hold one: csv-core ends a record on the CR of a CRLF.)
    pub(super) fn advance(&mut self, bytes: &[u8]) {
        let Some(&last) = bytes.last() else {
            return;
        };
        let all = bytes.iter().filter(|&&byte| is_break(byte)).count();
        let pairs = if all >= 2 { crlf_pairs(bytes) } else { 0 };
        let continued = usize::from(self.after_cr && bytes.first() == Some(&b'\n'));
        let breaks = all.saturating_sub(pairs + continued);
        self.line = self.line.saturating_add(breaks as u64);
        self.after_cr = last == b'\r';
    }
}

fn crlf_pairs(bytes: &[u8]) -> usize {
    bytes
        .iter()
        .zip(bytes.iter().skip(1))
        .filter(|&(&first, &second)| first == b'\r' && second == b'\n')
        .count()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    /// The obvious byte-at-a-time definition the fast counter must agree with.
    fn reference_breaks(bytes: &[u8]) -> u64 {
        let mut breaks = 0;
        let mut previous = 0u8;
        for &byte in bytes {
            if byte == b'\r' || (byte == b'\n' && previous != b'\r') {
                breaks += 1;
            }
            previous = byte;
        }
        breaks
    }

    #[test]
    fn lf_crlf_and_a_lone_cr_each_end_one_line() {
        let mut counter = LineCounter::at(1);
        counter.advance(b"a\nb\r\nc\rd");
        assert_eq!(counter.line(), 4);
    }

    #[test]
    fn a_crlf_split_between_chunks_is_one_line_break() {
        let mut counter = LineCounter::at(1);
        counter.advance(b"a\r");
        counter.advance(b"\nb");
        assert_eq!(counter.line(), 2);
    }

    #[test]
    fn the_first_line_is_split_off_at_any_kind_of_line_break() {
        assert_eq!(
            split_first_line(b"ab\r\ncd\n"),
            Some((&b"ab"[..], &b"cd\n"[..]))
        );
        assert_eq!(split_first_line(b"ab\rcd"), Some((&b"ab"[..], &b"cd"[..])));
        assert_eq!(split_first_line(b"ab\n"), Some((&b"ab"[..], &b""[..])));
        assert_eq!(split_first_line(b"ab"), None);
    }

    #[test]
    fn counting_in_random_pieces_agrees_with_counting_byte_by_byte() {
        let alphabet = [b'a', b'\r', b'\n', b'"', b','];
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        for _ in 0..2000 {
            let length = rng.random_range(0..40);
            let text: Vec<u8> = (0..length)
                .map(|_| alphabet[rng.random_range(0..alphabet.len())])
                .collect();
            let mut counter = LineCounter::at(1);
            let mut rest = &text[..];
            while !rest.is_empty() {
                let (piece, tail) = rest.split_at(rng.random_range(1..=rest.len()));
                counter.advance(piece);
                rest = tail;
            }
            assert_eq!(counter.line(), 1 + reference_breaks(&text), "{text:?}");
        }
    }
}
