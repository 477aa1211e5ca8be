//! PostgreSQL's text `COPY` format, for tables with a column type the binary encoder does not
//! know (`inet`, `interval`, arrays, …): the validator passes such fields through trimmed and the
//! database parses them.

use crate::pipeline::loaders::RowEncoder;
use std::borrow::Cow;

/// Encodes rows as tab-separated text lines.
pub struct TextEncoder;

impl RowEncoder for TextEncoder {
    fn encode(&mut self, values: &[Option<Cow<'_, str>>], out: &mut Vec<u8>) -> Result<(), String> {
        push_copy_row(out, values.iter().map(|v| v.as_deref()));
        Ok(())
    }
}

/// A row encoded by [`TextEncoder`] with one more field in front.
pub fn with_leading_int8(row: &[u8], value: i64, out: &mut Vec<u8>) {
    out.extend_from_slice(value.to_string().as_bytes());
    out.push(b'\t');
    out.extend_from_slice(row);
}

/// Appends one row in COPY's text format: tab-separated, `\N` for NULL, and backslash, tab,
/// newline and carriage return escaped.
pub fn push_copy_row<'a>(out: &mut Vec<u8>, values: impl IntoIterator<Item = Option<&'a str>>) {
    for (i, value) in values.into_iter().enumerate() {
        if i > 0 {
            out.push(b'\t');
        }
        match value {
            None => out.extend_from_slice(b"\\N"),
            Some(text) => escape_into(out, text.as_bytes()),
        }
    }
    out.push(b'\n');
}

fn escape_into(out: &mut Vec<u8>, bytes: &[u8]) {
    // Most values need no escaping: find out with two vectorised scans, then copy at once.
    if memchr::memchr3(b'\\', b'\t', b'\n', bytes).is_none()
        && memchr::memchr(b'\r', bytes).is_none()
    {
        out.extend_from_slice(bytes);
        return;
    }
    let mut start = 0;
    for (i, byte) in bytes.iter().enumerate() {
        let escaped: &[u8] = match byte {
            b'\\' => b"\\\\",
            b'\t' => b"\\t",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            _ => continue,
        };
        out.extend_from_slice(&bytes[start..i]);
        out.extend_from_slice(escaped);
        start = i + 1;
    }
    out.extend_from_slice(&bytes[start..]);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copy_rows_escape_what_the_text_format_treats_specially() {
        let mut out = Vec::new();
        push_copy_row(
            &mut out,
            [Some("a\tb"), None, Some("back\\slash\nline\r"), Some("")],
        );
        assert_eq!(out, b"a\\tb\t\\N\tback\\\\slash\\nline\\r\t\n");
    }
}
