//! Column types as the validator sees them, read from the database's own description of the
//! target table: PostgreSQL's `information_schema.columns` (plus `pg_enum` labels) or SQLite's
//! declared column types.

use std::fmt;

/// The type of a target column, as far as validating a field goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ColumnType {
    /// `smallint`: a 16-bit signed integer.
    SmallInt,
    /// `integer`: a 32-bit signed integer.
    Integer,
    /// `bigint` (and every SQLite integer type): a 64-bit signed integer.
    BigInt,
    /// `numeric(precision, scale)`; `None` where the column leaves it open. A precision without
    /// a scale means scale 0, as in SQL.
    Numeric {
        /// Total significant digits the column holds.
        precision: Option<u32>,
        /// Digits after the decimal point the column holds.
        scale: Option<u32>,
    },
    /// `real`: a 32-bit float.
    Real,
    /// `double precision` (and SQLite's `REAL`, `DOUBLE`, `FLOAT`): a 64-bit float.
    Double,
    /// `boolean`.
    Boolean,
    /// `text`: any string, kept exactly as written.
    Text,
    /// `character varying(n)`: at most `n` characters when `n` is given.
    Varchar(Option<u32>),
    /// `character(n)`: at most `n` characters when `n` is given (the database pads).
    Char(Option<u32>),
    /// `uuid`.
    Uuid,
    /// `date`.
    Date,
    /// `timestamp without time zone` (and SQLite's `DATETIME`, `TIMESTAMP`).
    Timestamp,
    /// `timestamp with time zone`.
    Timestamptz,
    /// `json`.
    Json,
    /// `jsonb`: JSON that may not contain `\u0000`.
    Jsonb,
    /// A PostgreSQL enum type with these labels, in their declared order.
    Enum(Vec<String>),
    /// Any other type, by the name the database gave. Fields pass through as trimmed text and
    /// the database judges them: a bad value fails the load rather than one row.
    Other(String),
}

impl ColumnType {
    /// From PostgreSQL's `information_schema.columns` (`data_type`, `udt_name`,
    /// `character_maximum_length`, `numeric_precision`, `numeric_scale`) and, for enums, the
    /// labels from `pg_enum`. Labels make the column an enum whatever the other arguments say;
    /// a name that `data_type` does not settle is looked up by `udt_name`. A `numeric` with a
    /// negative scale (PostgreSQL 15+) is `Other`, left to the database.
    pub fn from_postgres(
        data_type: &str,
        udt_name: &str,
        char_len: Option<i32>,
        precision: Option<i32>,
        scale: Option<i32>,
        enum_labels: Option<Vec<String>>,
    ) -> Self {
        if let Some(labels) = enum_labels {
            return Self::Enum(labels);
        }
        let len = char_len.and_then(|n| u32::try_from(n).ok());
        let name = udt_of(data_type).unwrap_or(udt_name).to_ascii_lowercase();
        match name.as_str() {
            "int2" => Self::SmallInt,
            "int4" => Self::Integer,
            "int8" => Self::BigInt,
            "numeric" => numeric(precision, scale),
            "float4" => Self::Real,
            "float8" => Self::Double,
            "bool" => Self::Boolean,
            "text" => Self::Text,
            "varchar" => Self::Varchar(len),
            "bpchar" => Self::Char(len),
            "uuid" => Self::Uuid,
            "date" => Self::Date,
            "timestamp" => Self::Timestamp,
            "timestamptz" => Self::Timestamptz,
            "json" => Self::Json,
            "jsonb" => Self::Jsonb,
            _ if udt_name.is_empty() => Self::Other(data_type.to_owned()),
            _ => Self::Other(udt_name.to_owned()),
        }
    }

    /// From SQLite's declared type (`PRAGMA table_info` `type`), case- and space-insensitive.
    /// The names SQLite's affinity rules document keep their meaning: every integer name is
    /// `BigInt` (SQLite stores 64 bits whatever the name), `VARCHAR(20)` is `Varchar(Some(20))`,
    /// `TEXT`/`CLOB` are `Text`, `REAL`/`DOUBLE`/`FLOAT` are `Double`, `NUMERIC`/`DECIMAL(p,s)`
    /// are `Numeric`; `BOOLEAN`, `DATE`, `DATETIME`/`TIMESTAMP`, `TIMESTAMPTZ`, `UUID` and `JSON` are
    /// recognised too. `BLOB`, no type and any other name (`POINT`, `INTERVAL`, …) are `Other`:
    /// SQLite stores whatever it is given there.
    pub fn from_sqlite(declared: &str) -> Self {
        let (name, args) = split_declared(declared);
        let first = args.first().copied().flatten();
        let second = args.get(1).copied().flatten();
        match name.as_str() {
            "INT" | "INTEGER" | "TINYINT" | "SMALLINT" | "MEDIUMINT" | "BIGINT"
            | "UNSIGNED BIG INT" | "INT2" | "INT4" | "INT8" => Self::BigInt,
            "VARCHAR" | "CHARACTER VARYING" | "VARYING CHARACTER" | "NVARCHAR" => {
                Self::Varchar(first)
            }
            "CHAR" | "CHARACTER" | "NCHAR" | "NATIVE CHARACTER" => Self::Char(first),
            "TEXT" | "CLOB" => Self::Text,
            "REAL" | "DOUBLE" | "DOUBLE PRECISION" | "FLOAT" => Self::Double,
            "NUMERIC" | "DECIMAL" => Self::Numeric {
                precision: first,
                scale: second,
            },
            "BOOLEAN" | "BOOL" => Self::Boolean,
            "DATE" => Self::Date,
            "DATETIME" | "TIMESTAMP" | "TIMESTAMP WITHOUT TIME ZONE" => Self::Timestamp,
            "TIMESTAMPTZ" | "TIMESTAMP WITH TIME ZONE" => Self::Timestamptz,
            "UUID" => Self::Uuid,
            "JSON" => Self::Json,
            _ => Self::Other(declared.trim().to_owned()),
        }
    }

    /// Whether fields keep their surrounding whitespace: only the text types do.
    pub(super) fn keeps_whitespace(&self) -> bool {
        matches!(self, Self::Text | Self::Varchar(_) | Self::Char(_))
    }

    /// Whether `min` and `max` apply: the integer, numeric and float types.
    pub(super) fn is_number(&self) -> bool {
        matches!(
            self,
            Self::SmallInt
                | Self::Integer
                | Self::BigInt
                | Self::Numeric { .. }
                | Self::Real
                | Self::Double
        )
    }

    /// Whether `formats` apply: date and time types.
    pub(super) fn is_temporal(&self) -> bool {
        matches!(self, Self::Date | Self::Timestamp | Self::Timestamptz)
    }

    /// Whether `enum` and `pattern` apply: types whose value is its text.
    pub(super) fn is_textual(&self) -> bool {
        matches!(
            self,
            Self::Text | Self::Varchar(_) | Self::Char(_) | Self::Enum(_) | Self::Other(_)
        )
    }

    /// The most characters a value may have, for the length-limited text types.
    pub(super) fn max_chars(&self) -> Option<u32> {
        match self {
            Self::Varchar(n) | Self::Char(n) => *n,
            _ => None,
        }
    }
}

/// The SQL name of the type, as messages show it: `integer`, `numeric(10,2)`, `varchar(20)`.
impl fmt::Display for ColumnType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::SmallInt => f.write_str("smallint"),
            Self::Integer => f.write_str("integer"),
            Self::BigInt => f.write_str("bigint"),
            Self::Numeric {
                precision: Some(p),
                scale,
            } => write!(f, "numeric({p},{})", scale.unwrap_or(0)),
            Self::Numeric { .. } => f.write_str("numeric"),
            Self::Real => f.write_str("real"),
            Self::Double => f.write_str("double precision"),
            Self::Boolean => f.write_str("boolean"),
            Self::Text => f.write_str("text"),
            Self::Varchar(Some(n)) => write!(f, "varchar({n})"),
            Self::Varchar(None) => f.write_str("varchar"),
            Self::Char(Some(n)) => write!(f, "char({n})"),
            Self::Char(None) => f.write_str("char"),
            Self::Uuid => f.write_str("uuid"),
            Self::Date => f.write_str("date"),
            Self::Timestamp => f.write_str("timestamp"),
            Self::Timestamptz => f.write_str("timestamptz"),
            Self::Json => f.write_str("json"),
            Self::Jsonb => f.write_str("jsonb"),
            Self::Enum(_) => f.write_str("enum"),
            Self::Other(name) => f.write_str(name),
        }
    }
}

/// The `udt_name` a standard `information_schema` `data_type` stands for.
fn udt_of(data_type: &str) -> Option<&'static str> {
    Some(match data_type.to_ascii_lowercase().as_str() {
        "smallint" => "int2",
        "integer" => "int4",
        "bigint" => "int8",
        "numeric" => "numeric",
        "real" => "float4",
        "double precision" => "float8",
        "boolean" => "bool",
        "text" => "text",
        "character varying" => "varchar",
        "character" => "bpchar",
        "uuid" => "uuid",
        "date" => "date",
        "timestamp without time zone" => "timestamp",
        "timestamp with time zone" => "timestamptz",
        "json" => "json",
        "jsonb" => "jsonb",
        _ => return None,
    })
}

/// `numeric` with PostgreSQL's typmod; a negative scale is not something this validator checks.
fn numeric(precision: Option<i32>, scale: Option<i32>) -> ColumnType {
    let unsigned = |n: Option<i32>| n.map(u32::try_from).transpose();
    match (unsigned(precision), unsigned(scale)) {
        (Ok(precision), Ok(scale)) => ColumnType::Numeric { precision, scale },
        _ => ColumnType::Other(format!(
            "numeric({},{})",
            precision.unwrap_or_default(),
            scale.unwrap_or_default()
        )),
    }
}

/// A declared SQLite type as its upper-case name with single spaces, and its numeric arguments:
/// `"decimal( 10, 2 )"` → (`"DECIMAL"`, `[Some(10), Some(2)]`).
fn split_declared(declared: &str) -> (String, Vec<Option<u32>>) {
    let (name, args) = match declared.split_once('(') {
        Some((name, rest)) => (name, rest.strip_suffix(')').unwrap_or(rest)),
        None => (declared, ""),
    };
    let name = name
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_ascii_uppercase();
    let args = if args.trim().is_empty() {
        Vec::new()
    } else {
        args.split(',').map(|a| a.trim().parse().ok()).collect()
    };
    (name, args)
}

#[cfg(test)]
mod tests {
    use super::ColumnType::{self, *};

    fn pg(data_type: &str, udt: &str) -> ColumnType {
        ColumnType::from_postgres(data_type, udt, None, None, None, None)
    }

    #[test]
    fn postgres_types_are_read_from_data_type_and_udt_name() {
        let cases = [
            ("smallint", "int2", SmallInt),
            ("integer", "int4", Integer),
            ("bigint", "int8", BigInt),
            ("real", "float4", Real),
            ("double precision", "float8", Double),
            ("boolean", "bool", Boolean),
            ("text", "text", Text),
            ("uuid", "uuid", Uuid),
            ("date", "date", Date),
            ("timestamp without time zone", "timestamp", Timestamp),
            ("timestamp with time zone", "timestamptz", Timestamptz),
            ("json", "json", Json),
            ("jsonb", "jsonb", Jsonb),
            ("USER-DEFINED", "citext", Other("citext".into())),
            ("ARRAY", "_int4", Other("_int4".into())),
            ("interval", "interval", Other("interval".into())),
            ("", "int8", BigInt),
        ];
        for (data_type, udt, expected) in cases {
            assert_eq!(pg(data_type, udt), expected, "{data_type} / {udt}");
        }
    }

    #[test]
    fn postgres_lengths_precision_and_enum_labels_are_kept() {
        let varchar =
            ColumnType::from_postgres("character varying", "varchar", Some(20), None, None, None);
        assert_eq!(varchar, Varchar(Some(20)));
        let bpchar = ColumnType::from_postgres("character", "bpchar", Some(2), None, None, None);
        assert_eq!(bpchar, Char(Some(2)));
        let open =
            ColumnType::from_postgres("character varying", "varchar", None, None, None, None);
        assert_eq!(open, Varchar(None));
        let money = ColumnType::from_postgres("numeric", "numeric", None, Some(10), Some(2), None);
        assert_eq!(
            money,
            Numeric {
                precision: Some(10),
                scale: Some(2)
            }
        );
        let labels = vec!["ok".to_owned(), "error".to_owned()];
        let status = ColumnType::from_postgres(
            "USER-DEFINED",
            "status",
            None,
            None,
            None,
            Some(labels.clone()),
        );
        assert_eq!(status, Enum(labels));
    }

    #[test]
    fn postgres_numeric_with_a_negative_scale_is_left_to_the_database() {
        let rounded =
            ColumnType::from_postgres("numeric", "numeric", None, Some(5), Some(-2), None);
        assert_eq!(rounded, Other("numeric(5,-2)".into()));
    }

    #[test]
    fn sqlite_declared_types_keep_recognisable_names() {
        let cases = [
            ("INTEGER", BigInt),
            ("int", BigInt),
            ("bigint", BigInt),
            ("SMALLINT", BigInt),
            ("unsigned  big int", BigInt),
            ("VARCHAR(20)", Varchar(Some(20))),
            ("varchar ( 20 )", Varchar(Some(20))),
            ("NVARCHAR(100)", Varchar(Some(100))),
            ("CHARACTER(20)", Char(Some(20))),
            ("TEXT", Text),
            ("clob", Text),
            ("REAL", Double),
            ("DOUBLE PRECISION", Double),
            ("FLOAT", Double),
            (
                "DECIMAL(10, 2)",
                Numeric {
                    precision: Some(10),
                    scale: Some(2),
                },
            ),
            (
                "NUMERIC",
                Numeric {
                    precision: None,
                    scale: None,
                },
            ),
            ("BOOLEAN", Boolean),
            ("DATE", Date),
            ("DATETIME", Timestamp),
            ("timestamp", Timestamp),
            ("UUID", Uuid),
            ("JSON", Json),
            ("BLOB", Other("BLOB".into())),
            ("", Other(String::new())),
            ("POINT", Other("POINT".into())),
            ("VARCHAR(x)", Varchar(None)),
        ];
        for (declared, expected) in cases {
            assert_eq!(ColumnType::from_sqlite(declared), expected, "{declared:?}");
        }
    }

    #[test]
    fn types_display_as_their_sql_names() {
        assert_eq!(
            Numeric {
                precision: Some(5),
                scale: None
            }
            .to_string(),
            "numeric(5,0)"
        );
        assert_eq!(Varchar(Some(20)).to_string(), "varchar(20)");
        assert_eq!(Double.to_string(), "double precision");
    }
}
