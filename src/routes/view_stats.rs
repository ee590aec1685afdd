//! `GET /api/videos/{id}/views`: the count, unique viewers, retention and recent sessions with
//! the reason each did or did not count; for the video's owner and admins, as its stats page.

use axum::extract::{Path, State};
use axum::routing::get;
use axum::{Json, Router};
use serde::Serialize;

use crate::accounts::MaybeUser;
use crate::error::AppError;
use crate::routes::stats::{Subject, gate};
use crate::routes::videos::visible;
use crate::state::AppState;

/// Recent sessions shown per video.
const RECENT: u32 = 20;

/// `GET /api/videos/{id}/views`.
pub(crate) fn router() -> Router<AppState> {
    Router::new().route("/api/videos/{id}/views", get(views))
}

#[derive(Debug, Serialize)]
struct ViewsJson {
    video_id: String,
    /// The same number as the video's `views`.
    views: i64,
    unique_viewers: i64,
    checkpoints: u32,
    min_checkpoints: u32,
    /// For each checkpoint (by timeline position), how many sessions reached it.
    retention: Vec<RetentionPoint>,
    /// Live sessions first, then the most recent ended ones.
    sessions: Vec<SessionJson>,
}

#[derive(Debug, Serialize)]
struct RetentionPoint {
    /// Where the checkpoint sits, as a fraction of the timeline.
    position: f64,
    sessions: i64,
}

#[derive(Debug, Serialize)]
struct SessionJson {
    /// The first 8 hex digits of the viewer key: enough to tell sessions apart, not to track.
    viewer: String,
    live: bool,
    started_at: i64,
    ended_at: Option<i64>,
    reason: String,
    checkpoints_reached: u32,
    covered_ms: u64,
}

async fn views(
    State(state): State<AppState>,
    user: MaybeUser,
    Path(id): Path<String>,
) -> Result<Json<ViewsJson>, AppError> {
    // A private video is a 404 to whoever may not see it, before the gate could say 403.
    let video = visible(&state, &id, user.0.as_ref(), &format!("/api/videos/{id}/views")).await?;
    // Under /api the answer is JSON whatever `Accept` says, so there is no redirect to follow.
    gate(&state, &user, true, Subject::Video(&video))?;
    let db = &state.db;
    let rules = &state.config.views;
    let unique_viewers = db.views().unique_viewers(&id).await?;
    let live = state.views.live(&id);
    let retention = crate::views::retention(&state.views, db, &video)
        .await?
        .into_iter()
        .map(|p| RetentionPoint { position: p.position, sessions: p.sessions })
        .collect();
    let mut sessions: Vec<SessionJson> = live
        .iter()
        .map(|s| SessionJson {
            viewer: s.viewer[..8].to_owned(),
            live: true,
            started_at: s.started_at,
            ended_at: None,
            reason: s.reason.as_str().to_owned(),
            checkpoints_reached: s.reached.count_ones(),
            covered_ms: s.covered_ms,
        })
        .collect();
    for s in db.views().recent_sessions(&id, RECENT).await? {
        sessions.push(SessionJson {
            viewer: s.viewer.chars().take(8).collect(),
            live: false,
            started_at: s.started_at,
            ended_at: Some(s.ended_at),
            reason: s.reason,
            checkpoints_reached: s.reached.count_ones(),
            covered_ms: u64::try_from(s.covered_ms).unwrap_or(0),
        });
    }
    Ok(Json(ViewsJson {
        video_id: id,
        views: video.view_count,
        unique_viewers,
        checkpoints: rules.checkpoints,
        min_checkpoints: rules.min_checkpoints,
        retention,
        sessions,
    }))
}
