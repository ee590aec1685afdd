//! Streaming video uploads over HTTP/1.1, HTTP/2 and HTTP/3: memory stays flat, bad input is
//! refused early and leaves nothing behind.

use std::path::Path;
use std::time::Duration;

use bytes::Bytes;
use futures_util::{Stream, StreamExt, stream};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::common::{ALL_PROTOCOLS, Protocol, TestApp, rss_bytes, spawn_app, spawn_app_with};

const BOUNDARY: &str = "kino-test-boundary-7d1f";
const CHUNK: usize = 256 * 1024;

fn sample(name: &str) -> Vec<u8> {
    std::fs::read(format!("{}/media/{name}", env!("CARGO_MANIFEST_DIR"))).unwrap()
}

/// A valid MP4 of exactly `total` bytes: the faststart sample followed by a `free` box of
/// pseudo-random bytes from `seed`, produced lazily in chunks so the client holds none of it.
fn big_mp4(total: usize, seed: u64) -> impl Stream<Item = Bytes> + Unpin + Send + 'static {
    let head = sample("sample-h264.mp4");
    let padding = total - head.len();
    let mut free_header = (padding as u32).to_be_bytes().to_vec();
    free_header.extend_from_slice(b"free");
    let mut noise = kino_test_support::Noise::new(seed);
    let filler = (0..(padding - 8).div_ceil(CHUNK))
        .map(move |i| Bytes::from(noise.bytes(CHUNK.min(padding - 8 - i * CHUNK))));
    Box::pin(stream::iter([Bytes::from(head), Bytes::from(free_header)].into_iter().chain(filler)))
}

/// `file` (and optional `title`) as a streamed multipart/form-data body.
fn multipart(
    file: impl Stream<Item = Bytes> + Unpin + Send + 'static,
    title: Option<&str>,
) -> impl Stream<Item = Bytes> + Unpin + Send + 'static {
    let mut head = String::new();
    if let Some(title) = title {
        head.push_str(&format!(
            "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"title\"\r\n\r\n{title}\r\n"
        ));
    }
    head.push_str(&format!(
        "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"clip.mp4\"\r\nContent-Type: video/mp4\r\n\r\n"
    ));
    let tail = format!("\r\n--{BOUNDARY}--\r\n");
    Box::pin(stream::iter([Bytes::from(head)]).chain(file).chain(stream::iter([Bytes::from(tail)])))
}

const CONTENT_TYPE: &str = "multipart/form-data; boundary=kino-test-boundary-7d1f";

/// Uploads `body` over `protocol`; returns status and JSON.
async fn upload(
    app: &TestApp,
    protocol: Protocol,
    body: impl Stream<Item = Bytes> + Unpin + Send + 'static,
) -> (u16, Value) {
    post_form(app, protocol, "/api/videos", body).await
}

/// Posts `body` as a multipart form to `path` over `protocol`; returns status and JSON.
async fn post_form(
    app: &TestApp,
    protocol: Protocol,
    path: &str,
    body: impl Stream<Item = Bytes> + Unpin + Send + 'static,
) -> (u16, Value) {
    let url = app.tls_url(path);
    let auth = app.uploader().await;
    match protocol {
        Protocol::Http3 => {
            let head = http::Request::post(&url)
                .header("content-type", CONTENT_TYPE)
                .header("authorization", auth)
                .body(())
                .unwrap();
            let response = app.h3().await.request_streaming(head, body).await.unwrap();
            (response.status().as_u16(), serde_json::from_slice(response.body()).unwrap_or(Value::Null))
        }
        _ => {
            let client = if protocol == Protocol::Http1 { app.h1() } else { app.h2() };
            let body = reqwest::Body::wrap_stream(body.map(Ok::<_, std::io::Error>));
            let response = client
                .post(&url)
                .header("content-type", CONTENT_TYPE)
                .header("authorization", auth)
                .body(body)
                .send()
                .await
                .unwrap();
            let status = response.status().as_u16();
            (status, response.json().await.unwrap_or(Value::Null))
        }
    }
}

/// BLAKE3 of a stream, so 50 MB are compared without holding them.
async fn hash_stream(mut chunks: impl Stream<Item = Bytes> + Unpin) -> blake3::Hash {
    let mut hasher = blake3::Hasher::new();
    while let Some(chunk) = chunks.next().await {
        hasher.update(&chunk);
    }
    hasher.finalize()
}

#[tokio::test]
async fn a_50_mb_upload_streams_to_disk_on_every_protocol_and_reads_back_identical() {
    const SIZE: usize = 50 * 1024 * 1024;
    let app = spawn_app().await;
    // Signed in before the first reading: the password hash's memory is not the upload's.
    app.uploader().await;
    let _measuring = crate::common::MEMORY.write().await;
    for (seed, protocol) in ALL_PROTOCOLS.into_iter().enumerate() {
        let before = rss_bytes();
        let started = std::time::Instant::now();
        let (status, video) =
            upload(&app, protocol, multipart(big_mp4(SIZE, seed as u64 + 1), Some("Big upload"))).await;
        let elapsed = started.elapsed();
        let growth = rss_bytes().saturating_sub(before);
        assert_eq!(status, 201, "{protocol:?}: {video}");
        assert!(growth < 32 * 1024 * 1024, "{protocol:?}: RSS grew by {} MB", growth >> 20);
        eprintln!(
            "{protocol:?}: 50 MiB in {elapsed:?} ({:.0} MB/s), RSS +{} MB",
            SIZE as f64 / 1e6 / elapsed.as_secs_f64(),
            growth >> 20
        );
        assert_eq!(video["title"], "Big upload");
        assert_eq!(video["size"], SIZE);
        assert_eq!(video["faststart"], true);

        let url = app.tls_url(video["stream_url"].as_str().unwrap());
        let response = app.h2().get(url).send().await.unwrap();
        assert_eq!(response.status(), 200);
        let served = hash_stream(response.bytes_stream().map(|c| c.unwrap())).await;
        assert_eq!(served, hash_stream(big_mp4(SIZE, seed as u64 + 1)).await, "{protocol:?}: bytes differ");
    }
    let list: Value = app.h2().get(app.tls_url("/api/videos")).send().await.unwrap().json().await.unwrap();
    assert_eq!(list["total"], 6);
}

fn files_in(dir: &Path) -> usize {
    std::fs::read_dir(dir).map(|d| d.count()).unwrap_or(0)
}

async fn catalog_total(app: &TestApp) -> u64 {
    let list: Value = app.h2().get(app.tls_url("/api/videos")).send().await.unwrap().json().await.unwrap();
    list["total"].as_u64().unwrap()
}

#[tokio::test]
async fn an_upload_aborted_halfway_leaves_no_file_and_no_row() {
    let app = spawn_app().await;
    // The body fails after 3 MiB: the client gives up mid-upload.
    let broken = multipart(big_mp4(8 << 20, 9), None)
        .take(14)
        .map(Ok::<_, std::io::Error>)
        .chain(stream::iter([Err(std::io::Error::other("client gave up"))]));
    let result = app
        .h1()
        .post(app.tls_url("/api/videos"))
        .header("content-type", CONTENT_TYPE)
        .header("authorization", app.uploader().await)
        .body(reqwest::Body::wrap_stream(broken))
        .send()
        .await;
    assert!(result.is_err() || result.unwrap().status().is_client_error());
    let (tmp, library) = (app.data_dir().join("tmp"), app.data_dir().join("library"));
    for _ in 0..100 {
        if files_in(&tmp) == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(files_in(&tmp), 0, "the partial file is removed");
    assert_eq!(files_in(&library), 0);
    assert_eq!(catalog_total(&app).await, 3);
}

#[tokio::test]
async fn an_oversized_content_length_is_refused_before_the_body() {
    let app = spawn_app_with(|c| c.limits.max_upload_bytes = 1 << 20).await;
    let auth = app.uploader().await;
    let mut socket = TcpStream::connect(app.http).await.unwrap();
    let head = format!(
        "POST /api/videos HTTP/1.1\r\nHost: kino\r\nAuthorization: {auth}\r\nContent-Type: {CONTENT_TYPE}\r\nContent-Length: {}\r\nExpect: 100-continue\r\n\r\n",
        10 << 20
    );
    socket.write_all(head.as_bytes()).await.unwrap();
    let mut answer = vec![0u8; 4096];
    let n = tokio::time::timeout(Duration::from_secs(5), socket.read(&mut answer)).await.unwrap().unwrap();
    let answer = String::from_utf8_lossy(&answer[..n]);
    assert!(answer.starts_with("HTTP/1.1 413"), "no 100 Continue, straight to 413: {answer}");
    assert!(answer.contains("payload_too_large"), "{answer}");
}

#[tokio::test]
async fn a_body_growing_past_the_limit_is_cut_off_and_removed() {
    let app = spawn_app_with(|c| c.limits.max_upload_bytes = 2 << 20).await;
    for protocol in ALL_PROTOCOLS {
        let (status, body) = upload(&app, protocol, multipart(big_mp4(4 << 20, 3), None)).await;
        assert_eq!(status, 413, "{protocol:?}: {body}");
    }
    assert_eq!(files_in(&app.data_dir().join("tmp")), 0);
    assert_eq!(catalog_total(&app).await, 3);
}

#[tokio::test]
async fn content_decides_the_type_not_the_name() {
    let app = spawn_app().await;
    let text =
        multipart(Box::pin(stream::iter([Bytes::from_static(b"just some text, named clip.mp4")])), None);
    let (status, body) = upload(&app, Protocol::Http2, text).await;
    assert_eq!(status, 415, "{body}");
    let image = multipart(Box::pin(stream::iter([Bytes::from(sample("sample-graphic.png"))])), None);
    let (status, body) = upload(&app, Protocol::Http2, image).await;
    assert_eq!(status, 415);
    assert!(body["error"]["message"].as_str().unwrap().contains("image/png"), "{body}");
    assert_eq!(files_in(&app.data_dir().join("tmp")), 0);
}

#[tokio::test]
async fn an_mp4_with_its_index_at_the_end_is_stored_faststart_with_the_same_media() {
    let app = spawn_app().await;
    let original = sample("sample-moov-at-end.mp4");
    let (status, video) = upload(
        &app,
        Protocol::Http1,
        multipart(Box::pin(stream::iter([Bytes::from(original.clone())])), None),
    )
    .await;
    assert_eq!(status, 201, "{video}");
    assert_eq!(video["faststart"], true);
    assert_eq!(video["duration_ms"], 20_000);
    assert_eq!(video["size"], original.len());
    let stored = app
        .h2()
        .get(app.tls_url(video["stream_url"].as_str().unwrap()))
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert_eq!(&stored[44..48], b"moov", "moov follows ftyp (32 bytes) and free (8 bytes)");
    // The media data (mdat payload) is byte-identical, just later in the file.
    let mdat = &original[40 + 8..40 + 191_986];
    let at = stored.windows(8).position(|w| &w[4..] == b"mdat").unwrap();
    assert_eq!(&stored[at + 8..at + 191_986], mdat);
}

#[tokio::test]
async fn the_same_bytes_are_stored_once_per_owner() {
    let app = spawn_app().await;
    let clip = || multipart(Box::pin(stream::iter([Bytes::from(sample("sample-vp9.webm"))])), None);
    // The media root's copy is nobody's, so the uploader gets a video of their own...
    let (status, own) = upload(&app, Protocol::Http2, clip()).await;
    assert_eq!(status, 201, "{own}");
    assert_eq!(own["owner"]["display_name"], "uploader", "{own}");
    assert_eq!(files_in(&app.data_dir().join("library")), 1);
    // ...once: the same bytes again are that video.
    let (status, again) = upload(&app, Protocol::Http2, clip()).await;
    assert_eq!(status, 200, "{again}");
    assert_eq!(again["id"], own["id"]);
    assert_eq!(files_in(&app.data_dir().join("library")), 1);
}

#[tokio::test]
async fn form_fields_are_validated() {
    let app = spawn_app().await;
    let long_title = "x".repeat(301);
    for (title, expected) in [(Some(long_title.as_str()), "title"), (Some("   "), "title")] {
        let body = multipart(Box::pin(stream::iter([Bytes::from(sample("sample-h264.mp4"))])), title);
        let (status, json) = upload(&app, Protocol::Http2, body).await;
        assert_eq!(status, 422, "{json}");
        assert!(json["error"]["message"].as_str().unwrap().starts_with(expected), "{json}");
    }
    let no_file = Box::pin(stream::iter([Bytes::from(format!(
        "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"title\"\r\n\r\nOnly a title\r\n--{BOUNDARY}--\r\n"
    ))]));
    let (status, json) = upload(&app, Protocol::Http2, no_file).await;
    assert_eq!((status, json["error"]["message"].as_str()), (422, Some("file: required")));
}

// Multipart abuse and upload limits (issue 12). The bodies are generated as they are sent, so
// the client holds none of them and the RSS growth measured is the server's.

/// Megabytes of `fill` after `head`: a chunked body the server must refuse long before its end.
fn endless_after(
    head: &'static [u8],
    megabytes: usize,
    fill: u8,
) -> impl Stream<Item = Bytes> + Unpin + Send {
    let chunk = Bytes::from(vec![fill; 1 << 20]);
    Box::pin(
        stream::iter([Bytes::from_static(head)])
            .chain(stream::iter((0..megabytes).map(move |_| chunk.clone()))),
    )
}

#[tokio::test]
async fn a_200_mib_form_without_a_boundary_or_blank_line_is_refused_at_once_in_flat_memory() {
    let app = spawn_app().await;
    // Signed in before the first reading: the password hash's memory is not the form's.
    app.uploader().await;
    let _measuring = crate::common::MEMORY.write().await;
    let cases: [(&str, &'static [u8]); 2] = [
        ("no boundary", b""),
        (
            "part headers without a blank line",
            b"--kino-test-boundary-7d1f\r\nContent-Disposition: form-data; name=\"file\"\r\n",
        ),
    ];
    for (case, head) in cases {
        for path in ["/api/videos", "/api/images"] {
            for protocol in ALL_PROTOCOLS {
                let before = rss_bytes();
                let started = std::time::Instant::now();
                let (status, body) = post_form(&app, protocol, path, endless_after(head, 200, b'a')).await;
                let elapsed = started.elapsed();
                let growth = rss_bytes().saturating_sub(before);
                eprintln!("{case}, {path}, {protocol:?}: {status} in {elapsed:?}, RSS +{} KB", growth >> 10);
                assert_eq!(status, 400, "{case}, {path}, {protocol:?}: {body}");
                assert_eq!(body["error"]["code"], "bad_request");
                // The target is < 1 s; 5 s keeps a loaded CI machine green, and before the
                // fix this took 25 s (the client gives up at 20 s).
                assert!(elapsed < Duration::from_secs(5), "{case}, {path}, {protocol:?}: {elapsed:?}");
                assert!(growth < 20 << 20, "{case}, {path}, {protocol:?}: RSS grew by {} MB", growth >> 20);
            }
        }
    }
}

#[tokio::test]
async fn a_megabyte_field_name_gets_a_short_error() {
    let app = spawn_app().await;
    let name = "n".repeat(1 << 20);
    for path in ["/api/videos", "/api/images"] {
        let form = format!(
            "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\nx\r\n--{BOUNDARY}--\r\n"
        );
        let response = app
            .h2()
            .post(app.tls_url(path))
            .header("content-type", CONTENT_TYPE)
            .header("authorization", app.uploader().await)
            .body(form)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 400, "{path}");
        let body = response.text().await.unwrap();
        assert!(body.len() < 300, "{path}: a {}-byte error body echoes the name", body.len());
        assert!(body.contains("headers are longer than 8 KiB"), "{path}: {body}");
    }
}

#[tokio::test]
async fn a_hundred_thousand_tiny_fields_are_refused_at_the_first_unexpected_one() {
    let app = spawn_app().await;
    // Signed in before the clock starts (the sign-in may wait for a memory test to finish).
    app.uploader().await;
    for path in ["/api/videos", "/api/images"] {
        let fields = stream::iter(0..100_000).map(|i| {
            Bytes::from(format!("--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"f{i}\"\r\n\r\nx\r\n"))
        });
        let body = Box::pin(fields.chain(stream::iter([Bytes::from(format!("--{BOUNDARY}--\r\n"))])));
        let started = std::time::Instant::now();
        let (status, json) = post_form(&app, Protocol::Http2, path, body).await;
        assert_eq!(status, 422, "{path}: {json}");
        assert_eq!(json["error"]["message"], "\"f0\": unexpected or repeated field");
        assert!(started.elapsed() < Duration::from_secs(5), "{path}: {:?}", started.elapsed());
    }
}

#[tokio::test]
async fn a_100_mib_title_is_refused_without_being_held() {
    let app = spawn_app().await;
    app.uploader().await;
    let _measuring = crate::common::MEMORY.write().await;
    let head = b"--kino-test-boundary-7d1f\r\nContent-Disposition: form-data; name=\"title\"\r\n\r\n";
    let before = rss_bytes();
    let (status, json) = upload(&app, Protocol::Http2, endless_after(head, 100, b't')).await;
    let growth = rss_bytes().saturating_sub(before);
    assert_eq!(status, 422, "{json}");
    assert_eq!(json["error"]["message"], "title: must be 1 to 300 characters");
    assert!(growth < 20 << 20, "RSS grew by {} MB", growth >> 20);
}

#[tokio::test]
async fn a_chunked_body_far_over_the_limit_is_413_at_once_and_leaves_no_file() {
    let app = spawn_app_with(|c| c.limits.max_upload_bytes = 2 << 20).await;
    // Signed in before the clock starts (the sign-in may wait for a memory test to finish).
    app.uploader().await;
    let head = b"--kino-test-boundary-7d1f\r\nContent-Disposition: form-data; name=\"file\"\r\n\r\n";
    for protocol in ALL_PROTOCOLS {
        let started = std::time::Instant::now();
        let (status, json) = upload(&app, protocol, endless_after(head, 200, 0)).await;
        assert_eq!(status, 413, "{protocol:?}: {json}");
        assert!(started.elapsed() < Duration::from_secs(5), "{protocol:?}: {:?}", started.elapsed());
    }
    assert_eq!(files_in(&app.data_dir().join("tmp")), 0);
}

/// Sends `head` and `body` over plain HTTP/1.1, then waits (sending nothing more) for the answer.
async fn stall_after(app: &TestApp, head: &str, body: &[u8]) -> String {
    let mut socket = TcpStream::connect(app.http).await.unwrap();
    socket.write_all(head.as_bytes()).await.unwrap();
    socket.write_all(body).await.unwrap();
    let mut answer = vec![0u8; 4096];
    let n = tokio::time::timeout(Duration::from_secs(5), socket.read(&mut answer))
        .await
        .expect("an answer within 5 s")
        .unwrap();
    String::from_utf8_lossy(&answer[..n]).into_owned()
}

#[tokio::test]
async fn a_stalled_upload_body_is_408() {
    let app = spawn_app_with(|c| c.limits.body_idle_timeout = Duration::from_millis(300)).await;
    let part = format!("--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"\r\n\r\nsome bytes");
    let auth = app.uploader().await;
    for path in ["/api/videos", "/api/images"] {
        let head = format!(
            "POST {path} HTTP/1.1\r\nHost: kino\r\nAuthorization: {auth}\r\nContent-Type: {CONTENT_TYPE}\r\nContent-Length: 100000\r\n\r\n"
        );
        let answer = stall_after(&app, &head, part.as_bytes()).await;
        assert!(answer.starts_with("HTTP/1.1 408"), "{path}: {answer}");
        assert!(answer.contains("\"request_timeout\""), "{path}: {answer}");
    }
    // A resumable upload's PATCH too; what arrived is kept.
    let created = app
        .plain()
        .post(app.plain_url("/api/uploads"))
        .header("authorization", auth)
        .header("tus-resumable", "1.0.0")
        .header("upload-length", "100000")
        .send()
        .await
        .unwrap();
    let location = created.headers()["location"].to_str().unwrap().to_owned();
    let head = format!(
        "PATCH {location} HTTP/1.1\r\nHost: kino\r\nAuthorization: {auth}\r\nTus-Resumable: 1.0.0\r\nUpload-Offset: 0\r\nContent-Type: application/offset+octet-stream\r\nContent-Length: 100000\r\n\r\n"
    );
    let answer = stall_after(&app, &head, &[7u8; 1000]).await;
    assert!(answer.starts_with("HTTP/1.1 408"), "tus: {answer}");
    assert!(answer.contains("1000 bytes were kept"), "tus: {answer}");
}

#[tokio::test]
async fn a_trickling_upload_is_cut_off_with_408_when_a_window_brings_too_little() {
    let app = spawn_app_with(|c| {
        c.limits.upload_min_rate = 64 * 1024;
        c.limits.upload_rate_window = Duration::from_millis(500);
    })
    .await;
    // Signed in before the clock starts (the sign-in may wait for a memory test to finish).
    app.uploader().await;
    for protocol in ALL_PROTOCOLS {
        // 100 bytes every 50 ms: 2 KB/s, never idle for long, and done only after 10 s.
        let trickle = stream::unfold(0, |i| async move {
            (i < 200).then_some(())?;
            tokio::time::sleep(Duration::from_millis(50)).await;
            Some((Bytes::from(vec![b'x'; 100]), i + 1))
        });
        let started = std::time::Instant::now();
        let (status, json) = upload(&app, protocol, multipart(Box::pin(trickle), None)).await;
        let elapsed = started.elapsed();
        assert_eq!(status, 408, "{protocol:?}: {json}");
        assert_eq!(json["error"]["code"], "request_timeout");
        assert!(elapsed < Duration::from_secs(5), "{protocol:?}: cut off after {elapsed:?}");
    }
    assert_eq!(files_in(&app.data_dir().join("tmp")), 0);
}

#[tokio::test]
async fn orphaned_temporary_files_are_deleted_at_start_up() {
    let dir = tempfile::tempdir().unwrap();
    let tmp = dir.path().join("data/tmp");
    std::fs::create_dir_all(tmp.join(".tmpDIR")).unwrap();
    // What a kill -9 mid-upload leaves: tempfile's `.tmpXXXXXX` names.
    for name in [".tmpA1b2C3", ".tmpZ9y8X7", ".tmpDIR/part"] {
        std::fs::write(tmp.join(name), vec![1u8; 4096]).unwrap();
    }
    let app = crate::common::spawn_in(dir.path(), |_| {}).await;
    assert_eq!(files_in(&tmp), 0, "nothing is in flight at start-up, so everything there goes");
    assert_eq!(catalog_total(&app).await, 3);
}

#[tokio::test]
async fn temporary_files_older_than_tmp_max_age_are_swept_while_running() {
    let app = spawn_app_with(|c| c.limits.tmp_max_age = Duration::from_secs(2)).await;
    let tmp = app.data_dir().join("tmp");
    let (old, fresh) = (tmp.join(".tmpOLD123"), tmp.join(".tmpNEW456"));
    std::fs::write(&old, b"left by a crash").unwrap();
    std::fs::write(&fresh, b"being written").unwrap();
    let hour_ago = std::time::SystemTime::now() - Duration::from_secs(3600);
    std::fs::File::options().write(true).open(&old).unwrap().set_modified(hour_ago).unwrap();
    let started = std::time::Instant::now();
    while old.exists() {
        assert!(started.elapsed() < Duration::from_secs(5), "the old file is still there");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(fresh.exists(), "a file touched within tmp_max_age stays");
    while fresh.exists() {
        assert!(started.elapsed() < Duration::from_secs(8), "the file was not swept once it aged");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A running `kino` binary, killed (SIGKILL) when dropped, so a failing test leaves none behind.
struct Kino(std::process::Child);

impl Kino {
    fn kill(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Drop for Kino {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Starts the real `kino` binary in `dir`; returns it and its plain-HTTP address once it listens.
fn start_kino(dir: &Path) -> (Kino, String) {
    use std::io::BufRead;
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_kino"))
        .current_dir(dir)
        .args(["serve", "--http-addr", "127.0.0.1:0", "--https-addr", "127.0.0.1:0"])
        .env("KINO_LOG_FORMAT", "json")
        .env("KINO_SECRET", "a-test-secret-that-is-long-enough-000")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = std::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let http = loop {
        let line = lines.next().expect("a start-up banner").unwrap();
        let log: Value = serde_json::from_str(&line).expect("JSON log line");
        if let Some(url) = log["http"].as_str() {
            break url.trim_start_matches("http://").to_owned();
        }
    };
    // Keep draining the log so the server never blocks on a full pipe.
    std::thread::spawn(move || lines.for_each(drop));
    (Kino(child), http)
}

#[test]
fn a_kill_9_mid_upload_leaves_a_temporary_file_that_the_next_start_deletes() {
    use std::io::Write;
    let dir = tempfile::tempdir().unwrap();
    let tmp = dir.path().join("data/tmp");
    let (mut kino, http) = start_kino(dir.path());
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let auth = runtime.block_on(crate::common::first_account_token(http.parse().unwrap()));
    let mut socket = std::net::TcpStream::connect(&http).unwrap();
    let head = format!(
        "POST /api/videos HTTP/1.1\r\nHost: kino\r\nAuthorization: {auth}\r\nContent-Type: {CONTENT_TYPE}\r\nContent-Length: {}\r\n\r\n--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"\r\n\r\n",
        10 << 20
    );
    socket.write_all(head.as_bytes()).unwrap();
    socket.write_all(&vec![0u8; 3 << 20]).unwrap();
    let started = std::time::Instant::now();
    // Written in 1 MiB blocks: once one is on disk, the upload is half-way.
    while std::fs::read_dir(&tmp).unwrap().flatten().all(|e| e.metadata().unwrap().len() < 1 << 20) {
        assert!(started.elapsed() < Duration::from_secs(10), "the upload never reached the disk");
        std::thread::sleep(Duration::from_millis(20));
    }
    kino.kill(); // SIGKILL: no destructor runs
    assert_eq!(files_in(&tmp), 1, "the crash left the partial upload behind");

    let (_kino, _) = start_kino(dir.path());
    assert_eq!(files_in(&tmp), 0, "the next start deleted it");
}

/// `Bearer <token>` of a second account, a viewer (signed up after the test uploader).
async fn viewer_token(app: &TestApp) -> String {
    app.uploader().await;
    let credentials = serde_json::json!({"email": "viewer@kino.test", "password": "a viewer's passphrase"});
    let client = app.plain();
    let signed_up = client.post(app.plain_url("/api/users")).json(&credentials).send().await.unwrap();
    let user: Value = signed_up.json().await.unwrap();
    assert_eq!(user["user"]["role"], "viewer");
    let pair: Value = client
        .post(app.plain_url("/api/auth/token"))
        .json(&credentials)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    format!("Bearer {}", pair["access_token"].as_str().unwrap())
}

#[tokio::test]
async fn every_upload_route_needs_an_uploader_and_says_so_before_reading_the_body() {
    let app = spawn_app().await;
    let viewer = viewer_token(&app).await;
    let routes = [
        (http::Method::POST, "/api/videos", CONTENT_TYPE),
        (http::Method::POST, "/api/images", CONTENT_TYPE),
        (http::Method::POST, "/api/uploads", "application/offset+octet-stream"),
    ];
    for protocol in ALL_PROTOCOLS {
        for (method, path, content_type) in &routes {
            let headers =
                [("content-type", *content_type), ("tus-resumable", "1.0.0"), ("upload-length", "10")];
            // A well-formed form: the method override reads a form's first field before routing.
            let body = Bytes::from(format!(
                "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"title\"\r\n\r\nx\r\n--{BOUNDARY}--\r\n"
            ));
            let anonymous = app.send(protocol, method.clone(), path, &headers, body.clone()).await;
            assert_eq!(anonymous.status, 401, "{protocol:?} {path}: {anonymous:?}");
            let challenge = anonymous.header("www-authenticate").unwrap_or_default();
            assert!(challenge.starts_with("Bearer "), "{protocol:?} {path}: {challenge}");
            assert!(
                String::from_utf8_lossy(&anonymous.body).contains("sign in first"),
                "{protocol:?} {path}: {}",
                String::from_utf8_lossy(&anonymous.body)
            );

            let mut as_viewer = headers.to_vec();
            as_viewer.push(("authorization", &viewer));
            let refused = app.send(protocol, method.clone(), path, &as_viewer, body.clone()).await;
            assert_eq!(refused.status, 403, "{protocol:?} {path}: {refused:?}");
            assert!(
                String::from_utf8_lossy(&refused.body).contains("uploader role"),
                "{protocol:?} {path}: {}",
                String::from_utf8_lossy(&refused.body)
            );

            let mut forged = headers.to_vec();
            forged.push(("authorization", "Bearer not.a.token"));
            let bad = app.send(protocol, method.clone(), path, &forged, body.clone()).await;
            assert_eq!(bad.status, 401, "{protocol:?} {path}: a bad token is refused, not ignored");
        }
    }
    // Refused from the head alone: a client waiting on `Expect: 100-continue` never sends the body.
    let mut socket = TcpStream::connect(app.http).await.unwrap();
    let head = format!(
        "POST /api/videos HTTP/1.1\r\nHost: kino\r\nContent-Type: {CONTENT_TYPE}\r\nContent-Length: 1000000\r\nExpect: 100-continue\r\n\r\n"
    );
    socket.write_all(head.as_bytes()).await.unwrap();
    let mut answer = vec![0u8; 4096];
    let n = tokio::time::timeout(Duration::from_secs(5), socket.read(&mut answer)).await.unwrap().unwrap();
    let answer = String::from_utf8_lossy(&answer[..n]);
    assert!(answer.starts_with("HTTP/1.1 401"), "no 100 Continue, straight to 401: {answer}");
    assert_eq!(catalog_total(&app).await, 3, "nothing was catalogued");
    assert_eq!(files_in(&app.data_dir().join("tmp")), 0);
}
