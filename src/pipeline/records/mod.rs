//! Reading CSV uploads for imports. For now, only telling early whether an upload is text at
//! all: whether a file is CSV is [`looks_like_text`]'s question, asked once about its first
//! bytes.

mod sniff;

pub use sniff::{TEXT_SAMPLE_BYTES, looks_like_text};
