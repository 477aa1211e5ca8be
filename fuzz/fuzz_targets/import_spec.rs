//! Import specs and the per-column rules they carry, from arbitrary bytes.
//!
//! The input is read as an `ImportRequest` (then checked with `parse`, and each of its
//! `columns` entries read as a `RuleSpec`) and as a bare `RuleSpec`. Every `RuleSpec` is built
//! against a handful of column types (formats on date/time columns, patterns and enums on text,
//! min/max on numbers) and, when it builds, run on a few sample values and on the input itself.
//!
//! Invariant: no panic, whatever the spec (bad regexes, odd strftime formats, huge numbers).
#![no_main]

use ferry::domain::ImportRequest;
use ferry::pipeline::validate::{ColumnRule, ColumnType, RuleSpec};
use libfuzzer_sys::fuzz_target;

const SAMPLES: [&str; 8] = [
    "2026-11-23",
    "23/11/2026 14:05",
    "2026-11-23T14:05:06.5+01:00",
    "Nov 23 26 2:05 PM",
    "12.50",
    "-1e3",
    "ok",
    "",
];

fn kinds() -> [ColumnType; 8] {
    [
        ColumnType::Date,
        ColumnType::Timestamp,
        ColumnType::Timestamptz,
        ColumnType::Text,
        ColumnType::Enum(vec!["ok".into(), "error".into()]),
        ColumnType::Integer,
        ColumnType::Numeric {
            precision: Some(6),
            scale: Some(2),
        },
        ColumnType::Double,
    ]
}

fn exercise(spec: &RuleSpec, input: &[u8]) {
    for (i, kind) in kinds().into_iter().enumerate() {
        let Ok(rule) = ColumnRule::build("c", kind, i % 2 == 0, Some(spec)) else {
            continue;
        };
        for sample in SAMPLES {
            let _ = rule.check(sample.as_bytes());
        }
        let _ = rule.check(input);
    }
}

fuzz_target!(|data: &[u8]| {
    if let Ok(request) = serde_json::from_slice::<ImportRequest>(data) {
        let _ = request.parse("2026-11-23");
        for value in request.columns.values() {
            if let Ok(spec) = serde_json::from_value::<RuleSpec>(value.clone()) {
                exercise(&spec, data);
            }
        }
    }
    if let Ok(spec) = serde_json::from_slice::<RuleSpec>(data) {
        exercise(&spec, data);
    }
});
