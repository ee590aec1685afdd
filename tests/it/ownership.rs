//! Ownership of videos through the real server: the owner recorded by multipart and tus uploads,
//! `PATCH`/`DELETE /api/videos/{id}` for owners and admins, deletion leaving nothing behind,
//! visibility (listing, 404s, signed expiring stream URLs over every protocol), and the watch
//! page's edit and delete forms through method override and CSRF.

use base64::Engine;
use base64::engine::general_purpose::{STANDARD as B64, URL_SAFE_NO_PAD};
use bytes::Bytes;
use http::Method;
use serde_json::{Value, json};

use crate::common::{ALL_PROTOCOLS, Protocol, TestApp, spawn_app, spawn_app_with};
use crate::snapshot::Snapshot;

const PASSWORD: &str = "a long passphrase";

/// The faststart sample made unique by a trailing `free` box (the library stores each content
/// once, so every upload of a test needs bytes of its own).
fn clip(seed: u8) -> Vec<u8> {
    let mut bytes = std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/media/sample-h264.mp4")).unwrap();
    bytes.extend_from_slice(&[0, 0, 0, 16]);
    bytes.extend_from_slice(b"free");
    bytes.extend_from_slice(&[seed; 8]);
    bytes
}

pub(crate) fn json_of(response: &Snapshot) -> Value {
    serde_json::from_slice(&response.body).unwrap_or_else(|_| panic!("not JSON: {response:?}"))
}

fn text(response: &Snapshot) -> &str {
    std::str::from_utf8(&response.body).unwrap()
}

/// A person with an account: their id, a bearer header, and a signed-in session cookie.
pub(crate) struct Person {
    pub(crate) id: String,
    pub(crate) bearer: String,
    pub(crate) cookie: String,
}

/// Signs `name@example.org` up (the first account is admin, later ones viewers) and, for
/// `uploader`, gives them the role on the real `kino user role`.
pub(crate) async fn person(app: &TestApp, name: &str, uploader: bool) -> Person {
    let email = format!("{name}@example.org");
    let body = json!({"email": email, "password": PASSWORD, "display_name": name});
    let headers = [("content-type", "application/json")];
    let signed_up =
        app.send(Protocol::Http2, Method::POST, "/api/users", &headers, body.to_string().into()).await;
    assert_eq!(signed_up.status, 201, "{signed_up:?}");
    let cookie = signed_up
        .headers
        .iter()
        .find(|(n, v)| n == "set-cookie" && v.contains("kino_session="))
        .map(|(_, v)| v.split(';').next().unwrap().to_owned())
        .expect("sign-up signs in");
    if uploader {
        let data = app.data_dir();
        let role = crate::cli::kino(
            &data,
            &["user", "role", &email, "uploader", "--data-dir", data.to_str().unwrap()],
            &[],
        )
        .output()
        .unwrap();
        assert!(role.status.success(), "{}", String::from_utf8_lossy(&role.stderr));
    }
    let body = json!({"email": email, "password": PASSWORD});
    let pair =
        app.send(Protocol::Http2, Method::POST, "/api/auth/token", &headers, body.to_string().into()).await;
    assert_eq!(pair.status, 200, "{pair:?}");
    Person {
        id: json_of(&signed_up)["user"]["id"].as_str().unwrap().to_owned(),
        bearer: format!("Bearer {}", json_of(&pair)["access_token"].as_str().unwrap()),
        cookie,
    }
}

/// A multipart upload of `clip(seed)` as `who`; the video's JSON.
pub(crate) async fn upload(app: &TestApp, who: Option<&Person>, seed: u8) -> Value {
    let form = reqwest::multipart::Form::new()
        .part("file", reqwest::multipart::Part::bytes(clip(seed)).file_name("clip.mp4"));
    let mut request = app.h2().post(app.tls_url("/api/videos")).multipart(form);
    if let Some(who) = who {
        request = request.header("authorization", &who.bearer);
    }
    let response = Snapshot::of(request.send().await.unwrap()).await;
    assert_eq!(response.status, 201, "{response:?}");
    json_of(&response)
}

/// A request with `who`'s bearer token, if anyone.
async fn call(
    app: &TestApp,
    protocol: Protocol,
    method: Method,
    path: &str,
    who: Option<&Person>,
    body: Option<Value>,
) -> Snapshot {
    let mut headers = vec![("accept", "application/json")];
    if let Some(who) = who {
        headers.push(("authorization", &who.bearer));
    }
    let body = match body {
        Some(body) => {
            headers.push(("content-type", "application/json"));
            Bytes::from(body.to_string())
        }
        None => Bytes::new(),
    };
    app.send(protocol, method, path, &headers, body).await
}

async fn patch(app: &TestApp, protocol: Protocol, id: &str, who: Option<&Person>, body: Value) -> Snapshot {
    call(app, protocol, Method::PATCH, &format!("/api/videos/{id}"), who, Some(body)).await
}

pub(crate) async fn set_visibility(app: &TestApp, id: &str, who: &Person, visibility: &str) {
    let answer = patch(app, Protocol::Http2, id, Some(who), json!({"visibility": visibility})).await;
    assert_eq!(answer.status, 200, "{answer:?}");
}

/// The ids of the public listing.
async fn listed(app: &TestApp) -> Vec<String> {
    let page =
        json_of(&call(app, Protocol::Http2, Method::GET, "/api/videos?per_page=100", None, None).await);
    page["videos"].as_array().unwrap().iter().map(|v| v["id"].as_str().unwrap().to_owned()).collect()
}

async fn database(app: &TestApp) -> sqlx::SqlitePool {
    sqlx::SqlitePool::connect(&format!("sqlite://{}", app.data_dir().join("kino.db").display()))
        .await
        .unwrap()
}

#[tokio::test]
async fn uploads_by_multipart_and_tus_are_owned_by_who_sent_them() {
    let app = spawn_app().await;
    let _admin = person(&app, "ada", false).await;
    let bob = person(&app, "bob", true).await;

    let video = upload(&app, Some(&bob), 1).await;
    assert_eq!(video["owner"], json!({"id": bob.id, "display_name": "bob"}));
    assert_eq!((video["visibility"].as_str(), video["description"].as_str()), (Some("public"), Some("")));

    // tus, created and finished in one request over HTTP/3 with the token.
    let bytes = clip(2);
    let length = bytes.len().to_string();
    let metadata = format!("title {}", B64.encode("By tus"));
    let headers = [
        ("tus-resumable", "1.0.0"),
        ("upload-length", length.as_str()),
        ("upload-metadata", metadata.as_str()),
        ("content-type", "application/offset+octet-stream"),
        ("authorization", bob.bearer.as_str()),
    ];
    let created = app.send(Protocol::Http3, Method::POST, "/api/uploads", &headers, Bytes::from(bytes)).await;
    assert_eq!(created.status, 201, "{created:?}");
    let location = created.header("video-location").expect("the upload became a video").to_owned();
    let tus_video = json_of(&call(&app, Protocol::Http1, Method::GET, &location, None, None).await);
    assert_eq!((tus_video["title"].as_str(), &tus_video["owner"]["id"]), (Some("By tus"), &json!(bob.id)));

    // The same bytes again: the same video for its owner, a video of their own for anyone else.
    let carol = person(&app, "carol", true).await;
    let again = |who: &Person| {
        let form = reqwest::multipart::Form::new()
            .part("file", reqwest::multipart::Part::bytes(clip(1)).file_name("clip.mp4"));
        app.h2().post(app.tls_url("/api/videos")).header("authorization", &who.bearer).multipart(form).send()
    };
    let same = again(&bob).await.unwrap();
    assert_eq!(same.status(), 200);
    assert_eq!(same.json::<Value>().await.unwrap()["id"], video["id"]);
    let theirs = again(&carol).await.unwrap();
    assert_eq!(theirs.status(), 201);
    let theirs = theirs.json::<Value>().await.unwrap();
    assert_ne!(theirs["id"], video["id"]);
    assert_eq!(theirs["owner"]["id"], json!(carol.id));

    // Media found in the media roots is owned by no one.
    let page =
        json_of(&call(&app, Protocol::Http2, Method::GET, "/api/videos?per_page=100", None, None).await);
    let sample = page["videos"].as_array().unwrap().iter().find(|v| v["title"] == "sample h264").unwrap();
    assert_eq!(sample["owner"], Value::Null);
    let owners: Vec<(String, Option<String>)> = sqlx::query_as("SELECT file_id, owner_id FROM videos")
        .fetch_all(&database(&app).await)
        .await
        .unwrap();
    assert!(owners.contains(&(video["id"].as_str().unwrap().to_owned(), Some(bob.id.clone()))), "{owners:?}");
}

#[tokio::test]
async fn patch_is_for_the_owner_and_admins_and_says_which_field_is_wrong() {
    let app = spawn_app().await;
    let admin = person(&app, "ada", false).await;
    let bob = person(&app, "bob", true).await;
    let carol = person(&app, "carol", true).await;
    let id = upload(&app, Some(&bob), 1).await["id"].as_str().unwrap().to_owned();

    for (n, protocol) in ALL_PROTOCOLS.into_iter().enumerate() {
        let title = format!("Bob's take {n}");
        let edited =
            patch(&app, protocol, &id, Some(&bob), json!({"title": title, "description": "Shot at dawn."}))
                .await;
        assert_eq!(edited.status, 200, "{protocol:?}: {edited:?}");
        let video = json_of(&edited);
        assert_eq!(
            (video["title"].as_str(), video["description"].as_str()),
            (Some(&*title), Some("Shot at dawn."))
        );
        assert_eq!(video["visibility"], "public", "a field left out stays as it was");

        let other = patch(&app, protocol, &id, Some(&carol), json!({"title": "Mine now"})).await;
        assert_eq!(other.status, 403, "{protocol:?}: {other:?}");
        assert!(json_of(&other)["error"]["message"].as_str().unwrap().contains("owner or an admin"));
        let anonymous = patch(&app, protocol, &id, None, json!({"title": "Anyone's"})).await;
        assert_eq!(anonymous.status, 401, "{protocol:?}: {anonymous:?}");
    }
    let by_admin = patch(&app, Protocol::Http2, &id, Some(&admin), json!({"visibility": "unlisted"})).await;
    assert_eq!(by_admin.status, 200, "{by_admin:?}");
    assert_eq!(
        (json_of(&by_admin)["visibility"].as_str(), json_of(&by_admin)["title"].as_str()),
        (Some("unlisted"), Some("Bob's take 2"))
    );

    for (body, field) in [
        (json!({"visibility": "secret"}), "visibility: must be public, unlisted or private"),
        (json!({"title": "   "}), "title: must be 1 to 300 characters"),
        (json!({"description": "x".repeat(5001)}), "description: must be at most 5000 characters"),
        (json!({"title": 7}), "title"),
        (json!({"owner": "carol"}), "owner"),
    ] {
        let refused = patch(&app, Protocol::Http2, &id, Some(&bob), body.clone()).await;
        assert_eq!(refused.status, 422, "{body}: {refused:?}");
        let message = json_of(&refused)["error"]["message"].as_str().unwrap().to_owned();
        assert!(message.contains(field), "{body}: {message}");
    }
    let unknown = patch(&app, Protocol::Http2, "nosuchvideo", Some(&bob), json!({"title": "x"})).await;
    assert_eq!(unknown.status, 404, "{unknown:?}");
    let after =
        json_of(&call(&app, Protocol::Http2, Method::GET, &format!("/api/videos/{id}"), None, None).await);
    assert_eq!(after["title"], "Bob's take 2", "refused edits changed nothing");
}

#[tokio::test]
async fn delete_removes_the_file_and_every_row_and_refuses_media_root_files() {
    // The views API tells when the view is in: open to anyone for the test.
    let app = spawn_app_with(|c| {
        crate::views::open(c);
        c.views.pace = 0.0;
    })
    .await;
    let admin = person(&app, "ada", false).await;
    let bob = person(&app, "bob", true).await;
    let carol = person(&app, "carol", true).await;
    let video = upload(&app, Some(&bob), 1).await;
    let kept = upload(&app, Some(&bob), 2).await["id"].as_str().unwrap().to_owned();
    let id = video["id"].as_str().unwrap().to_owned();
    let url = video["stream_url"].as_str().unwrap().to_owned();

    // View data: a counted view and its session.
    let cookie = crate::views::new_viewer(&app, &id).await;
    crate::views::play(&app, Protocol::Http2, &url, &cookie).await;
    crate::views::eventually(&app, &id, |v| v["views"] == 1 && crate::views::settled(v)).await;
    let db = database(&app).await;
    let path: String =
        sqlx::query_scalar("SELECT path FROM files WHERE id = ?").bind(&id).fetch_one(&db).await.unwrap();
    let library = app.data_dir().join("library");
    assert!(library.join(&path).exists());

    let path_of = format!("/api/videos/{id}");
    assert_eq!(call(&app, Protocol::Http1, Method::DELETE, &path_of, None, None).await.status, 401);
    assert_eq!(call(&app, Protocol::Http1, Method::DELETE, &path_of, Some(&carol), None).await.status, 403);
    let deleted = call(&app, Protocol::Http3, Method::DELETE, &path_of, Some(&bob), None).await;
    assert_eq!(deleted.status, 204, "{deleted:?}");
    assert!(deleted.body.is_empty());

    for table in
        ["files WHERE id", "videos WHERE file_id", "views WHERE video_id", "view_sessions WHERE video_id"]
    {
        let left: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!("SELECT COUNT(*) FROM {table} = ?")))
            .bind(&id)
            .fetch_one(&db)
            .await
            .unwrap();
        assert_eq!(left, 0, "{table}");
    }
    assert!(!library.join(&path).exists(), "the file is gone");
    let files: Vec<_> = std::fs::read_dir(&library).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(files.len(), 1, "only the other upload is left: {files:?}");
    assert_eq!(call(&app, Protocol::Http2, Method::GET, &path_of, None, None).await.status, 404);
    assert_eq!(call(&app, Protocol::Http2, Method::GET, &url, None, None).await.status, 404);
    assert_eq!(call(&app, Protocol::Http2, Method::DELETE, &path_of, Some(&bob), None).await.status, 404);
    assert_eq!(
        call(&app, Protocol::Http2, Method::GET, &format!("/api/videos/{kept}"), None, None).await.status,
        200
    );

    // A video of the media roots is the admins', and its file is not kino's to delete.
    let (sample, _) = crate::views::sample(&app).await;
    let sample_path = format!("/api/videos/{sample}");
    assert_eq!(call(&app, Protocol::Http2, Method::DELETE, &sample_path, Some(&bob), None).await.status, 403);
    let refused = call(&app, Protocol::Http2, Method::DELETE, &sample_path, Some(&admin), None).await;
    assert_eq!(refused.status, 409, "{refused:?}");
    assert!(
        json_of(&refused)["error"]["message"]
            .as_str()
            .unwrap()
            .contains("remove the file from the media root")
    );
    assert_eq!(call(&app, Protocol::Http2, Method::GET, &sample_path, None, None).await.status, 200);
}

#[tokio::test]
async fn unlisted_videos_are_unlisted_and_private_ones_exist_only_for_their_owner_and_admins() {
    let app = spawn_app().await;
    let admin = person(&app, "ada", false).await;
    let bob = person(&app, "bob", true).await;
    let carol = person(&app, "carol", true).await;
    let public = upload(&app, Some(&bob), 1).await["id"].as_str().unwrap().to_owned();
    let unlisted = upload(&app, Some(&bob), 2).await["id"].as_str().unwrap().to_owned();
    let private = upload(&app, Some(&bob), 3).await["id"].as_str().unwrap().to_owned();
    set_visibility(&app, &unlisted, &bob, "unlisted").await;
    set_visibility(&app, &private, &bob, "private").await;

    let ids = listed(&app).await;
    assert!(ids.contains(&public) && !ids.contains(&unlisted) && !ids.contains(&private), "{ids:?}");
    let total =
        json_of(&call(&app, Protocol::Http2, Method::GET, "/api/videos", None, None).await)["total"].clone();
    assert_eq!(total.as_u64(), Some(ids.len() as u64), "the total counts what is listed");
    let library = app.fetch(Protocol::Http2, Method::GET, "/", &[]).await;
    assert!(text(&library).contains(&format!("/watch/{public}")));
    assert!(
        !text(&library).contains(&format!("/watch/{unlisted}"))
            && !text(&library).contains(&format!("/watch/{private}"))
    );
    assert!(text(&library).contains("bob · "), "cards name the owner");

    // Unlisted: anyone with the link.
    assert_eq!(app.fetch(Protocol::Http1, Method::GET, &format!("/watch/{unlisted}"), &[]).await.status, 200);
    let url = format!("/stream/{unlisted}.mp4");
    assert_eq!(app.fetch(Protocol::Http1, Method::GET, &url, &[("range", "bytes=0-9")]).await.status, 206);

    // Private: a 404 for nobody and for another user, as for a video that does not exist.
    for protocol in ALL_PROTOCOLS {
        for who in [None, Some(&carol)] {
            for path in [
                format!("/api/videos/{private}"),
                format!("/watch/{private}"),
                format!("/stream/{private}.mp4"),
                format!("/api/videos/{private}/views"),
            ] {
                let answer = call(&app, protocol, Method::GET, &path, who, None).await;
                assert_eq!(answer.status, 404, "{protocol:?} {path}: {answer:?}");
                assert_eq!(
                    json_of(&answer)["error"]["message"],
                    format!("nothing is at {}", path.trim_end_matches(".mp4"))
                );
            }
        }
    }
    let path: String = sqlx::query_scalar("SELECT path FROM files WHERE id = ?")
        .bind(&private)
        .fetch_one(&database(&app).await)
        .await
        .unwrap();
    assert_eq!(app.fetch(Protocol::Http2, Method::GET, &format!("/media/{path}"), &[]).await.status, 404);
    for who in [&bob, &admin] {
        let video =
            call(&app, Protocol::Http2, Method::GET, &format!("/api/videos/{private}"), Some(who), None)
                .await;
        assert_eq!(video.status, 200);
        assert!(
            json_of(&video)["stream_url"].as_str().unwrap().contains("?exp="),
            "signed for its owner and admins"
        );
        let stream =
            call(&app, Protocol::Http2, Method::GET, &format!("/stream/{private}.mp4"), Some(who), None)
                .await;
        assert_eq!(stream.status, 200, "a signed-in owner streams it without a signature");
        assert_eq!(stream.header("cache-control"), Some("private, max-age=86400"));
    }
    let watch = app
        .fetch(Protocol::Http2, Method::GET, &format!("/watch/{private}"), &[("cookie", &bob.cookie)])
        .await;
    assert_eq!(watch.status, 200);
    assert!(
        text(&watch).contains(&format!("src=\"/stream/{private}.mp4?exp=")),
        "the player's URL is signed"
    );

    let mine = app.fetch(Protocol::Http2, Method::GET, "/me/videos", &[("cookie", &bob.cookie)]).await;
    for id in [&public, &unlisted, &private] {
        assert!(text(&mine).contains(&format!("/watch/{id}#edit")), "{id}");
    }
    assert!(text(&mine).contains("<td>private</td>") && text(&mine).contains("<td>unlisted</td>"));
    let not_mine = app.fetch(Protocol::Http2, Method::GET, "/me/videos", &[("cookie", &carol.cookie)]).await;
    assert!(!text(&not_mine).contains(&public), "carol has none");
    let anonymous = Snapshot::of(browser(&app).get(app.tls_url("/me/videos")).send().await.unwrap()).await;
    assert_eq!((anonymous.status.as_u16(), anonymous.header("location")), (303, Some("/signin")));
}

/// `?exp=&sig=` for `id` expiring at `exp`, signed as the server does with the test secret.
fn sign(id: &str, exp: i64) -> String {
    let salt = ring::hkdf::Salt::new(ring::hkdf::HKDF_SHA256, b"kino key derivation v1");
    let prk = salt.extract(b"test-secret-test-secret-test-secret");
    let mut key = [0u8; 32];
    prk.expand(&[b"kino/stream-url"], ring::hkdf::HKDF_SHA256).unwrap().fill(&mut key).unwrap();
    let tag = ring::hmac::sign(
        &ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &key),
        format!("{id}:{exp}").as_bytes(),
    );
    format!("exp={exp}&sig={}", URL_SAFE_NO_PAD.encode(tag.as_ref()))
}

#[tokio::test]
async fn a_signed_url_streams_a_private_video_over_every_protocol_and_counts_views() {
    let app = spawn_app_with(|c| c.views.pace = 0.0).await;
    let _admin = person(&app, "ada", false).await;
    let bob = person(&app, "bob", true).await;
    let id = upload(&app, Some(&bob), 1).await["id"].as_str().unwrap().to_owned();
    set_visibility(&app, &id, &bob, "private").await;
    let video = json_of(
        &call(&app, Protocol::Http2, Method::GET, &format!("/api/videos/{id}"), Some(&bob), None).await,
    );
    let signed = video["stream_url"].as_str().unwrap().to_owned();
    let size = clip(1).len();

    let (sample, _) = crate::views::sample(&app).await;
    for protocol in ALL_PROTOCOLS {
        // No cookie, no token: the URL alone.
        let part = app.fetch(protocol, Method::GET, &signed, &[("range", "bytes=100-199")]).await;
        assert_eq!(part.status, 206, "{protocol:?}: {part:?}");
        assert_eq!(part.body.as_ref(), &clip(1)[100..200]);
        assert_eq!(part.header("content-range"), Some(&*format!("bytes 100-199/{size}")));
        assert_eq!(part.header("cache-control"), Some("private, max-age=86400"), "no shared cache keeps it");
        // A viewer's cookie from a public page, then a player's requests: the view counts.
        let cookie = crate::views::new_viewer(&app, &sample).await;
        crate::views::play(&app, protocol, &signed, &cookie).await;
    }
    let views_path = format!("/api/videos/{id}/views");
    for _ in 0..100 {
        let views = json_of(&call(&app, Protocol::Http2, Method::GET, &views_path, Some(&bob), None).await);
        if views["views"] == 3 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let views = json_of(&call(&app, Protocol::Http2, Method::GET, &views_path, Some(&bob), None).await);
    assert_eq!(views["views"], 3, "one view per protocol: {views}");

    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
    let (base, query) = signed.split_once('?').unwrap();
    let sig = query.split("sig=").nth(1).unwrap();
    let tampered = format!("{base}?exp={}&sig={sig}", now + 999_999);
    let other_video = format!("/stream/{sample}.mp4?{query}");
    let expired = format!("{base}?{}", sign(&id, now - 10));
    let still_good = format!("{base}?{}", sign(&id, now + 60));
    for protocol in ALL_PROTOCOLS {
        for (url, message) in [
            (&tampered, "signature does not match"),
            (&other_video, "signature does not match"),
            (&expired, "expired"),
            (&format!("{base}?exp={now}"), "needs both exp"),
        ] {
            let headers = [("range", "bytes=0-9"), ("accept", "application/json")];
            let refused = app.fetch(protocol, Method::GET, url, &headers).await;
            assert_eq!(refused.status, 403, "{protocol:?} {url}: {refused:?}");
            assert!(json_of(&refused)["error"]["message"].as_str().unwrap().contains(message), "{refused:?}");
        }
        assert_eq!(
            app.fetch(protocol, Method::GET, &still_good, &[("range", "bytes=0-9")]).await.status,
            206
        );
    }
}

/// A browser-like HTTP/2 client that shows redirects instead of following them.
fn browser(app: &TestApp) -> reqwest::Client {
    reqwest::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(&app.ca_pem).unwrap()])
        .resolve("localhost", app.https)
        .redirect(reqwest::redirect::Policy::none())
        .http2_prior_knowledge()
        .timeout(crate::common::TEST_TIMEOUT)
        .build()
        .unwrap()
}

async fn page(app: &TestApp, path: &str, cookie: &str) -> Snapshot {
    Snapshot::of(browser(app).get(app.tls_url(path)).header("cookie", cookie).send().await.unwrap()).await
}

/// A form post over HTTP/2 with the session cookie and this site's Origin.
async fn post_form(app: &TestApp, path: &str, cookie: &str, form: &[(&str, &str)]) -> Snapshot {
    let response = browser(app)
        .post(app.tls_url(path))
        .header("cookie", cookie)
        .header("origin", format!("https://localhost:{}", app.https.port()))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(serde_urlencoded::to_string(form).unwrap())
        .send()
        .await
        .unwrap();
    Snapshot::of(response).await
}

/// The `_csrf` value of the first form on a page.
fn form_token(html: &str) -> String {
    let at = html.find("name=\"_csrf\" value=\"").expect("a CSRF field") + "name=\"_csrf\" value=\"".len();
    html[at..].split('"').next().unwrap().to_owned()
}

#[tokio::test]
async fn the_watch_page_edits_and_deletes_through_forms_with_method_override_over_http2() {
    let app = spawn_app().await;
    let _admin = person(&app, "ada", false).await;
    let bob = person(&app, "bob", true).await;
    let carol = person(&app, "carol", true).await;

    // The upload form, signed in: its flash is on the watch page it lands on.
    let upload_page = page(&app, "/upload", &bob.cookie).await;
    let token = form_token(text(&upload_page));
    let form = reqwest::multipart::Form::new()
        .text("_csrf", token.clone())
        .text("title", "From the form")
        .part("file", reqwest::multipart::Part::bytes(clip(1)).file_name("clip.mp4"));
    let uploaded = browser(&app)
        .post(app.tls_url("/api/videos"))
        .header("cookie", &bob.cookie)
        .header("origin", format!("https://localhost:{}", app.https.port()))
        .header("accept", "text/html")
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(uploaded.status(), 303);
    let watch_path = uploaded.headers()["location"].to_str().unwrap().to_owned();
    let id = watch_path.trim_start_matches("/watch/").to_owned();
    let watch = page(&app, &watch_path, &bob.cookie).await;
    let html = text(&watch);
    assert!(html.contains("<p class=\"note flash\" role=\"status\">Uploaded</p>"), "{html}");
    assert!(html.contains("<dt>Owner</dt><dd>bob</dd>"), "{html}");
    assert!(
        html.contains("name=\"_method\" value=\"PATCH\"")
            && html.contains("name=\"_method\" value=\"DELETE\"")
    );
    let token = form_token(html);
    // Someone else sees no forms.
    let theirs = page(&app, &watch_path, &carol.cookie).await;
    assert!(!text(&theirs).contains("name=\"_method\""), "no edit form for another user");

    let edit = [
        ("_method", "PATCH"),
        ("title", "Renamed"),
        ("description", "Line one\r\nLine two"),
        ("visibility", "unlisted"),
    ];
    let no_token = post_form(&app, &watch_path, &bob.cookie, &edit).await;
    assert_eq!(no_token.status, 403, "CSRF: {no_token:?}");
    let with_token: Vec<_> = edit.iter().copied().chain([("_csrf", token.as_str())]).collect();
    let carol_token = form_token(text(&page(&app, "/upload", &carol.cookie).await));
    let by_carol = post_form(
        &app,
        &watch_path,
        &carol.cookie,
        &[("_method", "PATCH"), ("title", "x"), ("_csrf", &carol_token)],
    )
    .await;
    assert_eq!(by_carol.status, 403, "{by_carol:?}");
    let saved = post_form(&app, &watch_path, &bob.cookie, &with_token).await;
    assert_eq!(
        (saved.status.as_u16(), saved.header("location")),
        (303, Some(watch_path.as_str())),
        "{saved:?}"
    );
    let after = page(&app, &watch_path, &bob.cookie).await;
    let html = text(&after);
    assert!(html.contains("<p class=\"note flash\" role=\"status\">Saved</p>"), "{html}");
    assert!(
        html.contains("<h1>Renamed</h1>")
            && html.contains("<p class=\"description\">Line one<br>Line two</p>"),
        "{html}"
    );
    assert!(html.contains("<option value=\"unlisted\" selected>"), "{html}");
    let bad = post_form(
        &app,
        &watch_path,
        &bob.cookie,
        &[("_method", "PATCH"), ("visibility", "everyone"), ("_csrf", &token)],
    )
    .await;
    assert_eq!(bad.status, 422);
    assert!(text(&bad).contains("visibility: must be public, unlisted or private"), "{bad:?}");

    let deleted =
        post_form(&app, &watch_path, &bob.cookie, &[("_method", "DELETE"), ("_csrf", &token)]).await;
    assert_eq!(
        (deleted.status.as_u16(), deleted.header("location")),
        (303, Some("/me/videos")),
        "{deleted:?}"
    );
    let mine = page(&app, "/me/videos", &bob.cookie).await;
    assert!(text(&mine).contains("<p class=\"note flash\" role=\"status\">Deleted</p>"), "{mine:?}");
    assert!(!text(&mine).contains(&id));
    assert_eq!(page(&app, &watch_path, &bob.cookie).await.status, 404);
}

#[tokio::test]
async fn the_upload_page_asks_to_sign_in_first_and_viewers_for_the_uploader_role() {
    let app = spawn_app().await;
    let admin = person(&app, "ada", false).await;
    let viewer = person(&app, "vic", false).await;
    let anonymous = app.fetch(Protocol::Http2, Method::GET, "/upload", &[]).await;
    assert!(text(&anonymous).contains("Sign in first") && text(&anonymous).contains("href=\"/signin\""));
    assert!(!text(&anonymous).contains("multipart/form-data"));
    let as_viewer = app.fetch(Protocol::Http2, Method::GET, "/upload", &[("cookie", &viewer.cookie)]).await;
    assert!(text(&as_viewer).contains("uploading needs the uploader role"), "{as_viewer:?}");
    assert!(!text(&as_viewer).contains("multipart/form-data"));
    let as_admin =
        app.fetch(Protocol::Http2, Method::GET, "/upload", &[("authorization", &admin.bearer)]).await;
    assert!(text(&as_admin).contains("action=\"/api/videos\" enctype=\"multipart/form-data\""));
}
