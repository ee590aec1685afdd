//! View counting through the real server: players, probes, downloaders, restarts.

use std::time::Duration;

use http::Method;
use serde_json::Value;

use crate::common::{ALL_PROTOCOLS, Protocol, TestApp, spawn_app_with, spawn_in};

/// The id and stream URL of the faststart MP4 sample.
async fn sample(app: &TestApp) -> (String, String) {
    let page: Value = app.h2().get(app.tls_url("/api/videos")).send().await.unwrap().json().await.unwrap();
    let video =
        page["videos"].as_array().unwrap().iter().find(|v| v["title"] == "sample h264").unwrap().clone();
    (video["id"].as_str().unwrap().to_owned(), video["stream_url"].as_str().unwrap().to_owned())
}

async fn views_of(app: &TestApp, id: &str) -> Value {
    app.h2().get(app.tls_url(&format!("/api/videos/{id}/views"))).send().await.unwrap().json().await.unwrap()
}

/// Polls the views API until `done` holds: the writer commits in the background.
async fn eventually(app: &TestApp, id: &str, done: impl Fn(&Value) -> bool) -> Value {
    for _ in 0..100 {
        let views = views_of(app, id).await;
        if done(&views) {
            return views;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("condition never held: {}", views_of(app, id).await);
}

fn cookie(n: usize) -> String {
    format!("kino_vid={}", format!("viewer{n:016}").replace(' ', "0"))
}

/// What a browser does: a probe, then the whole file from the start.
async fn play(app: &TestApp, protocol: Protocol, url: &str, cookie: &str) {
    let probe = app.fetch(protocol, Method::GET, url, &[("range", "bytes=0-1"), ("cookie", cookie)]).await;
    assert_eq!(probe.status, 206);
    let full = app.fetch(protocol, Method::GET, url, &[("range", "bytes=0-"), ("cookie", cookie)]).await;
    assert_eq!(full.status, 206);
}

#[tokio::test]
async fn a_player_gets_one_view_per_protocol_visible_with_its_reason() {
    let app = spawn_app_with(|c| c.views.pace = 0.0).await;
    let (id, url) = sample(&app).await;
    for (n, protocol) in ALL_PROTOCOLS.into_iter().enumerate() {
        play(&app, protocol, &url, &cookie(n)).await;
        // Watching again at once is the same session: still one view.
        play(&app, protocol, &url, &cookie(n)).await;
    }
    let views = eventually(&app, &id, |v| v["views"] == 3).await;
    assert_eq!(views["unique_viewers"], 3);
    let sessions = views["sessions"].as_array().unwrap();
    assert_eq!(sessions.iter().filter(|s| s["reason"] == "counted").count(), 3, "{views}");
    assert!(sessions.iter().all(|s| s["checkpoints_reached"] == 10), "{views}");
    let retention = views["retention"].as_array().unwrap();
    assert_eq!(retention.len(), 10);
    assert!(retention.windows(2).all(|w| w[0]["position"].as_f64() < w[1]["position"].as_f64()));
    assert!(retention.iter().all(|p| p["sessions"] == 3), "{views}");
    let video: Value =
        app.h2().get(app.tls_url(&format!("/api/videos/{id}"))).send().await.unwrap().json().await.unwrap();
    assert_eq!(video["views"], 3, "the catalog shows the same count");
}

#[tokio::test]
async fn a_client_pulling_at_full_speed_is_too_fast() {
    // No slack: the 20-second sample stands for a long film fetched far faster than real time.
    let app = spawn_app_with(|c| c.views.slack = Duration::ZERO).await;
    let (id, url) = sample(&app).await;
    for (n, protocol) in ALL_PROTOCOLS.into_iter().enumerate() {
        app.fetch(protocol, Method::GET, &url, &[("cookie", &cookie(n))]).await;
    }
    let views = eventually(&app, &id, |v| v["sessions"].as_array().unwrap().len() == 3).await;
    assert_eq!(views["views"], 0);
    for session in views["sessions"].as_array().unwrap() {
        assert_eq!(session["reason"], "too_fast", "{views}");
    }
}

#[tokio::test]
async fn probes_and_head_requests_reach_nothing() {
    let app = spawn_app_with(|c| c.views.pace = 0.0).await;
    let (id, url) = sample(&app).await;
    app.fetch(Protocol::Http2, Method::GET, &url, &[("range", "bytes=0-1"), ("cookie", &cookie(1))]).await;
    app.fetch(Protocol::Http3, Method::HEAD, &url, &[("cookie", &cookie(2))]).await;
    let views = eventually(&app, &id, |v| v["sessions"].as_array().unwrap().len() == 2).await;
    assert_eq!(views["views"], 0);
    let mut reasons: Vec<&str> =
        views["sessions"].as_array().unwrap().iter().map(|s| s["reason"].as_str().unwrap()).collect();
    reasons.sort();
    assert_eq!(reasons, ["head", "probe"]);
}

#[tokio::test]
async fn a_new_viewer_gets_a_private_secure_cookie_on_streams_only() {
    let app = spawn_app_with(|_| {}).await;
    let (_, url) = sample(&app).await;
    let stream = app.fetch(Protocol::Http2, Method::GET, &url, &[("range", "bytes=0-1")]).await;
    let set = stream.header("set-cookie").expect("a viewer cookie");
    for part in ["kino_vid=", "HttpOnly", "SameSite=Lax", "Secure"] {
        assert!(set.contains(part), "{set}");
    }
    assert!(stream.header("cache-control").unwrap().starts_with("private"));
    let with_cookie = app
        .fetch(Protocol::Http2, Method::GET, &url, &[("range", "bytes=0-1"), ("cookie", &cookie(7))])
        .await;
    assert_eq!(with_cookie.header("set-cookie"), None);
    let media =
        app.fetch(Protocol::Http2, Method::GET, "/media/sample-h264.mp4", &[("range", "bytes=0-1")]).await;
    assert_eq!(media.header("set-cookie"), None);
}

#[tokio::test]
async fn counts_and_ended_sessions_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let app = spawn_in(dir.path(), |c| c.views.pace = 0.0).await;
    let (id, url) = sample(&app).await;
    play(&app, Protocol::Http1, &url, &cookie(1)).await;
    eventually(&app, &id, |v| v["views"] == 1).await;
    app.shutdown().await.unwrap();

    let again = spawn_in(dir.path(), |c| c.views.pace = 0.0).await;
    let views = views_of(&again, &id).await;
    assert_eq!(views["views"], 1);
    assert_eq!(views["unique_viewers"], 1);
    let ended = &views["sessions"][0];
    assert_eq!(
        (ended["live"].as_bool(), ended["reason"].as_str()),
        (Some(false), Some("counted")),
        "{views}"
    );
    assert!(ended["covered_ms"].as_u64().unwrap() >= 19_000, "{views}");
}
