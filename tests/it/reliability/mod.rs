//! The reliability suite: attacks from raw clients against the real `kino` binary, each asserting
//! what the attacker gets (a status, a time) and what it costs the server (its resident memory,
//! read from `/proc/<pid>/status`).
//!
//! Behaviour already covered in-process elsewhere (range rules, traversal, form bombs) is not
//! repeated here; this is the place for the floods, the bombs, the gaming and their numbers.

mod h1;
mod h2;
mod images;
mod quic;
mod uploads;
mod views;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

pub use crate::common::TEST_TIMEOUT;

/// A running `kino` binary with its state in a temp dir, killed (SIGKILL) when dropped.
pub struct Kino {
    child: Child,
    /// The plain-HTTP socket.
    pub http: SocketAddr,
    /// The TLS and QUIC socket.
    pub https: SocketAddr,
    dir: PathBuf,
    _tempdir: Option<tempfile::TempDir>,
}

/// How to start the binary.
#[derive(Default)]
pub struct Options<'a> {
    /// `KINO_*` variables, e.g. `("KINO_LIMITS_SEND_TIMEOUT", "2s")`.
    pub env: Vec<(&'a str, String)>,
    /// Files to put in the media root, which is `<dir>/media`.
    pub media: Vec<(&'a str, Vec<u8>)>,
    /// The open-file limit (`RLIMIT_NOFILE`) the binary starts with.
    pub nofile: Option<u64>,
}

impl Kino {
    /// Starts the binary in a fresh temp dir.
    pub fn start(options: Options<'_>) -> Self {
        let tempdir = tempfile::tempdir().expect("temp dir");
        let mut kino = Self::start_in(tempdir.path(), options);
        kino._tempdir = Some(tempdir);
        kino
    }

    /// Starts the binary with its state in `dir` (kept by the caller across restarts).
    pub fn start_in(dir: &Path, options: Options<'_>) -> Self {
        use std::io::BufRead;
        let media = dir.join("media");
        std::fs::create_dir_all(&media).unwrap();
        for (name, bytes) in &options.media {
            std::fs::write(media.join(name), bytes).unwrap();
        }
        let mut command = match options.nofile {
            // prlimit(1) sets the limit and execs the binary, so the pid is the server's.
            Some(n) => {
                let mut command = Command::new("prlimit");
                command.arg(format!("--nofile={n}:{n}")).arg(env!("CARGO_BIN_EXE_kino"));
                command
            }
            None => Command::new(env!("CARGO_BIN_EXE_kino")),
        };
        command
            .current_dir(dir)
            .args(["serve", "--http-addr", "127.0.0.1:0", "--https-addr", "127.0.0.1:0"])
            .env("KINO_LOG_FORMAT", "json")
            .env("KINO_LOG_FILTER", "info")
            .env("KINO_SECRET", "a-test-secret-that-is-long-enough-000")
            .env("KINO_MEDIA_DIRS", &media)
            // Every attacker here is 127.0.0.1, and each attack measures one transport limit; the
            // per-address budgets and connection cap would stop them first (tests/it/rate_limit.rs).
            .env("KINO_RATE_LIMIT_ENABLED", "false")
            .env("KINO_LIMITS_MAX_CONNECTIONS_PER_IP", "0")
            .envs(options.env.iter().map(|(k, v)| (k, v)))
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        let mut child = command.spawn().expect("kino starts");
        let mut lines = std::io::BufReader::new(child.stdout.take().unwrap()).lines();
        let (mut http, mut https) = (None, None);
        while http.is_none() || https.is_none() {
            let line = lines.next().expect("a start-up banner").unwrap();
            let log: Value = serde_json::from_str(&line).expect("JSON log line");
            let addr = |url: &str, scheme: &str| url.trim_start_matches(scheme).parse::<SocketAddr>().ok();
            if let Some(url) = log["http"].as_str() {
                http = addr(url, "http://");
            }
            if let Some(url) = log["https"].as_str() {
                https = addr(url, "https://");
            }
        }
        // Keep draining the log so the server never blocks on a full pipe.
        std::thread::spawn(move || lines.for_each(drop));
        Self { child, http: http.unwrap(), https: https.unwrap(), dir: dir.to_owned(), _tempdir: None }
    }

    /// The server's state dir.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The test clients of every protocol, pointed at this binary.
    pub fn clients(&self) -> crate::common::TestApp {
        crate::common::TestApp::remote(self.http, self.https, self.ca_pem(), &self.dir)
    }

    /// The generated CA certificate, PEM.
    pub fn ca_pem(&self) -> Vec<u8> {
        std::fs::read(self.dir.join("certs/ca.pem")).expect("CA certificate")
    }

    /// One line of `/proc/<pid>/status` in bytes (`VmRSS`, `VmHWM`).
    fn status_bytes(&self, field: &str) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).expect("procfs");
        let line = status.lines().find_map(|l| l.strip_prefix(field)).expect("a status line");
        line.trim_start_matches(':').trim().trim_end_matches("kB").trim().parse::<u64>().unwrap() * 1024
    }

    /// The server's resident memory now.
    pub fn rss(&self) -> u64 {
        self.status_bytes("VmRSS")
    }

    /// Starts a measurement: resets the server's peak RSS (`clear_refs` 5) and returns its RSS.
    pub fn baseline(&self) -> u64 {
        std::fs::write(format!("/proc/{}/clear_refs", self.pid()), "5").expect("clear_refs");
        self.rss()
    }

    /// The server's peak resident memory since [`Kino::baseline`] above `base`, in MB.
    pub fn peak_growth_mb(&self, base: u64) -> f64 {
        self.status_bytes("VmHWM").saturating_sub(base) as f64 / 1e6
    }

    /// Whether the process is still running.
    pub fn alive(&mut self) -> bool {
        self.child.try_wait().expect("waitpid").is_none()
    }

    /// Kills the server with SIGKILL, as a crash would.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// `GET path` over a fresh plain HTTP/1.1 connection: the status and how long it took.
    pub async fn get(&self, path: &str) -> (u16, Duration) {
        let started = Instant::now();
        let request = format!("GET {path} HTTP/1.1\r\nHost: kino\r\nConnection: close\r\n\r\n");
        let response = exchange(self.http, request.as_bytes()).await;
        (status_of(&response), started.elapsed())
    }

    /// A counter or gauge from `/metrics`.
    pub async fn metric(&self, series: &str) -> u64 {
        let request = "GET /metrics HTTP/1.1\r\nHost: kino\r\nConnection: close\r\n\r\n";
        let response = String::from_utf8_lossy(&exchange(self.http, request.as_bytes()).await).into_owned();
        response
            .lines()
            .find_map(|line| line.strip_prefix(series)?.trim().parse().ok())
            .unwrap_or_else(|| panic!("{series} is not in /metrics"))
    }
}

impl Drop for Kino {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Sends `request` on a new connection and reads until the server closes it.
pub async fn exchange(addr: SocketAddr, request: &[u8]) -> Vec<u8> {
    let mut stream = TcpStream::connect(addr).await.expect("connects");
    stream.write_all(request).await.expect("request sent");
    read_to_close(&mut stream).await
}

/// Everything the server sends until it closes (a reset counts as closing).
pub async fn read_to_close(stream: &mut TcpStream) -> Vec<u8> {
    let mut response = Vec::new();
    let read = tokio::time::timeout(TEST_TIMEOUT, async {
        let mut buf = [0u8; 16 * 1024];
        while let Ok(n @ 1..) = stream.read(&mut buf).await {
            response.extend_from_slice(&buf[..n]);
        }
    });
    read.await.expect("the server closes in time");
    response
}

/// The status code of a raw HTTP/1.1 response, 0 when there is none.
pub fn status_of(response: &[u8]) -> u16 {
    std::str::from_utf8(response.get(9..12).unwrap_or_default())
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

/// How many `HTTP/1.1 ` status lines a raw response stream holds.
pub fn responses_in(response: &[u8]) -> usize {
    response.windows(9).filter(|w| w == b"HTTP/1.1 ").count()
}
