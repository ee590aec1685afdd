//! Who owns an uploaded image and who may change it: the uploader is recorded, its owner and the
//! admins edit the alt text and delete it (`PATCH`/`DELETE /api/images/{id}`), everyone else is
//! refused, and a delete leaves no file, row or cached result behind.

use std::path::Path;
use std::time::Duration;

use bytes::Bytes;
use http::Method;
use serde_json::{Value, json};

use crate::common::{ALL_PROTOCOLS, Protocol, TestApp, spawn_app};
use crate::images::sample;
use crate::snapshot::Snapshot;

pub(crate) const PASSWORD: &str = "a long passphrase";
const BOUNDARY: &str = "kino-image-boundary";

fn body_json(answer: &Snapshot) -> Value {
    serde_json::from_slice(&answer.body).unwrap_or_else(|_| panic!("not JSON: {answer:?}"))
}

/// Signs `email` up over the API; the account's JSON.
pub(crate) async fn sign_up(app: &TestApp, email: &str, name: &str) -> Value {
    let body = json!({ "email": email, "password": PASSWORD, "display_name": name });
    let headers = [("content-type", "application/json")];
    let answer =
        app.send(Protocol::Http2, Method::POST, "/api/users", &headers, Bytes::from(body.to_string())).await;
    assert_eq!(answer.status, 201, "{answer:?}");
    body_json(&answer)["user"].clone()
}

/// `Bearer <access token>` for `email`, from `POST /api/auth/token`.
pub(crate) async fn bearer(app: &TestApp, email: &str) -> String {
    let body = json!({ "email": email, "password": PASSWORD });
    let headers = [("content-type", "application/json")];
    let answer = app
        .send(Protocol::Http2, Method::POST, "/api/auth/token", &headers, Bytes::from(body.to_string()))
        .await;
    assert_eq!(answer.status, 200, "{answer:?}");
    format!("Bearer {}", body_json(&answer)["access_token"].as_str().unwrap())
}

/// Gives the account `email` a role with the real binary, as an operator would.
fn set_role(app: &TestApp, email: &str, role: &str) {
    let data = app.data_dir();
    let args = ["user", "role", email, role, "--data-dir", data.to_str().unwrap()];
    let output = crate::cli::kino(data.parent().unwrap(), &args, &[]).output().unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
}

/// Three accounts: an admin (the first), an uploader and a viewer; their bearer headers and ids.
struct People {
    admin: String,
    uploader: String,
    uploader_id: String,
    viewer: String,
}

async fn people(app: &TestApp) -> People {
    sign_up(app, "admin@example.org", "Admin").await;
    let uploader = sign_up(app, "up@example.org", "Uploader Una").await;
    sign_up(app, "viewer@example.org", "Viewer Vic").await;
    set_role(app, "up@example.org", "uploader");
    People {
        admin: bearer(app, "admin@example.org").await,
        uploader: bearer(app, "up@example.org").await,
        uploader_id: uploader["id"].as_str().unwrap().to_owned(),
        viewer: bearer(app, "viewer@example.org").await,
    }
}

/// `method path` over `protocol`, as `authorization` (or anonymous), with an optional JSON body.
async fn call(
    app: &TestApp,
    protocol: Protocol,
    method: Method,
    path: &str,
    authorization: Option<&str>,
    body: Option<Value>,
) -> Snapshot {
    let mut headers = vec![("accept", "application/json")];
    if let Some(value) = authorization {
        headers.push(("authorization", value));
    }
    let body = match body {
        Some(json) => {
            headers.push(("content-type", "application/json"));
            Bytes::from(json.to_string())
        }
        None => Bytes::new(),
    };
    app.send(protocol, method, path, &headers, body).await
}

/// Uploads `image` as `authorization` over `protocol`: the status and the JSON answer.
async fn upload(app: &TestApp, protocol: Protocol, authorization: &str, image: &[u8]) -> (u16, Value) {
    let mut body =
        format!("--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"x.jpg\"\r\n\r\n")
            .into_bytes();
    body.extend_from_slice(image);
    body.extend_from_slice(format!("\r\n--{BOUNDARY}--\r\n").as_bytes());
    let content_type = format!("multipart/form-data; boundary={BOUNDARY}");
    let headers = [("content-type", content_type.as_str()), ("authorization", authorization)];
    let answer = app.send(protocol, Method::POST, "/api/images", &headers, Bytes::from(body)).await;
    (answer.status.as_u16(), body_json(&answer))
}

/// The status and the error message of a refusal, which must be JSON.
fn refusal(answer: &Snapshot) -> (u16, String) {
    let json = body_json(answer);
    (answer.status.as_u16(), json["error"]["message"].as_str().unwrap_or_default().to_owned())
}

#[tokio::test]
async fn the_owner_and_admins_edit_and_delete_an_image_and_everyone_else_is_refused_on_every_protocol() {
    let app = spawn_app().await;
    let who = people(&app).await;
    let graphic = sample("sample-graphic.png");
    for protocol in ALL_PROTOCOLS {
        let (status, image) = upload(&app, protocol, &who.uploader, &graphic).await;
        assert_eq!(status, 201, "{protocol:?}: {image}");
        assert_eq!(image["owner"], json!({ "id": who.uploader_id, "display_name": "Uploader Una" }));
        assert_eq!(image["alt"], Value::Null);
        let id = image["id"].as_str().unwrap().to_owned();
        let path = format!("/api/images/{id}");
        let shown = call(&app, protocol, Method::GET, &path, None, None).await;
        assert_eq!(body_json(&shown)["owner"]["display_name"], "Uploader Una", "{protocol:?}");

        let alt = json!({ "alt": "A red circle on white" });
        let anonymous = call(&app, protocol, Method::PATCH, &path, None, Some(alt.clone())).await;
        assert_eq!(refusal(&anonymous), (401, "sign in first: this needs an account".into()), "{protocol:?}");
        let viewer = call(&app, protocol, Method::PATCH, &path, Some(&who.viewer), Some(alt.clone())).await;
        assert_eq!(
            refusal(&viewer),
            (403, "only the image's owner or an admin may change or delete it".into()),
            "{protocol:?}"
        );
        let unknown = call(
            &app,
            protocol,
            Method::PATCH,
            "/api/images/nosuchimage",
            Some(&who.admin),
            Some(alt.clone()),
        )
        .await;
        assert_eq!(unknown.status, 404, "{protocol:?}");

        let owner = call(&app, protocol, Method::PATCH, &path, Some(&who.uploader), Some(alt)).await;
        assert_eq!(owner.status, 200, "{protocol:?}: {owner:?}");
        assert_eq!(body_json(&owner)["alt"], "A red circle on white");
        let admin = json!({ "alt": "  A red disc  " });
        let admin = call(&app, protocol, Method::PATCH, &path, Some(&who.admin), Some(admin)).await;
        assert_eq!((admin.status.as_u16(), body_json(&admin)["alt"].clone()), (200, json!("A red disc")));
        let shown = call(&app, protocol, Method::GET, &path, None, None).await;
        assert_eq!(body_json(&shown)["alt"], "A red disc", "{protocol:?}: the edit was stored");

        for (bad, says) in [
            (json!({ "alt": "x".repeat(501) }), "alt: must be at most 500 characters"),
            (json!({ "alt": "one\nline" }), "alt: must not contain control characters"),
            (json!({ "alt": 7 }), "alt: invalid type"),
            (json!({ "title": "no such field" }), "unknown field `title`"),
        ] {
            let refused = call(&app, protocol, Method::PATCH, &path, Some(&who.uploader), Some(bad)).await;
            let (status, message) = refusal(&refused);
            assert!(status == 422 && message.contains(says), "{protocol:?}: {status} {message}");
        }
        let cleared =
            call(&app, protocol, Method::PATCH, &path, Some(&who.uploader), Some(json!({ "alt": null })))
                .await;
        assert_eq!(body_json(&cleared)["alt"], Value::Null, "{protocol:?}");

        let anonymous = call(&app, protocol, Method::DELETE, &path, None, None).await;
        assert_eq!(anonymous.status, 401, "{protocol:?}");
        let viewer = call(&app, protocol, Method::DELETE, &path, Some(&who.viewer), None).await;
        assert_eq!(viewer.status, 403, "{protocol:?}");
        let deleted = call(&app, protocol, Method::DELETE, &path, Some(&who.uploader), None).await;
        assert_eq!(deleted.status, 204, "{protocol:?}: {deleted:?}");
        assert!(deleted.body.is_empty());
        let again = call(&app, protocol, Method::DELETE, &path, Some(&who.uploader), None).await;
        assert_eq!(again.status, 404, "{protocol:?}");
        let gone = call(&app, protocol, Method::GET, &format!("/images/{id}"), None, None).await;
        assert_eq!(gone.status, 404, "{protocol:?}");

        // An admin deletes what someone else uploaded.
        let (_, image) = upload(&app, protocol, &who.uploader, &graphic).await;
        let path = format!("/api/images/{}", image["id"].as_str().unwrap());
        assert_eq!(call(&app, protocol, Method::DELETE, &path, Some(&who.admin), None).await.status, 204);
    }
}

/// The names in `dir`, sorted; empty when it does not exist.
fn names(dir: &Path) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(dir) else { return Vec::new() };
    let mut names: Vec<String> =
        entries.map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    names.sort();
    names
}

/// The ids in the `images` table.
async fn image_rows(app: &TestApp) -> Vec<String> {
    let options = sqlx::sqlite::SqliteConnectOptions::new().filename(app.data_dir().join("kino.db"));
    let pool = sqlx::sqlite::SqlitePoolOptions::new().max_connections(1).connect_with(options).await.unwrap();
    let ids = sqlx::query_scalar("SELECT id FROM images ORDER BY id").fetch_all(&pool).await.unwrap();
    pool.close().await;
    ids
}

/// Waits until the on-demand result of `id` is on disk (it is written in the background).
async fn disk_cached(app: &TestApp, id: &str) {
    let cache = app.data_dir().join("images").join(id).join("cache");
    for _ in 0..100 {
        if !names(&cache).is_empty() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("no on-demand result was written for {id}");
}

#[tokio::test]
async fn a_delete_removes_the_master_every_variant_the_disk_cache_and_the_row() {
    let app = spawn_app().await;
    let who = people(&app).await;
    let photo = sample("sample-photo.jpg");
    let (_, kept) = upload(&app, Protocol::Http2, &who.uploader, &photo).await;
    let (_, doomed) = upload(&app, Protocol::Http2, &who.uploader, &photo).await;
    let (kept, doomed) = (kept["id"].as_str().unwrap(), doomed["id"].as_str().unwrap());
    let rendition = format!("/images/{doomed}?w=200&h=200&fit=cover&fmt=png");
    assert_eq!(call(&app, Protocol::Http2, Method::GET, &rendition, None, None).await.status, 200);
    disk_cached(&app, doomed).await;
    let store = app.data_dir().join("images");
    assert_eq!(
        names(&store.join(doomed)),
        ["cache", "master.jpg", "w320.jpg", "w320.webp", "w640.jpg", "w640.webp"],
        "what there is to delete"
    );
    let mut both = vec![kept.to_owned(), doomed.to_owned()];
    both.sort();
    assert_eq!(names(&store), both);
    assert_eq!(image_rows(&app).await, both);

    let path = format!("/api/images/{doomed}");
    assert_eq!(call(&app, Protocol::Http2, Method::DELETE, &path, Some(&who.admin), None).await.status, 204);
    assert_eq!(names(&store), [kept], "no directory left, none half-deleted under another name");
    assert_eq!(image_rows(&app).await, [kept]);
    // The rendition was in the memory cache too: it is not served from there either.
    assert_eq!(call(&app, Protocol::Http2, Method::GET, &rendition, None, None).await.status, 404);
    let kept_variant = format!("/images/{kept}?w=320&fmt=webp");
    assert_eq!(call(&app, Protocol::Http2, Method::GET, &kept_variant, None, None).await.status, 200);
}

#[tokio::test]
async fn a_delete_racing_renditions_either_waits_its_turn_or_leaves_nothing_behind() {
    let app = spawn_app().await;
    let who = people(&app).await;
    let photo = sample("sample-photo.jpg");
    let store = app.data_dir().join("images");
    for round in 0..3 {
        let (_, image) = upload(&app, Protocol::Http2, &who.uploader, &photo).await;
        let id = image["id"].as_str().unwrap().to_owned();
        // Sizes nobody asked for yet: each one decodes the master on the CPU pool.
        let renders: Vec<_> = (0..6)
            .map(|i| {
                let (app, path) = (&app, format!("/images/{id}?w={}&fmt=jpeg", 101 + round * 10 + i));
                async move { call(app, Protocol::Http2, Method::GET, &path, None, None).await.status.as_u16() }
            })
            .collect();
        let path = format!("/api/images/{id}");
        let delete = async {
            tokio::time::sleep(Duration::from_millis(5)).await;
            let first = call(&app, Protocol::Http2, Method::DELETE, &path, Some(&who.uploader), None);
            let second = call(&app, Protocol::Http2, Method::DELETE, &path, Some(&who.uploader), None);
            let (first, second) = tokio::join!(first, second);
            [first.status.as_u16(), second.status.as_u16()]
        };
        let (statuses, deletes) = tokio::join!(futures_util::future::join_all(renders), delete);
        assert!(statuses.iter().all(|s| [200, 404].contains(s)), "round {round}: {statuses:?}");
        assert!(
            deletes.iter().filter(|&&s| s == 204).count() <= 1
                && deletes.iter().all(|s| [204, 404, 409].contains(s)),
            "round {round}: {deletes:?}"
        );
        if !deletes.contains(&204) {
            // Refused while a rendition ran (409): the image is whole, and goes once the last
            // one has written its disk cache.
            assert!(names(&store.join(&id)).contains(&"master.jpg".to_owned()), "round {round}");
            let mut later = 0;
            for _ in 0..100 {
                later = call(&app, Protocol::Http2, Method::DELETE, &path, Some(&who.uploader), None)
                    .await
                    .status
                    .as_u16();
                if later != 409 {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            assert_eq!(later, 204, "round {round}");
        }
        // Late disk-cache writes must not bring the directory back.
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert_eq!(names(&store), Vec::<String>::new(), "round {round}");
        assert_eq!(image_rows(&app).await, Vec::<String>::new(), "round {round}");
    }
}
