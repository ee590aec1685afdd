//! Timeouts: silent and idle connections are closed by the server, on its own clock.

use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::common::spawn_app_with;

/// Reads until the server closes the connection; returns how long that took.
async fn time_until_closed(stream: &mut TcpStream) -> Duration {
    let start = Instant::now();
    let mut sink = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut sink))
        .await
        .expect("the server closes the connection")
        .ok();
    start.elapsed()
}

#[tokio::test]
async fn a_connection_that_sends_nothing_is_closed_by_the_header_timeout() {
    let app = spawn_app_with(|c| c.limits.header_read_timeout = Duration::from_millis(300)).await;
    let mut stream = TcpStream::connect(app.http).await.unwrap();
    let waited = time_until_closed(&mut stream).await;
    assert!(waited >= Duration::from_millis(250), "closed too early: {waited:?}");
}

#[tokio::test]
async fn a_half_sent_request_head_is_closed_by_the_header_timeout() {
    let app = spawn_app_with(|c| c.limits.header_read_timeout = Duration::from_millis(300)).await;
    let mut stream = TcpStream::connect(app.http).await.unwrap();
    stream.write_all(b"GET /healthz HTTP/1.1\r\nHost: slow").await.unwrap();
    let waited = time_until_closed(&mut stream).await;
    assert!(waited >= Duration::from_millis(250), "closed too early: {waited:?}");
}

#[tokio::test]
async fn an_idle_http2_connection_is_closed_after_the_idle_timeout() {
    let app = spawn_app_with(|c| c.limits.idle_timeout = Duration::from_millis(400)).await;
    let h2 = app.h2();
    assert_eq!(h2.get(app.tls_url("/healthz")).send().await.unwrap().status(), 200);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    // The metrics request's own connection is the only one left open.
    let metrics = app.plain().get(app.plain_url("/metrics")).send().await.unwrap().text().await.unwrap();
    assert!(metrics.contains("kino_connections_total 2"), "{metrics}");
    assert!(metrics.contains("kino_connections_open 1"), "{metrics}");
}

#[tokio::test]
async fn a_connection_that_never_sends_a_request_is_closed_even_if_it_speaks_http2() {
    let app = spawn_app_with(|c| c.limits.header_read_timeout = Duration::from_millis(300)).await;
    let mut stream = TcpStream::connect(app.http).await.unwrap();
    // h2c prior knowledge: the connection preface and an empty SETTINGS frame, then silence.
    stream.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n").await.unwrap();
    stream.write_all(&[0, 0, 0, 4, 0, 0, 0, 0, 0]).await.unwrap();
    let waited = time_until_closed(&mut stream).await;
    assert!(waited >= Duration::from_millis(250), "closed too early: {waited:?}");
}

#[tokio::test]
async fn an_idle_http3_connection_is_closed_after_the_idle_timeout() {
    let app = spawn_app_with(|c| c.limits.idle_timeout = Duration::from_millis(400)).await;
    let mut h3 = app.h3().await;
    assert_eq!(h3.get(&app.tls_url("/healthz"), &[]).await.unwrap().status(), 200);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(h3.close_reason().is_some(), "QUIC connection still open after the idle timeout");
}
