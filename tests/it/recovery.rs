//! Mailed links through the real server and a real SMTP sink: the verification mail of a
//! sign-up and its link, once and before it expires; the password reset, which ends every
//! session and refresh token; and a forgot-password answer that says nothing about the account.

use std::time::Duration;

use http::Method;
use kino::config::MailTransport;
use kino_test_support::{Received, SmtpSink};
use serde_json::json;

use crate::accounts::{
    PASSWORD, form_token, json_body, origin, page, post_form, post_json, session_cookie, sign_up,
};
use crate::common::{ALL_PROTOCOLS, Protocol, TEST_TIMEOUT, TestApp, spawn_app_with};
use crate::snapshot::Snapshot;

const NEW_PASSWORD: &str = "another long passphrase";

/// The server with its mail going to `sink`, after `adjust`.
pub(crate) async fn app_mailing(sink: &SmtpSink, adjust: impl FnOnce(&mut kino::config::Config)) -> TestApp {
    let port = sink.addr().port();
    spawn_app_with(move |config| {
        config.mail.transport = MailTransport::Smtp;
        config.mail.smtp_host = Some("127.0.0.1".into());
        config.mail.smtp_port = port;
        config.mail.smtp_starttls = false;
        config.mail.from = "kino <kino@kino.test>".into();
        adjust(config);
    })
    .await
}

/// The body of `message` as its reader sees it: quoted-printable undone (the link's line is
/// longer than 76 characters, so the sender encodes the body).
fn decoded_body(message: &Received) -> String {
    let body = message.body().replace("=\r\n", "");
    let mut out = Vec::new();
    let bytes = body.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match (bytes[i], std::str::from_utf8(bytes.get(i + 1..i + 3).unwrap_or_default())) {
            (b'=', Ok(hex)) if u8::from_str_radix(hex, 16).is_ok() => {
                out.push(u8::from_str_radix(hex, 16).unwrap());
                i += 3;
            }
            (byte, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8(out).unwrap()
}

/// The next message, which must be to `to` and carry a link to `path`: returns the whole link.
pub(crate) async fn link_in_mail(sink: &SmtpSink, to: &str, path: &str) -> String {
    let message = sink.next(TEST_TIMEOUT).await.expect("a mail arrives");
    assert_eq!(message.rcpt_to, [to.to_owned()], "{}", message.data);
    let body = decoded_body(&message);
    body.split_whitespace()
        .find(|word| word.contains(&format!("{path}?token=")))
        .unwrap_or_else(|| panic!("no {path} link in {body}"))
        .to_owned()
}

/// `link`'s path and query, to request on any protocol.
pub(crate) fn path_of(app: &TestApp, link: &str) -> String {
    let origin = origin(app);
    assert!(link.starts_with(&format!("{origin}/")), "the link goes to this server ({origin}): {link}");
    link[origin.len()..].to_owned()
}

fn token_of(link: &str) -> &str {
    link.split_once("?token=").unwrap().1
}

async fn me_by_token(app: &TestApp, protocol: Protocol, bearer: &str) -> Snapshot {
    app.fetch(protocol, Method::GET, "/api/me", &[("authorization", bearer)]).await
}

async fn me(app: &TestApp, protocol: Protocol, cookie: &str) -> Snapshot {
    app.fetch(protocol, Method::GET, "/api/me", &[("cookie", cookie)]).await
}

fn error_message(response: &Snapshot) -> String {
    json_body(response)["error"]["message"].as_str().unwrap_or_default().to_owned()
}

fn html(response: &Snapshot) -> &str {
    std::str::from_utf8(&response.body).unwrap()
}

#[tokio::test]
async fn the_sign_up_mail_links_to_a_verification_that_works_once_on_every_protocol() {
    let sink = SmtpSink::start().await.unwrap();
    let app = app_mailing(&sink, |_| {}).await;
    for (n, protocol) in ALL_PROTOCOLS.into_iter().enumerate() {
        let email = format!("person{n}@example.org");
        let signed_up =
            post_json(&app, protocol, "/api/users", json!({"email": email, "password": PASSWORD}), &[]).await;
        assert_eq!(signed_up.status, 201, "{protocol:?}: {signed_up:?}");
        let cookie = session_cookie(&signed_up).unwrap();
        assert_eq!(json_body(&me(&app, protocol, &cookie).await)["user"]["email_verified"], false);

        let link = link_in_mail(&sink, &email, "/account/verify").await;
        path_of(&app, &link);
        let body = json!({"token": token_of(&link)});
        let verified = post_json(&app, protocol, "/api/account/verify", body.clone(), &[]).await;
        assert_eq!(verified.status, 204, "{protocol:?}: {verified:?}");
        assert_eq!(
            json_body(&me(&app, protocol, &cookie).await)["user"]["email_verified"],
            true,
            "{protocol:?}"
        );

        let again = post_json(&app, protocol, "/api/account/verify", body, &[]).await;
        assert_eq!(again.status, 400, "{protocol:?}: {again:?}");
        assert!(error_message(&again).contains("used already"), "{protocol:?}: {again:?}");
        let forged = json!({"token": "A".repeat(43)});
        let forged = post_json(&app, protocol, "/api/account/verify", forged, &[]).await;
        assert_eq!(forged.status, 400, "{protocol:?}: {forged:?}");
        assert!(error_message(&forged).contains("kino sent no such link"), "{forged:?}");
        let missing = post_json(&app, protocol, "/api/account/verify", json!({}), &[]).await;
        assert_eq!(missing.status, 400, "{protocol:?}: {missing:?}");
    }

    // The link as a person opens it: a redirect with a flash message, then a page saying why a
    // second visit does nothing.
    let (cookie, _, _) = sign_up(&app, "browser@example.org").await;
    let link = link_in_mail(&sink, "browser@example.org", "/account/verify").await;
    let opened = page(&app, &path_of(&app, &link), Some(&cookie)).await;
    assert_eq!((opened.status.as_u16(), opened.header("location")), (303, Some("/account")), "{opened:?}");
    let account = page(&app, "/account", Some(&cookie)).await;
    assert!(
        html(&account).contains("Email verified: browser@example.org is confirmed."),
        "{}",
        html(&account)
    );
    assert!(!html(&account).contains("(not verified)"), "{}", html(&account));
    let reopened = page(&app, &path_of(&app, &link), None).await;
    assert_eq!(reopened.status, 400, "{reopened:?}");
    assert!(reopened.header("content-type").unwrap().starts_with("text/html"), "{reopened:?}");
    assert!(html(&reopened).contains("This verification link does not work"), "{}", html(&reopened));
    assert!(html(&reopened).contains("used already"), "{}", html(&reopened));
    let bare = page(&app, "/account/verify", None).await;
    assert_eq!(bare.status, 400, "{bare:?}");
    assert!(html(&bare).contains("kino sent no such link"), "{}", html(&bare));
}

#[tokio::test]
async fn an_expired_link_is_refused_and_a_new_one_is_mailed_at_most_every_few_minutes() {
    let sink = SmtpSink::start().await.unwrap();
    let app = app_mailing(&sink, |config| config.accounts.verify_ttl = Duration::from_secs(2)).await;
    let (cookie, csrf, _) = sign_up(&app, "ada@example.org").await;
    let first = link_in_mail(&sink, "ada@example.org", "/account/verify").await;
    tokio::time::sleep(Duration::from_millis(2200)).await;
    let late =
        post_json(&app, Protocol::Http2, "/api/account/verify", json!({"token": token_of(&first)}), &[])
            .await;
    assert_eq!(late.status, 400, "{late:?}");
    assert!(error_message(&late).contains("expired"), "{late:?}");
    let late_page = page(&app, &path_of(&app, &first), None).await;
    assert_eq!(late_page.status, 400);
    assert!(html(&late_page).contains("This link has expired; ask for a new one."), "{}", html(&late_page));

    let origin = origin(&app);
    let signed_in =
        [("cookie", cookie.as_str()), ("origin", origin.as_str()), ("x-csrf-token", csrf.as_str())];
    let resend = |protocol| app.fetch(protocol, Method::POST, "/api/account/verification", &signed_in);
    let anonymous = app.fetch(Protocol::Http1, Method::POST, "/api/account/verification", &[]).await;
    assert_eq!(anonymous.status, 401, "{anonymous:?}");
    let sent = resend(Protocol::Http1).await;
    assert_eq!(sent.status, 202, "{sent:?}");
    let second = link_in_mail(&sink, "ada@example.org", "/account/verify").await;
    assert_ne!(token_of(&first), token_of(&second));
    let too_soon = resend(Protocol::Http3).await;
    assert_eq!(too_soon.status, 429, "{too_soon:?}");
    let wait: u64 = too_soon.header("retry-after").unwrap().parse().unwrap();
    assert!((200..=300).contains(&wait), "{wait}");
    assert!(error_message(&too_soon).contains("try again in"), "{too_soon:?}");

    let verified =
        post_json(&app, Protocol::Http3, "/api/account/verify", json!({"token": token_of(&second)}), &[])
            .await;
    assert_eq!(verified.status, 204, "{verified:?}");
    let done = resend(Protocol::Http2).await;
    assert_eq!(done.status, 409, "{done:?}");
    assert!(error_message(&done).contains("verified already"), "{done:?}");
    assert!(sink.next(Duration::from_millis(300)).await.is_none(), "no mail for refused resends");
}

/// A token pair for the account, as the API's clients sign in.
async fn refresh_token(app: &TestApp, protocol: Protocol, email: &str, password: &str) -> Snapshot {
    post_json(app, protocol, "/api/auth/token", json!({"email": email, "password": password}), &[]).await
}

#[tokio::test]
async fn a_reset_sets_the_password_and_ends_every_session_and_token_on_every_protocol() {
    let sink = SmtpSink::start().await.unwrap();
    let app = app_mailing(&sink, |_| {}).await;
    for (n, protocol) in ALL_PROTOCOLS.into_iter().enumerate() {
        let email = format!("person{n}@example.org");
        let (cookie, _, _) = sign_up(&app, &email).await;
        link_in_mail(&sink, &email, "/account/verify").await;
        let pair = refresh_token(&app, protocol, &email, PASSWORD).await;
        assert_eq!(pair.status, 200, "{protocol:?}: {pair:?}");
        let refresh = json_body(&pair)["refresh_token"].clone();
        let bearer = format!("Bearer {}", json_body(&pair)["access_token"].as_str().unwrap());
        assert_eq!(me_by_token(&app, protocol, &bearer).await.status, 200, "{protocol:?}");
        // The access token must be from an earlier second than the reset to be refused.
        tokio::time::sleep(Duration::from_millis(1100)).await;

        let asked =
            post_json(&app, protocol, "/api/account/forgot", json!({"email": email.to_uppercase()}), &[])
                .await;
        assert_eq!(asked.status, 202, "{protocol:?}: {asked:?}");
        let link = link_in_mail(&sink, &email, "/account/reset").await;
        path_of(&app, &link);
        let token = token_of(&link);

        let weak = post_json(
            &app,
            protocol,
            "/api/account/reset",
            json!({"token": token, "password": "short"}),
            &[],
        )
        .await;
        assert_eq!(weak.status, 422, "{protocol:?}: {weak:?}");
        assert!(error_message(&weak).contains("password: must be at least 10 characters"), "{weak:?}");
        let body = json!({"token": token, "password": NEW_PASSWORD});
        let reset = post_json(&app, protocol, "/api/account/reset", body.clone(), &[]).await;
        assert_eq!(reset.status, 204, "{protocol:?}: {reset:?}");

        assert_eq!(me(&app, protocol, &cookie).await.status, 401, "{protocol:?}: the old session ended");
        let renewed =
            post_json(&app, protocol, "/api/auth/refresh", json!({"refresh_token": refresh}), &[]).await;
        assert_eq!(renewed.status, 401, "{protocol:?}: {renewed:?}");
        assert!(error_message(&renewed).contains("revoked"), "{renewed:?}");
        let again = post_json(&app, protocol, "/api/account/reset", body, &[]).await;
        assert_eq!(again.status, 400, "{protocol:?}: {again:?}");
        assert!(error_message(&again).contains("used already"), "{again:?}");
        let old_access = me_by_token(&app, protocol, &bearer).await;
        assert_eq!(old_access.status, 401, "{protocol:?}: {old_access:?}");
        assert!(
            error_message(&old_access).contains("before the account's password was reset"),
            "{old_access:?}"
        );
        assert_eq!(refresh_token(&app, protocol, &email, PASSWORD).await.status, 401, "{protocol:?}");
        let fresh = refresh_token(&app, protocol, &email, NEW_PASSWORD).await;
        assert_eq!(fresh.status, 200, "{protocol:?}");
        let bearer = format!("Bearer {}", json_body(&fresh)["access_token"].as_str().unwrap());
        assert_eq!(
            me_by_token(&app, protocol, &bearer).await.status,
            200,
            "{protocol:?}: a token issued after the reset works"
        );
    }
}

#[tokio::test]
async fn forgot_answers_an_unknown_address_exactly_as_a_known_one_and_mails_only_the_known() {
    let sink = SmtpSink::start().await.unwrap();
    let app = app_mailing(&sink, |_| {}).await;
    sign_up(&app, "ada@example.org").await;
    link_in_mail(&sink, "ada@example.org", "/account/verify").await;
    for protocol in ALL_PROTOCOLS {
        let ask =
            |email: &str| post_json(&app, protocol, "/api/account/forgot", json!({"email": email}), &[]);
        let (known, unknown) = (ask("ada@example.org").await, ask("nobody@example.org").await);
        assert_eq!(known.status, 202, "{protocol:?}: {known:?}");
        let same = |s: &Snapshot| (s.status, s.body.clone(), s.header("content-type").map(str::to_owned));
        assert_eq!(same(&known), same(&unknown), "{protocol:?}");
        let malformed = ask("not-an-address").await;
        assert_eq!(malformed.status, 422, "{protocol:?}: {malformed:?}");
    }
    // One mail to the known address; the requests after it within the resend interval and the
    // unknown address sent nothing.
    link_in_mail(&sink, "ada@example.org", "/account/reset").await;
    assert!(sink.next(Duration::from_millis(500)).await.is_none());

    // The form answers the same page for both.
    let form = page(&app, "/account/forgot", None).await;
    let cookie = session_cookie(&form).expect("the form starts a session for its token");
    let csrf = form_token(html(&form));
    let post = |email: &'static str| {
        let (cookie, csrf) = (cookie.clone(), csrf.clone());
        let app = &app;
        async move { post_form(app, "/account/forgot", &cookie, &[("_csrf", &csrf), ("email", email)]).await }
    };
    let (known, unknown) = (post("ada@example.org").await, post("nobody@example.org").await);
    assert_eq!((known.status, &known.body), (unknown.status, &unknown.body));
    assert_eq!(known.status, 200);
    assert!(
        html(&known).contains("If an account exists for that address, we sent it a link"),
        "{}",
        html(&known)
    );
}

#[tokio::test]
async fn the_reset_pages_set_a_new_password_and_sign_every_browser_out() {
    let sink = SmtpSink::start().await.unwrap();
    let app = app_mailing(&sink, |_| {}).await;
    let (signed_in, _, _) = sign_up(&app, "ada@example.org").await;
    link_in_mail(&sink, "ada@example.org", "/account/verify").await;
    let sign_in = page(&app, "/signin", None).await;
    assert!(html(&sign_in).contains("<a href=\"/account/forgot\">Forgot your password?</a>"));

    let form = page(&app, "/account/forgot", None).await;
    let cookie = session_cookie(&form).unwrap();
    let asked = post_form(
        &app,
        "/account/forgot",
        &cookie,
        &[("_csrf", &form_token(html(&form))), ("email", "ada@example.org")],
    )
    .await;
    assert_eq!(asked.status, 200, "{asked:?}");
    let link = link_in_mail(&sink, "ada@example.org", "/account/reset").await;

    let forged = page(&app, "/account/reset?token=not-a-token", None).await;
    assert_eq!(forged.status, 400);
    assert!(html(&forged).contains("This reset link does not work"), "{}", html(&forged));
    assert!(html(&forged).contains("<a href=\"/account/forgot\">Ask for a new reset link</a>"));

    let reset_form = page(&app, &path_of(&app, &link), Some(&cookie)).await;
    assert_eq!(reset_form.status, 200, "{reset_form:?}");
    let text = html(&reset_form);
    assert!(text.contains(&format!("name=\"token\" value=\"{}\"", token_of(&link))), "{text}");
    assert!(text.contains("<label for=\"password\">New password"), "{text}");
    let csrf = form_token(text);
    let weak = post_form(
        &app,
        "/account/reset",
        &cookie,
        &[("_csrf", &csrf), ("token", token_of(&link)), ("password", "short")],
    )
    .await;
    assert_eq!(weak.status, 422);
    assert!(html(&weak).contains("password: must be at least 10 characters"), "{}", html(&weak));
    let changed = post_form(
        &app,
        "/account/reset",
        &cookie,
        &[("_csrf", &csrf), ("token", token_of(&link)), ("password", NEW_PASSWORD)],
    )
    .await;
    assert_eq!((changed.status.as_u16(), changed.header("location")), (303, Some("/signin")), "{changed:?}");
    let after = session_cookie(&changed).unwrap_or(cookie);
    let signin = page(&app, "/signin", Some(&after)).await;
    assert!(html(&signin).contains("Password changed; sign in with your new password."), "{}", html(&signin));
    assert_eq!(me(&app, Protocol::Http2, &signed_in).await.status, 401, "the other browser is signed out");
    let reused = page(&app, &path_of(&app, &link), None).await;
    assert_eq!(reused.status, 400);
    assert!(html(&reused).contains("used already"), "{}", html(&reused));
}

#[tokio::test]
async fn the_account_page_sends_the_link_again_at_most_every_few_minutes() {
    let sink = SmtpSink::start().await.unwrap();
    let app = app_mailing(&sink, |_| {}).await;
    let (cookie, _, _) = sign_up(&app, "ada@example.org").await;
    let first = link_in_mail(&sink, "ada@example.org", "/account/verify").await;
    // Inside the resend interval of the sign-up's own mail: refused, with the wait.
    let account = page(&app, "/account", Some(&cookie)).await;
    let text = html(&account);
    assert!(text.contains("<form method=\"post\" action=\"/account/verification\">"), "{text}");
    let csrf = form_token(text);
    let refused = post_form(&app, "/account/verification", &cookie, &[("_csrf", &csrf)]).await;
    assert_eq!((refused.status.as_u16(), refused.header("location")), (303, Some("/account")));
    let shown = page(&app, "/account", Some(&cookie)).await;
    assert!(html(&shown).contains("A link was mailed moments ago; ask again in"), "{}", html(&shown));
    assert!(sink.next(Duration::from_millis(300)).await.is_none());

    // The first link still works, and the button is gone once it has.
    let verified = page(&app, &path_of(&app, &first), Some(&cookie)).await;
    assert_eq!(verified.status, 303);
    let done = page(&app, "/account", Some(&cookie)).await;
    assert!(!html(&done).contains("/account/verification"), "{}", html(&done));
}
