//! JSON objects only where the API documents an object. serde's derived `Deserialize` for a
//! struct also takes a JSON array of its fields in order (`"notify": [null, null]`), a form the
//! API never documents and a client never means; these helpers ask the deserializer for a map,
//! so an array is refused with the usual "invalid type" error. Found by schemathesis.

use serde::de::value::MapAccessDeserializer;
use serde::de::{Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use std::fmt;
use std::marker::PhantomData;

/// Reads `T` from a JSON object only.
pub fn object<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    deserializer.deserialize_map(ObjectOnly(PhantomData))
}

/// Reads an optional `T` from `null` or a JSON object only.
pub fn optional_object<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    struct Optional<T>(PhantomData<T>);
    impl<'de, T: Deserialize<'de>> Visitor<'de> for Optional<T> {
        type Value = Option<T>;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("null or an object")
        }
        fn visit_none<E: serde::de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_unit<E: serde::de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
            object(d).map(Some)
        }
    }
    deserializer.deserialize_option(Optional(PhantomData))
}

/// Reads a list of `T`, each from a JSON object only.
pub fn objects<'de, D, T>(deserializer: D) -> Result<Vec<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    struct List<T>(PhantomData<T>);
    impl<'de, T: Deserialize<'de>> Visitor<'de> for List<T> {
        type Value = Vec<T>;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("an array of objects")
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
            let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(256));
            while let Some(Object(item)) = seq.next_element()? {
                items.push(item);
            }
            Ok(items)
        }
    }
    deserializer.deserialize_seq(List(PhantomData))
}

/// `T` read by [`object`], as a type (for elements of a list).
struct Object<T>(T);

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Object<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        object(deserializer).map(Object)
    }
}

struct ObjectOnly<T>(PhantomData<T>);

impl<'de, T: Deserialize<'de>> Visitor<'de> for ObjectOnly<T> {
    type Value = T;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object")
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<T, A::Error> {
        T::deserialize(MapAccessDeserializer::new(map))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(deny_unknown_fields)]
    struct Pair {
        a: u8,
        #[serde(default)]
        b: Option<u8>,
    }

    #[derive(Debug, Deserialize, PartialEq)]
    struct Holder {
        #[serde(deserialize_with = "object")]
        one: Pair,
        #[serde(default, deserialize_with = "optional_object")]
        maybe: Option<Pair>,
        #[serde(default, deserialize_with = "objects")]
        many: Vec<Pair>,
    }

    fn read(text: &str) -> Result<Holder, serde_json::Error> {
        serde_json::from_str(text)
    }

    #[test]
    fn objects_are_read_as_derived() {
        let holder =
            read(r#"{"one": {"a": 1}, "maybe": {"a": 2, "b": 3}, "many": [{"a": 4}]}"#).unwrap();
        assert_eq!(holder.one, Pair { a: 1, b: None });
        assert_eq!(holder.maybe, Some(Pair { a: 2, b: Some(3) }));
        assert_eq!(holder.many, vec![Pair { a: 4, b: None }]);
        let empty = read(r#"{"one": {"a": 1}, "maybe": null}"#).unwrap();
        assert_eq!((empty.maybe, empty.many), (None, vec![]));
        // Unknown fields are still refused by the type itself.
        assert!(read(r#"{"one": {"a": 1, "c": 2}}"#).is_err());
    }

    #[test]
    fn arrays_are_refused_where_objects_are_documented() {
        for text in [
            r#"{"one": [1, 2]}"#,
            r#"{"one": {"a": 1}, "maybe": [2]}"#,
            r#"{"one": {"a": 1}, "many": [[4]]}"#,
            r#"{"one": {"a": 1}, "many": {"a": 4}}"#,
        ] {
            let error = read(text).unwrap_err();
            assert!(
                error.to_string().contains("invalid type"),
                "{text}: {error}"
            );
        }
        let value = serde_json::json!([1, 2]);
        assert!(object::<_, Pair>(value).is_err());
    }
}
