//! Request statistics over time (README "Statistics"): the per-minute aggregate the access log
//! feeds (`aggregate`), the task that writes it to the database, rolls it up to hours and prunes
//! it (`flush`), and what the stats pages read back (`report`).

pub(crate) mod aggregate;
pub(crate) mod flush;
pub(crate) mod report;

use crate::db::Db;
use crate::db::videos::Video;
use crate::views::tracker::Tracker;
use crate::views::{self, RetentionPoint};

pub(crate) use self::aggregate::Aggregate;
use self::report::Window;

/// One video's statistics over a window.
#[derive(Debug, Clone)]
pub(crate) struct VideoReport {
    /// Slot starts, oldest first.
    pub(crate) starts: Vec<i64>,
    /// Views counted per slot.
    pub(crate) views: Vec<u64>,
    /// Distinct viewers ever.
    pub(crate) unique_viewers: i64,
    /// How many sessions reached each checkpoint, in timeline order.
    pub(crate) retention: Vec<RetentionPoint>,
}

/// Reads `video`'s views over `window` (ending at `now`) and its retention curve.
pub(crate) async fn video(
    tracker: &Tracker,
    db: &Db,
    video: &Video,
    window: Window,
    now: i64,
) -> sqlx::Result<VideoReport> {
    let starts = window.starts(now);
    let (slot, _) = window.slots();
    let mut views = vec![0; starts.len()];
    for (at, n) in db.views().over_time(&video.file.id, starts[0], slot).await? {
        if let Some(i) = starts.iter().position(|&s| s == at) {
            views[i] = u64::try_from(n).unwrap_or(0);
        }
    }
    Ok(VideoReport {
        starts,
        views,
        unique_viewers: db.views().unique_viewers(&video.file.id).await?,
        retention: views::retention(tracker, db, video).await?,
    })
}
