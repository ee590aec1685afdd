//! Server-rendered pages and static assets, read as a browser would fetch them.

use crate::common::spawn_app;

#[tokio::test]
async fn the_library_lists_every_video_with_its_facts_and_the_images() {
    let app = spawn_app().await;
    let page = app.h2().get(app.tls_url("/")).send().await.unwrap();
    assert_eq!(page.status(), 200);
    assert_eq!(page.headers()["content-type"], "text/html; charset=utf-8");
    let html = page.text().await.unwrap();
    for text in ["sample h264", "sample vp9", "sample moov at end", "0:20", "640×360", "0 views"] {
        assert!(html.contains(text), "{text} missing from the library");
    }
    assert_eq!(html.matches("href=\"/watch/").count(), 3);
    assert!(html.contains("src=\"/media/sample-photo.jpg\"") && html.contains("alt=\"sample-photo.jpg\""));
    assert!(html.contains("<html lang=\"en\">") && html.contains("name=\"viewport\""));
    assert!(html.contains("Page 1 of 1"));
}

#[tokio::test]
async fn a_watch_page_has_a_player_for_the_stream_and_notes_a_late_index() {
    let app = spawn_app().await;
    let client = app.h2();
    let list: serde_json::Value =
        client.get(app.tls_url("/api/videos")).send().await.unwrap().json().await.unwrap();
    for video in list["videos"].as_array().unwrap() {
        let html = client
            .get(app.tls_url(&format!("/watch/{}", video["id"].as_str().unwrap())))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(html.contains("<video controls preload=\"metadata\""), "{html}");
        let source = format!(
            "<source src=\"{}\" type=\"{}\">",
            video["stream_url"].as_str().unwrap(),
            video["mime"].as_str().unwrap()
        );
        assert!(html.contains(&source), "{source} not in {html}");
        let late_index = video["faststart"] == false;
        assert_eq!(html.contains("keeps its index at the end"), late_index, "{}", video["title"]);
    }
}

#[tokio::test]
async fn a_missing_page_is_the_404_page_in_the_site_layout() {
    let app = spawn_app().await;
    for path in ["/watch/nope", "/no/such/page"] {
        let response = app.h2().get(app.tls_url(path)).header("accept", "text/html").send().await.unwrap();
        assert_eq!(response.status(), 404);
        let html = response.text().await.unwrap();
        assert!(
            html.contains("<h1>404 Not Found</h1>") && html.contains("href=\"/static/kino.css?v="),
            "{html}"
        );
    }
}

#[tokio::test]
async fn the_upload_form_posts_to_the_api_and_lands_on_the_watch_page() {
    let app = spawn_app().await;
    // The form is for a signed-in uploader (tests/it/ownership.rs has the other visitors): the
    // first account, an admin.
    let body = r#"{"email": "ada@example.org", "password": "a long passphrase"}"#;
    let signed_up = app.h1().post(app.tls_url("/api/users")).header("content-type", "application/json");
    let signed_up = signed_up.body(body).send().await.unwrap();
    let cookie = signed_up.headers()["set-cookie"].to_str().unwrap().to_owned();
    let cookie = cookie.split(';').next().unwrap().to_owned();
    let account: serde_json::Value = signed_up.json().await.unwrap();
    let csrf = account["csrf_token"].as_str().unwrap().to_owned();
    let upload_page = app.h1().get(app.tls_url("/upload")).header("cookie", &cookie).send().await.unwrap();
    let html = upload_page.text().await.unwrap();
    assert!(html.contains("action=\"/api/videos\" enctype=\"multipart/form-data\""), "{html}");
    assert!(html.contains("<label for=\"file\">") && html.contains("kino scan"));
    let clip = std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/media/sample-moov-at-end.mp4")).unwrap();
    // As the browser sends the page's form: the session cookie, the page's origin, `_csrf` first.
    let form = reqwest::multipart::Form::new()
        .text("_csrf", csrf)
        .text("title", "From the form")
        .part("file", reqwest::multipart::Part::bytes(clip).file_name("clip.mp4"));
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .tls_certs_only([reqwest::Certificate::from_pem(&app.ca_pem).unwrap()])
        .resolve("localhost", app.https)
        .build()
        .unwrap();
    let response = client
        .post(app.tls_url("/api/videos"))
        .header("accept", "text/html")
        .header("cookie", &cookie)
        .header("origin", app.tls_url(""))
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 303);
    let watch = response.headers()["location"].to_str().unwrap().to_owned();
    let page = app.h2().get(app.tls_url(&watch)).send().await.unwrap().text().await.unwrap();
    assert!(page.contains("<h1>From the form</h1>"), "{page}");
}

#[tokio::test]
async fn the_stylesheet_is_versioned_precompressed_and_revalidated() {
    let app = spawn_app().await;
    let html = app.h2().get(app.tls_url("/")).send().await.unwrap().text().await.unwrap();
    let start = html.find("/static/kino.css?v=").unwrap();
    let url = &html[start..start + html[start..].find('"').unwrap()];
    let raw = std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/static/kino.css")).unwrap();

    let plain = app.h2().get(app.tls_url(url)).send().await.unwrap();
    assert_eq!(plain.headers()["cache-control"], "public, max-age=31536000, immutable");
    assert_eq!(plain.headers()["content-type"], "text/css; charset=utf-8");
    assert!(plain.headers().get("content-encoding").is_none());
    let etag = plain.headers()["etag"].to_str().unwrap().to_owned();
    assert_eq!(plain.bytes().await.unwrap(), raw);

    for coding in ["br", "gzip"] {
        let encoded = app.h2().get(app.tls_url(url)).header("accept-encoding", coding).send().await.unwrap();
        assert_eq!(encoded.headers()["content-encoding"], coding);
        assert_eq!(encoded.headers()["vary"], "accept-encoding");
        assert_ne!(encoded.headers()["etag"].to_str().unwrap(), etag, "each encoding has its own tag");
    }
    // The committed siblings decode to the stylesheet itself (they are never stale).
    let decoded = app.h2_decoding().get(app.tls_url(url)).send().await.unwrap().bytes().await.unwrap();
    assert_eq!(decoded, raw);

    let unversioned =
        app.h2().get(app.tls_url("/static/kino.css")).header("if-none-match", &etag).send().await.unwrap();
    assert_eq!(unversioned.status(), 304);
    assert_eq!(unversioned.headers()["cache-control"], "public, no-cache");
}

#[tokio::test]
async fn json_and_html_are_compressed_when_asked_and_media_never() {
    let app = spawn_app().await;
    for (coding, path) in [("br", "/api/videos"), ("gzip", "/api/videos"), ("zstd", "/"), ("br", "/")] {
        let response =
            app.h2().get(app.tls_url(path)).header("accept-encoding", coding).send().await.unwrap();
        assert_eq!(response.headers()["content-encoding"], coding, "{path}");
        assert!(
            response.headers()["vary"].to_str().unwrap().to_ascii_lowercase().contains("accept-encoding")
        );
    }
    let decoded: serde_json::Value =
        app.h2_decoding().get(app.tls_url("/api/videos")).send().await.unwrap().json().await.unwrap();
    assert_eq!(decoded["total"], 3);
    for path in ["/media/sample-h264.mp4", "/media/sample-photo.jpg"] {
        for range in [None, Some("bytes=0-99")] {
            let mut request = app.h2().get(app.tls_url(path)).header("accept-encoding", "br, gzip, zstd");
            if let Some(range) = range {
                request = request.header("range", range);
            }
            let response = request.send().await.unwrap();
            assert!(response.headers().get("content-encoding").is_none(), "{path} {range:?}");
        }
    }
    let small = app.h2().get(app.tls_url("/healthz")).header("accept-encoding", "br").send().await.unwrap();
    assert!(small.headers().get("content-encoding").is_none(), "tiny bodies are sent as they are");
}
