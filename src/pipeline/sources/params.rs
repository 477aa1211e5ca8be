//! Query parameters, made safe.
//!
//! PostgreSQL's `COPY (query) TO STDOUT` cannot take bind parameters, so for PostgreSQL the
//! parameters are written into the query as literals: strings are single-quoted with quotes
//! doubled (safe because the transaction sets `standard_conforming_strings = on`), NUL bytes are
//! refused, numbers are written from their parsed form, and typed template parameters are
//! wrapped in `CAST(… AS type)`. Placeholders inside string literals, quoted identifiers,
//! comments and dollar-quoted bodies are left alone. SQLite binds the same values natively.

use crate::config::ParamType;
use serde_json::Value;

/// One parameter value, checked.
#[derive(Debug, Clone, PartialEq)]
pub enum Param {
    /// SQL NULL.
    Null,
    /// A boolean.
    Bool(bool),
    /// A whole number.
    Int(i64),
    /// A decimal, kept as its exact text (already checked to be a number).
    Number(String),
    /// Text; with a declared type when it came from a template.
    Text(String, Option<ParamType>),
}

/// A parameter that cannot be used; the message names it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct ParamError {
    pub field: String,
    pub message: String,
}

fn bad(field: &str, message: impl Into<String>) -> ParamError {
    ParamError {
        field: field.to_owned(),
        message: message.into(),
    }
}

/// Reads an untyped parameter of an SQL export (`source.params[i]`).
pub fn untyped(value: &Value, field: &str) -> Result<Param, ParamError> {
    match value {
        Value::Null => Ok(Param::Null),
        Value::Bool(b) => Ok(Param::Bool(*b)),
        Value::Number(n) => Ok(n
            .as_i64()
            .map_or_else(|| Param::Number(n.to_string()), Param::Int)),
        Value::String(s) => text(s, None, field),
        Value::Array(_) | Value::Object(_) => text(&value.to_string(), None, field),
    }
}

/// Reads a template parameter and checks it against its declared type.
pub fn typed(value: &Value, kind: ParamType, field: &str) -> Result<Param, ParamError> {
    let as_text = match value {
        Value::Null => return Ok(Param::Null),
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        _ => return Err(bad(field, "must be a scalar value")),
    };
    let trimmed = as_text.trim();
    match kind {
        ParamType::Int => trimmed
            .parse::<i32>()
            .map(|n| Param::Int(i64::from(n)))
            .map_err(|_| bad(field, "must be a 32-bit integer")),
        ParamType::Bigint => trimmed
            .parse::<i64>()
            .map(Param::Int)
            .map_err(|_| bad(field, "must be a 64-bit integer")),
        ParamType::Numeric => is_decimal(trimmed)
            .then(|| Param::Number(trimmed.to_owned()))
            .ok_or_else(|| bad(field, "must be a decimal number")),
        ParamType::Bool => match trimmed.to_ascii_lowercase().as_str() {
            "true" | "t" | "yes" | "1" => Ok(Param::Bool(true)),
            "false" | "f" | "no" | "0" => Ok(Param::Bool(false)),
            _ => Err(bad(field, "must be a boolean")),
        },
        ParamType::Date => time::Date::parse(
            trimmed,
            time::macros::format_description!("[year]-[month]-[day]"),
        )
        .map(|_| Param::Text(trimmed.to_owned(), Some(kind)))
        .map_err(|_| bad(field, "must be a date (YYYY-MM-DD)")),
        ParamType::Timestamptz => {
            time::OffsetDateTime::parse(trimmed, &time::format_description::well_known::Rfc3339)
                .map(|_| Param::Text(trimmed.to_owned(), Some(kind)))
                .map_err(|_| bad(field, "must be an RFC 3339 timestamp with offset"))
        }
        ParamType::Uuid => uuid::Uuid::parse_str(trimmed)
            .map(|u| Param::Text(u.to_string(), Some(kind)))
            .map_err(|_| bad(field, "must be a UUID")),
        ParamType::Text => text(&as_text, Some(kind), field),
    }
}

fn text(s: &str, kind: Option<ParamType>, field: &str) -> Result<Param, ParamError> {
    if s.contains('\0') {
        return Err(bad(field, "must not contain NUL characters"));
    }
    Ok(Param::Text(s.to_owned(), kind))
}

fn is_decimal(s: &str) -> bool {
    let digits = s.strip_prefix(['-', '+']).unwrap_or(s);
    let mut parts = digits.splitn(2, '.');
    let whole = parts.next().unwrap_or("");
    let frac = parts.next().unwrap_or("");
    !(whole.is_empty() && frac.is_empty())
        && whole.bytes().all(|b| b.is_ascii_digit())
        && frac.bytes().all(|b| b.is_ascii_digit())
}

/// The SQL literal of a parameter for PostgreSQL.
pub fn literal(param: &Param) -> String {
    match param {
        Param::Null => "NULL".to_owned(),
        Param::Bool(b) => if *b { "TRUE" } else { "FALSE" }.to_owned(),
        Param::Int(n) => format!("({n})"),
        Param::Number(n) => format!("({n})"),
        Param::Text(s, kind) => {
            let quoted = format!("'{}'", s.replace('\'', "''"));
            match kind.and_then(pg_type) {
                Some(ty) => format!("CAST({quoted} AS {ty})"),
                None => quoted,
            }
        }
    }
}

fn pg_type(kind: ParamType) -> Option<&'static str> {
    match kind {
        ParamType::Text => Some("text"),
        ParamType::Date => Some("date"),
        ParamType::Timestamptz => Some("timestamptz"),
        ParamType::Uuid => Some("uuid"),
        ParamType::Int | ParamType::Bigint | ParamType::Numeric | ParamType::Bool => None,
    }
}

/// Replaces `$1`, `$2`, … outside literals, quoted identifiers and comments with `params`.
pub fn inline(query: &str, params: &[Param]) -> Result<String, ParamError> {
    let bytes = query.as_bytes();
    let mut out = String::with_capacity(query.len() + 16 * params.len());
    let mut i = 0;
    let mut copied = 0;
    while i < bytes.len() {
        let skip_to = match bytes[i] {
            b'\'' => closing(bytes, i + 1, b"'"),
            b'"' => closing(bytes, i + 1, b"\""),
            b'-' if bytes.get(i + 1) == Some(&b'-') => closing(bytes, i + 2, b"\n"),
            b'/' if bytes.get(i + 1) == Some(&b'*') => closing(bytes, i + 2, b"*/"),
            b'$' => {
                match dollar_tag(bytes, i) {
                    Some(tag) => closing(bytes, i + tag.len(), tag),
                    None => {
                        let digits = bytes[i + 1..]
                            .iter()
                            .take_while(|b| b.is_ascii_digit())
                            .count();
                        if digits > 0 {
                            let number: usize =
                                query[i + 1..i + 1 + digits].parse().unwrap_or(usize::MAX);
                            let param = number
                            .checked_sub(1)
                            .and_then(|n| params.get(n))
                            .ok_or_else(|| bad("source.params", format!("the query uses ${number} but {} parameter(s) were given", params.len())))?;
                            out.push_str(&query[copied..i]);
                            // `E$1` must not become an escape string `E'…'` (in which a
                            // backslash could end the literal): keep it apart from a word.
                            if out.ends_with(|c: char| {
                                c.is_alphanumeric() || matches!(c, '_' | '$' | '&')
                            }) {
                                out.push(' ');
                            }
                            out.push_str(&literal(param));
                            copied = i + 1 + digits;
                        }
                        i + 1 + digits
                    }
                }
            }
            _ => i + 1,
        };
        i = skip_to.max(i + 1);
    }
    out.push_str(&query[copied..]);
    Ok(out)
}

/// The index just past the first `end` at or after `from` (or the end of the input).
fn closing(bytes: &[u8], from: usize, end: &[u8]) -> usize {
    bytes[from.min(bytes.len())..]
        .windows(end.len())
        .position(|w| w == end)
        .map_or(bytes.len(), |at| from + at + end.len())
}

/// A dollar-quote opening tag (`$$` or `$name$`) starting at `at`.
fn dollar_tag(bytes: &[u8], at: usize) -> Option<&[u8]> {
    let rest = &bytes[at + 1..];
    let len = rest
        .iter()
        .take_while(|b| b.is_ascii_alphanumeric() || **b == b'_')
        .count();
    let starts_like_name = rest.first().is_none_or(|b| !b.is_ascii_digit());
    (starts_like_name && rest.get(len) == Some(&b'$')).then(|| &bytes[at..at + len + 2])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_become_literals_but_not_inside_strings_or_comments() {
        let params = [Param::Text("O'Brien".into(), None), Param::Int(-5)];
        let sql = inline(
            "SELECT '$1', \"$1\", $1 -- $2\n, $2 /* $1 */, $$ $1 $$, $tag$ $2 $tag$ FROM t WHERE a = $1",
            &params,
        )
        .unwrap();
        assert_eq!(
            sql,
            "SELECT '$1', \"$1\", 'O''Brien' -- $2\n, (-5) /* $1 */, $$ $1 $$, $tag$ $2 $tag$ FROM t WHERE a = 'O''Brien'"
        );
    }

    #[test]
    fn a_literal_never_joins_the_word_before_it() {
        let params = [Param::Text("\\' OR 1=1 --".into(), None)];
        let sql = inline("SELECT E$1, U&$1, x$1", &params).unwrap();
        assert_eq!(
            sql,
            "SELECT E '\\'' OR 1=1 --', U& '\\'' OR 1=1 --', x '\\'' OR 1=1 --'"
        );
    }

    #[test]
    fn a_missing_parameter_is_named() {
        let error = inline("SELECT $3", &[Param::Null]).unwrap_err();
        assert!(error.message.contains("$3"), "{error}");
    }

    #[test]
    fn injection_attempts_stay_inside_one_literal() {
        let param = untyped(&Value::String("x'); DROP TABLE users; --".into()), "p").unwrap();
        assert_eq!(
            inline("SELECT $1", &[param]).unwrap(),
            "SELECT 'x''); DROP TABLE users; --'"
        );
        assert!(untyped(&Value::String("a\0b".into()), "p").is_err());
    }

    #[test]
    fn typed_parameters_are_checked_and_cast() {
        assert_eq!(
            typed(&Value::String("42".into()), ParamType::Int, "p").unwrap(),
            Param::Int(42)
        );
        assert!(typed(&Value::String("4x".into()), ParamType::Int, "p").is_err());
        assert!(typed(&Value::String("9999999999".into()), ParamType::Int, "p").is_err());
        assert!(typed(&Value::String("1e5".into()), ParamType::Numeric, "p").is_err());
        assert!(typed(&Value::String("2026-02-31".into()), ParamType::Date, "p").is_err());
        let uuid = typed(
            &Value::String("67e55044-10b1-426f-9247-bb680e5fe0c8".into()),
            ParamType::Uuid,
            "p",
        )
        .unwrap();
        assert_eq!(
            literal(&uuid),
            "CAST('67e55044-10b1-426f-9247-bb680e5fe0c8' AS uuid)"
        );
    }
}
