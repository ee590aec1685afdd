//! rustls configurations: one for TCP (ALPN `h2`, `http/1.1`) and one for QUIC (TLS 1.3, `h3`).

use std::sync::Arc;

use anyhow::Context;
use rustls::ServerConfig;

use crate::cert::Certificates;

/// ALPN protocol ids, in server preference order.
const TCP_ALPN: &[&[u8]] = &[b"h2", b"http/1.1"];
const QUIC_ALPN: &[&[u8]] = &[b"h3"];

/// Installs ring as the process-wide rustls provider; harmless when one is already installed.
pub fn install_crypto_provider() {
    // Only ring is compiled in (see Cargo.toml), so every TLS user in the tree agrees on it.
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// The TLS configuration of the TCP listener.
pub(crate) fn tcp_config(certs: &Certificates) -> anyhow::Result<Arc<ServerConfig>> {
    let mut config = base_config(certs, rustls::DEFAULT_VERSIONS)?;
    config.alpn_protocols = TCP_ALPN.iter().map(|p| p.to_vec()).collect();
    Ok(Arc::new(config))
}

/// The TLS configuration of the QUIC listener (QUIC requires TLS 1.3).
pub(crate) fn quic_config(certs: &Certificates) -> anyhow::Result<quinn::crypto::rustls::QuicServerConfig> {
    let mut config = base_config(certs, &[&rustls::version::TLS13])?;
    config.alpn_protocols = QUIC_ALPN.iter().map(|p| p.to_vec()).collect();
    // 0-RTT data could be replayed; media GETs are idempotent, but uploads are not, so keep it off.
    config.max_early_data_size = 0;
    quinn::crypto::rustls::QuicServerConfig::try_from(config).context("QUIC TLS configuration")
}

fn base_config(
    certs: &Certificates,
    versions: &[&'static rustls::SupportedProtocolVersion],
) -> anyhow::Result<ServerConfig> {
    install_crypto_provider();
    ServerConfig::builder_with_protocol_versions(versions)
        .with_no_client_auth()
        .with_single_cert(certs.chain.clone(), certs.key.clone_key())
        .context("the certificate and key do not form a usable pair")
}
