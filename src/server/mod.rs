//! The transport: binds the listeners and serves one router over every protocol until shutdown.
//!
//! ```text
//! TCP http_addr   plain HTTP/1.1 and h2c ─┐
//! TCP https_addr  TLS, ALPN h2 / http/1.1 ─┼─ one axum Router with one middleware stack
//! UDP https_addr  QUIC + h3 ───────────────┘
//! ```
//!
//! Each address may stand for several sockets (`localhost` binds 127.0.0.1 and ::1); every socket
//! gets its own accept loop, and all of them share one connection limit, one shutdown and one set
//! of statistics. The server knows nothing of the application: it is given a [`Listeners`], a
//! router and a shutdown token (composition lives in `startup`).
//!
//! `bind.rs` binds every address of a listener on one port; `tcp.rs` picks HTTP/1.1 or HTTP/2
//! per connection and parks idle HTTP/1.1 connections (`park.rs`); `quic.rs` bridges h3 to the
//! router; `connection.rs` tracks what is in flight; `stall.rs` aborts responses the client
//! stops accepting (`limits.send_timeout`); `per_ip.rs` caps the connections of one address.

mod bind;
mod connection;
mod park;
mod per_ip;
mod quic;
mod stall;
mod tcp;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use axum::Router;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::cert::Certificates;
use crate::config::Config;
use crate::metrics::Stats;

/// How long connections still open after the grace period get to notice the forced close.
const FORCED_CLOSE_WAIT: Duration = Duration::from_millis(500);

/// Every bound socket, ready to serve: plain TCP, TLS over TCP and QUIC endpoints.
pub(crate) struct Listeners {
    http: Vec<TcpListener>,
    https: Vec<TcpListener>,
    quic: Vec<quinn::Endpoint>,
    tls: TlsAcceptor,
}

impl Listeners {
    /// Binds `http_addr` and `https_addr` (TCP and UDP on one port; port 0 allowed) and prepares
    /// TLS and QUIC with `certificates`.
    pub(crate) async fn bind(config: &Config, certificates: &Certificates) -> anyhow::Result<Self> {
        let http = bind::tcp(config.http_addr)?;
        let (https, udp) = bind::shared_port(config.https_addr)?;
        let quic = udp
            .into_iter()
            .map(|socket| quic::endpoint(config, certificates, socket))
            .collect::<anyhow::Result<_>>()?;
        let tls = TlsAcceptor::from(crate::tls::tcp_config(certificates)?);
        Ok(Self { http, https, quic, tls })
    }

    /// The plain-HTTP sockets' addresses.
    pub(crate) fn http_addrs(&self) -> Vec<SocketAddr> {
        self.http.iter().map(|l| l.local_addr().expect("bound listener has an address")).collect()
    }

    /// The TLS (TCP) sockets' addresses; the QUIC (UDP) sockets are bound to the same ones.
    pub(crate) fn https_addrs(&self) -> Vec<SocketAddr> {
        self.https.iter().map(|l| l.local_addr().expect("bound listener has an address")).collect()
    }

    /// The UDP port HTTP/3 is served on, for `Alt-Svc`.
    pub(crate) fn quic_port(&self) -> u16 {
        self.https_addrs()[0].port()
    }
}

/// What the per-connection tasks share.
#[derive(Clone)]
pub(crate) struct Shared {
    pub(crate) config: Arc<Config>,
    pub(crate) router: Router,
    /// Cancelled when graceful shutdown begins: stop accepting, finish what is in flight.
    pub(crate) shutdown: CancellationToken,
    /// Cancelled when the grace period is over: drop what is left.
    pub(crate) force: CancellationToken,
    pub(crate) tracker: TaskTracker,
    pub(crate) connections: Arc<Semaphore>,
    /// Open connections per client address.
    pub(crate) per_ip: Arc<per_ip::PerIp>,
    pub(crate) stats: Arc<Stats>,
}

/// Serves `router` on every listener until `shutdown` is cancelled, then drains in-flight
/// requests within `limits.shutdown_grace` and closes what is left.
pub(crate) async fn serve(
    listeners: Listeners,
    router: Router,
    config: Arc<Config>,
    stats: Arc<Stats>,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let shared = Shared {
        connections: Arc::new(Semaphore::new(config.limits.max_connections as usize)),
        per_ip: per_ip::PerIp::new(config.limits.max_connections_per_ip, config.trust_proxies.clone()),
        config,
        router,
        shutdown,
        force: CancellationToken::new(),
        tracker: TaskTracker::new(),
        stats,
    };
    let Listeners { http, https, quic, tls } = listeners;
    let mut accept_loops = Vec::new();
    for listener in http {
        accept_loops.push(tokio::spawn(tcp::accept(listener, None, shared.clone())));
    }
    for listener in https {
        accept_loops.push(tokio::spawn(tcp::accept(listener, Some(tls.clone()), shared.clone())));
    }
    for endpoint in &quic {
        accept_loops.push(tokio::spawn(quic::accept(endpoint.clone(), shared.clone())));
    }

    shared.shutdown.cancelled().await;
    let grace = shared.config.limits.shutdown_grace;
    tracing::info!(?grace, "shutting down: no new connections, draining");
    for accept_loop in accept_loops {
        accept_loop.await.context("an accept loop panicked")?;
    }
    shared.tracker.close();
    if tokio::time::timeout(grace, shared.tracker.wait()).await.is_err() {
        tracing::warn!(open = shared.tracker.len(), "grace period over; closing the connections left");
        shared.force.cancel();
        let _ = tokio::time::timeout(FORCED_CLOSE_WAIT, shared.tracker.wait()).await;
    }
    for endpoint in &quic {
        endpoint.close(quinn::VarInt::from_u32(0), b"server shutting down");
    }
    for endpoint in &quic {
        let _ = tokio::time::timeout(FORCED_CLOSE_WAIT, endpoint.wait_idle()).await;
    }
    Ok(())
}

/// Backs off after a failed `accept` (out of file descriptors, say) instead of spinning.
pub(crate) async fn accept_backoff(failures: &mut u32, error: &std::io::Error) {
    *failures = (*failures + 1).min(10);
    let delay = Duration::from_millis(5 << *failures).min(Duration::from_secs(1));
    tracing::warn!(%error, ?delay, "accept failed; backing off");
    tokio::time::sleep(delay).await;
}
