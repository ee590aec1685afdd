//! Response compression (brotli, zstd, gzip by `Accept-Encoding`) for text-like bodies only.
//!
//! An allow-list rather than tower-http's default deny-list: video, audio and raster images are
//! already compressed (squeezing them burns CPU for nothing), and a range response must never be
//! encoded because its byte positions refer to the identity representation (RFC 9110 §14.1).

use axum::http::{HeaderMap, StatusCode, header};
use tower_http::compression::predicate::{Predicate, SizeAbove};
use tower_http::compression::{CompressionLayer, CompressionLevel};

/// Below this, the compressed frame and headers outweigh the saving.
const MIN_SIZE: u64 = 256;

/// Media types worth compressing.
const COMPRESSIBLE: &[&str] = &[
    "text/",
    "application/json",
    "application/javascript",
    "application/xml",
    "application/manifest+json",
    "image/svg+xml",
];

/// The compression layer of the middleware stack.
pub(crate) fn layer() -> CompressionLayer<impl Predicate> {
    let text_only = |status: StatusCode, _, headers: &HeaderMap, _: &_| {
        let content_type = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
        status != StatusCode::PARTIAL_CONTENT
            && !headers.contains_key(header::CONTENT_RANGE)
            && COMPRESSIBLE.iter().any(|prefix| content_type.starts_with(prefix))
    };
    // Default levels favour ratio on small dynamic bodies; static assets are precompressed.
    CompressionLayer::new()
        .quality(CompressionLevel::Default)
        .compress_when(SizeAbove::new(MIN_SIZE).and(text_only))
}
