//! One router over HTTP/1.1, HTTP/2 and HTTP/3: same answers, real negotiated versions, Alt-Svc.

use http::Version;

use crate::common::spawn_app;
use crate::snapshot::Snapshot;

/// Requests with a fixed request id, so even `x-request-id` must match across protocols.
async fn fetch_everywhere(path: &str, accept: &str) -> Vec<(&'static str, Snapshot)> {
    let app = spawn_app().await;
    let id = "same-id-everywhere";
    let mut out = Vec::new();
    for (name, client, url) in [
        ("http/1.1+tls", app.h1(), app.tls_url(path)),
        ("h2", app.h2(), app.tls_url(path)),
        ("http/1.1", app.plain(), app.plain_url(path)),
        ("h2c", app.h2c(), app.plain_url(path)),
    ] {
        let response =
            client.get(url).header("x-request-id", id).header("accept", accept).send().await.unwrap();
        out.push((name, Snapshot::of(response).await));
    }
    let mut h3 = app.h3().await;
    let response = h3.get(&app.tls_url(path), &[("x-request-id", id), ("accept", accept)]).await.unwrap();
    out.push(("h3", Snapshot::of_h3(response)));
    out
}

#[tokio::test]
async fn same_request_gets_same_answer_over_every_protocol() {
    for (path, accept) in [("/healthz", "*/*"), ("/api/missing", "*/*"), ("/missing", "text/html")] {
        let answers = fetch_everywhere(path, accept).await;
        let (_, reference) = &answers[0];
        assert!(reference.header("content-length").is_some(), "{path}: {reference:?}");
        // Plain-text answers are the same but for Alt-Svc, which only secure origins may use.
        let plain_reference = reference.clone().without("alt-svc");
        for (protocol, answer) in &answers[1..] {
            let expected = if protocol.ends_with("tls") || *protocol == "h2" || *protocol == "h3" {
                reference
            } else {
                &plain_reference
            };
            assert_eq!(answer, expected, "{path} over {protocol}");
        }
    }
}

#[tokio::test]
async fn alt_svc_advertises_the_real_quic_port_on_secure_responses_only() {
    let app = spawn_app().await;
    let expected = format!("h3=\":{}\"; ma=86400", app.https.port());
    for client in [app.h1(), app.h2()] {
        let response = client.get(app.tls_url("/healthz")).send().await.unwrap();
        assert_eq!(response.headers()["alt-svc"], expected.as_str());
    }
    let plain = app.plain().get(app.plain_url("/healthz")).send().await.unwrap();
    assert!(plain.headers().get("alt-svc").is_none());
}

#[tokio::test]
async fn each_client_gets_the_protocol_it_negotiated() {
    let app = spawn_app().await;
    let cases = [
        (app.h1(), app.tls_url("/"), Version::HTTP_11, "http/1.1"),
        (app.h2(), app.tls_url("/"), Version::HTTP_2, "h2"),
        (app.plain(), app.plain_url("/"), Version::HTTP_11, "http/1.1"),
        (app.h2c(), app.plain_url("/"), Version::HTTP_2, "h2"),
    ];
    for (client, url, version, label) in cases {
        let response = client.get(&url).send().await.unwrap();
        assert_eq!(response.version(), version, "{url}");
        let page = response.text().await.unwrap();
        assert!(page.contains(&format!("<strong>{label}</strong>")), "{label}: {page}");
    }
    // The page is rendered from the request the server saw, so this proves HTTP/3 end to end.
    let page = app.h3().await.get(&app.tls_url("/"), &[]).await.unwrap();
    assert_eq!(page.status(), 200);
    assert!(String::from_utf8_lossy(page.body()).contains("<strong>h3</strong>"));
}

#[tokio::test]
async fn request_id_is_echoed_or_generated() {
    let app = spawn_app().await;
    let client = app.h2();
    let echoed = client.get(app.tls_url("/healthz")).header("x-request-id", "abc-123").send().await.unwrap();
    assert_eq!(echoed.headers()["x-request-id"], "abc-123");
    let id = |response: &reqwest::Response| response.headers()["x-request-id"].to_str().unwrap().to_owned();
    let first = id(&client.get(app.tls_url("/healthz")).send().await.unwrap());
    let second = id(&client.get(app.tls_url("/healthz")).send().await.unwrap());
    // `<process prefix>-<request number>`: one prefix, a new number each time.
    let (prefix, _) = first.split_once('-').unwrap();
    assert_eq!(prefix.len(), 16, "{first}");
    assert!(second.starts_with(prefix) && second != first, "{first} then {second}");
}

#[tokio::test]
async fn metrics_count_requests_by_protocol() {
    let app = spawn_app().await;
    app.h2().get(app.tls_url("/healthz")).send().await.unwrap().bytes().await.unwrap();
    let mut h3 = app.h3().await;
    h3.get(&app.tls_url("/nope"), &[]).await.unwrap();
    let text = app.plain().get(app.plain_url("/metrics")).send().await.unwrap().text().await.unwrap();
    assert!(text.contains("kino_requests_total{protocol=\"h2\",status=\"2xx\"} 1"), "{text}");
    assert!(text.contains("kino_requests_total{protocol=\"h3\",status=\"4xx\"} 1"), "{text}");
}

/// The default listeners are `localhost`: both loopback addresses answer, over TCP and UDP,
/// because clients disagree on which one `localhost` is (Chromium's forced QUIC uses ::1).
#[tokio::test]
async fn localhost_listens_on_both_loopback_addresses_over_every_protocol() {
    let app = crate::common::spawn_app_with(|config| {
        config.http_addr = kino::config::ListenAddr::localhost(0);
        config.https_addr = kino::config::ListenAddr::localhost(0);
    })
    .await;
    let loopbacks =
        |addrs: &[std::net::SocketAddr]| addrs.iter().map(|a| a.ip().to_string()).collect::<Vec<_>>();
    assert_eq!(loopbacks(&app.https_all), ["127.0.0.1", "::1"]);
    assert_eq!(loopbacks(&app.http_all), ["127.0.0.1", "::1"]);
    assert!(app.https_all.iter().all(|a| a.port() == app.https.port()), "{:?}", app.https_all);

    for addr in &app.http_all {
        let url = format!("http://{addr}/healthz");
        let response = app.plain().get(&url).send().await.unwrap();
        assert_eq!(response.status(), 200, "{url}");
    }
    let ca = reqwest::Certificate::from_pem(&app.ca_pem).unwrap();
    for addr in &app.https_all {
        for http2 in [false, true] {
            let builder = reqwest::Client::builder().tls_certs_only([ca.clone()]).resolve("localhost", *addr);
            let client = if http2 { builder.http2_prior_knowledge() } else { builder.http1_only() };
            let response = client.build().unwrap().get(app.tls_url("/healthz")).send().await.unwrap();
            assert_eq!(response.status(), 200, "{addr} http2={http2}");
        }
        let mut h3 = kino_test_support::H3Client::connect(*addr, &app.ca_pem).await.unwrap();
        let response = h3.get(&app.tls_url("/healthz"), &[]).await.unwrap();
        assert_eq!(response.status(), 200, "HTTP/3 on {addr}");
    }
}
