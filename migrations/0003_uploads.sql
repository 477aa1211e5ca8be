-- Resumable (multipart) uploads of imports waiting for their file: one row per upload in
-- progress, so that any Ferry process can list, sign, complete or abort it. `upload_id` is the
-- S3 multipart upload id (NULL on the local store, where the parts are Ferry's own objects).
CREATE TABLE ferry_uploads (
    job_id     TEXT PRIMARY KEY,
    tenant     TEXT NOT NULL,
    object_key TEXT NOT NULL,
    upload_id  TEXT,
    size       BIGINT NOT NULL,
    part_size  BIGINT NOT NULL,
    created_at BIGINT NOT NULL
);
-- The sweeper looks for the oldest.
CREATE INDEX ferry_uploads_by_age ON ferry_uploads (created_at);
