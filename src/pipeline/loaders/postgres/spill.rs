//! The rows of the chunk being loaded, kept on local disk so that a chunk the database refuses
//! can be loaded again (into a temporary table, to find the bad rows) and its bad rows reported
//! with the file's own fields — without holding a chunk, which may be hundreds of megabytes, in
//! memory. The file lives in the system's temporary directory and is removed when dropped.
//!
//! Each row is written as its line (`u64`), its encoding (`u32` length + bytes) and its fields
//! (`u32` count, then per field a `u32` length + bytes), little-endian.

use crate::pipeline::loaders::{Batch, BatchRow};
use crate::pipeline::records::Fields;
use std::io::SeekFrom;
use std::path::PathBuf;
use tokio::fs::File;
use tokio::io::{AsyncReadExt, AsyncSeekExt, AsyncWriteExt, BufReader, BufWriter};

/// Bytes buffered in front of the file, each way.
const BUFFER: usize = 256 * 1024;

/// A chunk's rows on disk.
pub struct Spill {
    path: PathBuf,
    file: BufWriter<File>,
    /// Rows written since the last [`Spill::clear`].
    pub rows: u64,
}

impl Spill {
    /// A new, empty spill file.
    pub async fn create() -> std::io::Result<Self> {
        let path = std::env::temp_dir().join(format!("ferry-spill-{}", uuid::Uuid::new_v4()));
        let file = tokio::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&path)
            .await?;
        Ok(Self {
            path,
            file: BufWriter::with_capacity(BUFFER, file),
            rows: 0,
        })
    }

    /// Forgets every row.
    pub async fn clear(&mut self) -> std::io::Result<()> {
        self.file.flush().await?;
        let file = self.file.get_mut();
        file.set_len(0).await?;
        file.seek(SeekFrom::Start(0)).await?;
        self.rows = 0;
        Ok(())
    }

    /// Appends a batch's rows.
    pub async fn write(&mut self, batch: &Batch) -> std::io::Result<()> {
        let mut out = Vec::with_capacity(batch.data.len() * 2 + 64 * batch.rows.len());
        for (row, bytes) in batch.iter() {
            out.extend_from_slice(&row.line.to_le_bytes());
            out.extend_from_slice(&len(bytes.len())?.to_le_bytes());
            out.extend_from_slice(bytes);
            out.extend_from_slice(&len(row.fields.len())?.to_le_bytes());
            for field in row.fields.iter() {
                out.extend_from_slice(&len(field.len())?.to_le_bytes());
            }
            for field in row.fields.iter() {
                out.extend_from_slice(field);
            }
        }
        self.file.write_all(&out).await?;
        self.rows += batch.rows.len() as u64;
        Ok(())
    }

    /// Reads the rows back from the start, in batches of about `batch_bytes` of encodings.
    pub async fn reader(&mut self, batch_bytes: usize) -> std::io::Result<SpillReader> {
        self.file.flush().await?;
        let file = File::open(&self.path).await?;
        Ok(SpillReader {
            file: BufReader::with_capacity(BUFFER, file),
            left: self.rows,
            batch_bytes,
        })
    }
}

impl Drop for Spill {
    fn drop(&mut self) {
        if let Err(error) = std::fs::remove_file(&self.path) {
            tracing::warn!(error = %error, path = %self.path.display(), "could not remove a spill file");
        }
    }
}

fn len(n: usize) -> std::io::Result<u32> {
    u32::try_from(n).map_err(|_| std::io::Error::other("a row over 4 GiB"))
}

/// Reads a spill's rows back.
pub struct SpillReader {
    file: BufReader<File>,
    left: u64,
    batch_bytes: usize,
}

impl SpillReader {
    /// The next batch, or `None` after the last row.
    pub async fn next(&mut self) -> std::io::Result<Option<Batch>> {
        if self.left == 0 {
            return Ok(None);
        }
        let mut batch = Batch::default();
        while self.left > 0 && batch.data.len() < self.batch_bytes {
            let line = self.file.read_u64_le().await?;
            let size = self.file.read_u32_le().await? as usize;
            let start = batch.data.len();
            batch.data.resize(start + size, 0);
            self.file
                .read_exact(batch.data.get_mut(start..).unwrap_or_default())
                .await?;
            let count = self.file.read_u32_le().await? as usize;
            let mut sizes = Vec::with_capacity(count);
            for _ in 0..count {
                sizes.push(self.file.read_u32_le().await? as usize);
            }
            let mut bytes = vec![0; sizes.iter().sum()];
            self.file.read_exact(&mut bytes).await?;
            let mut at = 0;
            let fields: Fields = sizes
                .iter()
                .map(|n| {
                    let field = bytes.get(at..at + n).unwrap_or_default();
                    at += n;
                    field
                })
                .collect();
            batch.rows.push(BatchRow {
                line,
                end: batch.data.len(),
                fields,
            });
            self.left -= 1;
        }
        Ok(Some(batch))
    }
}
