//! Saving a file the server hands out (an export's file, an import's rejects) chunk by chunk,
//! never whole in memory: to a writer (stdout), or to a temporary file beside the destination
//! that is renamed over it only once every byte arrived — so a broken download never leaves a
//! truncated file under the name asked for.

use super::client::{CliError, Client};
use futures::StreamExt;
use reqwest::Method;
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::io::Write;
use std::path::{Path, PathBuf};
use tokio::io::AsyncWriteExt;

/// Where a download goes.
pub enum Destination<'a> {
    /// A writer, e.g. stdout for `-o -`.
    Writer(&'a mut dyn Write),
    /// A file path.
    File(PathBuf),
}

/// Downloads `path` (redirects followed) into `destination`; when `file` (an export's
/// `result.file`) gives a size and a SHA-256, the bytes must match them. Returns the bytes
/// written.
pub async fn download(
    client: &Client,
    path: &str,
    file: Option<&Value>,
    destination: Destination<'_>,
) -> Result<u64, CliError> {
    let response = client.send(client.request(Method::GET, path)).await?;
    let mut chunks = response.bytes_stream();
    let mut sink = Sink::open(destination).await?;
    let mut hasher = Sha256::new();
    let mut written = 0u64;
    while let Some(chunk) = chunks.next().await {
        let chunk = chunk.map_err(|e| client.transport(&e))?;
        hasher.update(&chunk);
        written += chunk.len() as u64;
        sink.write(&chunk).await?;
    }
    check(file, written, &hex::encode(hasher.finalize()))?;
    sink.finish().await?;
    Ok(written)
}

/// Compares what arrived with what the job says it produced.
fn check(file: Option<&Value>, size: u64, sha256: &str) -> Result<(), CliError> {
    let Some(file) = file else { return Ok(()) };
    if let Some(expected) = file.get("size_bytes").and_then(Value::as_u64)
        && expected != size
    {
        return Err(CliError::Protocol(format!(
            "the download has {size} bytes, the export {expected}"
        )));
    }
    if let Some(expected) = file.get("sha256").and_then(Value::as_str)
        && !expected.eq_ignore_ascii_case(sha256)
    {
        return Err(CliError::Protocol(format!(
            "the download's SHA-256 is {sha256}, the export's {expected}"
        )));
    }
    Ok(())
}

enum Sink<'a> {
    Writer(&'a mut dyn Write),
    File(TempFile),
}

impl<'a> Sink<'a> {
    async fn open(destination: Destination<'a>) -> Result<Self, CliError> {
        Ok(match destination {
            Destination::Writer(writer) => Self::Writer(writer),
            Destination::File(path) => Self::File(TempFile::create(path).await?),
        })
    }

    async fn write(&mut self, chunk: &[u8]) -> Result<(), CliError> {
        match self {
            Self::Writer(writer) => writer
                .write_all(chunk)
                .map_err(CliError::io("cannot write to stdout")),
            Self::File(temp) => temp.write(chunk).await,
        }
    }

    async fn finish(self) -> Result<(), CliError> {
        match self {
            Self::Writer(writer) => writer
                .flush()
                .map_err(CliError::io("cannot write to stdout")),
            Self::File(temp) => temp.persist().await,
        }
    }
}

/// A `.NAME.UUID.part` file beside the destination, removed when dropped unless persisted.
struct TempFile {
    path: PathBuf,
    destination: PathBuf,
    file: Option<tokio::io::BufWriter<tokio::fs::File>>,
}

impl TempFile {
    async fn create(destination: PathBuf) -> Result<Self, CliError> {
        let name = destination
            .file_name()
            .ok_or_else(|| {
                CliError::Usage(format!("{} does not name a file", destination.display()))
            })?
            .to_string_lossy()
            .into_owned();
        let dir = match destination.parent() {
            Some(dir) if !dir.as_os_str().is_empty() => dir.to_path_buf(),
            _ => Path::new(".").to_path_buf(),
        };
        let path = dir.join(format!(".{name}.{}.part", uuid::Uuid::new_v4()));
        let file = tokio::fs::File::create(&path)
            .await
            .map_err(CliError::io(format!("cannot create {}", path.display())))?;
        Ok(Self {
            path,
            destination,
            file: Some(tokio::io::BufWriter::new(file)),
        })
    }

    async fn write(&mut self, chunk: &[u8]) -> Result<(), CliError> {
        let context = || format!("cannot write {}", self.path.display());
        match &mut self.file {
            Some(file) => file.write_all(chunk).await.map_err(CliError::io(context())),
            None => Ok(()),
        }
    }

    async fn persist(mut self) -> Result<(), CliError> {
        if let Some(mut file) = self.file.take() {
            let context = format!("cannot write {}", self.path.display());
            file.flush().await.map_err(CliError::io(context.clone()))?;
            file.get_ref()
                .sync_all()
                .await
                .map_err(CliError::io(context))?;
        }
        tokio::fs::rename(&self.path, &self.destination)
            .await
            .map_err(CliError::io(format!(
                "cannot rename {} to {}",
                self.path.display(),
                self.destination.display()
            )))
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        // After a successful rename the temporary name is gone and this does nothing.
        let _ = std::fs::remove_file(&self.path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_download_must_match_the_size_and_hash_the_job_gives() {
        let file = json!({"size_bytes": 3, "sha256": "ABC"});
        assert!(check(Some(&file), 3, "abc").is_ok());
        assert!(check(Some(&file), 4, "abc").is_err());
        assert!(check(Some(&file), 3, "abd").is_err());
        assert!(check(None, 3, "abc").is_ok());
    }

    #[tokio::test]
    async fn a_temporary_file_is_renamed_over_the_destination_or_removed() {
        let dir = std::env::temp_dir().join(format!("ferry-cli-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let kept = dir.join("kept.csv");
        let mut temp = TempFile::create(kept.clone()).await.unwrap();
        temp.write(b"a,b\n").await.unwrap();
        temp.persist().await.unwrap();
        assert_eq!(std::fs::read_to_string(&kept).unwrap(), "a,b\n");
        let mut dropped = TempFile::create(dir.join("dropped.csv")).await.unwrap();
        dropped.write(b"partial").await.unwrap();
        drop(dropped);
        let names: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(names, vec!["kept.csv".to_owned()]);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
