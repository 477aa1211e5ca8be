//! The object-storage conformance suite: one `async fn` per behaviour, each taking a
//! [`Backend`], run against the local directory and against S3 (the SeaweedFS server that
//! `scripts/test` starts). A backend is done when it passes all of them.
//!
//! Every test gets its own store: a fresh temporary directory, or a fresh uuid key prefix in
//! the shared bucket, so tests run in parallel.

use bytes::Bytes;
use bytesize::ByteSize;
use ferry::config::{Secret, Settings, StorageSettings};
use ferry::domain::JobId;
use ferry::storage::{ObjectKey, Storage, StorageError, content_disposition, export_key};
use futures::StreamExt;
use reqwest::StatusCode;
use reqwest::header::{CONTENT_DISPOSITION, CONTENT_RANGE, CONTENT_TYPE, RANGE};
use sha2::{Digest, Sha256};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// Part size of every test store: the smallest S3 accepts, so a few MiB make several parts.
const PART_SIZE: u64 = 5 * 1024 * 1024;

/// One store under test and what the suite needs to look behind it.
struct Backend {
    storage: Storage,
    kind: Kind,
}

enum Kind {
    /// A temporary directory, with `api::files::router` serving its links.
    Local { dir: PathBuf },
    /// A uuid prefix in the test bucket.
    S3 { prefix: String },
}

/// Storage settings shared by both backends: 5 MiB parts, two in flight.
fn storage_settings() -> StorageSettings {
    StorageSettings {
        part_size: ByteSize::b(PART_SIZE),
        max_parts_in_flight: 2,
        ..StorageSettings::default()
    }
}

fn temp_dir() -> PathBuf {
    std::env::temp_dir().join(format!("ferry-storage-{}", uuid::Uuid::new_v4()))
}

impl Backend {
    /// A fresh directory, its links served on a random port.
    async fn local() -> Self {
        let dir = temp_dir();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let settings = Settings {
            data_dir: dir.clone(),
            public_url: Some(format!("http://{addr}")),
            storage: storage_settings(),
            ..Settings::default()
        };
        let storage = Storage::from_settings(&settings).unwrap();
        let app = axum::Router::from(ferry::api::files::router::<()>(storage.clone()));
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self {
            storage,
            kind: Kind::Local { dir },
        }
    }

    /// A fresh prefix in the test bucket.
    fn s3() -> Self {
        let s3 = crate::helpers::s3();
        let prefix = uuid::Uuid::new_v4().to_string();
        let settings = Settings {
            data_dir: temp_dir(),
            storage: StorageSettings {
                url: Some(format!("s3://{}/{prefix}", s3.bucket)),
                endpoint: Some(s3.endpoint.clone()),
                region: s3.region.clone(),
                access_key_id: Some(s3.key.clone()),
                secret_access_key: Some(Secret::new(s3.secret.clone())),
                ..storage_settings()
            },
            ..Settings::default()
        };
        let storage = Storage::from_settings(&settings).unwrap();
        Self {
            storage,
            kind: Kind::S3 { prefix },
        }
    }

    fn is_local(&self) -> bool {
        matches!(self.kind, Kind::Local { .. })
    }

    /// Unfinished uploads to `key` that the store still holds: S3 multipart uploads (listed
    /// with a signed `curl`), or the local store's `name#N` staging files.
    async fn pending_uploads(&self, key: &ObjectKey) -> usize {
        match &self.kind {
            Kind::Local { dir } => {
                let target = dir.join("files").join(key.as_str());
                let name = format!("{}#", target.file_name().unwrap().to_str().unwrap());
                match std::fs::read_dir(target.parent().unwrap()) {
                    Ok(entries) => entries
                        .map(|e| e.unwrap().file_name().into_string().unwrap())
                        .filter(|n| n.starts_with(&name))
                        .count(),
                    Err(_) => 0,
                }
            }
            Kind::S3 { prefix } => {
                crate::helpers::incomplete_uploads(&format!("{prefix}/{key}")).len()
            }
        }
    }
}

impl Drop for Backend {
    fn drop(&mut self) {
        if let Kind::Local { dir } = &self.kind {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// A key of the layout exports use.
fn new_key(name: &str) -> ObjectKey {
    export_key("acme", JobId::new(), name, "csv")
}

/// `len` reproducible, incompressible bytes.
fn pseudo_random(len: usize, seed: u64) -> Vec<u8> {
    let mut state = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 24) as u8
        })
        .collect()
}

/// Uploads `bytes` in one write and returns the size the upload reports.
async fn put(storage: &Storage, key: &ObjectKey, bytes: &[u8]) -> u64 {
    let mut upload = storage.begin_upload(key).await.unwrap();
    upload.write(Bytes::copy_from_slice(bytes)).await.unwrap();
    upload.finish().await.unwrap()
}

/// The SHA-256 of the object at `key`, read back as a stream.
async fn sha256_of(storage: &Storage, key: &ObjectKey) -> (String, u64) {
    let mut stream = storage.read(key).await.unwrap();
    let (mut hasher, mut len) = (Sha256::new(), 0);
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.unwrap();
        len += chunk.len() as u64;
        hasher.update(&chunk);
    }
    (hex::encode(hasher.finalize()), len)
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// Replaces the value of query parameter `name` in `url`.
fn with_param(url: &str, name: &str, value: &str) -> String {
    let mut parsed = url::Url::parse(url).unwrap();
    let pairs: Vec<(String, String)> = parsed
        .query_pairs()
        .map(|(k, v)| {
            let v = if k == name { value.into() } else { v };
            (k.into_owned(), v.into_owned())
        })
        .collect();
    parsed.query_pairs_mut().clear().extend_pairs(pairs);
    parsed.to_string()
}

/// Removes query parameter `name` from `url`.
fn without_param(url: &str, name: &str) -> String {
    let mut parsed = url::Url::parse(url).unwrap();
    let pairs: Vec<(String, String)> = parsed
        .query_pairs()
        .filter(|(k, _)| k != name)
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    parsed.query_pairs_mut().clear().extend_pairs(pairs);
    parsed.to_string()
}

/// Every byte of `stream`.
async fn collect(
    mut stream: futures::stream::BoxStream<'static, Result<Bytes, StorageError>>,
) -> Vec<u8> {
    let mut all = Vec::new();
    while let Some(chunk) = stream.next().await {
        all.extend_from_slice(&chunk.unwrap());
    }
    all
}

/// What a chunked import's retry reads: the stored file from its checkpoint's byte offset on.
async fn a_file_read_from_an_offset_is_its_tail(backend: Backend) {
    let storage = &backend.storage;
    let key = new_key("upload");
    let data = pseudo_random(PART_SIZE as usize + 4321, 11);
    put(storage, &key, &data).await;
    for offset in [0, 1, 65_536, PART_SIZE + 1, data.len() as u64 - 1] {
        let tail = collect(storage.read_from(&key, offset).await.unwrap()).await;
        assert_eq!(tail, data[offset as usize..], "from {offset}");
    }
    // At (or past) the end there is nothing more to read, which is no error.
    for offset in [data.len() as u64, data.len() as u64 + 10] {
        assert!(
            collect(storage.read_from(&key, offset).await.unwrap())
                .await
                .is_empty()
        );
    }
    assert!(matches!(
        storage.read_from(&new_key("missing"), 5).await,
        Err(StorageError::NotFound { .. })
    ));
}

/// Asserts a refused link: `403`, and for Ferry's own links a problem body with `code`.
async fn assert_refused(backend: &Backend, url: &str, code: &str) {
    assert_refused_with(backend, url, code, &[StatusCode::FORBIDDEN]).await;
}

/// Asserts a refused link: one of `s3_statuses` from S3; `403` and a problem body with `code`
/// from Ferry.
async fn assert_refused_with(backend: &Backend, url: &str, code: &str, s3_statuses: &[StatusCode]) {
    let response = client().get(url).send().await.unwrap();
    if !backend.is_local() {
        assert!(
            s3_statuses.contains(&response.status()),
            "{}: {url}",
            response.status()
        );
        return;
    }
    assert_eq!(response.status(), StatusCode::FORBIDDEN, "{url}");
    if backend.is_local() {
        let content_type = response.headers()[CONTENT_TYPE]
            .to_str()
            .unwrap()
            .to_owned();
        assert_eq!(content_type, "application/problem+json");
        let body: serde_json::Value = response.json().await.unwrap();
        assert_eq!(body["code"], code, "{body}");
        assert_eq!(body["status"], 403);
        assert_eq!(body["type"], "about:blank");
        assert!(
            body["title"].is_string() && body["detail"].is_string(),
            "{body}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// The behaviours.

async fn a_multipart_upload_reads_back_byte_for_byte(backend: Backend) {
    let storage = &backend.storage;
    let key = new_key("big");
    let data = pseudo_random(12 * 1024 * 1024 + 12_345, 7);
    let mut upload = storage.begin_upload(&key).await.unwrap();
    assert_eq!(upload.upload_id().is_some(), !backend.is_local());
    let sizes = [1, 77_777, 1_048_573, 3, 999_999, 2_500_001, 65_536, 65_535];
    let (mut offset, mut turn) = (0, 0);
    while offset < data.len() {
        let end = (offset + sizes[turn % sizes.len()]).min(data.len());
        upload
            .write(Bytes::copy_from_slice(&data[offset..end]))
            .await
            .unwrap();
        (offset, turn) = (end, turn + 1);
    }
    assert_eq!(upload.finish().await.unwrap(), data.len() as u64);

    assert_eq!(storage.size(&key).await.unwrap(), Some(data.len() as u64));
    let expected = hex::encode(Sha256::digest(&data));
    assert_eq!(
        sha256_of(storage, &key).await,
        (expected, data.len() as u64)
    );
    assert_eq!(backend.pending_uploads(&key).await, 0);
}

async fn an_empty_upload_makes_an_empty_file(backend: Backend) {
    let storage = &backend.storage;
    let key = new_key("empty");
    let upload = storage.begin_upload(&key).await.unwrap();
    assert_eq!(upload.finish().await.unwrap(), 0);
    assert_eq!(storage.size(&key).await.unwrap(), Some(0));

    let (url, _) = storage
        .download_url(&key, "empty.csv", "text/csv", Duration::from_secs(60))
        .await
        .unwrap();
    let response = client().get(&url).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert!(response.bytes().await.unwrap().is_empty());
}

async fn an_aborted_upload_leaves_nothing_behind(backend: Backend) {
    let storage = &backend.storage;
    let key = new_key("aborted");
    let mut upload = storage.begin_upload(&key).await.unwrap();
    upload
        .write(pseudo_random(6 * 1024 * 1024, 1).into())
        .await
        .unwrap();
    assert_eq!(backend.pending_uploads(&key).await, 1);
    upload.abort().await.unwrap();

    assert_eq!(storage.size(&key).await.unwrap(), None);
    assert_eq!(backend.pending_uploads(&key).await, 0);
}

async fn a_stale_upload_of_a_killed_worker_can_be_aborted(backend: Backend) {
    let storage = &backend.storage;
    let key = new_key("stale");
    let mut upload = storage.begin_upload(&key).await.unwrap();
    upload
        .write(pseudo_random(6 * 1024 * 1024, 2).into())
        .await
        .unwrap();
    let checkpointed_id = upload.upload_id();
    // SIGKILL: no destructor, no abort.
    std::mem::forget(upload);
    assert_eq!(backend.pending_uploads(&key).await, 1);

    let restarted = backend.storage.clone();
    restarted
        .abort_stale_upload(&key, checkpointed_id.as_deref())
        .await
        .unwrap();
    assert_eq!(backend.pending_uploads(&key).await, 0);
    assert_eq!(storage.size(&key).await.unwrap(), None);
    // Already gone, or never known: still fine.
    restarted
        .abort_stale_upload(&key, checkpointed_id.as_deref())
        .await
        .unwrap();
    restarted
        .abort_stale_upload(&key, Some("no-such-upload"))
        .await
        .unwrap();
}

async fn deleting_is_idempotent(backend: Backend) {
    let storage = &backend.storage;
    let key = new_key("deleted");
    assert_eq!(put(storage, &key, b"a,b\n1,2\n").await, 8);
    assert_eq!(storage.size(&key).await.unwrap(), Some(8));
    storage.delete(&key).await.unwrap();
    assert_eq!(storage.size(&key).await.unwrap(), None);
    storage.delete(&key).await.unwrap();
    storage.delete(&new_key("never-written")).await.unwrap();
    assert!(matches!(
        storage.read(&key).await,
        Err(StorageError::NotFound { .. })
    ));
}

async fn a_download_link_serves_the_file_as_a_named_attachment(backend: Backend) {
    let storage = &backend.storage;
    let key = new_key("report");
    let data = b"id,name\n1,Z\xc3\xbcrich\n";
    put(storage, &key, data).await;
    let filename = "Report «2026» \"Q1\"\n.csv";
    let ttl = Duration::from_secs(600);
    let before = time::OffsetDateTime::now_utc();
    let (url, expires_at) = storage
        .download_url(&key, filename, "text/csv; charset=utf-8", ttl)
        .await
        .unwrap();
    let lifetime = expires_at.unix_timestamp() - before.unix_timestamp();
    assert!(
        (600..=602).contains(&lifetime),
        "the link lives {lifetime} s"
    );

    let response = client().get(&url).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let headers = response.headers().clone();
    assert_eq!(headers[CONTENT_TYPE], "text/csv; charset=utf-8");
    assert_eq!(
        headers[CONTENT_DISPOSITION].to_str().unwrap(),
        content_disposition(filename)
    );
    assert_eq!(response.bytes().await.unwrap().as_ref(), data);
}

async fn a_range_request_gets_partial_content(backend: Backend) {
    let storage = &backend.storage;
    let key = new_key("ranged");
    let data = pseudo_random(1000, 3);
    put(storage, &key, &data).await;
    let (url, _) = storage
        .download_url(
            &key,
            "ranged.bin",
            "application/octet-stream",
            Duration::from_secs(60),
        )
        .await
        .unwrap();

    let response = client()
        .get(&url)
        .header(RANGE, "bytes=100-199")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(response.headers()[CONTENT_RANGE], "bytes 100-199/1000");
    assert_eq!(response.bytes().await.unwrap().as_ref(), &data[100..200]);
}

async fn a_tampered_link_is_refused(backend: Backend) {
    let storage = &backend.storage;
    let key = new_key("guarded");
    put(storage, &key, b"secret").await;
    let (url, _) = storage
        .download_url(&key, "guarded.csv", "text/csv", Duration::from_secs(600))
        .await
        .unwrap();
    let (name, type_, signature) = if backend.is_local() {
        ("filename", "type", "sig")
    } else {
        (
            "response-content-disposition",
            "response-content-type",
            "X-Amz-Signature",
        )
    };
    let renamed = with_param(&url, name, "attachment; filename=\"evil.exe\"");
    assert_refused(&backend, &renamed, "invalid_link").await;
    assert_refused(
        &backend,
        &with_param(&url, type_, "text/html"),
        "invalid_link",
    )
    .await;
    let forged = with_param(&url, signature, &"0".repeat(64));
    assert_refused(&backend, &forged, "invalid_link").await;
    // S3 calls a pre-signed query without its signature malformed (400) rather than forbidden.
    let unsigned = without_param(&url, signature);
    let s3_statuses = [StatusCode::FORBIDDEN, StatusCode::BAD_REQUEST];
    assert_refused_with(&backend, &unsigned, "invalid_link", &s3_statuses).await;
    let other = url.replace("guarded.csv", "other.csv");
    assert_ne!(other, url);
    let response = client().get(&other).send().await.unwrap();
    assert!(matches!(
        response.status(),
        StatusCode::FORBIDDEN | StatusCode::NOT_FOUND
    ));
}

async fn an_expired_link_is_refused(backend: Backend) {
    let storage = &backend.storage;
    let key = new_key("brief");
    put(storage, &key, b"soon gone").await;
    let (url, _) = storage
        .download_url(&key, "brief.csv", "text/csv", Duration::from_secs(1))
        .await
        .unwrap();
    // The only sleep in the suite: links count whole seconds, on the store's clock.
    tokio::time::sleep(Duration::from_millis(2100)).await;
    assert_refused(&backend, &url, "link_expired").await;
}

async fn keys_that_could_leave_the_store_are_refused(backend: Backend) {
    for bad in [
        "../escape.csv",
        "exports/../../escape.csv",
        "/etc/passwd",
        "a/./b",
    ] {
        assert!(
            matches!(ObjectKey::parse(bad), Err(StorageError::InvalidKey { .. })),
            "{bad:?} was accepted"
        );
    }
    // A link whose path leaves the directory is refused before the disk is touched, however
    // the dots are spelled. Sent raw: an HTTP client would normalise the dots away.
    if let Kind::Local { dir } = &backend.kind {
        std::fs::write(dir.join("outside.txt"), "outside").unwrap();
        let key = new_key("inside");
        put(&backend.storage, &key, b"inside").await;
        let (url, _) = backend
            .storage
            .download_url(&key, "x.txt", "text/plain", Duration::from_secs(60))
            .await
            .unwrap();
        let url = url::Url::parse(&url).unwrap();
        let addr = format!("{}:{}", url.host_str().unwrap(), url.port().unwrap());
        let query = url.query().unwrap();
        for path in [
            "/files/exports/../../../../outside.txt",
            "/files/exports/%2E%2E/%2e%2e/%2E%2E/%2E%2E/outside.txt",
            "/files/..%2Flink-signing.key",
            "/files/exports/%FF%FE",
        ] {
            let (status, body) = raw_get(&addr, &format!("{path}?{query}")).await;
            assert_eq!(status, 403, "{path}: {body}");
            assert!(
                body.contains("invalid_link") && !body.contains("outside"),
                "{body}"
            );
        }
    }
}

/// A GET of `target` exactly as written, on a fresh connection: (status, body).
async fn raw_get(addr: &str, target: &str) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let request = format!("GET {target} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    let status = response
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (status, body)
}

async fn ping_answers_when_the_store_is_up(backend: Backend) {
    backend.storage.ping().await.unwrap();
}

/// Runs each behaviour against both backends, as `local::name` and `s3::name`.
macro_rules! conformance {
    ($($name:ident),* $(,)?) => {
        mod local {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(super::Backend::local().await).await;
                }
            )*
        }
        mod s3 {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(super::Backend::s3()).await;
                }
            )*
        }
    };
}

conformance!(
    a_multipart_upload_reads_back_byte_for_byte,
    an_empty_upload_makes_an_empty_file,
    an_aborted_upload_leaves_nothing_behind,
    a_stale_upload_of_a_killed_worker_can_be_aborted,
    deleting_is_idempotent,
    a_download_link_serves_the_file_as_a_named_attachment,
    a_range_request_gets_partial_content,
    a_tampered_link_is_refused,
    an_expired_link_is_refused,
    keys_that_could_leave_the_store_are_refused,
    ping_answers_when_the_store_is_up,
    a_file_read_from_an_offset_is_its_tail,
);

#[tokio::test]
async fn the_file_router_serves_nothing_when_files_are_in_s3() {
    let backend = Backend::s3();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr: SocketAddr = listener.local_addr().unwrap();
    let app = axum::Router::from(ferry::api::files::router::<()>(backend.storage.clone()));
    tokio::spawn(async move { axum::serve(listener, app).await });

    let url = format!("http://{addr}/files/exports/acme/1/x.csv?expires=1&sig=00");
    let response = client().get(url).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    assert_eq!(response.headers()[CONTENT_TYPE], "application/problem+json");
}

#[tokio::test]
async fn a_local_link_survives_a_restart_with_the_same_data_directory() {
    let backend = Backend::local().await;
    let Kind::Local { dir } = &backend.kind else {
        unreachable!()
    };
    let key = new_key("kept");
    put(&backend.storage, &key, b"kept").await;
    let (url, _) = backend
        .storage
        .download_url(&key, "kept.csv", "text/csv", Duration::from_secs(60))
        .await
        .unwrap();

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let settings = Settings {
        data_dir: dir.clone(),
        public_url: Some(format!("http://{addr}")),
        storage: storage_settings(),
        ..Settings::default()
    };
    let restarted = Storage::from_settings(&settings).unwrap();
    tokio::spawn(async move {
        axum::serve(
            listener,
            axum::Router::from(ferry::api::files::router::<()>(restarted)),
        )
        .await
    });
    let old_port = url::Url::parse(&url).unwrap().port().unwrap();
    let moved = url.replace(&format!(":{old_port}/"), &format!(":{}/", addr.port()));
    let response = client().get(&moved).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.bytes().await.unwrap().as_ref(), b"kept");
}

#[tokio::test]
async fn a_store_that_does_not_answer_fails_readiness_quickly_as_transient() {
    let settings = Settings {
        data_dir: temp_dir(),
        storage: StorageSettings {
            url: Some("s3://nowhere/prefix".to_owned()),
            endpoint: Some("http://127.0.0.1:1".to_owned()),
            access_key_id: Some("k".to_owned()),
            secret_access_key: Some(Secret::new("s")),
            ..storage_settings()
        },
        ..Settings::default()
    };
    let storage = Storage::from_settings(&settings).unwrap();
    let started = std::time::Instant::now();
    let error = storage.ping().await.unwrap_err();
    assert!(error.is_transient(), "{error}");
    assert!(started.elapsed() < Duration::from_secs(10));
}

#[tokio::test]
async fn wrong_credentials_are_refused_for_good() {
    let s3 = crate::helpers::s3();
    let settings = Settings {
        data_dir: temp_dir(),
        storage: StorageSettings {
            url: Some(format!("s3://{}/{}", s3.bucket, uuid::Uuid::new_v4())),
            endpoint: Some(s3.endpoint.clone()),
            region: s3.region.clone(),
            access_key_id: Some(s3.key.clone()),
            secret_access_key: Some(Secret::new("not-the-secret")),
            ..storage_settings()
        },
        ..Settings::default()
    };
    let storage = Storage::from_settings(&settings).unwrap();
    let error = storage.ping().await.unwrap_err();
    assert!(!error.is_transient(), "{error}");
    let error = storage.begin_upload(&new_key("denied")).await.unwrap_err();
    assert!(matches!(error, StorageError::Refused(_)), "{error}");
}
