//! OpenAPI schemas written by hand where a derived one would not say what serde accepts: the
//! internally tagged [`RawSource`], whose variants refuse unknown fields (a derived schema would
//! allow them, and the generate variant would forbid its own `type` tag).

use super::export::RawSource;
use super::generate::{MAX_COLUMNS, MAX_ROWS, RawColumn};
use utoipa::openapi::schema::{
    AdditionalProperties, ArrayBuilder, ObjectBuilder, OneOfBuilder, Schema, SchemaType, Type,
};
use utoipa::openapi::{Ref, RefOr};
use utoipa::{PartialSchema, ToSchema};

/// An object whose `type` is `tag`, with no fields but the ones given.
fn variant(tag: &str, description: &str) -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(Type::Object)
        .description(Some(description))
        .property(
            "type",
            ObjectBuilder::new()
                .schema_type(Type::String)
                .enum_values(Some([tag])),
        )
        .required("type")
        .additional_properties(Some(AdditionalProperties::FreeForm(false)))
}

fn text(description: &str) -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .min_length(Some(1))
        .description(Some(description))
}

fn count(description: &str) -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(Type::Integer)
        .minimum(Some(0))
        .description(Some(description))
}

impl PartialSchema for RawSource {
    fn schema() -> RefOr<Schema> {
        let sql = variant(
            "sql",
            "An arbitrary query on a connection that allows it (`allow_sql`).",
        )
        .property("connection", text("A configured data connection"))
        .required("connection")
        .property(
            "query",
            text("One read-only query; `$1`, `$2`, … take `params`"),
        )
        .required("query")
        .property(
            "params",
            ArrayBuilder::new()
                .items(ObjectBuilder::new().schema_type(SchemaType::AnyValue))
                .description(Some(
                    "Values of `$1`, `$2`, …; arrays and objects are passed as JSON text",
                )),
        );
        let template = variant(
            "template",
            "A named query from configuration, with typed parameters.",
        )
        .property("template", text("The template's name"))
        .required("template")
        .property(
            "params",
            ObjectBuilder::new()
                .schema_type(Type::Object)
                .description(Some("The template's parameters by name")),
        );
        let generate = variant("generate", "Synthetic data, the same for the same seed.")
            .property(
                "rows",
                count("How many rows to make").maximum(Some(MAX_ROWS as f64)),
            )
            .required("rows")
            .property(
                "seed",
                count("The random seed: the same seed, the same rows"),
            )
            .property(
                "columns",
                ArrayBuilder::new()
                    .items(Ref::from_schema_name("RawColumn"))
                    .min_items(Some(1))
                    .max_items(Some(MAX_COLUMNS))
                    .description(Some("The columns, in order")),
            )
            .required("columns");
        OneOfBuilder::new()
            .item(sql)
            .item(template)
            .item(generate)
            .description(Some(
                "Where the rows come from; `type` says which kind of source.",
            ))
            .into()
    }
}

impl ToSchema for RawSource {
    fn schemas(schemas: &mut Vec<(String, RefOr<Schema>)>) {
        <RawColumn as ToSchema>::schemas(schemas);
        schemas.push((RawColumn::name().into_owned(), RawColumn::schema()));
    }
}
