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
