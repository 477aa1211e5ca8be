//! Telling early that an upload is not text at all (an image, an archive, UTF-16), so the job
//! fails with one clear error instead of rejecting every "row" of a binary file.
//!
//! Text, in any ASCII-compatible encoding, has almost no control bytes other than tab, line
//! breaks, vertical tab, form feed and escape; binary data has them everywhere (about one byte in eight of
//! compressed or random data, half of UTF-16's bytes are NUL). Bytes from 0x80 up are never held
//! against a sample: they are UTF-8 or Latin-1 accents as often as binary.

/// How much of the start of a file [`looks_like_text`] looks at.
pub const TEXT_SAMPLE_BYTES: usize = 8 * 1024;

/// The share of control bytes above which a sample is not text: one in 64. A few stray NULs
/// in real CSV stay far below it (and are rejected row by row by the validator).
const MAX_CONTROL_SHARE: usize = 64;

/// Whether the first [`TEXT_SAMPLE_BYTES`] of `sample` (the start of the decompressed file)
/// could be text. An empty sample could.
pub fn looks_like_text(sample: &[u8]) -> bool {
    let sample = sample.get(..TEXT_SAMPLE_BYTES).unwrap_or(sample);
    let controls = sample.iter().filter(|&&byte| is_binary(byte)).count();
    controls.saturating_mul(MAX_CONTROL_SHARE) <= sample.len()
}

/// NUL and the C0 control bytes that text does not use, and DEL.
fn is_binary(byte: u8) -> bool {
    matches!(byte, 0x00..=0x08 | 0x0e..=0x1a | 0x1c..=0x1f | 0x7f)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{RngCore, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    fn noise(length: usize) -> Vec<u8> {
        let mut bytes = vec![0; length];
        ChaCha8Rng::seed_from_u64(89).fill_bytes(&mut bytes);
        bytes
    }

    #[test]
    fn a_png_header_followed_by_binary_noise_is_not_text() {
        let mut png = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR".to_vec();
        png.extend(noise(4000));
        assert!(!looks_like_text(&png));
    }

    #[test]
    fn ordinary_csv_is_text() {
        let csv = "id,name,email\n1,Ada,ada@example.com\r\n2,\"Lovelace, A\",\t\n".repeat(50);
        assert!(looks_like_text(csv.as_bytes()));
    }

    #[test]
    fn utf8_text_with_accents_and_latin1_are_text() {
        let utf8 = "nom,ville\nÉlodie,Besançon\nJürgen,Köln ✓\n".repeat(20);
        assert!(looks_like_text(utf8.as_bytes()));
        assert!(looks_like_text(b"nom,ville\n\xc9lodie,Besan\xe7on\n"));
    }

    #[test]
    fn utf16_text_is_not_text_we_can_read() {
        let utf16: Vec<u8> = "id,name\n1,Ada\n"
            .encode_utf16()
            .flat_map(u16::to_le_bytes)
            .collect();
        assert!(!looks_like_text(&utf16));
    }

    #[test]
    fn a_few_nul_bytes_in_a_large_csv_still_look_like_text() {
        let mut csv = "1,abc,def\n".repeat(200).into_bytes();
        csv.extend_from_slice(b"2,a\0b,c\0\n");
        assert!(looks_like_text(&csv));
    }

    #[test]
    fn an_empty_sample_is_text_and_only_the_first_8_kib_count() {
        assert!(looks_like_text(b""));
        let mut text_then_binary = "a,b\n".repeat(TEXT_SAMPLE_BYTES / 4).into_bytes();
        text_then_binary.extend(vec![0; 100_000]);
        assert!(looks_like_text(&text_then_binary));
    }
}
