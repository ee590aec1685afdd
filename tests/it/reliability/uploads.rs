//! Upload attacks and crashes against the binary: a form with no boundary, kill -9 mid-upload.

use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::{Kino, Options, exchange, read_to_close, status_of};

/// A header of a raw HTTP/1.1 response.
fn header<'a>(response: &'a str, name: &str) -> Option<&'a str> {
    let head = response.split("\r\n\r\n").next()?;
    head.lines().find_map(|line| {
        let (key, value) = line.split_once(':')?;
        key.eq_ignore_ascii_case(name).then(|| value.trim())
    })
}

#[tokio::test]
async fn a_200_mib_chunked_form_without_a_boundary_is_refused_within_a_second_in_flat_memory() {
    let kino = Kino::start(Options::default());
    let auth = crate::common::first_account_token(kino.http).await;
    let base = kino.baseline();
    let started = Instant::now();
    let stream = TcpStream::connect(kino.http).await.unwrap();
    let (mut read, mut write) = stream.into_split();
    let head = format!(
        "POST /api/videos HTTP/1.1\r\nHost: kino\r\nAuthorization: {auth}\r\nContent-Type: multipart/form-data; boundary=XYZ\r\nTransfer-Encoding: chunked\r\n\r\n"
    );
    write.write_all(head.as_bytes()).await.unwrap();
    let writer = tokio::spawn(async move {
        let mut chunk = format!("{:x}\r\n", 1 << 20).into_bytes();
        chunk.extend(std::iter::repeat_n(b'a', 1 << 20));
        chunk.extend_from_slice(b"\r\n");
        let mut sent = 0u64;
        for _ in 0..200 {
            if write.write_all(&chunk).await.is_err() {
                break;
            }
            sent += 1 << 20;
        }
        sent
    });
    let mut response = vec![0u8; 4096];
    let n = tokio::time::timeout(Duration::from_secs(5), read.read(&mut response)).await.unwrap().unwrap();
    let took = started.elapsed();
    let sent = writer.await.unwrap();
    let growth = kino.peak_growth_mb(base);
    eprintln!(
        "200 MiB form, no boundary: {} after {took:?}, {} MiB sent, +{growth:.1} MB",
        status_of(&response[..n]),
        sent >> 20
    );
    assert_eq!(status_of(&response[..n]), 400);
    assert!(took < Duration::from_secs(1), "the refusal took {took:?}");
    assert!(growth < 20.0, "the form grew the server by {growth:.1} MB");
}

#[tokio::test]
async fn a_tus_upload_killed_mid_patch_resumes_after_restart_and_stores_the_exact_bytes() {
    let video = std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/media/sample-h264.mp4")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut kino = Kino::start_in(dir.path(), Options::default());
    let auth = crate::common::first_account_token(kino.http).await;
    let create = format!(
        "POST /api/uploads HTTP/1.1\r\nHost: kino\r\nAuthorization: {auth}\r\nTus-Resumable: 1.0.0\r\nUpload-Length: {}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
        video.len()
    );
    let created = String::from_utf8(exchange(kino.http, create.as_bytes()).await).unwrap();
    assert_eq!(status_of(created.as_bytes()), 201, "{created}");
    let location = header(&created, "location").unwrap();
    let path = location.find("/api/").map(|i| location[i..].to_owned()).unwrap();
    let patch_head = |offset: usize, len: usize| {
        format!(
            "PATCH {path} HTTP/1.1\r\nHost: kino\r\nAuthorization: {auth}\r\nTus-Resumable: 1.0.0\r\nContent-Type: application/offset+octet-stream\r\nUpload-Offset: {offset}\r\nContent-Length: {len}\r\nConnection: close\r\n\r\n"
        )
    };

    // A third arrives whole; the second third is on its way when the server is killed.
    let third = video.len() / 3;
    let mut first = patch_head(0, third).into_bytes();
    first.extend_from_slice(&video[..third]);
    assert_eq!(status_of(&exchange(kino.http, &first).await), 204);
    let mut cut = TcpStream::connect(kino.http).await.unwrap();
    cut.write_all(patch_head(third, video.len() - third).as_bytes()).await.unwrap();
    cut.write_all(&video[third..2 * third]).await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    kino.kill();
    drop(cut);

    let kino = Kino::start_in(dir.path(), Options::default());
    let head = format!(
        "HEAD {path} HTTP/1.1\r\nHost: kino\r\nAuthorization: {auth}\r\nTus-Resumable: 1.0.0\r\nConnection: close\r\n\r\n"
    );
    let head = String::from_utf8(exchange(kino.http, head.as_bytes()).await).unwrap();
    assert_eq!(status_of(head.as_bytes()), 200, "{head}");
    let offset: usize = header(&head, "upload-offset").unwrap().parse().unwrap();
    eprintln!("tus after kill -9: offset {offset} of {} (a third {third} acknowledged)", video.len());
    assert!((third..=2 * third).contains(&offset), "resumes at {offset}, outside what was sent");

    let mut rest = patch_head(offset, video.len() - offset).into_bytes();
    rest.extend_from_slice(&video[offset..]);
    let done = String::from_utf8(exchange(kino.http, &rest).await).unwrap();
    assert_eq!(status_of(done.as_bytes()), 204, "{done}");
    let video_path = header(&done, "video-location").expect("Video-Location");
    let video_id = video_path.rsplit('/').next().unwrap();
    let get = format!("GET /stream/{video_id} HTTP/1.1\r\nHost: kino\r\nConnection: close\r\n\r\n");
    let mut stream = TcpStream::connect(kino.http).await.unwrap();
    stream.write_all(get.as_bytes()).await.unwrap();
    let response = read_to_close(&mut stream).await;
    let body = &response[response.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4..];
    assert_eq!(status_of(&response), 200);
    assert_eq!(blake3::hash(body), blake3::hash(&video), "the stored video differs from the upload");
}
