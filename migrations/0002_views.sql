-- View counting: counted views, and every viewing session's outcome for retention statistics.

CREATE TABLE views (
    id          INTEGER PRIMARY KEY,                      -- dialect: BIGSERIAL on PostgreSQL
    video_id    TEXT NOT NULL REFERENCES videos (file_id) ON DELETE CASCADE,
    -- HMAC of the viewer's cookie or network prefix + user agent; never a raw IP.
    viewer      TEXT NOT NULL CHECK (length(viewer) = 32),
    counted_at  BIGINT NOT NULL
);
-- Unique viewers per video: COUNT(DISTINCT viewer) reads this index only.
CREATE INDEX views_by_video ON views (video_id, viewer);

CREATE TABLE view_sessions (
    id          INTEGER PRIMARY KEY,                      -- dialect: BIGSERIAL on PostgreSQL
    video_id    TEXT NOT NULL REFERENCES videos (file_id) ON DELETE CASCADE,
    viewer      TEXT NOT NULL CHECK (length(viewer) = 32),
    started_at  BIGINT NOT NULL,
    ended_at    BIGINT NOT NULL CHECK (ended_at >= started_at),
    reason      TEXT NOT NULL CHECK (reason IN
                    ('probe', 'head', 'too_fast', 'below_threshold', 'counted', 'deduplicated')),
    -- Bit i set: checkpoint i was delivered to this viewer.
    reached     BIGINT NOT NULL CHECK (reached >= 0),
    covered_ms  BIGINT NOT NULL CHECK (covered_ms >= 0)
);
CREATE INDEX view_sessions_by_video ON view_sessions (video_id, ended_at DESC);
