//! Rate limits per client address and per signed-in user, and the per-address connection cap
//! (issue 14), over real sockets from 127.0.0.1.

use std::time::{Duration, Instant};

use http::Method;
use kino::config::Budget;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::common::{MEMORY, Protocol, TEST_TIMEOUT, TestApp, spawn_app_with};

/// 10 requests a second, 20 at once: small enough that 200 requests in 2 s overrun it.
const SMALL: Budget = Budget { rate: 10, per: Duration::from_secs(1), burst: 20 };

/// 5 requests, then one a minute: nothing refills while a test runs.
const SLOW: Budget = Budget { rate: 1, per: Duration::from_secs(60), burst: 5 };

async fn spawn_limited(page: Budget, trust_proxies: &[&str]) -> TestApp {
    let trust: Vec<ipnet::IpNet> = trust_proxies.iter().map(|net| net.parse().unwrap()).collect();
    spawn_app_with(|config| {
        config.rate_limit.enabled = true;
        config.rate_limit.page = page;
        config.trust_proxies = trust;
    })
    .await
}

/// The status of `GET /api/videos` sent with `headers`.
async fn status(app: &TestApp, client: &reqwest::Client, headers: &[(&str, &str)]) -> u16 {
    let mut request = client.get(app.plain_url("/api/videos"));
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    request.send().await.unwrap().status().as_u16()
}

#[tokio::test]
async fn two_hundred_requests_in_two_seconds_from_one_address_get_429_past_the_budget() {
    let app = spawn_limited(SMALL, &[]).await;
    let client = app.plain();
    let (mut ok, mut limited) = (0u32, 0u32);
    let start = Instant::now();
    tokio::time::timeout(TEST_TIMEOUT, async {
        for n in 0..200u32 {
            // Spread over 2 s, as a client hammering at 100 requests a second would.
            tokio::time::sleep_until((start + Duration::from_millis(10 * u64::from(n))).into()).await;
            match status(&app, &client, &[]).await {
                200 => ok += 1,
                429 => limited += 1,
                other => panic!("unexpected status {other}"),
            }
        }
    })
    .await
    .expect("200 requests answered");
    let elapsed = start.elapsed().as_secs_f64();
    // The budget admits the burst plus the refill over the elapsed time, not a request more.
    let admitted = f64::from(SMALL.burst) + elapsed * f64::from(SMALL.rate) + 1.0;
    assert!(f64::from(ok) <= admitted, "{ok} admitted in {elapsed:.2} s, at most {admitted:.0} allowed");
    assert!(ok >= SMALL.burst, "the burst of {} was not admitted: {ok}", SMALL.burst);
    assert_eq!(ok + limited, 200);
    assert!(limited >= 200 - admitted as u32, "{limited} refused");
    // Health probes are not counted: monitoring still sees the server.
    assert_eq!(client.get(app.plain_url("/healthz")).send().await.unwrap().status(), 200);
}

#[tokio::test]
async fn a_429_says_when_to_retry_and_which_budget_is_spent() {
    let app = spawn_limited(SLOW, &[]).await;
    let client = app.plain();
    for _ in 0..SLOW.burst {
        assert_eq!(status(&app, &client, &[]).await, 200);
    }
    let refused = client.get(app.plain_url("/api/videos")).send().await.unwrap();
    assert_eq!(refused.status(), 429);
    let header = |name: &str| refused.headers().get(name).map(|v| v.to_str().unwrap().to_owned());
    // The next request refills a minute after the burst began; whole seconds, rounded up.
    assert_eq!(header("retry-after").as_deref(), Some("60"));
    assert_eq!(header("ratelimit-policy").as_deref(), Some("\"page\";q=5;w=300"));
    assert_eq!(header("ratelimit").as_deref(), Some("\"page\";r=0;t=60"));
    let body: serde_json::Value = refused.json().await.unwrap();
    assert_eq!(body["error"]["code"], "rate_limited", "{body}");
    // A spent page budget leaves the stream budget alone.
    let media = client.get(app.plain_url("/static/nonexistent.css")).send().await.unwrap();
    assert_ne!(media.status(), 429);
}

#[tokio::test]
async fn spoofed_forwarded_headers_from_an_untrusted_peer_change_nothing() {
    let app = spawn_limited(SLOW, &[]).await;
    let client = app.plain();
    let mut statuses = Vec::new();
    for n in 0..SLOW.burst + 5 {
        // Every request claims another client; the peer, 127.0.0.1, is all that counts.
        let claimed = format!("198.51.100.{n}");
        let forwarded = format!("for={claimed}");
        let headers = [("x-forwarded-for", claimed.as_str()), ("forwarded", forwarded.as_str())];
        statuses.push(status(&app, &client, &headers).await);
    }
    let limited = statuses.iter().filter(|&&s| s == 429).count();
    assert_eq!(limited, 5, "spoofed addresses escaped the budget: {statuses:?}");
}

#[tokio::test]
async fn a_trusted_proxy_gets_a_budget_per_forwarded_client() {
    let app = spawn_limited(SLOW, &["127.0.0.1/32"]).await;
    let client = app.plain();
    for _ in 0..SLOW.burst {
        assert_eq!(status(&app, &client, &[("x-forwarded-for", "198.51.100.1")]).await, 200);
    }
    assert_eq!(status(&app, &client, &[("x-forwarded-for", "198.51.100.1")]).await, 429);
    // Another client behind the same proxy has its own full budget, whatever it prepends.
    assert_eq!(status(&app, &client, &[("x-forwarded-for", "198.51.100.1, 198.51.100.2")]).await, 200);
    assert_eq!(status(&app, &client, &[("forwarded", "for=\"[2001:db8::1]:4711\"")]).await, 200);
}

/// A signed-up account: `Bearer <access token>` and its session cookie (`kino_session=<id>`).
struct Account {
    bearer: String,
    cookie: String,
}

/// Signs `email` up over plain HTTP (a session cookie) and gets it an access token.
async fn sign_up(app: &TestApp, email: &str) -> Account {
    let client = app.plain();
    let credentials = serde_json::json!({ "email": email, "password": "a passphrase for limits" });
    let signed_up = {
        let _hashing = MEMORY.read().await;
        client.post(app.plain_url("/api/users")).json(&credentials).send().await.unwrap()
    };
    assert_eq!(signed_up.status(), 201, "{email} signs up");
    let set_cookie = signed_up.headers()["set-cookie"].to_str().unwrap();
    let cookie = set_cookie.split(';').next().unwrap().to_owned();
    assert!(cookie.starts_with("kino_session="), "{set_cookie}");
    let token = {
        let _hashing = MEMORY.read().await;
        client.post(app.plain_url("/api/auth/token")).json(&credentials).send().await.unwrap()
    };
    assert_eq!(token.status(), 200, "{email} gets a token");
    let pair: serde_json::Value = token.json().await.unwrap();
    Account { bearer: format!("Bearer {}", pair["access_token"].as_str().unwrap()), cookie }
}

/// The status of `GET /api/me` over `protocol` sent with `headers`.
async fn me(app: &TestApp, protocol: Protocol, headers: &[(&str, &str)]) -> u16 {
    app.fetch(protocol, Method::GET, "/api/me", headers).await.status.as_u16()
}

#[tokio::test]
async fn two_users_behind_one_address_each_get_their_own_budget_on_every_protocol() {
    let app = spawn_limited(SLOW, &[]).await;
    let (alice, bob) = (sign_up(&app, "alice@kino.test").await, sign_up(&app, "bob@kino.test").await);
    let alice = [("authorization", alice.bearer.as_str())];
    let bob = [("authorization", bob.bearer.as_str())];
    for _ in 0..SLOW.burst {
        assert_eq!(me(&app, Protocol::Http1, &alice).await, 200);
    }
    assert_eq!(me(&app, Protocol::Http1, &alice).await, 429, "Alice's budget is spent");
    // Bob, from the same 127.0.0.1, has all of his, whichever protocol or connection he uses.
    for protocol in [Protocol::Http2, Protocol::Http3, Protocol::Http2, Protocol::Http3, Protocol::Http1] {
        assert_eq!(me(&app, protocol, &bob).await, 200, "Bob over {protocol:?}");
    }
    for protocol in [Protocol::Http1, Protocol::Http2, Protocol::Http3] {
        assert_eq!(me(&app, protocol, &bob).await, 429, "Bob's budget is spent over {protocol:?}");
        assert_eq!(me(&app, protocol, &alice).await, 429, "Alice's stays spent over {protocol:?}");
    }
    // Neither spent the address's: an anonymous request from it goes through.
    assert_eq!(status(&app, &app.plain(), &[]).await, 200);
    // Counted as refusals of the page budget.
    let metrics = app.plain().get(app.plain_url("/metrics")).send().await.unwrap().text().await.unwrap();
    assert!(metrics.contains("kino_rate_limited_total{budget=\"page\"} 7\n"), "{metrics}");
}

#[tokio::test]
async fn a_users_token_spends_one_budget_whatever_address_it_comes_from() {
    // Behind a trusted proxy, so every forwarded address would be a budget of its own.
    let app = spawn_limited(SLOW, &["127.0.0.1/32"]).await;
    let alice = sign_up(&app, "alice@kino.test").await;
    let mut statuses = Vec::new();
    for n in 0..SLOW.burst + 3 {
        let forwarded = format!("198.51.100.{n}");
        let headers = [("authorization", alice.bearer.as_str()), ("x-forwarded-for", forwarded.as_str())];
        statuses.push(me(&app, Protocol::Http1, &headers).await);
    }
    assert_eq!(statuses.iter().filter(|&&s| s == 429).count(), 3, "a new address escaped: {statuses:?}");
    // The addresses themselves were not charged.
    assert_eq!(status(&app, &app.plain(), &[("x-forwarded-for", "198.51.100.0")]).await, 200);
}

#[tokio::test]
async fn an_invalid_token_spends_the_addresss_budget_not_its_claimed_users() {
    let app = spawn_limited(SLOW, &[]).await;
    let alice = sign_up(&app, "alice@kino.test").await;
    // Alice's own token with its signature changed: the `sub` says Alice, but nothing vouches.
    let (signed, signature) = alice.bearer.rsplit_once('.').unwrap();
    let flipped = if signature.starts_with('A') { 'B' } else { 'A' };
    let forged = format!("{signed}.{flipped}{}", &signature[1..]);
    for _ in 0..SLOW.burst {
        assert_eq!(me(&app, Protocol::Http1, &[("authorization", forged.as_str())]).await, 401);
    }
    // The address's budget is spent, garbage or not ...
    assert_eq!(me(&app, Protocol::Http1, &[("authorization", forged.as_str())]).await, 429);
    assert_eq!(me(&app, Protocol::Http2, &[("authorization", "Bearer garbage")]).await, 429);
    assert_eq!(status(&app, &app.plain(), &[]).await, 429);
    // ... and Alice's is whole.
    for protocol in [Protocol::Http1, Protocol::Http2, Protocol::Http3] {
        assert_eq!(me(&app, protocol, &[("authorization", alice.bearer.as_str())]).await, 200);
    }
}

#[tokio::test]
async fn a_session_cookie_spends_its_users_budget_once_it_is_seen_signed_in() {
    let app = spawn_limited(SLOW, &[]).await;
    let alice = sign_up(&app, "alice@kino.test").await;
    let cookie = [("cookie", alice.cookie.as_str())];
    let client = app.plain();
    // The first request's session is loaded by the handler (who is signed in?): until then the
    // cookie is only a cookie, and the address pays.
    let first = client.get(app.plain_url("/api/me")).header("cookie", &alice.cookie).send().await.unwrap();
    assert_eq!(first.status(), 200);
    for _ in 0..SLOW.burst {
        assert_eq!(status(&app, &client, &cookie).await, 200);
    }
    assert_eq!(status(&app, &client, &cookie).await, 429, "Alice's budget is spent");
    // The same user with her token: the same budget.
    assert_eq!(me(&app, Protocol::Http1, &[("authorization", alice.bearer.as_str())]).await, 429);
    // Made-up session ids (well-formed: hers with another first letter) buy no budget: they
    // are the address's, which has 4 of 5 left.
    let id = alice.cookie.strip_prefix("kino_session=").unwrap();
    let made_up: Vec<String> = ['A', 'B', 'C', 'D', 'E', 'F']
        .into_iter()
        .filter(|&first| !id.starts_with(first))
        .map(|first| format!("kino_session={first}{}", &id[1..]))
        .collect();
    for cookie in &made_up[..4] {
        assert_eq!(status(&app, &client, &[("cookie", cookie.as_str())]).await, 200);
    }
    assert_eq!(status(&app, &client, &[("cookie", made_up[4].as_str())]).await, 429);
    assert_eq!(status(&app, &client, &[]).await, 429);
}

#[tokio::test]
async fn a_signed_out_cookie_counts_against_its_address_again() {
    let app = spawn_limited(SLOW, &[]).await;
    let alice = sign_up(&app, "alice@kino.test").await;
    let client = app.plain();
    let get_me = || client.get(app.plain_url("/api/me")).header("cookie", &alice.cookie).send();
    // Seen signed in (the address pays for this one), then signed out on Alice's budget.
    let signed_in: serde_json::Value = get_me().await.unwrap().json().await.unwrap();
    let csrf = signed_in["csrf_token"].as_str().unwrap();
    let signed_out = client
        .delete(app.plain_url("/api/session"))
        .header("cookie", &alice.cookie)
        .header("x-csrf-token", csrf)
        .header("origin", app.plain_url(""))
        .send()
        .await
        .unwrap();
    assert_eq!(signed_out.status(), 204);
    // The next look at the old cookie finds nobody: from then on the address pays, which has
    // 4 of 5 left (Alice had 3).
    assert_eq!(get_me().await.unwrap().status(), 401);
    for _ in 0..4 {
        assert_eq!(get_me().await.unwrap().status(), 401);
    }
    assert_eq!(get_me().await.unwrap().status(), 429);
    assert_eq!(status(&app, &client, &[]).await, 429);
    assert_eq!(me(&app, Protocol::Http1, &[("authorization", alice.bearer.as_str())]).await, 200);
}

/// Opens a connection and gets one keep-alive answer on it, so the server has counted it.
async fn served_connection(app: &TestApp) -> TcpStream {
    let mut stream = TcpStream::connect(app.http).await.unwrap();
    stream.write_all(b"GET /healthz HTTP/1.1\r\nhost: kino\r\n\r\n").await.unwrap();
    let mut buf = [0u8; 512];
    let n = stream.read(&mut buf).await.unwrap();
    assert!(buf[..n].starts_with(b"HTTP/1.1 200"), "{:?}", String::from_utf8_lossy(&buf[..n]));
    stream
}

/// Whether a new connection gets an answer (the server closes refused ones unanswered).
async fn answered(app: &TestApp) -> bool {
    let Ok(mut stream) = TcpStream::connect(app.http).await else { return false };
    if stream.write_all(b"GET /healthz HTTP/1.1\r\nhost: kino\r\nconnection: close\r\n\r\n").await.is_err() {
        return false;
    }
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut answer)).await;
    answer.starts_with(b"HTTP/1.1 200")
}

#[tokio::test]
async fn one_address_gets_at_most_max_connections_per_ip_on_http1() {
    let app = spawn_app_with(|config| config.limits.max_connections_per_ip = 3).await;
    tokio::time::timeout(TEST_TIMEOUT, async {
        let mut open = Vec::new();
        for _ in 0..3 {
            open.push(served_connection(&app).await);
        }
        assert!(!answered(&app).await, "a fourth connection from 127.0.0.1 was served");
        // Closing one frees its slot (the server notices the close, so give it a moment).
        drop(open.pop());
        let start = Instant::now();
        while !answered(&app).await {
            assert!(start.elapsed() < Duration::from_secs(5), "the freed slot was never given back");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("bounded in time");
}

#[tokio::test]
async fn one_address_gets_at_most_max_connections_per_ip_on_http3() {
    let app = spawn_app_with(|config| config.limits.max_connections_per_ip = 2).await;
    tokio::time::timeout(TEST_TIMEOUT, async {
        let url = app.tls_url("/healthz");
        let mut first = app.h3().await;
        let mut second = app.h3().await;
        assert_eq!(first.get(&url, &[]).await.unwrap().status(), 200);
        assert_eq!(second.get(&url, &[]).await.unwrap().status(), 200);
        let third = kino_test_support::H3Client::connect(app.https, &app.ca_pem).await;
        assert!(third.is_err(), "a third QUIC connection from 127.0.0.1 was accepted");
    })
    .await
    .expect("bounded in time");
}
