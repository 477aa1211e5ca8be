//! Text decoding between decompression and the CSV reader: a file in any encoding becomes the
//! UTF-8 the reader and the validator work on, as it streams, through fixed buffers.
//!
//! A byte order mark decides first (UTF-8, UTF-16LE or UTF-16BE, whatever was declared, as the
//! WHATWG standard says); without one the declared encoding does. UTF-8 is never decoded: the
//! bytes go to the reader as they are (its BOM is skipped there, its invalid sequences are
//! rejected row by row by the validator), so the common case costs nothing.
//!
//! Any other encoding goes through an `encoding_rs` decoder without replacement. Where the
//! decoder finds a byte sequence that is no character in the encoding (an unpaired UTF-16
//! surrogate, an odd last byte, a byte a single-byte encoding leaves undefined), the output gets
//! [`MALFORMED`] instead, a byte that never occurs in UTF-8: the record it falls into is
//! rejected by the reader, naming the encoding, and every other record loads. Line breaks are
//! decoded like any other character, so line numbers are those of the original file.

use encoding_rs::{DecoderResult, Encoding};
use std::io::{self, Read};

/// Stands in the decoded text for each malformed sequence; 0xFF is never part of UTF-8.
pub const MALFORMED: u8 = 0xFF;

/// Bytes of encoded input read at once, and of decoded output held at once.
const BUFFER: usize = 64 * 1024;

/// The longest byte order mark (UTF-8's).
const BOM_BYTES: usize = 3;

/// The input as UTF-8: `input` itself when the file is UTF-8 (by its BOM, or by `declared`
/// when it has none), else a decoding reader. Returns the encoding actually used too.
pub fn decoded(
    mut input: Box<dyn Read>,
    declared: &'static Encoding,
) -> io::Result<(Box<dyn Read>, &'static Encoding)> {
    let mut head = [0u8; BOM_BYTES];
    let filled = fill(&mut input, &mut head)?;
    let head = head.get(..filled).unwrap_or_default().to_vec();
    let encoding = Encoding::for_bom(&head).map_or(declared, |(encoding, _)| encoding);
    let whole = Box::new(io::Cursor::new(head).chain(input));
    if encoding == encoding_rs::UTF_8 {
        return Ok((whole, encoding));
    }
    Ok((Box::new(Decoding::new(whole, encoding)), encoding))
}

/// Reads until `buf` is full or the input ends; returns how much was read.
fn fill(input: &mut dyn Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while let Some(rest) = buf.get_mut(filled..).filter(|rest| !rest.is_empty()) {
        match input.read(rest) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

/// Decodes `inner` to UTF-8 with [`MALFORMED`] for each malformed sequence.
struct Decoding<R> {
    inner: R,
    decoder: encoding_rs::Decoder,
    input: Box<[u8]>,
    /// The part of `input` not yet decoded.
    start: usize,
    end: usize,
    /// `inner` has ended.
    eof: bool,
    /// The decoder has been told the input ended and has flushed everything.
    done: bool,
    output: Box<[u8]>,
    /// The part of `output` not yet handed out.
    pos: usize,
    len: usize,
}

impl<R: Read> Decoding<R> {
    fn new(inner: R, encoding: &'static Encoding) -> Self {
        Self {
            inner,
            // The BOM, if any, is the encoding's own: it was chosen by it.
            decoder: encoding.new_decoder_with_bom_removal(),
            input: vec![0; BUFFER].into_boxed_slice(),
            start: 0,
            end: 0,
            eof: false,
            done: false,
            output: vec![0; BUFFER].into_boxed_slice(),
            pos: 0,
            len: 0,
        }
    }

    /// Decodes into the empty `output` until it holds something or the input is done.
    fn refill(&mut self) -> io::Result<()> {
        self.pos = 0;
        self.len = 0;
        while self.len == 0 && !self.done {
            if self.start == self.end && !self.eof {
                self.start = 0;
                self.end = fill_some(&mut self.inner, &mut self.input)?;
                self.eof = self.end == 0;
            }
            self.decode_step();
        }
        Ok(())
    }

    /// One call to the decoder. Output space is left for one [`MALFORMED`] byte: `len` is 0
    /// here, so the decoder writes at most `BUFFER - 1` bytes.
    fn decode_step(&mut self) {
        let source = self.input.get(self.start..self.end).unwrap_or_default();
        let Some(target) = self.output.get_mut(..BUFFER - 1) else {
            return;
        };
        let (result, read, written) = self
            .decoder
            .decode_to_utf8_without_replacement(source, target, self.eof);
        self.start += read;
        self.len = written;
        match result {
            DecoderResult::InputEmpty => self.done = self.eof,
            DecoderResult::OutputFull => {}
            DecoderResult::Malformed(_, _) => {
                if let Some(slot) = self.output.get_mut(written) {
                    *slot = MALFORMED;
                    self.len += 1;
                }
            }
        }
    }
}

impl<R: Read> Read for Decoding<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        if self.pos == self.len {
            self.refill()?;
        }
        let ready = self.output.get(self.pos..self.len).unwrap_or_default();
        let n = ready.len().min(buf.len());
        buf[..n].copy_from_slice(&ready[..n]);
        self.pos += n;
        Ok(n)
    }
}

/// One read that is not interrupted.
fn fill_some(input: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    loop {
        match input.read(buf) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            other => return other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Decodes `bytes` declared as `label`, read `step` bytes at a time.
    fn decode(bytes: &[u8], label: &str, step: usize) -> (Vec<u8>, &'static str) {
        let declared = Encoding::for_label(label.as_bytes()).unwrap();
        let (mut reader, used) =
            decoded(Box::new(Trickle(bytes.to_vec(), step)), declared).unwrap();
        let mut out = Vec::new();
        let mut buf = vec![0; step.max(1)];
        loop {
            let n = reader.read(&mut buf).unwrap();
            if n == 0 {
                break;
            }
            out.extend_from_slice(&buf[..n]);
        }
        (out, used.name())
    }

    /// A reader that hands out at most `.1` bytes per read.
    struct Trickle(Vec<u8>, usize);

    impl Read for Trickle {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let n = self.0.len().min(buf.len()).min(self.1);
            buf[..n].copy_from_slice(&self.0[..n]);
            self.0.drain(..n);
            Ok(n)
        }
    }

    fn utf16(text: &str, big_endian: bool) -> Vec<u8> {
        text.encode_utf16()
            .flat_map(|unit| match big_endian {
                true => unit.to_be_bytes(),
                false => unit.to_le_bytes(),
            })
            .collect()
    }

    #[test]
    fn utf8_passes_through_untouched_bom_and_bad_bytes_included() {
        let bytes = b"\xef\xbb\xbfa,b\n\xff,\xc3\xa9\n";
        for step in [1, 2, 7, 4096] {
            assert_eq!(decode(bytes, "utf-8", step), (bytes.to_vec(), "UTF-8"));
        }
        assert_eq!(decode(b"", "utf-8", 1), (Vec::new(), "UTF-8"));
        assert_eq!(decode(b"a", "utf-8", 1), (b"a".to_vec(), "UTF-8"));
    }

    #[test]
    fn windows_1252_and_latin1_become_utf8() {
        let bytes = b"name,price\n\x93caf\xe9\x94,\x80 5\nJ\xfcrgen,\x9c\n";
        let want = "name,price\n\u{201c}café\u{201d},€ 5\nJürgen,œ\n";
        for step in [1, 3, 4096] {
            assert_eq!(
                decode(bytes, "latin1", step),
                (want.as_bytes().to_vec(), "windows-1252")
            );
        }
    }

    #[test]
    fn a_utf16_bom_decides_the_byte_order_whatever_was_declared() {
        let text = "id,name\n1,Zoë 😀\n";
        for (declared, big) in [("utf-16le", true), ("utf-8", false), ("utf-16be", false)] {
            let mut bytes = utf16("\u{feff}", big);
            bytes.extend(utf16(text, big));
            for step in [1, 3, 5, 4096] {
                let (out, used) = decode(&bytes, declared, step);
                assert_eq!(String::from_utf8(out).unwrap(), text, "{declared} {step}");
                assert_eq!(used, if big { "UTF-16BE" } else { "UTF-16LE" });
            }
        }
    }

    #[test]
    fn utf16_without_a_bom_follows_the_label() {
        let (out, used) = decode(&utf16("a,b\n", true), "utf-16be", 2);
        assert_eq!((out, used), (b"a,b\n".to_vec(), "UTF-16BE"));
        let (out, used) = decode(&utf16("a,b\n", false), "utf-16", 2);
        assert_eq!((out, used), (b"a,b\n".to_vec(), "UTF-16LE"));
    }

    #[test]
    fn a_utf8_bom_makes_a_file_declared_otherwise_utf8() {
        let (out, used) = decode("\u{feff}é\n".as_bytes(), "windows-1252", 1);
        assert_eq!((out, used), ("\u{feff}é\n".as_bytes().to_vec(), "UTF-8"));
    }

    #[test]
    fn malformed_sequences_become_one_marker_in_their_own_line() {
        // An unpaired high surrogate just before a line break, and an odd last byte.
        let mut bytes = utf16("a\n", false);
        bytes.extend([0x00, 0xd8]);
        bytes.extend(utf16("\nb\n", false));
        bytes.push(b'c');
        for step in [1, 2, 3, 4096] {
            let (out, _) = decode(&bytes, "utf-16le", step);
            assert_eq!(out, b"a\n\xff\nb\n\xff", "{step}");
        }
        // A byte windows-1253 leaves undefined.
        let (out, _) = decode(b"x\xaay\n", "windows-1253", 1);
        assert_eq!(out, b"x\xffy\n");
    }

    #[test]
    fn long_input_streams_through_the_fixed_buffers() {
        let line = "\u{e9}t\u{e9},\u{20ac}\n";
        let text = line.repeat(50_000);
        let (bytes, _, _) = encoding_rs::WINDOWS_1252.encode(&text);
        let (out, _) = decode(&bytes, "windows-1252", 10_000);
        assert_eq!(out.len(), text.len());
        assert!(out == text.as_bytes());
    }
}
