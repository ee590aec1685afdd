//! View counting from range checkpoints (ARCHITECTURE.md §4): who watches (`viewer`), where the
//! checkpoints are (`checkpoint`), what counts (`tracker`) and how it is stored (`writer`).

pub(crate) mod checkpoint;
pub(crate) mod tracker;
pub(crate) mod viewer;
pub(crate) mod writer;

use std::sync::Arc;

use self::checkpoint::Plan;
use self::tracker::Tracker;
use crate::db::Db;
use crate::db::videos::Video;

/// The checkpoint plan of `video`, derived once per content hash and cached by the tracker.
pub(crate) async fn plan(tracker: &Tracker, db: &Db, video: &Video) -> sqlx::Result<Arc<Plan>> {
    let (id, hash) = (&video.file.id, &video.file.hash);
    if let Some(plan) = tracker.cached_plan(id, hash) {
        return Ok(plan);
    }
    let index = db.videos().time_index(id).await?;
    let duration = video.duration_ms.and_then(|ms| u64::try_from(ms).ok());
    let size = u64::try_from(video.file.size).unwrap_or(0);
    Ok(tracker.plan(id, hash, |secret, k| Plan::derive(secret, id, k, duration, size, index)))
}

/// Where a checkpoint sits and how many sessions reached it: one point of the retention curve.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct RetentionPoint {
    /// Its position, as a fraction of the timeline.
    pub(crate) position: f64,
    /// Sessions (ended and live) that reached it.
    pub(crate) sessions: i64,
}

/// The retention curve of `video` over its checkpoints, in timeline order, live sessions included.
pub(crate) async fn retention(
    tracker: &Tracker,
    db: &Db,
    video: &Video,
) -> sqlx::Result<Vec<RetentionPoint>> {
    let id = &video.file.id;
    let mut reach = db.views().reach_counts(id, tracker.checkpoints()).await?;
    for session in tracker.live(id) {
        for (i, count) in reach.iter_mut().enumerate() {
            *count += i64::from(session.reached & (1 << i) != 0);
        }
    }
    let plan = plan(tracker, db, video).await?;
    let duration = plan.duration_ms().max(1) as f64;
    Ok(plan
        .checkpoints
        .iter()
        .zip(reach)
        .map(|(checkpoint, sessions)| RetentionPoint { position: checkpoint.ms as f64 / duration, sessions })
        .collect())
}
