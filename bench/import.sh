#!/usr/bin/env bash
# Import benchmark: a ~1 GB, 5,000,000-row CSV with 10 typed columns, alternating
#   (a) Ferry: `curl -F spec=… -F file=@…` to the API, then wait until the import succeeded;
#   (b) psql -c "\copy bench_import FROM 'file' WITH (FORMAT csv, HEADER)".
# Prints upload MB/s, end-to-end rows/s, the ratio of load times (a)/(b), Ferry's peak RSS over
# its whole run (/usr/bin/time -v) and count(*) against the file's rows; then the same for a
# file of which 1% of rows are bad (Ferry only: psql's \copy stops at the first bad row), and
# Ferry's peak RSS for a 1,000,000-row file, to show that memory does not grow with the file.
# Then a table with a PRIMARY KEY, a FOREIGN KEY and a CHECK, loaded by Ferry clean and with 1% of
# rows breaking one of the three (a key repeated from earlier in the file, a missing parent, a
# failed CHECK), to compare the dirty load with the clean one (those files are gzipped, as are the
# 1% bad rows of the plain table: the disk is shared).
# Load times are the job's finished_at - started_at (milliseconds).
# Usage: bench/import.sh [ROWS] [RUNS]     (defaults: 5000000 rows, 2 runs of each)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
# shellcheck source=bench/imports.sh
source bench/imports.sh
rows=${1:-5000000}
runs=${2:-2}
log() { echo "==> $*" >&2; }

eval "$(scripts/postgres)"
admin=$FERRY_TEST_DATABASE_URL
base=${admin%/*}
db=ferry_bench
work=$(mktemp -d "${TMPDIR:-/tmp}/ferry-import-bench.XXXXXX")
pid=""
cleanup() {
  [[ -n $pid ]] && pkill -TERM -P "$pid" 2>/dev/null || true
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

log "building ferry (release)"
cargo build --release --quiet
ferry=${CARGO_TARGET_DIR:-target}/release/ferry

make_file() { # ROWS FILE
  "$ferry" generate --rows "$1" --seed 7 --columns-file bench/columns.json --format csv -o "$2" 2>/dev/null
}
log "generating $rows rows"
make_file "$rows" "$work/good.csv"
# The derived files are made when needed, gzipped (Ferry reads gzip as it streams), and removed
# when done: the machine's disk is shared.
make_bad() { # 1% bad: every 100th data row gets a status that is not an integer.
  awk -F, 'BEGIN{OFS=","} NR>1 && NR%100==0 {$5="x"} {print}' "$work/good.csv" | gzip -1 >"$work/bad.csv.gz"
}
make_keyed() { # The constrained table's files: a unique id in front; in the bad one every 300th row
  # repeats an earlier id, every 300th (offset 100) names a status with no parent row, every 300th
  # (offset 200) has a negative amount.
  awk -F, 'BEGIN{OFS=","} NR==1 {print "n," $0; next} {print NR-2, $0}' "$work/good.csv" | gzip -1 >"$work/keyed.csv.gz"
  zcat "$work/keyed.csv.gz" | awk -F, 'BEGIN{OFS=","} NR>1 && NR%300==0 {$1=NR-100} NR>1 && NR%300==100 {$6=42}
    NR>1 && NR%300==200 {$7=-1} {print}' | gzip -1 >"$work/keyed-bad.csv.gz"
}
bytes=$(stat -c %s "$work/good.csv")
mb=$(echo "$bytes / 1000000" | bc -l)

psql -X -q "$admin" -c "CREATE DATABASE $db" 2>/dev/null || true
psql -X -q "$base/$db" -c "DROP TABLE IF EXISTS bench_import;
  CREATE TABLE bench_import (id uuid, name text, email text, created_at timestamptz, status smallint,
    amount double precision, active boolean, country text, payload jsonb, note text);
  DROP TABLE IF EXISTS bench_orders; DROP TABLE IF EXISTS bench_statuses;
  CREATE TABLE bench_statuses (id smallint PRIMARY KEY);
  INSERT INTO bench_statuses SELECT generate_series(0, 9);
  CREATE TABLE bench_orders (n bigint PRIMARY KEY, id uuid, name text, email text, created_at timestamptz,
    status smallint REFERENCES bench_statuses (id), amount double precision CHECK (amount >= 0),
    active boolean, country text, payload jsonb, note text);"

start_ferry() { # NAME
  local port
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  mkdir -p "$work/$1"
  printf 'listen = "127.0.0.1:%s"\ndata_dir = "%s"\n[connections.bench]\nurl = "%s"\nallow_sql = true\n' \
    "$port" "$work/$1" "$base/$db" >"$work/$1/ferry.toml"
  FERRY_LOG=warn /usr/bin/time -v -o "$work/$1/time.txt" "$ferry" serve --config "$work/$1/ferry.toml" &
  pid=$!
  url="http://127.0.0.1:$port"
  for _ in $(seq 100); do curl -sf "$url/healthz" >/dev/null && return; sleep 0.1; done
  echo "ferry did not start" >&2; exit 1
}
stop_ferry() { pkill -TERM -P "$pid" || true; wait "$pid" 2>/dev/null || true; pid=""; }
rss() { awk -F': ' '/Maximum resident/ {printf "%.1f", $2/1024}' "$work/$1/time.txt"; }
now() { date +%s.%N; }
truncate_table() { psql -X -q "$base/$db" -c "TRUNCATE ${1:-bench_import}"; }

ferry_import() { # FILE [TABLE] → "upload_s total_s load_s inserted rejected"
  local start up id job table=${2:-bench_import}
  truncate_table "$table"
  start=$(now)
  job=$(curl -sf -w '\n%{time_total}' "$url/v1/imports" \
    -F "spec={\"target\": {\"table\": \"$table\"}, \"max_errors\": 1000000};type=application/json" \
    -F "file=@$1;type=text/csv")
  up=$(echo "$job" | tail -1)
  id=$(echo "$job" | head -1 | jq -r .id)
  job=$(await_import "$url" "$id")
  local total load
  total=$(echo "$(now) - $start" | bc)
  load=$(job_seconds "$job")
  echo "$up $total $load $(echo "$job" | jq -r '.result.rows_inserted') $(echo "$job" | jq -r '.result.rows_rejected')"
}
psql_import() {
  local start
  truncate_table
  start=$(now)
  psql -X -q "$base/$db" -c "\\copy bench_import FROM '$1' WITH (FORMAT csv, HEADER)"
  echo "$(now) - $start" | bc
}

start_ferry big
declare -a fa fb
for run in $(seq "$runs"); do
  log "run $run/$runs"
  fa+=("$(ferry_import "$work/good.csv")")
  count_a=$(psql -X -t -A "$base/$db" -c "SELECT count(*) FROM bench_import")
  fb+=("$(psql_import "$work/good.csv")")
  count_b=$(psql -X -t -A "$base/$db" -c "SELECT count(*) FROM bench_import")
done
log "1% bad rows"
make_bad
bad=$(ferry_import "$work/bad.csv.gz")
rm -f "$work/bad.csv.gz"
head -n $((rows / 5 + 1)) "$work/good.csv" >"$work/small.csv"
make_keyed
rm -f "$work/good.csv"
declare -a kc kd
for run in $(seq "$runs"); do
  log "constrained table, run $run/$runs"
  kc+=("$(ferry_import "$work/keyed.csv.gz" bench_orders)")
  count_k=$(psql -X -t -A "$base/$db" -c "SELECT count(*) || ' rows, ' || count(DISTINCT n) || ' keys' FROM bench_orders")
  kd+=("$(ferry_import "$work/keyed-bad.csv.gz" bench_orders)")
  count_kd=$(psql -X -t -A "$base/$db" -c "SELECT count(*) || ' rows, ' || count(DISTINCT n) || ' keys' FROM bench_orders")
done
stop_ferry

rm -f "$work/keyed.csv.gz" "$work/keyed-bad.csv.gz"
psql -X -q "$base/$db" -c "TRUNCATE bench_orders"
log "peak RSS with $((rows / 5)) rows"
start_ferry small
small=$(ferry_import "$work/small.csv")
stop_ferry

best_ferry=$(printf '%s\n' "${fa[@]}" | sort -k3 -g | head -1)
read -r up total load inserted rejected <<<"$best_ferry"
psql_best=$(printf '%s\n' "${fb[@]}" | sort -g | head -1)
printf '\nimport of %d rows (%.0f MB of CSV, 10 typed columns), best of %d runs\n' "$rows" "$mb" "$runs"
printf 'ferry: upload %.1f s (%.0f MB/s); load %.1f s (%.0f rows/s); end to end %.1f s (%.0f rows/s); count(*) %s of %s rows\n' \
  "$up" "$(echo "$mb / $up" | bc -l)" "$load" "$(echo "$rows / $load" | bc -l)" "$total" "$(echo "$rows / $total" | bc -l)" "$count_a" "$rows"
printf 'psql \\copy: %.1f s (%.0f rows/s); count(*) %s\n' "$psql_best" "$(echo "$rows / $psql_best" | bc -l)" "$count_b"
printf 'ratio of load times ferry/psql = %.2f (end to end, upload included: %.2f)\n' "$(echo "$load / $psql_best" | bc -l)" "$(echo "$total / $psql_best" | bc -l)"
read -r _ btotal bload binserted brejected <<<"$bad"
printf '1%% bad rows: load %.1f s (%.0f rows/s), %s inserted, %s rejected\n' "$bload" "$(echo "$rows / $bload" | bc -l)" "$binserted" "$brejected"
printf 'ferry peak RSS: %s MiB over the %d-row runs; %s MiB for %d rows\n' "$(rss big)" "$rows" "$(rss small)" "$((rows / 5))"
best_kc=$(printf '%s\n' "${kc[@]}" | sort -k3 -g | head -1 | cut -d' ' -f3)
best_kd=$(printf '%s\n' "${kd[@]}" | sort -k3 -g | head -1)
read -r _ _ kload kinserted krejected <<<"$best_kd"
printf 'PK+FK+CHECK table: clean load %.1f s (%s); 1%% violations load %.1f s, %s inserted, %s rejected (%s); ratio dirty/clean = %.2f\n' \
  "$best_kc" "$count_k" "$kload" "$kinserted" "$krejected" "$count_kd" "$(echo "$kload / $best_kc" | bc -l)"
printf 'constrained runs: clean %s | dirty %s\n' "$(printf '[%s] ' "${kc[@]}")" "$(printf '[%s] ' "${kd[@]}")"
printf 'all runs: ferry [upload total load inserted rejected] %s | psql %s\n' "$(printf '[%s] ' "${fa[@]}")" "${fb[*]}"
