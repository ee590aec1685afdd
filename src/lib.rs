//! kino: a video streaming and media server speaking HTTP/1.1, HTTP/2 and HTTP/3.
//!
//! `main` loads the [`config::Config`], starts [`telemetry`] and awaits [`run`]; everything else
//! is this library, so tests start the real server on port 0 through [`Application`].
//!
//! # Layout
//! - [`cli`]: command-line arguments and subcommands (`serve`, `cert`, `config`, `scan`, `secret`).
//! - [`config`]: layered, typed configuration (defaults, `kino.toml`, `.env`, `KINO_*`, flags).
//! - [`telemetry`]: logging and the panic hook.
//! - [`cert`]: the self-signed CA and leaf certificate (rcgen), kept in `certs/`.
//! - [`tls`]: rustls configurations for TCP and QUIC.
//! - `allocator`: glibc malloc settings, so large blocks go back to the kernel when freed.
//! - `doctor`: `kino doctor`, the checks of the machine and configuration with their fixes.
//! - [`startup`]: puts certificates, listeners and the application together; orders shutdown.
//! - `server`: the transport: listeners, TCP and QUIC, the h3 bridge, graceful shutdown.
//! - `client_ip`: the client's address: the peer's, or what a trusted proxy forwarded.
//! - `peer`: what the transport tells the application about a request's connection.
//! - `app`: composition: the services, the router with the one middleware stack, and the
//!   background tasks.
//! - `state`: the services every handler and middleware reaches (`AppState`).
//! - `routes`: one module per area (health, pages, stream, videos, …).
//! - `range`: the range engine: RFC 9110 ranges, preconditions, multipart, file bodies.
//! - `library`: media roots, the scanner, safe path resolution.
//! - `captions`: caption files beside videos or uploaded: SubRip and WebVTT parsing, languages,
//!   conversion to WebVTT.
//! - `media`: what a file is from its bytes: sniffed type, MP4 and WebM container facts.
//! - `db`: the data layer: a repository trait per table behind the `Db` handle (SQLite today).
//! - `accounts`: users, roles, argon2id passwords, the session store, who is signed in.
//! - `views`: view counting from range checkpoints (viewer keys, checkpoints, tracker, writer).
//! - `ingest`: streaming uploads (bounded multipart, minimum rate, orphan sweep), tus, MP4 faststart.
//! - `images`: bomb-safe image decoding, resizing and encoding on a bounded CPU pool under a
//!   memory budget, and the image service (uploads, variants, renditions).
//! - `middleware`: access log, panic catcher, `Alt-Svc`, security headers, CORS, rate limits,
//!   sessions, CSRF, method override.
//! - [`error`]: the HTTP error type and how errors are rendered.
//! - `metrics`: the metrics of `/metrics` (prometheus-client).
//! - `stats`: request statistics over time: the per-minute aggregate, its flush to the database
//!   (rolled up to hours, pruned), and what the stats pages read.
//! - `chart`: server-rendered SVG line charts with their data tables.
//! - `page`: the template layer: every page's layout, flash messages, the error page.
//! - `assets`: the stylesheet and other static files, compiled in with precompressed siblings.
//! - `auth`: API tokens: JWT access tokens, rotating refresh tokens, the `Bearer` extractor.
//! - `crypto`: secrets at rest (AES-256-GCM under a key derived from the server secret).
//! - `mail`: the outbox sender and its transports (SMTP, `.eml` files).
//! - `fs`: atomic and private file writes.
//! - `cookies`: the request's cookies, by name.
//! - `id`: random identifiers (upload names, ids, cookies, boundaries, secrets).
//! - `bench` (feature `bench`): the internals the micro-benchmarks drive directly.
//! - `fuzz` (feature `fuzzing`): entry points of the fuzz targets in `fuzz/`.

mod accounts;
mod allocator;
mod app;
mod assets;
mod auth;
#[cfg(feature = "bench")]
pub mod bench;
mod captions;
pub mod cert;
mod chart;
pub mod cli;
mod client_ip;
pub mod config;
mod cookies;
mod crypto;
mod db;
mod doctor;
pub mod error;
mod fs;
#[cfg(any(test, feature = "fuzzing"))]
pub mod fuzz;
mod id;
mod images;
mod ingest;
mod library;
mod mail;
mod media;
mod metrics;
mod middleware;
mod page;
mod peer;
mod range;
mod routes;
mod server;
pub mod startup;
mod state;
mod stats;
pub mod telemetry;
pub mod tls;
mod views;

use std::future::Future;

pub use config::Config;
pub use library::ScanReport;
pub use startup::Application;

/// Builds the server from `config` and serves until `shutdown` resolves.
pub async fn run(config: Config, shutdown: impl Future<Output = ()> + Send) -> anyhow::Result<()> {
    let application = Application::build(config).await?;
    application.log_banner();
    application.run(shutdown).await
}

/// Scans the media roots into the catalog once, as `kino scan` does.
pub async fn scan(config: &Config) -> anyhow::Result<ScanReport> {
    library::Library::open(config).await?.scan().await
}

/// A future that resolves on SIGINT (Ctrl-C) or SIGTERM, the signals that ask for a graceful
/// shutdown. The handlers are installed here, before the server starts, so a signal that arrives
/// as soon as the start-up banner is out is never met by the default action (death).
pub fn shutdown_signal() -> anyhow::Result<impl Future<Output = ()> + Send> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut terminate = signal(SignalKind::terminate())?;
    let mut interrupt = signal(SignalKind::interrupt())?;
    Ok(async move {
        tokio::select! {
            _ = terminate.recv() => {}
            _ = interrupt.recv() => {}
        }
    })
}
