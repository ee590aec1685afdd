//! Start-up: puts the certificates, the bound listeners and the application together.
//!
//! The one place that knows both sides: [`crate::app`] builds the services and the router
//! without knowing the transport, [`crate::server`] serves any router on the listeners it is
//! given, and [`Application`] joins them and orders shutdown (drain the connections, then
//! stop the background tasks so every counted view is written).

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use tokio_util::sync::CancellationToken;

use crate::app::App;
use crate::cert::Certificates;
use crate::config::Config;
use crate::server::{self, Listeners};

/// A bound, ready-to-run kino: what `kino serve` runs, and what tests start on port 0.
pub struct Application {
    config: Arc<Config>,
    certificates: Certificates,
    listeners: Listeners,
    app: App,
    shutdown: CancellationToken,
}

impl Application {
    /// Prepares the secret and certificates, binds every listener (port 0 allowed) and builds
    /// the application.
    pub async fn build(mut config: Config) -> anyhow::Result<Self> {
        crate::allocator::configure();
        crate::tls::install_crypto_provider();
        config.ensure_secret().context("preparing the server secret")?;
        let config = Arc::new(config);
        let certificates = Certificates::resolve(&config.tls).context("preparing TLS certificates")?;
        let listeners = Listeners::bind(&config, &certificates).await?;
        let shutdown = CancellationToken::new();
        let app = App::build(config.clone(), listeners.quic_port(), shutdown.clone()).await?;
        Ok(Self { config, certificates, listeners, app, shutdown })
    }

    /// The first plain-HTTP address (127.0.0.1 for `localhost`).
    pub fn http_addr(&self) -> SocketAddr {
        self.listeners.http_addrs()[0]
    }

    /// The first TLS (TCP) and QUIC (UDP) address (127.0.0.1 for `localhost`).
    pub fn https_addr(&self) -> SocketAddr {
        self.listeners.https_addrs()[0]
    }

    /// Every TLS and QUIC address, e.g. 127.0.0.1 and ::1 for `localhost`.
    pub fn https_addrs(&self) -> Vec<SocketAddr> {
        self.listeners.https_addrs()
    }

    /// Every plain-HTTP address.
    pub fn http_addrs(&self) -> Vec<SocketAddr> {
        self.listeners.http_addrs()
    }

    /// The certificates in use (SPKI hash, CA path).
    pub fn certificates(&self) -> &Certificates {
        &self.certificates
    }

    /// Logs where the server listens and how to reach it over HTTP/3 from Chrome.
    pub fn log_banner(&self) {
        let port = self.https_addr().port();
        let http = format!("http://{}", self.config.http_addr.with_port(self.http_addr().port()));
        let https = format!("https://{}", self.config.https_addr.with_port(port));
        tracing::info!(%http, sockets = ?self.http_addrs(), "listening (HTTP/1.1, h2c)");
        tracing::info!(%https, sockets = ?self.https_addrs(), "listening (HTTP/1.1, HTTP/2 over TLS; HTTP/3 over QUIC on the same port)");
        if let Some(url) = &self.config.public_url {
            tracing::info!(public_url = %url, "public URL");
        }
        if let Some(ca) = &self.certificates.ca_path {
            tracing::info!(ca = %ca.display(), provenance = ?self.certificates.provenance, "self-signed certificate");
        }
        tracing::info!(spki_sha256 = %self.certificates.spki_sha256, "leaf certificate public key");
        tracing::info!(
            "HTTP/3 in Chrome: {}",
            self.certificates.chrome_command(&self.config.https_addr.with_port(port).browser_origin())
        );
    }

    /// Serves until `shutdown` resolves, drains in-flight requests within the grace period, then
    /// writes what the view tracker still holds.
    pub async fn run(self, shutdown: impl Future<Output = ()> + Send) -> anyhow::Result<()> {
        let serving = server::serve(
            self.listeners,
            self.app.router,
            self.config.clone(),
            self.app.stats,
            self.shutdown.clone(),
        );
        tokio::pin!(serving);
        tokio::select! {
            // The transport only returns early when it fails.
            result = &mut serving => result?,
            () = shutdown => {
                self.shutdown.cancel();
                serving.await?;
            }
        }
        self.app.background.stop().await?;
        tracing::info!("stopped");
        Ok(())
    }
}
