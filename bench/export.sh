#!/usr/bin/env bash
# Export benchmark: 5,000,000 rows (~200 bytes each) from PostgreSQL to csv.gz, alternating
#   (a) Ferry → local file store, (b) Ferry → S3-compatible store (SeaweedFS),
#   (c) psql \copy (…) TO STDOUT (FORMAT csv, HEADER) | gzip -1 > file.
# Prints wall times, rows/s, MB/s (of uncompressed CSV), the ratios (a)/(c) and (b)/(c), and
# Ferry's peak RSS (/usr/bin/time -v over each server's whole run).
# Usage: bench/export.sh [ROWS] [RUNS]     (defaults: 5000000 rows, 2 runs of each)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
rows=${1:-5000000}
runs=${2:-2}
log() { echo "==> $*" >&2; }

eval "$(scripts/postgres)"
admin=$FERRY_TEST_DATABASE_URL
base=${admin%/*}
db=ferry_bench
work=$(mktemp -d "${TMPDIR:-/tmp}/ferry-bench.XXXXXX")
pids=()
cleanup() {
  for pid in "${pids[@]}"; do pkill -TERM -P "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  scripts/s3-server stop "$work/s3" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

log "building ferry (release)"
cargo build --release --quiet
ferry=${CARGO_TARGET_DIR:-target}/release/ferry

log "loading $rows rows into $db.bench_rows (skipped when already there)"
psql -X -q "$admin" -c "CREATE DATABASE $db" 2>/dev/null || true
have=$(psql -X -t -A "$base/$db" -c "SELECT count(*) FROM bench_rows" 2>/dev/null || echo 0)
if [[ $have != "$rows" ]]; then
  psql -X -q "$base/$db" <<SQL
DROP TABLE IF EXISTS bench_rows;
CREATE TABLE bench_rows (
  id bigint PRIMARY KEY, account uuid NOT NULL, name text NOT NULL, email text NOT NULL,
  created_at timestamptz NOT NULL, amount numeric(12,2) NOT NULL, status smallint NOT NULL,
  payload text NOT NULL);
INSERT INTO bench_rows
SELECT g, md5(g::text)::uuid, 'Customer ' || g, 'user' || g || '@example.com',
       timestamptz '2026-01-01' + g * interval '1 second', (g % 100000) / 100.0, (g % 5)::smallint,
       repeat(md5((g * 31)::text), 2) || ' ' || (g % 977)
FROM generate_series(1, $rows) g;
ANALYZE bench_rows;
SQL
fi
query="SELECT id, account, name, email, created_at, amount, status, payload FROM bench_rows"

log "starting SeaweedFS"
scripts/s3-server start "$work/s3" >/dev/null
# shellcheck disable=SC1091
source "$work/s3/env"

start_ferry() { # NAME PORT [storage lines…]
  local name=$1 port=$2; shift 2
  mkdir -p "$work/$name"
  {
    echo "listen = \"127.0.0.1:$port\""
    echo "data_dir = \"$work/$name\""
    echo "[storage]"
    printf '%s\n' "$@"
    echo "[connections.bench]"
    echo "url = \"$base/$db\""
    echo "allow_sql = true"
  } >"$work/$name/ferry.toml"
  FERRY_LOG=warn /usr/bin/time -v -o "$work/$name/time.txt" "$ferry" serve --config "$work/$name/ferry.toml" &
  pids+=($!)
  for _ in $(seq 100); do curl -sf "http://127.0.0.1:$port/healthz" >/dev/null && return; sleep 0.1; done
  echo "ferry $name did not start" >&2; exit 1
}
port_a=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
port_b=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
start_ferry local "$port_a" "url = \"file://$work/local/files\""
start_ferry s3 "$port_b" "url = \"s3://$FERRY_TEST_S3_BUCKET/bench\"" "endpoint = \"$FERRY_TEST_S3_ENDPOINT\"" \
  "access_key_id = \"$FERRY_TEST_S3_ACCESS_KEY_ID\"" "secret_access_key = \"$FERRY_TEST_S3_SECRET_ACCESS_KEY\""

now() { date +%s.%N; }
ferry_export() { # PORT → prints seconds
  local port=$1 start id state
  start=$(now)
  id=$(curl -sf "http://127.0.0.1:$port/v1/exports" -H 'content-type: application/json' \
    -d "{\"source\":{\"type\":\"sql\",\"connection\":\"bench\",\"query\":\"$query\"},\"format\":\"csv.gz\"}" | jq -r .id)
  while :; do
    state=$(curl -sf "http://127.0.0.1:$port/v1/exports/$id" | jq -r .state)
    case $state in succeeded) break ;; failed|cancelled) echo "export $state" >&2; exit 1 ;; esac
    sleep 0.05
  done
  echo "$(now) - $start" | bc
}
psql_export() {
  local start
  start=$(now)
  psql -X -q "$base/$db" -c "\\copy ($query) TO STDOUT WITH (FORMAT csv, HEADER)" | gzip -1 >"$work/psql.csv.gz"
  echo "$(now) - $start" | bc
}
csv_bytes=$(psql -X -q "$base/$db" -c "\\copy ($query) TO STDOUT WITH (FORMAT csv, HEADER)" | wc -c)

declare -a ta tb tc
for run in $(seq "$runs"); do
  log "run $run/$runs"
  ta+=("$(ferry_export "$port_a")")
  tb+=("$(ferry_export "$port_b")")
  tc+=("$(psql_export)")
done
# $pids are /usr/bin/time processes: stop their ferry children so that time writes its report.
for pid in "${pids[@]}"; do pkill -TERM -P "$pid" || true; done
wait "${pids[@]}" 2>/dev/null || true
pids=()

best() { printf '%s\n' "$@" | sort -g | head -1; }
a=$(best "${ta[@]}"); b=$(best "${tb[@]}"); c=$(best "${tc[@]}")
rss() { awk -F': ' '/Maximum resident/ {printf "%.1f", $2/1024}' "$work/$1/time.txt"; }
mb=$(echo "$csv_bytes / 1000000" | bc -l)
printf '\nexport of %d rows (%.0f MB of CSV) to csv.gz, best of %d runs\n' "$rows" "$mb" "$runs"
printf '%-34s %9s %12s %9s\n' variant seconds rows/s MB/s
for v in "a ferry -> local store:$a" "b ferry -> S3 (SeaweedFS):$b" "c psql copy | gzip -1:$c"; do
  t=${v##*:}
  printf '%-34s %9.2f %12.0f %9.1f\n' "${v%:*}" "$t" "$(echo "$rows / $t" | bc -l)" "$(echo "$mb / $t" | bc -l)"
done
printf 'ratio (a)/(c) = %.2f   ratio (b)/(c) = %.2f\n' "$(echo "$a / $c" | bc -l)" "$(echo "$b / $c" | bc -l)"
printf 'ferry peak RSS: local %s MiB, s3 %s MiB\n' "$(rss local)" "$(rss s3)"
printf 'all runs (s): a=%s b=%s c=%s\n' "${ta[*]}" "${tb[*]}" "${tc[*]}"
