# Sourced by the import benchmarks: waiting for an import job and timing it.

# await_import URL ID: polls the job until it succeeds and prints its JSON; exits the script
# if the job failed, was cancelled, or ID is not a job (the upload was refused).
await_import() {
  local job state
  [[ -n $2 && $2 != null ]] || { echo "the import was not accepted" >&2; exit 1; }
  while :; do
    job=$(curl -sf "$1/v1/imports/$2")
    state=$(echo "$job" | jq -r .state)
    case $state in succeeded) break ;; failed|cancelled) echo "import $state: $job" >&2; exit 1 ;; esac
    sleep 0.1
  done
  echo "$job"
}

# job_seconds JOB_JSON: how long the job ran (finished_at - started_at, milliseconds kept).
job_seconds() {
  echo "$1" | jq -r 'def t: (sub("\\.[0-9]+";"")|fromdate) + ((capture("\\.(?<f>[0-9]+)")|"0."+.f|tonumber)? // 0);
    (.finished_at|t) - (.started_at|t)'
}
