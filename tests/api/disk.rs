//! A full disk under the local store: the real `ferry serve` writes its files to a tmpfs of
//! 8 MiB. An export larger than that fails with an error that says the disk is full, after its
//! attempts, and leaves no file (complete or partial) behind; the server goes on working.

use crate::process::Served;
use serde_json::json;
use std::path::{Path, PathBuf};
use std::process::Command;

/// A tmpfs mounted for one test, unmounted when dropped.
struct Tmpfs {
    dir: PathBuf,
}

impl Tmpfs {
    fn mount(size: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("ferry-full-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).expect("make the mount point");
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(&dir)
            .status()
            .expect("run mount");
        assert!(status.success(), "mounting a tmpfs needs root");
        Self { dir }
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.dir).status();
        let _ = std::fs::remove_dir(&self.dir);
    }
}

/// Every file under `dir`, recursively.
fn files(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            found.extend(files(&path));
        } else {
            found.push(path);
        }
    }
    found
}

#[tokio::test]
async fn a_full_local_disk_fails_the_export_clearly_and_leaves_no_file() {
    let disk = Tmpfs::mount("8m");
    let url = format!("file://{}", disk.dir.display());
    let served = Served::start(&[
        ("FERRY_STORAGE__URL", url.as_str()),
        ("FERRY_WORKERS__MAX_ATTEMPTS", "2"),
    ])
    .await;
    let columns = json!([{"name": "id", "kind": "uuid"}, {"name": "e", "kind": "email"}]);
    let job = served
        .export(&json!({"source": {"type": "generate", "rows": 1_000_000, "columns": columns}}))
        .await;
    assert_eq!(job["state"], "failed", "{job}");
    assert_eq!(
        job["attempt"], 2,
        "a full disk may clear up: retried, then failed"
    );
    let message = job["error"]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("No space left on device"),
        "the error says the disk is full: {job}"
    );
    assert_eq!(
        files(&disk.dir),
        Vec::<PathBuf>::new(),
        "nothing left behind"
    );
    // The server goes on: a small export fits.
    let small = served
        .export(&json!({"source": {"type": "generate", "rows": 100, "columns": columns}}))
        .await;
    assert_eq!(small["state"], "succeeded", "{small}");
}
