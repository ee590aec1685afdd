//! `POST /api/videos`: a streaming multipart video upload (fields `file`, optional `title`).

use axum::extract::{DefaultBodyLimit, FromRequest, Multipart, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use futures_util::TryStreamExt;

use crate::error::AppError;
use crate::ingest::upload::{self, Committed, IngestError, Staged};
use crate::routes::videos::VideoJson;
use crate::state::AppState;

/// The longest title accepted, in characters (the table checks it too).
const MAX_TITLE: usize = 300;

/// `POST /api/videos`.
pub(crate) fn router() -> Router<AppState> {
    // The limit is enforced while streaming (and from Content-Length up front), not by axum's
    // 2 MB default, which would refuse every real video.
    Router::new().route("/api/videos", post(create).layer(DefaultBodyLimit::disable()))
}

async fn create(State(state): State<AppState>, request: Request) -> Result<Response, AppError> {
    let limit = state.config.limits.max_upload_bytes;
    // A browser submitting the upload form wants the watch page, not JSON.
    let from_form = request
        .headers()
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|accept| accept.contains("text/html"));
    // Refused before a byte of the body is read: with `Expect: 100-continue` the client never
    // sends it (hyper only says 100 Continue once the body is polled).
    let declared =
        request.headers().get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    if declared.is_some_and(|len| len > limit) {
        return Err(AppError::PayloadTooLarge(format!("the upload is larger than the {limit}-byte limit")));
    }
    let mut multipart = Multipart::from_request(request, &state).await.map_err(|e| {
        AppError::UnsupportedMediaType(format!("expected multipart/form-data: {}", e.body_text()))
    })?;

    let mut staged: Option<Staged> = None;
    let mut title: Option<String> = None;
    while let Some(field) = multipart.next_field().await.map_err(|e| AppError::BadRequest(e.body_text()))? {
        match field.name() {
            Some("file") if staged.is_none() => {
                let chunks = field.map_err(|e| e.body_text());
                staged = Some(
                    upload::stage(state.library.tmp_dir(), limit, Box::pin(chunks))
                        .await
                        .map_err(ingest_error)?,
                );
            }
            Some("title") if title.is_none() => {
                let text = field.text().await.map_err(|e| AppError::BadRequest(e.body_text()))?;
                let text = text.trim();
                if text.is_empty() || text.chars().count() > MAX_TITLE {
                    return Err(AppError::Unprocessable(format!(
                        "title: must be 1 to {MAX_TITLE} characters"
                    )));
                }
                title = Some(text.to_owned());
            }
            Some(name) => {
                return Err(AppError::Unprocessable(format!("{name}: unexpected or repeated field")));
            }
            None => return Err(AppError::Unprocessable("a form field has no name".into())),
        }
    }
    let staged = staged.ok_or_else(|| AppError::Unprocessable("file: required".into()))?;
    let (status, video) =
        match upload::commit(&state.library, staged, title.as_deref()).await.map_err(ingest_error)? {
            Committed::Created(video) => (StatusCode::CREATED, video),
            Committed::Existing(video) => (StatusCode::OK, video),
        };
    if from_form {
        let watch = HeaderValue::try_from(format!("/watch/{}", video.file.id)).expect("ids are URL-safe");
        return Ok((StatusCode::SEE_OTHER, [(header::LOCATION, watch)]).into_response());
    }
    let location = HeaderValue::try_from(format!("/api/videos/{}", video.file.id)).expect("ids are URL-safe");
    Ok((status, [(header::LOCATION, location)], Json(VideoJson::from(&video))).into_response())
}

/// The HTTP error of a refused upload (shared with tus completion).
pub(crate) fn ingest_error(error: IngestError) -> AppError {
    match error {
        IngestError::TooLarge { .. } => AppError::PayloadTooLarge(error.to_string()),
        IngestError::Unsupported(message) => AppError::UnsupportedMediaType(message),
        IngestError::Aborted(message) => {
            AppError::BadRequest(format!("the upload did not complete: {message}"))
        }
        IngestError::Internal(cause) => AppError::Internal(cause),
    }
}
