//! Where export rows come from: PostgreSQL, SQLite, or the synthetic generator.

pub mod generate;
