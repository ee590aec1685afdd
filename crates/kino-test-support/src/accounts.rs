//! The first account of a test server: uploads need an uploader (or an admin), and the first
//! account of a fresh server is an admin.

use std::net::SocketAddr;
use std::time::Duration;

/// The test uploader's sign-in.
const EMAIL: &str = "uploader@kino.test";
const PASSWORD: &str = "an uploader's passphrase";

/// Signs up the first account of the server whose plain HTTP listens on `http`, unless a run on
/// the same data dir did, and answers `Bearer <its access token>` for an `Authorization` header.
///
/// # Panics
/// When the server refuses: the account would be no admin (someone signed up first), or the
/// server is not a kino.
pub async fn first_account_token(http: SocketAddr) -> String {
    // reqwest is built without a TLS provider of its own in this workspace: ring, as kino uses.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = reqwest::Client::builder().timeout(Duration::from_secs(20)).build().expect("client");
    let credentials = serde_json::json!({ "email": EMAIL, "password": PASSWORD });
    let signed_up = client.post(format!("http://{http}/api/users")).json(&credentials).send().await;
    let signed_up = signed_up.expect("sign-up answers");
    // 409: signed up by an earlier run on the same data dir.
    if signed_up.status() != 409 {
        assert_eq!(signed_up.status(), 201, "the test uploader signs up");
        let body: serde_json::Value = signed_up.json().await.expect("sign-up JSON");
        assert_eq!(body["user"]["role"], "admin", "the test uploader must be the first account");
    }
    let token = client.post(format!("http://{http}/api/auth/token")).json(&credentials).send().await;
    let token = token.expect("the token endpoint answers");
    assert_eq!(token.status(), 200, "the test uploader gets a token");
    let pair: serde_json::Value = token.json().await.expect("token JSON");
    format!("Bearer {}", pair["access_token"].as_str().expect("an access token"))
}
