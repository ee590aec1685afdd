//! Server-rendered HTML pages: the library, a watch page per video, and the upload page (the
//! watch page's edit and delete forms post to `routes::manage`).

use askama::Template;
use axum::Extension;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use serde::Deserialize;

use crate::accounts::{MaybeUser, User};
use crate::db::videos::{Video, Visibility};
use crate::error::AppError;
use crate::page::Chrome;
use crate::peer::ConnectionInfo;
use crate::routes::embed::Share;
use crate::routes::manage;
use crate::routes::origin::LinkBase;
use crate::routes::videos::{stream_url, visible};
use crate::state::AppState;
use crate::views::viewer;

/// Videos per library page.
const PER_PAGE: u32 = 24;
/// Images shown under the videos.
const IMAGES: u32 = 48;

/// `GET /`, `GET /watch/{id}` (with the forms' `PATCH` and `DELETE`), `GET /upload`.
pub(crate) fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(library))
        .route("/watch/{id}", get(watch).patch(manage::edit_form).delete(manage::delete_form))
        .route("/upload", get(upload))
}

#[derive(Template)]
#[template(path = "library.html")]
struct LibraryPage {
    chrome: Chrome,
    videos: Vec<Card>,
    images: Vec<ImageCard>,
    page: u32,
    pages: u32,
    prev_page: Option<u32>,
    next_page: Option<u32>,
}

struct Card {
    id: String,
    title: String,
    badge: String,
    duration: String,
    resolution: String,
    views: String,
    /// The uploader's name; `None` for media-folder videos.
    owner: Option<String>,
}

struct ImageCard {
    url: String,
    name: String,
}

#[derive(Deserialize)]
struct PageQuery {
    page: Option<u32>,
}

async fn library(
    State(state): State<AppState>,
    Query(query): Query<PageQuery>,
    chrome: Chrome,
) -> Result<Html<String>, AppError> {
    let db = &state.db;
    let total = u32::try_from(db.videos().count().await?).unwrap_or(u32::MAX);
    let pages = total.div_ceil(PER_PAGE).max(1);
    let page = query.page.unwrap_or(1).clamp(1, pages);
    let videos = db.videos().list(PER_PAGE, u64::from(page - 1) * u64::from(PER_PAGE)).await?;
    let images = db.files().images(IMAGES).await?;
    let page = LibraryPage {
        chrome,
        videos: videos.iter().map(card).collect(),
        images: images
            .into_iter()
            .map(|f| ImageCard {
                url: format!("/media/{}", f.path),
                name: f.path.rsplit('/').next().unwrap_or("").to_owned(),
            })
            .collect(),
        page,
        pages,
        prev_page: (page > 1).then(|| page - 1),
        next_page: (page < pages).then(|| page + 1),
    };
    render(&page)
}

fn card(video: &Video) -> Card {
    Card {
        id: video.file.id.clone(),
        title: video.title.clone(),
        badge: video.video_codec.as_deref().unwrap_or(&video.container).to_uppercase(),
        duration: duration(video.duration_ms),
        resolution: resolution(video),
        views: match video.view_count {
            1 => "1 view".to_owned(),
            n => format!("{n} views"),
        },
        owner: video.owner.as_ref().map(|o| o.display_name.clone()),
    }
}

#[derive(Template)]
#[template(path = "watch.html")]
struct WatchPage {
    chrome: Chrome,
    id: String,
    title: String,
    description: String,
    owner: Option<String>,
    visibility: &'static str,
    /// The select's options, the current one flagged.
    visibilities: Vec<(&'static str, bool)>,
    /// Whether the visitor may edit and delete it (the forms are shown).
    manage: bool,
    stream_url: String,
    mime: String,
    faststart: bool,
    duration: String,
    resolution: String,
    codecs: String,
    size: String,
    views: i64,
    /// Open Graph, Twitter card and oEmbed discovery; `None` for a private video, which no
    /// one else can open anyway.
    share: Option<Share>,
    /// The `<track>` elements: its captions.
    tracks: Vec<Track>,
}

/// A caption track of the watch page's player.
struct Track {
    src: String,
    srclang: String,
    label: String,
}

/// The watch page; it sets the viewer cookie when absent, so the player's first range request
/// already carries it and the IP + User-Agent alias is needed only for direct links. A private
/// video is a 404 to anyone but its owner and admins.
async fn watch(
    State(state): State<AppState>,
    MaybeUser(user): MaybeUser,
    Path(id): Path<String>,
    chrome: Chrome,
    connection: Option<Extension<ConnectionInfo>>,
    headers: HeaderMap,
    LinkBase(origin): LinkBase,
) -> Result<Response, AppError> {
    let video = visible(&state, &id, user.as_ref(), &format!("/watch/{id}")).await?;
    let share = (video.visibility != Visibility::Private).then(|| Share::new(&origin, &video));
    let codecs = [video.video_codec.as_deref(), video.audio_codec.as_deref()]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join(" + ");
    let tracks = state.db.captions().by_video(&video.file.id).await?;
    let tracks = tracks
        .iter()
        .map(|c| Track {
            src: crate::routes::captions::url(c),
            srclang: c.lang.clone(),
            label: c.label.clone(),
        })
        .collect();
    let page = render(&WatchPage {
        chrome,
        id: video.file.id.clone(),
        title: video.title.clone(),
        description: video.description.clone(),
        owner: video.owner.as_ref().map(|o| o.display_name.clone()),
        visibility: video.visibility.as_str(),
        visibilities: Visibility::ALL.iter().map(|v| (v.as_str(), *v == video.visibility)).collect(),
        manage: user.as_ref().is_some_and(|u| u.may_manage(video.owner_id())),
        stream_url: stream_url(&state, &video, user.as_ref()),
        mime: video.file.mime.clone(),
        faststart: video.faststart,
        duration: duration(video.duration_ms),
        resolution: resolution(&video),
        codecs: if codecs.is_empty() { "unknown".to_owned() } else { codecs },
        size: size(video.file.size),
        views: video.view_count,
        share,
        tracks,
    })?;
    let mut response = page.into_response();
    let secure = viewer::secure(connection.map(|Extension(c)| c));
    if let Some(cookie) = viewer::cookie_if_absent(state.views.secret(), &headers, secure) {
        response.headers_mut().append(header::SET_COOKIE, cookie);
        // Each visitor's own cookie: a shared cache must not hand it to the next one.
        response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("private, no-cache"));
    }
    Ok(response)
}

#[derive(Template)]
#[template(path = "upload.html")]
struct UploadPage {
    chrome: Chrome,
    media_dir: String,
    access: UploadAccess,
}

/// What the upload page offers the visitor.
enum UploadAccess {
    /// Nobody is signed in: a link to sign in instead of the form.
    SignIn,
    /// A viewer: they need the uploader role.
    NeedsRole,
    /// The form.
    Allowed,
}

async fn upload(
    State(state): State<AppState>,
    MaybeUser(user): MaybeUser,
    chrome: Chrome,
) -> Result<Html<String>, AppError> {
    let media_dir = state.config.media_dirs.first().map(|d| d.display().to_string()).unwrap_or_default();
    let access = match user.as_ref().map(User::may_upload) {
        None => UploadAccess::SignIn,
        Some(false) => UploadAccess::NeedsRole,
        Some(true) => UploadAccess::Allowed,
    };
    render(&UploadPage { chrome, media_dir, access })
}

/// Renders a page template, a failure being a 500.
pub(crate) fn render(page: &impl Template) -> Result<Html<String>, AppError> {
    Ok(Html(page.render().map_err(anyhow::Error::from)?))
}

/// `1:05`, `1:02:03`, or `—` when unknown.
pub(crate) fn duration(ms: Option<i64>) -> String {
    let Some(ms) = ms else { return "—".to_owned() };
    let s = ms / 1000;
    if s >= 3600 {
        format!("{}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
    } else {
        format!("{}:{:02}", s / 60, s % 60)
    }
}

fn resolution(video: &Video) -> String {
    match (video.width, video.height) {
        (Some(w), Some(h)) => format!("{w}×{h}"),
        _ => "unknown size".to_owned(),
    }
}

/// `1.0 MB`-style sizes (SI units, as file managers show them).
fn size(bytes: i64) -> String {
    let bytes = bytes as f64;
    match bytes {
        b if b >= 1e9 => format!("{:.1} GB", b / 1e9),
        b if b >= 1e6 => format!("{:.1} MB", b / 1e6),
        b if b >= 1e3 => format!("{:.0} kB", b / 1e3),
        b => format!("{b} B"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_and_sizes_read_naturally() {
        assert_eq!(duration(Some(65_000)), "1:05");
        assert_eq!(duration(Some(3_723_000)), "1:02:03");
        assert_eq!(duration(None), "—");
        assert_eq!(size(1_026_409), "1.0 MB");
        assert_eq!(size(49_575), "50 kB");
    }
}
