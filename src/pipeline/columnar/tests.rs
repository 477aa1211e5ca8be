use super::*;
use arrow_array::builder::{Int32Builder, ListBuilder, MapBuilder, StringBuilder};
use arrow_array::types::Int8Type as I8;
use arrow_array::types::IntervalMonthDayNano;
use arrow_array::{
    ArrayRef, BinaryArray, BooleanArray, Date32Array, Decimal128Array, DictionaryArray,
    Float32Array, Int64Array, IntervalMonthDayNanoArray, StringArray, StructArray,
    Time64MicrosecondArray, TimestampMicrosecondArray, TimestampNanosecondArray, UInt64Array,
};
use arrow_schema::Schema;
use serde_json::json;
use std::sync::Arc;

fn batch(columns: Vec<(&str, ArrayRef)>) -> RecordBatch {
    RecordBatch::try_from_iter(columns).unwrap()
}

fn typed_rows(batch: &RecordBatch) -> (Vec<Column>, Vec<Row>) {
    let columns: Vec<Column> = batch
        .schema()
        .fields()
        .iter()
        .map(|f| column_type(f).unwrap())
        .collect();
    let rows = rows(batch, &columns).unwrap();
    (columns, rows)
}

#[test]
fn scalars_become_the_forms_the_typed_accessors_read() {
    let b = batch(vec![
        (
            "n",
            Arc::new(Int64Array::from(vec![Some(-5), None])) as ArrayRef,
        ),
        ("u", Arc::new(UInt64Array::from(vec![u64::MAX, 0]))),
        (
            "d",
            Arc::new(
                Decimal128Array::from(vec![Some(-1250), Some(5)])
                    .with_precision_and_scale(10, 2)
                    .unwrap(),
            ),
        ),
        ("f", Arc::new(Float32Array::from(vec![0.1, f32::NAN]))),
        ("b", Arc::new(BooleanArray::from(vec![Some(true), None]))),
        ("day", Arc::new(Date32Array::from(vec![19_782, -1]))),
        (
            "blob",
            Arc::new(BinaryArray::from(vec![&b"\x00\xff"[..], b""])),
        ),
        ("s", Arc::new(StringArray::from(vec![Some(""), None]))),
    ]);
    let (columns, rows) = typed_rows(&b);
    let kinds: Vec<ColumnType> = columns.iter().map(|c| c.kind).collect();
    assert_eq!(
        kinds,
        [
            ColumnType::Int64,
            ColumnType::Decimal {
                precision: 20,
                scale: 0
            },
            ColumnType::Decimal {
                precision: 10,
                scale: 2
            },
            ColumnType::Float32,
            ColumnType::Bool,
            ColumnType::Date,
            ColumnType::Text,
            ColumnType::Text,
        ]
    );
    assert_eq!(
        rows,
        [
            vec![
                json!(-5),
                json!(u64::MAX),
                json!("-12.50"),
                json!(0.1),
                json!(true),
                json!("2024-02-29"),
                json!("00ff"),
                json!(""),
            ],
            vec![
                Value::Null,
                json!(0),
                json!("0.05"),
                json!("NaN"),
                Value::Null,
                json!("1969-12-31"),
                json!(""),
                Value::Null,
            ],
        ]
    );
}

#[test]
fn timestamps_are_rfc_3339_with_z_only_for_zoned_ones_and_infinities_are_named() {
    let base = 1_700_000_000_000_000_i64; // 2023-11-14T22:13:20Z
    let zoned = TimestampMicrosecondArray::from(vec![base + 500_000, i64::MAX])
        .with_timezone("America/New_York");
    let plain = TimestampMicrosecondArray::from(vec![base, -i64::MAX]);
    let nanos = TimestampNanosecondArray::from(vec![1, -1]);
    let b = batch(vec![
        ("z", Arc::new(zoned) as ArrayRef),
        ("p", Arc::new(plain)),
        ("ns", Arc::new(nanos)),
    ]);
    let (columns, rows) = typed_rows(&b);
    assert_eq!(columns[0].kind, ColumnType::Timestamptz);
    assert_eq!(columns[1].kind, ColumnType::Timestamp);
    assert_eq!(
        rows,
        [
            vec![
                json!("2023-11-14T22:13:20.5Z"),
                json!("2023-11-14T22:13:20"),
                json!("1970-01-01T00:00:00.000000001"),
            ],
            vec![
                json!("infinity"),
                json!("-infinity"),
                json!("1969-12-31T23:59:59.999999999"),
            ],
        ]
    );
    let micros = crate::pipeline::types::as_micros(&rows[0][0]);
    assert_eq!(micros, Some(base + 500_000));
}

#[test]
fn times_and_intervals_are_written_as_iso_8601_text() {
    let interval = |months, days, nanoseconds| IntervalMonthDayNano {
        months,
        days,
        nanoseconds,
    };
    let b = batch(vec![
        (
            "t",
            Arc::new(Time64MicrosecondArray::from(vec![
                43_201_500_000,
                0,
                86_399_999_999,
            ])) as ArrayRef,
        ),
        (
            "i",
            Arc::new(IntervalMonthDayNanoArray::from(vec![
                interval(
                    14,
                    3,
                    4 * 3_600_000_000_000 + 5 * 60_000_000_000 + 6_500_000_000,
                ),
                interval(0, 0, 0),
                interval(-1, 0, -500_000_000),
            ])),
        ),
    ]);
    let (columns, rows) = typed_rows(&b);
    assert!(columns.iter().all(|c| c.kind == ColumnType::Text));
    assert_eq!(
        rows,
        [
            vec![json!("12:00:01.5"), json!("P1Y2M3DT4H5M6.5S")],
            vec![json!("00:00:00"), json!("PT0S")],
            vec![json!("23:59:59.999999"), json!("P-1MT-0.5S")],
        ]
    );
}

#[test]
fn lists_structs_and_maps_are_json_values_with_nulls_kept() {
    let mut lists = ListBuilder::new(Int32Builder::new());
    lists.append_value([Some(1), None, Some(3)]);
    lists.append_null();
    lists.append_value([]);
    let names = StringArray::from(vec![Some("a"), Some("b"), None]);
    let days = Date32Array::from(vec![Some(0), None, Some(1)]);
    let structs = StructArray::from(vec![
        (
            Arc::new(Field::new("name", DataType::Utf8, true)),
            Arc::new(names) as ArrayRef,
        ),
        (
            Arc::new(Field::new("day", DataType::Date32, true)),
            Arc::new(days) as ArrayRef,
        ),
    ]);
    let mut maps = MapBuilder::new(None, StringBuilder::new(), Int32Builder::new());
    maps.keys().append_value("k");
    maps.values().append_value(7);
    maps.append(true).unwrap();
    maps.append(false).unwrap();
    maps.keys().append_value("x");
    maps.values().append_null();
    maps.keys().append_value("y");
    maps.values().append_value(2);
    maps.append(true).unwrap();
    let b = batch(vec![
        ("l", Arc::new(lists.finish()) as ArrayRef),
        ("s", Arc::new(structs)),
        ("m", Arc::new(maps.finish())),
    ]);
    let (columns, rows) = typed_rows(&b);
    assert!(columns.iter().all(|c| c.kind == ColumnType::Json));
    assert_eq!(
        rows,
        [
            vec![
                json!([1, null, 3]),
                json!({"name": "a", "day": "1970-01-01"}),
                json!({"k": 7}),
            ],
            vec![Value::Null, json!({"name": "b", "day": null}), Value::Null],
            vec![
                json!([]),
                json!({"name": null, "day": "1970-01-02"}),
                json!({"x": null, "y": 2}),
            ],
        ]
    );
}

#[test]
fn a_sliced_batch_reads_only_its_own_rows() {
    let mut lists = ListBuilder::new(Int32Builder::new());
    for i in 0..4 {
        lists.append_value((0..i).map(Some));
    }
    let b = batch(vec![("l", Arc::new(lists.finish()) as ArrayRef)]).slice(2, 2);
    let (_, rows) = typed_rows(&b);
    assert_eq!(rows, [vec![json!([0, 1])], vec![json!([0, 1, 2])]]);
}

#[test]
fn enums_are_their_text_and_json_text_is_parsed() {
    let enums: DictionaryArray<I8> = vec![Some("red"), None, Some("red"), Some("blue")]
        .into_iter()
        .collect();
    let json_field = Field::new("j", DataType::Utf8, true).with_metadata(
        [(EXTENSION_NAME.to_owned(), "arrow.json".to_owned())]
            .into_iter()
            .collect::<HashMap<String, String>>(),
    );
    let schema = Schema::new(vec![
        Field::new("e", enums.data_type().clone(), true),
        json_field,
    ]);
    let b = RecordBatch::try_new(
        Arc::new(schema),
        vec![
            Arc::new(enums),
            Arc::new(StringArray::from(vec![
                Some("{\"a\": [1]}"),
                Some("[not json"),
                Some("null"),
                None,
            ])),
        ],
    )
    .unwrap();
    let (columns, rows) = typed_rows(&b);
    assert_eq!(columns[0].kind, ColumnType::Text);
    assert_eq!(columns[1].kind, ColumnType::Json);
    assert_eq!(
        rows,
        [
            vec![json!("red"), json!({"a": [1]})],
            vec![Value::Null, json!("[not json")],
            vec![json!("red"), json!("null")],
            vec![json!("blue"), Value::Null],
        ]
    );
}

#[test]
fn an_opaque_type_is_refused_naming_the_column_and_the_type() {
    let field = Field::new("v", DataType::Binary, true).with_metadata(
        [
            (EXTENSION_NAME.to_owned(), "arrow.opaque".to_owned()),
            (
                EXTENSION_METADATA.to_owned(),
                r#"{"type_name":"bignum","vendor_name":"DuckDB"}"#.to_owned(),
            ),
        ]
        .into_iter()
        .collect::<HashMap<String, String>>(),
    );
    let error = column_type(&field).unwrap_err().to_string();
    assert_eq!(
        error,
        "column \"v\": DuckDB's BIGNUM has no file type; cast it in the query (e.g. to VARCHAR)"
    );
    let nested = Field::new(
        "l",
        DataType::List(Arc::new(Field::new("x", DataType::Float16, true))),
        true,
    );
    assert!(column_type(&nested).is_err());
}
