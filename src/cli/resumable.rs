//! `ferry import FILE --resumable` (and every file over [`RESUMABLE_FROM`]): the file goes in
//! parts through `"upload": "multipart"`, each part read from disk as it is sent (never the
//! whole file) and tried again when it fails. The upload's job id is kept in a small state
//! file, keyed by the server, the file's path, size and modification time, so that running the
//! same command again after an interruption (a dropped connection, a closed laptop, Ctrl-C)
//! continues from the parts the store already holds. `--resume ID` names the upload instead.

use super::client::{CliError, Client, Job, encode};
use super::progress::Display;
use reqwest::Method;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncSeekExt};

/// Files at least this large go in parts even without `--resumable`.
pub const RESUMABLE_FROM: u64 = 256 * 1024 * 1024;
/// Tries of one part before the upload stops (the next run resumes it).
const PART_TRIES: u32 = 5;
/// The first wait before a part is tried again; doubles each time.
const RETRY_WAIT: Duration = Duration::from_millis(500);

/// Where a resumable upload stands, as `GET …/upload` says.
#[derive(Debug, serde::Deserialize)]
struct UploadState {
    size: u64,
    part_size: u64,
    parts: u64,
    uploaded: Vec<StoredPart>,
}

#[derive(Debug, serde::Deserialize)]
struct StoredPart {
    number: u64,
    size: u64,
}

/// Sends `path` in parts with `spec`, resuming the upload `resume` or the one the state file
/// remembers; completes and starts it, and returns the job.
pub async fn upload(
    client: &Client,
    path: &Path,
    spec: &Value,
    resume: Option<&str>,
    state_dir: Option<&Path>,
    err: &mut dyn Write,
) -> Result<Job, CliError> {
    let meta =
        std::fs::metadata(path).map_err(CliError::io(format!("cannot read {}", path.display())))?;
    let state = state_dir.map(|dir| dir.join(state_name(client.base(), path, &meta)));
    let remembered = state.as_deref().and_then(remembered_job);
    let (id, upload) = match resume.map(str::to_owned).or(remembered) {
        Some(id) => match read_upload(client, &id).await {
            Ok(upload) => (id, upload),
            Err(_) if resume.is_none() => {
                create(client, spec, meta.len(), state.as_deref()).await?
            }
            Err(error) => return Err(error),
        },
        None => create(client, spec, meta.len(), state.as_deref()).await?,
    };
    if upload.size != meta.len() {
        return Err(CliError::Usage(format!(
            "upload {id} is for a file of {} bytes; {} has {}",
            upload.size,
            path.display(),
            meta.len()
        )));
    }
    let done: BTreeMap<u64, u64> = upload.uploaded.iter().map(|p| (p.number, p.size)).collect();
    if !done.is_empty() {
        let _ = writeln!(
            err,
            "resuming upload {id}: {} of {} parts already stored",
            done.len(),
            upload.parts
        );
    }
    send_parts(client, path, &id, &upload, &done, err).await?;
    let complete = format!("/v1/imports/{}/upload/complete", encode(&id));
    client
        .send_json(client.request(Method::POST, &complete), None)
        .await?;
    let start = format!("/v1/imports/{}/start", encode(&id));
    let job = Job::from_value(
        client
            .send_json(client.request(Method::POST, &start), None)
            .await?,
    )?;
    if let Some(state) = &state {
        let _ = std::fs::remove_file(state);
    }
    Ok(job)
}

/// Creates the import and its upload, and remembers it in the state file.
async fn create(
    client: &Client,
    spec: &Value,
    size: u64,
    state: Option<&Path>,
) -> Result<(String, UploadState), CliError> {
    let mut spec = spec.clone();
    if let Value::Object(map) = &mut spec {
        map.insert("upload".into(), "multipart".into());
        map.insert("size".into(), json!(size));
    }
    let job = Job::from_value(
        client
            .send_json(client.request(Method::POST, "/v1/imports"), Some(&spec))
            .await?,
    )?;
    if let Some(state) = state {
        remember(state, &job.id)?;
    }
    let upload = read_upload(client, &job.id).await?;
    Ok((job.id, upload))
}

async fn read_upload(client: &Client, id: &str) -> Result<UploadState, CliError> {
    let path = format!("/v1/imports/{}/upload", encode(id));
    let value = client
        .send_json(client.request(Method::GET, &path), None)
        .await?;
    serde_json::from_value(value).map_err(|e| CliError::Protocol(format!("unexpected upload: {e}")))
}

/// Sends every part not in `done`, in order, showing the bytes stored.
async fn send_parts(
    client: &Client,
    path: &Path,
    id: &str,
    upload: &UploadState,
    done: &BTreeMap<u64, u64>,
    err: &mut dyn Write,
) -> Result<(), CliError> {
    let mut display = Display::for_stderr();
    let mut sent: u64 = done.values().sum();
    display.upload(sent, upload.size, err);
    for number in 1..=upload.parts {
        let (offset, length) = part_range(number, upload.size, upload.part_size);
        if done.get(&number) == Some(&length) {
            continue;
        }
        let result = send_with_retries(client, path, id, number, offset, length, err).await;
        if let Err(error) = result {
            display.finish();
            return Err(error);
        }
        sent += length;
        display.upload(sent, upload.size, err);
    }
    display.finish();
    Ok(())
}

/// The byte range of part `number` (1-based).
fn part_range(number: u64, size: u64, part_size: u64) -> (u64, u64) {
    let offset = (number - 1).saturating_mul(part_size);
    (offset, size.saturating_sub(offset).min(part_size))
}

async fn send_with_retries(
    client: &Client,
    path: &Path,
    id: &str,
    number: u64,
    offset: u64,
    length: u64,
    err: &mut dyn Write,
) -> Result<(), CliError> {
    let mut wait = RETRY_WAIT;
    let mut tries = 0;
    loop {
        tries += 1;
        match send_part(client, path, id, number, offset, length).await {
            Ok(()) => return Ok(()),
            Err(error) if tries < PART_TRIES && is_worth_retrying(&error) => {
                let _ = writeln!(err, "part {number} failed ({error}); trying again");
                tokio::time::sleep(wait).await;
                wait *= 2;
            }
            Err(error) => return Err(error),
        }
    }
}

fn is_worth_retrying(error: &CliError) -> bool {
    match error {
        CliError::Unreachable { .. } | CliError::Broken { .. } => true,
        CliError::Problem(problem) => problem.status >= 500 || problem.status == 403,
        _ => false,
    }
}

/// One part: a fresh link, then its bytes streamed from the file.
async fn send_part(
    client: &Client,
    path: &Path,
    id: &str,
    number: u64,
    offset: u64,
    length: u64,
) -> Result<(), CliError> {
    let link_path = format!("/v1/imports/{}/upload/parts/{number}", encode(id));
    let link = client
        .send_json(client.request(Method::GET, &link_path), None)
        .await?;
    let url = link["url"]
        .as_str()
        .ok_or_else(|| CliError::Protocol("a part link without a url".into()))?;
    let context = || format!("cannot read {}", path.display());
    let mut file = tokio::fs::File::open(path)
        .await
        .map_err(CliError::io(context()))?;
    file.seek(std::io::SeekFrom::Start(offset))
        .await
        .map_err(CliError::io(context()))?;
    let body = reqwest::Body::wrap_stream(tokio_util::io::ReaderStream::new(file.take(length)));
    let request = client
        .http()
        .put(url)
        .header(reqwest::header::CONTENT_LENGTH, length)
        .body(body);
    client.send(request).await.map(drop)
}

/// The state file's name for `path` sent to `server`: a hash of both, the size and the
/// modification time, so that a changed file never resumes an old upload.
fn state_name(server: &str, path: &Path, meta: &std::fs::Metadata) -> String {
    let full = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    let modified = meta
        .modified()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    let mut hash = Sha256::new();
    for field in [
        server,
        &full.to_string_lossy(),
        &meta.len().to_string(),
        &modified.to_string(),
    ] {
        hash.update((field.len() as u64).to_be_bytes());
        hash.update(field.as_bytes());
    }
    format!("upload-{}.json", &hex::encode(hash.finalize())[..32])
}

/// The default directory of the state files: `$XDG_STATE_HOME/ferry` or
/// `~/.local/state/ferry`.
pub fn default_state_dir() -> Option<PathBuf> {
    let base = std::env::var_os("XDG_STATE_HOME")
        .filter(|dir| !dir.is_empty())
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".local/state"))
        })?;
    Some(base.join("ferry"))
}

fn remembered_job(state: &Path) -> Option<String> {
    let text = std::fs::read_to_string(state).ok()?;
    let value: Value = serde_json::from_str(&text).ok()?;
    value["job"].as_str().map(str::to_owned)
}

fn remember(state: &Path, id: &str) -> Result<(), CliError> {
    let context = || format!("cannot write {}", state.display());
    if let Some(dir) = state.parent() {
        std::fs::create_dir_all(dir).map_err(CliError::io(context()))?;
    }
    std::fs::write(state, json!({"job": id}).to_string()).map_err(CliError::io(context()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_cover_the_file_and_the_last_one_is_the_rest() {
        assert_eq!(part_range(1, 25, 10), (0, 10));
        assert_eq!(part_range(3, 25, 10), (20, 5));
        assert_eq!(part_range(2, 20, 10), (10, 10));
    }

    #[test]
    fn the_state_file_remembers_the_upload_until_the_file_changes() {
        let dir = std::env::temp_dir().join(format!("ferry-state-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("data.csv");
        std::fs::write(&file, "id\n1\n").unwrap();
        let name = state_name("http://a", &file, &std::fs::metadata(&file).unwrap());
        assert_ne!(
            name,
            state_name("http://b", &file, &std::fs::metadata(&file).unwrap())
        );
        let state = dir.join("state").join(&name);
        assert_eq!(remembered_job(&state), None);
        remember(&state, "0192abc").unwrap();
        assert_eq!(remembered_job(&state).as_deref(), Some("0192abc"));
        std::fs::write(&file, "id\n1\n2\n").unwrap();
        let changed = state_name("http://a", &file, &std::fs::metadata(&file).unwrap());
        assert_ne!(changed, name, "another size is another upload");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
