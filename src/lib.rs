//! kino: a video streaming and media server speaking HTTP/1.1, HTTP/2 and HTTP/3.
//!
//! `main` loads the [`config::Config`], starts [`telemetry`] and awaits [`run`]; everything else
//! is this library, so tests start the real server on port 0 through [`Server`].
//!
//! # Layout
//! - [`cli`]: command-line arguments and subcommands.
//! - [`config`]: layered, typed configuration (defaults, `kino.toml`, `.env`, `KINO_*`, flags).
//! - [`telemetry`]: logging and the panic hook.
//! - [`cert`]: the self-signed CA and leaf certificate (rcgen), kept in `certs/`.
//! - [`tls`]: rustls configurations for TCP and QUIC.
//! - [`server`]: listeners, TCP and QUIC transports, the h3 bridge, graceful shutdown.
//! - `app`: shared state, the router and the one middleware stack.
//! - `routes`: one module per area (health, pages, stream, videos, …).
//! - `range`: the range engine: RFC 9110 ranges, preconditions, multipart, file bodies.
//! - `library`: media roots, the scanner, container parsers, safe path resolution.
//! - `db`: the sqlx pool, migrations and the model functions of each table.
//! - `middleware`: access log, panic catcher, `Alt-Svc`.
//! - [`error`]: the HTTP error type and how errors are rendered.
//! - `metrics`: request statistics for `/metrics`.
//! - `fs`: atomic and private file writes.

mod app;
pub mod cert;
pub mod cli;
pub mod config;
mod db;
pub mod error;
mod fs;
mod library;
mod metrics;
mod middleware;
mod range;
mod routes;
pub mod server;
pub mod telemetry;
pub mod tls;
mod views;

use std::future::Future;

pub use config::Config;
pub use library::ScanReport;
pub use server::Server;

/// Internals exposed for the benchmarks in `benches/` only; not a stable API.
#[doc(hidden)]
pub mod internals {
    pub use crate::range::body::{CHUNK, Delivery, FileBody, Segment};
}

/// Builds the server from `config` and serves until `shutdown` resolves.
pub async fn run(config: Config, shutdown: impl Future<Output = ()> + Send) -> anyhow::Result<()> {
    let server = Server::build(config).await?;
    server.log_banner();
    server.run(shutdown).await
}

/// Scans the media roots into the catalog once, as `kino scan` does.
pub async fn scan(config: &Config) -> anyhow::Result<ScanReport> {
    library::Library::open(config).await?.scan().await
}

/// Resolves on SIGINT (Ctrl-C) or SIGTERM, the signals that ask for a graceful shutdown.
pub async fn shutdown_signal() {
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        () = terminate => {}
    }
}
