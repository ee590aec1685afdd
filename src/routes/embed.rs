//! Sharing a video: the framable player of `/embed/{id}`, oEmbed (`/oembed?url=`), and the
//! absolute URLs a watch page's Open Graph and Twitter card tags give link unfurlers.

use askama::Template;
use axum::Extension;
use axum::Json;
use axum::Router;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::{Deserialize, Serialize};

use crate::db::videos::{Video, Visibility};
use crate::error::AppError;
use crate::peer::ConnectionInfo;
use crate::routes::origin::LinkBase;
use crate::routes::pages::render;
use crate::state::AppState;
use crate::views::viewer;

/// The size an embed gets when the video's own is unknown (16:9, a common player's default).
const DEFAULT_SIZE: (u32, u32) = (640, 360);

/// `GET /embed/{id}` and `GET /oembed`.
pub(crate) fn router() -> Router<AppState> {
    Router::new().route("/embed/{id}", get(embed)).route("/oembed", get(oembed))
}

/// The video `id` as an embed shows it to anyone: public and unlisted; a private one, which a
/// signed URL would have to be minted for in someone else's page, is the 404 of a missing one.
async fn embeddable(state: &AppState, id: &str, path: &str) -> Result<Video, AppError> {
    match state.db.videos().find(id).await? {
        Some(video) if video.visibility != Visibility::Private => Ok(video),
        _ => Err(AppError::NotFound(path.to_owned())),
    }
}

#[derive(Template)]
#[template(path = "embed.html")]
struct EmbedPage {
    id: String,
    title: String,
    stream_url: String,
    mime: String,
    style: &'static str,
}

/// The bare player; it sets the viewer cookie as the watch page does, in its framed form
/// (`viewer::embedded_cookie_if_absent`), so the player's range requests are counted.
async fn embed(
    State(state): State<AppState>,
    Path(id): Path<String>,
    connection: Option<Extension<ConnectionInfo>>,
    headers: HeaderMap,
) -> Result<Response, AppError> {
    let video = embeddable(&state, &id, &format!("/embed/{id}")).await?;
    let page = render(&EmbedPage {
        id: video.file.id.clone(),
        title: video.title.clone(),
        stream_url: video.stream_url(),
        mime: video.file.mime.clone(),
        style: crate::page::EMBED_STYLE,
    })?;
    let mut response = page.into_response();
    let secure = viewer::secure(connection.map(|Extension(c)| c));
    if let Some(cookie) = viewer::embedded_cookie_if_absent(state.views.secret(), &headers, secure) {
        response.headers_mut().append(header::SET_COOKIE, cookie);
        response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("private, no-cache"));
    }
    Ok(response)
}

/// `?url=&maxwidth=&maxheight=&format=` of an oEmbed request (oEmbed 1.0 §2.2); other
/// parameters are ignored, as consumers add their own.
#[derive(Debug, Deserialize)]
struct OEmbedQuery {
    url: Option<String>,
    maxwidth: Option<u32>,
    maxheight: Option<u32>,
    format: Option<String>,
}

/// An oEmbed 1.0 `video` response (§2.3.4.4); no thumbnail: kino has no posters yet.
#[derive(Debug, Serialize)]
struct OEmbed {
    #[serde(rename = "type")]
    kind: &'static str,
    version: &'static str,
    title: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    author_name: Option<String>,
    provider_name: &'static str,
    provider_url: String,
    html: String,
    width: u32,
    height: u32,
}

/// The oEmbed answer for a watch (or embed) URL of this site: 404 for another site's URL, an
/// unknown or a private video; 501 for any format but JSON (§2.3.5).
async fn oembed(
    State(state): State<AppState>,
    LinkBase(origin): LinkBase,
    query: Result<Query<OEmbedQuery>, QueryRejection>,
) -> Result<Json<OEmbed>, AppError> {
    let Query(query) = query.map_err(|e| AppError::BadRequest(e.body_text()))?;
    if let Some(format) = query.format.as_deref().filter(|f| *f != "json") {
        return Err(AppError::NotImplemented(format!(
            "oEmbed format {} is not offered; ask for format=json",
            crate::error::excerpt(format)
        )));
    }
    let url = query.url.ok_or_else(|| AppError::BadRequest("url is required".into()))?;
    if query.maxwidth == Some(0) || query.maxheight == Some(0) {
        return Err(AppError::BadRequest("maxwidth and maxheight must be at least 1".into()));
    }
    let id = video_id(&url, &origin).ok_or_else(|| {
        AppError::NotFound(format!("a video of this site at {}", crate::error::excerpt(&url)))
    })?;
    let video = embeddable(&state, id, &format!("/watch/{id}")).await?;
    let native = match (video.width, video.height) {
        (Some(w), Some(h)) if w > 0 && h > 0 => {
            (u32::try_from(w).unwrap_or(u32::MAX), u32::try_from(h).unwrap_or(u32::MAX))
        }
        _ => DEFAULT_SIZE,
    };
    let (width, height) = fit(native, query.maxwidth, query.maxheight);
    let html = format!(
        "<iframe src=\"{origin}/embed/{id}\" width=\"{width}\" height=\"{height}\" title=\"{}\" \
         frameborder=\"0\" allow=\"fullscreen; picture-in-picture\" allowfullscreen></iframe>",
        escape_attribute(&video.title)
    );
    Ok(Json(OEmbed {
        kind: "video",
        version: "1.0",
        title: video.title.clone(),
        author_name: video.owner.as_ref().map(|o| o.display_name.clone()),
        provider_name: "kino",
        provider_url: format!("{origin}/"),
        html,
        width,
        height,
    }))
}

/// The id in `url` when it is `{origin}/watch/{id}` or `{origin}/embed/{id}` (scheme and host
/// compared without case, a query or fragment allowed).
fn video_id<'a>(url: &'a str, origin: &str) -> Option<&'a str> {
    let head = url.get(..origin.len()).filter(|head| head.eq_ignore_ascii_case(origin))?;
    let path = &url[head.len()..];
    let rest = path.strip_prefix("/watch/").or_else(|| path.strip_prefix("/embed/"))?;
    let id = rest.split(['?', '#']).next().unwrap_or_default();
    (!id.is_empty() && !id.contains('/')).then_some(id)
}

/// `native` scaled down, keeping its aspect ratio, to fit `maxwidth` × `maxheight` (never up:
/// oEmbed's maxima are limits, §2.2).
fn fit((width, height): (u32, u32), maxwidth: Option<u32>, maxheight: Option<u32>) -> (u32, u32) {
    let (w, h) = (f64::from(width), f64::from(height));
    let scale = [maxwidth.map(|m| f64::from(m) / w), maxheight.map(|m| f64::from(m) / h)]
        .into_iter()
        .flatten()
        .fold(1.0_f64, f64::min);
    // Rounded down: a rounded-up side could exceed its maximum by a pixel.
    let side = |v: f64| ((v * scale).floor() as u32).max(1);
    (side(w), side(h))
}

/// `text` for a double-quoted HTML attribute in the oEmbed `html`, which consumers insert as is.
fn escape_attribute(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            c => out.push(c),
        }
    }
    out
}

/// The absolute URLs a watch page gives link unfurlers and oEmbed consumers.
pub(crate) struct Share {
    /// The watch page itself (`og:url`).
    pub(crate) watch_url: String,
    /// The framable player (`twitter:player`).
    pub(crate) embed_url: String,
    /// The oEmbed discovery link's target.
    pub(crate) oembed_url: String,
    /// The stream (`og:video`).
    pub(crate) video_url: String,
    /// The video's width and height, when known.
    pub(crate) size: Option<(i64, i64)>,
}

impl Share {
    /// The URLs of `video` on the site at `origin`.
    pub(crate) fn new(origin: &str, video: &Video) -> Self {
        let id = &video.file.id;
        let watch_url = format!("{origin}/watch/{id}");
        let query = serde_urlencoded::to_string([("url", watch_url.as_str()), ("format", "json")])
            .expect("strings always encode");
        Self {
            embed_url: format!("{origin}/embed/{id}"),
            oembed_url: format!("{origin}/oembed?{query}"),
            video_url: format!("{origin}{}", video.stream_url()),
            size: video.width.zip(video.height),
            watch_url,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_keep_the_aspect_ratio_inside_both_maxima() {
        assert_eq!(fit((1280, 720), None, None), (1280, 720));
        assert_eq!(fit((1280, 720), Some(640), None), (640, 360));
        assert_eq!(fit((1280, 720), Some(640), Some(180)), (320, 180));
        assert_eq!(fit((1280, 720), Some(5000), Some(5000)), (1280, 720), "never scaled up");
        assert_eq!(fit((720, 1280), Some(500), Some(500)), (281, 500), "portrait");
        assert_eq!(fit((1000, 3), Some(10), None), (10, 1), "at least a pixel");
    }

    #[test]
    fn only_this_sites_watch_and_embed_urls_name_a_video() {
        let origin = "https://localhost:8443";
        assert_eq!(video_id("https://localhost:8443/watch/abc", origin), Some("abc"));
        assert_eq!(video_id("HTTPS://LOCALHOST:8443/watch/abc?t=3#x", origin), Some("abc"));
        assert_eq!(video_id("https://localhost:8443/embed/abc", origin), Some("abc"));
        for other in [
            "https://localhost:8443.evil.example/watch/abc",
            "https://evil.example/watch/abc",
            "http://localhost:8443/watch/abc",
            "https://localhost:8443/watch/",
            "https://localhost:8443/watch/a/b",
            "https://localhost:8443/stream/abc",
            "https://localhost:8443",
            "",
        ] {
            assert_eq!(video_id(other, origin), None, "{other}");
        }
    }

    #[test]
    fn titles_cannot_break_out_of_the_iframe_attribute() {
        assert_eq!(escape_attribute(r#"a "b" <c> & d"#), "a &quot;b&quot; &lt;c&gt; &amp; d");
    }
}
