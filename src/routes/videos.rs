//! The catalog API: `GET /api/videos` (public videos, paginated), and `GET`, `PATCH`, `DELETE
//! /api/videos/{id}` (the last two for the video's owner and admins).

use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};

use crate::accounts::{self, CurrentUser, MaybeUser, User};
use crate::auth::STREAM_URL_TTL;
use crate::db::videos::{Owner, Video, Visibility};
use crate::error::AppError;
use crate::library::manage::{self, RemoveError};
use crate::routes::auth::json_body;
use crate::state::AppState;

const MAX_PER_PAGE: u32 = 100;

/// `GET /api/videos`, `GET`, `PATCH`, `DELETE /api/videos/{id}`.
pub(crate) fn router() -> Router<AppState> {
    Router::new()
        .route("/api/videos", get(list))
        .route("/api/videos/{id}", get(show).patch(edit).delete(remove))
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
    /// Signed (`?exp=&sig=`) for a private video shown to its owner or an admin.
    stream_url: String,
    created_at: i64,
    owner: Option<Owner>,
    visibility: Visibility,
    description: String,
}

impl VideoJson {
    /// `v` as `user` sees it (its stream URL signed when it is private and theirs to manage).
    pub(crate) fn new(state: &AppState, v: &Video, user: Option<&User>) -> Self {
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
            stream_url: stream_url(state, v, user),
            created_at: v.created_at,
            owner: v.owner.clone(),
            visibility: v.visibility,
            description: v.description.clone(),
        }
    }
}

/// The URL a player fetches `video` from, for `user`: a private video's is signed to expire in
/// [`STREAM_URL_TTL`], so a `<video src>` needs no cookie (and a cookie-less request never
/// reads the session).
pub(crate) fn stream_url(state: &AppState, video: &Video, user: Option<&User>) -> String {
    let url = video.stream_url();
    if video.visibility != Visibility::Private || !user.is_some_and(|u| u.may_manage(video.owner_id())) {
        return url;
    }
    let query = state.tokens.stream_urls().query(&video.file.id, crate::db::now_secs(), STREAM_URL_TTL);
    format!("{url}?{query}")
}

/// The video `id` if `user` may see it; a 404 naming `path` otherwise, whether it is missing or
/// private (its existence is not revealed).
pub(crate) async fn visible(
    state: &AppState,
    id: &str,
    user: Option<&User>,
    path: &str,
) -> Result<Video, AppError> {
    match state.db.videos().find(id).await? {
        Some(video) if accounts::may_see(user, &video) => Ok(video),
        _ => Err(AppError::NotFound(path.to_owned())),
    }
}

/// The video `id` if `user` may edit and delete it: 404 as [`visible`], 403 when they may see
/// it but it is not theirs.
pub(crate) async fn manageable(
    state: &AppState,
    id: &str,
    user: &User,
    path: &str,
) -> Result<Video, AppError> {
    let video = visible(state, id, Some(user), path).await?;
    if !user.may_manage(video.owner_id()) {
        return Err(AppError::Forbidden("only the video's owner or an admin may change it".into()));
    }
    Ok(video)
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
    // Public videos only: no user to sign a stream URL for.
    let videos = videos.iter().map(|v| VideoJson::new(&state, v, None)).collect();
    Ok(Json(Page { videos, page, per_page, total }))
}

async fn show(
    State(state): State<AppState>,
    MaybeUser(user): MaybeUser,
    Path(id): Path<String>,
) -> Result<Json<VideoJson>, AppError> {
    let video = visible(&state, &id, user.as_ref(), &format!("/api/videos/{id}")).await?;
    Ok(Json(VideoJson::new(&state, &video, user.as_ref())))
}

/// `PATCH /api/videos/{id}`: any of these; a field left out stays as it is.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct EditBody {
    title: Option<String>,
    description: Option<String>,
    visibility: Option<String>,
}

async fn edit(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
    Path(id): Path<String>,
    body: Result<Json<EditBody>, JsonRejection>,
) -> Result<Json<VideoJson>, AppError> {
    let path = format!("/api/videos/{id}");
    manageable(&state, &id, &user, &path).await?;
    let body = json_body(body)?;
    let edit =
        manage::parse_edit(body.title.as_deref(), body.description.as_deref(), body.visibility.as_deref())
            .map_err(AppError::Unprocessable)?;
    state.db.videos().edit(&id, &edit).await?;
    let video = visible(&state, &id, Some(&user), &path).await?;
    Ok(Json(VideoJson::new(&state, &video, Some(&user))))
}

async fn remove(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
    Path(id): Path<String>,
) -> Result<StatusCode, AppError> {
    let video = manageable(&state, &id, &user, &format!("/api/videos/{id}")).await?;
    state.library.remove(&video).await.map_err(remove_error)?;
    Ok(StatusCode::NO_CONTENT)
}

/// A refused deletion: 409 for a media-root file (the message says what to do instead).
pub(crate) fn remove_error(error: RemoveError) -> AppError {
    match error {
        RemoveError::InMediaRoot => AppError::Conflict(error.to_string()),
        RemoveError::Internal(cause) => AppError::Internal(cause),
    }
}
