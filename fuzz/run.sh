#!/usr/bin/env bash
# Runs every fuzz target for SECONDS (default 600) each, one after another, on stable Rust
# (RUSTC_BOOTSTRAP=1 lets cargo-fuzz pass its nightly-only flags). Extra arguments after
# SECONDS go to cargo fuzz run, e.g. `fuzz/run.sh 60 -s none`.
# Crashes land in fuzz/artifacts/<target>/; the grown corpus in fuzz/corpus/<target>/.
set -euo pipefail
seconds="${1:-600}"
shift || true
cd "$(dirname "$0")"
export RUSTC_BOOTSTRAP=1
targets=$(cargo fuzz list)
cargo fuzz build "$@"
for target in $targets; do
    echo "== $target: ${seconds}s"
    cargo fuzz run "$@" "$target" -- -max_total_time="$seconds" -print_final_stats=1
done
