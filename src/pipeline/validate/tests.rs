//! Table-driven tests of [`ColumnRule::check`] for every column type, through the public API.

use std::borrow::Cow;

use super::{ColumnRule, ColumnType, RuleSpec};

type Expected<'a> = Result<Option<&'a str>, &'a str>;

fn rule(kind: ColumnType) -> ColumnRule {
    ColumnRule::build("c", kind, true, None).unwrap()
}

fn with_spec(kind: ColumnType, spec: &str) -> ColumnRule {
    let spec: RuleSpec = serde_json::from_str(spec).unwrap();
    ColumnRule::build("c", kind, true, Some(&spec)).unwrap()
}

fn assert_cases(rule: &ColumnRule, cases: &[(&str, Expected<'_>)]) {
    for (raw, expected) in cases {
        let got = rule.check(raw.as_bytes());
        let got = got.as_ref().map(|v| v.as_deref()).map_err(String::as_str);
        assert_eq!(got, *expected, "{} column, field {raw:?}", rule.kind);
    }
}

#[test]
fn every_type_rejects_bad_utf8_and_nul_bytes() {
    let kinds = [
        ColumnType::Text,
        ColumnType::Integer,
        ColumnType::Date,
        ColumnType::Json,
    ];
    for kind in kinds {
        let rule = rule(kind);
        assert_eq!(
            rule.check(b"a\xffb"),
            Err("not valid UTF-8 (at byte 1)".to_owned())
        );
        assert_eq!(rule.check(b"1\x002"), Err("contains a NUL byte".to_owned()));
    }
}

#[test]
fn empty_fields_are_null_unless_the_column_requires_a_value() {
    let nullable = rule(ColumnType::Integer);
    assert_eq!(nullable.check(b""), Ok(None));
    assert_eq!(nullable.check(b"  \t"), Ok(None));
    let not_null = ColumnRule::build("c", ColumnType::Integer, false, None).unwrap();
    assert_eq!(not_null.check(b" "), Err("required".to_owned()));
    let required = with_spec(ColumnType::Text, r#"{"required": true}"#);
    assert_eq!(required.check(b""), Err("required".to_owned()));
    assert_eq!(required.check(b"  "), Ok(Some(Cow::Borrowed("  "))));
    let text = rule(ColumnType::Text);
    assert_eq!(text.check(b""), Ok(None));
}

#[test]
fn integers_take_a_sign_and_digits_within_their_width() {
    let integer = rule(ColumnType::Integer);
    assert_cases(
        &integer,
        &[
            ("42", Ok(Some("42"))),
            (" -7 ", Ok(Some("-7"))),
            ("+7", Ok(Some("7"))),
            ("007", Ok(Some("7"))),
            ("-0", Ok(Some("0"))),
            ("0", Ok(Some("0"))),
            ("2147483647", Ok(Some("2147483647"))),
            ("-2147483648", Ok(Some("-2147483648"))),
            ("2147483648", Err("out of range for integer")),
            ("-2147483649", Err("out of range for integer")),
            ("12.5", Err("a decimal in an integer column: \"12.5\"")),
            ("12.0", Err("a decimal in an integer column: \"12.0\"")),
            ("1e3", Err("not an integer: \"1e3\"")),
            ("1 000", Err("not an integer: \"1 000\"")),
            ("-", Err("not an integer: \"-\"")),
            ("0x1F", Err("not an integer: \"0x1F\"")),
            ("٣", Err("not an integer: \"٣\"")),
            ("NaN", Err("not a finite number: \"NaN\"")),
        ],
    );
    assert_cases(
        &rule(ColumnType::SmallInt),
        &[
            ("32767", Ok(Some("32767"))),
            ("32768", Err("out of range for smallint")),
        ],
    );
    assert_cases(
        &rule(ColumnType::BigInt),
        &[
            ("-9223372036854775808", Ok(Some("-9223372036854775808"))),
            ("9223372036854775808", Err("out of range for bigint")),
            ("99999999999999999999999999", Err("out of range for bigint")),
        ],
    );
}

#[test]
fn numerics_respect_precision_and_scale_and_refuse_non_finite_values() {
    let money = rule(ColumnType::Numeric {
        precision: Some(5),
        scale: Some(2),
    });
    assert_cases(
        &money,
        &[
            ("123.45", Ok(Some("123.45"))),
            (" -999.99 ", Ok(Some("-999.99"))),
            ("1.5", Ok(Some("1.5"))),
            ("123.450", Ok(Some("123.450"))),
            ("1.2345e2", Ok(Some("1.2345e2"))),
            ("0.000", Ok(Some("0.000"))),
            (".5", Ok(Some(".5"))),
            ("123.456", Err("more than 2 digits after the decimal point")),
            ("0.001", Err("more than 2 digits after the decimal point")),
            ("1000", Err("out of range for numeric(5,2)")),
            ("1e3", Err("out of range for numeric(5,2)")),
            ("NaN", Err("not a finite number: \"NaN\"")),
            ("-Infinity", Err("not a finite number: \"-Infinity\"")),
            ("1,5", Err("not a number: \"1,5\"")),
        ],
    );
    let whole = rule(ColumnType::Numeric {
        precision: Some(3),
        scale: None,
    });
    assert_cases(
        &whole,
        &[
            ("999", Ok(Some("999"))),
            ("1.0", Ok(Some("1.0"))),
            (
                "1.5",
                Err("digits after the decimal point in a whole-number column"),
            ),
        ],
    );
    let open = rule(ColumnType::Numeric {
        precision: None,
        scale: None,
    });
    let many_places = format!("0.{}", "1".repeat(16_384));
    assert_cases(
        &open,
        &[
            (
                "123456789012345678901234567890.123",
                Ok(Some("123456789012345678901234567890.123")),
            ),
            ("1e1000", Ok(Some("1e1000"))),
            ("1e1001", Err("exponent out of range for numeric")),
            (&many_places, Err("out of range for numeric")),
        ],
    );
}

#[test]
fn floats_are_finite_and_written_in_shortest_round_trip_form() {
    let double = rule(ColumnType::Double);
    assert_cases(
        &double,
        &[
            ("1.5", Ok(Some("1.5"))),
            (" 2.5 ", Ok(Some("2.5"))),
            ("1.50", Ok(Some("1.5"))),
            ("+.5", Ok(Some("0.5"))),
            ("1e3", Ok(Some("1000"))),
            ("1E21", Ok(Some("1e21"))),
            ("0.000001", Ok(Some("0.000001"))),
            ("0.0000001", Ok(Some("1e-7"))),
            ("-0", Ok(Some("-0"))),
            ("1.7976931348623157e308", Ok(Some("1.7976931348623157e308"))),
            (
                "123456789012345678901234",
                Ok(Some("1.2345678901234569e23")),
            ),
            ("0.1", Ok(Some("0.1"))),
            ("inf", Err("not a finite number: \"inf\"")),
            ("NaN", Err("not a finite number: \"NaN\"")),
            ("1e400", Err("out of range for double precision")),
            ("1e-400", Err("out of range for double precision")),
            ("0x10", Err("not a number: \"0x10\"")),
        ],
    );
    assert_cases(
        &rule(ColumnType::Real),
        &[
            ("0.1", Ok(Some("0.1"))),
            ("16777217", Ok(Some("16777216"))),
            ("3.4028235e38", Ok(Some("3.4028235e38"))),
            ("1e39", Err("out of range for real")),
            ("1e-50", Err("out of range for real")),
        ],
    );
}

#[test]
fn booleans_accept_common_words_in_any_case() {
    let boolean = rule(ColumnType::Boolean);
    for word in ["true", "TRUE", "t", "Yes", "y", "1", "on", " On "] {
        assert_eq!(
            boolean.check(word.as_bytes()),
            Ok(Some(Cow::Borrowed("true"))),
            "{word}"
        );
    }
    for word in ["false", "F", "no", "N", "0", "off"] {
        assert_eq!(
            boolean.check(word.as_bytes()),
            Ok(Some(Cow::Borrowed("false"))),
            "{word}"
        );
    }
    assert_cases(
        &boolean,
        &[
            ("maybe", Err("not a boolean: \"maybe\"")),
            ("2", Err("not a boolean: \"2\"")),
        ],
    );
}

#[test]
fn text_is_kept_exactly_and_lengths_count_characters() {
    assert_cases(
        &rule(ColumnType::Text),
        &[
            ("  padded  ", Ok(Some("  padded  "))),
            ("a\tb\n", Ok(Some("a\tb\n"))),
        ],
    );
    let short = rule(ColumnType::Varchar(Some(3)));
    assert_cases(
        &short,
        &[
            ("abc", Ok(Some("abc"))),
            ("äöü", Ok(Some("äöü"))),
            (" ab", Ok(Some(" ab"))),
            ("ab   ", Ok(Some("ab "))),
            ("abcd", Err("longer than 3 characters")),
            ("abcd ", Err("longer than 3 characters")),
            ("ab\t ", Ok(Some("ab\t"))),
            ("abc\t", Err("longer than 3 characters")),
        ],
    );
    assert_cases(
        &rule(ColumnType::Char(Some(2))),
        &[
            ("ab", Ok(Some("ab"))),
            ("abc", Err("longer than 2 characters")),
        ],
    );
    assert_cases(
        &rule(ColumnType::Varchar(None)),
        &[(" any length ", Ok(Some(" any length ")))],
    );
}

#[test]
fn uuids_in_any_form_are_written_lower_case_and_hyphenated() {
    let canonical = "67e55044-10b1-426f-9247-bb680e5fe0c8";
    assert_cases(
        &rule(ColumnType::Uuid),
        &[
            (canonical, Ok(Some(canonical))),
            ("67E55044-10B1-426F-9247-BB680E5FE0C8", Ok(Some(canonical))),
            ("67e5504410b1426f9247bb680e5fe0c8", Ok(Some(canonical))),
            (
                "{67e55044-10b1-426f-9247-bb680e5fe0c8}",
                Ok(Some(canonical)),
            ),
            (
                "urn:uuid:67e55044-10b1-426f-9247-bb680e5fe0c8",
                Ok(Some(canonical)),
            ),
            (
                "67e55044-10b1-426f-9247",
                Err("not a UUID: \"67e55044-10b1-426f-9247\""),
            ),
        ],
    );
}

#[test]
fn dates_take_iso_and_the_spec_formats_and_refuse_impossible_days() {
    assert_cases(
        &rule(ColumnType::Date),
        &[
            ("2024-02-29", Ok(Some("2024-02-29"))),
            (" 2024-01-02 ", Ok(Some("2024-01-02"))),
            ("2023-02-29", Err("29 February 2023 is not a date")),
            ("2024-02-31", Err("31 February 2024 is not a date")),
            ("2024-13-01", Err("month 13 does not exist")),
            ("0000-01-01", Err("year 0 is out of range (0001 to 9999)")),
            ("2024-1-2", Err("not a date: \"2024-1-2\"")),
            ("2024-01-02T00:00", Err("not a date: \"2024-01-02T00:00\"")),
            ("02/01/2024", Err("not a date: \"02/01/2024\"")),
        ],
    );
    let european = with_spec(
        ColumnType::Date,
        r#"{"formats": ["%d/%m/%Y", "%d.%m.%y", "%d %b %Y"]}"#,
    );
    assert_cases(
        &european,
        &[
            ("2024-01-02", Ok(Some("2024-01-02"))),
            ("02/01/2024", Ok(Some("2024-01-02"))),
            ("2/1/2024", Ok(Some("2024-01-02"))),
            ("02.01.24", Ok(Some("2024-01-02"))),
            ("02.01.99", Ok(Some("1999-01-02"))),
            ("2 jan 2024", Ok(Some("2024-01-02"))),
            ("2 January 2024", Ok(Some("2024-01-02"))),
            ("31/02/2024", Err("31 February 2024 is not a date")),
            ("02/13/2024", Err("month 13 does not exist")),
            ("02/01/2024 10:00", Err("not a date: \"02/01/2024 10:00\"")),
        ],
    );
}

#[test]
fn timestamps_take_iso_without_offset_and_are_written_with_a_space() {
    assert_cases(
        &rule(ColumnType::Timestamp),
        &[
            ("2024-01-02 03:04:05", Ok(Some("2024-01-02 03:04:05"))),
            ("2024-01-02T03:04", Ok(Some("2024-01-02 03:04:00"))),
            (
                "2024-01-02t03:04:05.120",
                Ok(Some("2024-01-02 03:04:05.12")),
            ),
            (
                "2024-01-02 03:04:05.000001",
                Ok(Some("2024-01-02 03:04:05.000001")),
            ),
            (
                "2024-01-02 03:04:05.123456000",
                Ok(Some("2024-01-02 03:04:05.123456")),
            ),
            (
                "2024-01-02 03:04:05.1234567",
                Err("more precise than microseconds"),
            ),
            (
                "2024-01-02T03:04:05Z",
                Err("has a UTC offset, but the column is timestamp without time zone"),
            ),
            ("2024-01-02 24:00:00", Err("24:00:00 is not a time of day")),
            ("2024-01-02 23:59:60", Err("23:59:60 is not a time of day")),
            ("2024-02-30 10:00", Err("30 February 2024 is not a date")),
            ("2024-01-02", Err("not a timestamp: \"2024-01-02\"")),
        ],
    );
    let us = with_spec(
        ColumnType::Timestamp,
        r#"{"formats": ["%m/%d/%Y %I:%M %p", "%Y-%m-%d"]}"#,
    );
    assert_cases(
        &us,
        &[
            ("1/2/2024 3:04 PM", Ok(Some("2024-01-02 15:04:00"))),
            ("1/2/2024 12:00 am", Ok(Some("2024-01-02 00:00:00"))),
            ("2024-01-02", Ok(Some("2024-01-02 00:00:00"))),
            ("1/2/2024 13:04 PM", Err("13:04:00 PM is not a time of day")),
        ],
    );
}

#[test]
fn timestamptz_needs_an_offset_and_is_written_as_utc() {
    assert_cases(
        &rule(ColumnType::Timestamptz),
        &[
            ("2024-01-02T03:04:05Z", Ok(Some("2024-01-02T03:04:05Z"))),
            (
                "2024-01-02 03:04:05+02:00",
                Ok(Some("2024-01-02T01:04:05Z")),
            ),
            (
                "2024-01-02T03:04:05.5-05:30",
                Ok(Some("2024-01-02T08:34:05.5Z")),
            ),
            ("2024-01-01T23:30:00-0100", Ok(Some("2024-01-02T00:30:00Z"))),
            ("2024-01-02T03:04+01", Ok(Some("2024-01-02T02:04:00Z"))),
            (
                "2024-01-02T03:04:05",
                Err("no UTC offset (add Z or +HH:MM)"),
            ),
            (
                "0001-01-01T00:30:00+01:00",
                Err("out of range once converted to UTC"),
            ),
            (
                "9999-12-31T23:00:00-05:00",
                Err("out of range once converted to UTC"),
            ),
            (
                "2024-01-02T03:04:05+24:00",
                Err("offset +24:00 is out of range"),
            ),
            (
                "2024-01-02T03:04:05 +01:00",
                Err("not a timestamp: \"2024-01-02T03:04:05 +01:00\""),
            ),
        ],
    );
    let local = with_spec(
        ColumnType::Timestamptz,
        r#"{"formats": ["%d/%m/%Y %H:%M", "%Y-%m-%dT%H:%M:%S%z"]}"#,
    );
    assert_cases(
        &local,
        &[
            ("02/01/2024 03:04", Ok(Some("2024-01-02T03:04:00Z"))),
            ("2024-01-02T03:04:05+0100", Ok(Some("2024-01-02T02:04:05Z"))),
            (
                "2024-01-02T03:04:05",
                Err("no UTC offset (add Z or +HH:MM)"),
            ),
        ],
    );
}

#[test]
fn json_must_parse_and_jsonb_refuses_nul_escapes() {
    let json = rule(ColumnType::Json);
    assert_cases(
        &json,
        &[
            (
                r#"{"a": [1, 2.5, null]}"#,
                Ok(Some(r#"{"a": [1, 2.5, null]}"#)),
            ),
            (" [1,2] ", Ok(Some("[1,2]"))),
            (r#""\u0000""#, Ok(Some(r#""\u0000""#))),
        ],
    );
    let broken = json.check(b"{a: 1}").unwrap_err();
    assert!(
        broken.starts_with("not valid JSON: key must be a string"),
        "{broken}"
    );
    assert_cases(
        &rule(ColumnType::Jsonb),
        &[
            (r#"{"k": "a\u0000b"}"#, Err("jsonb cannot hold \\u0000")),
            (r#"{"a\u0000": 1}"#, Err("jsonb cannot hold \\u0000")),
            (r#""\\u0000""#, Ok(Some(r#""\\u0000""#))),
        ],
    );
}

#[test]
fn enum_types_take_their_labels_exactly_and_other_types_pass_trimmed() {
    let status = rule(ColumnType::Enum(vec!["ok".into(), "error".into()]));
    assert_cases(
        &status,
        &[
            (" ok ", Ok(Some("ok"))),
            ("OK", Err("not one of: ok, error")),
        ],
    );
    let interval = rule(ColumnType::Other("interval".into()));
    assert_cases(&interval, &[(" 1 day ", Ok(Some("1 day")))]);
}

#[test]
fn spec_rules_apply_to_the_value_as_loaded() {
    let status = with_spec(ColumnType::Text, r#"{"enum": ["ok", "error"]}"#);
    assert_cases(
        &status,
        &[
            ("ok", Ok(Some("ok"))),
            ("warn", Err("not one of: ok, error")),
        ],
    );
    let email = with_spec(ColumnType::Text, r#"{"pattern": "^[a-z]+@[a-z]+$"}"#);
    let mismatch = Err("does not match the pattern \"^[a-z]+@[a-z]+$\"");
    assert_cases(
        &email,
        &[
            ("a@b", Ok(Some("a@b"))),
            ("a@b@c", mismatch),
            ("a@b\n", mismatch),
            ("x a@b", mismatch),
        ],
    );
    let digits = with_spec(ColumnType::Varchar(Some(10)), r#"{"pattern": "[0-9]+|x"}"#);
    assert_cases(
        &digits,
        &[
            ("12", Ok(Some("12"))),
            ("12a", Err("does not match the pattern \"[0-9]+|x\"")),
            ("x", Ok(Some("x"))),
        ],
    );
    let percent = with_spec(ColumnType::Integer, r#"{"min": 0, "max": 100}"#);
    assert_cases(
        &percent,
        &[
            ("0", Ok(Some("0"))),
            ("100", Ok(Some("100"))),
            ("-1", Err("less than the minimum 0")),
            ("101", Err("greater than the maximum 100")),
        ],
    );
    let rate = with_spec(
        ColumnType::Numeric {
            precision: None,
            scale: None,
        },
        r#"{"max": 2.5}"#,
    );
    assert_cases(
        &rate,
        &[
            ("2.50", Ok(Some("2.50"))),
            ("2.5000001", Err("greater than the maximum 2.5")),
        ],
    );
    let ratio = with_spec(ColumnType::Double, r#"{"min": 0.1}"#);
    assert_cases(
        &ratio,
        &[
            ("0.1", Ok(Some("0.1"))),
            ("0.09", Err("less than the minimum 0.1")),
        ],
    );
}

#[test]
fn values_already_in_normal_form_are_borrowed() {
    let cases = [
        (ColumnType::Integer, "42"),
        (ColumnType::Double, "1.5"),
        (
            ColumnType::Numeric {
                precision: None,
                scale: None,
            },
            "1.50",
        ),
        (ColumnType::Text, " x "),
        (ColumnType::Uuid, "67e55044-10b1-426f-9247-bb680e5fe0c8"),
        (ColumnType::Date, "2024-01-02"),
        (ColumnType::Timestamp, "2024-01-02 03:04:05.5"),
        (ColumnType::Timestamptz, "2024-01-02T03:04:05Z"),
        (ColumnType::Jsonb, "{}"),
    ];
    for (kind, value) in cases {
        let checked = rule(kind).check(value.as_bytes());
        assert!(
            matches!(checked, Ok(Some(Cow::Borrowed(_)))),
            "{value}: {checked:?}"
        );
    }
}

mod properties {
    use std::borrow::Cow;

    use proptest::prelude::*;
    use time::{Date, OffsetDateTime, PrimitiveDateTime, Time, UtcOffset};

    use super::{rule, with_spec};
    use crate::pipeline::validate::{ColumnRule, ColumnType};

    /// Julian days of 0001-01-01 and 9999-12-31.
    const DAYS: std::ops::RangeInclusive<i32> = 1_721_426..=5_373_484;

    fn every_kind() -> Vec<ColumnRule> {
        let kinds = [
            ColumnType::SmallInt,
            ColumnType::Integer,
            ColumnType::BigInt,
            ColumnType::Numeric {
                precision: Some(5),
                scale: Some(2),
            },
            ColumnType::Numeric {
                precision: None,
                scale: None,
            },
            ColumnType::Real,
            ColumnType::Double,
            ColumnType::Boolean,
            ColumnType::Text,
            ColumnType::Varchar(Some(3)),
            ColumnType::Char(Some(1)),
            ColumnType::Uuid,
            ColumnType::Json,
            ColumnType::Jsonb,
            ColumnType::Enum(vec!["a".into()]),
            ColumnType::Other("point".into()),
        ];
        let mut rules: Vec<ColumnRule> = kinds.into_iter().map(rule).collect();
        let formats = r#"{"formats": ["%d/%m/%y %I:%M:%S.%f %p", "%d %b %Y %H%z"]}"#;
        rules.push(with_spec(
            ColumnType::Date,
            r#"{"formats": ["%d.%m.%Y", "%b %d %y"]}"#,
        ));
        rules.push(with_spec(
            ColumnType::Timestamp,
            r#"{"formats": ["%d/%m/%y %I:%M:%S.%f %p"]}"#,
        ));
        rules.push(with_spec(ColumnType::Timestamptz, formats));
        rules.push(with_spec(
            ColumnType::Text,
            r#"{"enum": ["x"], "pattern": "[a-z]+"}"#,
        ));
        rules.push(with_spec(
            ColumnType::Double,
            r#"{"min": -1.5, "max": 1e10}"#,
        ));
        rules
    }

    /// Text that looks like numbers, dates and times often enough to reach the deep paths.
    fn field_like() -> impl Strategy<Value = String> {
        prop_oneof![
            any::<String>(),
            "[-+ 0-9eE.:TZ/apm{}]{0,40}",
            "[0-9]{4}-[0-9]{2}-[0-9]{2}[T ][0-9]{2}:[0-9]{2}(:[0-9]{2}(\\.[0-9]{1,12})?)?([Zz]|[-+][0-9]{2}(:?[0-9]{2})?)?",
        ]
    }

    proptest! {
        #[test]
        fn any_field_either_validates_or_gets_a_reason(raw in prop_oneof![
            field_like().prop_map(String::into_bytes),
            proptest::collection::vec(any::<u8>(), 0..48),
        ]) {
            for rule in every_kind() {
                if let Err(reason) = rule.check(&raw) {
                    prop_assert!(!reason.is_empty(), "{} column", rule.kind);
                }
            }
        }

        #[test]
        fn a_normalised_value_is_a_fixed_point(raw in field_like()) {
            for rule in every_kind() {
                if let Ok(Some(value)) = rule.check(raw.as_bytes()) {
                    let again = rule.check(value.as_bytes());
                    prop_assert!(matches!(again, Ok(Some(Cow::Borrowed(_)))), "{} {value:?}: {again:?}", rule.kind);
                    let again = again.ok().flatten();
                    prop_assert_eq!(again.as_deref(), Some(value.as_ref()));
                }
            }
        }

        #[test]
        fn every_bigint_round_trips(n in any::<i64>()) {
            let text = n.to_string();
            let checked = rule(ColumnType::BigInt).check(text.as_bytes());
            prop_assert!(matches!(checked, Ok(Some(Cow::Borrowed(v))) if v == text));
        }

        #[test]
        fn integers_with_signs_and_zeros_are_written_plainly(n in any::<i32>(), zeros in 0..5usize, plus in any::<bool>()) {
            let sign = if n < 0 { "-" } else if plus { "+" } else { "" };
            let text = format!("{sign}{}{}", "0".repeat(zeros), n.unsigned_abs());
            let checked = rule(ColumnType::Integer).check(text.as_bytes());
            prop_assert_eq!(checked.map(|v| v.map(Cow::into_owned)), Ok(Some(n.to_string())));
        }

        #[test]
        fn every_finite_double_round_trips(x in any::<f64>().prop_filter("finite", |x| x.is_finite())) {
            for text in [format!("{x}"), format!("{x:e}"), format!("{x:?}")] {
                let checked = rule(ColumnType::Double).check(text.as_bytes());
                let value = checked.clone().ok().flatten();
                prop_assert_eq!(value.and_then(|v| v.parse::<f64>().ok()), Some(x), "{:?} → {:?}", text, checked);
            }
        }

        #[test]
        fn every_real_round_trips(x in any::<f32>().prop_filter("finite", |x| x.is_finite())) {
            let text = format!("{x:e}");
            let checked = rule(ColumnType::Real).check(text.as_bytes());
            prop_assert_eq!(checked.ok().flatten().and_then(|v| v.parse::<f32>().ok()), Some(x));
        }

        #[test]
        fn every_date_round_trips_in_iso_and_in_a_format(day in DAYS) {
            let date = Date::from_julian_day(day).unwrap();
            let iso = format!("{:04}-{:02}-{:02}", date.year(), u8::from(date.month()), date.day());
            let dotted = format!("{:02}.{:02}.{:04}", date.day(), u8::from(date.month()), date.year());
            let rule = with_spec(ColumnType::Date, r#"{"formats": ["%d.%m.%Y"]}"#);
            prop_assert_eq!(rule.check(iso.as_bytes()), Ok(Some(Cow::Borrowed(iso.as_str()))));
            prop_assert_eq!(rule.check(dotted.as_bytes()), Ok(Some(Cow::Owned(iso.clone()))));
        }

        #[test]
        fn timestamptz_is_the_same_instant_in_utc(
            day in 1_721_427..=5_373_483i32,
            micros in 0..86_400_000_000i64,
            offset_minutes in -1439..=1439i32,
        ) {
            let time = Time::MIDNIGHT + time::Duration::microseconds(micros);
            let local = PrimitiveDateTime::new(Date::from_julian_day(day).unwrap(), time);
            let offset = UtcOffset::from_whole_seconds(offset_minutes * 60).unwrap();
            let (h, m) = (offset_minutes.abs() / 60, offset_minutes.abs() % 60);
            let sign = if offset_minutes < 0 { '-' } else { '+' };
            let (date, t) = (local.date(), local.time());
            let text = format!(
                "{:04}-{:02}-{:02} {:02}:{:02}:{:02}.{:06}{sign}{h:02}:{m:02}",
                date.year(), u8::from(date.month()), date.day(),
                t.hour(), t.minute(), t.second(), t.microsecond(),
            );
            let checked = rule(ColumnType::Timestamptz).check(text.as_bytes()).unwrap().unwrap();
            let parsed = OffsetDateTime::parse(&checked, &time::format_description::well_known::Rfc3339).unwrap();
            prop_assert_eq!(parsed, local.assume_offset(offset));
            prop_assert!(checked.ends_with('Z'));
        }

        #[test]
        fn any_uuid_in_any_case_is_written_lower_case(n in any::<u128>()) {
            let id = uuid::Uuid::from_u128(n);
            let upper = id.simple().to_string().to_uppercase();
            let checked = rule(ColumnType::Uuid).check(upper.as_bytes());
            prop_assert_eq!(checked, Ok(Some(Cow::Owned(id.hyphenated().to_string()))));
        }

        #[test]
        fn varchar_accepts_exactly_up_to_its_length(text in "\\PC{0,12}", n in 0..8u32) {
            let checked = rule(ColumnType::Varchar(Some(n))).check(text.as_bytes());
            let chars = text.chars().count();
            let fits = chars <= n as usize || text.chars().skip(n as usize).all(|c| c == ' ');
            prop_assert_eq!(checked.is_ok(), fits || text.is_empty());
        }
    }
}

#[test]
fn a_quoted_empty_field_is_the_empty_string_in_text_columns_and_null_elsewhere() {
    let empty = |rule: &ColumnRule| {
        let got = rule.check_field(b"", true);
        got.map(|v| v.map(Cow::into_owned))
    };
    for kind in [
        ColumnType::Text,
        ColumnType::Varchar(Some(3)),
        ColumnType::Char(Some(2)),
    ] {
        assert_eq!(
            empty(&rule(kind.clone())),
            Ok(Some(String::new())),
            "{kind}"
        );
        assert_eq!(rule(kind.clone()).check(b""), Ok(None), "{kind}");
        // Not NULL, so a NOT NULL text column takes it.
        let not_null = ColumnRule::build("c", kind.clone(), false, None).unwrap();
        assert_eq!(empty(&not_null), Ok(Some(String::new())), "{kind}");
    }
    for kind in [
        ColumnType::Integer,
        ColumnType::Date,
        ColumnType::Boolean,
        ColumnType::Json,
        ColumnType::Other("inet".into()),
    ] {
        assert_eq!(empty(&rule(kind.clone())), Ok(None), "{kind}");
        let not_null = ColumnRule::build("c", kind.clone(), false, None).unwrap();
        assert_eq!(empty(&not_null), Err("required".to_owned()), "{kind}");
    }
    // A quoted field of spaces is trimmed to NULL in a number column, kept in a text one.
    assert_eq!(
        rule(ColumnType::Integer).check_field(b"  ", false),
        Ok(None)
    );
    let text = rule(ColumnType::Text).check_field(b"  ", false);
    assert_eq!(text, Ok(Some(Cow::Borrowed("  "))));
    // The spec's rules still apply to the empty string.
    let listed = with_spec(ColumnType::Text, r#"{"enum": ["a", "b"]}"#);
    assert!(listed.check_field(b"", true).is_err());
    assert_eq!(listed.check_field(b"", false), Ok(None));
}
