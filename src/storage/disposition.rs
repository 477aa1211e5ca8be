//! The `Content-Disposition` of a download, as a pure function.
//!
//! A client chooses the name a file is saved under, so it is hostile input that ends up in a
//! response header and on the user's disk. [`content_disposition`] first makes the name safe
//! ([`safe_filename`]: no path separators, control or bidi-control characters, leading dots,
//! runaway length), then writes it twice, per RFC 6266 and RFC 5987: an ASCII fallback in
//! `filename="…"` for old clients, and the exact UTF-8 name, percent-encoded, in `filename*`.
//! The result is always printable ASCII, so it is a valid header value.

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

/// The longest file name handed out, in characters (file systems allow 255 bytes).
pub const MAX_FILENAME_CHARS: usize = 150;
/// The longest extension kept whole when a name is shortened, in characters.
const MAX_EXTENSION_CHARS: usize = 16;
/// The name used when nothing usable is left.
const FALLBACK_NAME: &str = "download";

/// RFC 5987 `attr-char`: everything else in `filename*` is percent-encoded.
const ATTR_CHAR: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'!')
    .remove(b'#')
    .remove(b'$')
    .remove(b'&')
    .remove(b'+')
    .remove(b'-')
    .remove(b'.')
    .remove(b'^')
    .remove(b'_')
    .remove(b'`')
    .remove(b'|')
    .remove(b'~');

/// `attachment; filename="<ascii>"; filename*=UTF-8''<percent-encoded utf-8>` for `filename`.
pub fn content_disposition(filename: &str) -> String {
    let name = safe_filename(filename);
    let fallback = ascii_fallback(&name);
    let encoded = utf8_percent_encode(&name, ATTR_CHAR);
    format!("attachment; filename=\"{fallback}\"; filename*=UTF-8''{encoded}")
}

/// `name` as a single, harmless file name: separators and invisible or control characters
/// become `_`, leading dots and surrounding spaces go, and a name longer than
/// [`MAX_FILENAME_CHARS`] is cut before its extension. Never empty.
pub fn safe_filename(name: &str) -> String {
    let replaced: String = name
        .chars()
        .map(|c| if is_unsafe(c) { '_' } else { c })
        .collect();
    let trimmed = replaced
        .trim_start_matches(|c: char| c == '.' || c.is_whitespace())
        .trim_end_matches(|c: char| c == '.' || c.is_whitespace());
    if trimmed.is_empty() {
        return FALLBACK_NAME.to_owned();
    }
    shorten(trimmed)
}

/// Characters never allowed in a file name we hand out.
fn is_unsafe(c: char) -> bool {
    c.is_control()
        || matches!(c, '/' | '\\')
        // Bidi embeddings, overrides and isolates, and the marks: they can disguise an extension.
        || matches!(c, '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// Cuts `name` to [`MAX_FILENAME_CHARS`], keeping a short extension.
fn shorten(name: &str) -> String {
    if name.chars().count() <= MAX_FILENAME_CHARS {
        return name.to_owned();
    }
    let extension = name
        .rfind('.')
        .map(|dot| &name[dot..])
        .filter(|ext| ext.chars().count() <= MAX_EXTENSION_CHARS)
        .unwrap_or("");
    let stem_chars = MAX_FILENAME_CHARS - extension.chars().count();
    let stem: String = name.chars().take(stem_chars).collect();
    format!("{stem}{extension}")
}

/// The printable-ASCII form for `filename="…"`: every run of characters that cannot appear
/// inside the quotes (non-ASCII, `"`, `\`, `%`) becomes one `_`.
fn ascii_fallback(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for c in name.chars() {
        let keep = (' '..='~').contains(&c) && !matches!(c, '"' | '\\' | '%');
        if keep {
            out.push(c);
        } else if !out.ends_with('_') {
            out.push('_');
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn is_header_safe(value: &str) -> bool {
        value.bytes().all(|b| (0x20..0x7f).contains(&b))
    }

    #[test]
    fn a_plain_name_appears_unchanged_in_both_forms() {
        assert_eq!(
            content_disposition("users-2026-11-23.csv.gz"),
            "attachment; filename=\"users-2026-11-23.csv.gz\"; filename*=UTF-8''users-2026-11-23.csv.gz"
        );
    }

    #[test]
    fn quotes_and_backslashes_cannot_end_the_quoted_string() {
        let value = content_disposition("a\"b\\c\".csv");
        assert!(
            value.starts_with("attachment; filename=\"a_b_c_.csv\"; "),
            "{value}"
        );
        assert!(
            value.ends_with("filename*=UTF-8''a%22b_c%22.csv"),
            "{value}"
        );
    }

    #[test]
    fn newlines_and_nul_cannot_inject_headers() {
        let value = content_disposition("report\r\nSet-Cookie: x=1\0.csv");
        assert!(is_header_safe(&value), "{value}");
        assert!(
            value.contains("filename=\"report__Set-Cookie: x=1_.csv\""),
            "{value}"
        );
        assert!(!value.contains("%0A") && !value.contains("%00"), "{value}");
    }

    #[test]
    fn path_traversal_becomes_a_plain_name() {
        assert_eq!(safe_filename("../../etc/passwd"), "_.._etc_passwd");
        assert_eq!(safe_filename("..\\..\\boot.ini"), "_.._boot.ini");
        assert_eq!(safe_filename(".bashrc"), "bashrc");
        assert_eq!(safe_filename(" ... "), "download");
        assert_eq!(safe_filename(""), "download");
    }

    #[test]
    fn non_latin_names_keep_their_utf8_form_and_get_an_ascii_fallback() {
        let value = content_disposition("Отчёт 日本語.csv");
        assert!(value.contains("filename=\"_ _.csv\""), "{value}");
        assert!(
            value.ends_with(
                "filename*=UTF-8''%D0%9E%D1%82%D1%87%D1%91%D1%82%20%E6%97%A5%E6%9C%AC%E8%AA%9E.csv"
            ),
            "{value}"
        );
        assert!(is_header_safe(&value));
    }

    #[test]
    fn bidi_overrides_cannot_disguise_the_extension() {
        assert_eq!(safe_filename("invoice\u{202e}fdp.exe"), "invoice_fdp.exe");
    }

    #[test]
    fn very_long_names_are_cut_before_the_extension() {
        let name = format!("{}.csv.gz", "x".repeat(1000));
        let safe = safe_filename(&name);
        assert_eq!(safe.chars().count(), MAX_FILENAME_CHARS);
        assert!(safe.ends_with("x.gz"), "{safe}");
        let long_unicode = "é".repeat(400);
        assert_eq!(
            safe_filename(&long_unicode).chars().count(),
            MAX_FILENAME_CHARS
        );
        assert!(content_disposition(&long_unicode).len() < 1000);
    }

    #[test]
    fn a_long_tail_after_the_last_dot_is_not_treated_as_an_extension() {
        let name = format!("a.{}", "b".repeat(300));
        assert_eq!(safe_filename(&name).chars().count(), MAX_FILENAME_CHARS);
    }
}
