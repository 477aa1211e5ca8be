//! Zip bundles: several files, written in turn, into one zip streamed to a `Write` that cannot
//! seek (the upload), so each entry's sizes and CRC follow its data in a data descriptor.
//!
//! An entry's size is not known when it starts, and in a streamed zip an entry that passes
//! 4 GiB must have been started as zip64; so every entry is started as zip64 (20 bytes more
//! each, read by every current unzip tool, Python's `zipfile` and the OS file managers).
//! Text entries (CSV, JSON Lines) are deflated; entries that are compressed already (gzip,
//! Parquet, XLSX) are stored as they are.

use std::io::{self, Write};
use zip::write::{SimpleFileOptions, StreamWriter};
use zip::{CompressionMethod, ZipWriter};

/// How to write a bundle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ZipConfig {
    /// The deflate level of text entries, 1 to 9.
    pub deflate_level: u32,
}

impl ZipConfig {
    /// A bundle writing into `out`.
    pub fn build<W: Write>(self, out: W) -> ZipEncoder<W> {
        ZipEncoder {
            config: self,
            zip: ZipWriter::new_stream(out),
        }
    }
}

/// A zip being written: [`ZipEncoder::start_entry`], then write the entry's bytes to
/// [`ZipEncoder::entry`], then the next entry, then [`ZipEncoder::finish`].
pub struct ZipEncoder<W: Write> {
    config: ZipConfig,
    zip: ZipWriter<StreamWriter<W>>,
}

impl<W: Write> std::fmt::Debug for ZipEncoder<W> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ZipEncoder")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

fn zip_error(error: zip::result::ZipError) -> io::Error {
    match error {
        zip::result::ZipError::Io(error) => error,
        other => io::Error::other(other),
    }
}

impl<W: Write> ZipEncoder<W> {
    /// Starts the entry `name` (ending the one before); `compressed` entries are stored,
    /// others deflated.
    pub fn start_entry(&mut self, name: &str, compressed: bool) -> io::Result<()> {
        let options = if compressed {
            SimpleFileOptions::default().compression_method(CompressionMethod::Stored)
        } else {
            SimpleFileOptions::default()
                .compression_method(CompressionMethod::Deflated)
                .compression_level(Some(i64::from(self.config.deflate_level)))
        };
        self.zip
            .start_file(name, options.large_file(true).unix_permissions(0o644))
            .map_err(zip_error)
    }

    /// Where the current entry's bytes go.
    pub fn entry(&mut self) -> &mut (impl Write + use<W>) {
        &mut self.zip
    }

    /// Ends the last entry and writes the central directory.
    pub fn finish(self) -> io::Result<()> {
        self.zip.finish().map(drop).map_err(zip_error)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_are_zip64_with_data_descriptors_and_deflated_only_when_text() {
        let mut out = Vec::new();
        let mut zip = ZipConfig { deflate_level: 6 }.build(&mut out);
        zip.start_entry("a.csv", false).unwrap();
        zip.entry().write_all(&b"x,y\n".repeat(1000)).unwrap();
        zip.start_entry("b.parquet", true).unwrap();
        zip.entry().write_all(b"PAR1....PAR1").unwrap();
        zip.finish().unwrap();
        let mut archive = zip::ZipArchive::new(std::io::Cursor::new(out)).unwrap();
        let a = archive.by_index(0).unwrap();
        assert_eq!(a.name().unwrap(), "a.csv");
        assert_eq!(a.compression(), CompressionMethod::Deflated);
        assert_eq!(a.size(), 4000);
        assert!(a.compressed_size() < 100);
        drop(a);
        let b = archive.by_index(1).unwrap();
        assert_eq!(b.name().unwrap(), "b.parquet");
        assert_eq!(b.compression(), CompressionMethod::Stored);
        assert_eq!(b.size(), 12);
    }
}
