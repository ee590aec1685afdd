-- Mail waiting to be sent (src/mail/). A row is written in the same transaction as the event
-- that causes it (a sign-up, a password reset), so there is never mail without the event or an
-- event whose mail is lost; one sender task delivers rows and retries failures with backoff.
CREATE TABLE outbox (
    id               TEXT PRIMARY KEY CHECK (length(id) BETWEEN 8 AND 32),
    -- What the mail is for (`verify_email`, `password_reset`, …), for logs and metrics.
    kind             TEXT NOT NULL CHECK (length(kind) BETWEEN 1 AND 64),
    to_addr          TEXT NOT NULL CHECK (length(to_addr) BETWEEN 3 AND 320),
    subject          TEXT NOT NULL CHECK (length(subject) <= 998),
    body_text        TEXT NOT NULL,
    created_at       BIGINT NOT NULL,
    attempts         INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    -- Milliseconds since the epoch (retries can be short in tests).
    next_attempt_at  BIGINT NOT NULL,
    sent_at          BIGINT,
    last_error       TEXT
);
-- What the sender asks for: unsent rows in the order they are due.
CREATE INDEX outbox_due ON outbox (next_attempt_at) WHERE sent_at IS NULL;
