-- Single-use links mailed to an account: email verification and password reset
-- (src/accounts/token.rs). Only the token's BLAKE3 is stored, so a copy of the database opens
-- no link; a token is spent by setting `used_at`, and a new one of the same purpose retires the
-- user's unspent ones, so at most one link per purpose works at a time.
CREATE TABLE account_tokens (
    -- Lowercase hex BLAKE3 of the token the link carries.
    token_hash  TEXT PRIMARY KEY CHECK (length(token_hash) = 64),
    user_id     TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    purpose     TEXT NOT NULL CHECK (purpose IN ('verify', 'reset')),
    -- Milliseconds since the epoch (tests make lifetimes short).
    created_at  BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL,
    used_at     BIGINT
);
-- The newest link of a user and purpose (the resend limit), and the retiring of older ones.
CREATE INDEX account_tokens_by_user ON account_tokens (user_id, purpose, created_at);

-- When a reset last set the password (seconds since the epoch). An access token (a JWT, which
-- cannot be revoked) issued before then is refused, so a reset signs the API out too.
ALTER TABLE users ADD COLUMN password_changed_at INTEGER;
