//! Raw HTTP/2 frame attacks over h2c: rapid reset, CONTINUATION and HPACK bombs, frame floods,
//! and h2spec's content-length mismatch (8.1.2.6) on both ports.

use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};

use super::{Kino, Options, TEST_TIMEOUT};

const HEADERS: u8 = 0x1;
const RST_STREAM: u8 = 0x3;
const SETTINGS: u8 = 0x4;
const PING: u8 = 0x6;
const GOAWAY: u8 = 0x7;
const CONTINUATION: u8 = 0x9;
const END_STREAM: u8 = 0x1;
const END_HEADERS: u8 = 0x4;

/// One frame (RFC 9113 §4.1).
fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let mut frame = (payload.len() as u32).to_be_bytes()[1..].to_vec();
    frame.extend_from_slice(&[kind, flags]);
    frame.extend_from_slice(&stream.to_be_bytes());
    frame.extend_from_slice(payload);
    frame
}

/// An HPACK integer with an `n`-bit prefix after `flags` (RFC 7541 §5.1).
fn integer(flags: u8, n: u32, mut value: usize, out: &mut Vec<u8>) {
    let max = (1usize << n) - 1;
    if value < max {
        out.push(flags | value as u8);
        return;
    }
    out.push(flags | max as u8);
    value -= max;
    while value >= 128 {
        out.push((value % 128) as u8 | 0x80);
        value /= 128;
    }
    out.push(value as u8);
}

/// A literal field with a new name; `index` adds it to the dynamic table (RFC 7541 §6.2).
fn literal(name: &[u8], value: &[u8], index: bool, out: &mut Vec<u8>) {
    out.push(if index { 0x40 } else { 0x00 });
    integer(0, 7, name.len(), out);
    out.extend_from_slice(name);
    integer(0, 7, value.len(), out);
    out.extend_from_slice(value);
}

/// The field block of `GET path` on `kino`.
fn get(path: &str) -> Vec<u8> {
    let mut block = vec![0x82, 0x86, 0x44];
    integer(0, 7, path.len(), &mut block);
    block.extend_from_slice(path.as_bytes());
    block.extend_from_slice(&[0x41, 4]);
    block.extend_from_slice(b"kino");
    block
}

/// An h2c connection that has sent the preface and an empty SETTINGS frame.
async fn connect(kino: &Kino) -> (OwnedReadHalf, OwnedWriteHalf) {
    let stream = TcpStream::connect(kino.http).await.unwrap();
    let (read, mut write) = stream.into_split();
    let mut start = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec();
    start.extend(frame(SETTINGS, 0, 0, &[]));
    write.write_all(&start).await.unwrap();
    (read, write)
}

/// What the server sent on a connection until it closed it.
#[derive(Debug, Default)]
struct Received {
    /// The frames' types, flags and streams, in order.
    frames: Vec<(u8, u8, u32)>,
    /// GOAWAY's error code, if one came.
    goaway: Option<u32>,
    /// RST_STREAM error codes by stream.
    resets: Vec<(u32, u32)>,
    /// When the connection ended, from the start of reading.
    closed_after: Duration,
}

impl Received {
    fn count(&self, kind: u8) -> usize {
        self.frames.iter().filter(|f| f.0 == kind).count()
    }
}

/// Reads frames until the server closes the connection (bounded by the test timeout).
async fn read_frames(mut read: OwnedReadHalf) -> Received {
    let started = Instant::now();
    let mut received = Received::default();
    let mut buf = Vec::new();
    let mut chunk = vec![0u8; 64 * 1024];
    let reading = async {
        while let Ok(n @ 1..) = read.read(&mut chunk).await {
            buf.extend_from_slice(&chunk[..n]);
            while buf.len() >= 9 {
                let len = u32::from_be_bytes([0, buf[0], buf[1], buf[2]]) as usize;
                if buf.len() < 9 + len {
                    break;
                }
                let stream = u32::from_be_bytes([buf[5], buf[6], buf[7], buf[8]]) & 0x7fff_ffff;
                if buf[3] == GOAWAY && len >= 8 {
                    received.goaway = Some(u32::from_be_bytes([buf[13], buf[14], buf[15], buf[16]]));
                }
                if buf[3] == RST_STREAM && len == 4 {
                    received.resets.push((stream, u32::from_be_bytes([buf[9], buf[10], buf[11], buf[12]])));
                }
                received.frames.push((buf[3], buf[4], stream));
                buf.drain(..9 + len);
            }
        }
    };
    tokio::time::timeout(TEST_TIMEOUT, reading).await.expect("the server closes the connection");
    received.closed_after = started.elapsed();
    received
}

/// Writes `bytes` in 64 KiB pieces until done or the server stops taking them; returns how
/// many were written.
async fn write_until_refused(write: &mut OwnedWriteHalf, bytes: &[u8]) -> usize {
    let mut written = 0;
    for piece in bytes.chunks(64 * 1024) {
        match tokio::time::timeout(Duration::from_secs(5), write.write_all(piece)).await {
            Ok(Ok(())) => written += piece.len(),
            _ => break,
        }
    }
    written
}

#[tokio::test]
async fn a_rapid_reset_flood_gets_goaway_and_leaves_the_server_serving() {
    let kino = Kino::start(Options::default());
    let base = kino.baseline();
    let (read, mut write) = connect(&kino).await;
    let reader = tokio::spawn(read_frames(read));
    // 20,000 requests, each cancelled as soon as it is sent (CVE-2023-44487).
    let mut attack = Vec::new();
    for n in 0..20_000u32 {
        let stream = 2 * n + 1;
        attack.extend(frame(HEADERS, END_STREAM | END_HEADERS, stream, &get("/healthz")));
        attack.extend(frame(RST_STREAM, 0, stream, &8u32.to_be_bytes()));
    }
    let written = write_until_refused(&mut write, &attack).await;
    let received = reader.await.unwrap();
    let (status, took) = kino.get("/healthz").await;
    let growth = kino.peak_growth_mb(base);
    eprintln!(
        "rapid reset: {} of {} bytes taken, GOAWAY {:?} after {:?}, {} responses, +{growth:.1} MB",
        written,
        attack.len(),
        received.goaway,
        received.closed_after,
        received.count(HEADERS)
    );
    // ENHANCE_YOUR_CALM: h2 counts streams reset before they were accepted.
    assert_eq!(received.goaway, Some(0xb));
    assert!(received.count(HEADERS) < 1_000, "{} cancelled requests were answered", received.count(HEADERS));
    assert!(received.closed_after < Duration::from_secs(5));
    assert_eq!(status, 200);
    assert!(took < Duration::from_millis(500), "/healthz took {took:?}");
    assert!(growth < 20.0, "the flood grew the server by {growth:.1} MB");
}

#[tokio::test]
async fn an_endless_continuation_flood_is_cut_off_after_the_header_limit() {
    let kino = Kino::start(Options::default());
    let base = kino.baseline();
    let (read, mut write) = connect(&kino).await;
    let reader = tokio::spawn(read_frames(read));
    // A HEADERS frame that never ends: 64 MiB of CONTINUATION frames, each 16 KiB of fields.
    let mut fields = Vec::new();
    while fields.len() < 16_000 {
        literal(b"x-flood", &[b'a'; 1000], false, &mut fields);
    }
    let mut attack = frame(HEADERS, END_STREAM, 1, &get("/healthz"));
    for _ in 0..4_096 {
        attack.extend(frame(CONTINUATION, 0, 1, &fields));
    }
    let written = write_until_refused(&mut write, &attack).await;
    let received = reader.await.unwrap();
    let growth = kino.peak_growth_mb(base);
    eprintln!(
        "CONTINUATION flood: {:.1} of {} MiB taken, GOAWAY {:?} after {:?}, +{growth:.1} MB",
        written as f64 / 1048576.0,
        attack.len() >> 20,
        received.goaway,
        received.closed_after
    );
    assert_eq!(received.goaway, Some(0xb), "ENHANCE_YOUR_CALM");
    assert!(written < 16 << 20, "the server read {written} bytes of one header section");
    assert!(received.closed_after < Duration::from_secs(5));
    assert!(growth < 10.0, "the flood grew the server by {growth:.1} MB");
    assert_eq!(kino.get("/healthz").await.0, 200);
}

#[tokio::test]
async fn an_hpack_bomb_is_refused_without_decoding_it_whole() {
    let kino = Kino::start(Options::default());
    let base = kino.baseline();
    let (read, mut write) = connect(&kino).await;
    let reader = tokio::spawn(read_frames(read));
    // One 3,000-byte field put in the dynamic table, then 12,000 one-byte references to it: a
    // 15 KB block (within the 16 KiB frame size) that decodes to 36 MB (RFC 7541 §7.3).
    let mut block = get("/healthz");
    literal(b"x", &[b'b'; 3000], true, &mut block);
    block.extend(std::iter::repeat_n(0x80 | 62, 12_000));
    let attack = frame(HEADERS, END_STREAM | END_HEADERS, 1, &block);
    write.write_all(&attack).await.unwrap();
    let received = reader.await.unwrap();
    let growth = kino.peak_growth_mb(base);
    eprintln!("HPACK bomb: frames {:?}, GOAWAY {:?}, +{growth:.1} MB", received.frames, received.goaway);
    // h2 stops decoding once the list passes max_header_size and ends the connection.
    assert_eq!(received.goaway, Some(0xb), "ENHANCE_YOUR_CALM");
    assert_eq!(received.count(HEADERS), 0, "the bomb was answered as a request");
    assert!(received.closed_after < Duration::from_secs(2));
    assert!(growth < 10.0, "a 14 KB header block grew the server by {growth:.1} MB");
    assert_eq!(kino.get("/healthz").await.0, 200);
}

/// `count` copies of `one` sent without reading a byte of the answers, with send_timeout 2 s.
/// Returns the bytes the server took, how long the connection lived once the server stopped
/// taking them (the send timeout's work: the flood itself is CPU-bound and, in a debug build on
/// a busy machine, takes seconds of its own), and the memory growth.
async fn flood_without_reading(one: Vec<u8>, count: usize) -> (usize, Duration, f64) {
    let kino =
        Kino::start(Options { env: vec![("KINO_LIMITS_SEND_TIMEOUT", "2s".into())], ..Options::default() });
    let base = kino.baseline();
    let (read, mut write) = connect(&kino).await;
    let attack = one.repeat(count);
    let written = write_until_refused(&mut write, &attack).await;
    let refused = Instant::now();
    // Only now read, to see when the server gave up on the connection.
    let (status, took) = kino.get("/healthz").await;
    assert_eq!(status, 200);
    assert!(took < Duration::from_millis(500), "/healthz took {took:?} during the flood");
    read_frames(read).await;
    (written, refused.elapsed(), kino.peak_growth_mb(base))
}

#[tokio::test]
async fn ping_and_settings_floods_from_a_client_that_never_reads_cost_little_and_are_cut_off() {
    for (name, one) in
        [("PING", frame(PING, 0, 0, &[7; 8])), ("SETTINGS", frame(SETTINGS, 0, 0, &[0, 0x3, 0, 0, 0, 100]))]
    {
        let (written, lingered, growth) = flood_without_reading(one, 1_000_000).await;
        eprintln!(
            "{name} flood: {:.1} MiB taken, closed {lingered:?} after the server stopped reading, +{growth:.1} MB",
            written as f64 / 1048576.0
        );
        assert!(growth < 10.0, "a {name} flood grew the server by {growth:.1} MB");
        // The send timeout is 2 s; without it the connection would stay until the test's own
        // timeout.
        assert!(lingered < Duration::from_secs(6), "a {name} flood kept its connection for {lingered:?}");
    }
}

#[tokio::test]
async fn a_body_longer_than_its_content_length_is_a_protocol_error_every_time() {
    // h2spec http2/8.1.2.6 (RFC 9113 §8.1.1): POST / with content-length 1 and 4 bytes of DATA.
    let kino = Kino::start(Options::default());
    let mut block = vec![0x83, 0x86, 0x84, 0x41, 4];
    block.extend_from_slice(b"kino");
    literal(b"content-length", b"1", false, &mut block);
    let headers = frame(HEADERS, END_HEADERS, 1, &block);
    let data = frame(0x0, END_STREAM, 1, b"test");
    let mut outcomes = std::collections::BTreeMap::new();
    for _ in 0..30 {
        let (read, mut write) = connect(&kino).await;
        // In one write, as h2spec's frames arrive on a fast link; DATA that comes after the
        // head has had time to be answered is the next test.
        write.write_all(&[headers.as_slice(), &data].concat()).await.unwrap();
        let reader = tokio::spawn(read_frames(read));
        // h2spec waits for the error, then closes.
        tokio::time::sleep(Duration::from_millis(100)).await;
        drop(write);
        let received = reader.await.unwrap();
        let outcome = match (received.resets.iter().find(|r| r.0 == 1), received.goaway) {
            (Some(&(_, code)), _) => format!("RST_STREAM {code}"),
            (None, Some(code)) => format!("GOAWAY {code}"),
            (None, None) => "nothing".to_owned(),
        };
        *outcomes.entry(outcome).or_insert(0) += 1;
    }
    eprintln!("content-length mismatch x30 over h2c: {outcomes:?}");
    // PROTOCOL_ERROR (1), as a stream or a connection error.
    let protocol_errors = outcomes.get("RST_STREAM 1").unwrap_or(&0) + outcomes.get("GOAWAY 1").unwrap_or(&0);
    assert_eq!(protocol_errors, 30, "{outcomes:?}");
}

#[tokio::test]
async fn malformed_trailers_sent_after_the_head_are_a_protocol_error() {
    // h2spec http2/8.1 #1 and 8.1.2.1 #3: POST / with no length, 4 bytes of DATA, then trailers
    // that do not end the stream, or that carry a pseudo-header field (RFC 9113 §8.1).
    let kino = Kino::start(Options::default());
    let mut head = vec![0x83, 0x86, 0x84, 0x41, 4];
    head.extend_from_slice(b"kino");
    let (mut plain, mut pseudo) = (Vec::new(), Vec::new());
    literal(b"x-test", b"ok", false, &mut plain);
    literal(b":method", b"POST", false, &mut pseudo);
    for (name, trailers) in [("trailers without END_STREAM", plain), ("a pseudo-header in trailers", pseudo)]
    {
        let (read, mut write) = connect(&kino).await;
        let reader = tokio::spawn(read_frames(read));
        write.write_all(&frame(HEADERS, END_HEADERS, 1, &head)).await.unwrap();
        // Time for the server to answer the head alone, as it may over a real link.
        tokio::time::sleep(Duration::from_millis(100)).await;
        let rest = [frame(0x0, 0, 1, b"test"), frame(HEADERS, END_HEADERS, 1, &trailers)].concat();
        write.write_all(&rest).await.unwrap();
        tokio::time::sleep(Duration::from_millis(100)).await;
        drop(write);
        let received = reader.await.unwrap();
        eprintln!("{name}: resets {:?}, GOAWAY {:?}", received.resets, received.goaway);
        // PROTOCOL_ERROR (1) as a stream or connection error; not an answer and NO_ERROR (0).
        let protocol_error = received.resets.contains(&(1, 1)) || received.goaway == Some(1);
        assert!(protocol_error, "{name}: {received:?}");
    }
}

/// `POST /` declaring `content-length: declared`, its DATA `pieces` sent after the head alone,
/// over one connection: how the stream ended, as the client saw it.
async fn post_slowly(
    io: impl AsyncRead + AsyncWrite + Unpin + Send + 'static,
    declared: &str,
    pieces: &[&'static [u8]],
) -> String {
    let (client, connection) = h2::client::handshake(io).await.expect("h2 handshake");
    tokio::spawn(connection);
    let mut client = client.ready().await.expect("ready");
    let request =
        http::Request::post("https://localhost/").header("content-length", declared).body(()).unwrap();
    let (response, mut body) = client.send_request(request, false).expect("HEADERS sent");
    // The head alone first, with time for the server to answer it: the order in which h2spec's
    // frames reach a server over a real link, and the one that used to pass the mismatch by.
    tokio::time::sleep(Duration::from_millis(100)).await;
    for (n, piece) in pieces.iter().enumerate() {
        // After a reset the client may no longer send; the reset is the outcome.
        if body.send_data(Bytes::from_static(piece), n + 1 == pieces.len()).is_err() {
            break;
        }
    }
    match tokio::time::timeout(TEST_TIMEOUT, response).await.expect("the stream ends in time") {
        Ok(response) => format!("answered {}", response.status()),
        Err(error) => match error.reason() {
            Some(reason) => format!("{reason:?}"),
            None => format!("{error}"),
        },
    }
}

#[tokio::test]
async fn a_body_longer_than_its_content_length_sent_after_the_head_is_a_protocol_error() {
    // h2spec http2/8.1.2.6, both cases, with the h2 crate as the client: content-length 1, then
    // one DATA frame "test", or two. Over h2c and over TLS (ALPN h2).
    let kino = Kino::start(Options::default());
    let tls = tls_connector(&kino.ca_pem());
    // The two cases, and a body of the declared length: answered (405: / takes no POST).
    let cases: [(&str, &[&'static [u8]], &str); 3] = [
        ("1", &[b"test"], "PROTOCOL_ERROR"),
        ("1", &[b"test", b"test"], "PROTOCOL_ERROR"),
        ("4", &[b"test"], "answered 405 Method Not Allowed"),
    ];
    for (declared, pieces, expected) in cases {
        let plain = TcpStream::connect(kino.http).await.unwrap();
        let h2c = post_slowly(plain, declared, pieces).await;
        let tcp = TcpStream::connect(kino.https).await.unwrap();
        let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
        let tls = tls.connect(name, tcp).await.expect("TLS handshake");
        assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
        let h2 = post_slowly(tls, declared, pieces).await;
        eprintln!("content-length {declared}, {} DATA: h2c {h2c}, TLS {h2}", pieces.len());
        // RST_STREAM(PROTOCOL_ERROR), not an answer followed by RST_STREAM(NO_ERROR).
        assert_eq!((h2c.as_str(), h2.as_str()), (expected, expected));
    }
    assert_eq!(kino.get("/healthz").await.0, 200, "the server still answers");
}

/// A TLS client offering `h2` that trusts the server's generated CA.
fn tls_connector(ca_pem: &[u8]) -> tokio_rustls::TlsConnector {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(ca_pem) {
        roots.add(cert.unwrap()).unwrap();
    }
    let mut config = rustls::ClientConfig::builder().with_root_certificates(roots).with_no_client_auth();
    config.alpn_protocols = vec![b"h2".to_vec()];
    tokio_rustls::TlsConnector::from(std::sync::Arc::new(config))
}
