//! Images: `POST /api/images` (upload, bomb-safe, stored variants) and `GET /images/{id}`
//! (resized on demand, format negotiated from `Accept`, cached by bytes).
//!
//! On disk, `<data_dir>/images/<id>/` holds `master.{jpg,png}` (orientation applied, metadata
//! stripped), the variants made at upload, `w{320,640,1280}.{webp,jpg}`, and `cache/` with
//! results made on demand. The directory is
//! built under a temporary name and renamed into place, so an image is there whole or not at all.

use std::path::PathBuf;
use std::sync::Arc;

use axum::extract::{DefaultBodyLimit, Path, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine;
use bytes::Bytes;
use image::DynamicImage;
use serde::{Deserialize, Serialize};

use crate::app::AppState;
use crate::db::images::ImageRow;
use crate::db::now_secs;
use crate::error::{AppError, excerpt};
use crate::images::{self, Fit, ImageError, Limits, OutputFormat};
use crate::ingest::multipart::MultipartError;
use crate::range::precondition::none_match;
use crate::routes::upload::{self, FORM_OVERHEAD};

/// Widths made at upload (when the image is wider), each as WebP and JPEG.
const VARIANT_WIDTHS: [u32; 3] = [320, 640, 1280];
/// Quality of stored variants and the default of on-demand output.
const DEFAULT_QUALITY: u8 = 80;
/// The largest output side on demand: bigger requests are refused, not silently shrunk.
const MAX_OUTPUT_SIDE: u32 = 4096;
/// Results are content-addressed by id and parameters, so they never change under a URL.
const CACHE_CONTROL: &str = "public, max-age=31536000, immutable";

/// `POST /api/images`, `GET /images/{id}`.
pub(crate) fn router() -> Router<AppState> {
    Router::new()
        .route("/api/images", post(upload).layer(DefaultBodyLimit::disable()))
        .route("/images/{id}", get(show))
}

/// The cache of on-demand results, weighted by their size in bytes.
pub(crate) type ResultCache = moka::sync::Cache<String, (Bytes, &'static str)>;

/// A cache of `capacity` bytes of encoded images.
pub(crate) fn result_cache(capacity: u64) -> ResultCache {
    moka::sync::Cache::builder()
        .weigher(|_key: &String, (bytes, _): &(Bytes, &'static str)| {
            u32::try_from(bytes.len()).unwrap_or(u32::MAX)
        })
        .max_capacity(capacity)
        .build()
}

#[derive(Serialize)]
struct ImageJson {
    id: String,
    width: i64,
    height: i64,
    source_format: String,
    size: i64,
    url: String,
    variants: Vec<VariantJson>,
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
        width: row.width,
        height: row.height,
        source_format: row.source.clone(),
        size: row.bytes,
        url: format!("/images/{}", row.id),
        variants,
    }
}

/// What the CPU pool hands back from an upload.
struct Processed {
    width: u32,
    height: u32,
    master: (Bytes, &'static str),
    variants: Vec<(String, Bytes)>,
}

async fn upload(State(state): State<AppState>, request: Request) -> Result<Response, AppError> {
    let limits = Limits::default();
    let declared =
        request.headers().get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    // The multipart framing adds a little; anything far beyond the image limit is refused unread.
    let max_body = limits.max_bytes + FORM_OVERHEAD;
    if declared.is_some_and(|len| len > max_body) {
        return Err(AppError::PayloadTooLarge(format!("images are limited to {} bytes", limits.max_bytes)));
    }
    let mut form = upload::form(request, &state.config.limits, max_body)?;
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
    // Header only: a bomb is refused here, before any pixel is decoded or a worker is used.
    let (format, _, _) = images::probe(&data, &limits).map_err(image_error)?;
    let bytes = data.len();
    let processed = state
        .images
        .pool
        .run(move || -> Result<Processed, ImageError> {
            let image = images::decode(&data, &limits)?;
            let master_format =
                if image.color().has_alpha() { OutputFormat::Png } else { OutputFormat::Jpeg };
            let master = images::encode(&image, master_format, 92)?;
            let mut variants = Vec::new();
            for width in VARIANT_WIDTHS.into_iter().filter(|&w| w < image.width()) {
                let resized = images::resize(&image, Some(width), None, Fit::Contain)?;
                for format in [OutputFormat::WebP, OutputFormat::Jpeg] {
                    let encoded = images::encode(&resized, format, DEFAULT_QUALITY)?;
                    variants.push((format!("w{width}.{}", format.extension()), encoded));
                }
            }
            Ok(Processed {
                width: image.width(),
                height: image.height(),
                master: (master, master_format.extension()),
                variants,
            })
        })
        .await
        .map_err(image_error)?
        .map_err(image_error)?;

    let id = random_id();
    let store = state.images.dir.clone();
    let files = {
        let mut files = processed.variants;
        files.push((format!("master.{}", processed.master.1), processed.master.0));
        files
    };
    let dir_id = id.clone();
    tokio::task::spawn_blocking(move || write_image_dir(&store, &dir_id, &files))
        .await
        .map_err(anyhow::Error::from)?
        .map_err(AppError::Internal)?;
    let row = ImageRow {
        id: id.clone(),
        width: i64::from(processed.width),
        height: i64::from(processed.height),
        source: format_name(format).to_owned(),
        master: processed.master.1.to_owned(),
        bytes: i64::try_from(bytes).unwrap_or(i64::MAX),
        created_at: now_secs(),
    };
    row.insert(state.library.db().pool()).await.map_err(|e| AppError::Internal(e.into()))?;
    let location = HeaderValue::try_from(format!("/images/{id}")).expect("ids are URL-safe");
    Ok((StatusCode::CREATED, [(header::LOCATION, location)], Json(image_json(&row))).into_response())
}

/// Writes the files into a temporary directory, syncs them, and renames it to `<store>/<id>`.
fn write_image_dir(store: &std::path::Path, id: &str, files: &[(String, Bytes)]) -> anyhow::Result<()> {
    std::fs::create_dir_all(store)?;
    let staging = tempfile::Builder::new().prefix(".incoming-").tempdir_in(store)?;
    for (name, bytes) in files {
        let path = staging.path().join(name);
        std::fs::write(&path, bytes)?;
        std::fs::File::open(&path)?.sync_all()?;
    }
    std::fs::rename(staging.keep(), store.join(id))?;
    Ok(())
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

async fn show(
    State(state): State<AppState>,
    Path(id): Path<String>,
    query: Result<Query<Transform>, axum::extract::rejection::QueryRejection>,
    headers: HeaderMap,
) -> Result<Response, AppError> {
    let Query(query) = query.map_err(|e| AppError::BadRequest(e.body_text()))?;
    for (name, side) in [("w", query.w), ("h", query.h)] {
        if side.is_some_and(|s| s == 0 || s > MAX_OUTPUT_SIDE) {
            return Err(AppError::BadRequest(format!("{name}: must be between 1 and {MAX_OUTPUT_SIDE}")));
        }
    }
    let fit = match query.fit.as_deref() {
        None | Some("contain") => Fit::Contain,
        Some("cover") => Fit::Cover,
        Some(other) => return Err(AppError::BadRequest(format!("fit: {other:?} is not contain or cover"))),
    };
    let quality = query.q.unwrap_or(DEFAULT_QUALITY);
    if !(1..=100).contains(&quality) {
        return Err(AppError::BadRequest("q: must be between 1 and 100".into()));
    }
    let negotiated = query.fmt.is_none();
    let format = match query.fmt.as_deref() {
        Some(name) => OutputFormat::from_name(name)
            .ok_or_else(|| AppError::BadRequest(format!("fmt: {name:?} is not jpeg, webp or png")))?,
        None => {
            OutputFormat::negotiate(headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()).unwrap_or(""))
        }
    };
    let row = ImageRow::find(state.library.db().pool(), &id)
        .await
        .map_err(|e| AppError::Internal(e.into()))?
        .ok_or_else(|| AppError::NotFound(format!("/images/{id}")))?;
    let dir = state.images.dir.join(&row.id);

    let key = format!("{id}|{:?}|{:?}|{fit:?}|{}|{quality}", query.w, query.h, format.extension());
    let bytes = if let Some((bytes, _)) = state.images.cache.get(&key) {
        bytes
    } else {
        // A variant made at upload, or one made on demand before (the disk cache: it outlives
        // the memory cache and restarts), answers without decoding anything.
        let cached = dir.join("cache").join(format!(
            "{}.{}",
            &blake3::hash(key.as_bytes()).to_hex()[..24],
            format.extension()
        ));
        let stored = match (query.w, query.h, quality, format) {
            (Some(w), None, DEFAULT_QUALITY, OutputFormat::WebP | OutputFormat::Jpeg)
                if VARIANT_WIDTHS.contains(&w) && i64::from(w) < row.width =>
            {
                tokio::fs::read(dir.join(format!("w{w}.{}", format.extension()))).await.ok().map(Bytes::from)
            }
            _ => tokio::fs::read(&cached).await.ok().map(Bytes::from),
        };
        let bytes = match stored {
            Some(bytes) => bytes,
            None => {
                let master = tokio::fs::read(dir.join(format!("master.{}", row.master)))
                    .await
                    .map_err(anyhow::Error::from)?;
                let (w, h) = (query.w, query.h);
                let made = state
                    .images
                    .pool
                    .run(move || -> Result<Bytes, ImageError> {
                        let image: DynamicImage = images::decode(&master, &Limits::default())?;
                        let resized = images::resize(&image, w, h, fit)?;
                        images::encode(&resized, format, quality)
                    })
                    .await
                    .map_err(image_error)?
                    .map_err(image_error)?;
                // Best effort: a failed cache write costs a recomputation later, nothing else.
                let (path, bytes) = (cached, made.clone());
                tokio::task::spawn_blocking(move || {
                    if let Err(error) = crate::fs::write_atomic(&path, &bytes, 0o644) {
                        tracing::warn!(%error, path = %path.display(), "image disk cache write failed");
                    }
                });
                made
            }
        };
        state.images.cache.insert(key, (bytes.clone(), format.mime()));
        bytes
    };
    let etag = format!("\"{}\"", &blake3::hash(&bytes).to_hex()[..32]);
    let mut response = if none_match(&headers, &etag) {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        let mut response = bytes.into_response();
        response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(format.mime()));
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

/// The image side of the app state: where images live, the CPU pool, the result cache.
pub(crate) struct ImageStore {
    pub(crate) dir: PathBuf,
    pub(crate) pool: images::CpuPool,
    pub(crate) cache: ResultCache,
}

impl ImageStore {
    /// Images under `<data_dir>/images`, a pool of one thread per core, a 64 MiB result cache.
    pub(crate) fn new(data_dir: &std::path::Path) -> Arc<Self> {
        Arc::new(Self {
            dir: data_dir.join("images"),
            pool: images::CpuPool::new(images::CpuPool::default_threads(), 64),
            cache: result_cache(64 * 1024 * 1024),
        })
    }
}

fn image_error(error: ImageError) -> AppError {
    match error {
        ImageError::Unsupported => AppError::UnsupportedMediaType(error.to_string()),
        ImageError::TooLarge { .. } => AppError::PayloadTooLarge(error.to_string()),
        ImageError::Corrupt(_) => AppError::Unprocessable(error.to_string()),
        ImageError::Busy => AppError::Unavailable("the image workers are busy; retry shortly"),
        ImageError::Internal(message) => AppError::Internal(anyhow::anyhow!(message)),
    }
}

/// The name stored for an input format: its media subtype (`jpeg`, `png`, `webp`, `gif`).
fn format_name(format: images::Format) -> &'static str {
    format.mime().trim_start_matches("image/")
}

fn random_id() -> String {
    let mut bytes = [0u8; 9];
    getrandom::fill(&mut bytes).expect("the OS provides randomness");
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}
