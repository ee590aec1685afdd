//! One access-log line per request, written when the response body ends or is dropped.
//!
//! Logged at the end rather than when the head is sent, so the line carries the body bytes
//! actually delivered and whether the client stayed to the end (a closed video tab aborts).
//! The same end feeds the metrics and the per-minute request statistics.

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use axum::body::Body;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{Method, StatusCode, Version};
use axum::middleware::Next;
use axum::response::Response;
use bytes::Bytes;
use http_body::{Body as _, Frame, SizeHint};

use crate::metrics::{ActiveStream, Outcome, RouteClass, Stats, protocol_label};
use crate::peer::ConnectionInfo;
use crate::state::AppState;
use crate::stats::Aggregate;
use crate::stats::aggregate::UNMATCHED;
use crate::views::tracker::ViewTally;

/// Middleware that wraps the response body so its end is logged and counted.
pub(crate) async fn log(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let start = Instant::now();
    let class = RouteClass::of(request.method(), request.uri().path());
    let entry = Entry {
        method: request.method().clone(),
        path: request.uri().path().to_owned(),
        route: None,
        version: request.version(),
        remote: request.extensions().get::<ConnectionInfo>().map(|c| c.remote),
        request_id: request
            .headers()
            .get("x-request-id")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("-")
            .to_owned(),
        status: StatusCode::OK,
        class,
        start,
        stats: state.stats.clone(),
        aggregate: state.request_stats.clone(),
        views: None,
        _stream: None,
    };
    let response = next.run(request).await;
    let status = response.status();
    let views = response.extensions().get::<ViewTally>().cloned();
    // The template (`/stream/{id}`), not the path: the statistics' keys stay few.
    let route = response.extensions().get::<MatchedPath>().cloned();
    let stream = (class == RouteClass::Media && status.is_success()).then(|| state.stats.stream_started());
    let entry = Entry { status, views, route, _stream: stream, ..entry };
    response.map(|body| Body::new(LoggedBody { inner: body, bytes: 0, entry: Some(entry) }))
}

/// Hands the route template the router matched on to the access log, on the response: the log
/// runs outside the routing (method override must run before a route is picked, `app::router`),
/// where the request never carries it.
pub(crate) async fn mark_route(request: Request, next: Next) -> Response {
    let route = request.extensions().get::<MatchedPath>().cloned();
    let mut response = next.run(request).await;
    if let Some(route) = route {
        response.extensions_mut().insert(route);
    }
    response
}

struct Entry {
    method: Method,
    path: String,
    route: Option<MatchedPath>,
    version: Version,
    remote: Option<SocketAddr>,
    request_id: String,
    status: StatusCode,
    class: RouteClass,
    start: Instant,
    stats: Arc<Stats>,
    aggregate: Arc<Aggregate>,
    /// The views a media response made count, filled in while its body goes out.
    views: Option<ViewTally>,
    /// Holds a media response in `kino_streams_active` until its body ends.
    _stream: Option<ActiveStream>,
}

impl Entry {
    fn finish(self, bytes: u64, complete: bool) {
        let elapsed = self.start.elapsed();
        let micros = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX);
        let outcome = Outcome {
            version: self.version,
            status: self.status,
            class: self.class,
            bytes,
            micros,
            complete,
            views: self.views.as_ref().map_or(0, ViewTally::get),
        };
        self.stats.record(&outcome);
        let route = self.route.as_ref().map_or(UNMATCHED, MatchedPath::as_str);
        self.aggregate.record(crate::db::now_secs(), route, &outcome);
        tracing::info!(
            target: "kino::access",
            method = %self.method,
            path = %self.path,
            status = self.status.as_u16(),
            bytes,
            duration_ms = micros as f64 / 1000.0,
            protocol = protocol_label(self.version),
            remote = %self.remote.map_or_else(|| "-".to_owned(), |a| a.to_string()),
            request_id = %self.request_id,
            complete,
        );
    }
}

/// A body that counts the bytes polled out of it and logs its [`Entry`] once.
struct LoggedBody {
    inner: Body,
    bytes: u64,
    entry: Option<Entry>,
}

impl http_body::Body for LoggedBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        let poll = Pin::new(&mut self.inner).poll_frame(cx);
        match &poll {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    self.bytes += data.len() as u64;
                }
            }
            Poll::Ready(None) => self.end(true),
            Poll::Ready(Some(Err(_))) => self.end(false),
            Poll::Pending => {}
        }
        poll
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl LoggedBody {
    fn end(&mut self, complete: bool) {
        if let Some(entry) = self.entry.take() {
            entry.finish(self.bytes, complete);
        }
    }
}

impl Drop for LoggedBody {
    fn drop(&mut self) {
        // Servers drop bodies without polling them when there is nothing to send (HEAD, 304,
        // empty bodies): that is a complete response, not an abort.
        let complete =
            self.inner.is_end_stream() || self.entry.as_ref().is_some_and(|e| e.method == Method::HEAD);
        self.end(complete);
    }
}
