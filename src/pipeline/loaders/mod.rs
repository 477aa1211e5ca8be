//! Where import rows go: PostgreSQL through `COPY … FROM STDIN`, SQLite through batched
//! inserts, both in one transaction; and what the target table looks like.

pub mod postgres;
pub mod schema;
pub mod sqlite;
pub mod tables;

use crate::domain::import::Mode;
use schema::TableSchema;
use tokio::sync::mpsc;

/// Batches in flight between the validator and the loader: the validator (and so the reader
/// of the stored file) waits when the database is slower.
pub const CHANNEL_BATCHES: usize = 4;

/// Validated rows, ready for one loader.
#[derive(Debug)]
pub enum Batch {
    /// Rows already in PostgreSQL's COPY text format.
    Copy { data: Vec<u8>, rows: u64 },
    /// Rows as values (NULL as `None`), in the plan's column order.
    Values { rows: Vec<Vec<Option<String>>> },
}

/// What to load where.
#[derive(Debug, Clone)]
pub struct LoadPlan {
    /// The job's id, recorded with the load so a retry never loads twice.
    pub job: String,
    pub table: TableSchema,
    /// The columns the file fills, in the batches' order.
    pub columns: Vec<String>,
    pub mode: Mode,
    pub key: Vec<String>,
}

/// Why a load stopped.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The database refused or failed.
    #[error("{0}")]
    Database(#[from] sqlx::Error),
    /// The producer gave up (too many rejects, an unreadable file); the message says why.
    #[error("{message}")]
    Producer {
        code: &'static str,
        message: String,
        transient: bool,
    },
    /// Asked to stop.
    #[error("stopped")]
    Stopped,
    /// A bug.
    #[error("{0}")]
    Internal(String),
}

/// The sending end of the validator → loader channel.
pub type LoadSender = mpsc::Sender<Result<Batch, LoadError>>;
/// The receiving end of the validator → loader channel.
pub type LoadReceiver = mpsc::Receiver<Result<Batch, LoadError>>;

/// A channel of the standard size.
pub fn channel() -> (LoadSender, LoadReceiver) {
    mpsc::channel(CHANNEL_BATCHES)
}

impl LoadPlan {
    /// The quoted column list, in the batches' order.
    pub fn column_list(&self) -> String {
        self.columns
            .iter()
            .map(|c| schema::quote_ident(c))
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// `ON CONFLICT (key) DO UPDATE SET …` (or `DO NOTHING` when every column is a key).
    pub fn on_conflict(&self) -> String {
        let key = self
            .key
            .iter()
            .map(|k| schema::quote_ident(k))
            .collect::<Vec<_>>()
            .join(", ");
        let updates: Vec<String> = self
            .columns
            .iter()
            .filter(|c| !self.key.contains(c))
            .map(|c| format!("{0} = excluded.{0}", schema::quote_ident(c)))
            .collect();
        if updates.is_empty() {
            format!("ON CONFLICT ({key}) DO NOTHING")
        } else {
            format!("ON CONFLICT ({key}) DO UPDATE SET {}", updates.join(", "))
        }
    }
}
