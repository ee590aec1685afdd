//! `HEAD` answers carry headers only. axum drops the body where it picks the route, but here that
//! is inside the stack (method override must run before routing, see `app::router`), so the
//! bodies the stack adds afterwards (rendered error pages) are dropped here, outermost.

use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderValue, Method, header};
use axum::middleware::Next;
use axum::response::Response;
use http_body::Body as _;

/// Middleware: a `HEAD` response keeps the `Content-Length` of the body it would have had, and
/// loses the body.
pub(crate) async fn strip(request: Request, next: Next) -> Response {
    let head = request.method() == Method::HEAD;
    let mut response = next.run(request).await;
    if head {
        if let Some(length) = response.body().size_hint().exact() {
            response.headers_mut().entry(header::CONTENT_LENGTH).or_insert(HeaderValue::from(length));
        }
        *response.body_mut() = Body::empty();
    }
    response
}
