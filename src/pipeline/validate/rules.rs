//! The spec's extra rules for one column, checked against the column's type once and compiled
//! for the rows: formats, `enum` values, the anchored pattern, `min`/`max` and `required`.

use std::cmp::Ordering;
use std::collections::HashSet;

use regex::{Regex, RegexBuilder};

use super::decimal::Decimal;
use super::formats::Format;
use super::scalars::not_one_of;
use super::types::ColumnType;
use crate::domain::invalid::{Collector, Invalid};
use crate::domain::rules::RuleSpec;

/// Formats one column may list.
const MAX_FORMATS: usize = 16;
/// The longest pattern accepted, in bytes.
const MAX_PATTERN_LEN: usize = 1000;
/// The most memory a compiled pattern may take; a larger one is refused at build time.
const PATTERN_SIZE_LIMIT: usize = 1 << 20;

/// The compiled extra rules of one column; empty when the spec gives none.
#[derive(Debug, Clone, Default)]
pub(super) struct Extras {
    /// The spec says `required: true`.
    pub required: bool,
    /// Formats tried after ISO 8601, in order.
    pub formats: Vec<Format>,
    one_of: Option<OneOf>,
    pattern: Option<Pattern>,
    min: Option<Bound>,
    max: Option<Bound>,
}

#[derive(Debug, Clone)]
struct OneOf {
    set: HashSet<String>,
    reason: String,
}

#[derive(Debug, Clone)]
struct Pattern {
    regex: Regex,
    reason: String,
}

/// A `min` or `max`, kept as the decimal text `serde_json` wrote.
#[derive(Debug, Clone)]
struct Bound(String);

impl Bound {
    fn decimal(&self) -> Option<Decimal<'_>> {
        Decimal::parse(&self.0)
    }
}

impl Extras {
    /// Checks `spec` against column `name` of type `kind` and compiles it; every fault is
    /// reported, each under `columns.<name>.<rule>`.
    pub(super) fn build(
        name: &str,
        kind: &ColumnType,
        nullable: bool,
        spec: &RuleSpec,
    ) -> Result<Self, Invalid> {
        let mut errors = Collector::default();
        let field = |rule: &str| format!("columns.{name}.{rule}");
        if spec.required == Some(false) && !nullable {
            errors.push(
                field("required"),
                "the column is NOT NULL, so it is always required",
            );
        }
        let formats = spec
            .formats
            .as_ref()
            .map(|f| compile_formats(f, kind, &field("formats"), &mut errors))
            .unwrap_or_default();
        let one_of = spec
            .values
            .as_ref()
            .and_then(|v| compile_one_of(v, kind, &field("enum"), &mut errors));
        let pattern = spec
            .pattern
            .as_ref()
            .and_then(|p| compile_pattern(p, kind, &field("pattern"), &mut errors));
        let (min, max) = compile_bounds(spec, kind, &field, &mut errors);
        errors.finish(Self {
            required: spec.required == Some(true),
            formats,
            one_of,
            pattern,
            min,
            max,
        })
    }

    /// The spec's checks on a value already valid for the column's type: `enum`, `pattern`
    /// and, for numbers, `min`/`max`.
    pub(super) fn check(&self, value: &str) -> Result<(), String> {
        if let Some(one_of) = &self.one_of
            && !one_of.set.contains(value)
        {
            return Err(one_of.reason.clone());
        }
        if let Some(pattern) = &self.pattern
            && !pattern.regex.is_match(value)
        {
            return Err(pattern.reason.clone());
        }
        self.check_bounds(value)
    }

    fn check_bounds(&self, value: &str) -> Result<(), String> {
        if self.min.is_none() && self.max.is_none() {
            return Ok(());
        }
        let Some(number) = Decimal::parse(value) else {
            return Ok(());
        };
        let beyond = |bound: &Option<Bound>, side| {
            bound
                .as_ref()
                .and_then(Bound::decimal)
                .is_some_and(|limit| number.compare(&limit) == side)
        };
        if beyond(&self.min, Ordering::Less)
            && let Some(Bound(min)) = &self.min
        {
            return Err(format!("less than the minimum {min}"));
        }
        if beyond(&self.max, Ordering::Greater)
            && let Some(Bound(max)) = &self.max
        {
            return Err(format!("greater than the maximum {max}"));
        }
        Ok(())
    }
}

fn compile_formats(
    sources: &[String],
    kind: &ColumnType,
    field: &str,
    errors: &mut Collector,
) -> Vec<Format> {
    if !kind.is_temporal() {
        errors.push(
            field,
            format!("formats apply only to date and time columns, not {kind}"),
        );
        return Vec::new();
    }
    if sources.is_empty() || sources.len() > MAX_FORMATS {
        errors.push(
            field,
            format!("give 1 to {MAX_FORMATS} formats, or leave formats out"),
        );
        return Vec::new();
    }
    let mut formats = Vec::with_capacity(sources.len());
    for (i, source) in sources.iter().enumerate() {
        match Format::compile(source, kind) {
            Ok(format) => formats.push(format),
            Err(why) => errors.push(format!("{field}[{i}]"), format!("{source:?}: {why}")),
        }
    }
    formats
}

fn compile_one_of(
    values: &[String],
    kind: &ColumnType,
    field: &str,
    errors: &mut Collector,
) -> Option<OneOf> {
    if !kind.is_textual() {
        errors.push(
            field,
            format!("enum applies only to text and enum columns, not {kind}"),
        );
        return None;
    }
    if values.is_empty() {
        errors.push(field, "give at least one value, or leave enum out");
        return None;
    }
    let max = kind.max_chars().and_then(|n| usize::try_from(n).ok());
    for (i, value) in values.iter().enumerate() {
        if max.is_some_and(|max| value.chars().count() > max) {
            errors.push(
                format!("{field}[{i}]"),
                format!("{value:?} does not fit in {kind}"),
            );
        }
        if let ColumnType::Enum(labels) = kind
            && !labels.contains(value)
        {
            errors.push(
                format!("{field}[{i}]"),
                format!("{value:?} is not a label of the column's type"),
            );
        }
    }
    Some(OneOf {
        set: values.iter().cloned().collect(),
        reason: not_one_of(values),
    })
}

fn compile_pattern(
    source: &str,
    kind: &ColumnType,
    field: &str,
    errors: &mut Collector,
) -> Option<Pattern> {
    if !kind.is_textual() {
        errors.push(
            field,
            format!("pattern applies only to text and enum columns, not {kind}"),
        );
        return None;
    }
    if source.len() > MAX_PATTERN_LEN {
        errors.push(field, format!("longer than {MAX_PATTERN_LEN} bytes"));
        return None;
    }
    // Compiled alone first, so `a)|(b` cannot escape the anchoring group below.
    let anchored = compile_regex(source).and_then(|_| compile_regex(&format!(r"\A(?:{source})\z")));
    match anchored {
        Ok(regex) => Some(Pattern {
            regex,
            reason: format!("does not match the pattern {}", super::field::shown(source)),
        }),
        Err(why) => {
            errors.push(field, why);
            None
        }
    }
}

fn compile_regex(source: &str) -> Result<Regex, String> {
    RegexBuilder::new(source)
        .size_limit(PATTERN_SIZE_LIMIT)
        .dfa_size_limit(PATTERN_SIZE_LIMIT)
        .build()
        .map_err(|e| match e {
            regex::Error::CompiledTooBig(_) => "the pattern is too large".to_owned(),
            regex::Error::Syntax(text) => {
                let last = text.lines().last().unwrap_or_default();
                let why = last.trim().trim_start_matches("error: ");
                format!("not a valid regular expression: {why}")
            }
            other => format!("not a valid regular expression: {other}"),
        })
}

fn compile_bounds(
    spec: &RuleSpec,
    kind: &ColumnType,
    field: &dyn Fn(&str) -> String,
    errors: &mut Collector,
) -> (Option<Bound>, Option<Bound>) {
    let mut bound = |rule: &str, number: &Option<serde_json::Number>| {
        let number = number.as_ref()?;
        if !kind.is_number() {
            errors.push(
                field(rule),
                format!("{rule} applies only to number columns, not {kind}"),
            );
            return None;
        }
        Some(Bound(number.to_string()))
    };
    let min = bound("min", &spec.min);
    let max = bound("max", &spec.max);
    if let (Some(lo), Some(hi)) = (&min, &max)
        && let (Some(a), Some(b)) = (lo.decimal(), hi.decimal())
        && a.compare(&b).is_gt()
    {
        errors.push(
            field("min"),
            format!("min {} is greater than max {}", lo.0, hi.0),
        );
    }
    (min, max)
}

#[cfg(test)]
mod tests {
    use super::Extras;
    use crate::domain::invalid::FieldError;
    use crate::pipeline::validate::{ColumnType, RuleSpec};

    fn errors(kind: ColumnType, nullable: bool, spec: &str) -> Vec<(String, String)> {
        let spec: RuleSpec = serde_json::from_str(spec).unwrap();
        match Extras::build("c", &kind, nullable, &spec) {
            Ok(_) => Vec::new(),
            Err(invalid) => invalid
                .0
                .into_iter()
                .map(|FieldError { field, message }| (field, message))
                .collect(),
        }
    }

    fn one(field: &str, message: &str) -> Vec<(String, String)> {
        vec![(field.to_owned(), message.to_owned())]
    }

    #[test]
    fn rules_that_fit_the_column_build() {
        let fine = [
            (
                ColumnType::Timestamp,
                r#"{"formats": ["%d/%m/%Y %H:%M"], "required": true}"#,
            ),
            (
                ColumnType::Varchar(Some(5)),
                r#"{"enum": ["ok", "error"], "pattern": "^[a-z]+$"}"#,
            ),
            (
                ColumnType::Numeric {
                    precision: None,
                    scale: None,
                },
                r#"{"min": -1.5, "max": 1e3}"#,
            ),
            (
                ColumnType::Enum(vec!["a".into(), "b".into()]),
                r#"{"enum": ["a"]}"#,
            ),
            (ColumnType::Integer, r#"{"min": 5, "max": 5}"#),
        ];
        for (kind, spec) in fine {
            assert_eq!(errors(kind, true, spec), Vec::new(), "{spec}");
        }
    }

    #[test]
    fn rules_on_the_wrong_type_are_named_by_column_and_rule() {
        let cases = [
            (
                ColumnType::Integer,
                r#"{"formats": ["%Y"]}"#,
                "columns.c.formats",
                "formats apply only to date and time columns, not integer",
            ),
            (
                ColumnType::Integer,
                r#"{"enum": ["1"]}"#,
                "columns.c.enum",
                "enum applies only to text and enum columns, not integer",
            ),
            (
                ColumnType::Date,
                r#"{"pattern": "x"}"#,
                "columns.c.pattern",
                "pattern applies only to text and enum columns, not date",
            ),
            (
                ColumnType::Text,
                r#"{"min": 1}"#,
                "columns.c.min",
                "min applies only to number columns, not text",
            ),
            (
                ColumnType::Date,
                r#"{"max": 1}"#,
                "columns.c.max",
                "max applies only to number columns, not date",
            ),
        ];
        for (kind, spec, field, message) in cases {
            assert_eq!(errors(kind, true, spec), one(field, message), "{spec}");
        }
    }

    #[test]
    fn inconsistent_rules_are_refused() {
        let cases = [
            (
                ColumnType::Integer,
                true,
                r#"{"min": 10, "max": 1}"#,
                "columns.c.min",
                "min 10 is greater than max 1",
            ),
            (
                ColumnType::Text,
                false,
                r#"{"required": false}"#,
                "columns.c.required",
                "the column is NOT NULL, so it is always required",
            ),
            (
                ColumnType::Date,
                true,
                r#"{"formats": []}"#,
                "columns.c.formats",
                "give 1 to 16 formats, or leave formats out",
            ),
            (
                ColumnType::Text,
                true,
                r#"{"enum": []}"#,
                "columns.c.enum",
                "give at least one value, or leave enum out",
            ),
            (
                ColumnType::Varchar(Some(2)),
                true,
                r#"{"enum": ["ok", "error"]}"#,
                "columns.c.enum[1]",
                "\"error\" does not fit in varchar(2)",
            ),
            (
                ColumnType::Enum(vec!["a".into()]),
                true,
                r#"{"enum": ["b"]}"#,
                "columns.c.enum[0]",
                "\"b\" is not a label of the column's type",
            ),
            (
                ColumnType::Date,
                true,
                r#"{"formats": ["%Y-%m-%d", "%d/%m/%Y %H:%M"]}"#,
                "columns.c.formats[1]",
                "\"%d/%m/%Y %H:%M\": a date column takes no time of day",
            ),
        ];
        for (kind, nullable, spec, field, message) in cases {
            assert_eq!(errors(kind, nullable, spec), one(field, message), "{spec}");
        }
    }

    #[test]
    fn bad_patterns_are_refused_with_a_short_reason() {
        let cases = [
            (
                r#"{"pattern": "(a"}"#,
                "not a valid regular expression: unclosed group",
            ),
            (
                r#"{"pattern": "a)|(b"}"#,
                "not a valid regular expression: unopened group",
            ),
            (
                r#"{"pattern": "(?:\\w{1000}){1000}"}"#,
                "the pattern is too large",
            ),
        ];
        for (spec, message) in cases {
            assert_eq!(
                errors(ColumnType::Text, true, spec),
                one("columns.c.pattern", message),
                "{spec}"
            );
        }
        let long = format!(r#"{{"pattern": "{}"}}"#, "a".repeat(1001));
        assert_eq!(
            errors(ColumnType::Text, true, &long),
            one("columns.c.pattern", "longer than 1000 bytes")
        );
    }

    #[test]
    fn every_fault_is_reported_at_once() {
        let spec = r#"{"formats": ["%Y"], "pattern": "(", "min": 1, "required": false}"#;
        let fields: Vec<String> = errors(ColumnType::Integer, false, spec)
            .into_iter()
            .map(|(f, _)| f)
            .collect();
        assert_eq!(
            fields,
            [
                "columns.c.required",
                "columns.c.formats",
                "columns.c.pattern"
            ]
        );
    }
}
