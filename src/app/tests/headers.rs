//! Security headers and CORS, per route class, through the whole middleware stack.

use std::net::SocketAddr;

use axum::http::header::{
    ACCESS_CONTROL_ALLOW_CREDENTIALS as ALLOW_CREDENTIALS, ACCESS_CONTROL_ALLOW_ORIGIN as ALLOW_ORIGIN,
};

use super::*;
use crate::peer::{ConnectionInfo, Transport};

const PAGE_CSP: &str = "default-src 'none'; style-src 'self'; img-src 'self'; media-src 'self'; \
    form-action 'self'; base-uri 'none'; frame-ancestors 'none'";
const APP: &str = "https://app.example";

/// The test router after `adjust` has changed its configuration.
async fn router_with(adjust: impl FnOnce(&mut Config)) -> TestRouter {
    let dir = tempfile::tempdir().unwrap();
    let mut config = Config::for_tests(dir.path());
    config.media_dirs = vec![SAMPLES.into()];
    adjust(&mut config);
    let config = config.validated().expect("a valid configuration");
    let max_upload_bytes = config.limits.max_upload_bytes;
    let app = App::build(Arc::new(config), 8443, CancellationToken::new()).await.unwrap();
    TestRouter { router: app.router, max_upload_bytes, _dir: dir }
}

/// The router with `https://app.example` allowed to call the API with cookies.
async fn router_for_app() -> TestRouter {
    router_with(|config| {
        config.cors.origins = vec![APP.into()];
        config.cors.credentials = true;
    })
    .await
}

/// `GET path` as it arrives over `transport`.
async fn get_over(app: &TestRouter, path: &str, transport: Transport) -> Answer {
    let mut request = Request::get(path).body(Body::empty()).unwrap();
    let remote = SocketAddr::from(([127, 0, 0, 1], 50_000));
    request.extensions_mut().insert(ConnectionInfo { remote, transport });
    let response = app.router.clone().oneshot(request).await.unwrap();
    let (parts, body) = response.into_parts();
    let body = body.collect().await.unwrap().to_bytes();
    Answer { status: parts.status, headers: parts.headers, body }
}

async fn first_video_id(app: &TestRouter) -> String {
    app.get("/api/videos", &[]).await.json()["videos"][0]["id"].as_str().unwrap().to_owned()
}

/// A CORS preflight for `method` with the tus headers tus-js-client sends.
async fn preflight(app: &TestRouter, path: &str, origin: &str, method: &str) -> Answer {
    let headers = [
        ("origin", origin),
        ("access-control-request-method", method),
        (
            "access-control-request-headers",
            "tus-resumable,upload-length,upload-metadata,upload-offset,content-type",
        ),
    ];
    app.send(Method::OPTIONS, path, &headers).await
}

fn list(answer: &Answer, name: &str) -> Vec<String> {
    answer.header(name).split(',').map(|s| s.trim().to_ascii_lowercase()).collect()
}

#[tokio::test]
async fn pages_get_a_strict_policy_and_every_class_gets_nosniff() {
    let app = TestRouter::new().await;
    let id = first_video_id(&app).await;
    for path in ["/".to_owned(), format!("/watch/{id}"), "/upload".into(), "/no/such/page".into()] {
        let page = app.get(&path, &[("accept", "text/html")]).await;
        assert!(page.header("content-type").starts_with("text/html"), "{path}");
        assert_eq!(page.header("content-security-policy"), PAGE_CSP, "{path}");
        assert_eq!(page.header("x-frame-options"), "DENY", "{path}");
        assert_eq!(page.header("referrer-policy"), "same-origin", "{path}");
        assert_eq!(
            page.header("permissions-policy"),
            "camera=(), microphone=(), geolocation=(), payment=(), usb=(), browsing-topics=()",
            "{path}"
        );
        assert_eq!(page.header("cross-origin-opener-policy"), "same-origin", "{path}");
        assert_eq!(page.header("x-content-type-options"), "nosniff", "{path}");
        assert!(!page.headers.contains_key("strict-transport-security"), "{path}: HSTS off by default");
    }

    let stylesheet = crate::assets::url("kino.css");
    let others = [
        (Method::GET, format!("/stream/{id}"), StatusCode::OK),
        (Method::GET, "/media/sample-photo.jpg".into(), StatusCode::OK),
        (Method::GET, "/api/videos".into(), StatusCode::OK),
        (Method::GET, "/api/videos/nope1234".into(), StatusCode::NOT_FOUND),
        (Method::OPTIONS, "/api/uploads".into(), StatusCode::NO_CONTENT),
        (Method::HEAD, "/api/uploads/nope1234".into(), StatusCode::UNAUTHORIZED),
        (Method::GET, stylesheet, StatusCode::OK),
        (Method::GET, "/healthz".into(), StatusCode::OK),
    ];
    for (method, path, status) in others {
        let answer = app.send(method, &path, &[]).await;
        assert_eq!(answer.status, status, "{path}");
        assert_eq!(answer.header("x-content-type-options"), "nosniff", "{path}");
        for page_only in ["content-security-policy", "x-frame-options", "cross-origin-opener-policy"] {
            assert!(!answer.headers.contains_key(page_only), "{path} has {page_only}");
        }
    }
}

#[tokio::test]
async fn hsts_goes_out_over_tls_and_quic_only_with_a_configured_certificate() {
    let real = router_with(|config| {
        config.tls.cert_path = Some("/etc/kino/fullchain.pem".into());
        config.tls.key_path = Some("/etc/kino/privkey.pem".into());
        config.tls.hsts = true;
    })
    .await;
    for path in ["/", "/api/videos", "/media/sample-photo.jpg"] {
        for transport in [Transport::Tls, Transport::Quic] {
            let answer = get_over(&real, path, transport).await;
            assert_eq!(
                answer.header("strict-transport-security"),
                "max-age=63072000",
                "{path} {transport:?}"
            );
        }
        let plain = get_over(&real, path, Transport::Plain).await;
        assert!(!plain.headers.contains_key("strict-transport-security"), "{path} over plain HTTP");
    }
    // The generated certificate (the default): no HSTS over TLS, and asking for it is refused.
    let generated = TestRouter::new().await;
    assert!(
        !get_over(&generated, "/", Transport::Tls).await.headers.contains_key("strict-transport-security")
    );
    let mut config = Config::for_tests(std::path::Path::new("/tmp"));
    config.tls.hsts = true;
    let error = config.validated().unwrap_err().to_string();
    assert!(error.contains("tls.hsts needs tls.cert_path"), "{error}");
}

#[tokio::test]
async fn a_listed_origin_may_upload_with_tus_and_read_its_headers() {
    let app = router_for_app().await;
    for (path, method) in [
        ("/api/uploads", "POST"),
        ("/api/uploads/abc", "PATCH"),
        ("/api/uploads/abc", "HEAD"),
        ("/api/uploads/abc", "DELETE"),
    ] {
        let answer = preflight(&app, path, APP, method).await;
        assert_eq!(answer.status, StatusCode::OK, "{method} {path}");
        assert_eq!(answer.header("access-control-allow-origin"), APP);
        assert_eq!(answer.header("access-control-allow-credentials"), "true");
        assert_eq!(answer.header("access-control-max-age"), "7200");
        assert!(
            list(&answer, "access-control-allow-methods").contains(&method.to_ascii_lowercase()),
            "{method}"
        );
        let allowed = list(&answer, "access-control-allow-headers");
        for name in [
            "tus-resumable",
            "upload-length",
            "upload-metadata",
            "upload-offset",
            "content-type",
            "x-csrf-token",
        ] {
            assert!(allowed.contains(&name.to_owned()), "{name} not allowed: {allowed:?}");
        }
        assert_eq!(answer.header("x-content-type-options"), "nosniff");
    }

    // The actual creation request: the browser must see Location and Upload-Offset to go on.
    let auth = app.uploader().await;
    let created = app
        .send(
            Method::POST,
            "/api/uploads",
            &[("origin", APP), ("authorization", &auth), ("tus-resumable", "1.0.0"), ("upload-length", "10")],
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED);
    assert_eq!(created.header("access-control-allow-origin"), APP);
    assert_eq!(created.header("access-control-allow-credentials"), "true");
    let exposed = list(&created, "access-control-expose-headers");
    for name in
        ["location", "upload-offset", "upload-length", "tus-resumable", "upload-expires", "tus-version"]
    {
        assert!(exposed.contains(&name.to_owned()), "{name} not exposed: {exposed:?}");
    }
    // Errors are readable cross-origin too.
    let missing = app.get("/api/videos/nope1234", &[("origin", APP)]).await;
    assert_eq!((missing.status, missing.header("access-control-allow-origin")), (StatusCode::NOT_FOUND, APP));
}

#[tokio::test]
async fn an_unlisted_origin_gets_no_cors_and_media_stays_open_to_any_site() {
    let app = router_for_app().await;
    let evil = "https://evil.example";
    let preflight_answer = preflight(&app, "/api/uploads", evil, "POST").await;
    let actual = app.get("/api/videos", &[("origin", evil)]).await;
    for answer in [&preflight_answer, &actual] {
        assert!(!answer.headers.contains_key(ALLOW_ORIGIN), "{:?}", answer.headers);
        assert!(!answer.headers.contains_key(ALLOW_CREDENTIALS), "{:?}", answer.headers);
    }
    assert_eq!(actual.status, StatusCode::OK, "the request itself is served; the browser hides it");

    // Media: any origin, never with credentials, the range headers readable.
    let id = first_video_id(&app).await;
    for path in [format!("/stream/{id}"), "/media/sample-vp9.webm".into()] {
        let media = app.get(&path, &[("origin", evil), ("range", "bytes=0-99")]).await;
        assert_eq!(media.status, StatusCode::PARTIAL_CONTENT, "{path}");
        assert_eq!(media.header("access-control-allow-origin"), "*", "{path}");
        assert!(!media.headers.contains_key(ALLOW_CREDENTIALS), "{path}");
        assert!(list(&media, "access-control-expose-headers").contains(&"content-range".to_owned()));
        let preflight_answer = app
            .send(
                Method::OPTIONS,
                &path,
                &[
                    ("origin", evil),
                    ("access-control-request-method", "GET"),
                    ("access-control-request-headers", "range"),
                ],
            )
            .await;
        assert_eq!(preflight_answer.header("access-control-allow-origin"), "*", "{path}");
    }
    // Pages are same-origin only.
    assert!(!app.get("/", &[("origin", evil)]).await.headers.contains_key(ALLOW_ORIGIN));
}

#[tokio::test]
async fn without_configured_origins_the_api_is_same_origin_and_star_never_goes_with_credentials() {
    let default = TestRouter::new().await;
    let answer = preflight(&default, "/api/uploads", APP, "POST").await;
    assert!(!answer.headers.contains_key(ALLOW_ORIGIN), "{:?}", answer.headers);

    let any = router_with(|config| config.cors.origins = vec!["*".into()]).await;
    let answer = preflight(&any, "/api/uploads", APP, "POST").await;
    assert_eq!(answer.header("access-control-allow-origin"), "*");
    assert!(!answer.headers.contains_key(ALLOW_CREDENTIALS));

    for (origins, credentials, expected) in [
        (vec!["*"], true, "cors.credentials needs listed origins"),
        (vec!["*", APP], false, "stands alone"),
        (vec!["https://app.example/"], false, "is not an origin"),
        (vec!["app.example"], false, "is not an origin"),
    ] {
        let mut config = Config::for_tests(std::path::Path::new("/tmp"));
        config.cors.origins = origins.iter().map(|o| (*o).to_owned()).collect();
        config.cors.credentials = credentials;
        let error = config.validated().unwrap_err().to_string();
        assert!(error.contains(expected), "{origins:?}: {error}");
    }
}
