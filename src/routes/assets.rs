//! `/static/…`: the compiled-in assets, negotiated by `Accept-Encoding`.
//!
//! Pages link `/static/kino.css?v=<hash>`: under that URL the file never changes, so it is cached
//! for a year (`immutable`); without the current `v` it is revalidated with its ETag instead.

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::Deserialize;

use crate::assets;
use crate::error::AppError;
use crate::range::precondition::none_match;
use crate::state::AppState;

/// `GET, HEAD /static/{name}`.
pub(crate) fn router() -> Router<AppState> {
    Router::new().route("/static/{name}", get(serve))
}

#[derive(Deserialize)]
struct Version {
    v: Option<String>,
}

async fn serve(
    State(_): State<AppState>,
    Path(name): Path<String>,
    Query(version): Query<Version>,
    headers: HeaderMap,
) -> Result<Response, AppError> {
    let asset = assets::find(&name).ok_or_else(|| AppError::NotFound(format!("/static/{name}")))?;
    let accept = headers.get(header::ACCEPT_ENCODING).and_then(|v| v.to_str().ok()).unwrap_or("");
    let (coding, body) = asset
        .encoded
        .iter()
        .find(|(coding, _)| accepts(accept, coding))
        .map_or((None, asset.raw), |(coding, bytes)| (Some(*coding), *bytes));
    // Each encoding is a different representation, so each gets its own strong tag.
    let etag = format!("\"{}{}\"", asset.hash, coding.map_or(String::new(), |c| format!("-{c}")));
    let cache = if version.v.as_deref() == Some(asset.hash.as_str()) {
        "public, max-age=31536000, immutable"
    } else {
        "public, no-cache"
    };
    let mut response = if none_match(&headers, &etag) {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        let mut response = body.into_response();
        let out = response.headers_mut();
        out.insert(header::CONTENT_TYPE, HeaderValue::from_static(asset.mime));
        if let Some(coding) = coding {
            out.insert(header::CONTENT_ENCODING, HeaderValue::from_static(coding));
        }
        response
    };
    let out = response.headers_mut();
    out.insert(header::ETAG, HeaderValue::from_str(&etag).expect("hex"));
    out.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    out.insert(header::VARY, HeaderValue::from_static("accept-encoding"));
    Ok(response)
}

/// Whether an `Accept-Encoding` value accepts `coding` (listed with q > 0, or via `*`).
fn accepts(header: &str, coding: &str) -> bool {
    let mut wildcard = None;
    for item in header.split(',') {
        let mut parts = item.split(';');
        let name = parts.next().unwrap_or("").trim();
        let q = parts
            .filter_map(|p| p.trim().strip_prefix("q="))
            .find_map(|q| q.trim().parse::<f32>().ok())
            .unwrap_or(1.0);
        if name.eq_ignore_ascii_case(coding) {
            return q > 0.0;
        }
        if name == "*" {
            wildcard = Some(q > 0.0);
        }
    }
    wildcard.unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_encoding_q_values() {
        assert!(accepts("gzip, br", "br"));
        assert!(accepts("br;q=0.5", "br"));
        assert!(!accepts("br;q=0", "br"));
        assert!(accepts("*", "gzip"));
        assert!(!accepts("gzip;q=0, *", "gzip"));
        assert!(!accepts("", "br"));
        assert!(!accepts("identity", "gzip"));
    }
}
