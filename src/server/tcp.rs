//! TCP transport: accept, spawn, (TLS handshake), then hyper-util's auto builder (HTTP/1.1 or 2).

use std::convert::Infallible;
use std::sync::Arc;

use axum::body::Body;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tower::ServiceExt;

use super::connection::{Activity, ConnectionInfo, TrackedBody, Transport};
use super::{Shared, accept_backoff};

/// Accepts connections until shutdown; each is served in its own tracked task.
pub(crate) async fn accept(listener: TcpListener, tls: Option<TlsAcceptor>, shared: Shared) {
    let builder = Arc::new(http_builder(&shared));
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
        let _ = stream.set_nodelay(true);
        let (shared, tls, builder) = (shared.clone(), tls.clone(), builder.clone());
        shared.tracker.clone().spawn(async move {
            let transport = if tls.is_some() { Transport::Tls } else { Transport::Plain };
            let info = ConnectionInfo { remote, transport };
            match tls {
                None => serve(stream, info, &builder, &shared).await,
                Some(tls) => {
                    let timeout = shared.config.limits.handshake_timeout;
                    match tokio::time::timeout(timeout, tls.accept(stream)).await {
                        Ok(Ok(stream)) => serve(stream, info, &builder, &shared).await,
                        Ok(Err(error)) => tracing::debug!(%remote, %error, "TLS handshake failed"),
                        Err(_) => tracing::debug!(%remote, "TLS handshake timed out"),
                    }
                }
            }
            drop(permit);
        });
    }
}

/// The HTTP/1.1 + HTTP/2 connection builder with every limit from the configuration.
fn http_builder(shared: &Shared) -> auto::Builder<TokioExecutor> {
    let limits = &shared.config.limits;
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        // Without a timer hyper silently ignores the header timeout.
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .max_buf_size(limits.max_header_size.max(8192) as usize)
        .keep_alive(true);
    builder
        .http2()
        .timer(TokioTimer::new())
        .keep_alive_interval(limits.http2_keep_alive_interval)
        .keep_alive_timeout(limits.http2_keep_alive_interval)
        .max_concurrent_streams(limits.max_concurrent_streams)
        .max_header_list_size(limits.max_header_size);
    builder
}

/// Serves one connection until it ends, goes idle, or shutdown asks it to finish.
async fn serve<I>(io: I, info: ConnectionInfo, builder: &auto::Builder<TokioExecutor>, shared: &Shared)
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let activity = Activity::new();
    let service = {
        let (router, activity) = (shared.router.clone(), activity.clone());
        hyper::service::service_fn(move |mut request: hyper::Request<Incoming>| {
            let in_flight = activity.begin();
            request.extensions_mut().insert(info);
            let response = router.clone().oneshot(request.map(Body::new));
            async move {
                let response = response.await.unwrap_or_else(|never: Infallible| match never {});
                Ok::<_, Infallible>(response.map(|body| TrackedBody::new(body, in_flight)))
            }
        })
    };
    let connection = builder.serve_connection(TokioIo::new(io), service);
    tokio::pin!(connection);
    let limits = &shared.config.limits;
    let _open = shared.stats.connection_opened();
    let mut draining = false;
    loop {
        tokio::select! {
            result = connection.as_mut() => {
                if let Err(error) = result {
                    tracing::debug!(remote = %info.remote, %error, "connection ended with an error");
                }
                return;
            }
            () = shared.shutdown.cancelled(), if !draining => {
                // HTTP/1.1: close after the current response; HTTP/2: GOAWAY, finish open streams.
                connection.as_mut().graceful_shutdown();
                draining = true;
            }
            () = activity.idle_for(limits.header_read_timeout, limits.idle_timeout), if !draining => {
                // A connection that never sent a request has nothing to finish: drop it (a
                // graceful HTTP/2 close would wait for a PING answer from a client that may
                // be gone). One that did gets a GOAWAY, so it does not race a new request.
                if !activity.has_served() {
                    return;
                }
                connection.as_mut().graceful_shutdown();
                draining = true;
            }
            () = shared.force.cancelled() => return,
        }
    }
}
