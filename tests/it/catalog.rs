//! The catalog API and safe file resolution: what is listed, and what can never be reached.

use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::common::{spawn_app, spawn_app_with};

#[tokio::test]
async fn the_bundled_samples_are_listed_with_their_container_facts() {
    let app = spawn_app().await;
    let client = app.h2();
    let page: Value = client.get(app.tls_url("/api/videos")).send().await.unwrap().json().await.unwrap();
    assert_eq!(page["total"], 3, "{page}");
    let videos = page["videos"].as_array().unwrap();
    let by_title = |title: &str| {
        videos.iter().find(|v| v["title"] == title).unwrap_or_else(|| panic!("{title}: {page}"))
    };

    let h264 = by_title("sample h264");
    assert_eq!(h264["mime"], "video/mp4");
    assert_eq!((h264["width"].as_i64(), h264["height"].as_i64()), (Some(640), Some(360)));
    assert_eq!((h264["video_codec"].as_str(), h264["audio_codec"].as_str()), (Some("h264"), Some("aac")));
    assert_eq!(h264["faststart"], true);
    assert!((h264["duration"].as_f64().unwrap() - 20.0).abs() < 0.05, "{h264}");

    let moov_at_end = by_title("sample moov at end");
    assert_eq!(moov_at_end["faststart"], false);

    let webm = by_title("sample vp9");
    assert_eq!(webm["mime"], "video/webm");
    assert_eq!((webm["video_codec"].as_str(), webm["audio_codec"].as_str()), (Some("vp9"), Some("opus")));

    // The stream URL works and the single-video endpoint agrees with the list.
    let url = h264["stream_url"].as_str().unwrap();
    assert!(url.ends_with(".mp4"), "{url}");
    let stream = client.get(app.tls_url(url)).header("range", "bytes=0-1").send().await.unwrap();
    assert_eq!(stream.status(), 206);
    let one: Value = client
        .get(app.tls_url(&format!("/api/videos/{}", h264["id"].as_str().unwrap())))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(&one, h264);
}

/// Sends a raw request line, so no client normalises the path first.
async fn raw_get(addr: std::net::SocketAddr, target: &str) -> String {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let request = format!("GET {target} HTTP/1.1\r\nHost: kino\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut answer)).await.unwrap().ok();
    String::from_utf8_lossy(&answer).into_owned()
}

#[tokio::test]
async fn no_path_trick_reaches_a_file_outside_the_media_root() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    std::fs::create_dir_all(root.join("sub")).unwrap();
    std::fs::write(root.join("ok.txt"), "inside").unwrap();
    std::fs::write(root.join("sub/inner.txt"), "inner").unwrap();
    let canary = dir.path().join("canary.txt");
    std::fs::write(&canary, "CANARY-SECRET").unwrap();
    std::os::unix::fs::symlink(&canary, root.join("escape.txt")).unwrap();
    std::os::unix::fs::symlink(dir.path(), root.join("escdir")).unwrap();
    std::os::unix::fs::symlink(root.join("ok.txt"), root.join("alias.txt")).unwrap();
    let root_for_config = root.clone();
    let app = spawn_app_with(move |c| c.media_dirs = vec![root_for_config]).await;

    // Positive controls: files inside the root, and a symlink that stays inside it.
    for (target, body) in
        [("/media/ok.txt", "inside"), ("/media/sub/inner.txt", "inner"), ("/media/alias.txt", "inside")]
    {
        let answer = raw_get(app.http, target).await;
        assert!(answer.starts_with("HTTP/1.1 200") && answer.ends_with(body), "{target}: {answer}");
    }

    let absolute = canary.to_str().unwrap();
    let encoded_absolute = absolute.replace('/', "%2F");
    let corpus = [
        "../canary.txt".to_owned(),
        "..%2fcanary.txt".into(),
        "..%2Fcanary.txt".into(),
        "%2e%2e/canary.txt".into(),
        "%2e%2e%2fcanary.txt".into(),
        "%2E%2E%2Fcanary.txt".into(),
        ".%2e/canary.txt".into(),
        "%2e./canary.txt".into(),
        "..%5ccanary.txt".into(),
        "..%5Ccanary.txt".into(),
        "%252e%252e%252fcanary.txt".into(),
        "%252e%252e/canary.txt".into(),
        "..%252fcanary.txt".into(),
        "....//canary.txt".into(),
        "..;/canary.txt".into(),
        "sub/../../canary.txt".into(),
        "sub/%2e%2e/%2e%2e/canary.txt".into(),
        "sub/..%2f..%2fcanary.txt".into(),
        "./../canary.txt".into(),
        "%2e/%2e%2e/canary.txt".into(),
        "/../canary.txt".into(),
        "//canary.txt".into(),
        encoded_absolute.clone(),
        format!("%2F{}", encoded_absolute.trim_start_matches("%2F")),
        format!("/{absolute}"),
        "%00../canary.txt".into(),
        "..%00/canary.txt".into(),
        "canary.txt%00".into(),
        "%c0%ae%c0%ae/canary.txt".into(),
        "..%c0%afcanary.txt".into(),
        "%u002e%u002e/canary.txt".into(),
        "escape.txt".into(),
        "escdir/canary.txt".into(),
        "escdir/root/ok.txt/../../canary.txt".into(),
        "sub/%2e%2e%2f%2e%2e%2fcanary.txt".into(),
        "%5c..%5ccanary.txt".into(),
        "..%255c..%255ccanary.txt".into(),
        "canary.txt".into(),
    ];
    assert!(corpus.len() >= 30);
    for variant in &corpus {
        for prefix in ["/media/", "/stream/"] {
            let answer = raw_get(app.http, &format!("{prefix}{variant}")).await;
            assert!(!answer.contains("CANARY-SECRET"), "{prefix}{variant} leaked the canary:\n{answer}");
            let status = answer.split_whitespace().nth(1).unwrap_or("");
            assert!(["400", "403", "404"].contains(&status), "{prefix}{variant}: {answer}");
        }
    }
    // The same over HTTP/3, whose client sends the path exactly as given.
    let mut h3 = app.h3().await;
    for variant in corpus.iter().filter(|v| !v.contains('%') || v.contains("%2")) {
        let url = format!("https://localhost:{}/media/{variant}", app.https.port());
        if let Ok(response) = h3.get(&url, &[]).await {
            assert!(!String::from_utf8_lossy(response.body()).contains("CANARY-SECRET"), "h3 {variant}");
            assert_ne!(response.status(), 200, "h3 {variant}");
        }
    }
}
