//! Export specs, the generate source and query-parameter inlining, from arbitrary bytes.
//!
//! Input layout: the bytes before the first NUL are read as an `ExportRequest` JSON body, then
//! checked with `parse`; a generate source builds a `Generator` and pulls two batches of at
//! most 10 rows; an SQL source's parameters are read with `params::untyped` and inlined into its
//! query; a template source's parameters are read with `params::typed` for every type. The
//! bytes after the first NUL are a query and parameters separated by NULs; a parameter that is
//! JSON is read as such (`untyped`, and `typed` for every type), anything else is text.
//!
//! Invariants: no panic; when `inline` succeeds, (1) what it returns holds no placeholder
//! outside a literal any more (inlining it again with no parameters succeeds and changes
//! nothing), (2) each parameter lands where its placeholder was, the same whatever its value
//! (the result equals inlining unique NUL-marked strings and replacing each marker's literal
//! with the parameter's), and (3) a text parameter with a `'` appears with it doubled.
#![no_main]

use ferry::config::ParamType;
use ferry::domain::{ExportRequest, Source};
use ferry::pipeline::sources::generate::Generator;
use ferry::pipeline::sources::params::{self, Param};
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

const TYPES: [ParamType; 8] = [
    ParamType::Text,
    ParamType::Int,
    ParamType::Bigint,
    ParamType::Numeric,
    ParamType::Bool,
    ParamType::Date,
    ParamType::Timestamptz,
    ParamType::Uuid,
];

fn marker(i: usize) -> Param {
    Param::Text(format!("\0{i}\0"), None)
}

fn check_inline(query: &str, given: &[Param]) {
    let Ok(out) = params::inline(query, given) else {
        return;
    };
    assert_eq!(
        params::inline(&out, &[]).as_deref(),
        Ok(out.as_str()),
        "a placeholder is left outside a literal: {query:?} -> {out:?}"
    );
    if query.contains('\0') {
        return;
    }
    let markers: Vec<Param> = (0..given.len()).map(marker).collect();
    let mut expected = params::inline(query, &markers).expect("same placeholders, same answer");
    for (i, param) in given.iter().enumerate() {
        let used = expected.contains(&format!("\0{i}\0"));
        expected = expected.replace(&params::literal(&markers[i]), &params::literal(param));
        if let (true, Param::Text(s, _)) = (used, param) {
            if s.contains('\'') {
                assert!(
                    out.contains(&s.replace('\'', "''")),
                    "{s:?} not doubled in {out:?}"
                );
            }
        }
    }
    assert_eq!(
        out, expected,
        "a parameter's value changed where it went: {query:?}"
    );
}

fn generate(spec: ferry::domain::generate::GenerateSpec) {
    let mut generator = Generator::new(spec);
    let _ = generator.columns();
    for _ in 0..2 {
        let rows = generator.next_batch(10);
        assert!(rows.len() <= 10);
    }
}

fn spec_part(json: &[u8]) {
    let Ok(request) = serde_json::from_slice::<ExportRequest>(json) else {
        return;
    };
    let Ok(spec) = request.parse("2026-11-23") else {
        return;
    };
    for part in spec.parts {
        source(part.source);
    }
}

fn source(source: Source) {
    match source {
        Source::Generate(spec) => generate(spec),
        Source::Sql {
            query,
            params: values,
            ..
        } => {
            let given: Result<Vec<Param>, _> =
                values.iter().map(|v| params::untyped(v, "p")).collect();
            if let Ok(given) = given {
                check_inline(&query, &given);
            }
        }
        Source::Template { params: values, .. } => {
            for value in values.values() {
                for kind in TYPES {
                    let _ = params::typed(value, kind, "p");
                }
            }
        }
    }
}

/// A parameter from its text: JSON is read with `typed` (for a type the length picks) or else
/// `untyped`; anything else is plain text.
fn param(text: &str) -> Param {
    let Ok(value) = serde_json::from_str::<Value>(text) else {
        return Param::Text(text.to_owned(), None);
    };
    params::typed(&value, TYPES[text.len() % TYPES.len()], "p")
        .or_else(|_| params::untyped(&value, "p"))
        .unwrap_or(Param::Null)
}

fn inline_part(bytes: &[u8]) {
    let text = String::from_utf8_lossy(bytes);
    let mut parts = text.split('\0');
    let query = parts.next().unwrap_or("");
    let given: Vec<Param> = parts.take(12).map(param).collect();
    check_inline(query, &given);
}

fuzz_target!(|data: &[u8]| {
    match data.iter().position(|&b| b == 0) {
        Some(at) => {
            spec_part(&data[..at]);
            inline_part(&data[at + 1..]);
        }
        None => spec_part(data),
    }
});
