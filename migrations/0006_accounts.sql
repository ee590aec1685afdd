-- People and their server-side sessions; uploads get an owner column that part 2 of the
-- accounts work fills (media found in the media roots stays owned by no one).

CREATE TABLE users (
    id                 TEXT PRIMARY KEY CHECK (length(id) BETWEEN 8 AND 32),
    -- NOCASE: Alice@Example.org and alice@example.org are one account.
    email              TEXT NOT NULL UNIQUE COLLATE NOCASE CHECK (length(email) BETWEEN 3 AND 254),
    display_name       TEXT NOT NULL CHECK (length(display_name) BETWEEN 1 AND 100),
    -- A PHC string ($argon2id$v=19$m=…,t=…,p=…$salt$hash): the parameters travel with the hash,
    -- so a change of parameters is noticed at the next sign-in and the hash redone.
    password_hash      TEXT NOT NULL CHECK (password_hash LIKE '$argon2%'),
    role               TEXT NOT NULL CHECK (role IN ('admin', 'uploader', 'viewer')),
    email_verified_at  INTEGER,
    created_at         INTEGER NOT NULL
);

-- Server-side sessions behind tower-sessions' SessionStore. The key is the BLAKE3 hash of the
-- cookie's id, so a copy of the database holds no cookie that would sign anyone in.
CREATE TABLE sessions (
    id_hash     TEXT PRIMARY KEY CHECK (length(id_hash) = 64),
    -- The session's key/value map as a JSON object (user id, CSRF token, flash message).
    data        TEXT NOT NULL CHECK (json_type(data) = 'object'),   -- dialect: json_type
    expires_at  INTEGER NOT NULL
);
-- The sweep of expired sessions walks this index instead of the table.
CREATE INDEX sessions_by_expiry ON sessions (expires_at);

ALTER TABLE videos ADD COLUMN owner_id TEXT NULL REFERENCES users (id);
ALTER TABLE images ADD COLUMN owner_id TEXT NULL REFERENCES users (id);
