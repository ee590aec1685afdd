//! Turns a panic in a handler into a logged 500 with the request id; the server keeps serving.
//!
//! Written here rather than with tower-http's `CatchPanicLayer` because that layer's response
//! cannot see the request, and the 500 must carry the request id the access log shows.

use std::panic::AssertUnwindSafe;

use axum::extract::Request;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use futures_util::FutureExt;

use crate::error::AppError;

/// Middleware that catches panics from the rest of the stack.
pub(crate) async fn catch(request: Request, next: Next) -> Response {
    let request_id =
        request.headers().get("x-request-id").and_then(|v| v.to_str().ok()).unwrap_or("-").to_owned();
    let path = request.uri().path().to_owned();
    match AssertUnwindSafe(next.run(request)).catch_unwind().await {
        Ok(response) => response,
        Err(payload) => {
            let message = payload
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "non-string panic payload".to_owned());
            tracing::error!(%request_id, %path, panic = %message, "handler panicked");
            AppError::Panic.into_response()
        }
    }
}
