//! Media bytes: `/stream/{id}` for catalogued videos and `/media/{*path}` for any file in a root.

use axum::Router;
use axum::extract::rejection::{PathRejection, QueryRejection};
use std::sync::Arc;

use axum::extract::{FromRequestParts, Path, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, header};
use axum::response::Response;
use axum::routing::get;
use serde::Deserialize;

use crate::accounts::{self, MaybeUser};
use crate::db::videos::Visibility;
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

/// `GET, HEAD /stream/{id}` (also `/stream/{id}.{ext}`) and `GET, HEAD /media/{*path}`.
pub(crate) fn router() -> Router<AppState> {
    // Their CORS (any origin, for embedded players) is in `middleware::cors`.
    Router::new().route("/stream/{id}", get(stream)).route("/media/{*path}", get(media))
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
    let Query(signed) = signed.map_err(|e| AppError::BadRequest(e.body_text()))?;
    // Checked before the catalog is asked, so a refusal says nothing about whether `id` exists.
    let signed = state
        .tokens
        .stream_urls()
        .verify(id, signed.exp.as_deref(), signed.sig.as_deref(), crate::db::now_secs())
        .map_err(|e| AppError::Forbidden(e.to_string()))?;
    let not_found = || AppError::NotFound(format!("/stream/{id}"));
    let db = &state.db;
    let video = db.videos().find(id).await?.ok_or_else(not_found)?;
    let (mut parts, _) = request.into_parts();
    let private = video.visibility == Visibility::Private;
    // Only a private video without a signature reads who is signed in: every other media
    // request stays off the sessions table.
    if private && !signed {
        let MaybeUser(user) = MaybeUser::from_request_parts(&mut parts, &state).await?;
        if !accounts::may_see(user.as_ref(), &video) {
            return Err(not_found());
        }
    }
    let open = state.library.open_video(&video).await?.ok_or_else(not_found)?;
    let (method, headers) = (parts.method, parts.headers);

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
