//! The checks at the door (SPEC §4.1): from the first bytes of an upload, before a job is made
//! or a byte is kept, tell an empty file (`422 empty_file`) and one that is plainly not
//! delimited text (`415 not_csv`: an image, a PDF, an archive or office file, an executable,
//! binary data) from a file worth importing. Pure: the API hands it the head of the body, or of
//! a direct upload's object.
//!
//! A gzip file is judged by what it holds: only its head is inflated, into a buffer of
//! [`HEAD_BYTES`]. Text with a UTF-16 byte-order mark, or declared UTF-16, is text even though
//! half its bytes are NUL. Anything the head cannot decide (a gzip header longer than the head,
//! say) is let in: the job's own reader still checks the whole file.

use crate::domain::import::Compression;
use crate::pipeline::records::looks_like_text;
use flate2::read::MultiGzDecoder;
use std::io::Read;

/// How many bytes of a file (and, for gzip, of what it holds) the check looks at.
pub const HEAD_BYTES: usize = 8 * 1024;

/// Why a file is refused at the door.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// No bytes at all (after decompression).
    Empty,
    /// Not delimited text; says what it looks like instead.
    NotCsv(String),
}

impl Refusal {
    /// The stable error code (`empty_file`, `not_csv`).
    pub fn code(&self) -> &'static str {
        match self {
            Self::Empty => "empty_file",
            Self::NotCsv(_) => "not_csv",
        }
    }

    /// What is wrong, for the client.
    pub fn message(&self) -> String {
        match self {
            Self::Empty => "the file is empty: no header and no rows".to_owned(),
            Self::NotCsv(what) => format!("the file is not CSV text: {what}"),
        }
    }
}

/// The start of a file as it arrived.
#[derive(Debug, Clone, Copy)]
pub struct Head<'a> {
    /// The first bytes, up to [`HEAD_BYTES`] or more.
    pub bytes: &'a [u8],
    /// Whether `bytes` is the whole file.
    pub whole: bool,
}

/// Checks the start of an upload read with `compression`; `utf16` says the spec declares a
/// UTF-16 encoding (so NUL bytes are expected).
pub fn check(head: Head<'_>, compression: Compression, utf16: bool) -> Result<(), Refusal> {
    if head.bytes.is_empty() && head.whole {
        return Err(Refusal::Empty);
    }
    let gzip = head.bytes.starts_with(GZIP) && compression != Compression::None;
    if !gzip {
        return check_text(head.bytes, utf16);
    }
    match inflate_head(head) {
        Inflated::Head(inner) if inner.is_empty() => Err(Refusal::Empty),
        Inflated::Head(inner) if inner.starts_with(GZIP) => {
            Err(Refusal::NotCsv("a gzip file inside a gzip file".into()))
        }
        Inflated::Head(inner) => check_text(&inner, utf16),
        Inflated::Corrupt => Err(Refusal::NotCsv("the gzip data is corrupt".into())),
        Inflated::Undecided => Ok(()),
    }
}

const GZIP: &[u8] = b"\x1f\x8b";

/// Known kinds of file that are not text, by their first bytes.
const MAGIC: &[(&[u8], &str)] = &[
    (b"\x89PNG\r\n\x1a\n", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"GIF87a", "a GIF image"),
    (b"GIF89a", "a GIF image"),
    (b"%PDF-", "a PDF document"),
    (b"PK\x03\x04", "a zip archive (or an xlsx/docx/ods file)"),
    (b"PK\x05\x06", "a zip archive (empty)"),
    (b"PK\x07\x08", "a zip archive (spanned)"),
    (
        b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1",
        "an old Office document (xls/doc)",
    ),
    (b"\x7fELF", "an ELF executable"),
    (b"\xfd7zXZ\x00", "an xz file"),
    (b"\x28\xb5\x2f\xfd", "a zstd file"),
    (b"7z\xbc\xaf\x27\x1c", "a 7-Zip archive"),
    (b"Rar!\x1a\x07", "a RAR archive"),
    (b"SQLite format 3\x00", "a SQLite database"),
];

/// Byte-order marks of UTF-16: text, whatever the NULs.
const UTF16_BOMS: [&[u8]; 2] = [b"\xff\xfe", b"\xfe\xff"];

fn check_text(bytes: &[u8], utf16: bool) -> Result<(), Refusal> {
    if is_webp(bytes) {
        return Err(Refusal::NotCsv("looks like a WebP image".into()));
    }
    if let Some((_, what)) = MAGIC.iter().find(|(magic, _)| bytes.starts_with(magic)) {
        return Err(Refusal::NotCsv(format!("looks like {what}")));
    }
    if utf16 || UTF16_BOMS.iter().any(|bom| bytes.starts_with(bom)) {
        return Ok(());
    }
    if looks_like_text(bytes) {
        Ok(())
    } else {
        Err(Refusal::NotCsv(
            "binary data (NUL or control bytes) at its start".into(),
        ))
    }
}

fn is_webp(bytes: &[u8]) -> bool {
    bytes.starts_with(b"RIFF") && bytes.get(8..12) == Some(b"WEBP".as_slice())
}

/// What the head of a gzip file holds.
enum Inflated {
    /// The first bytes it holds, at most [`HEAD_BYTES`] (fewer only when it holds fewer).
    Head(Vec<u8>),
    /// The head is not gzip data after all.
    Corrupt,
    /// Too little arrived to tell.
    Undecided,
}

/// Inflates at most [`HEAD_BYTES`] of what a gzip head holds.
fn inflate_head(head: Head<'_>) -> Inflated {
    let mut decoder = MultiGzDecoder::new(head.bytes);
    let mut inner = vec![0u8; HEAD_BYTES];
    let mut filled = 0;
    while filled < HEAD_BYTES {
        // `filled < HEAD_BYTES == inner.len()`: the range is in bounds.
        match decoder.read(&mut inner[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            // A head cut mid-stream ends in an error once its bytes are used up.
            Err(_) if filled > 0 => break,
            Err(_) if head.whole => return Inflated::Corrupt,
            Err(_) => return Inflated::Undecided,
        }
    }
    if filled == 0 && !head.whole {
        return Inflated::Undecided;
    }
    inner.truncate(filled);
    Inflated::Head(inner)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn whole(bytes: &[u8]) -> Result<(), Refusal> {
        check(Head { bytes, whole: true }, Compression::Auto, false)
    }

    fn gzip(bytes: &[u8]) -> Vec<u8> {
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        encoder.write_all(bytes).unwrap();
        encoder.finish().unwrap()
    }

    fn refused_as_not_csv(bytes: &[u8]) -> bool {
        matches!(whole(bytes), Err(Refusal::NotCsv(_)))
    }

    #[test]
    fn an_empty_file_is_empty_but_an_unfinished_empty_head_is_not_judged() {
        assert_eq!(whole(b""), Err(Refusal::Empty));
        let head = Head {
            bytes: b"",
            whole: false,
        };
        assert_eq!(check(head, Compression::Auto, false), Ok(()));
    }

    #[test]
    fn csv_in_utf8_latin1_and_with_a_bom_passes() {
        assert_eq!(whole(b"id,name\n1,Ada\n"), Ok(()));
        assert_eq!(whole("nom\nÉlodie\n".as_bytes()), Ok(()));
        assert_eq!(whole(b"nom\n\xc9lodie\n"), Ok(()));
        assert_eq!(whole(b"\xef\xbb\xbfid\n1\n"), Ok(()));
        assert_eq!(whole(b"\n"), Ok(()));
    }

    #[test]
    fn images_documents_archives_and_executables_are_not_csv() {
        let mut webp = b"RIFF\x10\0\0\0WEBPVP8 ".to_vec();
        webp.extend_from_slice(b"abc");
        for file in [
            b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR".as_slice(),
            b"\xff\xd8\xff\xe0\0\x10JFIF",
            b"GIF89a\x01\0\x01\0",
            b"GIF87a",
            &webp,
            b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n",
            b"PK\x03\x04\x14\0\x06\0[Content_Types].xml",
            b"PK\x05\x06",
            b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1",
            b"\x7fELF\x02\x01\x01",
            b"SQLite format 3\0",
        ] {
            assert!(refused_as_not_csv(file), "{file:?}");
        }
    }

    #[test]
    fn binary_data_with_nul_bytes_is_not_csv_but_a_stray_nul_in_text_is_left_to_the_rows() {
        assert!(refused_as_not_csv(b"\0\0\0\x01\x02abc\0\0"));
        let noise: Vec<u8> = (0..4000u32).map(|i| (i * 7 % 256) as u8).collect();
        assert!(refused_as_not_csv(&noise));
        let mut csv = "1,abc,def\n".repeat(200).into_bytes();
        csv.extend_from_slice(b"2,a\0b,c\n");
        assert_eq!(whole(&csv), Ok(()));
    }

    #[test]
    fn utf16_with_a_bom_or_declared_is_text() {
        let text: Vec<u8> = "id,name\n1,Ada\n"
            .encode_utf16()
            .flat_map(u16::to_le_bytes)
            .collect();
        assert!(refused_as_not_csv(&text));
        let head = Head {
            bytes: &text,
            whole: true,
        };
        assert_eq!(check(head, Compression::Auto, true), Ok(()));
        let with_bom = [b"\xff\xfe".as_slice(), &text].concat();
        assert_eq!(whole(&with_bom), Ok(()));
        let big_endian: Vec<u8> = "\u{feff}id\n1\n"
            .encode_utf16()
            .flat_map(u16::to_be_bytes)
            .collect();
        assert_eq!(whole(&big_endian), Ok(()));
        // A declared encoding does not make an image text.
        let png = Head {
            bytes: b"\x89PNG\r\n\x1a\n\0\0",
            whole: true,
        };
        assert!(matches!(
            check(png, Compression::Auto, true),
            Err(Refusal::NotCsv(_))
        ));
    }

    #[test]
    fn gzip_is_judged_by_what_it_holds() {
        assert_eq!(whole(&gzip(b"id\n1\n")), Ok(()));
        assert_eq!(whole(&gzip(b"")), Err(Refusal::Empty));
        assert!(refused_as_not_csv(&gzip(b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR")));
        assert!(refused_as_not_csv(&gzip(&gzip(b"id\n1\n"))));
        assert!(refused_as_not_csv(
            b"\x1f\x8b\x08\0garbage-that-is-not-deflate"
        ));
        // Declared uncompressed, gzip bytes are binary data.
        let head = Head {
            bytes: &gzip(b"id\n1\n"),
            whole: true,
        };
        assert!(matches!(
            check(head, Compression::None, false),
            Err(Refusal::NotCsv(_))
        ));
    }

    #[test]
    fn the_head_of_a_large_gzip_file_is_enough() {
        let csv = "id,text\n".to_owned() + &"1,some words here\n".repeat(100_000);
        let compressed = gzip(csv.as_bytes());
        let head = Head {
            bytes: &compressed[..HEAD_BYTES],
            whole: false,
        };
        assert_eq!(check(head, Compression::Gzip, false), Ok(()));
        let tiny = Head {
            bytes: &compressed[..4],
            whole: false,
        };
        assert_eq!(check(tiny, Compression::Auto, false), Ok(()));
    }
}
