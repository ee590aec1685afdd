//! Accounts and ownership in a real Chromium over HTTP/2: sign-up, the mailed verification
//! link, sign-in, an upload through the form, playback, and the edit and delete forms (method
//! override), each answered with its flash message.
//!
//! Every step is a real form submit, so the browser's own `Origin`, `__Host-` cookie, the page
//! CSP's `form-action` and the multipart encoding of the file input are what the server sees.

use std::path::{Path, PathBuf};

use kino_test_support::SmtpSink;
use serde_json::json;

use crate::browser::{Browser, PLAY_AND_SEEK, assert_played, chromium, on_localhost, printed_chrome_command};
use crate::recovery::{app_mailing, link_in_mail, path_of};

const EMAIL: &str = "grace@example.org";
const PASSWORD: &str = "a compiler is a program";
const TITLE: &str = "Grace at sea";
const NEW_TITLE: &str = "Grace at sea, edited";

/// The text of the page's flash message (`role=status`), or `null` when it shows none.
const FLASH: &str = "document.querySelector('[role=status]')?.textContent ?? null";

/// Fills the form's fields by id (`[id, value]` pairs) and submits it as a person does, through
/// `requestSubmit` (validation, the submit event, a navigation), not `fetch`.
fn submit(form: &str, fields: &[(&str, &str)]) -> String {
    let fill: String = fields
        .iter()
        .map(|(id, value)| format!("document.getElementById({}).value = {};", json!(id), json!(value)))
        .collect();
    format!("{fill} document.querySelector({}).requestSubmit()", json!(form))
}

/// Submits the watch page's form whose `_method` is `method` (PATCH or DELETE).
fn submit_method(method: &str) -> String {
    format!("document.querySelector('input[name=_method][value={method}]').form.requestSubmit()")
}

/// The uploaded files under the data dir's `library`, by name.
fn uploads(data_dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> =
        std::fs::read_dir(data_dir.join("library")).unwrap().map(|e| e.unwrap().path()).collect();
    files.sort();
    files
}

/// Sets `selector`'s file input to `file` with `DOM.setFileInputFiles`: pages cannot set a file
/// input's value, only the user (here, DevTools on their behalf) can.
async fn choose_file(browser: &mut Browser, selector: &str, file: &Path) {
    let document = browser.call("DOM.getDocument", json!({ "depth": 0 })).await;
    let root = document["root"]["nodeId"].clone();
    let input = browser.call("DOM.querySelector", json!({ "nodeId": root, "selector": selector })).await;
    let files = json!({ "files": [file.to_str().unwrap()], "nodeId": input["nodeId"] });
    browser.call("DOM.setFileInputFiles", files).await;
}

/// Issue 13's browser check: the first account, made through the pages, owns and manages its
/// upload end to end, and nothing of it is left after the delete.
#[tokio::test]
async fn chromium_signs_up_verifies_uploads_plays_edits_and_deletes_over_http2() {
    let Some(binary) = chromium() else { return };
    let sink = SmtpSink::start().await.unwrap();
    let app = app_mailing(&sink, on_localhost).await;
    let (flags, url) = printed_chrome_command(&app);
    let mut browser = Browser::launch(binary, &flags, false).await;

    // Sign up: signed in at once, the address not yet verified.
    browser.open(&format!("{url}signup")).await;
    let fields = [("email", EMAIL), ("display_name", "Grace"), ("password", PASSWORD)];
    browser.eval(&submit("form.account-form", &fields)).await;
    browser.wait_for("location.pathname === '/account' && document.readyState === 'complete'").await;
    let flash = browser.eval(FLASH).await;
    assert!(flash.as_str().unwrap().starts_with("Welcome, Grace: your account is ready"), "{flash}");
    assert_eq!(
        browser.eval("document.querySelectorAll('dd')[1].textContent").await,
        "grace@example.org (not verified)"
    );

    // The mailed link, opened in the browser, verifies the address.
    let link = link_in_mail(&sink, EMAIL, "/account/verify").await;
    path_of(&app, &link);
    browser.open(&link).await;
    browser.wait_for(&format!("location.pathname === '/account' && ({FLASH}) !== null")).await;
    assert_eq!(browser.eval(FLASH).await, "Email verified: grace@example.org is confirmed.");
    assert_eq!(browser.eval("document.querySelectorAll('dd')[1].textContent").await, EMAIL);
    // The API says so too, to this browser's session cookie. Opened as a document: the pages'
    // CSP (`default-src 'none'`) refuses a script's `fetch`.
    browser.open(&format!("{url}api/me")).await;
    let me = browser.eval("JSON.parse(document.body.innerText)").await;
    assert_eq!((&me["user"]["email_verified"], &me["user"]["role"]), (&json!(true), &json!("admin")), "{me}");

    // Sign out and back in through the forms.
    browser.open(&format!("{url}account")).await;
    browser.eval("document.querySelector('form[action=\"/session\"] button').click()").await;
    browser.wait_for(&format!("location.pathname === '/' && ({FLASH}) === 'Signed out.'")).await;
    browser.open(&format!("{url}signin")).await;
    browser.eval(&submit("form.account-form", &[("email", EMAIL), ("password", PASSWORD)])).await;
    browser.wait_for(&format!("location.pathname === '/' && ({FLASH}) !== null")).await;
    assert_eq!(browser.eval(FLASH).await, "Signed in as Grace.");

    // Upload a copy of the bundled sample through the form: the watch page says "Uploaded", once.
    assert_eq!(uploads(&app.data_dir()), Vec::<PathBuf>::new());
    let chosen = tempfile::tempdir().unwrap();
    let file = chosen.path().join("grace-at-sea.mp4");
    std::fs::copy(Path::new(env!("CARGO_MANIFEST_DIR")).join("media/sample-h264.mp4"), &file).unwrap();
    browser.open(&format!("{url}upload")).await;
    choose_file(&mut browser, "#file", &file).await;
    assert_eq!(browser.eval("document.querySelector('#file').files[0].name").await, "grace-at-sea.mp4");
    browser.eval(&submit("form[enctype='multipart/form-data']", &[("title", TITLE)])).await;
    browser.wait_for("location.pathname.startsWith('/watch/') && document.readyState === 'complete'").await;
    let watch = browser.eval("location.href").await.as_str().unwrap().to_owned();
    let id = watch.rsplit('/').next().unwrap().to_owned();
    assert_eq!(browser.eval(FLASH).await, "Uploaded");
    assert_eq!(browser.eval("document.querySelector('h1').textContent").await, TITLE);
    assert_eq!(browser.eval("document.querySelector('dl.facts dd').textContent").await, "Grace");
    let stored = uploads(&app.data_dir());
    assert_eq!(stored.len(), 1, "one new file in data/library: {stored:?}");
    // The sample starts with its index, so it is stored as sent, not rewritten.
    assert_eq!(std::fs::metadata(&stored[0]).unwrap().len(), std::fs::metadata(&file).unwrap().len());
    browser.open(&watch).await;
    assert_eq!(browser.eval(FLASH).await, json!(null), "the flash is shown once");

    // It plays, over HTTP/2.
    let report = browser.eval(PLAY_AND_SEEK).await;
    assert_played(&report);
    let negotiated = browser.eval("performance.getEntriesByType('navigation')[0].nextHopProtocol").await;
    assert_eq!(negotiated, "h2");
    assert_eq!(
        browser.eval("document.querySelector('footer strong').textContent").await,
        "h2",
        "the server agrees"
    );

    // Edit the title through the form (POST with `_method=PATCH`).
    browser
        .eval(&format!(
            "document.getElementById('title').value = {}; {}",
            json!(NEW_TITLE),
            submit_method("PATCH")
        ))
        .await;
    browser.wait_for(&format!("({FLASH}) === 'Saved'")).await;
    assert_eq!(browser.eval("location.href").await, watch.as_str());
    assert_eq!(browser.eval("document.querySelector('h1').textContent").await, NEW_TITLE);
    let api = app.h2().get(app.tls_url(&format!("/api/videos/{id}"))).send().await.unwrap();
    assert_eq!(api.status(), 200);
    assert_eq!(api.json::<serde_json::Value>().await.unwrap()["title"], NEW_TITLE);

    // Delete it through the form (`_method=DELETE`): gone from the pages, the API and the disk.
    browser.eval(&submit_method("DELETE")).await;
    browser.wait_for(&format!("location.pathname === '/me/videos' && ({FLASH}) !== null")).await;
    assert_eq!(browser.eval(FLASH).await, "Deleted");
    let listed = browser.eval(&format!("document.querySelector('a[href=\"/watch/{id}\"]') === null")).await;
    assert_eq!(listed, true, "My videos no longer lists it");
    let empty = browser.eval("document.querySelector('main p:not([role])').textContent").await;
    assert_eq!(empty, "You have not uploaded anything yet. Upload a video.");
    browser.open(&watch).await;
    assert_eq!(browser.eval("document.querySelector('h1').textContent").await, "404 Not Found");
    assert_eq!(browser.eval("performance.getEntriesByType('navigation')[0].responseStatus").await, 404);
    for path in [format!("/watch/{id}"), format!("/api/videos/{id}")] {
        let response = app.h2().get(app.tls_url(&path)).send().await.unwrap();
        assert_eq!(response.status(), 404, "{path}");
    }
    assert_eq!(uploads(&app.data_dir()), Vec::<PathBuf>::new(), "the file is gone from data/library");
}
