//! Booleans, length-limited text, UUIDs, JSON and enum labels.

use std::borrow::Cow;

use serde::de::IgnoredAny;

use super::field::shown;
use super::scratch::normalised;

/// Words read as `true`, compared case-insensitively.
const TRUE_WORDS: [&str; 6] = ["true", "t", "yes", "y", "on", "1"];
/// Words read as `false`, compared case-insensitively.
const FALSE_WORDS: [&str; 6] = ["false", "f", "no", "n", "off", "0"];
/// Labels listed in a reason before it says "…".
const LISTED: usize = 10;

/// `true/t/yes/y/on/1` and `false/f/no/n/off/0`, any case, written `true` or `false`.
pub(super) fn boolean(value: &str) -> Result<Cow<'static, str>, String> {
    let is = |words: &[&str]| words.iter().any(|w| w.eq_ignore_ascii_case(value));
    if is(&TRUE_WORDS) {
        Ok(Cow::Borrowed("true"))
    } else if is(&FALSE_WORDS) {
        Ok(Cow::Borrowed("false"))
    } else {
        Err(format!("not a boolean: {}", shown(value)))
    }
}

/// At most `max` characters (not bytes). Like PostgreSQL, a longer value whose excess is only
/// spaces is cut to `max` characters rather than rejected.
pub(super) fn bounded_text(value: &str, max: Option<u32>) -> Result<Cow<'_, str>, String> {
    let Some(max) = max else {
        return Ok(Cow::Borrowed(value));
    };
    let limit = usize::try_from(max).unwrap_or(usize::MAX);
    if value.len() <= limit {
        return Ok(Cow::Borrowed(value));
    }
    let Some((end, _)) = value.char_indices().nth(limit) else {
        return Ok(Cow::Borrowed(value));
    };
    match value.split_at_checked(end) {
        Some((head, excess)) if excess.bytes().all(|b| b == b' ') => Ok(Cow::Borrowed(head)),
        _ => Err(format!("longer than {max} characters")),
    }
}

/// Any form the `uuid` crate reads (hyphenated, simple, braced, URN; any case), written
/// lower-case and hyphenated.
pub(super) fn uuid(value: &str) -> Result<Cow<'_, str>, String> {
    let parsed =
        uuid::Uuid::try_parse(value).map_err(|_| format!("not a UUID: {}", shown(value)))?;
    let mut buf = uuid::Uuid::encode_buffer();
    let hyphenated = parsed.hyphenated().encode_lower(&mut buf);
    Ok(normalised(value, |w| w.write_str(hyphenated)))
}

/// Valid JSON (RFC 8259, as `serde_json` reads it), kept as written. `jsonb` also refuses
/// `\u0000`, which PostgreSQL cannot store there.
pub(super) fn json(value: &str, binary: bool) -> Result<Cow<'_, str>, String> {
    serde_json::from_str::<IgnoredAny>(value).map_err(|e| format!("not valid JSON: {e}"))?;
    if binary && value.contains("\\u0000") && holds_nul(value) {
        return Err("jsonb cannot hold \\u0000".to_owned());
    }
    Ok(Cow::Borrowed(value))
}

/// Whether some string or key in the (valid) JSON document contains U+0000.
fn holds_nul(value: &str) -> bool {
    fn walk(v: &serde_json::Value) -> bool {
        match v {
            serde_json::Value::String(s) => s.contains('\0'),
            serde_json::Value::Array(items) => items.iter().any(walk),
            serde_json::Value::Object(map) => map.iter().any(|(k, v)| k.contains('\0') || walk(v)),
            _ => false,
        }
    }
    serde_json::from_str(value).is_ok_and(|v| walk(&v))
}

/// One of `labels`, exactly (case-sensitive, as PostgreSQL compares enum labels).
pub(super) fn label<'a>(value: &'a str, labels: &[String]) -> Result<Cow<'a, str>, String> {
    if labels.iter().any(|l| l == value) {
        Ok(Cow::Borrowed(value))
    } else {
        Err(not_one_of(labels))
    }
}

/// `not one of: a, b, c`, listing at most [`LISTED`] values.
pub(super) fn not_one_of(values: &[String]) -> String {
    let mut listing = values
        .iter()
        .take(LISTED)
        .map(String::as_str)
        .collect::<Vec<_>>()
        .join(", ");
    if values.len() > LISTED {
        listing.push_str(", …");
    }
    format!("not one of: {listing}")
}
