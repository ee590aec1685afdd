-- Uploads are deduplicated by content: the same bytes are stored once.
CREATE INDEX files_by_hash ON files (hash);
