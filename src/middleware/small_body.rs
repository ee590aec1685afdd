//! Holds an HTTP/2 answer until the request's body has ended, when that body is small, so h2
//! checks all of it: its length against `content-length` (RFC 9113 §8.1.1), its trailers
//! (§8.1: no pseudo-header fields, END_STREAM).
//!
//! A handler that needs no body (a 404, a 405, a page) answers at once. Without this layer,
//! hyper then closes the stream with `RST_STREAM(NO_ERROR)` (§8.1 allows a complete early
//! answer) and h2 ignores the frames that come after it, so a malformed body goes unnoticed
//! whenever it arrives after the answer: h2spec's 8.1.2.6 (content-length mismatch), 8.1 #1 and
//! 8.1.2.1 #3 (bad trailers) passed or failed by that timing. Waiting for the end lets h2 see
//! every frame of the stream and reset it with `PROTOCOL_ERROR` when one is wrong.
//!
//! Here rather than in the transport because only the stack knows when the handler is done with
//! the body; outside the body timeout because only the transport's own body still tells whether
//! END_STREAM has come. Nothing is buffered: the handler reads the body as it always did
//! (uploads stream), and only a body it never touched is read and dropped here, at most
//! [`MAX_UNREAD`] bytes within one `limits.body_idle_timeout` in all, so trickling holds a stream
//! no longer than that. A handler that started reading and then answered has judged the body
//! (an upload cut off as too slow, a form refused midway): its answer goes at once, as before.
//! So does the answer to a body declared longer (an upload) or one whose client waits for
//! `100 Continue`. HTTP/1.1 needs none of this: its `content-length` is the framing itself (the
//! bytes after it are the next request).

use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::header::{CONTENT_LENGTH, EXPECT};
use axum::http::{HeaderName, Version};
use axum::middleware::Next;
use axum::response::Response;
use bytes::Bytes;
use http_body::{Body as _, Frame, SizeHint};
use http_body_util::BodyExt;

/// The most unread body an answer waits for: four default-sized DATA frames. Longer bodies are
/// uploads, whose handlers read them anyway.
pub(crate) const MAX_UNREAD: u64 = 64 * 1024;

/// Middleware that reads the rest of a small HTTP/2 request body before answering (see the
/// module docs); `deadline` bounds the wait.
pub(crate) async fn finish(State(deadline): State<Duration>, request: Request, next: Next) -> Response {
    if !has_small_unread_body(&request) {
        return next.run(request).await;
    }
    let (parts, body) = request.into_parts();
    let claim = Arc::new(Mutex::new(Claim { body, touched: false }));
    let response = next.run(Request::from_parts(parts, Body::new(Shared(claim.clone())))).await;
    // Still shared: the handler streams the body into its answer, so the body is its to end.
    if let Ok(claim) = Arc::try_unwrap(claim) {
        let claim = claim.into_inner().unwrap_or_else(PoisonError::into_inner);
        if !claim.touched {
            // A stall, or an error (h2 has then reset the stream itself), lets the answer go.
            let _ = tokio::time::timeout(deadline, discard(claim.body)).await;
        }
    }
    response
}

/// Whether `request` is HTTP/2, its body has not ended yet, and its length is undeclared or at
/// most [`MAX_UNREAD`] (h2 has already refused a malformed or contradictory `content-length`).
fn has_small_unread_body(request: &Request) -> bool {
    let header = |name: HeaderName| request.headers().get(name).and_then(|value| value.to_str().ok());
    let small = header(CONTENT_LENGTH).is_none_or(|n| n.parse::<u64>().is_ok_and(|n| n <= MAX_UNREAD));
    let waits_for_continue = header(EXPECT).is_some_and(|e| e.eq_ignore_ascii_case("100-continue"));
    request.version() == Version::HTTP_2 && !request.body().is_end_stream() && small && !waits_for_continue
}

/// Reads `body` to its end, or to its first error, dropping the bytes.
async fn discard(mut body: Body) {
    let mut read = 0u64;
    while let Some(Ok(frame)) = body.frame().await {
        read += frame.data_ref().map_or(0, |data| data.len() as u64);
        // An undeclared length may be long: past this it is an upload's, answered early.
        if read > MAX_UNREAD {
            break;
        }
    }
}

/// The request body, and whether the handler has read from it.
struct Claim {
    body: Body,
    touched: bool,
}

/// The request body as the handler sees it, while the middleware keeps a claim on it.
struct Shared(Arc<Mutex<Claim>>);

impl Shared {
    fn claim(&self) -> std::sync::MutexGuard<'_, Claim> {
        // Never contended: the middleware only takes the body once the handler has let go.
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl http_body::Body for Shared {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        let mut claim = self.claim();
        claim.touched = true;
        Pin::new(&mut claim.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.claim().body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.claim().body.size_hint()
    }
}
