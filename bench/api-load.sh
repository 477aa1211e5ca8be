#!/usr/bin/env bash
# API load: a release `ferry serve` on PostgreSQL metadata and the local file store, measured from
# other processes on loopback:
#   (1) status reads: wrk, 4 threads × 64 connections, 15 s of GET /v1/exports/ID → requests/s,
#       latency p50/p99;
#   (2) N SSE subscribers (default 1,000, bench/sse_clients.py) on one running export: how many
#       got `done`, the fewest and most events a client saw, and the server's RSS at the peak;
#   (3) enqueue → running: 200 small exports created one after another; started_at - created_at
#       p50/p99 (the wake-up through LISTEN/NOTIFY, not the poll).
# Usage: bench/api-load.sh [SSE_CLIENTS]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
clients=${1:-1000}
log() { echo "==> $*" >&2; }

if ! command -v wrk >/dev/null; then
  log "installing wrk (Debian)"
  apt-get install -y --no-install-recommends wrk >/dev/null ||
    { apt-get update >/dev/null && apt-get install -y --no-install-recommends wrk >/dev/null; }
fi
eval "$(scripts/postgres)"
admin=$FERRY_TEST_DATABASE_URL
db=ferry_bench_api
psql -X -q "$admin" -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" -c "CREATE DATABASE $db"
work=$(mktemp -d "${TMPDIR:-/tmp}/ferry-api-load.XXXXXX")
cleanup() {
  [[ -n ${server:-} ]] && kill "$server" 2>/dev/null && wait "$server" 2>/dev/null
  psql -X -q "$admin" -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" || true
  rm -rf "$work"
}
trap cleanup EXIT

log "building ferry (release)"
cargo build --release --quiet
ferry=${CARGO_TARGET_DIR:-target}/release/ferry
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
ulimit -n "$(ulimit -Hn)" # 1,000 SSE connections on each side
FERRY_LISTEN=127.0.0.1:$port FERRY_DATA_DIR=$work FERRY_DATABASE_URL=${admin%/*}/$db \
  FERRY_WORKERS__CONCURRENCY=2 FERRY_LIMITS__MAX_QUEUED_PER_TENANT=10000 FERRY_LOG=warn \
  "$ferry" serve &
server=$!
base=http://127.0.0.1:$port
until curl -sf "$base/healthz" >/dev/null; do sleep 0.1; done
export_json() { curl -sf -X POST "$base/v1/exports" -H 'content-type: application/json' -d "$1"; }
rss() { awk '/VmRSS/ {printf "%.1f", $2 / 1024}' "/proc/$server/status"; }

small='{"source": {"type": "generate", "rows": 10, "columns": [{"name": "n", "kind": "int"}]}}'
id=$(export_json "$small" | jq -r .id)
until [[ $(curl -sf "$base/v1/exports/$id" | jq -r .state) == succeeded ]]; do sleep 0.1; done
log "(1) status reads: wrk -t4 -c64 -d15s"
wrk -t4 -c64 -d15s --latency "$base/v1/exports/$id" > "$work/wrk.txt"
reads=$(awk '/Requests\/sec/ {print $2}' "$work/wrk.txt")
p50=$(awk '$1 == "50%" {print $2}' "$work/wrk.txt")
p99=$(awk '$1 == "99%" {print $2}' "$work/wrk.txt")
errors=$(grep -E "Non-2xx|Socket errors" "$work/wrk.txt" || echo "none")

log "(2) $clients SSE clients on one running export"
big='{"source": {"type": "generate", "rows": 30000000, "columns": [{"name": "id", "kind": "uuid"}, {"name": "e", "kind": "email"}]}}'
rss_before=$(rss)
job=$(export_json "$big" | jq -r .id)
python3 bench/sse_clients.py 127.0.0.1 "$port" "$job" "$clients" > "$work/sse.json" &
sse=$!
peak=$rss_before
while kill -0 "$sse" 2>/dev/null; do
  now=$(rss); peak=$(python3 -c "print(max($peak, $now))"); sleep 0.2
done
wait "$sse"
sse_result=$(cat "$work/sse.json")

log "(3) enqueue → running, 200 exports one after another"
for _ in $(seq 200); do export_json "$small" | jq -r .id; done > "$work/ids"
while [[ $(curl -sf "$base/v1/exports?state=queued" | jq '.items | length') != 0 ||
         $(curl -sf "$base/v1/exports?state=running" | jq '.items | length') != 0 ]]; do sleep 0.2; done
while read -r one; do curl -sf "$base/v1/exports/$one"; echo; done < "$work/ids" |
  jq -r '[.created_at, .started_at] | @tsv' > "$work/times.tsv"
latency=$(python3 - "$work/times.tsv" <<'PY'
import sys
from datetime import datetime
waits = sorted((datetime.fromisoformat(s.replace("Z", "+00:00")) - datetime.fromisoformat(c.replace("Z", "+00:00"))).total_seconds() * 1000
               for c, s in (line.split("\t") for line in open(sys.argv[1]).read().split("\n") if line))
pick = lambda q: waits[min(len(waits) - 1, int(q * len(waits)))]
print(f"{pick(0.50):.1f} {pick(0.99):.1f} {len(waits)}")
PY
)
read -r e50 e99 n <<<"$latency"

echo
echo "status reads (wrk -t4 -c64 -d15s): $reads requests/s, p50 $p50, p99 $p99 ($errors)"
echo "SSE: $sse_result; server RSS $rss_before MiB before, peak $peak MiB"
echo "enqueue -> running over $n jobs: p50 ${e50} ms, p99 ${e99} ms"
