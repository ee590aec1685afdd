//! Errors that need a connection: panics (the connection survives), malformed and oversized heads.
//! How error bodies render (JSON or HTML, 404, 405) is tested on the router: `src/app/tests.rs`.

use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::common::{ALL_PROTOCOLS, Protocol, spawn_app};

#[tokio::test]
async fn panic_is_a_500_with_the_request_id_and_the_server_keeps_serving() {
    let app = spawn_app().await;
    let client = app.h2();
    let response = client
        .get(app.tls_url("/__test/panic"))
        .header("accept", "application/json")
        .header("x-request-id", "panic-42")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 500);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "panic");
    assert_eq!(body["error"]["request_id"], "panic-42");
    assert!(!body.to_string().contains("on purpose"), "the panic message stays in the log");

    // Same HTTP/2 connection, then HTTP/3: the server is still there.
    let next = client.get(app.tls_url("/healthz")).send().await.unwrap();
    assert_eq!(next.status(), 200);
    let mut h3 = app.h3().await;
    assert_eq!(h3.get(&app.tls_url("/__test/panic"), &[]).await.unwrap().status(), 500);
    assert_eq!(h3.get(&app.tls_url("/healthz"), &[]).await.unwrap().status(), 200);
}

/// Writes raw bytes on a plain connection and returns what the server answers before closing.
async fn raw_exchange(addr: std::net::SocketAddr, request: &[u8]) -> String {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.write_all(request).await.unwrap();
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut answer))
        .await
        .expect("server answers and closes")
        .ok();
    String::from_utf8_lossy(&answer).into_owned()
}

#[tokio::test]
async fn malformed_request_is_a_400() {
    let app = spawn_app().await;
    let answer = raw_exchange(app.http, b"GET /healthz HTTP/1.1\r\nHost: x\r\nbad header line\r\n\r\n").await;
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    // The listener is unharmed.
    let ok = app.plain().get(app.plain_url("/healthz")).send().await.unwrap();
    assert_eq!(ok.status(), 200);
}

#[tokio::test]
async fn oversized_headers_are_a_431() {
    let app = spawn_app_small_headers().await;
    let big = "x".repeat(16 * 1024);
    let request = format!("GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: {big}\r\n\r\n");
    let answer = raw_exchange(app.http, request.as_bytes()).await;
    assert!(answer.starts_with("HTTP/1.1 431"), "{}", &answer[..answer.len().min(200)]);
}

async fn spawn_app_small_headers() -> crate::common::TestApp {
    crate::common::spawn_app_with(|config| config.limits.max_header_size = 8 * 1024).await
}

/// A header value that alone is just over the default head limit, and one that keeps the whole
/// head just under it, whatever each protocol adds (request line, pseudo-headers, 32 bytes a field).
const OVER_LIMIT: usize = 32 * 1024 + 64;
const UNDER_LIMIT: usize = 32 * 1024 - 1024;

/// The status of `GET /healthz` with an `x-big` header of `len` bytes over `protocol`.
async fn status_with_big_header(app: &crate::common::TestApp, protocol: Protocol, len: usize) -> u16 {
    let big = "x".repeat(len);
    match protocol {
        Protocol::Http1 => {
            let request =
                format!("GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: {big}\r\nConnection: close\r\n\r\n");
            let answer = raw_exchange(app.http, request.as_bytes()).await;
            answer
                .get(9..12)
                .and_then(|status| status.parse().ok())
                .unwrap_or_else(|| panic!("{answer:.200}"))
        }
        _ => app.fetch(protocol, http::Method::GET, "/healthz", &[("x-big", &big)]).await.status.as_u16(),
    }
}

#[tokio::test]
async fn every_protocol_refuses_a_head_just_over_the_limit_with_431_and_accepts_one_just_under() {
    let app = spawn_app().await;
    for protocol in ALL_PROTOCOLS {
        assert_eq!(status_with_big_header(&app, protocol, OVER_LIMIT).await, 431, "{protocol:?}");
        assert_eq!(status_with_big_header(&app, protocol, UNDER_LIMIT).await, 200, "{protocol:?}");
    }
}
