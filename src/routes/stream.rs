//! Media bytes: `/stream/{id}` for catalogued videos, `/download/{id}` for their originals as
//! attachments, and `/media/{*path}` for any file in a root.

use axum::Router;
use axum::extract::rejection::{PathRejection, QueryRejection};
use std::sync::Arc;

use axum::extract::{FromRequestParts, Path, Query, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method, header};
use axum::response::Response;
use axum::routing::get;
use serde::Deserialize;

use crate::accounts::{self, MaybeUser};
use crate::db::videos::{Video, Visibility};
use crate::error::AppError;
use crate::library::OpenFile;
use crate::peer::ConnectionInfo;
use crate::range::precondition::Validators;
use crate::range::{self, Delivery, Representation};
use crate::state::AppState;
use crate::views;
use crate::views::tracker::ViewTally;
use crate::views::viewer::{self, Identity, NetworkKey};

/// A day in every cache, then revalidated with the ETag (a cheap 304). Not `immutable`: a file
/// replaced in a media root keeps its URL, and viewers must get the new bytes within a day.
const CACHE_CONTROL: &str = "public, max-age=86400";
/// The same for a response that also sets the viewer cookie.
const PRIVATE_CACHE_CONTROL: &str = "private, max-age=86400";
/// A downloaded file's name is cut to this many characters of the title: file systems allow
/// 255 bytes, and a UTF-8 character takes up to four.
const MAX_FILENAME_CHARS: usize = 60;

/// `GET, HEAD /stream/{id}` (also `/stream/{id}.{ext}`), `/download/{id}` and `/media/{*path}`.
pub(crate) fn router() -> Router<AppState> {
    // Their CORS (any origin, for embedded players) is in `middleware::cors`.
    Router::new()
        .route("/stream/{id}", get(stream))
        .route("/download/{id}", get(download))
        .route("/media/{*path}", get(media))
}

/// `?exp=&sig=` of a signed stream URL; other parameters (a player's cache buster) are ignored.
#[derive(Debug, Deserialize)]
struct Signed {
    exp: Option<String>,
    sig: Option<String>,
}

/// A catalogued video by id, view-tracked; an extension after the id is accepted and ignored.
/// A private video is served to its owner and admins, or to a request whose signed URL holds;
/// anyone else gets the 404 of a video that does not exist.
async fn stream(
    State(state): State<AppState>,
    id: Result<Path<String>, PathRejection>,
    signed: Result<Query<Signed>, QueryRejection>,
    request: Request,
) -> Result<Response, AppError> {
    let id = path_param(id)?;
    let id = id.split_once('.').map_or(id.as_str(), |(id, _ext)| id);
    let (mut parts, _) = request.into_parts();
    let (video, open) = authorize(&state, "/stream", id, signed, &mut parts).await?;
    let private = video.visibility == Visibility::Private;
    let (method, headers) = (parts.method, parts.headers);
    let db = &state.db;

    let tracker = &state.views;
    let connection = parts.extensions.get::<ConnectionInfo>().copied();
    let remote = connection.map(|c| c.remote);
    let identity = viewer::identify(tracker.secret(), &headers, remote);
    let viewer = tracker.viewer(&identity);
    let network = NetworkKey::of(tracker.secret(), remote);
    let plan = views::plan(tracker, db, &video).await?;
    let tally = ViewTally::default();
    let observer = tracker.observer(viewer, network, id, plan).with_tally(tally.clone());
    let mut response = serve(&method, &headers, open, Some(Arc::new(observer)));
    // The access log reads it when the body ends, for the request statistics.
    response.extensions_mut().insert(tally);
    if let Identity::Network { new_cookie, .. } = &identity {
        let out = response.headers_mut();
        out.append(header::SET_COOKIE, viewer::set_cookie(new_cookie, viewer::secure(connection)));
        // A response that sets a cookie must not be stored by shared caches.
        out.insert(header::CACHE_CONTROL, HeaderValue::from_static(PRIVATE_CACHE_CONTROL));
    }
    if private {
        // Nor a private video's bytes, which a shared cache would hand to anyone.
        response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static(PRIVATE_CACHE_CONTROL));
    }
    Ok(response)
}

/// The original file of a catalogued video as an attachment named after its title, with the
/// stream's visibility rules and ranges (a download manager resumes), and never a view: the
/// view tracker is not told of its bytes, so the path is no way around the pace rule either.
async fn download(
    State(state): State<AppState>,
    id: Result<Path<String>, PathRejection>,
    signed: Result<Query<Signed>, QueryRejection>,
    request: Request,
) -> Result<Response, AppError> {
    let id = path_param(id)?;
    let (mut parts, _) = request.into_parts();
    let (video, open) = authorize(&state, "/download", &id, signed, &mut parts).await?;
    let mut response = serve(&parts.method, &parts.headers, open, None);
    let out = response.headers_mut();
    out.insert(header::CONTENT_DISPOSITION, attachment(&video.title, video.extension()));
    if video.visibility == Visibility::Private {
        out.insert(header::CACHE_CONTROL, HeaderValue::from_static(PRIVATE_CACHE_CONTROL));
    }
    Ok(response)
}

/// The video `id` and its open file if this request may have its bytes: a private video only
/// with a valid signed URL or for its owner and admins; anyone else gets the 404 (naming
/// `{prefix}/{id}`) of a video that does not exist.
async fn authorize(
    state: &AppState,
    prefix: &str,
    id: &str,
    signed: Result<Query<Signed>, QueryRejection>,
    parts: &mut Parts,
) -> Result<(Video, OpenFile), AppError> {
    let Query(signed) = signed.map_err(|e| AppError::BadRequest(e.body_text()))?;
    // Checked before the catalog is asked, so a refusal says nothing about whether `id` exists.
    let signed = state
        .tokens
        .stream_urls()
        .verify(id, signed.exp.as_deref(), signed.sig.as_deref(), crate::db::now_secs())
        .map_err(|e| AppError::Forbidden(e.to_string()))?;
    let not_found = || AppError::NotFound(format!("{prefix}/{id}"));
    let video = state.db.videos().find(id).await?.ok_or_else(not_found)?;
    // Only a private video without a signature reads who is signed in: every other media
    // request stays off the sessions table.
    if video.visibility == Visibility::Private && !signed {
        let MaybeUser(user) = MaybeUser::from_request_parts(parts, state).await?;
        if !accounts::may_see(user.as_ref(), &video) {
            return Err(not_found());
        }
    }
    let open = state.library.open_video(&video).await?.ok_or_else(not_found)?;
    Ok((video, open))
}

/// `Content-Disposition: attachment` for `title.ext` (RFC 6266): a plain-ASCII `filename` for
/// old clients, and `filename*` (RFC 8187, which obsoletes RFC 5987) with the title in UTF-8
/// when it has more than ASCII. Path separators, controls, quotes and the characters Windows
/// forbids in names become `_`, so the name is one file in the downloads folder.
fn attachment(title: &str, ext: &str) -> HeaderValue {
    let safe: String = title
        .chars()
        .map(|c| if c.is_control() || "\"\\/:*?<>|".contains(c) { '_' } else { c })
        .take(MAX_FILENAME_CHARS)
        .collect();
    // A leading dot would hide the file; trailing dots and spaces Windows drops itself.
    let stem = safe.trim_matches(|c: char| c == '.' || c.is_whitespace());
    let stem = if stem.is_empty() { "video" } else { stem };
    let name = format!("{stem}.{ext}");
    let ascii: String = name.chars().map(|c| if c.is_ascii() { c } else { '_' }).collect();
    let mut value = format!("attachment; filename=\"{ascii}\"");
    if !name.is_ascii() {
        value.push_str("; filename*=UTF-8''");
        for byte in name.bytes() {
            // RFC 8187 §3.2.1 attr-char; every other byte is percent-encoded.
            if byte.is_ascii_alphanumeric() || b"!#$&+-.^_`|~".contains(&byte) {
                value.push(char::from(byte));
            } else {
                value.push_str(&format!("%{byte:02X}"));
            }
        }
    }
    HeaderValue::from_str(&value).expect("controls were replaced, the rest is ASCII")
}

/// Any file under a media root, traversal-proof.
async fn media(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
    method: Method,
    headers: HeaderMap,
) -> Result<Response, AppError> {
    let path = path_param(path)?;
    let not_found = || AppError::NotFound(format!("/media/{path}"));
    let open = state.library.open_media(&path).await?.ok_or_else(not_found)?;
    // An uploaded video's file is in a root too: a private one is served by `/stream` alone,
    // where its owner or signature is checked.
    if open.row.mime.starts_with("video/")
        && state.db.videos().find(&open.row.id).await?.is_some_and(|v| v.visibility == Visibility::Private)
    {
        return Err(not_found());
    }
    Ok(serve(&method, &headers, open, None))
}

/// A path parameter, or a 400 in the error format of the rest of the API (not axum's text).
fn path_param(param: Result<Path<String>, PathRejection>) -> Result<String, AppError> {
    param.map(|Path(value)| value).map_err(|e| AppError::BadRequest(e.body_text()))
}

fn serve(
    method: &Method,
    headers: &HeaderMap,
    open: OpenFile,
    delivery: Option<Arc<dyn Delivery>>,
) -> Response {
    let validators = Validators::new(&open.row.hash, open.modified());
    let mime =
        HeaderValue::from_str(&open.row.mime).unwrap_or(HeaderValue::from_static("application/octet-stream"));
    let representation = Representation {
        len: u64::try_from(open.row.size).unwrap_or(0),
        file: open.file,
        mime,
        validators,
        cache_control: HeaderValue::from_static(CACHE_CONTROL),
        delivery,
    };
    range::respond(method, headers, representation)
}

#[cfg(test)]
mod tests {
    use super::attachment;

    #[test]
    fn download_names_are_one_safe_file_with_the_title_in_utf8() {
        assert_eq!(attachment("sample h264", "mp4"), "attachment; filename=\"sample h264.mp4\"");
        assert_eq!(
            attachment("Café – 東京", "webm"),
            "attachment; filename=\"Caf_ _ __.webm\"; \
             filename*=UTF-8''Caf%C3%A9%20%E2%80%93%20%E6%9D%B1%E4%BA%AC.webm"
        );
        assert_eq!(
            attachment("../etc/\"passwd\"\r\n", "mp4"),
            "attachment; filename=\"_etc__passwd___.mp4\""
        );
        assert_eq!(attachment(" .. ", "mp4"), "attachment; filename=\"video.mp4\"");
        let long = attachment(&"é".repeat(300), "mp4");
        assert!(long.len() < 600, "{long:?}");
    }
}
