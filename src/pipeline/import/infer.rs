//! What a new table looks like, guessed from a sample of its file (SPEC §4.1 "New tables"):
//! column names from the header, normalised and made unique, and each column's type from its
//! values. Pure logic, no I/O: [`super::sample`] feeds it the records.
//!
//! A column's type is the first of [`PREFERENCE`] that every non-empty sampled value fits.
//! "Fits" means the value has the type's plain written form (only `true`/`false`/`yes`/`no`/
//! `t`/`f` for booleans, no exponent for `numeric`, the hyphenated form for UUIDs, an object or
//! an array for `jsonb`) *and* the validator takes it for that type — so every sampled value
//! loads into the column it made. A number written with a leading zero (`007`, a zip code)
//! fits only `text`; a column whose sampled values are all empty is `text`. A column with
//! spec rules (`columns`) only gets a type those rules are allowed on, and its `formats` count
//! when dates and timestamps are tried.

use crate::pipeline::validate::{ColumnRule, ColumnType, RuleSpec};

/// How many records of the file (after the header) are sampled.
pub const SAMPLE_RECORDS: usize = 10_000;

/// The most bytes of a column name (PostgreSQL's identifier limit).
const MAX_NAME_BYTES: usize = 63;

/// The types a column may get, in order of preference; `text` always fits.
pub const PREFERENCE: [ColumnType; 10] = [
    ColumnType::Boolean,
    ColumnType::BigInt,
    ColumnType::Numeric {
        precision: None,
        scale: None,
    },
    ColumnType::Double,
    ColumnType::Date,
    ColumnType::Timestamptz,
    ColumnType::Timestamp,
    ColumnType::Uuid,
    ColumnType::Jsonb,
    ColumnType::Text,
];

/// The bit of `text` in a set of [`PREFERENCE`] indexes.
const TEXT: u16 = 1 << (PREFERENCE.len() - 1);
/// Every type.
const ALL: u16 = (1 << PREFERENCE.len()) - 1;

/// A header name as a column name: lower-cased, every run of characters other than `a-z`,
/// `0-9` and `_` replaced by one `_`, cut to 63 bytes.
pub fn normalise(header: &str) -> String {
    let mut name = String::with_capacity(header.len());
    let mut in_run = false;
    for c in header.trim().chars().flat_map(char::to_lowercase) {
        if c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' {
            name.push(c);
            in_run = false;
        } else if !in_run {
            name.push('_');
            in_run = true;
        }
    }
    name.truncate(MAX_NAME_BYTES);
    name
}

/// Whether `name` is already a column name [`normalise`] could give.
pub fn is_normal(name: &str) -> bool {
    !name.is_empty() && normalise(name) == name
}

/// Column names for `headers`, in order: each normalised, an empty one named `column_N` (its
/// position), and a name already taken given `_2`, `_3`, … until it is unique.
pub fn column_names(headers: &[String]) -> Vec<String> {
    let mut names: Vec<String> = Vec::with_capacity(headers.len());
    for (i, header) in headers.iter().enumerate() {
        let base = match normalise(header) {
            name if name.is_empty() => format!("column_{}", i + 1),
            name => name,
        };
        let mut name = base.clone();
        let mut n = 2;
        while names.contains(&name) {
            let suffix = format!("_{n}");
            let mut stem = base.clone();
            stem.truncate(MAX_NAME_BYTES - suffix.len());
            name = stem + &suffix;
            n += 1;
        }
        names.push(name);
    }
    names
}

/// What the sample says of one column so far.
#[derive(Debug, Clone)]
pub struct ColumnGuess {
    /// Indexes into [`PREFERENCE`] every value seen so far fits.
    possible: u16,
    /// Whether a non-empty value was seen.
    seen: bool,
    /// The validator of each type in [`PREFERENCE`], with the column's `formats`.
    rules: Vec<ColumnRule>,
}

impl ColumnGuess {
    /// A column named `name` with the spec's rules `spec`, if any.
    pub fn new(name: &str, spec: Option<&RuleSpec>) -> Self {
        let formats = RuleSpec {
            formats: spec.and_then(|s| s.formats.clone()),
            ..RuleSpec::default()
        };
        let mut possible = 0;
        let mut rules = Vec::with_capacity(PREFERENCE.len());
        for (i, kind) in PREFERENCE.iter().enumerate() {
            let allowed =
                spec.is_none_or(|s| ColumnRule::build(name, kind.clone(), true, Some(s)).is_ok());
            let with_formats = ColumnRule::build(name, kind.clone(), true, Some(&formats))
                .or_else(|_| ColumnRule::build(name, kind.clone(), true, None));
            if let Ok(rule) = with_formats {
                rules.push(rule);
                if allowed {
                    possible |= 1 << i;
                }
            }
        }
        // Rules no type takes (say `formats` and `pattern` together): let the type decide,
        // and the rules' own check report them.
        if possible == 0 {
            possible = ALL;
        }
        Self {
            possible: possible | TEXT,
            seen: false,
            rules,
        }
    }

    /// Takes one raw field into account.
    pub fn add(&mut self, raw: &[u8]) {
        let Ok(text) = std::str::from_utf8(raw) else {
            // The validator rejects it for any type.
            return;
        };
        let value = text.trim();
        if value.is_empty() {
            return;
        }
        self.seen = true;
        if leading_zero(value) {
            self.possible = TEXT;
            return;
        }
        for i in 0..PREFERENCE.len() - 1 {
            let bit = 1 << i;
            if self.possible & bit != 0 && !self.fits(i, value) {
                self.possible &= !bit;
            }
        }
    }

    fn fits(&self, index: usize, value: &str) -> bool {
        let Some(rule) = self
            .rules
            .iter()
            .find(|r| Some(&r.kind) == PREFERENCE.get(index))
        else {
            return false;
        };
        written_as(&rule.kind, value) && rule.check(value.as_bytes()).is_ok()
    }

    /// The type the values seen call for.
    pub fn kind(&self) -> ColumnType {
        if !self.seen {
            return ColumnType::Text;
        }
        let first = self.possible.trailing_zeros() as usize;
        PREFERENCE.get(first).cloned().unwrap_or(ColumnType::Text)
    }
}

/// Whether `value` has the plain written form that makes it one of `kind` (the validator
/// accepts more: `1`/`0` booleans, exponents in `numeric`, UUIDs without hyphens).
fn written_as(kind: &ColumnType, value: &str) -> bool {
    match kind {
        ColumnType::Boolean => ["true", "false", "yes", "no", "t", "f"]
            .iter()
            .any(|word| value.eq_ignore_ascii_case(word)),
        ColumnType::BigInt => {
            let digits = value.strip_prefix(['+', '-']).unwrap_or(value);
            !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit())
        }
        ColumnType::Numeric { .. } => !value.contains(['e', 'E']),
        ColumnType::Uuid => {
            value.len() == 36
                && value.char_indices().all(|(i, c)| match i {
                    8 | 13 | 18 | 23 => c == '-',
                    _ => c.is_ascii_hexdigit(),
                })
        }
        ColumnType::Jsonb => value.starts_with(['{', '[']),
        _ => true,
    }
}

/// A number whose integer part has a leading zero: `007`, `01.5`, `-00` (not `0`, `0.5`).
fn leading_zero(value: &str) -> bool {
    let unsigned = value.strip_prefix(['+', '-']).unwrap_or(value);
    let number = !unsigned.is_empty() && unsigned.bytes().all(|b| b.is_ascii_digit() || b == b'.');
    let whole = unsigned.split('.').next().unwrap_or_default();
    number && whole.len() > 1 && whole.starts_with('0')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn guess(values: &[&str]) -> ColumnType {
        guess_with(values, None)
    }

    fn guess_with(values: &[&str], spec: Option<&RuleSpec>) -> ColumnType {
        let mut column = ColumnGuess::new("c", spec);
        for value in values {
            column.add(value.as_bytes());
        }
        column.kind()
    }

    #[test]
    fn each_type_is_inferred_from_its_plain_form() {
        let numeric = ColumnType::Numeric {
            precision: None,
            scale: None,
        };
        let cases: [(&[&str], ColumnType); 13] = [
            (
                &["true", "FALSE", "yes", "No", "t", "F"],
                ColumnType::Boolean,
            ),
            (&["0", "1", "-42", "+7"], ColumnType::BigInt),
            (&["1.5", "2", "-0.25"], numeric.clone()),
            (&["99999999999999999999"], numeric),
            (&["1e3", "2.5E-2", "4"], ColumnType::Double),
            (&["2026-11-23", "2024-02-29"], ColumnType::Date),
            (
                &["2026-11-23T10:00:00Z", "2026-11-23 10:00+02:00"],
                ColumnType::Timestamptz,
            ),
            (
                &["2026-11-23T10:00:00", "2026-11-23 10:00"],
                ColumnType::Timestamp,
            ),
            (&["0192f1e4-7c1a-7b3e-9d2f-0123456789ab"], ColumnType::Uuid),
            (&[r#"{"a": 1}"#, "[1, 2]"], ColumnType::Jsonb),
            (&["hello", "1"], ColumnType::Text),
            (&["1", "true"], ColumnType::Text),
            (&["2026-02-30"], ColumnType::Text),
        ];
        for (values, kind) in cases {
            assert_eq!(guess(values), kind, "{values:?}");
        }
    }

    #[test]
    fn leading_zeros_keep_a_column_text_but_a_lone_zero_is_a_number() {
        assert_eq!(guess(&["1", "007"]), ColumnType::Text);
        assert_eq!(guess(&["01.5"]), ColumnType::Text);
        assert_eq!(
            guess(&["0", "0.5"]),
            ColumnType::Numeric {
                precision: None,
                scale: None
            }
        );
        assert_eq!(guess(&["0001-01-01"]), ColumnType::Date);
    }

    #[test]
    fn empty_fields_are_ignored_and_an_empty_column_is_text() {
        assert_eq!(guess(&["", "12", "  ", ""]), ColumnType::BigInt);
        assert_eq!(guess(&["", "", " "]), ColumnType::Text);
        assert_eq!(guess(&[]), ColumnType::Text);
        assert_eq!(guess(&[" 12 ", "3"]), ColumnType::BigInt);
    }

    #[test]
    fn mixed_temporal_values_and_bad_json_fall_back_to_text() {
        assert_eq!(
            guess(&["2026-11-23T10:00:00Z", "2026-11-23T10:00:00"]),
            ColumnType::Text
        );
        assert_eq!(guess(&["{not json"]), ColumnType::Text);
        assert_eq!(guess(&["\"a string\""]), ColumnType::Text);
        assert_eq!(
            guess(&["12345678123456781234567812345678"]),
            ColumnType::Numeric {
                precision: None,
                scale: None
            }
        );
    }

    #[test]
    fn spec_rules_steer_the_type() {
        let formats = RuleSpec {
            formats: Some(vec!["%d/%m/%Y".into()]),
            ..RuleSpec::default()
        };
        assert_eq!(
            guess_with(&["23/11/2026"], Some(&formats)),
            ColumnType::Date
        );
        let pattern = RuleSpec {
            pattern: Some("[0-9]+".into()),
            ..RuleSpec::default()
        };
        assert_eq!(guess_with(&["12345"], Some(&pattern)), ColumnType::Text);
    }

    #[test]
    fn names_are_normalised() {
        assert_eq!(normalise("Signed Up"), "signed_up");
        assert_eq!(normalise("  E-Mail (work)  "), "e_mail_work_");
        assert_eq!(normalise("Größe"), "gr_e");
        assert_eq!(normalise("user_ID"), "user_id");
        assert_eq!(normalise(&"x".repeat(100)).len(), 63);
        assert!(is_normal("signed_up") && !is_normal("Signed Up") && !is_normal(""));
    }

    #[test]
    fn repeated_and_empty_names_are_made_unique() {
        let headers: Vec<String> = ["Name", "name", "NAME", "name_2", "", "a b", "a-b"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(
            column_names(&headers),
            [
                "name", "name_2", "name_3", "name_2_2", "column_5", "a_b", "a_b_2"
            ]
        );
        let long = vec!["y".repeat(70), "y".repeat(70)];
        let names = column_names(&long);
        assert_eq!(names[1].len(), 63);
        assert!(names[1].ends_with("_2"));
    }
}
