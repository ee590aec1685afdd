//! The catalog API: `GET /api/videos` (paginated) and `GET /api/videos/{id}`.

use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::routing::get;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};

use crate::db::videos::Video;
use crate::error::AppError;
use crate::state::AppState;

const MAX_PER_PAGE: u32 = 100;

/// `GET /api/videos`, `GET /api/videos/{id}`.
pub(crate) fn router() -> Router<AppState> {
    Router::new().route("/api/videos", get(list)).route("/api/videos/{id}", get(show))
}

/// `?page=&per_page=`, both optional.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PageQuery {
    page: Option<u32>,
    per_page: Option<u32>,
}

/// One page of the catalog.
#[derive(Debug, Serialize)]
struct Page {
    videos: Vec<VideoJson>,
    page: u32,
    per_page: u32,
    total: i64,
}

/// A video as the API shows it.
#[derive(Debug, Serialize)]
pub(crate) struct VideoJson {
    id: String,
    title: String,
    mime: String,
    size: i64,
    /// Seconds, for people; `duration_ms` is exact.
    duration: Option<f64>,
    duration_ms: Option<i64>,
    width: Option<i64>,
    height: Option<i64>,
    container: String,
    video_codec: Option<String>,
    audio_codec: Option<String>,
    faststart: bool,
    parse_error: Option<String>,
    views: i64,
    stream_url: String,
    created_at: i64,
}

impl From<&Video> for VideoJson {
    fn from(v: &Video) -> Self {
        Self {
            id: v.file.id.clone(),
            title: v.title.clone(),
            mime: v.file.mime.clone(),
            size: v.file.size,
            duration: v.duration_ms.map(|ms| ms as f64 / 1000.0),
            duration_ms: v.duration_ms,
            width: v.width,
            height: v.height,
            container: v.container.clone(),
            video_codec: v.video_codec.clone(),
            audio_codec: v.audio_codec.clone(),
            faststart: v.faststart,
            parse_error: v.parse_error.clone(),
            views: v.view_count,
            stream_url: v.stream_url(),
            created_at: v.created_at,
        }
    }
}

async fn list(
    State(state): State<AppState>,
    query: Result<Query<PageQuery>, QueryRejection>,
) -> Result<Json<Page>, AppError> {
    let Query(query) = query.map_err(|e| AppError::BadRequest(e.body_text()))?;
    let page = query.page.unwrap_or(1);
    let per_page = query.per_page.unwrap_or(20);
    if page == 0 {
        return Err(AppError::BadRequest("page starts at 1".into()));
    }
    if !(1..=MAX_PER_PAGE).contains(&per_page) {
        return Err(AppError::BadRequest(format!("per_page must be between 1 and {MAX_PER_PAGE}")));
    }
    let offset = u64::from(page - 1) * u64::from(per_page);
    let videos = state.db.videos().list(per_page, offset).await?;
    let total = state.db.videos().count().await?;
    Ok(Json(Page { videos: videos.iter().map(VideoJson::from).collect(), page, per_page, total }))
}

async fn show(State(state): State<AppState>, Path(id): Path<String>) -> Result<Json<VideoJson>, AppError> {
    let video =
        state.db.videos().find(&id).await?.ok_or_else(|| AppError::NotFound(format!("/api/videos/{id}")))?;
    Ok(Json(VideoJson::from(&video)))
}
