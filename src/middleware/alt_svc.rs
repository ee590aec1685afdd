//! Advertises HTTP/3 with `Alt-Svc` on every response that came over TLS or QUIC.

use axum::extract::{Request, State};
use axum::http::header::ALT_SVC;
use axum::middleware::Next;
use axum::response::Response;

use crate::peer::{ConnectionInfo, Transport};
use crate::state::AppState;

/// Middleware that adds `Alt-Svc: h3=":<port>"; ma=86400` to secure responses.
///
/// Plain-HTTP responses get none: browsers only use HTTP/3 for `https` origins.
pub(crate) async fn advertise(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let secure =
        request.extensions().get::<ConnectionInfo>().is_some_and(|c| c.transport != Transport::Plain);
    let mut response = next.run(request).await;
    if secure {
        response.headers_mut().insert(ALT_SVC, state.alt_svc.clone());
    }
    response
}
