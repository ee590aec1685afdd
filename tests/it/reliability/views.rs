//! The view-gaming experiments of issue 12 against the binary: scripted clients that fetch the
//! last bytes first, forge or collect viewer cookies, or rotate their User-Agent, and the views
//! they gain (none, or `views.max_per_network`).

use http::Method;

use super::{Kino, Options};
use crate::common::ALL_PROTOCOLS;
use crate::views::{eventually, new_viewer, play, reasons, sample, set_cookie_value, settled};

/// The binary with the faststart MP4 sample as its library and `env` as its view rules; the
/// statistics are open to everyone, so the experiments read the views API without an account.
fn start(env: &[(&'static str, &str)]) -> Kino {
    let video = std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/media/sample-h264.mp4")).unwrap();
    let open = [("KINO_STATS_PUBLIC", "true")];
    Kino::start(Options {
        env: env.iter().chain(&open).map(|&(key, value)| (key, value.to_owned())).collect(),
        media: vec![("sample-h264.mp4", video)],
        ..Options::default()
    })
}

#[tokio::test]
async fn twenty_clients_fetching_the_last_4_kib_first_gain_no_views() {
    // The experiment. No slack and pace 2: the 20-second sample stands for a long film
    // (with the default 60 s slack any 20 s clip may arrive at once), and the margin keeps a
    // slow machine's transfer from ever looking like watching. No network cap: pace alone.
    let kino =
        start(&[("KINO_VIEWS_SLACK", "0s"), ("KINO_VIEWS_PACE", "2.0"), ("KINO_VIEWS_MAX_PER_NETWORK", "0")]);
    let app = kino.clients();
    let (id, url) = sample(&app).await;
    let mut cookies = Vec::new();
    for _ in 0..20 {
        cookies.push(new_viewer(&app, &id).await);
    }
    let scripts = cookies.iter().enumerate().map(|(n, cookie)| {
        let (app, url) = (&app, &url);
        async move {
            let protocol = ALL_PROTOCOLS[n % 3];
            let tail =
                app.fetch(protocol, Method::GET, url, &[("range", "bytes=-4096"), ("cookie", cookie)]).await;
            assert_eq!((tail.status.as_u16(), tail.body.len()), (206, 4096));
            let whole = app.fetch(protocol, Method::GET, url, &[("cookie", cookie)]).await;
            assert_eq!((whole.status.as_u16(), whole.body.len()), (200, 1_026_409));
        }
    });
    futures_util::future::join_all(scripts).await;
    let views = eventually(&app, &id, |v| v["sessions"].as_array().unwrap().len() == 20).await;
    assert!(reasons(&views).iter().all(|&r| r == "too_fast"), "{views}");
    assert!(views["sessions"].as_array().unwrap().iter().all(|s| s["checkpoints_reached"] == 10));
    assert_eq!(views["views"], 0, "{views}");
}

#[tokio::test]
async fn twenty_forged_cookies_from_one_client_are_one_viewer() {
    // No network cap: the signature alone must tell the forgeries apart from viewers.
    let kino = start(&[("KINO_VIEWS_PACE", "0.0"), ("KINO_VIEWS_MAX_PER_NETWORK", "0")]);
    let app = kino.clients();
    let (id, url) = sample(&app).await;
    let genuine = new_viewer(&app, &id).await;
    let (genuine_id, _tag) = genuine.split_once('.').unwrap();
    let mut replaced = Vec::new();
    for n in 0..20 {
        // Well-formed values: the old unsigned shape, made-up tags, and a real id with a bad tag.
        let forged = match n % 3 {
            0 => format!("kino_vid=viewer{n:016}"),
            1 => format!("kino_vid=forged{n:016}.{}", "A".repeat(43)),
            _ => format!("{genuine_id}.{n:0>43}"),
        };
        let protocol = ALL_PROTOCOLS[n % 3];
        let probe =
            app.fetch(protocol, Method::GET, &url, &[("range", "bytes=0-1"), ("cookie", &forged)]).await;
        replaced.push(probe.header("set-cookie").map(set_cookie_value).is_some_and(|fresh| fresh != forged));
        play(&app, protocol, &url, &forged).await;
    }
    let views = eventually(&app, &id, settled).await;
    assert_eq!(views["views"], 1, "{views}");
    assert_eq!(views["unique_viewers"], 1, "{views}");
    assert_eq!(reasons(&views), ["counted"], "one IP + User-Agent is one session: {views}");
    assert!(replaced.iter().all(|&r| r), "each forged cookie gets a signed one instead");
}

#[tokio::test]
async fn twenty_cookie_less_clients_rotating_user_agent_count_max_per_network() {
    let kino = start(&[("KINO_VIEWS_PACE", "0.0")]);
    let app = kino.clients();
    let max = kino::Config::for_tests(std::path::Path::new(".")).views.max_per_network;
    assert_eq!(max, 5, "the documented default");
    let (id, url) = sample(&app).await;
    for n in 0..20 {
        let agent = format!("scripted-client/{n}");
        let protocol = ALL_PROTOCOLS[n % 3];
        for range in ["bytes=0-1", "bytes=0-"] {
            let response =
                app.fetch(protocol, Method::GET, &url, &[("range", range), ("user-agent", &agent)]).await;
            assert_eq!(response.status, 206);
        }
    }
    let views = eventually(&app, &id, settled).await;
    assert_eq!(views["views"], 5, "{views}");
    let reasons = reasons(&views);
    assert_eq!(reasons.len(), 20, "twenty viewers: {views}");
    assert_eq!(reasons.iter().filter(|&&r| r == "counted").count(), 5, "{views}");
    assert_eq!(reasons.iter().filter(|&&r| r == "network_cap").count(), 15, "{views}");
    assert_eq!(views["unique_viewers"], 5);
}

#[tokio::test]
async fn twenty_genuine_cookies_collected_by_one_client_count_max_per_network() {
    // The next script after forgeries fail: fetch the watch page twenty times for twenty real
    // signed cookies. Each is a viewer of its own; the network cap still holds them to five.
    let kino = start(&[("KINO_VIEWS_PACE", "0.0")]);
    let app = kino.clients();
    let (id, url) = sample(&app).await;
    for n in 0..20 {
        let cookie = new_viewer(&app, &id).await;
        play(&app, ALL_PROTOCOLS[n % 3], &url, &cookie).await;
    }
    let views = eventually(&app, &id, settled).await;
    assert_eq!(views["views"], 5, "{views}");
    let reasons = reasons(&views);
    assert_eq!(reasons.iter().filter(|&&r| r == "network_cap").count(), 15, "{views}");
}
