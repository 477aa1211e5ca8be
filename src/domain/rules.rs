//! The extra rules an import spec may give a column (`columns` in SPEC §4.1), as the client
//! wrote them. `pipeline::validate::ColumnRule::build` checks them against the column's type.

use serde::Deserialize;

/// One column's entry in the import spec's `columns` object. Every rule is optional; unknown
/// keys are refused so a typo (`"patern"`) is reported rather than ignored.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RuleSpec {
    /// strftime-style formats tried, in order, after ISO 8601 (date and time columns only):
    /// `%Y %y %m %b %B %d %H %I %p %M %S %f %z %F %T %%` and literal characters.
    pub formats: Option<Vec<String>>,
    /// The only values allowed, compared exactly (text and enum columns only).
    #[serde(rename = "enum")]
    pub values: Option<Vec<String>>,
    /// A regular expression the whole value must match (text and enum columns only).
    pub pattern: Option<String>,
    /// `true` rejects empty fields even where the column allows NULL.
    pub required: Option<bool>,
    /// The smallest value allowed, inclusive (number columns only).
    #[schema(value_type = Option<f64>)]
    pub min: Option<serde_json::Number>,
    /// The largest value allowed, inclusive (number columns only).
    #[schema(value_type = Option<f64>)]
    pub max: Option<serde_json::Number>,
}

#[cfg(test)]
mod tests {
    use super::RuleSpec;

    #[test]
    fn rule_spec_reads_the_spec_examples() {
        let spec: RuleSpec = serde_json::from_str(
            r#"{"formats": ["%d/%m/%Y %H:%M"], "enum": ["ok", "error"], "pattern": "^x$",
                "required": true, "min": 0, "max": 2.5}"#,
        )
        .unwrap();
        assert_eq!(spec.formats, Some(vec!["%d/%m/%Y %H:%M".to_owned()]));
        assert_eq!(spec.values, Some(vec!["ok".to_owned(), "error".to_owned()]));
        assert_eq!(spec.pattern.as_deref(), Some("^x$"));
        assert_eq!(spec.required, Some(true));
        assert_eq!(spec.min.map(|n| n.to_string()), Some("0".to_owned()));
        assert_eq!(spec.max.map(|n| n.to_string()), Some("2.5".to_owned()));
    }

    #[test]
    fn rule_spec_refuses_unknown_keys() {
        let error = serde_json::from_str::<RuleSpec>(r#"{"patern": "x"}"#).unwrap_err();
        assert!(
            error.to_string().contains("unknown field `patern`"),
            "{error}"
        );
    }
}
