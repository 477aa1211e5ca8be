//! Normalising without allocating when nothing changes: a value is rendered into a small
//! buffer on the stack and handed back borrowed when the rendering equals the input.

use std::borrow::Cow;
use std::fmt::{self, Write};

/// Bytes a rendering may take on the stack; longer ones fall back to a `String`. Enough for
/// every date, timestamp, UUID and float this validator writes.
const CAPACITY: usize = 64;

/// A fixed-size text buffer. A write that does not fit fails whole, so the contents are
/// always complete UTF-8.
pub(super) struct Scratch {
    buf: [u8; CAPACITY],
    len: usize,
}

impl Scratch {
    /// An empty buffer.
    pub(super) fn new() -> Self {
        Self {
            buf: [0; CAPACITY],
            len: 0,
        }
    }

    /// What has been written.
    pub(super) fn as_str(&self) -> &str {
        // Only whole `&str`s are ever copied in, so this never fails.
        let written = self.buf.get(..self.len).unwrap_or_default();
        std::str::from_utf8(written).unwrap_or_default()
    }
}

impl Write for Scratch {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let end = self.len.checked_add(s.len()).ok_or(fmt::Error)?;
        let slot = self.buf.get_mut(self.len..end).ok_or(fmt::Error)?;
        slot.copy_from_slice(s.as_bytes());
        self.len = end;
        Ok(())
    }
}

/// `input` as `render` writes it: borrowed when the rendering is exactly `input`, so a value
/// already in normal form costs no allocation.
pub(super) fn normalised<'a>(
    input: &'a str,
    render: impl Fn(&mut dyn Write) -> fmt::Result,
) -> Cow<'a, str> {
    let mut scratch = Scratch::new();
    if render(&mut scratch).is_ok() {
        let normal = scratch.as_str();
        return if normal == input {
            Cow::Borrowed(input)
        } else {
            Cow::Owned(normal.to_owned())
        };
    }
    let mut owned = String::new();
    // Writing to a `String` cannot fail.
    let _ = render(&mut owned);
    Cow::Owned(owned)
}

#[cfg(test)]
mod tests {
    use super::{Scratch, normalised};
    use std::borrow::Cow;
    use std::fmt::Write;

    #[test]
    fn normalised_borrows_an_unchanged_value_and_owns_a_changed_one() {
        let same = normalised("2024-01-02", |w| w.write_str("2024-01-02"));
        assert!(matches!(same, Cow::Borrowed("2024-01-02")));
        let changed = normalised("02/01/2024", |w| w.write_str("2024-01-02"));
        assert!(matches!(changed, Cow::Owned(ref s) if s == "2024-01-02"));
    }

    #[test]
    fn normalised_falls_back_to_the_heap_for_long_renderings() {
        let long = "x".repeat(200);
        let value = normalised("x", |w| w.write_str(&long));
        assert_eq!(value, long);
    }

    #[test]
    fn scratch_refuses_a_write_that_does_not_fit_whole() {
        let mut scratch = Scratch::new();
        assert!(scratch.write_str(&"a".repeat(60)).is_ok());
        assert!(scratch.write_str("ééé").is_err());
        assert_eq!(scratch.as_str().len(), 60);
    }
}
