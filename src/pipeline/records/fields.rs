//! A record's fields in one flat buffer, the way csv-core writes them: every field's bytes back
//! to back, plus where each field ends. Two allocations per record instead of one per field,
//! which matters at millions of records. Empty fields written `""` are listed apart: an empty
//! field is NULL, a quoted empty one the empty string (SPEC §4.2), and csv-core's output alone
//! cannot tell them apart.

use std::fmt;

/// The fields of one record, unquoted: doubled quotes are single, and the quotes around a
/// quoted field are gone. Bytes are raw; UTF-8 is checked later, by the validator.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Fields {
    bytes: Vec<u8>,
    /// `ends[i]` is where field `i` ends in `bytes`; field `i` starts where field `i - 1`
    /// ends. Never decreasing, and never past `bytes.len()`.
    ends: Vec<usize>,
    /// The indexes, ascending, of the empty fields that were quoted (`""`); usually none, and
    /// then this allocates nothing.
    quoted_empty: Vec<usize>,
}

impl Fields {
    /// From csv-core's output: the fields' bytes and where each field ends.
    pub(super) fn from_parts(bytes: Vec<u8>, ends: Vec<usize>) -> Self {
        Self {
            bytes,
            ends,
            quoted_empty: Vec::new(),
        }
    }

    /// Marks the fields at `indexes` (ascending) as quoted empty; any that are not empty are
    /// left unmarked.
    pub(super) fn set_quoted_empty(&mut self, indexes: Vec<usize>) {
        self.quoted_empty = indexes;
        let ends = &self.ends;
        self.quoted_empty.retain(|&index| {
            let start = index
                .checked_sub(1)
                .map_or(Some(0), |i| ends.get(i).copied());
            start.is_some() && start == ends.get(index).copied()
        });
    }

    /// Appends a field; `quoted_empty` only counts for an empty one.
    pub fn push(&mut self, field: &[u8], quoted_empty: bool) {
        if quoted_empty && field.is_empty() {
            self.quoted_empty.push(self.ends.len());
        }
        self.bytes.extend_from_slice(field);
        self.ends.push(self.bytes.len());
    }

    /// Whether field `index` is empty and was quoted (`""`): the empty string, not NULL.
    pub fn is_quoted_empty(&self, index: usize) -> bool {
        self.quoted_empty.binary_search(&index).is_ok()
    }

    /// Whether field `index` is empty and was not quoted: NULL.
    pub fn is_null(&self, index: usize) -> bool {
        self.get(index).is_some_and(<[u8]>::is_empty) && !self.is_quoted_empty(index)
    }

    /// How many fields the record has (at least one for any record the reader produces).
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    /// Whether there are no fields at all.
    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// Field `index`, or `None` past the last one.
    pub fn get(&self, index: usize) -> Option<&[u8]> {
        let end = *self.ends.get(index)?;
        let start = match index.checked_sub(1) {
            Some(previous) => *self.ends.get(previous)?,
            None => 0,
        };
        self.bytes.get(start..end)
    }

    /// The fields in order.
    pub fn iter(&self) -> FieldsIter<'_> {
        FieldsIter {
            bytes: &self.bytes,
            ends: self.ends.iter(),
            start: 0,
        }
    }
}

/// Fields none of which is quoted empty.
impl<'a> FromIterator<&'a [u8]> for Fields {
    fn from_iter<I: IntoIterator<Item = &'a [u8]>>(fields: I) -> Self {
        let mut all = Self::default();
        for field in fields {
            all.push(field, false);
        }
        all
    }
}

impl<'a> IntoIterator for &'a Fields {
    type Item = &'a [u8];
    type IntoIter = FieldsIter<'a>;

    fn into_iter(self) -> FieldsIter<'a> {
        self.iter()
    }
}

/// Shows each field as text, invalid UTF-8 replaced, and a quoted empty field as `<"">`, so
/// that test failures are readable.
impl fmt::Debug for Fields {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let shown = self.iter().enumerate().map(|(index, field)| {
            if self.is_quoted_empty(index) {
                "<\"\">".into()
            } else {
                String::from_utf8_lossy(field)
            }
        });
        f.debug_list().entries(shown).finish()
    }
}

/// Iterator over a record's fields, from [`Fields::iter`].
#[derive(Debug, Clone)]
pub struct FieldsIter<'a> {
    bytes: &'a [u8],
    ends: std::slice::Iter<'a, usize>,
    start: usize,
}

impl<'a> Iterator for FieldsIter<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        let end = *self.ends.next()?;
        let field = self.bytes.get(self.start..end).unwrap_or_default();
        self.start = end;
        Some(field)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.ends.size_hint()
    }
}

impl ExactSizeIterator for FieldsIter<'_> {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_come_back_in_order_including_empty_ones() {
        let fields: Fields = [&b"a"[..], b"", b"bc"].into_iter().collect();
        assert_eq!(fields.len(), 3);
        assert_eq!(fields.iter().collect::<Vec<_>>(), [&b"a"[..], b"", b"bc"]);
        assert_eq!(fields.get(2), Some(&b"bc"[..]));
        assert_eq!(fields.get(3), None);
    }

    #[test]
    fn ends_past_the_bytes_give_no_field_instead_of_a_panic() {
        let fields = Fields::from_parts(b"ab".to_vec(), vec![1, 5]);
        assert_eq!(fields.get(1), None);
        assert_eq!(fields.iter().collect::<Vec<_>>(), [&b"a"[..], b""]);
    }

    #[test]
    fn debug_shows_fields_as_text() {
        let mut fields: Fields = [&b"a"[..], b"\xff"].into_iter().collect();
        fields.push(b"", true);
        assert_eq!(
            format!("{fields:?}"),
            "[\"a\", \"\u{fffd}\", \"<\\\"\\\">\"]"
        );
    }

    #[test]
    fn a_quoted_empty_field_is_told_from_a_null_one() {
        let mut fields = Fields::default();
        fields.push(b"", false);
        fields.push(b"", true);
        fields.push(b"x", true);
        assert_eq!(
            (fields.is_null(0), fields.is_quoted_empty(0)),
            (true, false)
        );
        assert_eq!(
            (fields.is_null(1), fields.is_quoted_empty(1)),
            (false, true)
        );
        assert_eq!(
            (fields.is_null(2), fields.is_quoted_empty(2)),
            (false, false)
        );
        assert!(!fields.is_null(3));
        let mut parts = Fields::from_parts(b"ab".to_vec(), vec![0, 0, 2, 2]);
        parts.set_quoted_empty(vec![1, 2, 3, 9]);
        assert_eq!(parts.quoted_empty, [1, 3]);
    }
}
