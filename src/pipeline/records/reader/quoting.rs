//! Which empty fields of a record were quoted. csv-core writes `,,` and `,"",` alike, an empty
//! field, but the first is NULL and the second the empty string (SPEC §4.2), so for a record
//! with an empty field the reader walks its raw bytes once more, following csv-core's own
//! splitting: a field that starts with the quote is quoted, and a quoted field whose output is
//! empty can only have been written `""` (anything inside the quotes, or after the closing
//! one, would be output). Records without an empty field are not walked at all.

/// Where the walk is within the current field.
#[derive(Clone, Copy, PartialEq, Eq)]
enum State {
    Start,
    Unquoted,
    Quoted,
    /// A quote inside a quoted field: closing it, or the first of a doubled quote.
    QuoteInQuoted,
}

/// The indexes of the quoted empty fields of a record whose raw bytes are `raw` (chained, its
/// line break at the end or not) and whose fields end at `ends` in csv-core's output.
pub(super) fn quoted_empty(
    raw: [&[u8]; 2],
    ends: &[usize],
    delimiter: u8,
    quote: u8,
) -> Vec<usize> {
    let empty = |index: usize| {
        let start = index
            .checked_sub(1)
            .map_or(Some(0), |i| ends.get(i).copied());
        start.is_some() && start == ends.get(index).copied()
    };
    let Some(last) = (0..ends.len()).rev().find(|&index| empty(index)) else {
        return Vec::new();
    };
    let mut found = Vec::new();
    let (mut index, mut state) = (0, State::Start);
    for &byte in raw.iter().flat_map(|part| part.iter()) {
        let line_break = matches!(byte, b'\n' | b'\r');
        state = match state {
            State::Start if byte == quote => {
                if empty(index) {
                    found.push(index);
                }
                State::Quoted
            }
            State::Quoted if byte == quote => State::QuoteInQuoted,
            State::Quoted => State::Quoted,
            State::QuoteInQuoted if byte == quote => State::Quoted,
            State::Start | State::Unquoted | State::QuoteInQuoted if byte == delimiter => {
                index += 1;
                if index > last {
                    break;
                }
                State::Start
            }
            _ if line_break => break,
            _ => State::Unquoted,
        };
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The quoted empty fields of one record, given its fields' output lengths.
    fn quoted(raw: &str, lengths: &[usize]) -> Vec<usize> {
        let ends: Vec<usize> = lengths
            .iter()
            .scan(0, |end, length| {
                *end += length;
                Some(*end)
            })
            .collect();
        let (a, b) = raw.as_bytes().split_at(raw.len() / 2);
        quoted_empty([a, b], &ends, b',', b'"')
    }

    #[test]
    fn only_empty_fields_written_as_two_quotes_are_quoted_empty() {
        assert_eq!(quoted("a,,\"\",b\n", &[1, 0, 0, 1]), [2]);
        assert_eq!(quoted("\"\",\"\"", &[0, 0]), [0, 1]);
        assert_eq!(quoted(",", &[0, 0]), Vec::<usize>::new());
        assert_eq!(quoted("a,b", &[1, 1]), Vec::<usize>::new());
    }

    #[test]
    fn delimiters_line_breaks_and_doubled_quotes_inside_quotes_do_not_split_fields() {
        assert_eq!(quoted("\"x,\ny\"\"\",\"\"\r\n", &[6, 0]), [1]);
        assert_eq!(quoted("\"\"\"\",\"\"", &[1, 0]), [1]);
        assert_eq!(quoted("\"a\"b,,\"\"", &[2, 0, 0]), [2]);
        assert_eq!(quoted("a\"b,\"\"", &[3, 0]), [1]);
    }
}
