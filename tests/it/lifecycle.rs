//! Start-up and shutdown: in-flight responses finish, certificates persist and renew.

use std::time::Duration;

use bytes::Bytes;
use tokio::net::TcpStream;

use crate::common::{spawn_app, spawn_in};

const SLOW: &str = "/__test/slow?chunks=4&delay_ms=150";
const SLOW_BODY: &str = "chunk 0\nchunk 1\nchunk 2\nchunk 3\n";

#[tokio::test]
async fn graceful_shutdown_completes_in_flight_responses_on_every_protocol() {
    let mut app = spawn_app().await;
    let h1 = app.h1().get(app.tls_url(SLOW)).send().await.unwrap();
    let h2 = app.h2().get(app.tls_url(SLOW)).send().await.unwrap();
    let mut h3 = app.h3().await;
    let mut h3_stream =
        h3.start(http::Request::get(app.tls_url(SLOW)).body(Bytes::new()).unwrap()).await.unwrap();
    let h3_head = h3_stream.recv_response().await.unwrap();
    assert_eq!([h1.status(), h2.status(), h3_head.status()].map(|s| s.as_u16()), [200; 3]);

    // Every response has its head out and its body pending when shutdown begins.
    app.begin_shutdown();
    assert_eq!(h1.text().await.unwrap(), SLOW_BODY);
    assert_eq!(h2.text().await.unwrap(), SLOW_BODY);
    let mut h3_body = Vec::new();
    while let Some(chunk) = h3_stream.recv_data().await.unwrap() {
        use bytes::Buf;
        h3_body.extend_from_slice(chunk.chunk());
    }
    assert_eq!(String::from_utf8(h3_body).unwrap(), SLOW_BODY);

    app.stopped().await.expect("run returns Ok");
    assert!(TcpStream::connect(app.http).await.is_err(), "no longer accepting");
}

#[tokio::test]
async fn shutdown_does_not_wait_past_the_grace_period() {
    let mut app =
        crate::common::spawn_app_with(|c| c.limits.shutdown_grace = Duration::from_millis(300)).await;
    let endless = app.h2().get(app.tls_url("/__test/slow?chunks=1000&delay_ms=100")).send().await.unwrap();
    let started = std::time::Instant::now();
    app.begin_shutdown();
    app.stopped().await.unwrap();
    assert!(started.elapsed() < Duration::from_secs(5), "took {:?}", started.elapsed());
    assert!(endless.text().await.is_err(), "the cut response is reported as incomplete");
}

#[tokio::test]
async fn certificates_are_reused_across_restarts_and_renewed_when_names_change() {
    let dir = tempfile::tempdir().unwrap();
    let first = spawn_in(dir.path(), |_| {}).await;
    let (spki, ca) = (first.spki_sha256.clone(), first.ca_pem.clone());
    first.shutdown().await.unwrap();

    let second = spawn_in(dir.path(), |_| {}).await;
    assert_eq!(second.spki_sha256, spki, "same leaf after a restart");
    second.shutdown().await.unwrap();

    let third = spawn_in(dir.path(), |c| c.tls.hosts = vec!["media.example".into()]).await;
    assert_ne!(third.spki_sha256, spki, "new leaf for new names");
    assert_eq!(third.ca_pem, ca, "same CA, so clients keep trusting it");
    let response = third.h2().get(third.tls_url("/healthz")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    third.shutdown().await.unwrap();
}
