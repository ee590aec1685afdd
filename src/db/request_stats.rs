//! The `request_stats_minute` and `request_stats_hour` tables: request statistics over time.

use super::Fut;

/// Upper bounds, milliseconds, of the latency buckets `lat0..lat10`; `lat11` counts the rest.
pub(crate) const LATENCY_BOUNDS_MS: [u64; 11] = [1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 10_000];
/// Latency buckets per row.
pub(crate) const BUCKETS: usize = LATENCY_BOUNDS_MS.len() + 1;

/// The traffic of one route, status class and protocol over one span of time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct StatsRow {
    /// Start of the span, seconds since the epoch.
    pub(crate) at: i64,
    /// The route template (`/stream/{id}`), or `(unmatched)`.
    pub(crate) route: String,
    /// `2xx` and the like.
    pub(crate) status: String,
    /// `http/1.1`, `h2` or `h3`.
    pub(crate) protocol: String,
    /// Responses.
    pub(crate) requests: i64,
    /// Body bytes delivered.
    pub(crate) bytes: i64,
    /// Views counted by these responses.
    pub(crate) views: i64,
    /// Responses per latency bucket ([`LATENCY_BOUNDS_MS`]).
    pub(crate) latency: [i64; BUCKETS],
}

/// Which table a read comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Grain {
    /// `request_stats_minute`, kept `stats.minute_retention`.
    Minute,
    /// `request_stats_hour`, kept `stats.retention`.
    Hour,
}

/// The request statistics repository.
pub(crate) trait RequestStats {
    /// Adds minute rows, summing into a row already stored for the same minute and key (a final
    /// flush at shutdown, then a restart within the same minute).
    fn add_minutes<'a>(&'a self, rows: &'a [StatsRow]) -> Fut<'a, ()>;

    /// Recomputes the hour rows of the hours in `[from, to)` from the minute rows (idempotent).
    fn roll_up(&self, from: i64, to: i64) -> Fut<'_, ()>;

    /// Deletes minute rows older than `minutes_before` and hour rows older than `hours_before`;
    /// returns how many rows went.
    fn prune(&self, minutes_before: i64, hours_before: i64) -> Fut<'_, u64>;

    /// The rows of `grain`'s table in `[from, to)`, summed per slot of `slot` seconds (aligned to
    /// the epoch), route, status and protocol, oldest first.
    fn series(&self, grain: Grain, from: i64, to: i64, slot: i64) -> Fut<'_, Vec<StatsRow>>;
}
