//! `cargo bench --bench load`: kino under load on loopback, over HTTP/1.1 (plain and TLS),
//! HTTP/2 and HTTP/3, driven by its own clients; prints one Markdown table.
//!
//! The server runs in a child process (this same optimised binary, re-executed with
//! `KINO_LOAD_SERVER` set), so its memory is measured apart from the load generator's.
#![allow(missing_docs)]

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use futures_util::StreamExt;

const FILE_LEN: u64 = 100 * 1024 * 1024;
const RANGE_LEN: u64 = 64 * 1024;
const CELL: Duration = Duration::from_secs(3);
/// Keep-alive connections held open at once for the idle-memory measurement.
const IDLE_CONNECTIONS: usize = 10_000;

fn main() {
    if std::env::var_os("KINO_LOAD_SERVER").is_some() {
        return serve();
    }
    // `benches/peers.sh` uses this binary as a load generator against any server.
    if let Ok(target) = std::env::var("KINO_LOAD_TARGET") {
        let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
        return runtime.block_on(against(&target));
    }
    // `cargo bench` passes `--bench`; `cargo test --benches` runs it with no args: do nothing.
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    runtime.block_on(drive());
}

/// The child: a kino server over a temp dir holding one 100 MB file.
fn serve() {
    kino::tls::install_crypto_provider();
    let dir = tempfile::tempdir().unwrap();
    let media = dir.path().join("media");
    std::fs::create_dir_all(&media).unwrap();
    let mut file = std::fs::File::create(media.join("big.bin")).unwrap();
    let block = kino_test_support::Noise::new(1).bytes(1 << 20);
    for _ in 0..FILE_LEN >> 20 {
        file.write_all(&block).unwrap();
    }
    drop(file);
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        let mut config = kino::Config::for_tests(dir.path());
        config.media_dirs = vec![media];
        config.limits.max_connections = 20_000;
        let server = kino::Application::build(config).await.unwrap();
        let ca = server.certificates().ca_path.clone().unwrap();
        println!("{} {} {}", server.http_addr(), server.https_addr(), ca.display());
        std::io::stdout().flush().unwrap();
        server.run(std::future::pending()).await.unwrap();
    });
}

struct Server {
    child: Child,
    http: std::net::SocketAddr,
    https: std::net::SocketAddr,
    ca: Vec<u8>,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    fn start() -> Self {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .env("KINO_LOAD_SERVER", "1")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
        let mut parts = line.split_whitespace();
        let http = parts.next().unwrap().parse().unwrap();
        let https = parts.next().unwrap().parse().unwrap();
        let ca = std::fs::read(parts.next().unwrap()).unwrap();
        Self { child, http, https, ca }
    }

    /// The server's resident memory, MB.
    fn rss_mb(&self) -> f64 {
        kino_test_support::rss_bytes_of(self.child.id()) as f64 / (1024.0 * 1024.0)
    }

    fn client(&self, protocol: &str) -> (reqwest::Client, String) {
        let tls = || {
            reqwest::Client::builder()
                .no_gzip()
                .no_brotli()
                .tls_certs_only([reqwest::Certificate::from_pem(&self.ca).unwrap()])
                .resolve("localhost", self.https)
        };
        let https = format!("https://localhost:{}", self.https.port());
        match protocol {
            "HTTP/1.1" => {
                (reqwest::Client::builder().http1_only().build().unwrap(), format!("http://{}", self.http))
            }
            "HTTP/1.1 TLS" => (tls().http1_only().build().unwrap(), https),
            _ => (tls().http2_prior_knowledge().build().unwrap(), https),
        }
    }
}

/// Latencies of one cell, and how many bytes moved.
struct Cell {
    latencies: Vec<Duration>,
    bytes: u64,
    elapsed: Duration,
}

impl Cell {
    fn row(&mut self, protocol: &str, workload: &str, connections: usize, rss: f64) -> String {
        self.latencies.sort();
        let pick = |q: f64| {
            self.latencies
                .get(((self.latencies.len() as f64 * q) as usize).min(self.latencies.len().saturating_sub(1)))
        };
        let ms = |d: Option<&Duration>| d.map_or(0.0, |d| d.as_secs_f64() * 1000.0);
        format!(
            "| {protocol} | {workload} | {connections} | {:.0} | {:.0} | {:.2} | {:.2} | {rss:.0} |",
            self.latencies.len() as f64 / self.elapsed.as_secs_f64(),
            self.bytes as f64 / 1e6 / self.elapsed.as_secs_f64(),
            ms(pick(0.5)),
            ms(pick(0.99)),
        )
    }
}

/// A random-looking 64 KiB range inside the file, different per worker and request.
fn range_for(worker: usize, n: u64) -> String {
    let mut x =
        (worker as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ n.wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x ^= x >> 31;
    let start = x % (FILE_LEN - RANGE_LEN);
    format!("bytes={start}-{}", start + RANGE_LEN - 1)
}

/// Runs `connections` workers for one cell, each looping requests until time is up.
async fn run_cell(server: &Server, protocol: &str, whole: bool, connections: usize) -> Cell {
    let stop = Arc::new(AtomicBool::new(false));
    let mut workers = Vec::new();
    let started = Instant::now();
    for worker in 0..connections {
        let stop = stop.clone();
        let path = "/media/big.bin";
        if protocol == "HTTP/3" {
            let (https, ca) = (server.https, server.ca.clone());
            workers.push(tokio::spawn(async move {
                let mut client = kino_test_support::H3Client::connect(https, &ca).await.unwrap();
                let url = format!("https://localhost:{}{path}", https.port());
                let (mut latencies, mut bytes, mut n) = (Vec::new(), 0u64, 0u64);
                while !stop.load(Ordering::Relaxed) {
                    let range = range_for(worker, n);
                    let headers: &[(&str, &str)] = if whole { &[] } else { &[("range", range.as_str())] };
                    let t = Instant::now();
                    let response = client.get(&url, headers).await.unwrap();
                    latencies.push(t.elapsed());
                    bytes += response.body().len() as u64;
                    n += 1;
                }
                (latencies, bytes)
            }));
        } else {
            // One client per worker: one connection each for HTTP/1.1; for HTTP/2, one
            // connection per worker too (streams are multiplexed only within a worker).
            let (client, origin) = server.client(protocol);
            workers.push(tokio::spawn(async move {
                let url = format!("{origin}{path}");
                let (mut latencies, mut bytes, mut n) = (Vec::new(), 0u64, 0u64);
                while !stop.load(Ordering::Relaxed) {
                    let mut request = client.get(&url);
                    if !whole {
                        request = request.header("range", range_for(worker, n));
                    }
                    let t = Instant::now();
                    let response = request.send().await.unwrap();
                    let mut body = response.bytes_stream();
                    while let Some(chunk) = body.next().await {
                        bytes += chunk.unwrap().len() as u64;
                    }
                    latencies.push(t.elapsed());
                    n += 1;
                }
                (latencies, bytes)
            }));
        }
    }
    tokio::time::sleep(CELL).await;
    stop.store(true, Ordering::Relaxed);
    let mut cell = Cell { latencies: Vec::new(), bytes: 0, elapsed: Duration::ZERO };
    for worker in workers {
        let (latencies, bytes) = worker.await.unwrap();
        cell.latencies.extend(latencies);
        cell.bytes += bytes;
    }
    cell.elapsed = started.elapsed();
    cell
}

/// `KINO_LOAD_TARGET=h3|h2,addr,path,ca.pem,seconds,connections`: random 64 KiB ranges over
/// HTTP/3 or HTTP/2 (one connection per worker, one request at a time on each) against another
/// server; prints `req/s MB/s`. The same work over both protocols, so their ratio is fair.
async fn against(target: &str) {
    kino::tls::install_crypto_provider();
    let parts: Vec<&str> = target.split(',').collect();
    let [protocol, addr, path, ca, seconds, connections] = parts[..] else {
        panic!("h3|h2,addr,path,ca,seconds,connections")
    };
    let addr: std::net::SocketAddr = addr.parse().unwrap();
    let ca = std::fs::read(ca).unwrap();
    let (seconds, connections): (u64, usize) = (seconds.parse().unwrap(), connections.parse().unwrap());
    let stop = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let mut workers = Vec::new();
    for worker in 0..connections {
        let (stop, ca, url) = (stop.clone(), ca.clone(), format!("https://localhost:{}{path}", addr.port()));
        let h3 = protocol == "h3";
        workers.push(tokio::spawn(async move {
            let (mut requests, mut bytes) = (0u64, 0u64);
            if h3 {
                let mut client = kino_test_support::H3Client::connect(addr, &ca).await.unwrap();
                while !stop.load(Ordering::Relaxed) {
                    let range = range_for(worker, requests);
                    let response = client.get(&url, &[("range", range.as_str())]).await.unwrap();
                    assert_eq!(response.status(), 206);
                    bytes += response.body().len() as u64;
                    requests += 1;
                }
            } else {
                let client = reqwest::Client::builder()
                    .tls_certs_only([reqwest::Certificate::from_pem(&ca).unwrap()])
                    .resolve("localhost", addr)
                    .http2_prior_knowledge()
                    .build()
                    .unwrap();
                while !stop.load(Ordering::Relaxed) {
                    let response =
                        client.get(&url).header("range", range_for(worker, requests)).send().await.unwrap();
                    assert_eq!(response.status(), 206);
                    bytes += response.bytes().await.unwrap().len() as u64;
                    requests += 1;
                }
            }
            (requests, bytes)
        }));
    }
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    stop.store(true, Ordering::Relaxed);
    let (mut requests, mut bytes) = (0, 0);
    for worker in workers {
        let (r, b) = worker.await.unwrap();
        requests += r;
        bytes += b;
    }
    let elapsed = started.elapsed().as_secs_f64();
    println!("{:.0} {:.1}", requests as f64 / elapsed, bytes as f64 / 1e6 / elapsed);
}

async fn drive() {
    kino::tls::install_crypto_provider();
    let server = Server::start();
    let idle_rss = server.rss_mb();
    let mut rows = Vec::new();
    for protocol in ["HTTP/1.1", "HTTP/1.1 TLS", "HTTP/2", "HTTP/3"] {
        for (workload, whole, connections) in [
            ("64 KiB range", false, 1),
            ("64 KiB range", false, 16),
            ("whole 100 MB", true, 1),
            ("whole 100 MB", true, 4),
        ] {
            let mut cell = run_cell(&server, protocol, whole, connections).await;
            rows.push(cell.row(protocol, workload, connections, server.rss_mb()));
            eprintln!("{}", rows.last().unwrap());
        }
    }
    println!(
        "\nkino load, {} s per cell, server and client on one 2-core machine (server RSS {idle_rss:.0} MB at start):\n",
        CELL.as_secs()
    );
    println!("| protocol | workload | connections | req/s | MB/s | p50 ms | p99 ms | server RSS MB |");
    println!("|---|---|---|---|---|---|---|---|");
    for row in rows {
        println!("{row}");
    }
    println!("\nserver RSS after the run: {:.0} MB", server.rss_mb());
    let before = server.rss_mb();
    let held = idle_connections(&server, IDLE_CONNECTIONS).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let with_idle = server.rss_mb();
    println!(
        "server RSS with {} idle HTTP/1.1 keep-alive connections open: {with_idle:.0} MB \
         ({:+.0} MB, {:.1} KB per connection)",
        held.len(),
        with_idle - before,
        (with_idle - before) * 1024.0 / held.len() as f64,
    );
    drop(held);
    tokio::time::sleep(Duration::from_secs(1)).await;
    println!("server RSS once they closed: {:.0} MB", server.rss_mb());
}

/// Opens `count` plain HTTP/1.1 connections, makes one request on each (so each is a served
/// keep-alive connection, not a half-open one), and returns them still open.
async fn idle_connections(server: &Server, count: usize) -> Vec<tokio::net::TcpStream> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr = server.http;
    // 256 at a time: more would overflow the listen backlog and time out in SYN retries.
    futures_util::stream::iter(0..count)
        .map(|_| async move {
            let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
            stream.write_all(b"HEAD /media/big.bin HTTP/1.1\r\nhost: localhost\r\n\r\n").await.unwrap();
            let mut head = Vec::new();
            let mut buf = [0u8; 1024];
            while !head.ends_with(b"\r\n\r\n") {
                let n = stream.read(&mut buf).await.unwrap();
                assert!(n > 0, "the server closed a keep-alive connection");
                head.extend_from_slice(&buf[..n]);
            }
            assert!(head.starts_with(b"HTTP/1.1 200"), "{}", String::from_utf8_lossy(&head));
            stream
        })
        .buffer_unordered(256)
        .collect()
        .await
}
