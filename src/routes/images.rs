//! Images: `POST /api/images` (upload, bomb-safe, stored variants, owned by the signed-in user),
//! `GET`/`PATCH`/`DELETE /api/images/{id}` (the JSON, its alt text, removal by its owner or an
//! admin) and `GET /images/{id}` (resized on demand, format negotiated from `Accept`, cached by
//! bytes). The pipeline itself is [`crate::images::ImageService`]; these handlers parse, call it
//! and shape the answer.

use axum::extract::{DefaultBodyLimit, Path, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use bytes::Bytes;
use serde::{Deserialize, Deserializer, Serialize};

use crate::accounts::{CurrentUser, Uploader};
use crate::db::images::{ImageOwner, ImageRow, MAX_ALT_CHARS};
use crate::error::{AppError, excerpt};
use crate::images::{DEFAULT_QUALITY, Fit, ImageError, OutputFormat, Rendition, VARIANT_WIDTHS};
use crate::ingest::multipart::MultipartError;
use crate::range::precondition::none_match;
use crate::routes::upload;
use crate::state::AppState;

/// The largest output side on demand: bigger requests are refused, not silently shrunk.
const MAX_OUTPUT_SIDE: u32 = 4096;
/// Results are content-addressed by id and parameters, so they never change under a URL.
const CACHE_CONTROL: &str = "public, max-age=31536000, immutable";

/// `POST /api/images`, `GET`/`PATCH`/`DELETE /api/images/{id}`, `GET /images/{id}`.
pub(crate) fn router() -> Router<AppState> {
    Router::new()
        .route("/api/images", post(upload).layer(DefaultBodyLimit::disable()))
        .route("/api/images/{id}", get(describe).patch(edit).delete(remove))
        .route("/images/{id}", get(show))
}

#[derive(Serialize)]
struct ImageJson {
    id: String,
    owner: Option<OwnerJson>,
    alt: Option<String>,
    width: i64,
    height: i64,
    source_format: String,
    size: i64,
    url: String,
    variants: Vec<VariantJson>,
}

#[derive(Serialize)]
struct OwnerJson {
    id: String,
    display_name: String,
}

#[derive(Serialize)]
struct VariantJson {
    width: u32,
    format: &'static str,
    url: String,
}

fn image_json(row: &ImageRow) -> ImageJson {
    let variants = VARIANT_WIDTHS
        .iter()
        .filter(|&&w| i64::from(w) < row.width)
        .flat_map(|&w| {
            [OutputFormat::WebP, OutputFormat::Jpeg].map(|format| VariantJson {
                width: w,
                format: format.extension(),
                url: format!("/images/{}?w={w}&fmt={}", row.id, format.extension()),
            })
        })
        .collect();
    ImageJson {
        id: row.id.clone(),
        owner: row
            .owner
            .as_ref()
            .map(|o| OwnerJson { id: o.id.clone(), display_name: o.display_name.clone() }),
        alt: row.alt.clone(),
        width: row.width,
        height: row.height,
        source_format: row.source.clone(),
        size: row.bytes,
        url: format!("/images/{}", row.id),
        variants,
    }
}

/// Only an uploader may: the extractor answers 401 or 403 before a byte of the body is read.
async fn upload(
    State(state): State<AppState>,
    Uploader(user): Uploader,
    request: Request,
) -> Result<Response, AppError> {
    let limits = state.images.limits();
    let mut form = upload::form(request, &state.config.limits, limits.max_bytes)?;
    let mut data: Option<Bytes> = None;
    while let Some(part) = form.next_part().await? {
        if part.name() != Some("file") || data.is_some() {
            return Err(AppError::Unprocessable(format!(
                "{}: unexpected or repeated field",
                excerpt(part.name().unwrap_or(""))
            )));
        }
        let max = usize::try_from(limits.max_bytes).unwrap_or(usize::MAX);
        data = Some(form.bytes(max).await.map_err(|error| match error {
            MultipartError::PartTooLarge { .. } => {
                AppError::PayloadTooLarge(format!("images are limited to {} bytes", limits.max_bytes))
            }
            other => other.into(),
        })?);
    }
    let data = data.ok_or_else(|| AppError::Unprocessable("file: required".into()))?;
    let owner = Some(ImageOwner { id: user.id, display_name: user.display_name });
    let row = state.images.upload(data, owner).await.map_err(image_error)?;
    let location = HeaderValue::try_from(format!("/images/{}", row.id)).expect("ids are URL-safe");
    Ok((StatusCode::CREATED, [(header::LOCATION, location)], Json(image_json(&row))).into_response())
}

/// The image `id`, or a 404 naming its API path.
async fn found(state: &AppState, id: &str) -> Result<ImageRow, AppError> {
    state.images.find(id).await.map_err(api_error(id))
}

/// Maps the errors of an API call on image `id`; a missing image names the API path.
fn api_error(id: &str) -> impl FnOnce(ImageError) -> AppError + '_ {
    move |error| match error {
        ImageError::NotFound => AppError::NotFound(format!("/api/images/{id}")),
        other => image_error(other),
    }
}

/// The image `id` if `user` may edit or delete it (its owner or an admin), else a 403.
async fn managed(state: &AppState, user: &crate::accounts::User, id: &str) -> Result<ImageRow, AppError> {
    let row = found(state, id).await?;
    if !user.may_manage(row.owner.as_ref().map(|o| o.id.as_str())) {
        return Err(AppError::Forbidden("only the image's owner or an admin may change or delete it".into()));
    }
    Ok(row)
}

async fn describe(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<ImageJson>, AppError> {
    Ok(Json(image_json(&found(&state, &id).await?)))
}

/// `PATCH /api/images/{id}`: the fields to change; an absent field is left as it is.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ImagePatch {
    /// `Some(None)` is an explicit `null`: the alt text is removed.
    #[serde(default, deserialize_with = "present")]
    alt: Option<Option<String>>,
}

/// A field that is there, `null` or not: tells `{"alt": null}` from `{}`.
fn present<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Option<T>, D::Error> {
    T::deserialize(d).map(Some)
}

/// Trimmed alt text within [`MAX_ALT_CHARS`] and without control characters (a screen reader
/// reads it out; a newline or an escape sequence has no business there). Empty is allowed: it
/// marks a decorative image, as `alt=""` does in HTML.
fn parse_alt(alt: &str) -> Result<&str, AppError> {
    let alt = alt.trim();
    if alt.chars().count() > MAX_ALT_CHARS {
        return Err(AppError::Unprocessable(format!("alt: must be at most {MAX_ALT_CHARS} characters")));
    }
    if alt.chars().any(char::is_control) {
        return Err(AppError::Unprocessable("alt: must not contain control characters".into()));
    }
    Ok(alt)
}

async fn edit(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
    Path(id): Path<String>,
    body: Result<Json<ImagePatch>, axum::extract::rejection::JsonRejection>,
) -> Result<Json<ImageJson>, AppError> {
    let row = managed(&state, &user, &id).await?;
    let Json(patch) = body?;
    let Some(alt) = patch.alt else { return Ok(Json(image_json(&row))) };
    let alt = alt.as_deref().map(parse_alt).transpose()?;
    let row = state.images.set_alt(&id, alt).await.map_err(api_error(&id))?;
    Ok(Json(image_json(&row)))
}

async fn remove(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
    Path(id): Path<String>,
) -> Result<StatusCode, AppError> {
    managed(&state, &user, &id).await?;
    state.images.delete(&id).await.map_err(api_error(&id))?;
    Ok(StatusCode::NO_CONTENT)
}

/// `?w=&h=&fit=&fmt=&q=`, all optional.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Transform {
    w: Option<u32>,
    h: Option<u32>,
    fit: Option<String>,
    fmt: Option<String>,
    q: Option<u8>,
}

impl Transform {
    /// Validates the query; without `fmt`, the format is negotiated from `accept`.
    fn into_rendition(self, accept: &str) -> Result<Rendition, AppError> {
        for (name, side) in [("w", self.w), ("h", self.h)] {
            if side.is_some_and(|s| s == 0 || s > MAX_OUTPUT_SIDE) {
                return Err(AppError::BadRequest(format!("{name}: must be between 1 and {MAX_OUTPUT_SIDE}")));
            }
        }
        let fit = match self.fit.as_deref() {
            None | Some("contain") => Fit::Contain,
            Some("cover") => Fit::Cover,
            Some(other) => {
                return Err(AppError::BadRequest(format!("fit: {other:?} is not contain or cover")));
            }
        };
        let quality = self.q.unwrap_or(DEFAULT_QUALITY);
        if !(1..=100).contains(&quality) {
            return Err(AppError::BadRequest("q: must be between 1 and 100".into()));
        }
        let format = match self.fmt.as_deref() {
            Some(name) => OutputFormat::from_name(name)
                .ok_or_else(|| AppError::BadRequest(format!("fmt: {name:?} is not jpeg, webp or png")))?,
            None => OutputFormat::negotiate(accept),
        };
        Ok(Rendition { width: self.w, height: self.h, fit, format, quality })
    }
}

async fn show(
    State(state): State<AppState>,
    Path(id): Path<String>,
    query: Result<Query<Transform>, axum::extract::rejection::QueryRejection>,
    headers: HeaderMap,
) -> Result<Response, AppError> {
    let Query(query) = query.map_err(|e| AppError::BadRequest(e.body_text()))?;
    let negotiated = query.fmt.is_none();
    let accept = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()).unwrap_or("");
    let rendition = query.into_rendition(accept)?;
    let row = state.images.find(&id).await.map_err(|error| match error {
        ImageError::NotFound => AppError::NotFound(format!("/images/{id}")),
        other => image_error(other),
    })?;
    let bytes = state.images.render(&row, rendition).await.map_err(image_error)?;
    let etag = format!("\"{}\"", &blake3::hash(&bytes).to_hex()[..32]);
    let mut response = if none_match(&headers, &etag) {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        let mut response = bytes.into_response();
        response
            .headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static(rendition.format.mime()));
        response
    };
    let out = response.headers_mut();
    out.insert(header::ETAG, HeaderValue::from_str(&etag).expect("hex"));
    out.insert(header::CACHE_CONTROL, HeaderValue::from_static(CACHE_CONTROL));
    if negotiated {
        out.insert(header::VARY, HeaderValue::from_static("accept"));
    }
    Ok(response)
}

fn image_error(error: ImageError) -> AppError {
    match error {
        ImageError::Unsupported => AppError::UnsupportedMediaType(error.to_string()),
        ImageError::TooLarge { .. } => AppError::PayloadTooLarge(error.to_string()),
        ImageError::Corrupt(_) => AppError::Unprocessable(error.to_string()),
        ImageError::NotFound => AppError::NotFound("the image".into()),
        ImageError::Busy => AppError::Unavailable("the image workers are busy; retry shortly"),
        ImageError::InUse(why) => AppError::Conflict(why.into()),
        ImageError::Internal(message) => AppError::Internal(anyhow::anyhow!(message)),
    }
}
