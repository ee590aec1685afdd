//! HTTP/1.1 attacks: slow headers, slow readers, fd exhaustion, request smuggling.

use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::{Kino, Options, exchange, responses_in, status_of};

/// Trickles a request head one byte every 200 ms until the server closes; returns how long
/// the connection lived.
async fn slowloris(addr: std::net::SocketAddr) -> Duration {
    let started = Instant::now();
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.write_all(b"GET / HTTP/1.1\r\nHost: kino\r\n").await.unwrap();
    let mut buf = [0u8; 1024];
    loop {
        tokio::select! {
            read = stream.read(&mut buf) => if !matches!(read, Ok(1..)) { break },
            () = tokio::time::sleep(Duration::from_millis(200)) => {
                if stream.write_all(b"X").await.is_err() { break }
            }
        }
    }
    started.elapsed()
}

#[tokio::test]
async fn three_hundred_slowloris_connections_are_closed_by_the_header_timeout_in_bounded_memory() {
    let kino = Kino::start(Options {
        env: vec![("KINO_LIMITS_HEADER_READ_TIMEOUT", "2s".into())],
        ..Options::default()
    });
    let base = kino.baseline();
    let attackers: Vec<_> = (0..300).map(|_| tokio::spawn(slowloris(kino.http))).collect();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (status, took) = kino.get("/healthz").await;
    assert_eq!(status, 200);
    assert!(took < Duration::from_millis(500), "/healthz took {took:?} under attack");
    let mut longest = Duration::ZERO;
    for attacker in attackers {
        longest = longest.max(attacker.await.unwrap());
    }
    let growth = kino.peak_growth_mb(base);
    eprintln!("300 slowloris connections: longest lived {longest:?}, +{growth:.1} MB peak");
    assert!(longest < Duration::from_secs(4), "a trickled head lived {longest:?} (header_read_timeout 2 s)");
    assert!(growth < 20.0, "300 slow heads grew the server by {growth:.1} MB");
}

#[tokio::test]
async fn fifty_clients_that_never_read_free_all_fifty_slots_after_the_send_timeout() {
    let kino = Kino::start(Options {
        env: vec![("KINO_LIMITS_SEND_TIMEOUT", "2s".into()), ("KINO_LIMITS_MAX_CONNECTIONS", "50".into())],
        media: vec![("big.bin", vec![7u8; 16 << 20])],
        ..Options::default()
    });
    let base = kino.baseline();
    let mut stalled = Vec::new();
    for _ in 0..50 {
        let mut stream = TcpStream::connect(kino.http).await.unwrap();
        stream.write_all(b"GET /media/big.bin HTTP/1.1\r\nHost: kino\r\n\r\n").await.unwrap();
        stalled.push(stream);
    }
    let started = Instant::now();
    // Every slot is held by a client that reads nothing: /healthz waits for the send timeout.
    let (status, took) = kino.get("/healthz").await;
    let growth = kino.peak_growth_mb(base);
    eprintln!("50 stalled readers: /healthz after {took:?}, +{growth:.1} MB peak");
    assert_eq!(status, 200);
    assert!(started.elapsed() < Duration::from_secs(5), "/healthz waited {:?} (send_timeout 2 s)", took);
    // The other 49 time out within moments of the first.
    let mut timeouts = 0;
    while timeouts < 50 && started.elapsed() < Duration::from_secs(5) {
        timeouts = kino.metric("kino_send_timeouts_total{protocol=\"http/1.1\"}").await;
    }
    assert_eq!(timeouts, 50, "after {:?}", started.elapsed());
    // Each response holds at most two 256 KiB chunks above the socket buffers.
    assert!(growth < 40.0, "50 stalled 16 MiB responses grew the server by {growth:.1} MB");
}

#[tokio::test]
async fn with_64_file_descriptors_a_flood_of_connections_does_not_kill_the_server() {
    let mut kino = Kino::start(Options { nofile: Some(64), ..Options::default() });
    let mut flood = Vec::new();
    for _ in 0..200 {
        // The kernel completes the handshakes (listen backlog) whether or not kino can accept.
        if let Ok(Ok(stream)) =
            tokio::time::timeout(Duration::from_millis(200), TcpStream::connect(kino.http)).await
        {
            flood.push(stream);
        }
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(kino.alive(), "the server died out of file descriptors");
    let opened = flood.len();
    drop(flood);
    let started = Instant::now();
    let status = loop {
        let (status, _) = kino.get("/healthz").await;
        if status == 200 || started.elapsed() > Duration::from_secs(5) {
            break status;
        }
    };
    eprintln!("{opened} connections at 64 fds: /healthz 200 again {:?} after they closed", started.elapsed());
    assert_eq!(status, 200);
    assert!(started.elapsed() < Duration::from_secs(3), "recovery took {:?}", started.elapsed());
    assert!(kino.alive());
}

/// Request framings that front ends and back ends have read differently (CL.TE, TE.CL, TE.TE
/// and malformed lengths, after PortSwigger's and RFC 9112 §6.3's cases). Each is followed by a
/// smuggled `GET /smuggled` that must never be answered as a request of its own.
const SMUGGLING: &[(&str, &str)] = &[
    ("CL and TE", "Content-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"),
    ("TE not chunked last", "Transfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n"),
    ("TE obfuscated", "Transfer-Encoding: xchunked\r\n\r\n0\r\n\r\n"),
    ("TE with space before colon", "Transfer-Encoding : chunked\r\n\r\n0\r\n\r\n"),
    ("TE folded", "Transfer-Encoding:\r\n chunked\r\n\r\n0\r\n\r\n"),
    ("two different CLs", "Content-Length: 0\r\nContent-Length: 5\r\n\r\nAAAAA"),
    ("CL list", "Content-Length: 0, 5\r\n\r\nAAAAA"),
    ("negative CL", "Content-Length: -5\r\n\r\n"),
    ("signed CL", "Content-Length: +5\r\n\r\nAAAAA"),
    ("hex chunk size", "Transfer-Encoding: chunked\r\n\r\n0x5\r\nAAAAA\r\n0\r\n\r\n"),
    ("overflowing chunk size", "Transfer-Encoding: chunked\r\n\r\nfffffffffffffffff1\r\nA\r\n0\r\n\r\n"),
    ("chunk without CRLF", "Transfer-Encoding: chunked\r\n\r\n5\r\nAAAAAXX0\r\n\r\n"),
];

#[tokio::test]
async fn ambiguous_request_framing_is_refused_and_nothing_is_smuggled() {
    let kino = Kino::start(Options::default());
    let auth = crate::common::first_account_token(kino.http).await;
    for (name, framing) in SMUGGLING {
        let request = format!(
            "POST /api/videos HTTP/1.1\r\nHost: kino\r\nAuthorization: {auth}\r\nContent-Type: multipart/form-data; boundary=X\r\n{framing}GET /smuggled HTTP/1.1\r\nHost: kino\r\n\r\n"
        );
        let response = exchange(kino.http, request.as_bytes()).await;
        let text = String::from_utf8_lossy(&response);
        // CL+TE: hyper reads the chunked body (it wins, RFC 9112 §6.3), the form in it is
        // refused and the connection closed after the answer, as §6.1 requires.
        assert_eq!(status_of(&response), 400, "{name}: {text}");
        assert_eq!(responses_in(&response), 1, "{name}: the smuggled request was answered: {text}");
    }
    let (status, _) = kino.get("/healthz").await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn a_hundred_one_mebibyte_heads_get_431_each_in_bounded_memory() {
    let kino = Kino::start(Options::default());
    let base = kino.baseline();
    let started = Instant::now();
    let clients: Vec<_> = (0..100)
        .map(|_| {
            let addr = kino.http;
            tokio::spawn(async move {
                let mut stream = TcpStream::connect(addr).await.unwrap();
                let mut head = b"GET / HTTP/1.1\r\nHost: kino\r\n".to_vec();
                while head.len() < 1 << 20 {
                    head.extend_from_slice(
                        b"X-Pad: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n",
                    );
                }
                // The server answers and closes long before the head ends; writing then fails.
                let _ = stream.write_all(&head).await;
                status_of(&super::read_to_close(&mut stream).await)
            })
        })
        .collect();
    for client in clients {
        assert_eq!(client.await.unwrap(), 431);
    }
    let growth = kino.peak_growth_mb(base);
    eprintln!("100 heads of 1 MiB: 431 in {:?}, +{growth:.1} MB", started.elapsed());
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(growth < 20.0, "100 huge heads grew the server by {growth:.1} MB");
}

#[tokio::test]
async fn range_abuse_gets_the_whole_file_or_bounded_multipart_answers() {
    let kino = Kino::start(Options { media: vec![("big.bin", vec![3u8; 8 << 20])], ..Options::default() });
    let base = kino.baseline();
    let get = |range: String| {
        format!("GET /media/big.bin HTTP/1.1\r\nHost: kino\r\nRange: {range}\r\nConnection: close\r\n\r\n")
    };
    // 2,000 one-byte ranges: past the 16-range cap, the whole file with 200.
    let many = (0..2_000).map(|i| format!("{}-{}", 2 * i, 2 * i)).collect::<Vec<_>>().join(",");
    let response = exchange(kino.http, get(format!("bytes={many}")).as_bytes()).await;
    assert_eq!(status_of(&response), 200);
    // 16 overlapping whole-file ranges would be 16x amplification: the whole file once.
    let overlapping = vec!["0-"; 16].join(",");
    let response = exchange(kino.http, get(format!("bytes={overlapping}")).as_bytes()).await;
    assert_eq!(status_of(&response), 200);
    assert!(response.len() < (8 << 20) + 4096, "{} bytes for an 8 MiB file", response.len());
    // 50 clients at once asking for 16 disjoint 256 KiB ranges each get 206 multipart answers.
    let disjoint =
        (0..16).map(|i| format!("{}-{}", i << 19, (i << 19) + (1 << 18) - 1)).collect::<Vec<_>>().join(",");
    let started = Instant::now();
    let clients: Vec<_> = (0..50)
        .map(|_| {
            let request = get(format!("bytes={disjoint}"));
            let addr = kino.http;
            tokio::spawn(async move {
                let response = exchange(addr, request.as_bytes()).await;
                (status_of(&response), response.len())
            })
        })
        .collect();
    for client in clients {
        let (status, len) = client.await.unwrap();
        assert_eq!(status, 206);
        assert!(len > 16 << 18, "a 16-range answer of {len} bytes");
    }
    let growth = kino.peak_growth_mb(base);
    eprintln!("range abuse: 50 x 16 ranges in {:?}, +{growth:.1} MB", started.elapsed());
    assert!(growth < 40.0, "range abuse grew the server by {growth:.1} MB");
}

#[tokio::test]
async fn two_hundred_idle_keep_alive_and_h2c_connections_are_reaped_on_time() {
    let kino = Kino::start(Options {
        env: vec![
            ("KINO_LIMITS_HEADER_READ_TIMEOUT", "2s".into()),
            ("KINO_LIMITS_IDLE_TIMEOUT", "2s".into()),
        ],
        ..Options::default()
    });
    let base = kino.baseline();
    let started = Instant::now();
    let mut idle = Vec::new();
    for n in 0..200 {
        let mut stream = TcpStream::connect(kino.http).await.unwrap();
        if n % 2 == 0 {
            stream.write_all(b"GET /healthz HTTP/1.1\r\nHost: kino\r\n\r\n").await.unwrap();
        } else {
            // The h2c preface and SETTINGS, then silence.
            stream.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\0\0\0\x04\0\0\0\0\0").await.unwrap();
        }
        idle.push(tokio::spawn(async move {
            super::read_to_close(&mut stream).await;
            started.elapsed()
        }));
    }
    let mut longest = Duration::ZERO;
    for connection in idle {
        longest = longest.max(connection.await.unwrap());
    }
    let growth = kino.peak_growth_mb(base);
    eprintln!("200 idle connections: all closed by {longest:?}, +{growth:.1} MB");
    assert!(longest < Duration::from_secs(4), "an idle connection lived {longest:?} (timeouts 2 s)");
    assert!(growth < 20.0);
    assert_eq!(kino.metric("kino_connections_open").await, 1, "only the /metrics request is open");
}

#[tokio::test]
async fn fifty_uploads_trickling_under_the_minimum_rate_get_408() {
    let kino = Kino::start(Options {
        env: vec![
            ("KINO_LIMITS_UPLOAD_RATE_WINDOW", "2s".into()),
            ("KINO_LIMITS_UPLOAD_MIN_RATE", "4096".into()),
        ],
        ..Options::default()
    });
    let auth = crate::common::first_account_token(kino.http).await;
    let base = kino.baseline();
    let started = Instant::now();
    let uploads: Vec<_> = (0..50)
        .map(|_| {
            let addr = kino.http;
            let auth = auth.clone();
            tokio::spawn(async move {
                let mut stream = TcpStream::connect(addr).await.unwrap();
                let head = format!(
                    "POST /api/videos HTTP/1.1\r\nHost: kino\r\nAuthorization: {auth}\r\nContent-Type: multipart/form-data; boundary=XyZ\r\nContent-Length: 10000000\r\n\r\n--XyZ\r\nContent-Disposition: form-data; name=\"file\"\r\n\r\n"
                );
                stream.write_all(head.as_bytes()).await.unwrap();
                let mut response = Vec::new();
                let mut buf = [0u8; 4096];
                // 100 bytes every 100 ms: 1 KB/s, well inside body_idle_timeout, far under the rate.
                loop {
                    tokio::select! {
                        read = stream.read(&mut buf) => match read {
                            Ok(n @ 1..) => response.extend_from_slice(&buf[..n]),
                            _ => break,
                        },
                        () = tokio::time::sleep(Duration::from_millis(100)) => {
                            if stream.write_all(&[0u8; 100]).await.is_err() { break }
                        }
                    }
                }
                (status_of(&response), started.elapsed())
            })
        })
        .collect();
    for upload in uploads {
        let (status, took) = upload.await.unwrap();
        assert_eq!(status, 408);
        assert!(took < Duration::from_secs(5), "a trickling upload lived {took:?} (window 2 s)");
    }
    let growth = kino.peak_growth_mb(base);
    eprintln!("50 trickling uploads: 408 within {:?}, +{growth:.1} MB", started.elapsed());
    assert!(growth < 20.0);
    assert_eq!(
        std::fs::read_dir(kino.dir().join("data/tmp")).map(|d| d.count()).unwrap_or(0),
        0,
        "no file left"
    );
}
