//! TCP transport: accept, spawn, (TLS handshake), pick HTTP/1.1 or HTTP/2, serve with hyper.
//!
//! HTTP/2 is chosen by ALPN on TLS and by the connection preface on plain TCP (h2c with prior
//! knowledge). HTTP/1.1 connections are parked between bursts of requests (`park.rs`).

use std::convert::Infallible;
use std::future::{Future, poll_fn};
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::Version;
use hyper::body::Incoming;
use hyper::server::conn::{http1, http2};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::Instant;
use tokio_rustls::TlsAcceptor;
use tower::ServiceExt;

use super::connection::{Activity, TrackedBody};
use super::park::{PARK_AFTER, Park, Parkable, Socket};
use super::stall::{SendTimeout, StreamExecutor};
use super::{Shared, accept_backoff};
use crate::peer::{ConnectionInfo, Transport};

/// What a plain-TCP HTTP/2 connection starts with (RFC 9113 §3.4).
const H2_PREFACE: &[u8; 24] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// hyper's connection builders, configured once with every limit.
struct Builders {
    http1: http1::Builder,
    http2: http2::Builder<StreamExecutor>,
}

/// Accepts connections until shutdown; each is served in its own tracked task.
pub(crate) async fn accept(listener: TcpListener, tls: Option<TlsAcceptor>, shared: Shared) {
    let builders = Arc::new(Builders::new(&shared));
    let mut failures = 0;
    loop {
        // Waiting for a connection slot here (not after accept) leaves excess clients in the
        // kernel's backlog instead of holding sockets we will not serve.
        let permit = tokio::select! {
            permit = shared.connections.clone().acquire_owned() => permit.expect("semaphore is never closed"),
            () = shared.shutdown.cancelled() => return,
        };
        let (stream, remote) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => { failures = 0; accepted }
                Err(error) => { accept_backoff(&mut failures, &error).await; continue; }
            },
            () = shared.shutdown.cancelled() => return,
        };
        let Some(slot) = shared.per_ip.admit(remote.ip()) else {
            tracing::debug!(%remote, "connection refused: too many open from this address");
            continue;
        };
        let _ = stream.set_nodelay(true);
        let stream = SendTimeout::new(stream, shared.config.limits.send_timeout, shared.stats.clone());
        let (shared, tls, builders) = (shared.clone(), tls.clone(), builders.clone());
        shared.tracker.clone().spawn(async move {
            // Each stage is boxed and freed when done, so a long-lived idle connection's task
            // holds only the stage it is in, not room for the largest (a TLS handshake).
            match tls {
                None => Box::pin(serve_plain(stream, remote, &builders, &shared)).await,
                Some(tls) => Box::pin(serve_tls(stream, remote, tls, &builders, &shared)).await,
            }
            drop((slot, permit));
        });
    }
}

/// Serves a plain-TCP connection: HTTP/1.1, or HTTP/2 with prior knowledge (h2c).
async fn serve_plain(
    mut stream: SendTimeout<TcpStream>,
    remote: SocketAddr,
    builders: &Builders,
    shared: &Shared,
) {
    let info = ConnectionInfo { remote, transport: Transport::Plain };
    match sniff(stream.get_ref(), shared.config.limits.header_read_timeout).await {
        Some(true) => {
            stream.set_version(Version::HTTP_2);
            Box::pin(serve_http2(stream, info, builders, shared)).await;
        }
        Some(false) => Box::pin(serve_http1(stream, info, builders, shared)).await,
        None => {}
    }
}

/// Completes the TLS handshake, then serves the protocol ALPN chose.
async fn serve_tls(
    stream: SendTimeout<TcpStream>,
    remote: SocketAddr,
    tls: TlsAcceptor,
    builders: &Builders,
    shared: &Shared,
) {
    let timeout = shared.config.limits.handshake_timeout;
    let mut stream = match Box::pin(tokio::time::timeout(timeout, tls.accept(stream))).await {
        Ok(Ok(stream)) => stream,
        Ok(Err(error)) => return tracing::debug!(%remote, %error, "TLS handshake failed"),
        Err(_) => return tracing::debug!(%remote, "TLS handshake timed out"),
    };
    let info = ConnectionInfo { remote, transport: Transport::Tls };
    if stream.get_ref().1.alpn_protocol() == Some(b"h2") {
        stream.get_mut().0.set_version(Version::HTTP_2);
        Box::pin(serve_http2(stream, info, builders, shared)).await;
    } else {
        Box::pin(serve_http1(stream, info, builders, shared)).await;
    }
}

impl Builders {
    fn new(shared: &Shared) -> Self {
        let limits = &shared.config.limits;
        let mut http1 = http1::Builder::new();
        http1
            // Without a timer hyper silently ignores the header timeout.
            .timer(TokioTimer::new())
            .header_read_timeout(limits.header_read_timeout)
            .max_buf_size(limits.max_header_size.max(8192) as usize)
            .keep_alive(true);
        let mut http2 = http2::Builder::new(StreamExecutor::new(limits.send_timeout, shared.stats.clone()));
        http2
            .timer(TokioTimer::new())
            .keep_alive_interval(limits.http2_keep_alive_interval)
            .keep_alive_timeout(limits.http2_keep_alive_interval)
            .max_concurrent_streams(limits.max_concurrent_streams)
            .max_header_list_size(limits.max_header_size);
        Self { http1, http2 }
    }
}

/// Whether a plain connection speaks HTTP/2 (`Some(true)`), HTTP/1.1 (`Some(false)`), or closed
/// or stayed silent for `timeout` (`None`). Peeks, so the bytes stay for hyper.
async fn sniff(stream: &TcpStream, timeout: Duration) -> Option<bool> {
    let deadline = Instant::now() + timeout;
    let mut buf = [0u8; H2_PREFACE.len()];
    loop {
        let n = tokio::time::timeout_at(deadline, stream.peek(&mut buf)).await.ok()?.ok()?;
        if n == 0 {
            return None;
        }
        if buf[..n] != H2_PREFACE[..n] {
            return Some(false);
        }
        if n == H2_PREFACE.len() {
            return Some(true);
        }
        // Part of the preface so far; peeking again at once would see the same bytes.
        tokio::time::timeout_at(deadline, tokio::time::sleep(Duration::from_millis(5))).await.ok()?;
    }
}

type ResponseFuture =
    Pin<Box<dyn Future<Output = Result<hyper::Response<TrackedBody<Body>>, Infallible>> + Send>>;

/// The hyper service of one connection: the router, with the connection's info on every request
/// and every response counted in flight until its body is dropped.
#[derive(Clone)]
struct ConnectionService {
    router: Router,
    info: ConnectionInfo,
    activity: Arc<Activity>,
    /// `limits.max_header_size`, enforced here for HTTP/1.1 (h2 and h3 enforce their own).
    max_header_size: usize,
}

impl hyper::service::Service<hyper::Request<Incoming>> for ConnectionService {
    type Response = hyper::Response<TrackedBody<Body>>;
    type Error = Infallible;
    /// Boxed: hyper hands an HTTP/1.1 socket back (parking) only from a connection whose
    /// futures are `Unpin`.
    type Future = ResponseFuture;

    fn call(&self, mut request: hyper::Request<Incoming>) -> ResponseFuture {
        let in_flight = self.activity.begin();
        // hyper bounds an HTTP/1.1 head only by its read buffer, which one read can overshoot
        // by several KiB; measured here like h2 and h3 measure theirs, all three agree.
        if request.version() <= Version::HTTP_11 && field_section_size(&request) > self.max_header_size {
            let response = hyper::Response::builder()
                .status(http::StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE)
                .header(http::header::CONNECTION, "close")
                .body(TrackedBody::new(Body::empty(), in_flight))
                .expect("a valid response");
            return Box::pin(std::future::ready(Ok(response)));
        }
        request.extensions_mut().insert(self.info);
        let response = self.router.clone().oneshot(request.map(Body::new));
        Box::pin(async move {
            let response = response.await.unwrap_or_else(|never: Infallible| match never {});
            Ok(response.map(|body| TrackedBody::new(body, in_flight)))
        })
    }
}

impl ConnectionService {
    fn new(shared: &Shared, info: ConnectionInfo, activity: &Arc<Activity>) -> Self {
        let max_header_size = shared.config.limits.max_header_size as usize;
        Self { router: shared.router.clone(), info, activity: activity.clone(), max_header_size }
    }
}

/// The size of a request head as HTTP/2 and HTTP/3 count a field section (RFC 9113 §6.5.2,
/// RFC 9114 §4.2.2): each field's name and value plus 32 bytes, with the request line counted
/// as the `:method` and `:path` pseudo-fields. Never less than the head's bytes on the wire
/// (a field there costs its name and value plus 4), barring padding, which hyper's read
/// buffer bounds.
fn field_section_size<B>(request: &hyper::Request<B>) -> usize {
    const FIELD_OVERHEAD: usize = 32;
    let path = request.uri().path_and_query().map_or(1, |path| path.as_str().len());
    let request_line =
        ":method".len() + request.method().as_str().len() + ":path".len() + path + 2 * FIELD_OVERHEAD;
    request
        .headers()
        .iter()
        .fold(request_line, |size, (name, value)| size + name.as_str().len() + value.len() + FIELD_OVERHEAD)
}

/// Serves an HTTP/2 connection until it ends, goes idle, or shutdown asks it to finish.
async fn serve_http2<S: Socket>(socket: S, info: ConnectionInfo, builders: &Builders, shared: &Shared) {
    let activity = Activity::new();
    let service = ConnectionService::new(shared, info, &activity);
    // Boxed: the connection task then stays small for the life of the connection.
    let mut connection = Box::pin(builders.http2.serve_connection(TokioIo::new(socket), service));
    let limits = &shared.config.limits;
    let _open = shared.stats.connection_opened();
    let mut draining = false;
    // After an idle GOAWAY, what is left is response data h2 still holds for streams whose
    // bodies are done; a client that never opens their window would keep the connection (and
    // its slot) forever, so it gets the send timeout to take it.
    let mut give_up = None;
    loop {
        tokio::select! {
            result = connection.as_mut() => {
                if let Err(error) = result {
                    tracing::debug!(remote = %info.remote, %error, "connection ended with an error");
                }
                return;
            }
            () = async { tokio::time::sleep_until(give_up.expect("guarded")).await }, if give_up.is_some() => {
                tracing::debug!(remote = %info.remote, "idle connection did not drain within the send timeout");
                shared.stats.send_timed_out(Version::HTTP_2);
                return;
            }
            () = shared.shutdown.cancelled(), if !draining => {
                // GOAWAY, then finish the open streams.
                connection.as_mut().graceful_shutdown();
                draining = true;
            }
            () = activity.idle_for(limits.header_read_timeout, limits.idle_timeout), if !draining => {
                // A connection that never sent a request has nothing to finish: drop it (a
                // graceful close would wait for a PING answer from a client that may be gone).
                // One that did gets a GOAWAY, so it does not race a new request.
                if !activity.has_served() {
                    return;
                }
                connection.as_mut().graceful_shutdown();
                draining = true;
                give_up = Some(Instant::now() + limits.send_timeout);
            }
            () = shared.force.cancelled() => return,
        }
    }
}

/// How one hyper HTTP/1.1 connection on a socket ended.
enum Burst {
    /// The client went quiet: hyper handed the socket back.
    Parked,
    /// The exchange is over; the socket is to be shut down as hyper would (TLS close_notify).
    Ended,
    /// The connection failed or was cut: drop the socket.
    Failed,
}

/// Serves an HTTP/1.1 connection: a hyper connection per burst of requests, the socket alone
/// in between (`park.rs`).
async fn serve_http1<S: Socket>(socket: S, info: ConnectionInfo, builders: &Builders, shared: &Shared) {
    let activity = Activity::new();
    let park = Arc::new(Park::default());
    let service = ConnectionService::new(shared, info, &activity);
    let _open = shared.stats.connection_opened();
    let mut io = Parkable::new(socket, activity.clone(), park.clone());
    loop {
        // In a block so that hyper's connection and everything it handed back are freed before
        // the wait below: parked, the task holds only the socket.
        let burst;
        io = {
            let mut connection = Box::new(builders.http1.serve_connection(TokioIo::new(io), service.clone()));
            burst = serve_burst(&mut connection, &activity, &park, shared).await;
            if let Burst::Failed = burst {
                return;
            }
            let parts = connection.into_parts();
            let mut io = parts.io.into_inner();
            if let Burst::Parked = burst {
                io.unread(&parts.read_buf);
            }
            io
        };
        if let Burst::Parked = burst
            && wait_parked(&io, &activity, shared).await
        {
            park.serve();
            continue;
        }
        // The same bounded, polite close hyper gives a connection it ends itself.
        let _ = tokio::time::timeout(CLOSE_TIMEOUT, tokio::io::AsyncWriteExt::shutdown(&mut io)).await;
        return;
    }
}

/// How long closing a connection may wait on a client that does not read.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(1);

type Http1Connection<S> = http1::Connection<TokioIo<Parkable<S>>, ConnectionService>;

/// Drives one hyper HTTP/1.1 connection until the connection ends or is parked.
async fn serve_burst<S: Socket>(
    connection: &mut Http1Connection<S>,
    activity: &Activity,
    park: &Park,
    shared: &Shared,
) -> Burst {
    let ended = |result: hyper::Result<()>| match result {
        Err(error) => {
            tracing::debug!(%error, "connection ended with an error");
            Burst::Failed
        }
        Ok(()) if park.is_parked() && !shared.shutdown.is_cancelled() => Burst::Parked,
        Ok(()) => Burst::Ended,
    };
    let mut draining = false;
    let mut retry_park_at = Instant::now();
    loop {
        tokio::select! {
            result = poll_fn(|cx| connection.poll_without_shutdown(cx)) => return ended(result),
            () = shared.shutdown.cancelled(), if !draining => {
                // Close after the current response (or now, if there is none).
                Pin::new(&mut *connection).graceful_shutdown();
                draining = true;
            }
            () = activity.quiet_for(PARK_AFTER, retry_park_at), if !draining => {
                // Ask hyper to end; it does at once unless it holds part of a request.
                park.request();
                if let Poll::Ready(result) = poll_fn(|cx| Poll::Ready(connection.poll_without_shutdown(cx))).await {
                    return ended(result);
                }
                park.withdraw();
                retry_park_at = Instant::now() + PARK_AFTER;
            }
            () = shared.force.cancelled() => return Burst::Failed,
        }
    }
}

/// Waits, parked, for the client's next request; false when the connection should close
/// instead (the keep-alive time ran out, or the server is shutting down).
async fn wait_parked<S: Socket>(io: &Parkable<S>, activity: &Activity, shared: &Shared) -> bool {
    let _parked = shared.stats.connection_parked();
    // The keep-alive limit hyper would have applied: `header_read_timeout` after the last response.
    let deadline = activity.last_end() + shared.config.limits.header_read_timeout;
    tokio::select! {
        ready = poll_fn(|cx| io.socket().poll_read_ready(cx)) => ready.is_ok(),
        () = tokio::time::sleep_until(deadline) => false,
        () = shared.shutdown.cancelled() => false,
        () = shared.force.cancelled() => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_head_is_measured_like_an_http2_header_list() {
        let request = hyper::Request::get("/healthz?x=1")
            .header("host", "example")
            .header("x-big", "x".repeat(100))
            .header("x-big", "y")
            .body(())
            .unwrap();
        let fields = [(":method", "GET".len()), (":path", 12), ("host", 7), ("x-big", 100), ("x-big", 1)];
        let expected: usize = fields.iter().map(|(name, value)| name.len() + value + 32).sum();
        assert_eq!(field_section_size(&request), expected);
    }
}
