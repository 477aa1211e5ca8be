//! The text encoding of an uploaded file (`format.encoding`, SPEC §4.1): any label of the WHATWG
//! Encoding Standard (`utf-8`, `utf-16`, `utf-16be`, `latin1`, `windows-1252`, `shift_jis`, …),
//! resolved the way browsers resolve it, plus `latin-1`, which the SPEC names. Decoding itself is
//! the import pipeline's job; this type only says which encoding a request declared.
//!
//! Two choices follow the WHATWG standard and are worth knowing: `latin-1`, `latin1` and
//! `iso-8859-1` are all windows-1252 (which agrees with ISO-8859-1 except that 0x80–0x9F are
//! printable characters such as `€` instead of C1 control codes), and `utf-16` without more is
//! UTF-16LE. A byte order mark at the start of the file overrides the label in any case.

use encoding_rs::Encoding;

/// A file's declared text encoding; see the module docs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TextEncoding(&'static Encoding);

impl Default for TextEncoding {
    fn default() -> Self {
        Self::UTF_8
    }
}

impl TextEncoding {
    /// UTF-8, the default.
    pub const UTF_8: Self = Self(encoding_rs::UTF_8);

    /// The encoding a label names, case-insensitively and ignoring surrounding whitespace.
    /// Refused: labels that WHATWG does not know, and those it maps to its `replacement`
    /// encoding (`iso-2022-kr`, `hz-gb-2312`, …), which turns any file into one error.
    pub fn parse(label: &str) -> Result<Self, String> {
        let trimmed = label.trim();
        let name = if trimmed.eq_ignore_ascii_case("latin-1") {
            "latin1"
        } else {
            trimmed
        };
        match Encoding::for_label(name.as_bytes()) {
            Some(encoding) if encoding == encoding_rs::REPLACEMENT => Err(format!(
                "{label:?} names an encoding that cannot be decoded safely; \
                 give the file's real encoding"
            )),
            Some(encoding) => Ok(Self(encoding)),
            None => Err(format!(
                "unknown encoding {label:?}: give a WHATWG label such as utf-8, utf-16, \
                 latin-1 or windows-1252"
            )),
        }
    }

    /// Whether the encoding is UTF-8 (the file is read as it is, without decoding).
    pub fn is_utf8(self) -> bool {
        self.0 == encoding_rs::UTF_8
    }

    /// Whether the encoding is UTF-16, either byte order (NUL bytes are then part of the text).
    pub fn is_utf16(self) -> bool {
        self.0 == encoding_rs::UTF_16LE || self.0 == encoding_rs::UTF_16BE
    }

    /// The encoding's canonical name (`UTF-8`, `UTF-16LE`, `windows-1252`, …).
    pub fn name(self) -> &'static str {
        self.0.name()
    }

    /// The encoding itself, for a decoder.
    pub fn encoding(self) -> &'static Encoding {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whatwg_labels_resolve_as_browsers_resolve_them() {
        let name = |label: &str| TextEncoding::parse(label).map(TextEncoding::name);
        assert_eq!(name("utf-8"), Ok("UTF-8"));
        assert_eq!(name(" UTF8 "), Ok("UTF-8"));
        assert_eq!(name("utf-16"), Ok("UTF-16LE"));
        assert_eq!(name("UTF-16BE"), Ok("UTF-16BE"));
        assert_eq!(name("latin-1"), Ok("windows-1252"));
        assert_eq!(name("Latin1"), Ok("windows-1252"));
        assert_eq!(name("iso-8859-1"), Ok("windows-1252"));
        assert_eq!(name("cp1252"), Ok("windows-1252"));
        assert_eq!(name("iso-8859-15"), Ok("ISO-8859-15"));
        assert_eq!(name("sjis"), Ok("Shift_JIS"));
    }

    #[test]
    fn unknown_and_replacement_labels_are_refused() {
        for label in ["", "utf-9", "latin-2x", "ebcdic"] {
            let error = TextEncoding::parse(label).unwrap_err();
            assert!(error.starts_with("unknown encoding"), "{label}: {error}");
        }
        let error = TextEncoding::parse("iso-2022-kr").unwrap_err();
        assert!(error.contains("cannot be decoded"), "{error}");
    }

    #[test]
    fn utf16_is_told_apart_from_the_rest() {
        let parse = |label| TextEncoding::parse(label).unwrap();
        assert!(parse("utf-16le").is_utf16() && parse("utf-16be").is_utf16());
        assert!(!parse("utf-8").is_utf16() && !parse("windows-1252").is_utf16());
        assert!(parse("unicode-1-1-utf-8").is_utf8());
        assert!(TextEncoding::default().is_utf8());
    }
}
