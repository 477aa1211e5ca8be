//! What the reader keeps of the current record, and how far each buffer may grow: the bytes
//! kept for re-parsing up to the cap plus a line break, the fields' bytes up to the cap, the
//! field offsets up to an eighth of the cap (or [`MIN_MAX_FIELDS`]). Every buffer grows by
//! doubling with exact reservations, so none reaches twice its bound, and a record that would
//! need more becomes too long instead.

use super::RecordReader;

/// First size of the buffer for a record's field bytes; it doubles, up to the cap, when a
/// longer record comes.
pub(super) const FIRST_FIELD_BYTES: usize = 64 * 1024;
/// First number of field offsets; doubles like the field bytes.
pub(super) const FIRST_FIELD_ENDS: usize = 256;
/// The fewest fields a record may have before it is too long, whatever the cap.
const MIN_MAX_FIELDS: usize = 4096;

impl RecordReader {
    /// Keeps the bytes of a record that goes on into the next slice: up to the cap plus a line
    /// break while it may still be re-parsed, up to the cap once it is too long.
    pub(super) fn keep(&mut self, body: &[u8]) {
        let Some(current) = &mut self.current else {
            return;
        };
        if current.over {
            extend_capped(&mut self.pending, body, self.cap);
        } else if current.len > self.cap as u64 {
            current.over = true;
            extend_capped(&mut self.pending, body, self.cap);
            self.pending.truncate(self.cap);
        } else {
            extend_capped(&mut self.pending, body, self.cap + 1);
        }
    }

    /// csv-core filled the field bytes: double them, up to the cap plus one.
    pub(super) fn grow_fields(&mut self) {
        let max = self.cap + 1;
        match grown(self.fields.len(), max) {
            Some(size) => resize_exact(&mut self.fields, size),
            None => self.give_up_on_current(),
        }
    }

    /// csv-core filled the field offsets: double them, up to the most fields allowed.
    pub(super) fn grow_ends(&mut self) {
        let max = (self.cap / size_of::<usize>()).max(MIN_MAX_FIELDS);
        match grown(self.ends.len(), max) {
            Some(size) => resize_exact(&mut self.ends, size),
            None => self.give_up_on_current(),
        }
    }

    /// A record that needs more room than allowed is too long: stop keeping its bytes.
    fn give_up_on_current(&mut self) {
        if let Some(current) = &mut self.current {
            current.over = true;
            self.pending.truncate(self.cap);
        }
    }
}

/// The first `cap` bytes of a record kept in `pending` and ending with `body`.
pub(super) fn too_long_raw(pending: &[u8], body: &[u8], cap: usize) -> Vec<u8> {
    let mut raw = pending.get(..cap).unwrap_or(pending).to_vec();
    extend_capped(&mut raw, body, cap);
    raw
}

/// Appends what fits of `bytes` below `limit` bytes in all, never reserving past `limit`.
pub(super) fn extend_capped(buffer: &mut Vec<u8>, bytes: &[u8], limit: usize) {
    let room = limit.saturating_sub(buffer.len());
    let bytes = &bytes[..room.min(bytes.len())];
    let needed = buffer.len() + bytes.len();
    if buffer.capacity() < needed {
        let wanted = buffer.capacity().saturating_mul(2).min(limit).max(needed);
        buffer.reserve_exact(wanted - buffer.len());
    }
    buffer.extend_from_slice(bytes);
}

/// Grows `buffer` to `size` without the spare capacity `resize` would add.
pub(super) fn resize_exact<T: Copy + Default>(buffer: &mut Vec<T>, size: usize) {
    buffer.reserve_exact(size.saturating_sub(buffer.len()));
    buffer.resize(size, T::default());
}

/// The next size of a buffer now `size` long that may not pass `max`; `None` at `max`.
fn grown(size: usize, max: usize) -> Option<usize> {
    (size < max).then(|| size.saturating_mul(2).min(max).max(1))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    #[test]
    fn appending_never_holds_nor_reserves_past_the_limit() {
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        for _ in 0..2000 {
            let limit = rng.random_range(1..5000);
            let mut buffer = Vec::new();
            let mut appended = Vec::new();
            for _ in 0..rng.random_range(1..20) {
                let bytes = vec![rng.random::<u8>(); rng.random_range(0..1500)];
                extend_capped(&mut buffer, &bytes, limit);
                appended.extend_from_slice(&bytes);
                assert!(
                    buffer.capacity() <= limit,
                    "{} > {limit}",
                    buffer.capacity()
                );
            }
            assert_eq!(buffer, appended[..appended.len().min(limit)]);
        }
    }

    #[test]
    fn buffers_grow_by_doubling_up_to_their_bound_and_no_further() {
        assert_eq!(grown(64, 1000), Some(128));
        assert_eq!(grown(600, 1000), Some(1000));
        assert_eq!(grown(1000, 1000), None);
        assert_eq!(grown(0, 1000), Some(1));
        let mut buffer = vec![0u8; 600];
        resize_exact(&mut buffer, 1001);
        assert_eq!((buffer.len(), buffer.capacity()), (1001, 1001));
    }
}
