//! Captions through the real server: the sample caption files attached by the scanner, served
//! as WebVTT (SubRip converted) over HTTP/1.1, HTTP/2 and HTTP/3 and named by the watch page's
//! `<track>`s; uploads and deletes by the video's owner only; private videos' captions hidden.

use http::Method;
use serde_json::Value;

use crate::common::{ALL_PROTOCOLS, Protocol, TestApp, spawn_app};
use crate::ownership::{Person, json_of, person, set_visibility, upload};
use crate::snapshot::Snapshot;

/// `media/sample-h264.fr.srt` as the WebVTT a player gets: periods, CRLF gone, numbers as ids.
const FRENCH_AS_VTT: &str = "WEBVTT\n\n1\n00:00:01.000 --> 00:00:04.000\nUne mire de test qui compte.\n\n\
    2\n00:00:05.000 --> 00:00:09.500\nUn son de 440 Hz en dessous.\n\n\
    3\n00:00:12.000 --> 00:00:18.000\n<i>Vingt secondes, puis c\u{2019}est fini.</i>\n";

/// A SubRip file with a BOM and CRLF line ends, as Windows tools write it.
const UPLOADED_SRT: &[u8] = b"\xEF\xBB\xBF1\r\n00:00:02,000 --> 00:00:03,250\r\nHallo\r\n";

/// The id of the bundled H.264 sample.
async fn sample_id(app: &TestApp) -> String {
    let page = json_of(&app.fetch(Protocol::Http2, Method::GET, "/api/videos", &[]).await);
    let videos = page["videos"].as_array().unwrap();
    let sample = videos.iter().find(|v| v["title"] == "sample h264").expect("the sample is catalogued");
    sample["id"].as_str().unwrap().to_owned()
}

/// `GET path` as `who` (a bearer token) over `protocol`.
async fn get(app: &TestApp, protocol: Protocol, path: &str, who: Option<&Person>) -> Snapshot {
    let mut headers = vec![("accept", "application/json")];
    if let Some(who) = who {
        headers.push(("authorization", &who.bearer));
    }
    app.fetch(protocol, Method::GET, path, &headers).await
}

async fn captions_of(app: &TestApp, video: &str, who: Option<&Person>) -> Vec<Value> {
    let answer = get(app, Protocol::Http2, &format!("/api/videos/{video}/captions"), who).await;
    assert_eq!(answer.status, 200, "{answer:?}");
    json_of(&answer)["captions"].as_array().unwrap().clone()
}

/// `POST /api/videos/{video}/captions` with these form fields as `who`.
async fn post_caption(
    app: &TestApp,
    video: &str,
    who: Option<&Person>,
    fields: &[(&str, &[u8])],
) -> Snapshot {
    let mut form = reqwest::multipart::Form::new();
    for (name, value) in fields {
        let part = reqwest::multipart::Part::bytes(value.to_vec());
        let part = if *name == "file" { part.file_name("captions.srt") } else { part };
        form = form.part(name.to_string(), part);
    }
    let mut request = app.h2().post(app.tls_url(&format!("/api/videos/{video}/captions"))).multipart(form);
    request = request.header("accept", "application/json");
    if let Some(who) = who {
        request = request.header("authorization", &who.bearer);
    }
    Snapshot::of(request.send().await.unwrap()).await
}

async fn delete(app: &TestApp, path: &str, who: Option<&Person>) -> Snapshot {
    let mut headers = vec![("accept", "application/json")];
    if let Some(who) = who {
        headers.push(("authorization", &who.bearer));
    }
    app.fetch(Protocol::Http2, Method::DELETE, path, &headers).await
}

/// The refusal's status and its JSON message.
fn refusal(answer: &Snapshot) -> (u16, String) {
    (answer.status.as_u16(), json_of(answer)["error"]["message"].as_str().unwrap_or_default().to_owned())
}

#[tokio::test]
async fn the_scanner_attaches_both_sample_captions_and_serves_them_as_webvtt_over_every_protocol() {
    let app = spawn_app().await;
    let id = sample_id(&app).await;
    let captions = captions_of(&app, &id, None).await;
    let summary: Vec<(&str, &str, &str, &str, i64)> = captions
        .iter()
        .map(|c| {
            let field = |name: &str| c[name].as_str().unwrap();
            (field("lang"), field("label"), field("format"), field("source"), c["warnings"].as_i64().unwrap())
        })
        .collect();
    assert_eq!(summary, [("en", "English", "vtt", "media", 0), ("fr", "French", "srt", "media", 0)]);
    let english =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/media/sample-h264.en.vtt")).unwrap();
    for protocol in ALL_PROTOCOLS {
        for (caption, expected) in captions.iter().zip([english.as_str(), FRENCH_AS_VTT]) {
            let answer = get(&app, protocol, caption["url"].as_str().unwrap(), None).await;
            assert_eq!(answer.status, 200, "{protocol:?}: {answer:?}");
            assert_eq!(answer.header("content-type"), Some("text/vtt; charset=utf-8"), "{protocol:?}");
            assert_eq!(std::str::from_utf8(&answer.body).unwrap(), expected, "{protocol:?}");
        }
    }
    // The catalog still holds three videos: caption files are files, not videos.
    let page = json_of(&app.fetch(Protocol::Http2, Method::GET, "/api/videos", &[]).await);
    assert_eq!(page["total"], 3);
    // The watch page names both tracks, none of them on by default (no `default` attribute).
    let watch = app.fetch(Protocol::Http2, Method::GET, &format!("/watch/{id}"), &[]).await;
    let html = std::str::from_utf8(&watch.body).unwrap();
    for (caption, lang, label) in [(&captions[0], "en", "English"), (&captions[1], "fr", "French")] {
        let url = caption["url"].as_str().unwrap();
        let track = format!("<track kind=\"subtitles\" src=\"{url}\" srclang=\"{lang}\" label=\"{label}\">");
        assert!(html.contains(&track), "{track} in {html}");
    }
    // The media root is read-only: its captions are not deleted through the API.
    let admin = person(&app, "admin", false).await;
    let path = format!("/api/videos/{id}/captions/{}", captions[0]["id"].as_str().unwrap());
    assert_eq!(delete(&app, &path, Some(&admin)).await.status, 409);
    let as_srt = captions[0]["url"].as_str().unwrap().replace(".vtt", ".srt");
    for missing in ["/captions/nothing.vtt", as_srt.as_str()] {
        assert_eq!(get(&app, Protocol::Http2, missing, None).await.status, 404, "{missing}");
    }
}

#[tokio::test]
async fn the_owner_uploads_and_deletes_captions_and_everyone_else_is_refused() {
    let app = spawn_app().await;
    let _admin = person(&app, "admin", false).await;
    let alice = person(&app, "alice", true).await;
    let bob = person(&app, "bob", true).await;
    let video = upload(&app, Some(&alice), 41).await["id"].as_str().unwrap().to_owned();
    let good: &[(&str, &[u8])] = &[("file", UPLOADED_SRT), ("lang", b"de")];

    assert_eq!(post_caption(&app, &video, None, good).await.status, 401);
    let (status, message) = refusal(&post_caption(&app, &video, Some(&bob), good).await);
    assert_eq!((status, message.as_str()), (403, "only the video's owner or an admin may change it"));
    let malformed = b"1\n00:00:01,000 --> 00:00:02,000\nfine\n\n2\n00:00:03.5 --> 00:00:04,000\nbad\n";
    let (status, message) =
        refusal(&post_caption(&app, &video, Some(&alice), &[("file", malformed), ("lang", b"de")]).await);
    assert_eq!((status, message.as_str()), (422, "file: line 6: \"00:00:03.5\" is not a timestamp"));
    let (status, message) = refusal(
        &post_caption(&app, &video, Some(&alice), &[("file", UPLOADED_SRT), ("lang", b"german")]).await,
    );
    assert_eq!(
        (status, message.as_str()),
        (422, "lang: \"german\" is not a language tag such as en or pt-BR")
    );
    let (status, message) =
        refusal(&post_caption(&app, &video, Some(&alice), &[("file", UPLOADED_SRT)]).await);
    assert_eq!((status, message.as_str()), (422, "lang: required"));
    let long_label = vec![b'x'; 401];
    let fields: &[(&str, &[u8])] = &[("file", UPLOADED_SRT), ("lang", b"de"), ("label", &long_label)];
    let (status, message) = refusal(&post_caption(&app, &video, Some(&alice), fields).await);
    assert_eq!((status, message.as_str()), (422, "label: at most 400 bytes"));
    let huge = vec![b'x'; 2 * 1024 * 1024 + 1];
    let (status, message) =
        refusal(&post_caption(&app, &video, Some(&alice), &[("file", &huge), ("lang", b"de")]).await);
    assert_eq!((status, message.as_str()), (413, "file: caption files are limited to 2097152 bytes"));
    assert!(captions_of(&app, &video, None).await.is_empty(), "nothing refused was stored");

    let created = post_caption(&app, &video, Some(&alice), good).await;
    assert_eq!(created.status, 201, "{created:?}");
    let caption = json_of(&created);
    let url = caption["url"].as_str().unwrap().to_owned();
    assert_eq!(created.header("location"), Some(url.as_str()));
    let shown = (caption["lang"].as_str(), caption["label"].as_str(), caption["source"].as_str());
    assert_eq!(shown, (Some("de"), Some("German"), Some("upload")));
    let labelled = post_caption(
        &app,
        &video,
        Some(&alice),
        &[("file", UPLOADED_SRT), ("lang", b"en-gb"), ("label", b"Commentary")],
    )
    .await;
    let labelled = json_of(&labelled);
    assert_eq!((labelled["lang"].as_str(), labelled["label"].as_str()), (Some("en-GB"), Some("Commentary")));
    assert_eq!(captions_of(&app, &video, None).await.len(), 2);
    let served = get(&app, Protocol::Http1, &url, None).await;
    assert_eq!(
        std::str::from_utf8(&served.body).unwrap(),
        "WEBVTT\n\n1\n00:00:02.000 --> 00:00:03.250\nHallo\n"
    );

    let path = format!("/api/videos/{video}/captions/{}", caption["id"].as_str().unwrap());
    assert_eq!(delete(&app, &path, None).await.status, 401);
    assert_eq!(delete(&app, &path, Some(&bob)).await.status, 403);
    assert_eq!(delete(&app, &path, Some(&alice)).await.status, 204);
    assert_eq!(delete(&app, &path, Some(&alice)).await.status, 404);
    assert_eq!(get(&app, Protocol::Http2, &url, None).await.status, 404);
    assert_eq!(captions_of(&app, &video, None).await.len(), 1);
    // Deleting the video takes its captions along.
    let labelled_url = labelled["url"].as_str().unwrap().to_owned();
    assert_eq!(delete(&app, &format!("/api/videos/{video}"), Some(&alice)).await.status, 204);
    assert_eq!(get(&app, Protocol::Http2, &labelled_url, None).await.status, 404);
}

#[tokio::test]
async fn a_private_videos_captions_are_not_found_by_anyone_but_its_owner_over_every_protocol() {
    let app = spawn_app().await;
    let _admin = person(&app, "admin", false).await;
    let alice = person(&app, "alice", true).await;
    let bob = person(&app, "bob", true).await;
    let video = upload(&app, Some(&alice), 42).await["id"].as_str().unwrap().to_owned();
    let created = post_caption(&app, &video, Some(&alice), &[("file", UPLOADED_SRT), ("lang", b"de")]).await;
    let url = json_of(&created)["url"].as_str().unwrap().to_owned();
    set_visibility(&app, &video, &alice, "private").await;
    let list = format!("/api/videos/{video}/captions");
    for protocol in ALL_PROTOCOLS {
        for who in [None, Some(&bob)] {
            assert_eq!(get(&app, protocol, &url, who).await.status, 404, "{protocol:?}");
            assert_eq!(get(&app, protocol, &list, who).await.status, 404, "{protocol:?}");
        }
        let own = get(&app, protocol, &url, Some(&alice)).await;
        assert_eq!(own.status, 200, "{protocol:?}");
        assert_eq!(own.header("cache-control"), Some("private, no-cache"), "{protocol:?}");
        assert_eq!(get(&app, protocol, &list, Some(&alice)).await.status, 200, "{protocol:?}");
    }
    // Nor may Bob add one to it: it does not exist for him.
    let attempt = post_caption(&app, &video, Some(&bob), &[("file", UPLOADED_SRT), ("lang", b"de")]).await;
    assert_eq!(attempt.status, 404);
}
