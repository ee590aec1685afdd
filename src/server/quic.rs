//! QUIC transport and the h3 bridge: HTTP/3 requests go through the same router as TCP ones.
//!
//! hyper has no HTTP/3, so this module is the glue: it turns an h3 request stream into an
//! `http::Request` whose body reads the stream, calls the router, and writes the response's
//! head, data and trailers back. hyper adds `date` and `content-length` on HTTP/1.1 and HTTP/2;
//! the bridge adds them too, so the three protocols answer header for header alike.

use std::convert::Infallible;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, SystemTime};

use anyhow::Context as _;
use axum::body::Body;
use axum::http::{HeaderValue, Method, Response, Version, header};
use bytes::{Buf, Bytes};
use h3::server::{RequestResolver, RequestStream};
use http_body::{Body as _, Frame, SizeHint};
use http_body_util::BodyExt;
use tower::ServiceExt;

use super::Shared;
use crate::cert::Certificates;
use crate::config::Config;
use crate::peer::{ConnectionInfo, Transport};

type H3Connection = h3::server::Connection<h3_quinn::Connection, Bytes>;

/// Builds the QUIC endpoint on an already bound UDP socket.
pub(crate) fn endpoint(
    config: &Config,
    certs: &Certificates,
    socket: std::net::UdpSocket,
) -> anyhow::Result<quinn::Endpoint> {
    let limits = &config.limits;
    let crypto = crate::tls::quic_config(certs)?;
    let mut server = quinn::ServerConfig::with_crypto(Arc::new(crypto));
    let mut transport = quinn::TransportConfig::default();
    transport
        .max_idle_timeout(Some(limits.idle_timeout.try_into().context("idle_timeout is too long for QUIC")?))
        .max_concurrent_bidi_streams(limits.max_concurrent_streams.into())
        // Bounded windows: quinn's connection window is unbounded by default.
        .stream_receive_window(limits.quic_stream_receive_window.into())
        .receive_window(limits.quic_receive_window.into());
    server.transport_config(Arc::new(transport));
    let runtime = quinn::default_runtime().context("no async runtime for QUIC")?;
    quinn::Endpoint::new(quinn::EndpointConfig::default(), Some(server), socket, runtime)
        .context("starting the QUIC endpoint")
}

/// Accepts QUIC connections until shutdown; each is served in its own tracked task.
pub(crate) async fn accept(endpoint: quinn::Endpoint, shared: Shared) {
    let half_open = HalfOpen::default();
    let threshold = shared.config.limits.quic_retry_threshold as usize;
    loop {
        let permit = tokio::select! {
            permit = shared.connections.clone().acquire_owned() => permit.expect("semaphore is never closed"),
            () = shared.shutdown.cancelled() => return,
        };
        let incoming = tokio::select! {
            incoming = endpoint.accept() => match incoming {
                Some(incoming) => incoming,
                None => return,
            },
            () = shared.shutdown.cancelled() => return,
        };
        // A handshake holds ~60 KB (TLS state, retransmission buffers) until it completes or
        // times out, and a spoofed or abandoned Initial never completes it. Past the threshold
        // the Retry is stateless and a real client pays one round trip.
        if half_open.count() >= threshold && !incoming.remote_address_validated() && incoming.may_retry() {
            match incoming.retry() {
                Ok(()) => shared.stats.quic_retried(),
                Err(error) => error.into_incoming().ignore(),
            }
            continue;
        }
        let Some(slot) = shared.per_ip.admit(incoming.remote_address().ip()) else {
            tracing::debug!(remote = %incoming.remote_address(), "QUIC connection refused: too many open from this address");
            incoming.refuse();
            continue;
        };
        let handshake = half_open.begin();
        let shared = shared.clone();
        shared.tracker.clone().spawn(async move {
            let remote = incoming.remote_address();
            let timeout = shared.config.limits.handshake_timeout;
            let connecting = tokio::time::timeout(timeout, incoming).await;
            drop(handshake);
            match connecting {
                Ok(Ok(connection)) => serve(connection, &shared).await,
                Ok(Err(error)) => tracing::debug!(%remote, %error, "QUIC handshake failed"),
                Err(_) => tracing::debug!(%remote, "QUIC handshake timed out"),
            }
            drop((slot, permit));
        });
    }
}

/// The number of QUIC handshakes in progress on one endpoint.
#[derive(Clone, Default)]
struct HalfOpen(Arc<AtomicUsize>);

impl HalfOpen {
    fn count(&self) -> usize {
        self.0.load(Ordering::Relaxed)
    }

    /// Counts one handshake until the returned guard is dropped.
    fn begin(&self) -> Handshake {
        self.0.fetch_add(1, Ordering::Relaxed);
        Handshake(self.0.clone())
    }
}

/// One handshake counted in [`HalfOpen`] while it lives.
struct Handshake(Arc<AtomicUsize>);

impl Drop for Handshake {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Serves the HTTP/3 requests of one QUIC connection.
async fn serve(connection: quinn::Connection, shared: &Shared) {
    let info = ConnectionInfo { remote: connection.remote_address(), transport: Transport::Quic };
    let _open = shared.stats.connection_opened();
    let mut h3: H3Connection = match h3::server::builder()
        // h3 accepts header sections of any size unless told otherwise.
        .max_field_section_size(shared.config.limits.max_header_size.into())
        .build(h3_quinn::Connection::new(connection))
        .await
    {
        Ok(h3) => h3,
        Err(error) => {
            tracing::debug!(remote = %info.remote, %error, "HTTP/3 setup failed");
            return;
        }
    };
    let mut draining = false;
    loop {
        let next = tokio::select! {
            next = h3.accept() => Some(next),
            () = shared.shutdown.cancelled(), if !draining => None,
            () = shared.force.cancelled() => return,
        };
        match next {
            // GOAWAY: refuse new requests, let the accepted ones finish; accept() then ends.
            None => {
                draining = true;
                if let Err(error) = h3.shutdown(0).await {
                    tracing::debug!(remote = %info.remote, %error, "HTTP/3 GOAWAY failed");
                }
            }
            Some(Ok(Some(resolver))) => {
                let shared = shared.clone();
                shared.tracker.clone().spawn(async move {
                    tokio::select! {
                        () = answer(resolver, info, &shared) => {}
                        () = shared.force.cancelled() => {}
                    }
                });
            }
            Some(Ok(None)) => return,
            Some(Err(error)) => {
                if !error.is_h3_no_error() {
                    tracing::debug!(remote = %info.remote, %error, "HTTP/3 connection ended with an error");
                }
                return;
            }
        }
    }
}

/// Reads one request, runs it through the router and writes the response.
async fn answer(
    resolver: RequestResolver<h3_quinn::Connection, Bytes>,
    info: ConnectionInfo,
    shared: &Shared,
) {
    let (request, stream) = match resolver.resolve_request().await {
        Ok(resolved) => resolved,
        Err(error) => {
            tracing::debug!(remote = %info.remote, %error, "HTTP/3 request rejected");
            return;
        }
    };
    let (mut send, recv) = stream.split();
    let head_only = request.method() == Method::HEAD;
    let mut request = request.map(|()| Body::new(RequestBody { stream: recv }));
    request.extensions_mut().insert(info);
    let response: Response<Body> =
        shared.router.clone().oneshot(request).await.unwrap_or_else(|never: Infallible| match never {});
    let timeout = shared.config.limits.send_timeout;
    if let Err(error) = write_response(&mut send, response, head_only, timeout).await {
        if error.is::<SendTimedOut>() {
            shared.stats.send_timed_out(Version::HTTP_3);
        }
        // quinn finishes a stream that is dropped, which would make a cut-off response look
        // complete: reset it instead.
        send.stop_stream(h3::error::Code::H3_REQUEST_CANCELLED);
        tracing::debug!(remote = %info.remote, %error, "HTTP/3 response not delivered");
    }
}

/// A write the client accepted nothing of within `limits.send_timeout`.
#[derive(Debug, thiserror::Error)]
#[error("send timeout: the client accepted nothing for {0:?}")]
struct SendTimedOut(Duration);

/// Writes a response on a request stream, each write bounded by `timeout`.
async fn write_response(
    send: &mut RequestStream<h3_quinn::SendStream<Bytes>, Bytes>,
    response: Response<Body>,
    head_only: bool,
    timeout: Duration,
) -> anyhow::Result<()> {
    let (mut parts, mut body) = response.into_parts();
    let headers = &mut parts.headers;
    if !headers.contains_key(header::DATE) {
        headers.insert(header::DATE, http_date(SystemTime::now()));
    }
    if let (false, Some(len)) = (headers.contains_key(header::CONTENT_LENGTH), body.size_hint().exact()) {
        headers.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
    }
    within(timeout, send.send_response(Response::from_parts(parts, ()))).await?;
    if !head_only {
        while let Some(frame) = body.frame().await {
            match frame?.into_data() {
                Ok(data) if data.is_empty() => {}
                Ok(data) => within(timeout, send.send_data(data)).await?,
                Err(frame) => {
                    if let Ok(trailers) = frame.into_trailers() {
                        within(timeout, send.send_trailers(trailers)).await?;
                    }
                }
            }
        }
    }
    within(timeout, send.finish()).await?;
    Ok(())
}

/// One write, given `timeout` to complete. h3 resolves a write once quinn has taken its bytes
/// (as the stream, connection and congestion windows allow), so a client that reads nothing
/// stalls it.
async fn within(
    timeout: Duration,
    write: impl Future<Output = Result<(), h3::error::StreamError>>,
) -> anyhow::Result<()> {
    match tokio::time::timeout(timeout, write).await {
        Ok(result) => Ok(result?),
        Err(_) => Err(SendTimedOut(timeout).into()),
    }
}

fn http_date(now: SystemTime) -> HeaderValue {
    HeaderValue::try_from(httpdate::fmt_http_date(now)).expect("an HTTP date is a valid header value")
}

/// An HTTP/3 request body, read from the receiving half of the request stream.
struct RequestBody {
    stream: RequestStream<h3_quinn::RecvStream, Bytes>,
}

impl http_body::Body for RequestBody {
    type Data = Bytes;
    type Error = h3::error::StreamError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        match self.stream.poll_recv_data(cx) {
            Poll::Ready(Ok(Some(mut buf))) => {
                let bytes = buf.copy_to_bytes(buf.remaining());
                Poll::Ready(Some(Ok(Frame::data(bytes))))
            }
            Poll::Ready(Ok(None)) => Poll::Ready(None),
            Poll::Ready(Err(error)) => Poll::Ready(Some(Err(error))),
            Poll::Pending => Poll::Pending,
        }
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::default()
    }
}
