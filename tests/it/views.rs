//! View counting through the real server: players, probes, downloaders, restarts. The gaming
//! experiments of issue 12 run against the binary in the reliability suite (`reliability/views.rs`).

use std::time::Duration;

use http::Method;
use serde_json::Value;

use crate::common::{ALL_PROTOCOLS, Protocol, TestApp, spawn_app_with, spawn_in};

/// The id and stream URL of the faststart MP4 sample.
pub(crate) async fn sample(app: &TestApp) -> (String, String) {
    let page: Value = app.h2().get(app.tls_url("/api/videos")).send().await.unwrap().json().await.unwrap();
    let video =
        page["videos"].as_array().unwrap().iter().find(|v| v["title"] == "sample h264").unwrap().clone();
    (video["id"].as_str().unwrap().to_owned(), video["stream_url"].as_str().unwrap().to_owned())
}

/// The configuration with the statistics open to everyone: these tests read the views API as
/// any client, who may see it is `stats::the_stats_pages_are_for_admins_and_the_videos_owner…`.
pub(crate) fn open(config: &mut kino::Config) {
    config.stats.public = true;
}

/// The views API's answer for video `id`.
pub(crate) async fn views_of(app: &TestApp, id: &str) -> Value {
    app.h2().get(app.tls_url(&format!("/api/videos/{id}/views"))).send().await.unwrap().json().await.unwrap()
}

/// Polls the views API until `done` holds: the writer commits in the background.
pub(crate) async fn eventually(app: &TestApp, id: &str, done: impl Fn(&Value) -> bool) -> Value {
    for _ in 0..100 {
        let views = views_of(app, id).await;
        if done(&views) {
            return views;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("condition never held: {}", views_of(app, id).await);
}

/// A new viewer's `kino_vid=…` cookie, as a browser gets it: from the watch page.
pub(crate) async fn new_viewer(app: &TestApp, id: &str) -> String {
    let page = app.fetch(Protocol::Http2, Method::GET, &format!("/watch/{id}"), &[]).await;
    assert_eq!(page.status, 200);
    set_cookie_value(page.header("set-cookie").expect("the watch page sets the viewer cookie"))
}

/// `kino_vid=<value>` out of a `Set-Cookie` header.
pub(crate) fn set_cookie_value(set_cookie: &str) -> String {
    let pair = set_cookie.split(';').next().unwrap().trim();
    assert!(pair.starts_with("kino_vid="), "{set_cookie}");
    pair.to_owned()
}

/// Every session's reason (`counted`, `too_fast`, `network_cap`, …).
pub(crate) fn reasons(views: &Value) -> Vec<&str> {
    views["sessions"].as_array().unwrap().iter().map(|s| s["reason"].as_str().unwrap()).collect()
}

/// Whether the writer has stored every view the live sessions counted.
pub(crate) fn settled(views: &Value) -> bool {
    let counted = reasons(views).iter().filter(|&&r| r == "counted").count();
    views["views"].as_u64() == Some(counted as u64)
}

/// What a browser does: a probe, then the whole file from the start.
pub(crate) async fn play(app: &TestApp, protocol: Protocol, url: &str, cookie: &str) {
    let probe = app.fetch(protocol, Method::GET, url, &[("range", "bytes=0-1"), ("cookie", cookie)]).await;
    assert_eq!(probe.status, 206);
    let full = app.fetch(protocol, Method::GET, url, &[("range", "bytes=0-"), ("cookie", cookie)]).await;
    assert_eq!(full.status, 206);
}

#[tokio::test]
async fn a_player_gets_one_view_per_protocol_visible_with_its_reason() {
    let app = spawn_app_with(|c| {
        open(c);
        c.views.pace = 0.0;
    })
    .await;
    let (id, url) = sample(&app).await;
    for protocol in ALL_PROTOCOLS {
        let cookie = new_viewer(&app, &id).await;
        play(&app, protocol, &url, &cookie).await;
        // Watching again at once is the same session: still one view.
        play(&app, protocol, &url, &cookie).await;
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
    let app = spawn_app_with(|c| {
        open(c);
        c.views.slack = Duration::ZERO;
    })
    .await;
    let (id, url) = sample(&app).await;
    for protocol in ALL_PROTOCOLS {
        let cookie = new_viewer(&app, &id).await;
        app.fetch(protocol, Method::GET, &url, &[("cookie", &cookie)]).await;
    }
    let views = eventually(&app, &id, |v| v["sessions"].as_array().unwrap().len() == 3).await;
    assert_eq!(views["views"], 0);
    for session in views["sessions"].as_array().unwrap() {
        assert_eq!(session["reason"], "too_fast", "{views}");
    }
}

#[tokio::test]
async fn probes_and_head_requests_reach_nothing() {
    let app = spawn_app_with(|c| {
        open(c);
        c.views.pace = 0.0;
    })
    .await;
    let (id, url) = sample(&app).await;
    let (one, two) = (new_viewer(&app, &id).await, new_viewer(&app, &id).await);
    app.fetch(Protocol::Http2, Method::GET, &url, &[("range", "bytes=0-1"), ("cookie", &one)]).await;
    app.fetch(Protocol::Http3, Method::HEAD, &url, &[("cookie", &two)]).await;
    let views = eventually(&app, &id, |v| v["sessions"].as_array().unwrap().len() == 2).await;
    assert_eq!(views["views"], 0);
    let mut reasons: Vec<&str> =
        views["sessions"].as_array().unwrap().iter().map(|s| s["reason"].as_str().unwrap()).collect();
    reasons.sort();
    assert_eq!(reasons, ["head", "probe"]);
}

#[tokio::test]
async fn a_new_viewer_gets_a_private_secure_cookie_on_streams_not_on_media() {
    let app = spawn_app_with(open).await;
    let (id, url) = sample(&app).await;
    let stream = app.fetch(Protocol::Http2, Method::GET, &url, &[("range", "bytes=0-1")]).await;
    let set = stream.header("set-cookie").expect("a viewer cookie");
    for part in ["kino_vid=", "HttpOnly", "SameSite=Lax", "Secure"] {
        assert!(set.contains(part), "{set}");
    }
    assert!(stream.header("cache-control").unwrap().starts_with("private"));
    let cookie = new_viewer(&app, &id).await;
    let with_cookie =
        app.fetch(Protocol::Http2, Method::GET, &url, &[("range", "bytes=0-1"), ("cookie", &cookie)]).await;
    assert_eq!(with_cookie.header("set-cookie"), None);
    let media =
        app.fetch(Protocol::Http2, Method::GET, "/media/sample-h264.mp4", &[("range", "bytes=0-1")]).await;
    assert_eq!(media.header("set-cookie"), None);
}

#[tokio::test]
async fn counts_and_ended_sessions_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let app = spawn_in(dir.path(), |c| {
        open(c);
        c.views.pace = 0.0;
    })
    .await;
    let (id, url) = sample(&app).await;
    play(&app, Protocol::Http1, &url, &new_viewer(&app, &id).await).await;
    eventually(&app, &id, |v| v["views"] == 1).await;
    app.shutdown().await.unwrap();

    let again = spawn_in(dir.path(), |c| {
        open(c);
        c.views.pace = 0.0;
    })
    .await;
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

#[tokio::test]
async fn the_watch_page_sets_the_viewer_cookie_that_streams_accept() {
    let app = spawn_app_with(open).await;
    let (id, url) = sample(&app).await;
    let page = app.fetch(Protocol::Http2, Method::GET, &format!("/watch/{id}"), &[]).await;
    let set = page.header("set-cookie").expect("a viewer cookie on the page");
    for part in ["kino_vid=", "HttpOnly", "SameSite=Lax", "Secure", "Path=/"] {
        assert!(set.contains(part), "{set}");
    }
    assert!(page.header("cache-control").unwrap().starts_with("private"));
    let cookie = set_cookie_value(set);

    // The player's first range request carries it: no second cookie, on any protocol.
    for protocol in ALL_PROTOCOLS {
        let stream =
            app.fetch(protocol, Method::GET, &url, &[("range", "bytes=0-1"), ("cookie", &cookie)]).await;
        assert_eq!(stream.status, 206);
        assert_eq!(stream.header("set-cookie"), None, "{protocol:?}");
    }
    let again =
        app.fetch(Protocol::Http3, Method::GET, &format!("/watch/{id}"), &[("cookie", &cookie)]).await;
    assert_eq!(again.header("set-cookie"), None, "a returning viewer keeps the cookie");

    let plain = app.plain().get(app.plain_url(&format!("/watch/{id}"))).send().await.unwrap();
    let set = plain.headers()["set-cookie"].to_str().unwrap();
    assert!(set.starts_with("kino_vid=") && !set.contains("Secure"), "plain HTTP: not Secure: {set}");
}

#[tokio::test]
async fn a_player_keeping_the_pace_still_counts_once() {
    // The same rules scaled to run in seconds: pace 0.1 without slack. The player fetches the
    // file in twentieths (about a media second each) every 200 ms, twice the pace. Real time
    // passes here because the server under test keeps real time.
    let app = spawn_app_with(|c| {
        open(c);
        c.views.slack = Duration::ZERO;
        c.views.pace = 0.1;
    })
    .await;
    let (id, url) = sample(&app).await;
    let cookie = new_viewer(&app, &id).await;
    let size: u64 = 1_026_409;
    let probe =
        app.fetch(Protocol::Http2, Method::GET, &url, &[("range", "bytes=0-1"), ("cookie", &cookie)]).await;
    assert_eq!(probe.status, 206);
    let mut pace = tokio::time::interval(Duration::from_millis(200));
    for part in 0..20 {
        pace.tick().await;
        let range = format!("bytes={}-{}", part * size / 20, (part + 1) * size / 20 - 1);
        let chunk =
            app.fetch(Protocol::Http2, Method::GET, &url, &[("range", &range), ("cookie", &cookie)]).await;
        assert_eq!(chunk.status, 206);
    }
    let views = eventually(&app, &id, |v| v["views"] == 1).await;
    assert_eq!(reasons(&views), ["counted"], "{views}");
}
