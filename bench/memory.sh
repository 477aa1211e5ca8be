#!/usr/bin/env bash
# 512 MiB, at scale: a release `ferry serve` with deploy/ferry.toml (the compose file's
# configuration) runs inside a cgroup v1 memory group limited to 512 MiB — what
# `docker --memory 512m` sets — exports ROWS generated rows as csv.gz to an S3-compatible store
# (SeaweedFS), and imports the file again into a PostgreSQL table. Prints the times, the group's
# peak memory (memory.max_usage_in_bytes) and memory.failcnt (0: the limit was never reached).
# Needs root (cgroups). Usage: bench/memory.sh [ROWS]   (default 5,000,000)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
rows=${1:-5000000}
log() { echo "==> $*" >&2; }

eval "$(scripts/postgres)"
admin=$FERRY_TEST_DATABASE_URL
base=${admin%/*}
meta=ferry_bench_mem_meta
data=ferry_bench_mem_data
work=$(mktemp -d "${TMPDIR:-/tmp}/ferry-bench-mem.XXXXXX")
group=/sys/fs/cgroup/memory/ferry-bench-$$
for db in $meta $data; do psql -X -q "$admin" -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" -c "CREATE DATABASE $db"; done
cleanup() {
  [[ -n ${server:-} ]] && kill "$server" 2>/dev/null && wait "$server" 2>/dev/null
  rmdir "$group" 2>/dev/null || true
  scripts/s3-server stop "$work/s3" >/dev/null 2>&1 || true
  for db in $meta $data; do psql -X -q "$admin" -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" || true; done
  rm -rf "$work"
}
trap cleanup EXIT

log "building ferry (release)"
cargo build --release --quiet
ferry=${CARGO_TARGET_DIR:-target}/release/ferry
scripts/s3-server start "$work/s3" >/dev/null
# shellcheck disable=SC1091 # written by scripts/s3-server
source "$work/s3/env"
mkdir "$group"
echo $((512 * 1024 * 1024)) > "$group/memory.limit_in_bytes"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
key=change-me
sh -c 'echo $$ > "$0/cgroup.procs" && exec "$@"' "$group" env \
  FERRY_LISTEN=127.0.0.1:$port FERRY_PUBLIC_URL=http://127.0.0.1:$port FERRY_DATA_DIR="$work" \
  FERRY_DATABASE_URL="$base/$meta" FERRY_STORAGE__URL="s3://$FERRY_TEST_S3_BUCKET/mem-$$" \
  FERRY_STORAGE__ENDPOINT="$FERRY_TEST_S3_ENDPOINT" FERRY_STORAGE__ACCESS_KEY_ID="$FERRY_TEST_S3_ACCESS_KEY_ID" \
  FERRY_STORAGE__SECRET_ACCESS_KEY="$FERRY_TEST_S3_SECRET_ACCESS_KEY" FERRY_CONNECTIONS__MAIN__URL="$base/$data" \
  FERRY_LOG=warn "$ferry" serve --config deploy/ferry.toml &
server=$!
api=http://127.0.0.1:$port
until curl -sf "$api/healthz" >/dev/null; do sleep 0.1; done
call() { curl -sf -H "authorization: Bearer $key" "$@"; }
wait_done() {
  local state
  while true; do
    state=$(call "$api$1" | jq -r .state)
    [[ $state == succeeded ]] && return 0
    [[ $state == failed || $state == cancelled ]] && { call "$api$1" | jq .error >&2; return 1; }
    sleep 0.5
  done
}

log "export: $rows rows as csv.gz"
start=$(date +%s.%N)
id=$(call -X POST "$api/v1/exports" -H 'content-type: application/json' -d '{"format": "csv.gz",
  "source": {"type": "generate", "rows": '"$rows"', "seed": 5, "columns": [{"name": "id", "kind": "uuid"},
  {"name": "name", "kind": "name"}, {"name": "email", "kind": "email"}, {"name": "born", "kind": "date"},
  {"name": "score", "kind": "int"}]}}' | jq -r .id)
wait_done "/v1/exports/$id"
exported=$(python3 -c "import time; print(round(time.time() - $start, 1))")
curl -sf -o "$work/people.csv.gz" "$(call "$api/v1/exports/$id" | jq -r .result.download_url)"

log "import: the same file into PostgreSQL"
psql -X -q "$base/$data" -c "CREATE TABLE people (id uuid PRIMARY KEY, name text, email text, born date, score bigint)"
start=$(date +%s.%N)
id=$(call -X POST "$api/v1/imports?connection=main&table=people" -H 'content-type: text/csv' \
  -H 'content-encoding: gzip' -T "$work/people.csv.gz" -X POST | jq -r .id)
wait_done "/v1/imports/$id"
imported=$(python3 -c "import time; print(round(time.time() - $start, 1))")
count=$(psql -X -t -A "$base/$data" -c "SELECT count(DISTINCT id) FROM people")

peak=$(awk '{printf "%.1f", $1 / 1048576}' "$group/memory.max_usage_in_bytes")
failcnt=$(cat "$group/memory.failcnt")
echo
echo "512 MiB cgroup, $rows rows: export ${exported} s, import ${imported} s (upload included), $count distinct ids loaded"
echo "peak memory of the group: $peak MiB; memory.failcnt: $failcnt"
[[ $failcnt == 0 && $count == "$rows" ]]
