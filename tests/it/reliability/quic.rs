//! QUIC Initial floods: handshakes started from many client sockets and never finished.

use std::net::{SocketAddr, UdpSocket};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::{Kino, Options, TEST_TIMEOUT};
use kino_test_support::H3Client;

/// `count` client Initials (new connection ids, each padded to 1,200 bytes) for `server`, made
/// with quinn's sans-I/O client so they are real QUIC, not noise the server drops unread.
fn initials(server: SocketAddr, count: usize) -> Vec<Vec<u8>> {
    let mut tls = rustls::ClientConfig::builder_with_protocol_versions(&[&rustls::version::TLS13])
        .with_root_certificates(rustls::RootCertStore::empty())
        .with_no_client_auth();
    tls.alpn_protocols = vec![b"h3".to_vec()];
    let crypto = quinn_proto::crypto::rustls::QuicClientConfig::try_from(tls).unwrap();
    let config = quinn_proto::ClientConfig::new(Arc::new(crypto));
    let mut endpoint =
        quinn_proto::Endpoint::new(Arc::new(quinn_proto::EndpointConfig::default()), None, false, None);
    let now = Instant::now();
    (0..count)
        .map(|_| {
            let (_, mut connection) = endpoint.connect(now, config.clone(), server, "localhost").unwrap();
            let mut datagram = Vec::new();
            let transmit = connection.poll_transmit(now, 1, &mut datagram).expect("an Initial");
            datagram.truncate(transmit.size);
            datagram
        })
        .collect()
}

/// Sends `initials` from `sockets` client sockets in small paced batches (a UDP socket's
/// receive buffer holds ~170 such datagrams; an unpaced burst would mostly be dropped by the
/// kernel and measure nothing).
async fn flood(server: SocketAddr, initials: &[Vec<u8>], sockets: usize) -> Vec<UdpSocket> {
    let sockets: Vec<UdpSocket> = (0..sockets).map(|_| UdpSocket::bind("127.0.0.1:0").unwrap()).collect();
    for (batch, datagrams) in initials.chunks(20).enumerate() {
        for (i, datagram) in datagrams.iter().enumerate() {
            sockets[(batch * 20 + i) % sockets.len()].send_to(datagram, server).unwrap();
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    sockets
}

#[tokio::test]
async fn two_thousand_quic_initials_cost_under_40_mb_and_real_clients_still_connect() {
    kino::tls::install_crypto_provider();
    let kino = Kino::start(Options::default());
    let datagrams = initials(kino.https, 2_000);
    // Warm up: one real HTTP/3 request, so the baseline includes what serving it allocates.
    let mut warm = H3Client::connect(kino.https, &kino.ca_pem()).await.unwrap();
    let healthz = || http::Request::get(format!("https://localhost:{}/healthz", kino.https.port()));
    let status = warm.request(healthz().body(bytes::Bytes::new()).unwrap()).await.unwrap().status();
    assert_eq!(status, 200);
    drop(warm);
    let base = kino.baseline();

    let started = Instant::now();
    let _sockets = flood(kino.https, &datagrams, 100).await;
    // The half-open handshakes live for handshake_timeout (10 s); their cost peaks once the
    // server has read every Initial.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let growth = kino.peak_growth_mb(base);
    let retries = kino.metric("kino_quic_retries_total").await;
    eprintln!("2,000 QUIC Initials in {:?}: +{growth:.1} MB peak, {retries} Retries", started.elapsed());
    assert!(growth < 40.0, "2,000 Initials grew the server by {growth:.1} MB (limit 40 MB)");
    // Not all 2,000: a busy kernel drops some datagrams before the server reads them.
    assert!(retries >= 1_000, "only {retries} of 2,000 Initials were answered with Retry");

    // A real client follows the Retry and is served one round trip later.
    let connected = Instant::now();
    let mut client = tokio::time::timeout(TEST_TIMEOUT, H3Client::connect(kino.https, &kino.ca_pem()))
        .await
        .expect("connects in time")
        .expect("connects through the Retry");
    let response = client.request(healthz().body(bytes::Bytes::new()).unwrap()).await.unwrap();
    assert_eq!(response.status(), 200);
    assert!(connected.elapsed() < Duration::from_secs(2), "connecting took {:?}", connected.elapsed());
}
