//! The server: binds the listeners, serves one router over every transport, shuts down gracefully.
//!
//! ```text
//! TCP http_addr   plain HTTP/1.1 and h2c ─┐
//! TCP https_addr  TLS, ALPN h2 / http/1.1 ─┼─ one axum Router with one middleware stack
//! UDP https_addr  QUIC + h3 ───────────────┘
//! ```
//!
//! `tcp.rs` picks HTTP/1.1 or HTTP/2 per connection and parks idle HTTP/1.1 connections
//! (`park.rs`); `quic.rs` bridges h3 to the router; `connection.rs` tracks what is in flight.

mod connection;
mod park;
mod quic;
mod tcp;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use axum::Router;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub use connection::{ConnectionInfo, Transport};

use crate::app::{self, AppState};
use crate::cert::Certificates;
use crate::config::Config;
use crate::library::Library;
use crate::metrics::Stats;
use crate::views;
use crate::views::tracker::{SINK_CAPACITY, Tracker};
use secrecy::ExposeSecret;

/// How often binding TCP and UDP to one free port is tried when the configured port is 0.
const SHARED_PORT_ATTEMPTS: usize = 20;
/// How long connections still open after the grace period get to notice the forced close.
const FORCED_CLOSE_WAIT: Duration = Duration::from_millis(500);

/// A bound, ready-to-run server.
pub struct Server {
    config: Arc<Config>,
    certificates: Certificates,
    http: TcpListener,
    https: TcpListener,
    quic: quinn::Endpoint,
    router: Router,
    shutdown: CancellationToken,
    stats: Arc<Stats>,
    views: Arc<Tracker>,
    /// The view writer task, stopped last so it writes everything the connections counted.
    writer: tokio::task::JoinHandle<()>,
    writer_stop: CancellationToken,
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
    pub(crate) stats: Arc<Stats>,
}

impl Server {
    /// Prepares certificates, binds every listener (port 0 allowed) and builds the router.
    pub async fn build(mut config: Config) -> anyhow::Result<Self> {
        crate::tls::install_crypto_provider();
        config.ensure_secret().context("preparing the server secret")?;
        let config = Arc::new(config);
        let certificates = Certificates::resolve(&config.tls).context("preparing TLS certificates")?;
        let http = TcpListener::bind(config.http_addr)
            .await
            .with_context(|| format!("binding {}", config.http_addr))?;
        let (https, udp) = bind_shared_port(config.https_addr).await?;
        let quic = quic::endpoint(&config, &certificates, udp)?;
        let library = Arc::new(Library::open(&config).await.context("opening the media library")?);
        // Before any request: whatever an earlier run left in tmp is an orphan of a crash.
        let orphans = crate::ingest::sweep::sweep(library.tmp_dir(), Duration::ZERO)
            .context("deleting orphaned upload files")?;
        if orphans > 0 {
            tracing::info!(removed = orphans, "orphaned upload files of an earlier run deleted");
        }
        let report = library.scan().await.context("scanning the media roots")?;
        tracing::info!(
            files = report.files,
            updated = report.updated,
            removed = report.removed,
            unreadable = report.unreadable,
            "media roots scanned"
        );
        let shutdown = CancellationToken::new();
        let (sink, records) = tokio::sync::mpsc::channel(SINK_CAPACITY);
        let secret = config.secret.as_ref().expect("ensure_secret ran").expose_secret().as_bytes().to_vec();
        let views = Tracker::new(config.views.clone(), &secret, sink);
        let writer_stop = CancellationToken::new();
        let writer = tokio::spawn(views::writer::run(library.db().clone(), records, writer_stop.clone()));
        let state = AppState::new(
            config.clone(),
            library,
            views.clone(),
            quic.local_addr()?.port(),
            shutdown.clone(),
        );
        let stats = state.stats.clone();
        tokio::spawn(sweep_uploads(state.tus.clone(), state.library.db().clone(), shutdown.clone()));
        let tmp = state.library.tmp_dir().to_owned();
        tokio::spawn(crate::ingest::sweep::run(tmp, config.limits.tmp_max_age, shutdown.clone()));
        let router = app::router(state);
        Ok(Self {
            config,
            certificates,
            http,
            https,
            quic,
            router,
            shutdown,
            stats,
            views,
            writer,
            writer_stop,
        })
    }

    /// The plain-HTTP listener's address.
    pub fn http_addr(&self) -> SocketAddr {
        self.http.local_addr().expect("bound listener has an address")
    }

    /// The TLS (TCP) and QUIC (UDP) listeners' shared address.
    pub fn https_addr(&self) -> SocketAddr {
        self.https.local_addr().expect("bound listener has an address")
    }

    /// The certificates in use (SPKI hash, CA path).
    pub fn certificates(&self) -> &Certificates {
        &self.certificates
    }

    /// Logs where the server listens and how to reach it over HTTP/3 from Chrome.
    pub fn log_banner(&self) {
        let https = self.https_addr();
        let origin = format!("localhost:{}", https.port());
        tracing::info!(http = %format!("http://{}", self.http_addr()), "listening (HTTP/1.1, h2c)");
        tracing::info!(https = %format!("https://{origin}"), "listening (HTTP/1.1, HTTP/2 over TLS; HTTP/3 over QUIC on the same port)");
        if let Some(url) = &self.config.public_url {
            tracing::info!(public_url = %url, "public URL");
        }
        if let Some(ca) = &self.certificates.ca_path {
            tracing::info!(ca = %ca.display(), provenance = ?self.certificates.provenance, "self-signed certificate");
        }
        tracing::info!(spki_sha256 = %self.certificates.spki_sha256, "leaf certificate public key");
        tracing::info!(
            "HTTP/3 in Chrome: chromium {} https://{origin}/",
            self.certificates.chrome_flags(&origin)
        );
    }

    /// Serves until `shutdown` resolves, then drains in-flight requests within the grace period.
    pub async fn run(self, shutdown: impl Future<Output = ()> + Send) -> anyhow::Result<()> {
        let shared = Shared {
            config: self.config.clone(),
            router: self.router,
            shutdown: self.shutdown.clone(),
            force: CancellationToken::new(),
            tracker: TaskTracker::new(),
            connections: Arc::new(Semaphore::new(self.config.limits.max_connections as usize)),
            stats: self.stats,
        };
        let tls = tokio_rustls::TlsAcceptor::from(crate::tls::tcp_config(&self.certificates)?);
        let accept_loops = [
            tokio::spawn(tcp::accept(self.http, None, shared.clone())),
            tokio::spawn(tcp::accept(self.https, Some(tls), shared.clone())),
            tokio::spawn(quic::accept(self.quic.clone(), shared.clone())),
        ];

        shutdown.await;
        tracing::info!(grace = ?self.config.limits.shutdown_grace, "shutting down: no new connections, draining");
        shared.shutdown.cancel();
        for accept_loop in accept_loops {
            accept_loop.await.context("an accept loop panicked")?;
        }
        shared.tracker.close();
        if tokio::time::timeout(self.config.limits.shutdown_grace, shared.tracker.wait()).await.is_err() {
            tracing::warn!(open = shared.tracker.len(), "grace period over; closing the connections left");
            shared.force.cancel();
            let _ = tokio::time::timeout(FORCED_CLOSE_WAIT, shared.tracker.wait()).await;
        }
        // Sessions still open are recorded, then everything queued is written before exit.
        self.views.flush();
        self.writer_stop.cancel();
        self.writer.await.context("the view writer panicked")?;
        self.quic.close(quinn::VarInt::from_u32(0), b"server shutting down");
        let _ = tokio::time::timeout(FORCED_CLOSE_WAIT, self.quic.wait_idle()).await;
        tracing::info!("stopped");
        Ok(())
    }
}

/// Deletes abandoned resumable uploads until shutdown.
async fn sweep_uploads(tus: Arc<crate::ingest::tus::TusStore>, db: crate::db::Db, stop: CancellationToken) {
    loop {
        tokio::select! {
            () = tokio::time::sleep(tus.sweep_interval()) => {}
            () = stop.cancelled() => return,
        }
        match tus.sweep(&db).await {
            Ok(0) => {}
            Ok(removed) => tracing::info!(removed, "expired resumable uploads deleted"),
            Err(error) => tracing::warn!(error = format!("{error:#}"), "sweeping expired uploads failed"),
        }
    }
}

/// Binds TCP and UDP on one port; with port 0, retries until both get the same free port.
async fn bind_shared_port(addr: SocketAddr) -> anyhow::Result<(TcpListener, std::net::UdpSocket)> {
    let attempts = if addr.port() == 0 { SHARED_PORT_ATTEMPTS } else { 1 };
    let mut last_error = None;
    for _ in 0..attempts {
        let tcp = TcpListener::bind(addr).await.with_context(|| format!("binding TCP {addr}"))?;
        let bound = tcp.local_addr()?;
        match std::net::UdpSocket::bind(bound) {
            Ok(udp) => return Ok((tcp, udp)),
            Err(err) => last_error = Some(err),
        }
    }
    Err(last_error.expect("at least one attempt")).with_context(|| format!("binding UDP {addr}"))
}

/// Backs off after a failed `accept` (out of file descriptors, say) instead of spinning.
pub(crate) async fn accept_backoff(failures: &mut u32, error: &std::io::Error) {
    *failures = (*failures + 1).min(10);
    let delay = Duration::from_millis(5 << *failures).min(Duration::from_secs(1));
    tracing::warn!(%error, ?delay, "accept failed; backing off");
    tokio::time::sleep(delay).await;
}
