//! Sharing a video: the framable `/embed/{id}` player (headers, viewer cookie, a real iframe in
//! Chromium), oEmbed, the watch page's Open Graph tags, and `/download/{id}` attachments that
//! are never counted as views.

use std::time::Duration;

use http::Method;
use serde_json::{Value, json};

use crate::browser::{Browser, chromium, metric, printed_chrome_command, spawn_on_localhost};
use crate::common::{ALL_PROTOCOLS, Protocol, TestApp, spawn_app, spawn_app_with};
use crate::views::{eventually, new_viewer, open, play, sample, set_cookie_value};

const SAMPLE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/media/sample-h264.mp4");

/// `PATCH /api/videos/{id}` as the admin (the first account), which may edit media-folder videos.
async fn edit(app: &TestApp, id: &str, body: Value) {
    let admin = app.uploader().await.to_owned();
    let headers = [("content-type", "application/json"), ("authorization", admin.as_str())];
    let path = format!("/api/videos/{id}");
    let answer = app.send(Protocol::Http2, Method::PATCH, &path, &headers, body.to_string().into()).await;
    assert_eq!(answer.status, 200, "{answer:?}");
}

/// The JSON of an oEmbed request for `url` with `extra` parameters, and its status.
async fn oembed(app: &TestApp, url: &str, extra: &str) -> (u16, Value) {
    let query = format!("url={}{extra}", url.replace(':', "%3A").replace('/', "%2F"));
    let answer = app.fetch(Protocol::Http2, Method::GET, &format!("/oembed?{query}"), &[]).await;
    assert_eq!(answer.header("content-type"), Some("application/json"), "{answer:?}");
    (answer.status.as_u16(), serde_json::from_slice(&answer.body).unwrap())
}

/// The width and height the catalog knows for video `id`.
async fn size_of(app: &TestApp, id: &str) -> (u64, u64) {
    let video: Value =
        app.h2().get(app.tls_url(&format!("/api/videos/{id}"))).send().await.unwrap().json().await.unwrap();
    (video["width"].as_u64().unwrap(), video["height"].as_u64().unwrap())
}

#[tokio::test]
async fn the_embed_page_may_be_framed_by_any_site_and_the_watch_page_by_none() {
    let app = spawn_app().await;
    let (id, url) = sample(&app).await;
    for protocol in ALL_PROTOCOLS {
        let embed = app.fetch(protocol, Method::GET, &format!("/embed/{id}"), &[]).await;
        assert_eq!(embed.status, 200, "{protocol:?}");
        let csp = embed.header("content-security-policy").unwrap();
        assert!(csp.ends_with("frame-ancestors *"), "{csp}");
        assert!(csp.contains("media-src 'self'") && csp.contains("default-src 'none'"), "{csp}");
        assert_eq!(embed.header("x-frame-options"), None, "{protocol:?}");
        let html = std::str::from_utf8(&embed.body).unwrap();
        assert!(html.contains("<title>sample h264</title>"), "{html}");
        assert!(html.contains("<video controls preload=\"metadata\""), "{html}");
        assert!(html.contains(&format!("<source src=\"{url}\" type=\"video/mp4\">")), "{html}");
        let link = format!(
            "<a class=\"watch\" href=\"/watch/{id}\" target=\"_blank\" rel=\"noopener\">Watch on kino</a>"
        );
        assert!(html.contains(&link), "{html}");
        assert!(!html.contains("<header"), "a bare player, no site chrome: {html}");

        let watch = app.fetch(protocol, Method::GET, &format!("/watch/{id}"), &[]).await;
        assert_eq!(watch.header("x-frame-options"), Some("DENY"), "{protocol:?}");
        assert!(watch.header("content-security-policy").unwrap().contains("frame-ancestors 'none'"));
    }
    let missing = app.fetch(Protocol::Http2, Method::GET, "/embed/nosuchvideo", &[]).await;
    assert_eq!(missing.status, 404);
    assert!(std::str::from_utf8(&missing.body).unwrap().contains("/embed/nosuchvideo"));
}

#[tokio::test]
async fn the_embed_page_sets_a_viewer_cookie_a_framed_player_sends_and_its_view_counts() {
    let app = spawn_app_with(|c| {
        open(c);
        c.views.pace = 0.0;
    })
    .await;
    let (id, url) = sample(&app).await;
    let embed = app.fetch(Protocol::Http2, Method::GET, &format!("/embed/{id}"), &[]).await;
    let set = embed.header("set-cookie").expect("the embed page sets the viewer cookie");
    // A Lax cookie is neither stored nor sent in another site's frame.
    for part in ["kino_vid=", "HttpOnly", "SameSite=None", "Secure", "Partitioned", "Path=/"] {
        assert!(set.contains(part), "{set}");
    }
    assert!(embed.header("cache-control").unwrap().starts_with("private"));
    let cookie = set_cookie_value(set);
    let again =
        app.fetch(Protocol::Http3, Method::GET, &format!("/embed/{id}"), &[("cookie", &cookie)]).await;
    assert_eq!(again.header("set-cookie"), None, "a returning viewer keeps the cookie");

    // `SameSite=None` needs `Secure`, which plain HTTP cannot give: the watch page's cookie.
    let plain = app.plain().get(app.plain_url(&format!("/embed/{id}"))).send().await.unwrap();
    let set = plain.headers()["set-cookie"].to_str().unwrap();
    assert!(set.contains("SameSite=Lax") && !set.contains("Secure") && !set.contains("Partitioned"), "{set}");

    play(&app, Protocol::Http2, &url, &cookie).await;
    let views = eventually(&app, &id, |v| v["views"] == 1).await;
    assert_eq!(views["unique_viewers"], 1, "{views}");
}

#[tokio::test]
async fn oembed_answers_a_video_sized_inside_the_maxima_and_refuses_what_it_cannot() {
    let app = spawn_app().await;
    let (id, _) = sample(&app).await;
    let (width, height) = size_of(&app, &id).await;
    let watch = app.tls_url(&format!("/watch/{id}"));
    let (status, answer) = oembed(&app, &watch, "").await;
    assert_eq!(status, 200, "{answer}");
    let origin = app.tls_url("");
    let iframe = format!(
        "<iframe src=\"{origin}/embed/{id}\" width=\"{width}\" height=\"{height}\" title=\"sample h264\" \
         frameborder=\"0\" allow=\"fullscreen; picture-in-picture\" allowfullscreen></iframe>"
    );
    assert_eq!(
        answer,
        json!({
            "type": "video",
            "version": "1.0",
            "title": "sample h264",
            "provider_name": "kino",
            "provider_url": format!("{origin}/"),
            "html": iframe,
            "width": width,
            "height": height,
        }),
        "a media-folder video has no author"
    );

    // Scaled down into both maxima, the aspect ratio kept, rounded down.
    let (_, half) = oembed(&app, &watch, &format!("&maxwidth={}&format=json", width / 2)).await;
    assert_eq!((half["width"].as_u64(), half["height"].as_u64()), (Some(width / 2), Some(height / 2)));
    let (_, boxed) = oembed(&app, &watch, "&maxwidth=1000&maxheight=90").await;
    assert_eq!((boxed["width"].as_u64(), boxed["height"].as_u64()), (Some(90 * width / height), Some(90)));
    let (_, big) = oembed(&app, &watch, "&maxwidth=100000&maxheight=100000").await;
    assert_eq!((big["width"].as_u64(), big["height"].as_u64()), (Some(width), Some(height)), "never up");

    let (status, _) = oembed(&app, &app.tls_url(&format!("/embed/{id}")), "").await;
    assert_eq!(status, 200, "an embed URL names the video too");

    // An uploaded video's author is its uploader, by display name.
    let form = reqwest::multipart::Form::new()
        .text("title", "uploaded")
        .part("file", reqwest::multipart::Part::bytes(std::fs::read(SAMPLE).unwrap()).file_name("a.mp4"));
    let request = app.h2().post(app.tls_url("/api/videos")).header("authorization", app.uploader().await);
    let uploaded: Value = request.multipart(form).send().await.unwrap().json().await.unwrap();
    let name = uploaded["owner"]["display_name"].as_str().expect("an owner").to_owned();
    let watch_uploaded = app.tls_url(&format!("/watch/{}", uploaded["id"].as_str().unwrap()));
    let (status, answer) = oembed(&app, &watch_uploaded, "").await;
    assert_eq!((status, answer["author_name"].as_str()), (200, Some(name.as_str())), "{answer}");

    let (status, xml) = oembed(&app, &watch, "&format=xml").await;
    assert_eq!((status, xml["error"]["code"].as_str()), (501, Some("not_implemented")), "{xml}");
    for url in [
        format!("https://evil.example/watch/{id}"),
        app.tls_url("/watch/nosuchvideo"),
        app.tls_url(&format!("/stream/{id}.mp4")),
    ] {
        let (status, error) = oembed(&app, &url, "").await;
        assert_eq!((status, error["error"]["code"].as_str()), (404, Some("not_found")), "{url}: {error}");
    }
    let missing = app.fetch(Protocol::Http2, Method::GET, "/oembed?format=json", &[]).await;
    assert_eq!(missing.status, 400);
    assert!(std::str::from_utf8(&missing.body).unwrap().contains("url is required"));
    let (status, _) = oembed(&app, &watch, "&maxwidth=0").await;
    assert_eq!(status, 400);
}

/// The `content` of `<meta property|name="{key}" content="…">` in `html`, unescaped.
fn meta(html: &str, key: &str) -> Option<String> {
    let pattern = format!("=\"{key}\" content=\"");
    let start = html.find(&pattern)? + pattern.len();
    let end = start + html[start..].find('"')?;
    Some(html[start..end].replace("&#38;", "&").replace("&amp;", "&"))
}

#[tokio::test]
async fn watch_pages_carry_open_graph_and_oembed_discovery_with_absolute_urls() {
    let app = spawn_app().await;
    let (id, url) = sample(&app).await;
    edit(&app, &id, json!({"description": "A short clip."})).await;
    let page = app.fetch(Protocol::Http2, Method::GET, &format!("/watch/{id}"), &[]).await;
    let html = std::str::from_utf8(&page.body).unwrap();
    let origin = app.tls_url("");
    let (width, height) = size_of(&app, &id).await;
    let expected = [
        ("og:type", "video.other".to_owned()),
        ("og:title", "sample h264".to_owned()),
        ("og:url", format!("{origin}/watch/{id}")),
        ("og:video", format!("{origin}{url}")),
        ("og:video:type", "video/mp4".to_owned()),
        ("og:video:width", width.to_string()),
        ("og:video:height", height.to_string()),
        ("og:description", "A short clip.".to_owned()),
        ("twitter:card", "player".to_owned()),
        ("twitter:player", format!("{origin}/embed/{id}")),
    ];
    for (key, value) in expected {
        assert_eq!(meta(html, key), Some(value), "{key} in {html}");
    }
    let discovery = "<link rel=\"alternate\" type=\"application/json+oembed\" href=\"";
    let start = html.find(discovery).expect("oEmbed discovery") + discovery.len();
    let href =
        html[start..start + html[start..].find('"').unwrap()].replace("&#38;", "&").replace("&amp;", "&");
    let discovered: Value = app.h2().get(&href).send().await.unwrap().json().await.unwrap();
    assert_eq!(
        (discovered["type"].as_str(), discovered["title"].as_str()),
        (Some("video"), Some("sample h264")),
        "{href}"
    );
    assert!(html.contains(&format!("<a href=\"/download/{id}\" download>Download original</a>")), "{html}");

    // `public_url` is the origin every shared URL names, whatever the request's host.
    let public = spawn_app_with(|c| c.public_url = Some("https://kino.example".into())).await;
    let (id, _) = sample(&public).await;
    let page = public.fetch(Protocol::Http3, Method::GET, &format!("/watch/{id}"), &[]).await;
    let html = std::str::from_utf8(&page.body).unwrap();
    assert_eq!(meta(html, "twitter:player"), Some(format!("https://kino.example/embed/{id}")), "{html}");
    let (status, _) = oembed(&public, &format!("https://kino.example/watch/{id}"), "").await;
    assert_eq!(status, 200);
    let (status, _) = oembed(&public, &public.tls_url(&format!("/watch/{id}")), "").await;
    assert_eq!(status, 404, "not the site's public address");
}

#[tokio::test]
async fn a_private_video_has_no_embed_no_oembed_no_share_tags_and_downloads_only_when_allowed() {
    let app = spawn_app().await;
    let (id, _) = sample(&app).await;
    edit(&app, &id, json!({"visibility": "private"})).await;
    let embed = app.fetch(Protocol::Http2, Method::GET, &format!("/embed/{id}"), &[]).await;
    assert_eq!(embed.status, 404);
    let (status, _) = oembed(&app, &app.tls_url(&format!("/watch/{id}")), "").await;
    assert_eq!(status, 404);
    let admin = app.uploader().await.to_owned();
    let owner = [("authorization", admin.as_str())];
    let page = app.fetch(Protocol::Http2, Method::GET, &format!("/watch/{id}"), &owner).await;
    assert_eq!(page.status, 200, "the admin sees it");
    let html = std::str::from_utf8(&page.body).unwrap();
    assert!(!html.contains("og:") && !html.contains("oembed") && !html.contains("twitter:"), "{html}");

    let path = format!("/download/{id}");
    let anonymous = app.fetch(Protocol::Http2, Method::GET, &path, &[]).await;
    assert_eq!(anonymous.status, 404, "as if it did not exist");
    let by_admin = app.fetch(Protocol::Http2, Method::GET, &path, &owner).await;
    assert_eq!(by_admin.status, 200);
    assert_eq!(by_admin.header("cache-control"), Some("private, max-age=86400"));
    // The signature of the owner's stream URL opens the download too (a link without a cookie).
    let video = app.fetch(Protocol::Http2, Method::GET, &format!("/api/videos/{id}"), &owner).await;
    let video: Value = serde_json::from_slice(&video.body).unwrap();
    let query = video["stream_url"].as_str().unwrap().split_once('?').unwrap().1.to_owned();
    let signed = app.fetch(Protocol::Http3, Method::GET, &format!("{path}?{query}"), &[]).await;
    assert_eq!(signed.status, 200);
    let forged =
        app.fetch(Protocol::Http3, Method::GET, &format!("{path}?exp=99999999999&sig=AAAA"), &[]).await;
    assert_eq!(forged.status, 403);
}

#[tokio::test]
async fn downloads_are_attachments_with_ranges_over_every_protocol_and_never_a_view() {
    let app = spawn_app_with(|c| {
        open(c);
        c.views.pace = 0.0;
    })
    .await;
    let (id, url) = sample(&app).await;
    edit(&app, &id, json!({"title": "Café 東京: a/b"})).await;
    let bytes = std::fs::read(SAMPLE).unwrap();
    let len = bytes.len();
    let disposition = "attachment; filename=\"Caf_ ___ a_b.mp4\"; \
        filename*=UTF-8''Caf%C3%A9%20%E6%9D%B1%E4%BA%AC_%20a_b.mp4";
    let path = format!("/download/{id}");
    for protocol in ALL_PROTOCOLS {
        let whole = app.fetch(protocol, Method::GET, &path, &[]).await;
        assert_eq!(whole.status, 200, "{protocol:?}");
        assert_eq!(whole.header("content-disposition"), Some(disposition), "{protocol:?}");
        assert_eq!(whole.header("content-type"), Some("video/mp4"));
        assert_eq!(whole.header("content-length"), Some(len.to_string().as_str()));
        assert_eq!(whole.header("accept-ranges"), Some("bytes"));
        assert_eq!(whole.header("set-cookie"), None, "no viewer cookie: nothing is tracked");
        assert!(whole.body == bytes, "{protocol:?}: the original bytes");

        let part = app.fetch(protocol, Method::GET, &path, &[("range", "bytes=100-199")]).await;
        assert_eq!(part.status, 206, "{protocol:?}");
        assert_eq!(part.header("content-range"), Some(format!("bytes 100-199/{len}").as_str()));
        assert_eq!(part.header("content-disposition"), Some(disposition));
        assert!(part.body == bytes[100..200], "{protocol:?}");

        // The way a download manager resumes: the rest, from an offset, twice.
        let rest =
            app.fetch(protocol, Method::GET, &path, &[("range", &format!("bytes={}-", len / 2))]).await;
        assert_eq!((rest.status.as_u16(), rest.body.len()), (206, len - len / 2));
    }
    // A player watching it once is the only session there is: the downloads reached nothing.
    play(&app, Protocol::Http2, &url, &new_viewer(&app, &id).await).await;
    let views = eventually(&app, &id, |v| v["views"] == 1).await;
    assert_eq!(views["sessions"].as_array().unwrap().len(), 1, "{views}");
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(crate::views::views_of(&app, &id).await["views"], 1);
}

/// Serves one HTML page, `page`, to every request on a fresh 127.0.0.1 port: another site (a
/// different host than `localhost`, so another origin and another site) that embeds the player.
async fn serve_host_page(page: String) -> std::net::SocketAddr {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let page = page.clone();
            tokio::spawn(async move {
                let mut request = Vec::new();
                let mut buffer = [0u8; 1024];
                while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                    match socket.read(&mut buffer).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => request.extend_from_slice(&buffer[..n]),
                    }
                }
                let head = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: text/html; charset=utf-8\r\ncontent-length: {}\r\n\
                     connection: close\r\n\r\n",
                    page.len()
                );
                let _ = socket.write_all(head.as_bytes()).await;
                let _ = socket.write_all(page.as_bytes()).await;
            });
        }
    });
    addr
}

#[tokio::test]
async fn chromium_plays_the_embed_framed_by_another_site() {
    let Some(binary) = chromium() else { return };
    let app = spawn_on_localhost().await;
    let (flags, _) = printed_chrome_command(&app);
    let (id, _) = sample(&app).await;
    let embed = app.tls_url(&format!("/embed/{id}"));
    let host = serve_host_page(format!(
        "<!doctype html><title>another site</title><iframe src=\"{embed}\" width=\"640\" height=\"360\"></iframe>"
    ))
    .await;
    let mut browser = Browser::launch(binary, &flags, false).await;
    let before = metric(&app, "kino_partial_responses_total{protocol=\"h2\"}").await;
    browser.open(&format!("http://{host}/")).await;
    // The frame's document is another origin's, out of this page's reach: the server's side
    // says whether the framed player fetched its video (a blocked frame loads nothing).
    let start = std::time::Instant::now();
    loop {
        let ranges = metric(&app, "kino_partial_responses_total{protocol=\"h2\"}").await;
        if ranges > before {
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(20), "the framed player never fetched its video");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(browser.eval("document.querySelector('iframe').contentDocument").await, Value::Null);
    browser.screenshot("embed.png").await;

    // Opened on its own, the page shows its inline style took (the CSP allows it by its hash).
    browser.open(&embed).await;
    let style = "[getComputedStyle(document.querySelector('video')).objectFit, document.body.style.length, \
        getComputedStyle(document.body).margin]";
    assert_eq!(browser.eval(style).await, json!(["contain", 0, "0px"]));
}
