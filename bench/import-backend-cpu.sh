#!/usr/bin/env bash
# The PostgreSQL backend's CPU seconds for one load of the same 1,000,000-row file into the same
# table: Ferry (binary COPY) against `psql \copy` (text CSV COPY), twice each. Wall-clock ratios
# on a shared machine hide what binary COPY changes; this counts it. Needs bench/import.sh's
# database (ferry_bench, table bench_import): run that once first.
# Usage: bench/import-backend-cpu.sh
set -u
cd "$(dirname "${BASH_SOURCE[0]}")/.."
eval "$(scripts/postgres)"
base=${FERRY_TEST_DATABASE_URL%/*}; db=ferry_bench
cargo build --release --quiet
ferry=${CARGO_TARGET_DIR:-target}/release/ferry
work=$(mktemp -d "${TMPDIR:-/tmp}/ferry-cpu-bench.XXXXXX")
trap 'kill $pid 2>/dev/null; wait 2>/dev/null; rm -rf "$work"' EXIT
"$ferry" generate --rows 1000000 --seed 7 --columns-file bench/columns.json --format csv -o "$work/f.csv" 2>/dev/null
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
printf 'listen = "127.0.0.1:%s"\ndata_dir = "%s"\n[connections.bench]\nurl = "%s"\n' "$port" "$work/d" "$base/$db" >"$work/ferry.toml"
FERRY_LOG=error "$ferry" serve --config "$work/ferry.toml" & pid=$!
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$port/healthz" >/dev/null && break; sleep 0.1; done
watch_backend() { # prints the COPY backend's CPU seconds (sampled every 50 ms) when it ends
  local b=""; for _ in $(seq 3000); do b=$(ps -eo pid,cmd | grep "postgres: .*ferry_bench.*COPY" | grep -v grep | awk '{print $1}' | head -1); [ -n "$b" ] && break; sleep 0.02; done
  local last=0; while [ -r /proc/$b/stat ]; do last=$(awk '{print ($14+$15)/100}' /proc/$b/stat 2>/dev/null || echo $last); sleep 0.05; done; echo "$last"
}
for i in 1 2; do
  psql -X -q "$base/$db" -c "TRUNCATE bench_import"
  watch_backend >"$work/fb" & w=$!
  curl -sf "http://127.0.0.1:$port/v1/imports" -F 'spec={"target": {"table": "bench_import"}};type=application/json' -F "file=@$work/f.csv;type=text/csv" >/dev/null
  wait $w; echo "ferry (binary COPY) backend CPU s: $(cat "$work/fb")"
  psql -X -q "$base/$db" -c "TRUNCATE bench_import"
  watch_backend >"$work/pb" & w=$!
  psql -X -q "$base/$db" -c "\\copy bench_import FROM '$work/f.csv' WITH (FORMAT csv, HEADER)"
  wait $w; echo "psql (text COPY) backend CPU s: $(cat "$work/pb")"
done
