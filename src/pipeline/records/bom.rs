//! The UTF-8 byte order mark, skipped at the very start of a stream and nowhere else, even
//! when the chunks split it. (csv-core strips one itself only when its first slice holds all
//! three bytes, so the reader turns that off and relies on this instead.)

pub(super) const BOM: &[u8; 3] = b"\xef\xbb\xbf";

/// How much of a BOM the start of the stream has matched so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Bom {
    /// At the start of the stream; this many bytes of a BOM seen (and held back) so far.
    Matching(usize),
    /// Past the start: every byte is data.
    Done,
}

impl Bom {
    /// Splits the next chunk into bytes held back earlier that turned out to be data, to be
    /// parsed first, and the part of the chunk to parse after them. A BOM, or the part of one
    /// seen so far, is in neither.
    pub(super) fn strip<'a>(&mut self, input: &'a [u8]) -> (&'static [u8], &'a [u8]) {
        let Bom::Matching(seen) = *self else {
            return (&[], input);
        };
        // `seen` counts matched BOM bytes: never more than the BOM's length.
        let wanted = &BOM[seen..];
        let matched = wanted.iter().zip(input).take_while(|(a, b)| a == b).count();
        if matched == wanted.len() {
            *self = Bom::Done;
            // `matched` counts pairs zipped with `input`: at most its length.
            return (&[], &input[matched..]);
        }
        if matched == input.len() {
            *self = Bom::Matching(seen + matched);
            return (&[], &[]);
        }
        *self = Bom::Done;
        (&BOM[..seen], input)
    }

    /// End of input: the bytes held back, which were data after all.
    pub(super) fn finish(&mut self) -> &'static [u8] {
        let held = match *self {
            Bom::Matching(seen) => &BOM[..seen],
            Bom::Done => &[],
        };
        *self = Bom::Done;
        held
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Everything `Bom` hands on for parsing, for the given chunks.
    fn passed_on(chunks: &[&[u8]]) -> Vec<u8> {
        let mut bom = Bom::Matching(0);
        let mut parsed = Vec::new();
        for chunk in chunks {
            let (held, rest) = bom.strip(chunk);
            parsed.extend_from_slice(held);
            parsed.extend_from_slice(rest);
        }
        parsed.extend_from_slice(bom.finish());
        parsed
    }

    #[test]
    fn a_bom_split_across_three_chunks_is_skipped() {
        assert_eq!(passed_on(&[b"\xef", b"\xbb", b"\xbfa,b"]), b"a,b");
    }

    #[test]
    fn only_the_first_bom_is_skipped() {
        assert_eq!(passed_on(&[b"\xef\xbb\xbf\xef\xbb\xbf"]), b"\xef\xbb\xbf");
    }

    #[test]
    fn the_start_of_a_bom_followed_by_other_bytes_is_data() {
        assert_eq!(passed_on(&[b"\xef\xbb", b"x"]), b"\xef\xbbx");
        assert_eq!(passed_on(&[b"\xef", b"\xef\xbb\xbf"]), b"\xef\xef\xbb\xbf");
    }

    #[test]
    fn the_start_of_a_bom_at_the_end_of_input_is_data() {
        assert_eq!(passed_on(&[b"\xef", b"", b"\xbb"]), b"\xef\xbb");
    }
}
