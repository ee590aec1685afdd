//! Captions: `GET`/`POST /api/videos/{id}/captions` (the list; an upload by the video's owner or
//! an admin), `DELETE /api/videos/{id}/captions/{caption_id}`, and `GET /captions/{id}.vtt`
//! (WebVTT, SubRip converted on the fly). A caption is as visible as its video.

use axum::extract::{DefaultBodyLimit, Path, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get};
use axum::{Json, Router};
use bytes::Bytes;
use serde::Serialize;

use crate::accounts::{CurrentUser, MaybeUser};
use crate::captions::cue::{self, Format};
use crate::captions::{self, MAX_BYTES, MAX_LABEL_CHARS, lang};
use crate::db::captions::CaptionRow;
use crate::error::{AppError, excerpt};
use crate::ingest::body::UploadBody;
use crate::ingest::multipart::{MultipartError, MultipartReader};
use crate::routes::upload;
use crate::routes::videos::{manageable, visible};
use crate::state::AppState;

/// The caption routes.
pub(crate) fn router() -> Router<AppState> {
    Router::new()
        .route("/api/videos/{id}/captions", get(list).post(create).layer(DefaultBodyLimit::disable()))
        .route("/api/videos/{id}/captions/{caption_id}", delete(remove))
        .route("/captions/{file}", get(serve))
}

/// A caption as the API shows it.
#[derive(Debug, Serialize)]
pub(crate) struct CaptionJson {
    id: String,
    lang: String,
    label: String,
    /// The format of the file (`vtt` or `srt`); `url` is always WebVTT.
    format: String,
    /// `media` (a file beside the video in a media root) or `upload`.
    source: &'static str,
    url: String,
    /// Blocks of the file that are not cues, left out of what `url` serves.
    warnings: i64,
}

impl From<&CaptionRow> for CaptionJson {
    fn from(row: &CaptionRow) -> Self {
        Self {
            id: row.id.clone(),
            lang: row.lang.clone(),
            label: row.label.clone(),
            format: row.format.clone(),
            source: if row.file.is_some() { "media" } else { "upload" },
            url: url(row),
            warnings: row.warnings,
        }
    }
}

/// Where a caption is served as WebVTT.
pub(crate) fn url(row: &CaptionRow) -> String {
    format!("/captions/{}.vtt", row.id)
}

/// `{"captions": [...]}`, so the answer can grow fields.
#[derive(Debug, Serialize)]
struct CaptionList {
    captions: Vec<CaptionJson>,
}

async fn list(
    State(state): State<AppState>,
    MaybeUser(user): MaybeUser,
    Path(id): Path<String>,
) -> Result<Json<CaptionList>, AppError> {
    visible(&state, &id, user.as_ref(), &format!("/api/videos/{id}/captions")).await?;
    let rows = state.db.captions().by_video(&id).await?;
    Ok(Json(CaptionList { captions: rows.iter().map(CaptionJson::from).collect() }))
}

/// The owner (or an admin) adds a caption: form fields `file`, `lang`, optional `label`.
async fn create(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
    Path(id): Path<String>,
    request: Request,
) -> Result<Response, AppError> {
    manageable(&state, &id, &user, &format!("/api/videos/{id}/captions")).await?;
    let mut form = upload::form(request, &state.config.limits, MAX_BYTES as u64)?;
    let (mut file, mut tag, mut label) = (None, None, None);
    while let Some(part) = form.next_part().await? {
        match part.name() {
            Some("file") if file.is_none() => file = Some(field(&mut form, MAX_BYTES, "file").await?),
            Some("lang") if tag.is_none() => tag = Some(text(field(&mut form, 64, "lang").await?)),
            Some("label") if label.is_none() => {
                label = Some(text(field(&mut form, MAX_LABEL_CHARS * 4, "label").await?));
            }
            Some(crate::middleware::csrf::FIELD) => {}
            name => {
                let name = excerpt(name.unwrap_or(""));
                return Err(AppError::Unprocessable(format!("{name}: unexpected or repeated field")));
            }
        }
    }
    let file = file.ok_or_else(|| AppError::Unprocessable("file: required".into()))?;
    let tag = tag.ok_or_else(|| AppError::Unprocessable("lang: required".into()))?;
    let lang = lang::parse(tag.trim()).ok_or_else(|| {
        AppError::Unprocessable(format!("lang: {} is not a language tag such as en or pt-BR", excerpt(&tag)))
    })?;
    let label = match label {
        Some(label) => captions::parse_label(&label).map_err(AppError::Unprocessable)?,
        None => lang::label(&lang),
    };
    let format = captions::check_upload(&file).map_err(|p| AppError::Unprocessable(format!("file: {p}")))?;
    let row = CaptionRow {
        id: crate::id::random_id::<9>(),
        video_id: id,
        lang,
        label,
        format: format.as_str().to_owned(),
        file: None,
        warnings: 0,
        created_at: crate::db::now_secs(),
    };
    state.db.captions().insert_upload(&row, &file).await?;
    let location = HeaderValue::try_from(url(&row)).expect("ids are URL-safe");
    Ok((StatusCode::CREATED, [(header::LOCATION, location)], Json(CaptionJson::from(&row))).into_response())
}

/// One field's bytes, at most `limit`; over it, 413 for the file (the upload is too large) and
/// 422 for a text field (its value is invalid), naming the field.
async fn field(form: &mut MultipartReader<UploadBody>, limit: usize, name: &str) -> Result<Bytes, AppError> {
    form.bytes(limit).await.map_err(|error| match error {
        MultipartError::PartTooLarge { .. } if name == "file" => {
            AppError::PayloadTooLarge(format!("file: caption files are limited to {limit} bytes"))
        }
        MultipartError::PartTooLarge { .. } => {
            AppError::Unprocessable(format!("{name}: at most {limit} bytes"))
        }
        other => other.into(),
    })
}

fn text(bytes: Bytes) -> String {
    String::from_utf8_lossy(&bytes).into_owned()
}

async fn remove(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
    Path((id, caption_id)): Path<(String, String)>,
) -> Result<StatusCode, AppError> {
    let path = format!("/api/videos/{id}/captions/{caption_id}");
    manageable(&state, &id, &user, &path).await?;
    let caption = state.db.captions().find(&caption_id).await?.filter(|c| c.video_id == id);
    let caption = caption.ok_or(AppError::NotFound(path))?;
    if caption.file.is_some() {
        return Err(AppError::Conflict(
            "this caption is a file in a media root, which kino never writes to; remove the file and run `kino scan`"
                .into(),
        ));
    }
    state.db.captions().delete(&caption.id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /captions/{id}.vtt`: the caption as WebVTT, for whoever may see its video.
async fn serve(
    State(state): State<AppState>,
    MaybeUser(user): MaybeUser,
    Path(file): Path<String>,
) -> Result<Response, AppError> {
    let not_found = || AppError::NotFound(format!("/captions/{file}"));
    let id = file.strip_suffix(".vtt").ok_or_else(not_found)?;
    let caption = state.db.captions().find(id).await?.ok_or_else(not_found)?;
    let video = visible(&state, &caption.video_id, user.as_ref(), &format!("/captions/{file}")).await?;
    let bytes = match &caption.file {
        Some(f) => state.library.read_small(&f.root, &f.path, MAX_BYTES).await?,
        None => state.db.captions().content(&caption.id).await?,
    };
    let bytes = bytes.ok_or_else(not_found)?;
    let format = Format::from_extension(&caption.format).unwrap_or(Format::Vtt);
    let (vtt, _) = cue::webvtt(&bytes, format);
    // A private video's captions are its viewer's alone: no shared cache keeps them.
    let cache = if video.visibility == crate::db::videos::Visibility::Private {
        "private, no-cache"
    } else {
        "public, max-age=60"
    };
    let headers = [
        (header::CONTENT_TYPE, HeaderValue::from_static(captions::WEBVTT_TYPE)),
        (header::CACHE_CONTROL, HeaderValue::from_static(cache)),
    ];
    Ok((headers, vtt).into_response())
}
