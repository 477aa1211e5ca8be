#!/usr/bin/env bash
# Export benchmark: ROWS rows (~200 bytes each) from PostgreSQL, alternating in one run
#   csv.gz:  (a) Ferry → local file store, (b) Ferry → S3-compatible store (SeaweedFS),
#            (c) psql \copy (…) TO STDOUT (FORMAT csv, HEADER) | gzip -1 > file;
#   parquet: (d) Ferry → local store, (e) psql \copy … | duckdb -c "COPY (FROM
#            read_csv('/dev/stdin')) TO 'out.parquet' (FORMAT parquet, COMPRESSION zstd)";
#   xlsx:    (f) Ferry, 100,000 rows and (g) 1,000,000 rows (each on its own server, for RSS);
#   zip:     (h) Ferry, a bundle of three files (csv, parquet, xlsx).
# Prints wall times, rows/s, MB/s (of uncompressed CSV), the ratios (a)/(c), (b)/(c), (d)/(e),
# the files' sizes, and Ferry's peak RSS (/usr/bin/time -v over each server's whole run; every
# variant has a server of its own).
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
xlsx_big=$((rows < 1000000 ? rows : 1000000))
xlsx_small=$((xlsx_big / 10))

if ! command -v duckdb >/dev/null; then
  log "installing the DuckDB CLI (PyPI duckdb-cli)"
  PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_ROOT_USER_ACTION=ignore python3 -m pip install --quiet duckdb-cli==1.5.6
fi

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
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
port_a=$(free_port); port_b=$(free_port); port_d=$(free_port)
port_f=$(free_port); port_g=$(free_port); port_h=$(free_port)
start_ferry local "$port_a" "url = \"file://$work/local/files\""
start_ferry parquet "$port_d" "url = \"file://$work/parquet/files\""
start_ferry xlsx_small "$port_f" "url = \"file://$work/xlsx_small/files\""
start_ferry xlsx_big "$port_g" "url = \"file://$work/xlsx_big/files\""
start_ferry bundle "$port_h" "url = \"file://$work/bundle/files\""
start_ferry s3 "$port_b" "url = \"s3://$FERRY_TEST_S3_BUCKET/bench\"" "endpoint = \"$FERRY_TEST_S3_ENDPOINT\"" \
  "access_key_id = \"$FERRY_TEST_S3_ACCESS_KEY_ID\"" "secret_access_key = \"$FERRY_TEST_S3_SECRET_ACCESS_KEY\""

now() { date +%s.%N; }
sql_source() { # QUERY → the JSON of an sql source
  printf '{"type":"sql","connection":"bench","query":"%s"}' "$1"
}
ferry_run() { # PORT BODY → prints "seconds size_bytes"
  local port=$1 body=$2 start id job state
  start=$(now)
  id=$(curl -sf "http://127.0.0.1:$port/v1/exports" -H 'content-type: application/json' -d "$body" | jq -r .id)
  while :; do
    job=$(curl -sf "http://127.0.0.1:$port/v1/exports/$id")
    state=$(jq -r .state <<<"$job")
    case $state in succeeded) break ;; failed|cancelled) echo "export $state: $job" >&2; exit 1 ;; esac
    sleep 0.05
  done
  echo "$(echo "$(now) - $start" | bc) $(jq -r .result.file.size_bytes <<<"$job")"
}
ferry_export() { # PORT FORMAT [QUERY] → prints "seconds size_bytes"
  ferry_run "$1" "{\"source\":$(sql_source "${3:-$query}"),\"format\":\"$2\"}"
}
ferry_bundle() { # PORT → prints "seconds size_bytes"
  ferry_run "$1" "{\"format\":\"zip\",\"files\":[
    {\"name\":\"rows\",\"format\":\"csv\",\"source\":$(sql_source "$query LIMIT $xlsx_big")},
    {\"name\":\"all\",\"format\":\"parquet\",\"source\":$(sql_source "$query")},
    {\"name\":\"sample\",\"format\":\"xlsx\",\"source\":$(sql_source "$query LIMIT $xlsx_small")}]}"
}
psql_export() { # → prints "seconds size_bytes"
  local start
  start=$(now)
  psql -X -q "$base/$db" -c "\\copy ($query) TO STDOUT WITH (FORMAT csv, HEADER)" | gzip -1 >"$work/psql.csv.gz"
  echo "$(echo "$(now) - $start" | bc) $(stat -c %s "$work/psql.csv.gz")"
}
duckdb_export() { # → prints "seconds size_bytes"
  local start
  rm -f "$work/duck.parquet"
  start=$(now)
  psql -X -q "$base/$db" -c "\\copy ($query) TO STDOUT WITH (FORMAT csv, HEADER)" |
    duckdb -c "COPY (FROM read_csv('/dev/stdin')) TO '$work/duck.parquet' (FORMAT parquet, COMPRESSION zstd)"
  echo "$(echo "$(now) - $start" | bc) $(stat -c %s "$work/duck.parquet")"
}
csv_bytes=$(psql -X -q "$base/$db" -c "\\copy ($query) TO STDOUT WITH (FORMAT csv, HEADER)" | wc -c)

declare -a ta tb tc td te tf tg th
declare -A size
record() { # ARRAY-NAME VARIANT "seconds size" → appends the seconds, keeps the size
  local -n times=$1
  times+=("${3% *}")
  size[$2]=${3#* }
}
for run in $(seq "$runs"); do
  log "run $run/$runs"
  record ta a "$(ferry_export "$port_a" csv.gz)"
  record tb b "$(ferry_export "$port_b" csv.gz)"
  record tc c "$(psql_export)"
  record td d "$(ferry_export "$port_d" parquet)"
  record te e "$(duckdb_export)"
  record tf f "$(ferry_export "$port_f" xlsx "$query LIMIT $xlsx_small")"
  record tg g "$(ferry_export "$port_g" xlsx "$query LIMIT $xlsx_big")"
  record th h "$(ferry_bundle "$port_h")"
done
# $pids are /usr/bin/time processes: stop their ferry children so that time writes its report.
for pid in "${pids[@]}"; do pkill -TERM -P "$pid" || true; done
wait "${pids[@]}" 2>/dev/null || true
pids=()

best() { printf '%s\n' "$@" | sort -g | head -1; }
rss() { awk -F': ' '/Maximum resident/ {printf "%.1f", $2/1024}' "$work/$1/time.txt"; }
mb=$(echo "$csv_bytes / 1000000" | bc -l)
line() { # LABEL ROWS SECONDS SIZE
  printf '%-34s %9.2f %12.0f %9.1f %10.1f\n' "$1" "$3" "$(echo "$2 / $3" | bc -l)" \
    "$(echo "$mb * $2 / $rows / $3" | bc -l)" "$(echo "$4 / 1000000" | bc -l)"
}
a=$(best "${ta[@]}"); b=$(best "${tb[@]}"); c=$(best "${tc[@]}"); d=$(best "${td[@]}")
e=$(best "${te[@]}"); f=$(best "${tf[@]}"); g=$(best "${tg[@]}"); h=$(best "${th[@]}")
printf '\nexport of %d rows (%.0f MB of CSV), best of %d runs\n' "$rows" "$mb" "$runs"
printf '%-34s %9s %12s %9s %10s\n' variant seconds rows/s MB/s "file MB"
line "a ferry csv.gz -> local store" "$rows" "$a" "${size[a]}"
line "b ferry csv.gz -> S3 (SeaweedFS)" "$rows" "$b" "${size[b]}"
line "c psql copy | gzip -1" "$rows" "$c" "${size[c]}"
line "d ferry parquet -> local store" "$rows" "$d" "${size[d]}"
line "e psql copy | duckdb parquet" "$rows" "$e" "${size[e]}"
line "f ferry xlsx ($xlsx_small rows)" "$xlsx_small" "$f" "${size[f]}"
line "g ferry xlsx ($xlsx_big rows)" "$xlsx_big" "$g" "${size[g]}"
line "h ferry zip (csv+parquet+xlsx)" "$((rows + xlsx_big + xlsx_small))" "$h" "${size[h]}"
printf 'csv.gz ratio (a)/(c) = %.2f   (b)/(c) = %.2f   size ferry/gzip -1 = %.3f (%s vs %s bytes)\n' \
  "$(echo "$a / $c" | bc -l)" "$(echo "$b / $c" | bc -l)" "$(echo "${size[a]} / ${size[c]}" | bc -l)" "${size[a]}" "${size[c]}"
printf 'parquet ratio (d)/(e) = %.2f   size ferry/duckdb = %.3f\n' "$(echo "$d / $e" | bc -l)" \
  "$(echo "${size[d]} / ${size[e]}" | bc -l)"
printf 'ferry peak RSS (MiB): csv.gz local %s, s3 %s; parquet %s; xlsx %s rows %s, %s rows %s; zip %s\n' \
  "$(rss local)" "$(rss s3)" "$(rss parquet)" "$xlsx_small" "$(rss xlsx_small)" "$xlsx_big" "$(rss xlsx_big)" "$(rss bundle)"
printf 'all runs (s): a=%s b=%s c=%s d=%s e=%s f=%s g=%s h=%s\n' "${ta[*]}" "${tb[*]}" "${tc[*]}" \
  "${td[*]}" "${te[*]}" "${tf[*]}" "${tg[*]}" "${th[*]}"
