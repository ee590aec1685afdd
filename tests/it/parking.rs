//! Idle HTTP/1.1 keep-alive connections are parked (the server keeps the socket, not hyper's
//! buffers) and serve their next request as if nothing happened; no request byte is lost.

use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::common::{TestApp, spawn_app, spawn_app_with};

/// A raw HTTP/1.1 connection that reads responses framed by `content-length`.
struct Raw {
    stream: TcpStream,
    buf: Vec<u8>,
}

impl Raw {
    async fn connect(app: &TestApp) -> Self {
        Self { stream: TcpStream::connect(app.http).await.unwrap(), buf: Vec::new() }
    }

    async fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).await.unwrap();
    }

    /// The next response: its head and body.
    async fn response(&mut self) -> (String, Vec<u8>) {
        let head_end = loop {
            if let Some(at) = self.buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break at + 4;
            }
            self.fill().await;
        };
        let head = String::from_utf8(self.buf[..head_end].to_vec()).unwrap();
        let len: usize = head
            .lines()
            .find_map(|l| {
                l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().parse().unwrap())
            })
            .unwrap_or(0);
        while self.buf.len() < head_end + len {
            self.fill().await;
        }
        let body = self.buf[head_end..head_end + len].to_vec();
        self.buf.drain(..head_end + len);
        (head, body)
    }

    async fn fill(&mut self) {
        let mut chunk = [0u8; 16 * 1024];
        let n = tokio::time::timeout(Duration::from_secs(10), self.stream.read(&mut chunk))
            .await
            .expect("a response within 10 s")
            .unwrap();
        assert!(n > 0, "the server closed the connection");
        self.buf.extend_from_slice(&chunk[..n]);
    }
}

const HEALTH: &[u8] = b"GET /healthz HTTP/1.1\r\nhost: localhost\r\n\r\n";

/// A metric's value, read over one HTTP/2 connection that is not itself parked.
async fn metric(app: &TestApp, client: &reqwest::Client, name: &str) -> i64 {
    let text = client.get(app.tls_url("/metrics")).send().await.unwrap().text().await.unwrap();
    text.lines().find_map(|l| l.strip_prefix(&format!("{name} "))).unwrap().parse().unwrap()
}

/// Waits (up to 5 s) until `kino_connections_parked` reads `n`.
async fn until_parked(app: &TestApp, client: &reqwest::Client, n: i64) {
    let start = Instant::now();
    while metric(app, client, "kino_connections_parked").await != n {
        assert!(start.elapsed() < Duration::from_secs(5), "never saw {n} parked connection(s)");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn an_idle_keep_alive_connection_is_parked_and_serves_its_next_request() {
    let app = spawn_app().await;
    let metrics = app.h2();
    let mut raw = Raw::connect(&app).await;
    raw.send(HEALTH).await;
    assert!(raw.response().await.0.starts_with("HTTP/1.1 200"));
    until_parked(&app, &metrics, 1).await;
    // The same socket, a byte-range request this time.
    raw.send(b"GET /media/sample-h264.mp4 HTTP/1.1\r\nhost: localhost\r\nrange: bytes=0-99\r\n\r\n").await;
    let (head, body) = raw.response().await;
    assert!(head.starts_with("HTTP/1.1 206"), "{head}");
    assert_eq!(body.len(), 100);
    assert_eq!(metric(&app, &metrics, "kino_connections_parked").await, 0);
    // One HTTP/1.1 connection and the metrics one: the socket was kept, not reconnected.
    assert_eq!(metric(&app, &metrics, "kino_connections_total").await, 2);
    until_parked(&app, &metrics, 1).await;
}

#[tokio::test]
async fn a_request_head_that_straddles_the_park_delay_is_not_lost() {
    let app = spawn_app().await;
    let metrics = app.h2();
    let mut raw = Raw::connect(&app).await;
    raw.send(HEALTH).await;
    assert!(raw.response().await.0.starts_with("HTTP/1.1 200"));
    // Half a head, then longer than the park delay of silence: hyper holds those bytes, so the
    // connection must not be parked.
    raw.send(b"GET /healthz HTTP/1.1\r\nhost: loc").await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(metric(&app, &metrics, "kino_connections_parked").await, 0);
    raw.send(b"alhost\r\n\r\n").await;
    assert!(raw.response().await.0.starts_with("HTTP/1.1 200"));
    // A whole request and half of the next in one read: the first is answered, then the
    // silence must not park the connection under the second.
    raw.send(&[HEALTH, b"GET /healthz HT".as_slice()].concat()).await;
    assert!(raw.response().await.0.starts_with("HTTP/1.1 200"));
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(metric(&app, &metrics, "kino_connections_parked").await, 0);
    raw.send(b"TP/1.1\r\nhost: localhost\r\n\r\n").await;
    assert!(raw.response().await.0.starts_with("HTTP/1.1 200"));
    // The head's last bytes came alone: the `\r\n\r\n` that ends it spans two reads.
    raw.send(b"GET /healthz HTTP/1.1\r\nhost: localhost\r\n").await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    raw.send(b"\r\n").await;
    assert!(raw.response().await.0.starts_with("HTTP/1.1 200"));
    until_parked(&app, &metrics, 1).await;
    raw.send(HEALTH).await;
    assert!(raw.response().await.0.starts_with("HTTP/1.1 200"));
}

#[tokio::test]
async fn pipelined_requests_are_all_answered_across_a_park() {
    let app = spawn_app().await;
    let metrics = app.h2();
    let mut raw = Raw::connect(&app).await;
    raw.send(&[HEALTH, HEALTH, HEALTH].concat()).await;
    for _ in 0..3 {
        assert!(raw.response().await.0.starts_with("HTTP/1.1 200"));
    }
    until_parked(&app, &metrics, 1).await;
    raw.send(&[HEALTH, HEALTH].concat()).await;
    for _ in 0..2 {
        assert!(raw.response().await.0.starts_with("HTTP/1.1 200"));
    }
}

#[tokio::test]
async fn a_parked_connection_closes_when_its_keep_alive_time_is_over() {
    let app = spawn_app_with(|c| c.limits.header_read_timeout = Duration::from_millis(1500)).await;
    let metrics = app.h2();
    let mut raw = Raw::connect(&app).await;
    raw.send(HEALTH).await;
    assert!(raw.response().await.0.starts_with("HTTP/1.1 200"));
    let answered = Instant::now();
    until_parked(&app, &metrics, 1).await;
    let mut rest = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), raw.stream.read_to_end(&mut rest)).await.unwrap().unwrap();
    let waited = answered.elapsed();
    assert!(rest.is_empty());
    assert!(waited >= Duration::from_millis(1400), "closed after {waited:?}, before the keep-alive time");
    assert_eq!(metric(&app, &metrics, "kino_connections_parked").await, 0);
}

#[tokio::test]
async fn parking_works_over_tls_and_shutdown_closes_parked_connections_at_once() {
    let app = spawn_app().await;
    let metrics = app.h2();
    let h1 = app.h1();
    assert_eq!(h1.get(app.tls_url("/healthz")).send().await.unwrap().status(), 200);
    until_parked(&app, &metrics, 1).await;
    let response =
        h1.get(app.tls_url("/media/sample-h264.mp4")).header("range", "bytes=10-19").send().await.unwrap();
    assert_eq!(response.status(), 206);
    assert_eq!(response.bytes().await.unwrap().len(), 10);
    assert_eq!(metric(&app, &metrics, "kino_connections_total").await, 2, "the TLS connection was reused");
    until_parked(&app, &metrics, 1).await;
    drop(metrics);
    let started = Instant::now();
    tokio::time::timeout(Duration::from_secs(5), app.shutdown()).await.unwrap().unwrap();
    assert!(started.elapsed() < Duration::from_secs(2), "shutdown waited {:?}", started.elapsed());
}
