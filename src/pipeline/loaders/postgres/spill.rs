//! The rows of the chunk being loaded, kept on local disk so that a chunk the database refuses
//! can be loaded again (into a temporary table, to find the bad rows) and its bad rows reported
//! with the file's own fields — without holding a chunk, which may be hundreds of megabytes, in
//! memory. The file is created in the system's temporary directory and its name removed at
//! once, so nothing is left behind even when the process is killed; it lives as long as its
//! handle.
//!
//! Batches are written as they came: a head (`u64` row count, `u64` data length, `u64` raw
//! length, little-endian), the rows (`u64` line, `u64` data end, `u64` raw end each), then the
//! batch's data and raw buffers — a few writes per batch, none per row.

use crate::pipeline::loaders::{Batch, BatchRow};
use std::io::SeekFrom;
use tokio::fs::File;
use tokio::io::{AsyncReadExt, AsyncSeekExt, AsyncWriteExt, BufReader, BufWriter};

/// Bytes buffered in front of the file, each way.
const BUFFER: usize = 256 * 1024;
/// A batch head or row that says more than this is not one of ours.
const MAX_BATCH_BYTES: u64 = 1 << 30;

/// A chunk's rows on disk.
pub struct Spill {
    file: BufWriter<File>,
    batches: u64,
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
        tokio::fs::remove_file(&path).await?;
        Ok(Self {
            file: BufWriter::with_capacity(BUFFER, file),
            batches: 0,
            rows: 0,
        })
    }

    /// Forgets every row.
    pub async fn clear(&mut self) -> std::io::Result<()> {
        self.file.flush().await?;
        let file = self.file.get_mut();
        file.set_len(0).await?;
        file.seek(SeekFrom::Start(0)).await?;
        (self.batches, self.rows) = (0, 0);
        Ok(())
    }

    /// Appends a batch.
    pub async fn write(&mut self, batch: &Batch) -> std::io::Result<()> {
        let mut head = Vec::with_capacity(24 + 24 * batch.rows.len());
        for n in [batch.rows.len(), batch.data.len(), batch.raw.len()] {
            head.extend_from_slice(&(n as u64).to_le_bytes());
        }
        for row in &batch.rows {
            for n in [row.line, row.end as u64, row.raw_end as u64] {
                head.extend_from_slice(&n.to_le_bytes());
            }
        }
        self.file.write_all(&head).await?;
        self.file.write_all(&batch.data).await?;
        self.file.write_all(&batch.raw).await?;
        self.batches += 1;
        self.rows += batch.rows.len() as u64;
        Ok(())
    }

    /// Reads the batches back from the start. The reader shares the file's position: write
    /// again only after [`Spill::clear`].
    pub async fn reader(&mut self) -> std::io::Result<SpillReader> {
        self.file.flush().await?;
        let mut file = self.file.get_ref().try_clone().await?;
        file.seek(SeekFrom::Start(0)).await?;
        Ok(SpillReader {
            file: BufReader::with_capacity(BUFFER, file),
            left: self.batches,
        })
    }
}

/// Reads a spill's batches back.
pub struct SpillReader {
    file: BufReader<File>,
    left: u64,
}

impl SpillReader {
    /// The next batch, or `None` after the last.
    pub async fn next(&mut self) -> std::io::Result<Option<Batch>> {
        if self.left == 0 {
            return Ok(None);
        }
        self.left -= 1;
        let rows = self.size().await?;
        let data = self.size().await?;
        let raw = self.size().await?;
        let mut batch = Batch {
            data: vec![0; data],
            raw: vec![0; raw],
            rows: Vec::with_capacity(rows),
            ..Batch::default()
        };
        for _ in 0..rows {
            let line = self.file.read_u64_le().await?;
            let end = self.size().await?;
            let raw_end = self.size().await?;
            batch.rows.push(BatchRow { line, end, raw_end });
        }
        self.file.read_exact(&mut batch.data).await?;
        self.file.read_exact(&mut batch.raw).await?;
        Ok(Some(batch))
    }

    async fn size(&mut self) -> std::io::Result<usize> {
        let n = self.file.read_u64_le().await?;
        if n > MAX_BATCH_BYTES {
            return Err(std::io::Error::other("a spill file that is not Ferry's"));
        }
        usize::try_from(n).map_err(std::io::Error::other)
    }
}
