//! `POST /api/videos`: a streaming multipart video upload (fields `file`, optional `title`).

use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};

use tower_sessions_core::Session;

use crate::accounts::Uploader;
use crate::config::Limits;
use crate::error::{AppError, excerpt};
use crate::ingest::body::{self, BodyError, UploadBody};
use crate::ingest::multipart::{self, MultipartError, MultipartReader};
use crate::ingest::upload::{self, Committed, IngestError, Staged};
use crate::library::title;
use crate::page::flash;
use crate::routes::videos::VideoJson;
use crate::state::AppState;

/// Bytes a form may carry beyond its file: the framing, the part headers and a title. A body
/// larger than its file limit plus this is refused, chunked or not.
const FORM_OVERHEAD: u64 = 64 * 1024;

/// `POST /api/videos`.
pub(crate) fn router() -> Router<AppState> {
    // The limit is enforced while streaming (and from Content-Length up front), not by axum's
    // 2 MB default, which would refuse every real video.
    Router::new().route("/api/videos", post(create).layer(DefaultBodyLimit::disable()))
}

/// Only an uploader may (the extractor answers 401 or 403 before a byte of the body is read),
/// and they own what they upload.
async fn create(
    State(state): State<AppState>,
    Uploader(user): Uploader,
    session: Session,
    request: Request,
) -> Result<Response, AppError> {
    let limit = state.config.limits.max_upload_bytes;
    // A browser submitting the upload form wants the watch page, not JSON.
    let from_form = request
        .headers()
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|accept| accept.contains("text/html"));
    let mut form = form(request, &state.config.limits, limit)?;

    let mut staged: Option<Staged> = None;
    let mut titled: Option<String> = None;
    while let Some(part) = form.next_part().await? {
        match part.name() {
            Some("file") if staged.is_none() => {
                staged = Some(upload::stage(&state.library, limit, form.data()).await.map_err(ingest_error)?);
            }
            Some("title") if titled.is_none() => {
                let invalid = || {
                    AppError::Unprocessable(format!("title: must be 1 to {} characters", title::MAX_CHARS))
                };
                // UTF-8 needs at most four bytes a character: anything longer is too long.
                let text = form.bytes(title::MAX_CHARS * 4).await.map_err(|error| match error {
                    MultipartError::PartTooLarge { .. } => invalid(),
                    other => other.into(),
                })?;
                titled = Some(title::parse(&String::from_utf8_lossy(&text)).ok_or_else(invalid)?);
            }
            // The CSRF token of a signed-in form post, already checked by middleware/csrf.rs.
            Some(crate::middleware::csrf::FIELD) => {}
            Some(name) => {
                return Err(AppError::Unprocessable(format!(
                    "{}: unexpected or repeated field",
                    excerpt(name)
                )));
            }
            None => return Err(AppError::Unprocessable("a form field has no name".into())),
        }
    }
    let staged = staged.ok_or_else(|| AppError::Unprocessable("file: required".into()))?;
    let owner = Some(user.id.as_str());
    let (status, video) =
        match upload::commit(&state.library, staged, titled.as_deref(), owner).await.map_err(ingest_error)? {
            Committed::Created(video) => (StatusCode::CREATED, video),
            Committed::Existing(video) => (StatusCode::OK, video),
        };
    if from_form {
        // Only a visitor who has a session gets the message: an upload never starts one.
        if session.id().is_some() {
            flash::set(&session, "Uploaded").await?;
        }
        let watch = HeaderValue::try_from(format!("/watch/{}", video.file.id)).expect("ids are URL-safe");
        return Ok((StatusCode::SEE_OTHER, [(header::LOCATION, watch)]).into_response());
    }
    let location = HeaderValue::try_from(format!("/api/videos/{}", video.file.id)).expect("ids are URL-safe");
    let json = VideoJson::new(&state, &video, Some(&user));
    Ok((status, [(header::LOCATION, location)], Json(json)).into_response())
}

/// The prologue of both multipart routes (this and `POST /api/images`): refuses a declared body
/// too large for a `file_limit`-byte file, then opens the form, read at most that file plus
/// [`FORM_OVERHEAD`] bytes and at least the minimum rate.
pub(crate) fn form(
    request: Request,
    limits: &Limits,
    file_limit: u64,
) -> Result<MultipartReader<UploadBody>, AppError> {
    let max_body = file_limit.saturating_add(FORM_OVERHEAD);
    // Refused before a byte of the body is read: with `Expect: 100-continue` the client never
    // sends it (hyper only says 100 Continue once the body is polled).
    let declared =
        request.headers().get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    if declared.is_some_and(|len| len > max_body) {
        return Err(AppError::PayloadTooLarge(format!(
            "the upload is larger than the {file_limit}-byte limit"
        )));
    }
    let content_type = request.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok());
    let boundary = multipart::boundary(content_type.unwrap_or(""))?;
    Ok(MultipartReader::new(&boundary, body::upload_body(request.into_body(), limits), max_body))
}

/// The HTTP error of a refused upload (shared with tus completion).
pub(crate) fn ingest_error(error: IngestError) -> AppError {
    match error {
        IngestError::TooLarge { .. } => AppError::PayloadTooLarge(error.to_string()),
        IngestError::Unsupported(message) => AppError::UnsupportedMediaType(message),
        IngestError::Form(error) => error.into(),
        IngestError::Internal(cause) => AppError::Internal(cause),
    }
}

/// A form that could not be read: 415 when it is no form, 400 when malformed, 413 when too large,
/// 408 when its body stalled or trickled.
impl From<MultipartError> for AppError {
    fn from(error: MultipartError) -> Self {
        match error {
            MultipartError::Body(error) => error.into(),
            MultipartError::NotMultipart(message) => AppError::UnsupportedMediaType(message.to_owned()),
            MultipartError::Malformed(message) => AppError::BadRequest(message),
            MultipartError::PartTooLarge { .. } => AppError::PayloadTooLarge(error.to_string()),
        }
    }
}

/// An upload body that failed: 408 for the client's slowness (RFC 9110 §15.5.9), 413 for its
/// size, 400 for a cut-off.
impl From<BodyError> for AppError {
    fn from(error: BodyError) -> Self {
        match error {
            BodyError::Stalled(_) | BodyError::TooSlow { .. } => AppError::RequestTimeout(error.to_string()),
            BodyError::TooLarge { .. } => AppError::PayloadTooLarge(error.to_string()),
            BodyError::Failed(_) => AppError::BadRequest(error.to_string()),
        }
    }
}
