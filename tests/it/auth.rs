//! API tokens over every protocol: refresh rotation, reuse detection, sign-out, and the negative
//! corpus of access tokens (each a 401 with a JSON body, and no key source ever fetched).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use bytes::Bytes;
use http::Method;
use kino_test_support::BlackHole;
use serde_json::{Value, json};

use crate::common::{ALL_PROTOCOLS, Protocol, TestApp, spawn_app};

/// `POST path` with a JSON body; the status and the JSON answer (null for an empty body).
async fn post(app: &TestApp, protocol: Protocol, path: &str, body: &Value) -> (u16, Value) {
    let headers = [("content-type", "application/json"), ("accept", "application/json")];
    let answer = app.send(protocol, Method::POST, path, &headers, Bytes::from(body.to_string())).await;
    let json =
        if answer.body.is_empty() { Value::Null } else { serde_json::from_slice(&answer.body).unwrap() };
    (answer.status.as_u16(), json)
}

/// A sign-in's pair for `user`.
async fn pair(app: &TestApp, protocol: Protocol, user: &str) -> Value {
    let (status, pair) = post(app, protocol, "/__test/auth/pair", &json!({ "user_id": user })).await;
    assert_eq!(status, 200, "{pair}");
    pair
}

/// What a protected route answers to `Authorization: <authorization>`.
async fn protected(
    app: &TestApp,
    protocol: Protocol,
    authorization: Option<&str>,
) -> crate::snapshot::Snapshot {
    let mut headers = vec![("accept", "application/json")];
    if let Some(value) = authorization {
        headers.push(("authorization", value));
    }
    app.fetch(protocol, Method::GET, "/__test/auth/claims", &headers).await
}

async fn refresh(app: &TestApp, protocol: Protocol, token: &Value) -> (u16, Value) {
    post(app, protocol, "/api/auth/refresh", &json!({ "refresh_token": token })).await
}

#[tokio::test]
async fn a_refresh_token_rotates_once_and_its_reuse_revokes_the_whole_family() {
    let app = spawn_app().await;
    for protocol in ALL_PROTOCOLS {
        let first = pair(&app, protocol, "user-7").await;
        assert_eq!((first["token_type"].as_str(), first["expires_in"].as_u64()), (Some("Bearer"), Some(900)));
        assert_eq!(first["refresh_expires_in"], 30 * 24 * 3600);
        let me =
            protected(&app, protocol, Some(&format!("Bearer {}", first["access_token"].as_str().unwrap())))
                .await;
        assert_eq!(me.status, 200, "{protocol:?}");
        assert_eq!(serde_json::from_slice::<Value>(&me.body).unwrap()["sub"], "user-7");

        let (status, second) = refresh(&app, protocol, &first["refresh_token"]).await;
        assert_eq!(status, 200, "{protocol:?}: {second}");
        assert_ne!(second["refresh_token"], first["refresh_token"]);
        assert_ne!(second["access_token"], first["access_token"]);
        let (status, third) = refresh(&app, protocol, &second["refresh_token"]).await;
        assert_eq!(status, 200, "{protocol:?}: {third}");

        // The first token again: someone holds a copy. Refused, and the family is revoked, so
        // the newest token, never used, stops working too.
        let (status, reused) = refresh(&app, protocol, &first["refresh_token"]).await;
        assert_eq!(status, 401, "{protocol:?}: {reused}");
        assert_eq!(reused["error"]["code"], "unauthorized");
        assert!(reused["error"]["message"].as_str().unwrap().contains("already used"), "{reused}");
        let (status, newest) = refresh(&app, protocol, &third["refresh_token"]).await;
        assert_eq!(status, 401, "{protocol:?}: {newest}");
        assert!(newest["error"]["message"].as_str().unwrap().contains("revoked"), "{newest}");

        // Another sign-in of the same user is another family, untouched.
        let other = pair(&app, protocol, "user-7").await;
        assert_eq!(refresh(&app, protocol, &other["refresh_token"]).await.0, 200);
    }
}

#[tokio::test]
async fn logout_revokes_the_family_and_bad_bodies_say_what_is_wrong() {
    let app = spawn_app().await;
    for protocol in ALL_PROTOCOLS {
        let first = pair(&app, protocol, "user-8").await;
        let (_, second) = refresh(&app, protocol, &first["refresh_token"]).await;
        let body = json!({ "refresh_token": second["refresh_token"] });
        assert_eq!(post(&app, protocol, "/api/auth/logout", &body).await, (204, Value::Null));
        assert_eq!(refresh(&app, protocol, &second["refresh_token"]).await.0, 401, "{protocol:?}");
        // Signing out twice is fine; an unknown token is not.
        assert_eq!(post(&app, protocol, "/api/auth/logout", &body).await.0, 204);
        let (status, unknown) =
            post(&app, protocol, "/api/auth/logout", &json!({ "refresh_token": "x".repeat(43) })).await;
        assert_eq!(
            (status, unknown["error"]["message"].as_str()),
            (401, Some("the refresh token is unknown"))
        );
    }
    let client = app.h2();
    for (content_type, body, status, code) in [
        ("application/json", "{\"refresh_token\":", 400, "bad_request"),
        ("application/json", "{\"token\":\"abc\"}", 422, "unprocessable"),
        ("text/plain", "{\"refresh_token\":\"abc\"}", 415, "unsupported_media_type"),
    ] {
        let response = client
            .post(app.tls_url("/api/auth/refresh"))
            .header("content-type", content_type)
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), status, "{body}");
        let json: Value = response.json().await.unwrap();
        assert_eq!(json["error"]["code"], code, "{json}");
    }
}

#[tokio::test]
async fn an_expired_refresh_token_renews_nothing() {
    let app = spawn_app().await;
    let pair = pair(&app, Protocol::Http3, "user-10").await;
    let db = sqlx::SqlitePool::connect(&format!("sqlite://{}", app.data_dir().join("kino.db").display()))
        .await
        .unwrap();
    sqlx::query("UPDATE refresh_tokens SET expires_at = 0").execute(&db).await.unwrap();
    let (status, answer) = refresh(&app, Protocol::Http3, &pair["refresh_token"]).await;
    assert_eq!(status, 401, "{answer}");
    assert_eq!(answer["error"]["message"], "the refresh token has expired; sign in again");
}

#[tokio::test]
async fn refresh_tokens_are_stored_only_as_their_sha256() {
    let app = spawn_app().await;
    let pair = pair(&app, Protocol::Http2, "user-9").await;
    let token = pair["refresh_token"].as_str().unwrap();
    let db = sqlx::SqlitePool::connect(&format!("sqlite://{}", app.data_dir().join("kino.db").display()))
        .await
        .unwrap();
    let rows: Vec<(String, String)> =
        sqlx::query_as("SELECT user_id, token_hash FROM refresh_tokens").fetch_all(&db).await.unwrap();
    let digest = ring::digest::digest(&ring::digest::SHA256, token.as_bytes());
    let hex: String = digest.as_ref().iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(rows, [("user-9".to_owned(), hex)]);
    let dump: Vec<(String,)> =
        sqlx::query_as("SELECT id || family_id || user_id || token_hash FROM refresh_tokens")
            .fetch_all(&db)
            .await
            .unwrap();
    assert!(!dump[0].0.contains(token));
}

/// `value` as the base64url JSON of a token part.
fn part(value: &Value) -> String {
    B64.encode(value.to_string())
}

/// A token the server signs with its own key, whatever the header and claims say.
async fn signed(app: &TestApp, header: Value, claims: &Value) -> String {
    let (status, answer) =
        post(app, Protocol::Http2, "/__test/auth/sign", &json!({ "header": header, "claims": claims })).await;
    assert_eq!(status, 200, "{answer}");
    answer["token"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn every_forged_expired_or_foreign_token_is_a_401_in_json_and_no_key_source_is_fetched() {
    let app = spawn_app().await;
    let trap = BlackHole::start().await.unwrap();
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    let claims = json!({
        "sub": "user-1", "aud": "kino-api", "iss": "kino", "exp": now + 600, "nbf": now - 1,
        "iat": now - 1, "jti": "corpus",
    });
    let with = |key: &str, value: Value| {
        let mut changed = claims.clone();
        changed[key] = value;
        changed
    };
    let hs256 = json!({ "alg": "HS256", "typ": "JWT" });
    let good = signed(&app, hs256.clone(), &claims).await;
    let kid: Value = serde_json::from_slice(&B64.decode(good.split('.').next().unwrap()).unwrap()).unwrap();
    let kid = kid["kid"].as_str().unwrap().to_owned();
    let [head, body, signature]: [&str; 3] = good.split('.').collect::<Vec<_>>().try_into().unwrap();

    // HS/RS confusion: the server's own public key (its TLS certificate) as the HMAC secret.
    let public_key = std::fs::read(app.cert_dir().join("cert.pem")).unwrap();
    let confused = {
        let message = format!("{head}.{body}");
        let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &public_key);
        format!("{message}.{}", B64.encode(ring::hmac::sign(&key, message.as_bytes())))
    };
    let jku = format!("http://{}/jwks.json", trap.addr());
    let mut flipped = signature.to_owned().into_bytes();
    flipped[0] = if flipped[0] == b'A' { b'B' } else { b'A' };
    let flipped = String::from_utf8(flipped).unwrap();
    let admin = part(&with("sub", json!("admin")));
    let none = json!({ "alg": "none", "typ": "JWT", "kid": kid });

    let corpus: Vec<(&str, String, &str)> = vec![
        ("alg none, no signature", format!("{}.{body}.", part(&none)), "algorithm"),
        ("alg none, a real signature", format!("{}.{body}.{signature}", part(&none)), "algorithm"),
        ("alg None", format!("{}.{body}.", part(&json!({ "alg": "None", "kid": kid }))), "algorithm"),
        ("no alg", format!("{}.{body}.{signature}", part(&json!({ "kid": kid }))), "algorithm"),
        ("RS256 header, HMAC'd with the real key", signed(&app, json!({ "alg": "RS256", "typ": "JWT" }), &claims).await, "algorithm"),
        ("HS512 header", signed(&app, json!({ "alg": "HS512" }), &claims).await, "algorithm"),
        ("EdDSA header", signed(&app, json!({ "alg": "EdDSA" }), &claims).await, "algorithm"),
        ("HS256 with the public key as secret", confused, "signature"),
        ("expired", signed(&app, hs256.clone(), &with("exp", json!(now - 600))).await, "expired"),
        ("nbf in the future", signed(&app, hs256.clone(), &with("nbf", json!(now + 600))).await, "not valid yet"),
        ("wrong audience", signed(&app, hs256.clone(), &with("aud", json!("someone-else"))).await, "audience"),
        ("wrong issuer", signed(&app, hs256.clone(), &with("iss", json!("evil"))).await, "issuer"),
        ("unknown kid", signed(&app, json!({ "alg": "HS256", "kid": "hs256-AAAAAAAAAAAA" }), &claims).await, "key id"),
        ("no kid", signed(&app, json!({ "alg": "HS256", "kid": null }), &claims).await, "key id"),
        ("jku to a listener", signed(&app, json!({ "alg": "HS256", "jku": jku }), &claims).await, "key source"),
        ("x5u to a listener", signed(&app, json!({ "alg": "HS256", "x5u": jku }), &claims).await, "key source"),
        ("embedded jwk", signed(&app, json!({ "alg": "HS256", "jwk": { "kty": "oct", "k": "AAAA" } }), &claims).await, "key source"),
        ("tampered payload", format!("{head}.{admin}.{signature}"), "signature"),
        ("tampered signature", format!("{head}.{body}.{flipped}"), "signature"),
        ("truncated signature", good[..good.len() - 5].to_owned(), "the token"),
        ("two parts", format!("{head}.{body}"), "malformed"),
        ("garbage", "not-a-token".to_owned(), "malformed"),
        ("garbage parts", "a.b.c".to_owned(), "malformed"),
        ("no exp", signed(&app, hs256.clone(), &json!({ "sub": "u", "aud": "kino-api", "iss": "kino", "nbf": now, "iat": now, "jti": "j" })).await, "claim"),
        ("no jti", signed(&app, hs256.clone(), &json!({ "sub": "u", "aud": "kino-api", "iss": "kino", "exp": now + 60, "nbf": now, "iat": now })).await, "claim"),
        ("huge", "a".repeat(6000), "malformed"),
    ];
    for protocol in ALL_PROTOCOLS {
        let fine = claims_of(&app, protocol, &good).await;
        assert_eq!(fine.status, 200, "{protocol:?}: the control token works");
        for (case, token, reason) in &corpus {
            let answer = claims_of(&app, protocol, token).await;
            assert_eq!(answer.status, 401, "{protocol:?} {case}");
            assert_eq!(answer.header("content-type"), Some("application/json"), "{case}");
            assert!(answer.header("www-authenticate").is_some_and(|v| v.starts_with("Bearer ")), "{case}");
            let json: Value = serde_json::from_slice(&answer.body).unwrap();
            assert_eq!(json["error"]["code"], "unauthorized", "{case}");
            let message = json["error"]["message"].as_str().unwrap();
            assert!(message.contains(reason), "{protocol:?} {case}: {message}");
        }
        for (case, header) in
            [("no header", None), ("Basic", Some("Basic dXNlcjpwYXNz")), ("empty Bearer", Some("Bearer "))]
        {
            let answer = protected(&app, protocol, header).await;
            assert_eq!(answer.status, 401, "{protocol:?} {case}");
        }
    }
    assert_eq!(trap.connections(), 0, "a jku or x5u URL was fetched");
}

async fn claims_of(app: &TestApp, protocol: Protocol, token: &str) -> crate::snapshot::Snapshot {
    protected(app, protocol, Some(&format!("Bearer {token}"))).await
}

#[tokio::test]
async fn a_password_gets_a_pair_whose_access_token_names_the_account() {
    let app = spawn_app().await;
    let account = json!({ "email": "ada@example.org", "password": "analytical engine" });
    let (status, signed_up) = post(&app, Protocol::Http1, "/api/users", &account).await;
    assert_eq!(status, 201, "{signed_up}");
    let id = signed_up["user"]["id"].as_str().unwrap().to_owned();
    for protocol in ALL_PROTOCOLS {
        // Emails are compared without case.
        let body = json!({ "email": "ADA@example.org", "password": "analytical engine" });
        let (status, pair) = post(&app, protocol, "/api/auth/token", &body).await;
        assert_eq!(status, 200, "{protocol:?}: {pair}");
        let bearer = format!("Bearer {}", pair["access_token"].as_str().unwrap());
        let me = protected(&app, protocol, Some(&bearer)).await;
        assert_eq!(me.status, 200, "{protocol:?}");
        assert_eq!(serde_json::from_slice::<Value>(&me.body).unwrap()["sub"], id.as_str());
        assert_eq!(refresh(&app, protocol, &pair["refresh_token"]).await.0, 200, "{protocol:?}");
        for (email, password) in
            [("ada@example.org", "the wrong password"), ("nobody@example.org", "analytical engine")]
        {
            let body = json!({ "email": email, "password": password });
            let (status, refused) = post(&app, protocol, "/api/auth/token", &body).await;
            assert_eq!(status, 401, "{protocol:?} {email}: {refused}");
            assert_eq!(refused["error"]["message"], "wrong email or password", "{refused}");
        }
    }
    let (status, refused) =
        post(&app, Protocol::Http1, "/api/auth/token", &json!({ "email": "x@y.z" })).await;
    assert_eq!(status, 422, "a body without a password: {refused}");
}
