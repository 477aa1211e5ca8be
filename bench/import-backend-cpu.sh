#!/usr/bin/env bash
# Where one load's time goes: the same 1,000,000-row file into the same table by Ferry (binary
# COPY) and by `psql \copy` (text CSV COPY), RUNS times each, alternating. For each load it prints
# the COPY backend's CPU seconds (utime+stime, /proc), the wall-clock from the load's first
# statement to its commit, Ferry's own CPU seconds over the load (its busiest threads too), and
# what the backend was doing, sampled every 10 ms from pg_stat_activity: on CPU, waiting for the
# client (`Client:ClientRead`: the client is the bottleneck), or waiting for the disk
# (`IO:WALWrite`, `IO:WALSync`, `IO:DataFileExtend`, ...). Wall-clock ratios on a shared machine
# hide what binary COPY changes; this counts it. Each load starts after a CHECKPOINT.
# Needs bench/import.sh's database (ferry_bench, table bench_import): run that once first.
# Usage: bench/import-backend-cpu.sh [ROWS] [RUNS]     (defaults: 1000000 rows, 2 runs)
set -u
cd "$(dirname "${BASH_SOURCE[0]}")/.."
rows=${1:-1000000}
runs=${2:-2}
eval "$(scripts/postgres)"
base=${FERRY_TEST_DATABASE_URL%/*}; db=ferry_bench
cargo build --release --quiet
ferry=${CARGO_TARGET_DIR:-target}/release/ferry
work=$(mktemp -d "${TMPDIR:-/tmp}/ferry-cpu-bench.XXXXXX")
trap 'kill $pid 2>/dev/null; wait 2>/dev/null; rm -rf "$work"' EXIT
"$ferry" generate --rows "$rows" --seed 7 --columns-file bench/columns.json --format csv -o "$work/f.csv" 2>/dev/null
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
printf 'listen = "127.0.0.1:%s"\ndata_dir = "%s"\n[connections.bench]\nurl = "%s"\n' "$port" "$work/d" "$base/$db" >"$work/ferry.toml"
FERRY_LOG=error "$ferry" serve --config "$work/ferry.toml" & pid=$!
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$port/healthz" >/dev/null && break; sleep 0.1; done

# Samples the first backend seen running a COPY into bench_import until its transaction ends;
# prints the backend's pid, then each sample's state (a wait event, CPU, or `Client:between
# statements` when the transaction is idle between two statements).
sample_backend() {
  psql -X -q -t -A "$base/$db" -c "
  DO \$\$
  DECLARE target int; r record; started timestamptz; ended timestamptz;
  BEGIN
    CREATE TEMP TABLE samples (w text);
    FOR i IN 1..30000 LOOP
      PERFORM pg_stat_clear_snapshot();
      IF target IS NULL THEN
        SELECT pid INTO target FROM pg_stat_activity
         WHERE datname = current_database() AND pid <> pg_backend_pid()
           AND query ILIKE 'COPY %bench_import%' AND state = 'active' LIMIT 1;
        started := clock_timestamp();
      ELSE
        SELECT CASE WHEN state = 'idle in transaction' THEN 'Client:between statements'
                    ELSE coalesce(wait_event_type || ':' || wait_event, 'CPU') END AS w, state
          INTO r FROM pg_stat_activity WHERE pid = target;
        EXIT WHEN NOT FOUND OR r.state = 'idle';
        INSERT INTO samples VALUES (r.w);
      END IF;
      PERFORM pg_sleep(0.01);
    END LOOP;
    ended := clock_timestamp();
    RAISE NOTICE 'pid %', target;
    RAISE NOTICE 'samples %', (SELECT count(*) FROM samples);
    RAISE NOTICE 'wall % s', round(extract(epoch FROM ended - started)::numeric, 2);
    FOR r IN SELECT w, count(*) AS c, round(100.0 * count(*) / sum(count(*)) OVER (), 1) AS p
               FROM samples GROUP BY w ORDER BY 2 DESC LOOP
      RAISE NOTICE '  % % %%', rpad(r.w, 28), lpad(r.p::text, 5);
    END LOOP;
  END \$\$;" 2>&1 | sed 's/^NOTICE:  //'
}
# The COPY backend's CPU seconds, read every 20 ms from the moment it runs a COPY until it is gone
# (a psql load's closes with it) or the load is over (Ferry's stays in its pool).
backend_cpu() {
  local b="" last=0
  for _ in $(seq 3000); do b=$(pgrep -f "^postgres: .*$db.*COPY" | head -1); [ -n "$b" ] && break; sleep 0.01; done
  while [ -r "/proc/$b/stat" ] && [ ! -e "$work/done" ]; do
    last=$(awk '{print ($14+$15)/100}' "/proc/$b/stat" 2>/dev/null || echo "$last"); sleep 0.02
  done
  echo "$last"
}
# Ferry's threads' CPU ticks: "tid ticks" per line.
ferry_ticks() { for t in /proc/$pid/task/*/stat; do awk '{print $1, $14+$15}' "$t" 2>/dev/null; done; }
# The CPU seconds of Ferry's threads between two ferry_ticks readings: the total, then the two busiest.
ferry_cpu() { # BEFORE AFTER
  join -a2 -e 0 -o 0,1.2,2.2 <(sort "$1") <(sort "$2") | awk '{print ($3-$2)/100}' | sort -rn |
    awk '{t+=$1; if (NR<=2) top=top sprintf(" %.2f", $1)} END {printf "%.2f s (busiest threads:%s)\n", t, top}'
}
# One load: LABEL and a command that runs it to the end.
measure() {
  local label=$1; shift
  psql -X -q "$base/$db" -c "TRUNCATE bench_import" -c "CHECKPOINT"
  rm -f "$work/done"
  sample_backend >"$work/samples" & local s=$!
  backend_cpu >"$work/cpu" & local c=$!
  # Ferry's CPU from the moment the load's COPY starts (not counting the upload before it).
  (for _ in $(seq 3000); do pgrep -f "^postgres: .*$db.*COPY" >/dev/null && break; sleep 0.01; done
   ferry_ticks >"$work/t0") & local t=$!
  "$@"
  wait $s $t
  ferry_ticks >"$work/t1"
  touch "$work/done"; wait $c
  echo "== $label"
  grep -v '^pid' "$work/samples"
  echo "backend CPU: $(cat "$work/cpu") s"
  echo "ferry CPU: $(ferry_cpu "$work/t0" "$work/t1")"
}
ferry_load() {
  local id
  id=$(curl -sf "http://127.0.0.1:$port/v1/imports" -F 'spec={"target": {"table": "bench_import"}};type=application/json' \
    -F "file=@$work/f.csv;type=text/csv" | jq -r .id)
  # shellcheck source=bench/imports.sh
  source bench/imports.sh
  await_import "http://127.0.0.1:$port" "$id" >/dev/null
}
psql_load() { psql -X -q "$base/$db" -c "\\copy bench_import FROM '$work/f.csv' WITH (FORMAT csv, HEADER)"; }
for _ in $(seq "$runs"); do
  measure "ferry (binary COPY), $rows rows" ferry_load
  measure "psql \\copy (text COPY), $rows rows" psql_load
done
