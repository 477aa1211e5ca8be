#!/usr/bin/env bash
# Scale-out benchmark: the chaos test's mixed workload (no kills) on one API-only `ferry serve`
# (workers.concurrency = 0) in front of 1, 2, then 3 `ferry worker` processes, on PostgreSQL
# metadata and SeaweedFS. JOBS jobs: even ones exports to csv (alternately from the generator
# and from an SQL query on PostgreSQL; EXPORT_MIN…EXPORT_MAX rows, spread evenly), odd ones
# imports of IMPORT_ROWS-row CSV files into one table (raw-body uploads, `curl -T`, streamed).
# Each worker count gets a fresh metadata database and an empty table. For each it prints
#   jobs/s, rows/s, MB/s (export files + import uploads), from the first submission to the
#   last job's end;
#   peak RSS (VmHWM) of every ferry process;
#   CPU seconds (utime + stime from /proc) of the ferry processes, of the PostgreSQL backends
#   of the two bench databases (those alive at the end: the pools keep theirs), of SeaweedFS
#   (its whole process group), and the machine's busy CPU over the run (/proc/stat, all
#   processes, other users' too) — and names the largest consumer, which is where the
#   bottleneck is when the machine's cores are busy.
# Usage: bench/scale.sh [JOBS] [EXPORT_MIN] [EXPORT_MAX] [IMPORT_ROWS] [WORKER_CONCURRENCY]
#        (defaults: 60 300000 600000 50000 2); BENCH_FERRY=path uses that binary instead of
#        building the release one.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
jobs=${1:-60}
export_min=${2:-300000}
export_max=${3:-600000}
import_rows=${4:-50000}
concurrency=${5:-2}
log() { echo "==> $*" >&2; }

eval "$(scripts/postgres)"
admin=$FERRY_TEST_DATABASE_URL
base=${admin%/*}
meta=ferry_bench_scale_meta
data=ferry_bench_scale_data
work=$(mktemp -d "${TMPDIR:-/tmp}/ferry-scale-bench.XXXXXX")
ferry_pids=()
stop_ferry() {
  for pid in "${ferry_pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${ferry_pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  ferry_pids=()
}
cleanup() {
  stop_ferry
  scripts/s3-server stop "$work/s3" >/dev/null 2>&1 || true
  psql -X -q "$admin" -c "DROP DATABASE IF EXISTS $meta WITH (FORCE)" \
    -c "DROP DATABASE IF EXISTS $data WITH (FORCE)" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 143' TERM
trap 'exit 130' INT

if [[ -n ${BENCH_FERRY:-} ]]; then
  ferry=$BENCH_FERRY # a ferry binary built elsewhere (e.g. to prove the script with a debug build)
else
  log "building ferry (release)"
  cargo build --release --quiet
  ferry=${CARGO_TARGET_DIR:-target}/release/ferry
fi

log "starting SeaweedFS"
scripts/s3-server start "$work/s3" >/dev/null
# shellcheck disable=SC1091
source "$work/s3/env"
weed_pgid=$(cat "$work/s3/weed.pid")

log "writing $((jobs / 2)) import files of $import_rows rows"
mkdir -p "$work/files"
for ((i = 1; i < jobs; i += 2)); do
  awk -v rows="$import_rows" -v file="$i" 'BEGIN {
    print "id,file,payload"
    for (n = 1; n <= rows; n++) printf "%d,%d,row %d of file %d\n", file * 1000000 + n, file, n, file
  }' >"$work/files/$i.csv"
done
upload_bytes=$(cat "$work/files/"*.csv 2>/dev/null | wc -c)

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
config() { # NAME PORT CONCURRENCY → path of a config file
  local dir=$work/$1
  mkdir -p "$dir"
  cat >"$dir/ferry.toml" <<TOML
listen = "127.0.0.1:$2"
data_dir = "$dir"
database_url = "$base/$meta"
[storage]
url = "s3://$FERRY_TEST_S3_BUCKET/scale"
endpoint = "$FERRY_TEST_S3_ENDPOINT"
access_key_id = "$FERRY_TEST_S3_ACCESS_KEY_ID"
secret_access_key = "$FERRY_TEST_S3_SECRET_ACCESS_KEY"
[workers]
concurrency = $3
[limits]
max_queued_per_tenant = 10000
max_running_per_tenant = 1000
[connections.main]
url = "$base/$data"
allow_sql = true
TOML
  echo "$dir/ferry.toml"
}
cpu_of() { # PID… → CPU seconds (utime + stime) of those alive
  local ticks=0 pid f
  for pid in "$@"; do
    # Fields after the ")" of the command name: utime and stime are the 12th and 13th.
    f=$(sed 's/.*) //' "/proc/$pid/stat" 2>/dev/null) || continue
    ticks=$((ticks + $(awk '{print $12 + $13}' <<<"$f")))
  done
  echo "scale=2; $ticks / $(getconf CLK_TCK)" | bc
}
weed_cpu() { cpu_of $(pgrep -g "$weed_pgid" || true); }
machine_busy() { awk '/^cpu / {print $2 + $3 + $4 + $7 + $8, $2 + $3 + $4 + $5 + $6 + $7 + $8}' /proc/stat; }
hwm() { awk '/VmHWM/ {printf "%.1f", $2 / 1024}' "/proc/$1/status"; }
export_body() { # ROWS SQL(0|1)
  if [[ $2 == 1 ]]; then
    printf '{"format":"csv","source":{"type":"sql","connection":"main","query":"SELECT g AS n, md5(g::text) AS a, now()::date AS d FROM generate_series(1, %d) g"}}' "$1"
  else
    printf '{"format":"csv","source":{"type":"generate","rows":%d,"seed":%d,"columns":[{"name":"n","kind":"int"},{"name":"email","kind":"email"},{"name":"t","kind":"text","length":30}]}}' "$1" "$1"
  fi
}
step=$(((export_max - export_min) / (jobs / 2 > 0 ? jobs / 2 : 1)))

printf '\n%d jobs (%d exports of %d–%d rows, %d imports of %d rows), %d per worker\n' \
  "$jobs" "$(((jobs + 1) / 2))" "$export_min" "$export_max" "$((jobs / 2))" "$import_rows" "$concurrency" >"$work/report"
printf '%-8s %8s %7s %10s %7s %9s %9s %9s %9s  %s\n' workers seconds jobs/s rows/s MB/s \
  "ferry s" "pg s" "weed s" "busy %" "peak RSS MiB (api; workers)" >>"$work/report"

for n in 1 2 3; do
  log "$n worker(s): fresh metadata database and table"
  psql -X -q "$admin" -c "DROP DATABASE IF EXISTS $meta WITH (FORCE)" -c "CREATE DATABASE $meta" \
    -c "DROP DATABASE IF EXISTS $data WITH (FORCE)" -c "CREATE DATABASE $data"
  psql -X -q "$base/$data" -c "CREATE TABLE chaos_rows (id bigint NOT NULL, file int NOT NULL, payload text NOT NULL)"
  port=$(free_port)
  FERRY_LOG=warn "$ferry" serve --config "$(config api "$port" 0)" &
  ferry_pids=($!)
  api=http://127.0.0.1:$port
  until curl -sf "$api/healthz" >/dev/null; do sleep 0.1; done
  for ((w = 1; w <= n; w++)); do
    FERRY_LOG=warn "$ferry" worker --config "$(config "worker$w" "$(free_port)" "$concurrency")" &
    ferry_pids+=($!)
  done
  weed_before=$(weed_cpu)
  read -r busy_before total_before < <(machine_busy)
  start=$(date +%s.%N)
  for ((i = 0; i < jobs; i++)); do
    if ((i % 2 == 1)); then
      curl -sf -o /dev/null -X POST -H 'content-type: text/csv' -T "$work/files/$i.csv" \
        "$api/v1/imports?connection=main&table=chaos_rows&mode=append"
    else
      curl -sf -o /dev/null "$api/v1/exports" -H 'content-type: application/json' \
        -d "$(export_body $((export_min + step * (i / 2))) $((i % 4 == 2)))"
    fi
  done
  until [[ $(psql -X -t -A "$base/$meta" -c "SELECT count(*) FROM ferry_jobs WHERE kind IN ('export','import')
      AND state IN ('succeeded','failed','cancelled','expired')") -ge $jobs ]]; do sleep 0.2; done
  seconds=$(echo "$(date +%s.%N) - $start" | bc)
  read -r busy_after total_after < <(machine_busy)
  busy=$(echo "scale=1; 100 * ($busy_after - $busy_before) / ($total_after - $total_before)" | bc)
  weed=$(echo "$(weed_cpu) - $weed_before" | bc)
  pg=$(cpu_of $(psql -X -t -A "$admin" -c "SELECT pid FROM pg_stat_activity WHERE datname IN ('$meta', '$data')"))
  ferry_cpu=$(cpu_of "${ferry_pids[@]}")
  rss=$(hwm "${ferry_pids[0]}")\;
  for pid in "${ferry_pids[@]:1}"; do rss+=" $(hwm "$pid")"; done
  read -r failed rows bytes < <(psql -X -t -A -F ' ' "$base/$meta" -c "
    SELECT count(*) FILTER (WHERE state <> 'succeeded'),
           coalesce(sum(coalesce((result::jsonb->'file'->>'rows')::bigint, (result::jsonb->>'rows_inserted')::bigint)), 0),
           coalesce(sum((result::jsonb->'file'->>'size_bytes')::bigint), 0)
    FROM ferry_jobs WHERE kind IN ('export', 'import')")
  stop_ferry
  ((failed == 0)) || { echo "$failed jobs did not succeed" >&2; exit 1; }
  loaded=$(psql -X -t -A "$base/$data" -c "SELECT count(DISTINCT id) FROM chaos_rows")
  ((loaded == import_rows * (jobs / 2))) || { echo "loaded $loaded rows, expected $((import_rows * (jobs / 2)))" >&2; exit 1; }
  largest=$(printf 'ferry %s\npostgres %s\nseaweedfs %s\n' "$ferry_cpu" "$pg" "$weed" | sort -k2 -g -r | head -1 | cut -d' ' -f1)
  printf '%-8s %8.2f %7.2f %10.0f %7.1f %9.1f %9.1f %9.1f %9.1f  %s  (largest: %s)\n' "$n" "$seconds" \
    "$(echo "$jobs / $seconds" | bc -l)" "$(echo "$rows / $seconds" | bc -l)" \
    "$(echo "($bytes + $upload_bytes) / 1000000 / $seconds" | bc -l)" \
    "$ferry_cpu" "$pg" "$weed" "$busy" "$rss" "$largest" >>"$work/report"
done
cat "$work/report"
echo "CPU columns are CPU-seconds over the run; busy % is the whole machine's ($(nproc) cores, everyone's)."
echo "When busy % is near 100 the run is CPU-bound and the largest consumer is the bottleneck;"
echo "when it is well below and jobs/s does not grow with workers, look at the metadata database (pg s) and the bucket (weed s)."
