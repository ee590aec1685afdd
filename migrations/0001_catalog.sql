-- The media catalog: every file under the media roots, and what is inside the videos.
-- Written in SQL that SQLite and PostgreSQL both accept where they can; the dialect-specific
-- parts (JSON checks) are marked.

CREATE TABLE files (
    -- Short stable id: derived from the root and the relative path (see library::scan).
    id          TEXT PRIMARY KEY CHECK (length(id) BETWEEN 8 AND 32),
    -- The media root as configured, and the '/'-separated path inside it.
    root        TEXT NOT NULL CHECK (root <> ''),
    path        TEXT NOT NULL CHECK (path <> '' AND substr(path, 1, 1) <> '/'),
    size        BIGINT NOT NULL CHECK (size >= 0),
    -- Modification time in nanoseconds since the epoch: with size, the key of the hash cache.
    mtime_ns    BIGINT NOT NULL,
    -- BLAKE3 of the content, hex: the strong ETag.
    hash        TEXT NOT NULL CHECK (length(hash) = 64),
    mime        TEXT NOT NULL CHECK (mime LIKE '%/%'),
    scanned_at  BIGINT NOT NULL,
    UNIQUE (root, path)
);

CREATE TABLE videos (
    file_id      TEXT PRIMARY KEY REFERENCES files (id) ON DELETE CASCADE,
    title        TEXT NOT NULL CHECK (length(title) BETWEEN 1 AND 300),
    container    TEXT NOT NULL CHECK (container IN ('mp4', 'webm', 'unknown')),
    duration_ms  BIGINT CHECK (duration_ms >= 0),
    width        INTEGER CHECK (width > 0),
    height       INTEGER CHECK (height > 0),
    video_codec  TEXT,
    audio_codec  TEXT,
    -- Whether playback can start before the end of the file is fetched (MP4: moov before mdat).
    faststart    BOOLEAN NOT NULL,
    -- Why the container could not be read; the file stays servable.
    parse_error  TEXT,
    -- [[byte, ms], …] sorted by byte: seeks and view checkpoints map through it.
    time_index   TEXT NOT NULL DEFAULT '[]' CHECK (json_valid(time_index)),        -- dialect: json_valid
    -- Free-form metadata, always a JSON object.
    metadata     TEXT NOT NULL DEFAULT '{}' CHECK (json_type(metadata) = 'object'), -- dialect: json_type
    view_count   BIGINT NOT NULL DEFAULT 0 CHECK (view_count >= 0),
    created_at   BIGINT NOT NULL
);

-- The catalog page lists newest first; this index serves the ORDER BY without a sort.
CREATE INDEX videos_by_created ON videos (created_at DESC, file_id);
