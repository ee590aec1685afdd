//! Accounts through the real server: sign-up, sign-in and sign-out over the JSON API on every
//! protocol and through the pages, session cookies, CSRF, method override, flash messages, and
//! `kino user` on the real binary.

use std::io::Write;
use std::process::Stdio;

use bytes::Bytes;
use http::Method;
use serde_json::{Value, json};

use crate::common::{ALL_PROTOCOLS, Protocol, TestApp, spawn_app, spawn_in};
use crate::snapshot::Snapshot;

pub(crate) const PASSWORD: &str = "a long passphrase";

/// The `name=value` of the session cookie a response sets, if it sets one.
pub(crate) fn session_cookie(response: &Snapshot) -> Option<String> {
    set_cookies(response)
        .into_iter()
        .find(|c| c.contains("kino_session=") && !c.contains("Max-Age=0"))
        .map(|c| c.split(';').next().unwrap().to_owned())
}

fn set_cookies(response: &Snapshot) -> Vec<String> {
    response.headers.iter().filter(|(n, _)| n == "set-cookie").map(|(_, v)| v.clone()).collect()
}

pub(crate) fn json_body(response: &Snapshot) -> Value {
    serde_json::from_slice(&response.body).unwrap_or_else(|_| panic!("not JSON: {response:?}"))
}

/// This server's origin, as a browser on one of its pages sends it.
pub(crate) fn origin(app: &TestApp) -> String {
    format!("https://localhost:{}", app.https.port())
}

pub(crate) async fn post_json(
    app: &TestApp,
    protocol: Protocol,
    path: &str,
    body: Value,
    headers: &[(&str, &str)],
) -> Snapshot {
    let mut all = vec![("content-type", "application/json")];
    all.extend_from_slice(headers);
    app.send(protocol, Method::POST, path, &all, Bytes::from(body.to_string())).await
}

/// Signs up over the API; returns the session cookie and the CSRF token.
pub(crate) async fn sign_up(app: &TestApp, email: &str) -> (String, String, Value) {
    let response =
        post_json(app, Protocol::Http2, "/api/users", json!({"email": email, "password": PASSWORD}), &[])
            .await;
    assert_eq!(response.status, 201, "{response:?}");
    let body = json_body(&response);
    let token = body["csrf_token"].as_str().unwrap().to_owned();
    (session_cookie(&response).expect("sign-up signs in"), token, body["user"].clone())
}

#[tokio::test]
async fn sign_up_in_and_out_over_the_api_on_every_protocol() {
    let app = spawn_app().await;
    let origin = origin(&app);
    for (n, protocol) in ALL_PROTOCOLS.into_iter().enumerate() {
        let email = format!("person{n}@example.org");
        let signed_up =
            post_json(&app, protocol, "/api/users", json!({"email": email, "password": PASSWORD}), &[]).await;
        assert_eq!(signed_up.status, 201, "{protocol:?}: {signed_up:?}");
        let user = json_body(&signed_up)["user"].clone();
        // The first account is admin, every later sign-up a viewer.
        assert_eq!(user["role"], if n == 0 { "admin" } else { "viewer" }, "{protocol:?}");
        assert_eq!(
            (user["email"].as_str(), user["display_name"].as_str()),
            (Some(email.as_str()), Some(&*format!("person{n}")))
        );
        assert!(user.get("password_hash").is_none());
        let cookie = session_cookie(&signed_up).expect("a session cookie");

        let me = app.fetch(protocol, Method::GET, "/api/me", &[("cookie", &cookie)]).await;
        assert_eq!(me.status, 200, "{protocol:?}: {me:?}");
        let me = json_body(&me);
        assert_eq!(me["user"]["email"], email.as_str());
        let token = me["csrf_token"].as_str().unwrap().to_owned();

        let out = app
            .fetch(
                protocol,
                Method::DELETE,
                "/api/session",
                &[("cookie", &cookie), ("origin", &origin), ("x-csrf-token", &token)],
            )
            .await;
        assert_eq!(out.status, 204, "{protocol:?}: {out:?}");
        assert!(
            set_cookies(&out)
                .iter()
                .any(|c| c.starts_with("__Host-kino_session=;") && c.contains("Max-Age=0")),
            "{out:?}"
        );
        // The session is gone from the server: the old cookie signs nobody in.
        let after = app.fetch(protocol, Method::GET, "/api/me", &[("cookie", &cookie)]).await;
        assert_eq!(after.status, 401, "{protocol:?}: {after:?}");
        assert_eq!(json_body(&after)["error"]["code"], "unauthorized");

        let wrong = post_json(
            &app,
            protocol,
            "/api/session",
            json!({"email": email, "password": "not the passphrase"}),
            &[],
        )
        .await;
        let unknown = post_json(
            &app,
            protocol,
            "/api/session",
            json!({"email": "nobody@example.org", "password": PASSWORD}),
            &[],
        )
        .await;
        for refused in [&wrong, &unknown] {
            assert_eq!(refused.status, 401, "{protocol:?}: {refused:?}");
            assert_eq!(json_body(refused)["error"]["message"], "wrong email or password");
        }
        let signed_in =
            post_json(&app, protocol, "/api/session", json!({"email": email, "password": PASSWORD}), &[])
                .await;
        assert_eq!(signed_in.status, 200, "{protocol:?}: {signed_in:?}");
        let again = session_cookie(&signed_in).unwrap();
        assert_ne!(again, cookie);
        let me = app.fetch(protocol, Method::GET, "/api/me", &[("cookie", &again)]).await;
        assert_eq!(json_body(&me)["user"]["role"], user["role"]);
    }
}

#[tokio::test]
async fn sign_up_refusals_say_what_was_wrong() {
    let app = spawn_app().await;
    sign_up(&app, "taken@example.org").await;
    let cases = [
        (json!({"email": "TAKEN@example.org", "password": PASSWORD}), 409, "conflict", "exists already"),
        (
            json!({"email": "new@example.org", "password": "short"}),
            422,
            "unprocessable",
            "password: must be at least 10 characters",
        ),
        (
            json!({"email": "not-an-address", "password": PASSWORD}),
            422,
            "unprocessable",
            "email: is not an address",
        ),
        (json!({"email": "new@example.org"}), 422, "unprocessable", "password"),
    ];
    for (body, status, code, message) in cases {
        let response = post_json(&app, Protocol::Http1, "/api/users", body.clone(), &[]).await;
        assert_eq!(response.status, status, "{body}: {response:?}");
        let error = &json_body(&response)["error"];
        assert_eq!(error["code"], code, "{body}");
        assert!(error["message"].as_str().unwrap().contains(message), "{body}: {error}");
        assert!(session_cookie(&response).is_none(), "a refused sign-up starts no session");
    }
    let not_json = app
        .send(
            Protocol::Http1,
            Method::POST,
            "/api/users",
            &[("content-type", "text/plain")],
            Bytes::from("x"),
        )
        .await;
    assert_eq!(not_json.status, 415, "{not_json:?}");
    let broken = app
        .send(
            Protocol::Http1,
            Method::POST,
            "/api/users",
            &[("content-type", "application/json")],
            Bytes::from("{"),
        )
        .await;
    assert_eq!(
        (broken.status.as_u16(), json_body(&broken)["error"]["code"].as_str()),
        (400, Some("bad_request"))
    );
}

#[tokio::test]
async fn session_cookies_are_host_prefixed_and_secure_over_tls_and_plain_over_http() {
    let app = spawn_app().await;
    let body = json!({"email": "tls@example.org", "password": PASSWORD}).to_string();
    let tls = app
        .h2()
        .post(app.tls_url("/api/users"))
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap();
    let tls = Snapshot::of(tls).await;
    let cookie = set_cookies(&tls).pop().unwrap();
    assert!(cookie.starts_with("__Host-kino_session="), "{cookie}");
    for attribute in ["HttpOnly", "SameSite=Lax", "Secure", "Path=/", "Max-Age=1209600"] {
        assert!(cookie.split("; ").any(|a| a == attribute), "{attribute} missing: {cookie}");
    }
    assert!(!cookie.contains("Domain"), "{cookie}");

    let body = json!({"email": "plain@example.org", "password": PASSWORD}).to_string();
    let plain = app
        .plain()
        .post(app.plain_url("/api/users"))
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap();
    let plain = Snapshot::of(plain).await;
    let cookie = set_cookies(&plain).pop().unwrap();
    assert!(cookie.starts_with("kino_session="), "{cookie}");
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax") && !cookie.contains("Secure"),
        "{cookie}"
    );
    // Each transport reads only its own cookie.
    let value = cookie.split(';').next().unwrap();
    let me = app.plain().get(app.plain_url("/api/me")).header("cookie", value).send().await.unwrap();
    assert_eq!(me.status(), 200);
    let over_tls = app.h1().get(app.tls_url("/api/me")).header("cookie", value).send().await.unwrap();
    assert_eq!(over_tls.status(), 401);
}

/// The `_csrf` value of the first form on a page.
pub(crate) fn form_token(html: &str) -> String {
    let at = html.find("name=\"_csrf\" value=\"").expect("a CSRF field") + "name=\"_csrf\" value=\"".len();
    html[at..].split('"').next().unwrap().to_owned()
}

/// A browser-like HTTP/2 client that shows redirects instead of following them.
fn browser(app: &TestApp) -> reqwest::Client {
    reqwest::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(&app.ca_pem).unwrap()])
        .resolve("localhost", app.https)
        .redirect(reqwest::redirect::Policy::none())
        .timeout(crate::common::TEST_TIMEOUT)
        .build()
        .unwrap()
}

/// A form post over HTTP/2 with the session cookie and this site's Origin.
pub(crate) async fn post_form(app: &TestApp, path: &str, cookie: &str, form: &[(&str, &str)]) -> Snapshot {
    let body = serde_urlencoded::to_string(form).unwrap();
    let response = browser(app)
        .post(app.tls_url(path))
        .header("cookie", cookie)
        .header("origin", origin(app))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .await
        .unwrap();
    Snapshot::of(response).await
}

pub(crate) async fn page(app: &TestApp, path: &str, cookie: Option<&str>) -> Snapshot {
    let mut request = browser(app).get(app.tls_url(path));
    if let Some(cookie) = cookie {
        request = request.header("cookie", cookie);
    }
    Snapshot::of(request.send().await.unwrap()).await
}

/// Signs in through the sign-in page's form: returns the cookie before and after.
async fn sign_in_with_the_form(app: &TestApp, email: &str) -> (String, String) {
    let form = page(app, "/signin", None).await;
    assert_eq!(form.status, 200);
    let before = session_cookie(&form).expect("the sign-in form starts a session for its token");
    let token = form_token(std::str::from_utf8(&form.body).unwrap());
    let signed_in =
        post_form(app, "/session", &before, &[("_csrf", &token), ("email", email), ("password", PASSWORD)])
            .await;
    assert_eq!(signed_in.status, 303, "{signed_in:?}");
    assert_eq!(signed_in.header("location"), Some("/"));
    (before, session_cookie(&signed_in).expect("a new session id"))
}

#[tokio::test]
async fn signing_in_rotates_the_session_id_and_shows_a_flash_message_once() {
    let app = spawn_app().await;
    sign_up(&app, "ada@example.org").await;
    let (before, after) = sign_in_with_the_form(&app, "ada@example.org").await;
    assert_ne!(before, after, "the id given before sign-in is not the signed-in one");
    assert_eq!(app.fetch(Protocol::Http2, Method::GET, "/api/me", &[("cookie", &before)]).await.status, 401);
    assert_eq!(app.fetch(Protocol::Http2, Method::GET, "/api/me", &[("cookie", &after)]).await.status, 200);

    let first = page(&app, "/", Some(&after)).await;
    let html = std::str::from_utf8(&first.body).unwrap();
    assert!(html.contains("<p class=\"note flash\" role=\"status\">Signed in as ada.</p>"), "{html}");
    assert!(html.contains("<a href=\"/account\">ada</a>"), "the header names who is signed in");
    assert_eq!(first.header("cache-control"), Some("private, no-cache"));
    let second = page(&app, "/", Some(&after)).await;
    let html = std::str::from_utf8(&second.body).unwrap();
    assert!(!html.contains("role=\"status\""), "a flash message shows once: {html}");
    assert!(html.contains("<a href=\"/account\">ada</a>"));
    let anonymous = page(&app, "/", None).await;
    let html = std::str::from_utf8(&anonymous.body).unwrap();
    assert!(html.contains("<a href=\"/signin\">Sign in</a>"), "{html}");
    assert!(session_cookie(&anonymous).is_none(), "looking at a page starts no session");

    let account = page(&app, "/account", Some(&after)).await;
    let html = std::str::from_utf8(&account.body).unwrap();
    assert!(html.contains("ada@example.org") && html.contains("<dd>admin</dd>"), "{html}");
    assert_eq!(page(&app, "/account", None).await.status, 303);
}

#[tokio::test]
async fn a_wrong_password_on_the_form_answers_401_with_the_form_again() {
    let app = spawn_app().await;
    sign_up(&app, "ada@example.org").await;
    let form = page(&app, "/signin", None).await;
    let cookie = session_cookie(&form).unwrap();
    let token = form_token(std::str::from_utf8(&form.body).unwrap());
    let refused = post_form(
        &app,
        "/session",
        &cookie,
        &[("_csrf", &token), ("email", "ada@example.org"), ("password", "wrong password")],
    )
    .await;
    assert_eq!(refused.status, 401);
    let html = std::str::from_utf8(&refused.body).unwrap();
    assert!(
        html.contains("role=\"alert\">Wrong email or password.</p>")
            && html.contains("value=\"ada@example.org\""),
        "{html}"
    );
}

#[tokio::test]
async fn csrf_refuses_signed_in_requests_without_the_token_or_from_another_site() {
    let app = spawn_app().await;
    let (cookie, token, _) = sign_up(&app, "ada@example.org").await;
    let own = origin(&app);
    let out = |headers: Vec<(&'static str, String)>| {
        let app = &app;
        async move {
            let headers: Vec<(&str, &str)> = headers.iter().map(|(n, v)| (*n, v.as_str())).collect();
            app.fetch(Protocol::Http2, Method::DELETE, "/api/session", &headers).await
        }
    };
    let cases = [
        (vec![("cookie", cookie.clone()), ("origin", own.clone())], "X-CSRF-Token"),
        (
            vec![("cookie", cookie.clone()), ("origin", own.clone()), ("x-csrf-token", "forged".into())],
            "does not match",
        ),
        (
            vec![
                ("cookie", cookie.clone()),
                ("origin", "https://evil.example".into()),
                ("x-csrf-token", token.clone()),
            ],
            "cross-site request refused",
        ),
        (
            vec![
                ("cookie", cookie.clone()),
                ("referer", "https://evil.example/page".into()),
                ("x-csrf-token", token.clone()),
            ],
            "cross-site",
        ),
        (
            vec![("cookie", cookie.clone()), ("x-csrf-token", token.clone())],
            "neither an Origin nor a Referer",
        ),
    ];
    for (headers, message) in cases {
        let refused = out(headers.clone()).await;
        assert_eq!(refused.status, 403, "{headers:?}: {refused:?}");
        let error = &json_body(&refused)["error"];
        assert_eq!(error["code"], "forbidden");
        assert!(error["message"].as_str().unwrap().contains(message), "{headers:?}: {error}");
    }
    // Still signed in: none of the refused requests did anything.
    assert_eq!(app.fetch(Protocol::Http2, Method::GET, "/api/me", &[("cookie", &cookie)]).await.status, 200);

    // A form post with a forged token gets an HTML 403 (the path is a page, not the API).
    let form = post_form(&app, "/session", &cookie, &[("_method", "DELETE"), ("_csrf", "forged")]).await;
    assert_eq!(form.status, 403);
    assert!(std::str::from_utf8(&form.body).unwrap().contains("does not match this session"));

    // The Referer of one of its own pages does instead of Origin.
    let referer = format!("{own}/account");
    let accepted =
        out(vec![("cookie", cookie.clone()), ("referer", referer), ("x-csrf-token", token.clone())]).await;
    assert_eq!(accepted.status, 204, "{accepted:?}");

    // No session cookie, no CSRF check: the request carries no authority to borrow.
    let anonymous = post_json(
        &app,
        Protocol::Http2,
        "/api/session",
        json!({"email": "ada@example.org", "password": PASSWORD}),
        &[("origin", "https://evil.example")],
    )
    .await;
    assert_eq!(anonymous.status, 200, "{anonymous:?}");
}

#[tokio::test]
async fn method_override_rewrites_form_posts_only() {
    let app = spawn_app().await;
    let client = app.h2();
    let url = app.tls_url("/__test/method");
    let form = |body: &'static str| {
        client.post(&url).header("content-type", "application/x-www-form-urlencoded").body(body)
    };
    for (body, expected) in [
        ("_method=DELETE&x=1", "DELETE 18"),
        ("_method=put", "PUT 11"),
        ("x=1&_method=PATCH", "PATCH 17"),
        ("x=1", "POST 3"),
    ] {
        assert_eq!(form(body).send().await.unwrap().text().await.unwrap(), expected, "{body}");
    }
    let multipart = "--b\r\nContent-Disposition: form-data; name=\"_method\"\r\n\r\nDELETE\r\n--b\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a\"\r\n\r\nbytes\r\n--b--\r\n";
    let response = client
        .post(&url)
        .header("content-type", "multipart/form-data; boundary=b")
        .body(multipart)
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.text().await.unwrap(),
        format!("DELETE {}", multipart.len()),
        "the body reaches the route whole"
    );
    let json = client
        .post(&url)
        .header("content-type", "application/json")
        .body(r#"{"_method":"DELETE"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(json.text().await.unwrap(), "POST 20", "JSON is never rewritten");
    let get = client.get(format!("{url}?_method=DELETE")).send().await.unwrap();
    assert_eq!(get.text().await.unwrap(), "GET 0", "GET is never rewritten");
    let unknown = form("_method=TRACE").header("accept", "application/json").send().await.unwrap();
    assert_eq!(unknown.status(), 400);
    let error: Value = unknown.json().await.unwrap();
    assert_eq!(error["error"]["message"], "_method: \"TRACE\" is not PUT, PATCH or DELETE");
    let huge = form("x=").body(format!("x={}", "a".repeat(70 * 1024))).send().await.unwrap();
    assert_eq!(huge.status(), 413);

    // The account page's sign-out form: POST + _method=DELETE reaches DELETE /session.
    let (cookie, _, _) = sign_up(&app, "ada@example.org").await;
    let account = page(&app, "/account", Some(&cookie)).await;
    let html = std::str::from_utf8(&account.body).unwrap();
    assert!(html.contains("<input type=\"hidden\" name=\"_method\" value=\"DELETE\">"), "{html}");
    let token = form_token(html);
    let out = post_form(&app, "/session", &cookie, &[("_method", "DELETE"), ("_csrf", &token)]).await;
    assert_eq!((out.status.as_u16(), out.header("location")), (303, Some("/")), "{out:?}");
    assert_eq!(app.fetch(Protocol::Http2, Method::GET, "/api/me", &[("cookie", &cookie)]).await.status, 401);
    // "Signed out." waits in a fresh, anonymous session.
    let flash = session_cookie(&out).expect("the flash message's session");
    assert!(
        std::str::from_utf8(&page(&app, "/", Some(&flash)).await.body)
            .unwrap()
            .contains("role=\"status\">Signed out.</p>")
    );
}

#[tokio::test]
async fn kino_user_add_and_role_make_admins_and_uploaders_on_the_real_binary() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let data = data.to_str().unwrap();
    let add = |args: &[&str], password: &str| {
        let mut child = crate::cli::kino(
            dir.path(),
            &[&["user", "add", "--data-dir", data, "--password-stdin"], args].concat(),
            &[],
        )
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
        child.stdin.take().unwrap().write_all(format!("{password}\n").as_bytes()).unwrap();
        child.wait_with_output().unwrap()
    };
    let viewer = add(&["--email", "first@example.org"], PASSWORD);
    assert!(viewer.status.success(), "{}", String::from_utf8_lossy(&viewer.stderr));
    assert!(
        String::from_utf8_lossy(&viewer.stdout).contains("as admin"),
        "the first account is admin even from the CLI"
    );
    let admin = add(&["--email", "root@example.org", "--admin", "--name", "Root"], PASSWORD);
    assert!(admin.status.success(), "{}", String::from_utf8_lossy(&admin.stderr));
    assert_eq!(String::from_utf8_lossy(&admin.stdout).trim(), "added root@example.org (Root) as admin");
    let weak = add(&["--email", "weak@example.org"], "short");
    assert!(!weak.status.success());
    assert!(String::from_utf8_lossy(&weak.stderr).contains("password: must be at least 10 characters"));
    let role = crate::cli::kino(
        dir.path(),
        &["user", "role", "first@example.org", "uploader", "--data-dir", data],
        &[],
    )
    .output()
    .unwrap();
    assert!(role.status.success(), "{}", String::from_utf8_lossy(&role.stderr));
    let missing = crate::cli::kino(
        dir.path(),
        &["user", "role", "nobody@example.org", "admin", "--data-dir", data],
        &[],
    )
    .output()
    .unwrap();
    assert!(
        !missing.status.success()
            && String::from_utf8_lossy(&missing.stderr).contains("no account has the email")
    );

    let app = spawn_in(dir.path(), |_| {}).await;
    for (email, role) in [("root@example.org", "admin"), ("first@example.org", "uploader")] {
        let signed_in = post_json(
            &app,
            Protocol::Http3,
            "/api/session",
            json!({"email": email, "password": PASSWORD}),
            &[],
        )
        .await;
        assert_eq!(signed_in.status, 200, "{signed_in:?}");
        assert_eq!(json_body(&signed_in)["user"]["role"], role);
    }
}
