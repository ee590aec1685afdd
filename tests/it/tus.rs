//! tus 1.0 resumable uploads through the real server: create, resume, verify, restart, expire.

use std::time::Duration;

use base64::Engine;
use bytes::Bytes;
use http::Method;
use serde_json::Value;

use crate::common::{ALL_PROTOCOLS, Protocol, TestApp, spawn_app, spawn_app_with, spawn_in};
use crate::snapshot::Snapshot;

const TUS: (&str, &str) = ("tus-resumable", "1.0.0");
const OCTETS: (&str, &str) = ("content-type", "application/offset+octet-stream");

fn clip() -> Vec<u8> {
    std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/media/sample-moov-at-end.mp4")).unwrap()
}

fn b64(s: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(s)
}

async fn create(app: &TestApp, protocol: Protocol, length: usize, title: &str) -> String {
    let metadata = format!("title {},filename {}", b64(title), b64("clip.mp4"));
    let created = app
        .fetch(
            protocol,
            Method::POST,
            "/api/uploads",
            &[
                TUS,
                ("upload-length", &length.to_string()),
                ("upload-metadata", &metadata),
                ("authorization", app.uploader().await),
            ],
        )
        .await;
    assert_eq!(created.status, 201, "{created:?}");
    assert_eq!(created.header("tus-resumable"), Some("1.0.0"));
    assert_eq!(created.header("upload-offset"), Some("0"));
    assert!(created.header("upload-expires").is_some());
    created.header("location").unwrap().to_owned()
}

async fn patch(
    app: &TestApp,
    protocol: Protocol,
    url: &str,
    offset: usize,
    bytes: &[u8],
    extra: &[(&str, &str)],
) -> Snapshot {
    let offset = offset.to_string();
    let mut headers =
        vec![TUS, OCTETS, ("upload-offset", offset.as_str()), ("authorization", app.uploader().await)];
    headers.extend_from_slice(extra);
    app.send(protocol, Method::PATCH, url, &headers, Bytes::copy_from_slice(bytes)).await
}

async fn offset(app: &TestApp, url: &str) -> Option<u64> {
    let head =
        app.fetch(Protocol::Http2, Method::HEAD, url, &[TUS, ("authorization", app.uploader().await)]).await;
    (head.status == 200).then(|| {
        assert_eq!(head.header("cache-control"), Some("no-store"));
        head.header("upload-offset").unwrap().parse().unwrap()
    })
}

async fn video(app: &TestApp, location: &str) -> Value {
    app.h2().get(app.tls_url(location)).send().await.unwrap().json().await.unwrap()
}

#[tokio::test]
async fn options_lists_the_version_extensions_and_checksums() {
    let app = spawn_app().await;
    let answer = app.fetch(Protocol::Http2, Method::OPTIONS, "/api/uploads", &[]).await;
    assert_eq!(answer.status, 204);
    assert_eq!(answer.header("tus-version"), Some("1.0.0"));
    assert_eq!(
        answer.header("tus-extension"),
        Some("creation,creation-with-upload,termination,expiration,checksum")
    );
    assert_eq!(answer.header("tus-checksum-algorithm"), Some("sha1,sha256"));
    assert!(answer.header("tus-max-size").is_some());
}

#[tokio::test]
async fn an_upload_in_two_parts_becomes_a_faststart_video_on_every_protocol() {
    let app = spawn_app().await;
    for (n, protocol) in ALL_PROTOCOLS.into_iter().enumerate() {
        // A trailing `free` box makes each protocol's clip distinct content.
        let mut clip = clip();
        clip.extend_from_slice(&[0, 0, 0, 9, b'f', b'r', b'e', b'e', n as u8]);
        let url = create(&app, protocol, clip.len(), &format!("Resumed {protocol:?}")).await;
        let half = clip.len() / 2;
        let first = patch(&app, protocol, &url, 0, &clip[..half], &[]).await;
        assert_eq!(
            (first.status.as_u16(), first.header("upload-offset")),
            (204, Some(half.to_string().as_str()))
        );
        assert_eq!(offset(&app, &url).await, Some(half as u64));
        let last = patch(&app, protocol, &url, half, &clip[half..], &[]).await;
        assert_eq!(last.status, 204, "{last:?}");
        let video =
            video(&app, last.header("video-location").expect("the finished upload names its video")).await;
        assert_eq!(video["title"], format!("Resumed {protocol:?}"));
        assert_eq!(video["faststart"], true, "{video}");
        assert_eq!(video["size"], clip.len());
        assert_eq!(offset(&app, &url).await, None, "a finished upload is gone from /api/uploads");
    }
}

#[tokio::test]
async fn an_interrupted_patch_keeps_what_arrived_and_resumes_from_there() {
    let app = spawn_app().await;
    let clip = clip();
    let url = create(&app, Protocol::Http1, clip.len(), "Interrupted").await;
    // The connection dies after 64 KiB of a 200 kB body (raw TCP, so nothing is buffered away).
    {
        use tokio::io::AsyncWriteExt;
        let mut socket = tokio::net::TcpStream::connect(app.http).await.unwrap();
        let auth = app.uploader().await;
        let head = format!(
            "PATCH {url} HTTP/1.1\r\nHost: kino\r\nAuthorization: {auth}\r\nTus-Resumable: 1.0.0\r\nContent-Type: application/offset+octet-stream\r\nUpload-Offset: 0\r\nContent-Length: {}\r\n\r\n",
            clip.len()
        );
        socket.write_all(head.as_bytes()).await.unwrap();
        socket.write_all(&clip[..65_536]).await.unwrap();
        socket.flush().await.unwrap();
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let mut resumed_at = None;
    for _ in 0..50 {
        resumed_at = offset(&app, &url).await.filter(|&o| o > 0);
        if resumed_at.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let at = resumed_at.expect("the bytes that arrived were kept") as usize;
    assert_eq!(at, 65_536);
    let rest = patch(&app, Protocol::Http2, &url, at, &clip[at..], &[]).await;
    assert_eq!(rest.status, 204);
    assert!(rest.header("video-location").is_some());
}

#[tokio::test]
async fn a_partial_upload_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let clip = clip();
    let app = spawn_in(dir.path(), |_| {}).await;
    let url = create(&app, Protocol::Http2, clip.len(), "Across a restart").await;
    assert_eq!(patch(&app, Protocol::Http2, &url, 0, &clip[..100_000], &[]).await.status, 204);
    app.shutdown().await.unwrap();

    let app = spawn_in(dir.path(), |_| {}).await;
    assert_eq!(offset(&app, &url).await, Some(100_000));
    let rest = patch(&app, Protocol::Http3, &url, 100_000, &clip[100_000..], &[]).await;
    assert_eq!(rest.status, 204, "{rest:?}");
    let video = video(&app, rest.header("video-location").unwrap()).await;
    assert_eq!(video["title"], "Across a restart");
}

#[tokio::test]
async fn checksums_are_verified_and_a_mismatch_is_460() {
    let app = spawn_app().await;
    let clip = clip();
    let url = create(&app, Protocol::Http2, clip.len(), "Checked").await;
    let part = &clip[..50_000];
    let wrong = format!("sha256 {}", base64::engine::general_purpose::STANDARD.encode([0u8; 32]));
    let refused = patch(&app, Protocol::Http2, &url, 0, part, &[("upload-checksum", &wrong)]).await;
    assert_eq!(refused.status.as_u16(), 460);
    assert_eq!(offset(&app, &url).await, Some(0), "the bytes were discarded");
    let sha1 = ring::digest::digest(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY, part);
    let right = format!("sha1 {}", base64::engine::general_purpose::STANDARD.encode(sha1.as_ref()));
    let accepted = patch(&app, Protocol::Http2, &url, 0, part, &[("upload-checksum", &right)]).await;
    assert_eq!(accepted.status, 204);
    let unknown =
        patch(&app, Protocol::Http2, &url, 50_000, &clip[50_000..60_000], &[("upload-checksum", "md5 AAAA")])
            .await;
    assert_eq!(unknown.status, 400);
}

#[tokio::test]
async fn offsets_lengths_versions_and_types_are_enforced() {
    let app = spawn_app_with(|c| c.limits.max_upload_bytes = 1 << 20).await;
    let url = create(&app, Protocol::Http2, 1000, "Rules").await;
    let auth = ("authorization", app.uploader().await);
    let wrong_offset = patch(&app, Protocol::Http2, &url, 10, b"0123456789", &[]).await;
    assert_eq!(wrong_offset.status, 409);
    let too_long = patch(&app, Protocol::Http2, &url, 0, &[7u8; 1001], &[]).await;
    assert_eq!(too_long.status, 413);
    let over_limit = app
        .fetch(Protocol::Http2, Method::POST, "/api/uploads", &[TUS, auth, ("upload-length", "2000000")])
        .await;
    assert_eq!(over_limit.status, 413);
    let no_version = app.fetch(Protocol::Http2, Method::HEAD, &url, &[auth]).await;
    assert_eq!((no_version.status.as_u16(), no_version.header("tus-version")), (412, Some("1.0.0")));
    let wrong_type = app
        .send(
            Protocol::Http2,
            Method::PATCH,
            &url,
            &[TUS, auth, ("upload-offset", "0")],
            Bytes::from_static(b"x"),
        )
        .await;
    assert_eq!(wrong_type.status, 415);
    let bad_metadata = app
        .fetch(
            Protocol::Http2,
            Method::POST,
            "/api/uploads",
            &[TUS, auth, ("upload-length", "10"), ("upload-metadata", "title !!!")],
        )
        .await;
    assert_eq!(bad_metadata.status, 400);
}

#[tokio::test]
async fn creation_with_upload_and_termination() {
    let app = spawn_app().await;
    let body = Bytes::from_static(b"the first bytes");
    let auth = ("authorization", app.uploader().await);
    let created = app
        .send(
            Protocol::Http2,
            Method::POST,
            "/api/uploads",
            &[TUS, OCTETS, auth, ("upload-length", "1000")],
            body,
        )
        .await;
    assert_eq!((created.status.as_u16(), created.header("upload-offset")), (201, Some("15")));
    let url = created.header("location").unwrap().to_owned();
    let deleted = app.fetch(Protocol::Http2, Method::DELETE, &url, &[TUS, auth]).await;
    assert_eq!(deleted.status, 204);
    assert_eq!(offset(&app, &url).await, None);
    assert_eq!(std::fs::read_dir(app.data_dir().join("tus")).unwrap().count(), 0, "the bytes are gone too");
}

#[tokio::test]
async fn an_abandoned_upload_expires_and_is_deleted() {
    let app = spawn_app_with(|c| c.limits.upload_expiry = Duration::from_millis(300)).await;
    let url = create(&app, Protocol::Http2, 1000, "Abandoned").await;
    assert_eq!(patch(&app, Protocol::Http2, &url, 0, b"some bytes", &[]).await.status, 204);
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert_eq!(offset(&app, &url).await, None);
    assert_eq!(
        std::fs::read_dir(app.data_dir().join("tus")).unwrap().count(),
        0,
        "the sweeper removed the bytes"
    );
}
