#!/usr/bin/env bash
# Where a dirty load's time goes: the PK+FK+CHECK table of bench/import.sh (bench_orders), loaded
# by a fresh release `ferry serve` from an uncompressed file clean, then from the same file with
# 1% of rows breaking a constraint, with `log_min_duration_statement = 0` on the dirty load only.
# Prints both load times, their ratio, and the dirty load's statements summed by kind (the COPY
# of the good rows, the narrow COPY into ferry_keys, each kind of set query).
# Reads the server's log file: PGLOG, default the Debian cluster's /var/log/postgresql/postgresql-15-main.log.
# Usage: bench/import-statements.sh [ROWS]     (default 1000000)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
# shellcheck source=bench/imports.sh
source bench/imports.sh
rows=${1:-1000000}
pglog=${PGLOG:-/var/log/postgresql/postgresql-15-main.log}
eval "$(scripts/postgres)"
base=${FERRY_TEST_DATABASE_URL%/*}
db=ferry_statements
cargo build --release --quiet
ferry=${CARGO_TARGET_DIR:-target}/release/ferry
work=$(mktemp -d "${TMPDIR:-/tmp}/ferry-statements.XXXXXX")
pid=""
trap '[[ -n $pid ]] && kill $pid 2>/dev/null; wait 2>/dev/null; rm -rf "$work"
  psql -X -q "$base/postgres" -c "ALTER DATABASE $db RESET log_min_duration_statement" 2>/dev/null' EXIT

"$ferry" generate --rows "$rows" --seed 7 --columns-file bench/columns.json --format csv -o "$work/good.csv" 2>/dev/null
# The same files as bench/import.sh's constrained table, not gzipped.
awk -F, 'BEGIN{OFS=","} NR==1 {print "n," $0; next} {print NR-2, $0}' "$work/good.csv" >"$work/keyed.csv"
rm -f "$work/good.csv"
awk -F, 'BEGIN{OFS=","} NR>1 && NR%300==0 {$1=NR-100} NR>1 && NR%300==100 {$6=42}
  NR>1 && NR%300==200 {$7=-1} {print}' "$work/keyed.csv" >"$work/keyed-bad.csv"

psql -X -q "$base/postgres" -c "DROP DATABASE IF EXISTS $db" -c "CREATE DATABASE $db"
psql -X -q "$base/$db" -c "CREATE TABLE bench_statuses (id smallint PRIMARY KEY);
  INSERT INTO bench_statuses SELECT generate_series(0, 9);
  CREATE TABLE bench_orders (n bigint PRIMARY KEY, id uuid, name text, email text, created_at timestamptz,
    status smallint REFERENCES bench_statuses (id), amount double precision CHECK (amount >= 0),
    active boolean, country text, payload jsonb, note text);"

start_ferry() { # a fresh server: its connections pick up the database's settings
  [[ -n $pid ]] && { kill "$pid"; wait "$pid" 2>/dev/null || true; }
  local port
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  mkdir -p "$work/data"
  printf 'listen = "127.0.0.1:%s"\ndata_dir = "%s"\n[connections.bench]\nurl = "%s"\n' \
    "$port" "$work/data" "$base/$db" >"$work/ferry.toml"
  FERRY_LOG=warn "$ferry" serve --config "$work/ferry.toml" &
  pid=$!
  url="http://127.0.0.1:$port"
  for _ in $(seq 100); do curl -sf "$url/healthz" >/dev/null && return; sleep 0.1; done
  echo "ferry did not start" >&2; exit 1
}
load() { # FILE → seconds the job ran
  psql -X -q "$base/$db" -c "TRUNCATE bench_orders"
  local id job
  id=$(curl -sf "$url/v1/imports" \
    -F 'spec={"target": {"table": "bench_orders"}, "max_errors": 1000000};type=application/json' \
    -F "file=@$1;type=text/csv" | jq -r .id)
  job=$(await_import "$url" "$id")
  job_seconds "$job"
}

start_ferry
clean=$(load "$work/keyed.csv")
psql -X -q "$base/postgres" -c "ALTER DATABASE $db SET log_min_duration_statement = 0"
start_ferry
from=$(($(wc -l <"$pglog") + 1))
dirty=$(load "$work/keyed-bad.csv")
psql -X -q "$base/postgres" -c "ALTER DATABASE $db RESET log_min_duration_statement"
tail -n +"$from" "$pglog" >"$work/statements.log"

printf '%d rows into bench_orders: clean %.1f s, 1%% violations %.1f s, dirty/clean %.2f\n' \
  "$rows" "$clean" "$dirty" "$(echo "$dirty / $clean" | bc -l)"
python3 - "$work/statements.log" "$db" <<'PY'
import collections, re, sys
text = open(sys.argv[1]).read()
total, count = collections.defaultdict(float), collections.Counter()
for entry in re.split(r"\n(?=\d{4}-\d\d-\d\d )", text):
    m = re.search(r"@" + sys.argv[2] + r" LOG:  duration: ([\d.]+) ms\s+(?:statement|execute [^:]*): (.*)", entry, re.S)
    if not m:
        continue
    ms, sql = float(m.group(1)), m.group(2)
    if sql.startswith("COPY ferry_keys"): kind = "narrow COPY into ferry_keys"
    elif sql.startswith("COPY"): kind = "COPY into the table"
    elif "row_number()" in sql: kind = "duplicates within the file"
    elif "already exists" in sql: kind = "key already in the table"
    elif "INSERT INTO ferry_bad" in sql: kind = "NOT NULL, CHECK, FOREIGN KEY"
    else: kind = "the rest"
    total[kind] += ms
    count[kind] += 1
print("dirty load, statements by kind:")
for kind, ms in sorted(total.items(), key=lambda kv: -kv[1]):
    print(f"  {ms / 1000:7.2f} s  {count[kind]:5d}  {kind}")
print(f"  {sum(total.values()) / 1000:7.2f} s         all")
PY
