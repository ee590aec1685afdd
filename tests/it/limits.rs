//! Timeouts: silent, idle and non-reading clients are cut off by the server, on its own clock.

use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::common::{TestApp, rss_bytes, spawn_app, spawn_app_with};

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

/// How big the file is that a stalled client asks for: far more than the kernel's socket
/// buffers (a few MB each way on loopback) and the client's flow-control windows hold.
const BIG_FILE: u64 = 48 << 20;

/// The send timeout the stall tests run with.
const SEND_TIMEOUT: Duration = Duration::from_secs(1);

/// A server with `big.bin` ([`BIG_FILE`] bytes, sparse so it costs no disk) in an extra media
/// root, and the dir that holds it.
async fn spawn_with_big_file(adjust: impl FnOnce(&mut kino::Config)) -> (TestApp, tempfile::TempDir) {
    let media = tempfile::tempdir().unwrap();
    std::fs::File::create(media.path().join("big.bin")).unwrap().set_len(BIG_FILE).unwrap();
    let root = media.path().to_owned();
    let app = spawn_app_with(|c| {
        c.media_dirs.push(root);
        c.limits.send_timeout = SEND_TIMEOUT;
        adjust(c);
    })
    .await;
    (app, media)
}

/// One series of the server's metrics (`name{labels}`), 0 when absent.
async fn metric(app: &TestApp, series: &str) -> u64 {
    let text = app.plain().get(app.plain_url("/metrics")).send().await.unwrap().text().await.unwrap();
    text.lines().find_map(|line| line.strip_prefix(series)?.strip_prefix(' ')?.parse().ok()).unwrap_or(0)
}

/// Polls `series` until it reaches `value`; returns how long that took, or panics after `bound`.
async fn wait_for_metric(app: &TestApp, series: &str, value: u64, bound: Duration) -> Duration {
    let start = Instant::now();
    loop {
        let now = metric(app, series).await;
        if now >= value {
            return start.elapsed();
        }
        assert!(start.elapsed() < bound, "{series} is {now} after {bound:?}, expected {value}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A plain TCP connection with a tiny receive buffer that sends `request` and then never reads.
async fn stalled_client(addr: std::net::SocketAddr, request: &[u8]) -> TcpStream {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let mut stream = socket.connect(addr).await.unwrap();
    stream.write_all(request).await.unwrap();
    stream
}

const STALLED_GET: &[u8] = b"GET /media/big.bin HTTP/1.1\r\nHost: localhost\r\n\r\n";

/// The bytes of an h2c connection's start: the preface, `settings` (a SETTINGS frame's payload)
/// and whatever `extra` frames, then a GET of `path` on stream 1.
fn h2c_get(settings: &[u8], extra: &[u8], path: &str) -> Vec<u8> {
    let mut request = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec();
    request.extend_from_slice(&(settings.len() as u32).to_be_bytes()[1..]);
    request.extend_from_slice(&[0x4, 0, 0, 0, 0, 0]);
    request.extend_from_slice(settings);
    request.extend_from_slice(extra);
    // HEADERS, END_STREAM | END_HEADERS; HPACK: GET, http, then :path and :authority as
    // literals with indexed names.
    let mut block = vec![0x82, 0x86, 0x44, path.len() as u8];
    block.extend_from_slice(path.as_bytes());
    block.extend_from_slice(&[0x41, 9]);
    block.extend_from_slice(b"localhost");
    request.extend_from_slice(&(block.len() as u32).to_be_bytes()[1..]);
    request.extend_from_slice(&[0x1, 0x4 | 0x1, 0, 0, 0, 1]);
    request.extend_from_slice(&block);
    request
}

/// An h2c client that opens its windows wide (so flow control never holds the server back),
/// asks for the big file and then never reads the socket.
async fn stalled_h2c_client(addr: std::net::SocketAddr) -> TcpStream {
    // INITIAL_WINDOW_SIZE = 2^31 - 1, and a WINDOW_UPDATE taking the connection there too.
    let settings = [0, 0x4, 0x7f, 0xff, 0xff, 0xff];
    let mut window_update = vec![0, 0, 4, 0x8, 0, 0, 0, 0, 0];
    window_update.extend_from_slice(&(0x7fff_ffffu32 - 65_535).to_be_bytes());
    stalled_client(addr, &h2c_get(&settings, &window_update, "/media/big.bin")).await
}

/// Everything the server still sends on `stream` until it closes it.
async fn drain(stream: &mut TcpStream) -> u64 {
    let mut received = 0u64;
    let mut buf = vec![0u8; 64 * 1024];
    let read_all = async {
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => received += n as u64,
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(10), read_all).await.expect("the server closed the connection");
    received
}

#[tokio::test]
async fn an_http1_client_that_stops_reading_is_cut_off_after_the_send_timeout() {
    let (app, _media) = spawn_with_big_file(|_| {}).await;
    let mut stalled = stalled_client(app.http, STALLED_GET).await;
    let waited =
        wait_for_metric(&app, "kino_send_timeouts_total{protocol=\"http/1.1\"}", 1, Duration::from_secs(10))
            .await;
    assert!(waited >= SEND_TIMEOUT - Duration::from_millis(200), "cut off too early: {waited:?}");
    // What was in the kernel's buffers still arrives, then the connection ends: not the file.
    let received = drain(&mut stalled).await;
    assert!(received < BIG_FILE / 2, "{received} of {BIG_FILE} bytes: the response was not cut off");
    assert_eq!(metric(&app, "kino_connections_open").await, 1, "only the metrics request's connection");
}

#[tokio::test]
async fn clients_that_stop_reading_give_their_connection_slots_back() {
    let (app, _media) = spawn_with_big_file(|c| c.limits.max_connections = 3).await;
    // Every slot taken by a client that stopped reading: plain HTTP/1.1, HTTP/1.1 over TLS
    // (reqwest reads nothing more once the body is not polled), and h2c.
    let _plain = stalled_client(app.http, STALLED_GET).await;
    let tls = app.h1();
    let _tls = tls.get(app.tls_url("/media/big.bin")).send().await.unwrap();
    let _h2c = stalled_h2c_client(app.http).await;

    let start = Instant::now();
    let health =
        tokio::time::timeout(Duration::from_secs(10), app.plain().get(app.plain_url("/healthz")).send())
            .await
            .expect("/healthz answers once the stalled clients are cut off")
            .unwrap();
    assert_eq!(health.status(), 200);
    assert!(start.elapsed() < SEND_TIMEOUT * 5, "/healthz took {:?}", start.elapsed());
    wait_for_metric(&app, "kino_send_timeouts_total{protocol=\"http/1.1\"}", 2, Duration::from_secs(5)).await;
    wait_for_metric(&app, "kino_send_timeouts_total{protocol=\"h2\"}", 1, Duration::from_secs(5)).await;
}

#[tokio::test]
async fn an_http2_stream_starved_of_window_is_reset_and_its_connection_keeps_serving() {
    let (app, _media) = spawn_with_big_file(|_| {}).await;
    let client = app.h2c();
    // The client reads the socket but, with the body unread, never opens the stream's window.
    let starved = client.get(app.plain_url("/media/big.bin")).send().await.unwrap();
    assert_eq!(starved.status(), 200);
    let waited =
        wait_for_metric(&app, "kino_send_timeouts_total{protocol=\"h2\"}", 1, Duration::from_secs(10)).await;
    assert!(waited >= SEND_TIMEOUT - Duration::from_millis(200), "reset too early: {waited:?}");
    let body = tokio::time::timeout(Duration::from_secs(10), starved.bytes()).await.expect("the body ends");
    assert!(body.is_err(), "the starved stream was reset, not completed");
    // The connection itself was fine and still is.
    let health = client.get(app.plain_url("/healthz")).send().await.unwrap();
    assert_eq!(health.status(), 200);
    assert_eq!(health.version(), reqwest::Version::HTTP_2);
}

#[tokio::test]
async fn an_http3_client_that_stops_reading_has_its_stream_reset() {
    let (app, _media) = spawn_with_big_file(|_| {}).await;
    let mut h3 = app.h3().await;
    let request = http::Request::get(app.tls_url("/media/big.bin")).body(bytes::Bytes::new()).unwrap();
    let mut stalled = h3.start(request).await.unwrap();
    assert_eq!(stalled.recv_response().await.unwrap().status(), 200);
    let waited =
        wait_for_metric(&app, "kino_send_timeouts_total{protocol=\"h3\"}", 1, Duration::from_secs(10)).await;
    assert!(waited >= SEND_TIMEOUT - Duration::from_millis(200), "reset too early: {waited:?}");
    // What the window let through arrives, then the reset: never the whole file.
    let mut received = 0u64;
    let outcome = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            match stalled.recv_data().await {
                Ok(Some(chunk)) => received += bytes::Buf::remaining(&chunk) as u64,
                Ok(None) => return Ok(()),
                Err(error) => return Err(error),
            }
        }
    })
    .await
    .expect("the stream ends");
    assert!(outcome.is_err(), "the stream was reset, not finished ({received} bytes)");
    assert!(received < BIG_FILE, "{received} bytes");
    assert_eq!(h3.get(&app.tls_url("/healthz"), &[]).await.unwrap().status(), 200);
}

#[tokio::test]
async fn an_http3_headers_frame_longer_than_the_head_limit_is_refused_before_it_is_buffered() {
    const DECLARED: u64 = 16 << 20;
    let app = spawn_app().await;
    let h3 = app.h3().await;
    let (mut send, mut recv) = h3.quic().open_bi().await.unwrap();
    let _measuring = crate::common::MEMORY.write().await;
    let before = rss_bytes();
    let start = Instant::now();
    // A HEADERS frame (type 0x01) declaring 16 MiB, its length a 4-byte varint (RFC 9000 §16),
    // then its payload as fast as the server takes it.
    let mut frame_header = vec![0x01];
    frame_header.extend_from_slice(&(DECLARED as u32 | 0x8000_0000).to_be_bytes());
    send.write_all(&frame_header).await.unwrap();
    let payload = vec![0u8; 64 * 1024];
    let mut sent = 0u64;
    let stopped = tokio::time::timeout(Duration::from_secs(15), async {
        while sent < DECLARED {
            match send.write_all(&payload).await {
                Ok(()) => sent += payload.len() as u64,
                Err(quinn::WriteError::Stopped(code)) => return Some(code),
                Err(error) => panic!("{error}"),
            }
        }
        None
    })
    .await
    .expect("the server takes the frame or stops it");
    let growth = rss_bytes().saturating_sub(before);
    let took = start.elapsed();
    // H3_EXCESSIVE_LOAD (RFC 9114 §8.1).
    let report = format!("{sent} bytes taken in {took:?}, RSS +{} KB", growth >> 10);
    println!("{report}");
    assert_eq!(stopped, Some(quinn::VarInt::from_u32(0x107)), "{report}");
    assert!(sent <= 2 << 20, "{sent} bytes taken before the stop");
    assert!(took < Duration::from_secs(2), "stopped after {took:?}");
    assert!(growth < 8 << 20, "RSS grew {} MB", growth >> 20);
    // The request is answered 431 (a HEADERS frame, ":status" then "431"), and the connection
    // keeps serving: a stream error, not a connection error.
    let answer = tokio::time::timeout(Duration::from_secs(5), recv.read_to_end(4096)).await.unwrap().unwrap();
    assert_eq!(answer.first(), Some(&0x01), "{answer:?}");
    let mut h3 = h3;
    assert_eq!(h3.get(&app.tls_url("/healthz"), &[]).await.unwrap().status(), 200);
}

#[tokio::test]
async fn an_idle_http2_connection_still_holding_an_unsent_response_tail_is_closed_after_the_send_timeout() {
    let app = spawn_app_with(|c| {
        c.limits.idle_timeout = Duration::from_millis(500);
        c.limits.send_timeout = SEND_TIMEOUT;
    })
    .await;
    // h2c with the default 64 KiB windows, never opened: the 127 KB image is one body chunk, so
    // its body ends at once and h2 keeps the half the window does not let out. The client
    // reads everything it is sent (never stalling the socket) and answers no PING.
    let mut stream = TcpStream::connect(app.http).await.unwrap();
    stream.write_all(&h2c_get(&[], &[], "/media/sample-graphic.png")).await.unwrap();
    let start = Instant::now();
    let received = drain(&mut stream).await;
    let waited = start.elapsed();
    assert!(received < 127_481, "{received} bytes: the window should have held the tail back");
    assert!(waited >= SEND_TIMEOUT, "closed after {waited:?}, before the send timeout");
    assert!(waited < Duration::from_secs(5), "closed after {waited:?}");
    assert_eq!(metric(&app, "kino_send_timeouts_total{protocol=\"h2\"}").await, 1);
}
