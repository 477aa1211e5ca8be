//! File formats: each codec is `Config → build() → Encoder`, one file per format.

pub mod csv;
pub mod jsonl;
