-- Uploaded images: the stored master (orientation applied, metadata stripped) and its size.
CREATE TABLE images (
    id          TEXT PRIMARY KEY CHECK (length(id) BETWEEN 8 AND 32),
    width       INTEGER NOT NULL CHECK (width > 0),
    height      INTEGER NOT NULL CHECK (height > 0),
    -- The format the upload arrived in (sniffed), and the master's type on disk.
    source      TEXT NOT NULL CHECK (source IN ('jpeg', 'png', 'webp', 'gif')),
    master      TEXT NOT NULL CHECK (master IN ('jpg', 'png')),
    bytes       BIGINT NOT NULL CHECK (bytes > 0),
    created_at  BIGINT NOT NULL
);
