-- Ferry's durable queue: one row per job, one row per event of a job.
-- Timestamps are milliseconds since the Unix epoch (UTC) and ids are text, so that one set of
-- statements serves PostgreSQL and SQLite alike.
CREATE TABLE ferry_jobs (
    id               TEXT PRIMARY KEY,
    kind             TEXT NOT NULL,
    tenant           TEXT NOT NULL,
    owner            TEXT NOT NULL,
    name             TEXT NOT NULL,
    state            TEXT NOT NULL,
    spec             TEXT NOT NULL,
    share_with       TEXT NOT NULL DEFAULT '[]',
    progress         TEXT NOT NULL DEFAULT '{}',
    result           TEXT,
    error            TEXT,
    -- Private to the job's handler: what a later attempt needs (an upload to abort, a resume point).
    checkpoint       TEXT,
    attempt          BIGINT NOT NULL DEFAULT 0,
    max_attempts     BIGINT NOT NULL,
    timeout_ms       BIGINT NOT NULL,
    run_at           BIGINT NOT NULL,
    lease_owner      TEXT,
    lease_expires_at BIGINT,
    cancel_requested BIGINT NOT NULL DEFAULT 0,
    idempotency_key  TEXT,
    request_hash     TEXT,
    event_seq        BIGINT NOT NULL DEFAULT 0,
    created_at       BIGINT NOT NULL,
    started_at       BIGINT,
    finished_at      BIGINT,
    expires_at       BIGINT
);

-- The claim: the oldest ready job.
CREATE INDEX ferry_jobs_ready ON ferry_jobs (state, run_at);
-- Listing a tenant's jobs newest first.
CREATE INDEX ferry_jobs_by_tenant ON ferry_jobs (tenant, kind, id);
-- One job per idempotency key and tenant.
CREATE UNIQUE INDEX ferry_jobs_idempotency ON ferry_jobs (tenant, kind, idempotency_key)
    WHERE idempotency_key IS NOT NULL;

CREATE TABLE ferry_job_events (
    job_id     TEXT NOT NULL,
    seq        BIGINT NOT NULL,
    event      TEXT NOT NULL,
    data       TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (job_id, seq)
);
