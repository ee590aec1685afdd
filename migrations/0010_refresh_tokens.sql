-- Refresh tokens of the API (src/auth/refresh.rs). Only a token's SHA-256 is stored, so a copy
-- of the database renews nothing. Each use rotates the token: the old row gets `used_at`, a new
-- row joins the same family; using a token a second time revokes its whole family.
CREATE TABLE refresh_tokens (
    id          TEXT PRIMARY KEY CHECK (length(id) BETWEEN 8 AND 32),
    family_id   TEXT NOT NULL CHECK (length(family_id) BETWEEN 8 AND 32),
    -- No foreign key yet: the users table arrives with the accounts work; the key (ON DELETE
    -- CASCADE) is added with it.
    user_id     TEXT NOT NULL CHECK (length(user_id) BETWEEN 1 AND 64),
    -- Lowercase hex SHA-256 of the token.
    token_hash  TEXT NOT NULL UNIQUE CHECK (length(token_hash) = 64),
    created_at  BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL,
    used_at     BIGINT,
    revoked_at  BIGINT
);
CREATE INDEX refresh_tokens_by_family ON refresh_tokens (family_id);
