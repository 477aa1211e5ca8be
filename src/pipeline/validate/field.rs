//! The raw field before any type is considered: bytes that must be UTF-8 without NUL, and how
//! a value is quoted in a reject reason.

/// The longest part of a value quoted in a reason, in characters; the reject report carries
/// the whole record anyway.
const SHOWN_CHARS: usize = 40;

/// The field as text: rejected when it is not UTF-8, or holds a NUL byte (no PostgreSQL text
/// can).
pub(super) fn decode(raw: &[u8]) -> Result<&str, String> {
    let text = std::str::from_utf8(raw)
        .map_err(|e| format!("not valid UTF-8 (at byte {})", e.valid_up_to()))?;
    if raw.contains(&0) {
        return Err("contains a NUL byte".to_owned());
    }
    Ok(text)
}

/// `value` quoted and escaped for a reason, cut to its first [`SHOWN_CHARS`] characters.
pub(super) fn shown(value: &str) -> String {
    match value.char_indices().nth(SHOWN_CHARS) {
        Some((end, _)) => format!("{:?}…", value.get(..end).unwrap_or(value)),
        None => format!("{value:?}"),
    }
}

#[cfg(test)]
mod tests {
    use super::{decode, shown};

    #[test]
    fn decode_accepts_utf8_and_rejects_bad_bytes_and_nul() {
        assert_eq!(decode("héllo".as_bytes()), Ok("héllo"));
        assert_eq!(decode(b""), Ok(""));
        assert_eq!(
            decode(b"ab\xffcd"),
            Err("not valid UTF-8 (at byte 2)".to_owned())
        );
        assert_eq!(decode(b"a\0b"), Err("contains a NUL byte".to_owned()));
    }

    #[test]
    fn shown_quotes_escapes_and_cuts_long_values() {
        assert_eq!(shown("12.5"), "\"12.5\"");
        assert_eq!(shown("a\"b\n"), "\"a\\\"b\\n\"");
        let long = "é".repeat(100);
        assert_eq!(shown(&long), format!("{:?}…", "é".repeat(40)));
    }
}
