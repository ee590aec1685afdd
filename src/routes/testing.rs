//! Routes compiled only for tests (feature `test-routes`): they exercise failure handling.

use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::Query;
use axum::routing::{any, get};
use bytes::Bytes;
use serde::Deserialize;

use crate::state::AppState;

/// `GET /__test/panic`, `GET /__test/slow`, any method on `/__test/method`.
pub(crate) fn router() -> Router<AppState> {
    Router::new()
        .route("/__test/panic", get(panic))
        .route("/__test/slow", get(slow))
        .route("/__test/method", any(method))
}

/// The method the route saw (after method override) and the body length it received intact.
async fn method(method: axum::http::Method, body: Bytes) -> String {
    format!("{method} {}", body.len())
}

async fn panic() -> &'static str {
    panic!("a handler bug, on purpose")
}

#[derive(Deserialize)]
struct Slow {
    chunks: u32,
    delay_ms: u64,
}

/// Streams `chunks` lines, one every `delay_ms`: an in-flight response shutdown must finish.
async fn slow(Query(slow): Query<Slow>) -> Body {
    let stream = futures_util::stream::unfold(0, move |i| async move {
        if i == slow.chunks {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(slow.delay_ms)).await;
        Some((Ok::<_, std::convert::Infallible>(Bytes::from(format!("chunk {i}\n"))), i + 1))
    });
    Body::from_stream(stream)
}
