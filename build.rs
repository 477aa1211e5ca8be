//! Build script: only the `duckdb` feature needs one. It makes sure DuckDB's shared library is
//! there (running `scripts/duckdb-lib` when it is missing) and gives every binary an rpath to
//! it, so `ferry` and the test binaries run without `LD_LIBRARY_PATH`: first `$ORIGIN` (a
//! deployment puts `libduckdb.so` beside the binary), then the directory it was linked from.
//! `DUCKDB_LIB_DIR` comes from `.cargo/config.toml` unless the environment sets it.

use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    println!("cargo::rerun-if-changed=build.rs");
    println!("cargo::rerun-if-env-changed=DUCKDB_LIB_DIR");
    if std::env::var_os("CARGO_FEATURE_DUCKDB").is_none() {
        return;
    }
    let Some(dir) = std::env::var_os("DUCKDB_LIB_DIR").map(PathBuf::from) else {
        panic!("the duckdb feature needs DUCKDB_LIB_DIR (set in .cargo/config.toml)");
    };
    let library = dir.join("libduckdb.so");
    println!("cargo::rerun-if-changed={}", library.display());
    if !library.exists() {
        install(&dir);
    }
    println!("cargo::rustc-link-arg=-Wl,-rpath,$ORIGIN:{}", dir.display());
}

/// Runs `scripts/duckdb-lib`, which installs the pinned library into `.cache/duckdb`.
fn install(dir: &Path) {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/duckdb-lib");
    let installed = Command::new(&script).status();
    if !matches!(installed, Ok(status) if status.success()) || !dir.join("libduckdb.so").exists() {
        panic!(
            "libduckdb.so is not in {} and {} could not install it ({installed:?}); \
             run the script by hand, or set DUCKDB_LIB_DIR to a directory holding DuckDB 1.5.6's library",
            dir.display(),
            script.display()
        );
    }
}
