//! The `views` and `view_sessions` tables: counted views and the outcome of every session.

use super::Fut;

/// A view the tracker counted, waiting to be written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CountedView {
    /// The video.
    pub(crate) video_id: String,
    /// The viewer key, hex.
    pub(crate) viewer: String,
    /// Seconds since the epoch.
    pub(crate) counted_at: i64,
}

/// A session that ended (went idle, or the server stopped), for retention statistics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SessionRecord {
    /// The video.
    pub(crate) video_id: String,
    /// The viewer key, hex.
    pub(crate) viewer: String,
    /// Seconds since the epoch.
    pub(crate) started_at: i64,
    /// Seconds since the epoch.
    pub(crate) ended_at: i64,
    /// The decision's reason code.
    pub(crate) reason: String,
    /// Bit i set: checkpoint i was reached.
    pub(crate) reached: i64,
    /// Media milliseconds delivered.
    pub(crate) covered_ms: i64,
}

/// The `views` and `view_sessions` repository.
pub(crate) trait Views {
    /// Writes a batch in one transaction: each view is inserted and bumps its video's count, so
    /// `videos.view_count` always equals the rows in `views`, and the ended sessions go with them.
    fn record<'a>(&'a self, views: &'a [CountedView], sessions: &'a [SessionRecord]) -> Fut<'a, ()>;

    /// How many distinct viewers a video has had.
    fn unique_viewers<'a>(&'a self, video_id: &'a str) -> Fut<'a, i64>;

    /// The most recent ended sessions of a video (served by `view_sessions_by_video`).
    fn recent_sessions<'a>(&'a self, video_id: &'a str, limit: u32) -> Fut<'a, Vec<SessionRecord>>;

    /// How many ended sessions of a video reached each checkpoint bit (0..k), indexed by bit.
    fn reach_counts<'a>(&'a self, video_id: &'a str, k: u32) -> Fut<'a, Vec<i64>>;

    /// A video's views counted since `from`, per slot of `slot` seconds: `(slot start, views)`,
    /// oldest first, empty slots left out.
    fn over_time<'a>(&'a self, video_id: &'a str, from: i64, slot: i64) -> Fut<'a, Vec<(i64, i64)>>;
}

/// Per-bit counts from `(mask, sessions)` groups. Few distinct masks exist even over millions of
/// sessions (players reach checkpoints in order), so backends group in SQL and split bits here.
pub(crate) fn reach_from_groups(groups: &[(i64, i64)], k: u32) -> Vec<i64> {
    (0..k).map(|i| groups.iter().filter(|(mask, _)| mask & (1 << i) != 0).map(|(_, n)| n).sum()).collect()
}
