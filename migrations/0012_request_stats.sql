-- Request statistics (README "Statistics"): the access log's per-minute aggregate, and its
-- hourly roll-up. Latency is a histogram: lat0..lat11 count responses whose time to last byte
-- was at most 1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 10000 ms, and above (lat11), so
-- percentiles can be taken over any span by summing buckets (percentiles themselves do not add).

CREATE TABLE request_stats_minute (
    minute    BIGINT NOT NULL,                 -- start of the minute, seconds since the epoch
    route     TEXT NOT NULL,                   -- the route template, e.g. /stream/{id}
    status    TEXT NOT NULL CHECK (status IN ('1xx', '2xx', '3xx', '4xx', '5xx')),
    protocol  TEXT NOT NULL CHECK (protocol IN ('http/1.1', 'h2', 'h3')),
    requests  BIGINT NOT NULL CHECK (requests >= 0),
    bytes     BIGINT NOT NULL CHECK (bytes >= 0),
    views     BIGINT NOT NULL CHECK (views >= 0),
    lat0 BIGINT NOT NULL, lat1 BIGINT NOT NULL, lat2 BIGINT NOT NULL, lat3 BIGINT NOT NULL,
    lat4 BIGINT NOT NULL, lat5 BIGINT NOT NULL, lat6 BIGINT NOT NULL, lat7 BIGINT NOT NULL,
    lat8 BIGINT NOT NULL, lat9 BIGINT NOT NULL, lat10 BIGINT NOT NULL, lat11 BIGINT NOT NULL,
    -- Time first: range reads, roll-ups and pruning all select by time.
    PRIMARY KEY (minute, route, status, protocol)
);

CREATE TABLE request_stats_hour (
    hour      BIGINT NOT NULL,                 -- start of the hour, seconds since the epoch
    route     TEXT NOT NULL,
    status    TEXT NOT NULL CHECK (status IN ('1xx', '2xx', '3xx', '4xx', '5xx')),
    protocol  TEXT NOT NULL CHECK (protocol IN ('http/1.1', 'h2', 'h3')),
    requests  BIGINT NOT NULL CHECK (requests >= 0),
    bytes     BIGINT NOT NULL CHECK (bytes >= 0),
    views     BIGINT NOT NULL CHECK (views >= 0),
    lat0 BIGINT NOT NULL, lat1 BIGINT NOT NULL, lat2 BIGINT NOT NULL, lat3 BIGINT NOT NULL,
    lat4 BIGINT NOT NULL, lat5 BIGINT NOT NULL, lat6 BIGINT NOT NULL, lat7 BIGINT NOT NULL,
    lat8 BIGINT NOT NULL, lat9 BIGINT NOT NULL, lat10 BIGINT NOT NULL, lat11 BIGINT NOT NULL,
    PRIMARY KEY (hour, route, status, protocol)
);

-- Views over time per video (the stats page): by video, then time.
CREATE INDEX views_by_video_time ON views (video_id, counted_at);
