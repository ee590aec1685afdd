//! tus 1.0 resumable uploads under `/api/uploads` (core protocol; creation,
//! creation-with-upload, termination, expiration and checksum extensions). A completed upload
//! goes through the same validation and cataloguing as `POST /api/videos`.

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::options;
use tower_http::set_header::SetResponseHeaderLayer;

use crate::accounts::{Uploader, User};
use crate::db::tus::TusUpload;
use crate::error::AppError;
use crate::ingest::body;
use crate::ingest::tus::{self, Checksum, TusError, parse_metadata};
use crate::routes::upload::ingest_error;
use crate::state::AppState;

const TUS_RESUMABLE: HeaderName = HeaderName::from_static("tus-resumable");
const UPLOAD_OFFSET: HeaderName = HeaderName::from_static("upload-offset");
const UPLOAD_LENGTH: HeaderName = HeaderName::from_static("upload-length");
const UPLOAD_METADATA: HeaderName = HeaderName::from_static("upload-metadata");
const UPLOAD_EXPIRES: HeaderName = HeaderName::from_static("upload-expires");
const UPLOAD_CHECKSUM: HeaderName = HeaderName::from_static("upload-checksum");
const OFFSET_STREAM: &str = "application/offset+octet-stream";

/// `OPTIONS, POST /api/uploads` and `HEAD, PATCH, DELETE /api/uploads/{id}`.
pub(crate) fn router() -> Router<AppState> {
    Router::new()
        .route("/api/uploads", options(discover).post(create))
        .route("/api/uploads/{id}", axum::routing::head(status).patch(append).delete(terminate))
        // Set here, under the layer below: the root's fallback would replace the layered one, and
        // a 405 would go out without `Tus-Resumable`.
        .method_not_allowed_fallback(crate::error::method_not_allowed)
        // Every answer, errors included, names the protocol version (tus 1.0 §"Tus-Resumable").
        .layer(SetResponseHeaderLayer::overriding(TUS_RESUMABLE, HeaderValue::from_static(tus::VERSION)))
}

/// What the server supports.
async fn discover(State(state): State<AppState>) -> Response {
    let headers = [
        ("tus-version", tus::VERSION.to_owned()),
        ("tus-extension", tus::EXTENSIONS.to_owned()),
        ("tus-checksum-algorithm", tus::CHECKSUMS.to_owned()),
        ("tus-max-size", state.config.limits.max_upload_bytes.to_string()),
    ];
    let mut response = StatusCode::NO_CONTENT.into_response();
    for (name, value) in headers {
        response.headers_mut().insert(name, HeaderValue::try_from(value).expect("ASCII"));
    }
    response
}

/// Every request but OPTIONS must speak our version (412 otherwise, naming the versions we do).
fn check_version(headers: &HeaderMap) -> Result<(), AppError> {
    if headers.get(&TUS_RESUMABLE).is_some_and(|v| v == tus::VERSION) {
        return Ok(());
    }
    Err(AppError::TusVersion(tus::VERSION))
}

fn number(headers: &HeaderMap, name: &HeaderName) -> Result<Option<u64>, AppError> {
    headers
        .get(name)
        .map(|v| {
            v.to_str()
                .ok()
                .and_then(|s| s.parse().ok())
                .ok_or_else(|| AppError::BadRequest(format!("{name}: not a number")))
        })
        .transpose()
}

/// creation (+ creation-with-upload when a body comes along). Every request but OPTIONS needs
/// an uploader (401 or 403 before the version check or the body); who creates an upload owns it
/// and the video it becomes.
async fn create(
    State(state): State<AppState>,
    Uploader(user): Uploader,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, AppError> {
    check_version(&headers)?;
    let length = number(&headers, &UPLOAD_LENGTH).and_then(|n| {
        n.ok_or_else(|| {
            AppError::BadRequest("Upload-Length: required (deferred lengths are not supported)".into())
        })
    })?;
    let limit = state.config.limits.max_upload_bytes;
    if length > limit {
        return Err(AppError::PayloadTooLarge(format!("Upload-Length is over the {limit}-byte limit")));
    }
    let metadata = headers.get(&UPLOAD_METADATA).map(|v| v.to_str().unwrap_or("\u{fffd}")).unwrap_or("");
    parse_metadata(metadata).map_err(tus_error)?;
    let owner = Some(user.id.as_str());
    let upload = state.tus.create(&state.db, length, metadata, owner).await.map_err(AppError::Internal)?;
    let location = HeaderValue::try_from(format!("/api/uploads/{}", upload.id)).expect("ids are URL-safe");
    let with_body = headers.get(header::CONTENT_TYPE).is_some_and(|v| v == OFFSET_STREAM);
    let mut response = if with_body {
        let mut response = write(&state, &upload, 0, &headers, body).await?;
        *response.status_mut() = StatusCode::CREATED;
        response
    } else {
        let mut response = StatusCode::CREATED.into_response();
        response.headers_mut().insert(UPLOAD_OFFSET, HeaderValue::from(0u64));
        response
    };
    response.headers_mut().insert(header::LOCATION, location);
    response.headers_mut().insert(UPLOAD_EXPIRES, expires(upload.expires_at));
    Ok(response)
}

/// The live upload `id` if `user` created it (or is an admin): someone else's is a 404, as if
/// it did not exist, so upload ids tell nothing to other accounts.
async fn find(state: &AppState, id: &str, user: &User) -> Result<TusUpload, AppError> {
    state
        .db
        .uploads()
        .find(id)
        .await?
        .filter(|u| u.expires_at >= tus::now_ms() && user.may_manage(u.owner_id.as_deref()))
        .ok_or_else(|| AppError::NotFound(format!("/api/uploads/{id}")))
}

/// Where an upload stands.
async fn status(
    State(state): State<AppState>,
    Uploader(user): Uploader,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, AppError> {
    check_version(&headers)?;
    let upload = find(&state, &id, &user).await?;
    let mut response = StatusCode::OK.into_response();
    let out = response.headers_mut();
    out.insert(UPLOAD_OFFSET, HeaderValue::from(upload.received));
    out.insert(UPLOAD_LENGTH, HeaderValue::from(upload.length));
    if let Ok(metadata) = HeaderValue::try_from(upload.metadata.as_str())
        && !upload.metadata.is_empty()
    {
        out.insert(UPLOAD_METADATA, metadata);
    }
    out.insert(UPLOAD_EXPIRES, expires(upload.expires_at));
    out.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
}

/// The core of the protocol: append at an offset.
async fn append(
    State(state): State<AppState>,
    Uploader(user): Uploader,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, AppError> {
    check_version(&headers)?;
    if headers.get(header::CONTENT_TYPE).is_none_or(|v| v != OFFSET_STREAM) {
        return Err(AppError::UnsupportedMediaType(format!("Content-Type must be {OFFSET_STREAM}")));
    }
    let offset = number(&headers, &UPLOAD_OFFSET)
        .and_then(|n| n.ok_or_else(|| AppError::BadRequest("Upload-Offset: required".into())))?;
    let upload = find(&state, &id, &user).await?;
    write(&state, &upload, offset, &headers, body).await
}

/// Appends a body and, once the last byte is in, turns the upload into a library video.
async fn write(
    state: &AppState,
    upload: &TusUpload,
    offset: u64,
    headers: &HeaderMap,
    body: Body,
) -> Result<Response, AppError> {
    let checksum = headers
        .get(&UPLOAD_CHECKSUM)
        .map(|v| Checksum::parse(v.to_str().unwrap_or("")))
        .transpose()
        .map_err(tus_error)?;
    let limits = &state.config.limits;
    let received = state
        .tus
        .append(&state.db, upload, offset, checksum, body::upload_body(body, limits))
        .await
        .map_err(tus_error)?;
    let mut response = StatusCode::NO_CONTENT.into_response();
    response.headers_mut().insert(UPLOAD_OFFSET, HeaderValue::from(received));
    if received < u64::try_from(upload.length).unwrap_or(0) {
        response.headers_mut().insert(UPLOAD_EXPIRES, expires(state.tus.expiry_from_now()));
        return Ok(response);
    }
    let committed = state.tus.complete(&state.library, upload).await.map_err(ingest_error)?;
    let location = HeaderValue::try_from(format!("/api/videos/{}", committed.video().file.id))
        .expect("ids are URL-safe");
    response.headers_mut().insert("video-location", location);
    Ok(response)
}

/// termination.
async fn terminate(
    State(state): State<AppState>,
    Uploader(user): Uploader,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, AppError> {
    check_version(&headers)?;
    find(&state, &id, &user).await?;
    state.tus.remove(&state.db, &id).await.map_err(AppError::Internal)?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

fn expires(ms: i64) -> HeaderValue {
    let at = std::time::UNIX_EPOCH + std::time::Duration::from_millis(u64::try_from(ms).unwrap_or(0));
    HeaderValue::try_from(httpdate::fmt_http_date(at)).expect("an HTTP date is a valid header")
}

fn tus_error(error: TusError) -> AppError {
    match error {
        TusError::OffsetMismatch { .. } | TusError::Busy => AppError::Conflict(error.to_string()),
        TusError::PastLength(_) => AppError::PayloadTooLarge(error.to_string()),
        TusError::ChecksumMismatch(_) => AppError::ChecksumMismatch(error.to_string()),
        TusError::BadHeader(message) => AppError::BadRequest(message),
        TusError::Interrupted { ref cause, .. } if cause.is_timeout() => {
            AppError::RequestTimeout(error.to_string())
        }
        TusError::Interrupted { .. } => AppError::BadRequest(error.to_string()),
        TusError::Internal(cause) => AppError::Internal(cause),
    }
}
