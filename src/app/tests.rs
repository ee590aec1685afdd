//! Router tests: the whole router with its middleware stack, built by [`App::build`] over a temp
//! dir and the bundled samples, answering requests through `tower::ServiceExt::oneshot` with no
//! socket. Handler logic is tested here; `tests/it` keeps what needs a connection (protocols,
//! TLS, timeouts, shutdown, memory).

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, Method, Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::Value;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

use super::App;
use crate::config::Config;

/// The application over a fresh data dir, serving the repository's `media/` samples.
struct TestRouter {
    router: Router,
    max_upload_bytes: u64,
    _dir: tempfile::TempDir,
}

/// A whole response: what a client would see.
struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    body: bytes::Bytes,
}

impl Answer {
    /// A header as text; panics when it is missing, naming it.
    fn header(&self, name: &str) -> &str {
        self.headers.get(name).unwrap_or_else(|| panic!("no {name} header")).to_str().unwrap()
    }

    /// The body as JSON.
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| panic!("{e}: {:?}", self.body))
    }

    /// The body as text.
    fn text(&self) -> &str {
        std::str::from_utf8(&self.body).unwrap()
    }
}

/// Every request gives up after this long instead of hanging the test run.
const TEST_TIMEOUT: Duration = Duration::from_secs(20);

const SAMPLES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/media");

impl TestRouter {
    async fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mut config = Config::for_tests(dir.path());
        config.media_dirs = vec![SAMPLES.into()];
        let max_upload_bytes = config.limits.max_upload_bytes;
        let app = App::build(Arc::new(config), 8443, CancellationToken::new()).await.unwrap();
        Self { router: app.router, max_upload_bytes, _dir: dir }
    }

    async fn send(&self, method: Method, path: &str, headers: &[(&str, &str)]) -> Answer {
        self.send_body(method, path, headers, Body::empty()).await
    }

    /// `Bearer <token>` of the first account (an admin, who may upload), signed up now.
    async fn uploader(&self) -> String {
        let account = r#"{"email": "uploader@kino.test", "password": "an uploader's passphrase"}"#;
        let json = [("content-type", "application/json")];
        let signed_up = self.send_body(Method::POST, "/api/users", &json, account.into()).await;
        assert_eq!(signed_up.status, StatusCode::CREATED, "{}", signed_up.text());
        let pair = self.send_body(Method::POST, "/api/auth/token", &json, account.into()).await;
        assert_eq!(pair.status, StatusCode::OK, "{}", pair.text());
        format!("Bearer {}", pair.json()["access_token"].as_str().unwrap())
    }

    async fn send_body(&self, method: Method, path: &str, headers: &[(&str, &str)], body: Body) -> Answer {
        let mut request = Request::builder().method(method).uri(path);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let request = request.body(body).unwrap();
        let exchange = async {
            let response = self.router.clone().oneshot(request).await.unwrap();
            let (parts, body) = response.into_parts();
            let body = body.collect().await.unwrap().to_bytes();
            Answer { status: parts.status, headers: parts.headers, body }
        };
        tokio::time::timeout(TEST_TIMEOUT, exchange).await.expect("the router answers in time")
    }

    async fn get(&self, path: &str, headers: &[(&str, &str)]) -> Answer {
        self.send(Method::GET, path, headers).await
    }
}

fn sample(name: &str) -> Vec<u8> {
    std::fs::read(format!("{SAMPLES}/{name}")).unwrap()
}

#[tokio::test]
async fn api_errors_are_json_with_the_request_id_and_pages_get_html_unless_json_is_preferred() {
    let app = TestRouter::new().await;
    let api = app.get("/api/nothing-here", &[("accept", "text/html"), ("x-request-id", "r-1")]).await;
    assert_eq!((api.status, api.header("content-type")), (StatusCode::NOT_FOUND, "application/json"));
    let error = &api.json()["error"];
    assert_eq!(error["code"], "not_found");
    assert_eq!(error["message"], "nothing is at /api/nothing-here");
    assert_eq!(error["request_id"], "r-1");

    let page = app.get("/no/such/page", &[("accept", "text/html")]).await;
    assert_eq!(
        (page.status, page.header("content-type")),
        (StatusCode::NOT_FOUND, "text/html; charset=utf-8")
    );
    assert!(page.text().contains("<h1>404 Not Found</h1>"), "{}", page.text());
    assert!(page.text().contains("/no/such/page"));

    for (accept, json) in
        [("application/json", true), ("application/json, text/html", false), ("*/*", false), ("", false)]
    {
        let answer = app.get("/nope", &[("accept", accept)]).await;
        assert_eq!(answer.status, StatusCode::NOT_FOUND, "{accept}");
        let expected = if json { "application/json" } else { "text/html; charset=utf-8" };
        assert_eq!(answer.header("content-type"), expected, "Accept: {accept}");
    }
}

#[tokio::test]
async fn a_wrong_method_is_405_with_allow_on_pages_the_api_and_uploads() {
    let app = TestRouter::new().await;
    for (method, path, allow) in [
        (Method::POST, "/healthz", "GET,HEAD"),
        (Method::DELETE, "/api/videos", "GET,HEAD,POST"),
        (Method::PUT, "/api/images", "POST"),
        (Method::GET, "/api/uploads", "OPTIONS,POST"),
        (Method::PUT, "/api/uploads/some-id", "HEAD,PATCH,DELETE"),
        (Method::POST, "/media/sample-h264.mp4", "GET,HEAD"),
    ] {
        let answer = app.send(method.clone(), path, &[]).await;
        assert_eq!(answer.status, StatusCode::METHOD_NOT_ALLOWED, "{method} {path}");
        assert_eq!(answer.header("allow"), allow, "{method} {path}");
        if path.starts_with("/api/uploads") {
            // tus 1.0: every response but OPTIONS names the protocol version, errors included.
            assert_eq!(answer.header("tus-resumable"), "1.0.0", "{method} {path}");
        }
        if path.starts_with("/api") {
            assert_eq!(answer.json()["error"]["code"], "method_not_allowed", "{method} {path}");
            assert_eq!(answer.json()["error"]["message"], format!("{method} is not allowed on this path"));
        }
    }
}

#[tokio::test]
async fn the_catalog_pages_through_the_samples_and_refuses_a_bad_query_with_a_400() {
    let app = TestRouter::new().await;
    let first = app.get("/api/videos?per_page=2", &[]).await.json();
    let second = app.get("/api/videos?per_page=2&page=2", &[]).await.json();
    let past_the_end = app.get("/api/videos?per_page=2&page=3", &[]).await.json();
    assert_eq!(
        (first["total"].as_i64(), first["page"].as_i64(), first["per_page"].as_i64()),
        (Some(3), Some(1), Some(2))
    );
    assert_eq!(first["videos"].as_array().unwrap().len(), 2);
    assert_eq!(second["videos"].as_array().unwrap().len(), 1);
    assert_eq!(past_the_end["videos"].as_array().unwrap().len(), 0);
    assert_ne!(first["videos"][0]["id"], second["videos"][0]["id"]);
    assert_eq!(app.get("/api/videos?per_page=100", &[]).await.status, StatusCode::OK);

    for (query, message) in [
        ("page=0", "page starts at 1"),
        ("per_page=0", "per_page must be between 1 and 100"),
        ("per_page=101", "per_page must be between 1 and 100"),
        ("per_page=-1", "invalid digit"),
        ("page=abc", "invalid digit"),
        ("page=99999999999", "number too large"),
        ("nonsense=1", "unknown field `nonsense`"),
    ] {
        let answer = app.get(&format!("/api/videos?{query}"), &[]).await;
        assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{query}");
        let error = &answer.json()["error"];
        assert_eq!(error["code"], "bad_request", "{query}");
        assert!(error["message"].as_str().unwrap().contains(message), "{query}: {error}");
    }
    let missing = app.get("/api/videos/nope", &[]).await;
    assert_eq!(
        (missing.status, missing.json()["error"]["code"].as_str()),
        (StatusCode::NOT_FOUND, Some("not_found"))
    );
    assert_eq!(app.get("/stream/nope.mp4", &[]).await.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn media_ranges_carry_their_length_validators_and_no_content_encoding() {
    let app = TestRouter::new().await;
    let file = sample("sample-h264.mp4");
    let len = file.len();
    let path = "/media/sample-h264.mp4";

    let whole = app.get(path, &[("accept-encoding", "br, gzip, zstd")]).await;
    assert_eq!(whole.status, StatusCode::OK);
    assert_eq!(whole.body, file);
    assert_eq!(whole.header("content-length"), len.to_string());
    assert_eq!(whole.header("accept-ranges"), "bytes");
    assert_eq!(whole.header("content-type"), "video/mp4");
    assert_eq!(whole.header("content-disposition"), "inline");
    assert_eq!(whole.header("x-content-type-options"), "nosniff");
    assert_eq!(whole.header("cache-control"), "public, max-age=86400");
    assert!(whole.headers.get("content-encoding").is_none(), "media is never compressed");
    let etag = whole.header("etag").to_owned();
    assert!(etag.starts_with('"') && etag.len() > 10, "a strong tag: {etag}");

    let probe = app.get(path, &[("range", "bytes=0-1")]).await;
    assert_eq!(probe.status, StatusCode::PARTIAL_CONTENT);
    assert_eq!(probe.header("content-range"), format!("bytes 0-1/{len}"));
    assert_eq!((probe.header("content-length"), &probe.body[..]), ("2", &file[..2]));
    assert_eq!(probe.header("etag"), etag);

    let tail = app.get(path, &[("range", "bytes=-100")]).await;
    assert_eq!(tail.header("content-range"), format!("bytes {}-{}/{len}", len - 100, len - 1));
    assert_eq!(tail.body, file[len - 100..]);

    let several = app.get(path, &[("range", "bytes=0-9,20-29")]).await;
    assert_eq!(several.status, StatusCode::PARTIAL_CONTENT);
    assert!(several.header("content-type").starts_with("multipart/byteranges; boundary="));
    assert_eq!(several.header("content-length"), several.body.len().to_string());

    let beyond = app.get(path, &[("range", &format!("bytes={len}-"))]).await;
    assert_eq!(beyond.status, StatusCode::RANGE_NOT_SATISFIABLE);
    assert_eq!(beyond.header("content-range"), format!("bytes */{len}"));

    let stale_resume = app.get(path, &[("range", "bytes=0-1"), ("if-range", "\"another-tag\"")]).await;
    assert_eq!((stale_resume.status, stale_resume.body.len()), (StatusCode::OK, len));

    let cached = app.get(path, &[("if-none-match", &etag)]).await;
    assert_eq!(cached.status, StatusCode::NOT_MODIFIED);
    assert!(cached.body.is_empty());
    assert_eq!(cached.header("etag"), etag);

    let head = app.send(Method::HEAD, path, &[("range", "bytes=0-1")]).await;
    assert_eq!((head.status, head.body.len()), (StatusCode::PARTIAL_CONTENT, 0));
    assert_eq!(head.header("content-range"), probe.header("content-range"));
    assert_eq!(head.header("content-length"), "2");

    let outside = app.get("/media/../Cargo.toml", &[]).await;
    assert_eq!(outside.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn the_stylesheet_revalidates_by_etag_per_encoding_and_is_immutable_only_when_versioned() {
    let app = TestRouter::new().await;
    let asset = crate::assets::find("kino.css").unwrap();
    let versioned = app.get(&format!("/static/kino.css?v={}", asset.hash), &[]).await;
    assert_eq!(versioned.status, StatusCode::OK);
    assert_eq!(versioned.header("cache-control"), "public, max-age=31536000, immutable");
    assert_eq!(versioned.header("content-type"), "text/css; charset=utf-8");
    assert_eq!(versioned.body, asset.raw);
    let plain_tag = versioned.header("etag").to_owned();

    let stale = app.get("/static/kino.css?v=old", &[]).await;
    assert_eq!(stale.header("cache-control"), "public, no-cache");

    let revalidated = app.get("/static/kino.css", &[("if-none-match", &plain_tag)]).await;
    assert_eq!(revalidated.status, StatusCode::NOT_MODIFIED);
    assert!(revalidated.body.is_empty());
    assert_eq!(
        (revalidated.header("etag"), revalidated.header("vary")),
        (plain_tag.as_str(), "accept-encoding")
    );

    let brotli = app.get("/static/kino.css", &[("accept-encoding", "br")]).await;
    assert_eq!((brotli.status, brotli.header("content-encoding")), (StatusCode::OK, "br"));
    let brotli_tag = brotli.header("etag").to_owned();
    assert_ne!(brotli_tag, plain_tag, "each encoding is its own representation");
    // The plain tag does not validate the brotli representation, and the brotli tag does.
    let other_tag =
        app.get("/static/kino.css", &[("accept-encoding", "br"), ("if-none-match", &plain_tag)]).await;
    assert_eq!(other_tag.status, StatusCode::OK);
    let same_tag =
        app.get("/static/kino.css", &[("accept-encoding", "br"), ("if-none-match", &brotli_tag)]).await;
    assert_eq!(same_tag.status, StatusCode::NOT_MODIFIED);
    let refused = app.get("/static/kino.css", &[("accept-encoding", "br;q=0, gzip")]).await;
    assert_eq!(refused.header("content-encoding"), "gzip");

    let missing = app.get("/static/nope.css", &[("accept", "text/html")]).await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn an_upload_that_is_no_form_or_too_large_is_refused_before_its_body_with_a_json_error() {
    let app = TestRouter::new().await;
    let auth = app.uploader().await;
    // Past the limit and the form's 64 KiB allowance, declared up front.
    let too_large = (app.max_upload_bytes + (1 << 20)).to_string();
    for (headers, status, message) in [
        (vec![], 415, "expected Content-Type: multipart/form-data"),
        (vec![("content-type", "application/json")], 415, "expected Content-Type: multipart/form-data"),
        (
            vec![("content-type", "multipart/form-data")],
            415,
            "multipart/form-data needs a boundary parameter",
        ),
        (
            vec![("content-type", "multipart/form-data; boundary=")],
            415,
            "the multipart boundary must be 1 to 70",
        ),
        (
            vec![("content-type", "multipart/form-data; boundary=b"), ("content-length", too_large.as_str())],
            413,
            "the upload is larger than the",
        ),
    ] {
        let mut headers = headers;
        headers.push(("authorization", auth.as_str()));
        let answer = app.send(Method::POST, "/api/videos", &headers).await;
        assert_eq!(answer.status.as_u16(), status, "{headers:?}");
        assert_eq!(answer.header("content-type"), "application/json", "{headers:?}");
        let error = &answer.json()["error"];
        assert!(error["message"].as_str().unwrap().starts_with(message), "{headers:?}: {error}");
    }
}

mod headers;
