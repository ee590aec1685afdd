//! `spawn_app()`: the real server on port 0 with a temp dir, and clients for every protocol.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use kino::{Application, Config};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use kino_test_support::H3Client;
pub use kino_test_support::{first_account_token, rss_bytes};

/// Held for writing while a test reads this process's resident memory, and for reading while
/// the test uploader's password is hashed: argon2's 19 MiB, mapped for another test, would count
/// as the measured test's growth. (Take the uploader before measuring, or this deadlocks.)
pub static MEMORY: tokio::sync::RwLock<()> = tokio::sync::RwLock::const_new(());

/// Every test gives up after this long instead of hanging CI.
pub const TEST_TIMEOUT: Duration = Duration::from_secs(20);

/// A running server and what a client needs to reach it.
pub struct TestApp {
    pub http: SocketAddr,
    pub https: SocketAddr,
    /// Every TLS and QUIC socket (127.0.0.1 and ::1 when the app listens on `localhost`).
    pub https_all: Vec<SocketAddr>,
    /// Every plain-HTTP socket.
    pub http_all: Vec<SocketAddr>,
    pub ca_pem: Vec<u8>,
    pub spki_sha256: String,
    dir: std::path::PathBuf,
    _tempdir: Option<tempfile::TempDir>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<anyhow::Result<()>>>,
    /// The `Authorization` value of [`TestApp::uploader`], made at its first call.
    uploader: tokio::sync::OnceCell<String>,
}

/// A client that shows responses as sent: no transparent decompression (tests check
/// `Content-Encoding`), bounded in time.
fn client() -> reqwest::ClientBuilder {
    reqwest::Client::builder().no_gzip().no_brotli().timeout(TEST_TIMEOUT)
}

/// Starts the server with the test configuration.
pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

/// Starts the server after `adjust` has changed the test configuration.
pub async fn spawn_app_with(adjust: impl FnOnce(&mut Config)) -> TestApp {
    let tempdir = tempfile::tempdir().expect("temp dir");
    let mut app = spawn_in(tempdir.path(), adjust).await;
    app._tempdir = Some(tempdir);
    app
}

/// Starts the server with its state in `dir` (kept by the caller, e.g. across restarts).
pub async fn spawn_in(dir: &Path, adjust: impl FnOnce(&mut Config)) -> TestApp {
    kino::tls::install_crypto_provider();
    let mut config = Config::for_tests(dir);
    config.media_dirs = vec![Path::new(env!("CARGO_MANIFEST_DIR")).join("media")];
    adjust(&mut config);
    // A configured certificate (`tls.cert_path`) is trusted through the CA left in `cert_dir`.
    let cert_dir_ca = config.tls.cert_dir.join("ca.pem");
    let server = Application::build(config).await.expect("server builds");
    let (stop, stopped) = oneshot::channel::<()>();
    let ca_path = server.certificates().ca_path.clone().unwrap_or(cert_dir_ca);
    let mut app = TestApp {
        http: server.http_addr(),
        https: server.https_addr(),
        https_all: server.https_addrs(),
        http_all: server.http_addrs(),
        ca_pem: std::fs::read(ca_path).expect("CA certificate"),
        spki_sha256: server.certificates().spki_sha256.clone(),
        dir: dir.to_owned(),
        _tempdir: None,
        stop: Some(stop),
        task: None,
        uploader: tokio::sync::OnceCell::new(),
    };
    let task = tokio::spawn(server.run(async {
        let _ = stopped.await;
    }));
    app.task = Some(task);
    app
}

impl TestApp {
    /// A handle on a server that runs elsewhere (the reliability suite's binary): its clients
    /// and paths only. Stopping that server is its owner's job, so [`TestApp::shutdown`] panics.
    pub fn remote(http: SocketAddr, https: SocketAddr, ca_pem: Vec<u8>, dir: &Path) -> Self {
        kino::tls::install_crypto_provider();
        Self {
            http,
            https,
            https_all: vec![https],
            http_all: vec![http],
            ca_pem,
            spki_sha256: String::new(),
            dir: dir.to_owned(),
            _tempdir: None,
            stop: None,
            task: None,
            uploader: tokio::sync::OnceCell::new(),
        }
    }

    /// The server's certificate dir.
    pub fn cert_dir(&self) -> std::path::PathBuf {
        self.dir.join("certs")
    }

    /// The server's data dir.
    pub fn data_dir(&self) -> std::path::PathBuf {
        self.dir.join("data")
    }

    /// `http://127.0.0.1:<port><path>`.
    pub fn plain_url(&self, path: &str) -> String {
        format!("http://{}{path}", self.http)
    }

    /// `https://localhost:<port><path>`.
    pub fn tls_url(&self, path: &str) -> String {
        format!("https://localhost:{}{path}", self.https.port())
    }

    fn tls_client(&self) -> reqwest::ClientBuilder {
        let ca = reqwest::Certificate::from_pem(&self.ca_pem).expect("CA parses");
        client().tls_certs_only([ca]).resolve("localhost", self.https)
    }

    /// HTTP/2 over TLS, decompressing bodies as a browser does.
    pub fn h2_decoding(&self) -> reqwest::Client {
        self.tls_client().gzip(true).brotli(true).http2_prior_knowledge().build().expect("client")
    }

    /// HTTP/1.1 over TLS.
    pub fn h1(&self) -> reqwest::Client {
        self.tls_client().http1_only().build().expect("client")
    }

    /// HTTP/2 over TLS (negotiated with ALPN).
    pub fn h2(&self) -> reqwest::Client {
        self.tls_client().http2_prior_knowledge().build().expect("client")
    }

    /// HTTP/1.1 over plain TCP.
    pub fn plain(&self) -> reqwest::Client {
        client().http1_only().build().expect("client")
    }

    /// HTTP/2 over plain TCP with prior knowledge (h2c).
    pub fn h2c(&self) -> reqwest::Client {
        client().http2_prior_knowledge().build().expect("client")
    }

    /// An HTTP/3 connection that trusts the generated CA.
    pub async fn h3(&self) -> H3Client {
        H3Client::connect(self.https, &self.ca_pem).await.expect("HTTP/3 connects")
    }

    /// `Bearer <access token>` of an account that may upload, for the `Authorization` header
    /// of uploads. The account is signed up at the first call, so it is the server's first
    /// (an admin) as long as the test signs nobody up before.
    pub async fn uploader(&self) -> &str {
        self.uploader
            .get_or_init(|| async {
                let _hashing = MEMORY.read().await;
                first_account_token(self.http).await
            })
            .await
    }

    /// Asks the server to shut down gracefully and waits until `run` returns.
    pub async fn shutdown(mut self) -> anyhow::Result<()> {
        self.begin_shutdown();
        self.stopped().await
    }

    /// Sends the shutdown signal without waiting.
    pub fn begin_shutdown(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }

    /// Waits for `run` to return.
    pub async fn stopped(&mut self) -> anyhow::Result<()> {
        let task = self.task.take().expect("server task");
        tokio::time::timeout(TEST_TIMEOUT, task).await.expect("server stops in time")?
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.begin_shutdown();
    }
}

/// The client protocols every media test runs over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    Http1,
    Http2,
    Http3,
}

pub const ALL_PROTOCOLS: [Protocol; 3] = [Protocol::Http1, Protocol::Http2, Protocol::Http3];

impl TestApp {
    /// One request over `protocol` (TLS for HTTP/1.1 and HTTP/2), answered as a [`Snapshot`].
    pub async fn fetch(
        &self,
        protocol: Protocol,
        method: http::Method,
        path: &str,
        headers: &[(&str, &str)],
    ) -> crate::snapshot::Snapshot {
        self.send(protocol, method, path, headers, bytes::Bytes::new()).await
    }

    /// [`TestApp::fetch`] with a request body.
    pub async fn send(
        &self,
        protocol: Protocol,
        method: http::Method,
        path: &str,
        headers: &[(&str, &str)],
        body: bytes::Bytes,
    ) -> crate::snapshot::Snapshot {
        let url = self.tls_url(path);
        match protocol {
            Protocol::Http3 => {
                let mut builder = http::Request::builder().method(method).uri(&url);
                for (name, value) in headers {
                    builder = builder.header(*name, *value);
                }
                let request = builder.body(body).unwrap();
                let response = self.h3().await.request(request).await.expect("HTTP/3 request");
                crate::snapshot::Snapshot::of_h3(response)
            }
            Protocol::Http1 | Protocol::Http2 => {
                let client = if protocol == Protocol::Http1 { self.h1() } else { self.h2() };
                let mut request = client.request(method, &url);
                for (name, value) in headers {
                    request = request.header(*name, *value);
                }
                if !body.is_empty() {
                    request = request.body(body);
                }
                crate::snapshot::Snapshot::of(request.send().await.expect("request")).await
            }
        }
    }
}
