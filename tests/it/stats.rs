//! Metrics and request statistics through the real server: `/metrics` as Prometheus text with
//! histograms and counters moving on all three protocols, statistics rows in SQLite after a
//! flush and across a restart, and the stats pages with their charts.

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use http::Method;
use kino::config::Budget;
use serde_json::Value;
use sqlx::sqlite::{SqliteConnectOptions, SqlitePoolOptions};

use crate::common::{ALL_PROTOCOLS, Protocol, TestApp, spawn_app_with, spawn_in};

/// The id and stream URL of the faststart MP4 sample.
pub(crate) async fn sample(app: &TestApp) -> (String, String) {
    let page: Value = app.h2().get(app.tls_url("/api/videos")).send().await.unwrap().json().await.unwrap();
    let video =
        page["videos"].as_array().unwrap().iter().find(|v| v["title"] == "sample h264").unwrap().clone();
    (video["id"].as_str().unwrap().to_owned(), video["stream_url"].as_str().unwrap().to_owned())
}

/// Statistics written every second, views counted without the pace rule.
pub(crate) fn fast_stats(config: &mut kino::Config) {
    config.stats.flush_interval = Duration::from_secs(1);
    config.views.pace = 0.0;
}

/// A page, a 404, a probe and a whole-file range over `protocol`, as a player's visit looks.
pub(crate) async fn traffic(app: &TestApp, protocol: Protocol, url: &str, cookie: &str) {
    assert_eq!(app.fetch(protocol, Method::GET, "/", &[]).await.status, 200);
    assert_eq!(app.fetch(protocol, Method::GET, "/no/such/page", &[]).await.status, 404);
    let probe = app.fetch(protocol, Method::GET, url, &[("range", "bytes=0-1"), ("cookie", cookie)]).await;
    assert_eq!(probe.status, 206);
    let full = app.fetch(protocol, Method::GET, url, &[("range", "bytes=0-"), ("cookie", cookie)]).await;
    assert_eq!(full.status, 206);
}

/// A new viewer's cookie, from the watch page.
pub(crate) async fn viewer(app: &TestApp, id: &str) -> String {
    let page = app.fetch(Protocol::Http2, Method::GET, &format!("/watch/{id}"), &[]).await;
    page.header("set-cookie").unwrap().split(';').next().unwrap().to_owned()
}

/// Every sample of a Prometheus text exposition, checked line by line: `# HELP` and `# TYPE`
/// comments, then `name{labels} value` samples whose family was typed first.
fn parse_prometheus(text: &str) -> HashMap<String, f64> {
    let mut types: HashMap<String, String> = HashMap::new();
    let mut samples = HashMap::new();
    for line in text.lines().filter(|l| !l.is_empty()) {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').expect("TYPE name kind");
            assert!(["counter", "gauge", "histogram"].contains(&kind), "{line}");
            types.insert(name.to_owned(), kind.to_owned());
            continue;
        }
        if line.starts_with("# HELP ") {
            continue;
        }
        assert!(!line.starts_with('#'), "unexpected comment: {line}");
        let (series, value) = line.rsplit_once(' ').expect("a sample is `series value`");
        let value: f64 = value.parse().unwrap_or_else(|_| panic!("not a number: {line}"));
        let name = series.split('{').next().unwrap();
        let family = ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|suffix| {
                name.strip_suffix(suffix).filter(|f| types.get(*f).is_some_and(|t| t == "histogram"))
            })
            .unwrap_or(name);
        assert!(types.contains_key(family), "{name} has no # TYPE line before it");
        let labels = &series[name.len()..];
        if !labels.is_empty() {
            assert!(labels.starts_with('{') && labels.ends_with('}'), "{line}");
            for pair in labels[1..labels.len() - 1].split(',') {
                let (key, value) = pair.split_once('=').expect("label=value");
                assert!(!key.is_empty() && value.starts_with('"') && value.ends_with('"'), "{line}");
            }
        }
        assert!(samples.insert(series.to_owned(), value).is_none(), "duplicate series {series}");
    }
    samples
}

async fn metrics(app: &TestApp) -> HashMap<String, f64> {
    let response = app.plain().get(app.plain_url("/metrics")).send().await.unwrap();
    assert_eq!(response.headers()["content-type"], "text/plain; version=0.0.4; charset=utf-8");
    parse_prometheus(&response.text().await.unwrap())
}

#[tokio::test]
async fn metrics_parse_as_prometheus_text_and_move_on_every_protocol() {
    let app = spawn_app_with(|config| {
        fast_stats(config);
        config.rate_limit.enabled = true;
        // Pages: 30 at once, then one a minute, so the loop below runs into 429s.
        config.rate_limit.page = Budget { rate: 1, per: Duration::from_secs(60), burst: 30 };
    })
    .await;
    let (id, url) = sample(&app).await;
    let before = metrics(&app).await;
    assert_eq!(before["kino_streams_active"], 0.0);
    for protocol in ALL_PROTOCOLS {
        let cookie = viewer(&app, &id).await;
        traffic(&app, protocol, &url, &cookie).await;
    }
    let mut limited = 0;
    for _ in 0..40 {
        limited += usize::from(app.fetch(Protocol::Http2, Method::GET, "/upload", &[]).await.status == 429);
    }
    assert!(limited > 0, "the page budget ran out");

    // The access log counts a response when its body has ended on the server's side, which
    // can be a moment after the client has read the last byte.
    let mut after = metrics(&app).await;
    for _ in 0..100 {
        let media = |p: &str| {
            after[&format!("kino_request_duration_seconds_count{{protocol=\"{p}\",route=\"media\"}}")]
        };
        if after["kino_streams_active"] == 0.0 && ["http/1.1", "h2", "h3"].iter().all(|p| media(p) >= 2.0) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        after = metrics(&app).await;
    }
    for protocol in ["http/1.1", "h2", "h3"] {
        let count = format!("kino_request_duration_seconds_count{{protocol=\"{protocol}\",route=\"media\"}}");
        assert!(after[&count] >= 2.0, "{count}: {after:?}");
        let inf = format!(
            "kino_request_duration_seconds_bucket{{protocol=\"{protocol}\",route=\"page\",le=\"+Inf\"}}"
        );
        assert!(after[&inf] >= 2.0, "{inf}");
        let bytes = format!("kino_response_body_bytes_total{{protocol=\"{protocol}\"}}");
        assert!(after[&bytes] > 1_000_000.0, "the whole sample went out over {protocol}");
        let missing = format!("kino_requests_total{{protocol=\"{protocol}\",status=\"4xx\"}}");
        assert!(after[&missing] >= 1.0, "{missing}");
    }
    assert!(after["kino_rate_limited_total{budget=\"page\"}"] >= limited as f64);
    assert_eq!(after["kino_rate_limited_total{budget=\"stream\"}"], 0.0);
    assert_eq!(after["kino_views_counted_total"], 3.0, "one view per protocol's player");
    assert_eq!(after["kino_streams_active"], 0.0, "every stream has ended");
    assert!(after["kino_connections_total"] >= 3.0);
    assert!(after.contains_key("kino_image_memory_budget_bytes"), "the image budget is collected too");
}

/// The statistics rows of the database in `data_dir`, summed by route and protocol.
async fn stored(data_dir: &Path) -> HashMap<(String, String), (i64, i64, i64)> {
    let options = SqliteConnectOptions::new().filename(data_dir.join("kino.db")).read_only(true);
    let pool = SqlitePoolOptions::new().max_connections(1).connect_with(options).await.unwrap();
    let rows: Vec<(String, String, i64, i64, i64)> = sqlx::query_as(
        "SELECT route, protocol, SUM(requests), SUM(bytes), SUM(views) FROM request_stats_minute GROUP BY route, protocol",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    pool.close().await;
    rows.into_iter().map(|(route, protocol, r, b, v)| ((route, protocol), (r, b, v))).collect()
}

/// Polls until `done` holds for the stored statistics (the flusher writes every second).
async fn eventually_stored(
    data_dir: &Path,
    done: impl Fn(&HashMap<(String, String), (i64, i64, i64)>) -> bool,
) -> HashMap<(String, String), (i64, i64, i64)> {
    for _ in 0..100 {
        let rows = stored(data_dir).await;
        if done(&rows) {
            return rows;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("never stored: {:?}", stored(data_dir).await);
}

fn key(route: &str, protocol: &str) -> (String, String) {
    (route.to_owned(), protocol.to_owned())
}

#[tokio::test]
async fn statistics_are_written_by_route_template_and_protocol_and_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let app = spawn_in(dir.path(), fast_stats).await;
    let (id, url) = sample(&app).await;
    for protocol in ALL_PROTOCOLS {
        let cookie = viewer(&app, &id).await;
        traffic(&app, protocol, &url, &cookie).await;
    }
    let data = app.data_dir();
    let rows = eventually_stored(&data, |rows| {
        ["http/1.1", "h2", "h3"]
            .iter()
            .all(|p| rows.get(&key("/stream/{id}", p)).is_some_and(|r| r.0 == 2 && r.2 == 1))
    })
    .await;
    for protocol in ["http/1.1", "h2", "h3"] {
        let (requests, bytes, _) = rows[&key("/stream/{id}", protocol)];
        assert_eq!(requests, 2, "the probe and the whole file, keyed by the route template");
        assert!(bytes > 1_000_000, "{rows:?}");
        assert_eq!(rows[&key("/", protocol)].0, 1);
        assert_eq!(rows[&key("(unmatched)", protocol)].0, 1, "404s for random paths share one key");
    }
    app.shutdown().await.unwrap();

    // The final flush wrote everything; a new server on the same data dir keeps it and adds.
    let app = spawn_in(dir.path(), fast_stats).await;
    assert_eq!(app.fetch(Protocol::Http3, Method::GET, "/", &[]).await.status, 200);
    eventually_stored(&data, |rows| rows.get(&key("/", "h3")).is_some_and(|r| r.0 == 2)).await;
    let rows = stored(&data).await;
    assert_eq!(rows[&key("/stream/{id}", "h2")].0, 2, "kept across the restart");
    let hours: i64 = {
        let options = SqliteConnectOptions::new().filename(data.join("kino.db")).read_only(true);
        let pool = SqlitePoolOptions::new().max_connections(1).connect_with(options).await.unwrap();
        sqlx::query_scalar("SELECT SUM(requests) FROM request_stats_hour WHERE route = '/'")
            .fetch_one(&pool)
            .await
            .unwrap()
    };
    assert!(hours >= 3, "rolled up into the hour: {hours}");
}

/// Waits until the server-wide page shows `needle`.
pub(crate) async fn page_showing(app: &TestApp, path: &str, needle: &str) -> String {
    for _ in 0..100 {
        let page = app.fetch(Protocol::Http2, Method::GET, path, &[]).await;
        assert_eq!(page.status, 200, "{path}");
        let html = String::from_utf8(page.body.to_vec()).unwrap();
        if html.contains(needle) {
            return html;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{path} never showed {needle}");
}

#[tokio::test]
async fn the_stats_pages_render_charts_and_tables_with_the_traffic() {
    let app = spawn_app_with(|config| {
        fast_stats(config);
        config.stats.public = true;
    })
    .await;
    let (id, url) = sample(&app).await;
    for protocol in ALL_PROTOCOLS {
        let cookie = viewer(&app, &id).await;
        traffic(&app, protocol, &url, &cookie).await;
    }
    let html = page_showing(&app, "/stats?window=hour", "<code>/stream/{id}</code>").await;
    assert_eq!(html.matches("<svg").count(), 2, "requests and bandwidth charts");
    assert_eq!(html.matches("<polyline").count(), 6, "one line per protocol in each");
    assert!(html.contains("role=\"img\"") && html.contains("<title id=\"requests-title\">"));
    assert!(html.contains("<summary>The data as a table</summary>"));
    assert!(html.contains("<th scope=\"row\">4xx</th>"));
    assert!(!html.contains("<script"), "no script: the CSP allows none");

    let video = page_showing(&app, &format!("/videos/{id}/stats"), "<dd>3</dd>").await;
    assert_eq!(video.matches("<svg").count(), 2, "views over time and retention");
    assert_eq!(video.matches("<circle").count(), 10, "one dot per checkpoint");
    assert!(video.contains("sample h264: statistics"));

    let bad = app.fetch(Protocol::Http1, Method::GET, "/stats?window=year", &[]).await;
    assert_eq!(bad.status, 400);
    assert!(String::from_utf8_lossy(&bad.body).contains("window must be hour, day or month"));
    assert_eq!(app.fetch(Protocol::Http1, Method::GET, "/videos/nosuchid/stats", &[]).await.status, 404);
}

/// A browser's `GET path` over `protocol` without following a redirect: the status and `Location`.
async fn unfollowed(app: &TestApp, protocol: Protocol, path: &str) -> (u16, Option<String>) {
    let builder = match protocol {
        // The HTTP/3 client follows nothing by itself.
        Protocol::Http3 => {
            let answer = app.fetch(protocol, Method::GET, path, &[("accept", "text/html")]).await;
            return (answer.status.as_u16(), answer.header("location").map(str::to_owned));
        }
        Protocol::Http1 => reqwest::Client::builder().http1_only(),
        Protocol::Http2 => reqwest::Client::builder().http2_prior_knowledge(),
    };
    let client = builder
        .tls_certs_only([reqwest::Certificate::from_pem(&app.ca_pem).unwrap()])
        .resolve("localhost", app.https)
        .redirect(reqwest::redirect::Policy::none())
        .timeout(crate::common::TEST_TIMEOUT)
        .build()
        .unwrap();
    let answer = client.get(app.tls_url(path)).header("accept", "text/html").send().await.unwrap();
    let location = answer.headers().get("location").map(|v| v.to_str().unwrap().to_owned());
    (answer.status().as_u16(), location)
}

/// The status and error message of a JSON refusal.
fn refusal(answer: &crate::snapshot::Snapshot) -> (u16, String) {
    let json: Value = serde_json::from_slice(&answer.body).unwrap_or_else(|_| panic!("not JSON: {answer:?}"));
    (answer.status.as_u16(), json["error"]["message"].as_str().unwrap_or_default().to_owned())
}

#[tokio::test]
async fn the_stats_pages_are_for_admins_and_the_videos_owner_unless_public() {
    use crate::image_ownership::{bearer, sign_up};
    let app = spawn_app_with(|_| {}).await;
    let (id, _) = sample(&app).await;
    let video_page = format!("/videos/{id}/stats");
    sign_up(&app, "admin@example.org", "Admin").await;
    let viewer_id = sign_up(&app, "viewer@example.org", "Viewer").await["id"].as_str().unwrap().to_owned();
    let (admin, viewer) = (bearer(&app, "admin@example.org").await, bearer(&app, "viewer@example.org").await);
    let html = ("accept", "text/html");
    for protocol in ALL_PROTOCOLS {
        for path in ["/stats", video_page.as_str()] {
            assert_eq!(
                unfollowed(&app, protocol, path).await,
                (303, Some("/signin".to_owned())),
                "{protocol:?} {path}: a browser is sent to sign in"
            );
            let api = app.fetch(protocol, Method::GET, path, &[("accept", "application/json")]).await;
            assert_eq!(refusal(&api).0, 401, "{protocol:?} {path}: {api:?}");
            let admin = app.fetch(protocol, Method::GET, path, &[html, ("authorization", &admin)]).await;
            assert_eq!(admin.status, 200, "{protocol:?} {path}");
        }
        let theirs = [("accept", "application/json"), ("authorization", viewer.as_str())];
        let server = app.fetch(protocol, Method::GET, "/stats", &theirs).await;
        assert_eq!(refusal(&server), (403, "the server's statistics are for admins".into()), "{protocol:?}");
        let not_theirs = app.fetch(protocol, Method::GET, &video_page, &theirs).await;
        assert_eq!(
            refusal(&not_theirs),
            (403, "a video's statistics are for its owner and the admins".into()),
            "{protocol:?}: media found in the roots is the admins'"
        );
        let unknown = app.fetch(protocol, Method::GET, "/videos/nosuchid/stats", &theirs).await;
        assert_eq!(unknown.status, 404, "{protocol:?}");

        // The views API tells what the video's page does, to the same people.
        let api = format!("/api/videos/{id}/views");
        let anonymous = app.fetch(protocol, Method::GET, &api, &[]).await;
        assert_eq!(refusal(&anonymous).0, 401, "{protocol:?}: JSON under /api whatever Accept says");
        assert_eq!(app.fetch(protocol, Method::GET, &api, &theirs).await.status, 403, "{protocol:?}");
        let by_admin = app.fetch(protocol, Method::GET, &api, &[("authorization", &admin)]).await;
        assert_eq!(by_admin.status, 200, "{protocol:?}");
    }

    // Once the viewer owns the video, its page is theirs; the server's still is not.
    let options = SqliteConnectOptions::new().filename(app.data_dir().join("kino.db"));
    let pool = SqlitePoolOptions::new().max_connections(1).connect_with(options).await.unwrap();
    sqlx::query("UPDATE videos SET owner_id = ? WHERE file_id = ?")
        .bind(&viewer_id)
        .bind(&id)
        .execute(&pool)
        .await
        .unwrap();
    pool.close().await;
    let own = app.fetch(Protocol::Http2, Method::GET, &video_page, &[html, ("authorization", &viewer)]).await;
    assert_eq!(own.status, 200);
    assert!(String::from_utf8_lossy(&own.body).contains("sample h264: statistics"));
    let own_api = format!("/api/videos/{id}/views");
    assert_eq!(
        app.fetch(Protocol::Http2, Method::GET, &own_api, &[("authorization", &viewer)]).await.status,
        200
    );
    let server = app.fetch(Protocol::Http2, Method::GET, "/stats", &[("authorization", &viewer)]).await;
    assert_eq!(server.status, 403);

    let open = spawn_app_with(|config| config.stats.public = true).await;
    for path in ["/stats", video_page.as_str()] {
        assert_eq!(open.fetch(Protocol::Http2, Method::GET, path, &[]).await.status, 200, "public: {path}");
    }
}

/// Writes a day of plausible history into the statistics and views tables (what a server that
/// has been up a while holds), so the charts and the README screenshots have a shape.
pub(crate) async fn seed_history(data_dir: &Path, video_id: &str) {
    let options =
        SqliteConnectOptions::new().filename(data_dir.join("kino.db")).busy_timeout(Duration::from_secs(5));
    let pool = SqlitePoolOptions::new().max_connections(1).connect_with(options).await.unwrap();
    let now =
        i64::try_from(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs())
            .unwrap();
    let wave = |i: i64, phase: f64| 1.0 + ((i as f64) / 6.0 + phase).sin() * 0.6;
    for (table, column, step, count) in
        [("request_stats_minute", "minute", 60, 60), ("request_stats_hour", "hour", 3600, 24)]
    {
        let last = now - now.rem_euclid(step);
        for i in 1..=count {
            for (p, protocol) in ["http/1.1", "h2", "h3"].iter().enumerate() {
                let requests = (40.0 * wave(i, p as f64) * (p + 1) as f64) as i64;
                let sql = format!(
                    "INSERT INTO {table} ({column}, route, status, protocol, requests, bytes, views,
                     lat0, lat1, lat2, lat3, lat4, lat5, lat6, lat7, lat8, lat9, lat10, lat11)
                     VALUES (?, '/stream/{{id}}', '2xx', ?, ?, ?, ?, 0, ?, ?, ?, ?, 0, 0, 0, 0, 0, 0, 0)"
                );
                sqlx::query(sqlx::AssertSqlSafe(sql))
                    .bind(last - i * step)
                    .bind(protocol)
                    .bind(requests)
                    .bind(requests * 250_000)
                    .bind(requests / 20)
                    .bind(requests / 2)
                    .bind(requests / 4)
                    .bind(requests / 8)
                    .bind(requests - requests / 2 - requests / 4 - requests / 8)
                    .execute(&pool)
                    .await
                    .unwrap();
            }
        }
    }
    let mut seeded = 0;
    for hour in 1..24 {
        for n in 0..(3.0 * wave(hour, 0.0)) as i64 {
            let viewer = format!("{:032x}", hour * 100 + n);
            sqlx::query("INSERT INTO views (video_id, viewer, counted_at) VALUES (?, ?, ?)")
                .bind(video_id)
                .bind(&viewer)
                .bind(now - hour * 3600)
                .execute(&pool)
                .await
                .unwrap();
            seeded += 1;
        }
    }
    for session in 0..40i64 {
        // Most sessions reach the first checkpoints, fewer the later ones.
        let reached = (1i64 << (10 - session % 9)) - 1;
        sqlx::query(
            "INSERT INTO view_sessions (video_id, viewer, started_at, ended_at, reason, reached, covered_ms)
             VALUES (?, ?, ?, ?, 'counted', ?, 1000)",
        )
        .bind(video_id)
        .bind(format!("{:032x}", 9000 + session))
        .bind(now - 7200)
        .bind(now - 7000)
        .bind(reached)
        .execute(&pool)
        .await
        .unwrap();
    }
    sqlx::query("UPDATE videos SET view_count = view_count + ? WHERE file_id = ?")
        .bind(seeded)
        .bind(video_id)
        .execute(&pool)
        .await
        .unwrap();
    pool.close().await;
}
