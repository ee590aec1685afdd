//! Static assets (`/static/…`): compiled into the binary, with their precompressed siblings.
//!
//! Pages link `/static/kino.css?v=<hash>`: under that URL the file never changes, so it is cached
//! for a year (`immutable`); without the current `v` it is revalidated with its ETag instead.

use std::sync::LazyLock;

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::Deserialize;

use crate::app::AppState;
use crate::error::AppError;
use crate::range::precondition::none_match;

/// One asset and its encodings.
struct Asset {
    name: &'static str,
    mime: &'static str,
    raw: &'static [u8],
    /// `(content-coding, bytes)`, best first; made with `brotli -q 11` and `gzip -9 -n`.
    encoded: &'static [(&'static str, &'static [u8])],
    /// 64 bits of BLAKE3 of the raw bytes, hex.
    hash: String,
}

macro_rules! asset {
    ($name:literal, $mime:literal) => {{
        let raw: &'static [u8] = include_bytes!(concat!("../static/", $name));
        Asset {
            name: $name,
            mime: $mime,
            raw,
            encoded: &[
                ("br", include_bytes!(concat!("../static/", $name, ".br"))),
                ("gzip", include_bytes!(concat!("../static/", $name, ".gz"))),
            ],
            hash: blake3::hash(raw).to_hex()[..16].to_owned(),
        }
    }};
}

static ASSETS: LazyLock<Vec<Asset>> = LazyLock::new(|| vec![asset!("kino.css", "text/css; charset=utf-8")]);

/// The versioned URL of an asset, for templates.
pub(crate) fn url(name: &str) -> String {
    let asset = ASSETS.iter().find(|a| a.name == name).expect("a known asset name");
    format!("/static/{}?v={}", asset.name, asset.hash)
}

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
    let asset = ASSETS
        .iter()
        .find(|a| a.name == name)
        .ok_or_else(|| AppError::NotFound(format!("/static/{name}")))?;
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

    #[test]
    fn every_asset_has_a_versioned_url() {
        assert!(url("kino.css").starts_with("/static/kino.css?v="));
    }
}
