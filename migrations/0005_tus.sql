-- Resumable (tus 1.0) uploads in progress. The bytes live in <data_dir>/tus/<id>; `received`
-- is how many of them are durable, so an upload survives a restart and resumes from there.
CREATE TABLE tus_uploads (
    id          TEXT PRIMARY KEY CHECK (length(id) BETWEEN 8 AND 32),
    length      BIGINT NOT NULL CHECK (length >= 0),
    received    BIGINT NOT NULL DEFAULT 0 CHECK (received >= 0 AND received <= length),
    -- The client's Upload-Metadata header as sent (validated on creation).
    metadata    TEXT NOT NULL DEFAULT '',
    created_at  BIGINT NOT NULL,
    -- Milliseconds since the epoch (expiries can be short in tests).
    expires_at  BIGINT NOT NULL
);
CREATE INDEX tus_uploads_by_expiry ON tus_uploads (expires_at);
