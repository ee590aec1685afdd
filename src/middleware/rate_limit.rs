//! Token-bucket rate limits per client, one budget per class of request (governor's GCRA).
//!
//! A signed-in request spends its user's budget, wherever it comes from: people behind one
//! address (an office NAT) each get their own, and one account cannot dodge its budget by
//! changing address. Anything else spends the budget of its client address from
//! [`crate::client_ip`] (IPv6 by its /64), as does every request of the `auth` class (sign-in
//! and sign-up, pages and API, `/api/auth/*`, asking for or spending a mailed link), which is
//! made before anyone is signed in. The budgets are the same for users and addresses: the limit
//! is on what one client may cost, however it is named.
//!
//! Signed in means a valid bearer token (its `sub`; verified here, once per request: the claims
//! are left for [`BearerClaims`]) or a session cookie already seen signed in. The session is
//! not loaded here: that would cost a database read on every media range of a signed-in viewer
//! (ARCHITECTURE.md §2), and made-up cookies would buy a read each. Nor is an unknown cookie
//! keyed by itself: any client could draw a fresh budget with every made-up id. Instead
//! [`MaybeUser`](crate::accounts::MaybeUser) tells (through a [`SessionWitness`]) whom a cookie
//! signed in once a page or API call asks, and the cookie's later requests spend that user's
//! budget; until then, and after it signs nobody in, they spend the address's.

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::extract::{Request, State};
use axum::http::Method;
use axum::http::header::AUTHORIZATION;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use governor::clock::Clock;
use governor::state::keyed::HashMapStateStore;
use governor::{Quota, RateLimiter};
use tower_sessions_core::session::Id;

use crate::accounts::session::SessionWitness;
use crate::auth::{BearerClaims, Tokens, bearer_token};
use crate::client_ip::{self, ClientIp};
use crate::config::{Budget, Config};
use crate::error::{AppError, Throttle};
use crate::metrics::Stats;
use crate::middleware::session;
use crate::peer::ConnectionInfo;

/// Requests between two sweeps of idle keys. A key is dropped once its bucket is full again
/// (governor's `retain_recent`), so the map holds only addresses active within one refill
/// window, plus at most this many new ones.
const SWEEP_EVERY: u64 = 4096;

/// Session cookies remembered as signed in (a few hundred bytes each). Only a real sign-in
/// adds one, and sign-ins spend the strict `auth` budget, so a client hardly fills this; past
/// it, the least used cookies spend their address's budget again until their next page.
const SIGNED_IN_COOKIES: u64 = 65_536;

/// How long a cookie nobody sends is remembered: a player's ranges keep it fresh, and a cookie
/// of a session ended meanwhile (signed out elsewhere, expired) spends its old user's budget at
/// most this long, which is no escape from anything.
const SIGNED_IN_IDLE: Duration = Duration::from_secs(600);

/// Which budget a request spends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Class {
    /// Pages and API calls.
    Page,
    /// Media and static bytes.
    Stream,
    /// Sign-in attempts.
    Auth,
    /// New uploads.
    Upload,
}

impl Class {
    /// The class of a request by its method and path; `None` for health probes and metrics,
    /// which monitoring polls and which cost nothing.
    pub(crate) fn of(method: &Method, path: &str) -> Option<Self> {
        // Per request: a prefix match without building `{prefix}/` strings.
        let under = |prefix: &str| {
            path.strip_prefix(prefix).is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
        };
        if matches!(path, "/healthz" | "/readyz" | "/metrics") {
            None
        } else if under("/api/auth")
            || under("/api/account")
            || (method == Method::POST
                && matches!(
                    path,
                    "/api/session"
                        | "/api/users"
                        | "/session"
                        | "/signup"
                        | "/account/forgot"
                        | "/account/reset"
                        | "/account/verification"
                ))
        {
            Some(Self::Auth)
        } else if method == Method::POST && matches!(path, "/api/videos" | "/api/images" | "/api/uploads") {
            Some(Self::Upload)
        } else if ["/stream", "/download", "/media", "/images", "/static"].iter().any(|prefix| under(prefix))
        {
            Some(Self::Stream)
        } else {
            Some(Self::Page)
        }
    }

    fn name(self) -> &'static str {
        match self {
            Self::Page => "page",
            Self::Stream => "stream",
            Self::Auth => "auth",
            Self::Upload => "upload",
        }
    }
}

/// tokio's clock, so tests drive the buckets with paused time.
#[derive(Debug, Clone, Copy, Default)]
struct TokioClock;

impl Clock for TokioClock {
    type Instant = std::time::Instant;

    fn now(&self) -> Self::Instant {
        tokio::time::Instant::now().into_std()
    }
}

/// Whose bucket a request spends.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Key {
    /// A client address, IPv6 by its /64.
    Ip(IpAddr),
    /// A signed-in user, by id.
    User(Arc<str>),
}

impl Key {
    /// The key of a request of `class` from `client`, signed in as `user` if anyone.
    fn of(class: Class, client: IpAddr, user: Option<Arc<str>>) -> Self {
        match user {
            // A token held does not lift an address's budget of password guesses.
            Some(user) if class != Class::Auth => Self::User(user),
            _ => Self::Ip(client_ip::bucket(client)),
        }
    }
}

type Keyed = RateLimiter<Key, HashMapStateStore<Key>, TokioClock>;

/// One budget's buckets, keyed by client.
struct Bucket {
    limiter: Keyed,
    quota: Quota,
}

/// Every budget, and what the middleware needs to find a request's client.
pub(crate) struct RateLimits {
    /// Indexed by [`Class`]; `None` where the budget is off.
    buckets: [Option<Bucket>; 4],
    trust_proxies: Vec<ipnet::IpNet>,
    checks: AtomicU64,
    /// Where refusals are counted (`kino_rate_limited_total`).
    stats: Arc<Stats>,
    /// The user each session cookie seen signed in belongs to, by a hash of the cookie's id
    /// (memory keeps no live cookie value).
    cookies: moka::sync::Cache<u128, Arc<str>>,
}

/// A session cookie on a request without a bearer token, and how to learn whom it signs in.
struct Cookie {
    id: Id,
    hash: u128,
    /// The user the cookie was known to sign in before this request.
    known: Option<Arc<str>>,
    witness: SessionWitness,
}

impl RateLimits {
    /// The budgets of `config.rate_limit` (none when it is disabled), counting refusals in `stats`.
    pub(crate) fn new(config: &Config, stats: Arc<Stats>) -> Arc<Self> {
        let limits = &config.rate_limit;
        let bucket = |budget: Budget| {
            let quota = quota(budget).filter(|_| limits.enabled)?;
            Some(Bucket { limiter: RateLimiter::new(quota, HashMapStateStore::default(), TokioClock), quota })
        };
        Arc::new(Self {
            buckets: [bucket(limits.page), bucket(limits.stream), bucket(limits.auth), bucket(limits.upload)],
            trust_proxies: config.trust_proxies.clone(),
            checks: AtomicU64::new(0),
            stats,
            cookies: moka::sync::Cache::builder()
                .max_capacity(SIGNED_IN_COOKIES)
                .time_to_idle(SIGNED_IN_IDLE)
                .build(),
        })
    }

    /// Whether any budget is on; with none, the middleware is left out of the stack.
    pub(crate) fn any_on(&self) -> bool {
        self.buckets.iter().any(Option::is_some)
    }

    /// Spends one request of `class` from `key`; the refusal says when to come back.
    fn check(&self, class: Class, key: &Key) -> Result<(), Throttle> {
        let Some(bucket) = &self.buckets[class as usize] else { return Ok(()) };
        if self.checks.fetch_add(1, Ordering::Relaxed) % SWEEP_EVERY == SWEEP_EVERY - 1 {
            self.sweep();
        }
        bucket.limiter.check_key(key).map_err(|refused| {
            self.stats.rate_limited(class as usize);
            Throttle {
                policy: class.name(),
                quota: bucket.quota.burst_size().get(),
                window: bucket.quota.burst_size_replenished_in(),
                retry_after: refused.wait_time_from(TokioClock.now()),
            }
        })
    }

    /// The user a request is signed in as, as far as can be told before its session is loaded
    /// (see the module doc), and its session cookie if it has one and no bearer token.
    fn signed_in(&self, request: &mut Request, tokens: &Tokens) -> (Option<Arc<str>>, Option<Cookie>) {
        // As `MaybeUser`: a bearer token speaks for the request alone, the cookie is not read.
        if let Some(value) = request.headers().get(AUTHORIZATION) {
            // An invalid token signs nobody in; its request spends its address's budget (and
            // the handler answers 401).
            let Some(claims) = bearer_token(value).and_then(|token| tokens.verify(token).ok()) else {
                return (None, None);
            };
            let user = Arc::from(claims.sub.as_str());
            request.extensions_mut().insert(BearerClaims(claims));
            return (Some(user), None);
        }
        let Some(id) = session::cookie_id(request.headers(), session::is_secure(request)) else {
            return (None, None);
        };
        let hash = u128::from_le_bytes(
            blake3::hash(&id.0.to_le_bytes()).as_bytes()[..16].try_into().expect("16 of 32 bytes"),
        );
        let known = self.cookies.get(&hash);
        let witness = SessionWitness::default();
        request.extensions_mut().insert(witness.clone());
        (known.clone(), Some(Cookie { id, hash, known, witness }))
    }

    /// Remembers whom `cookie` signed in, once a handler has asked (its session is loaded).
    fn learn(&self, cookie: Cookie) {
        let Some((session, user)) = cookie.witness.seen() else { return };
        // Only the cookie's own session counts, not the new one a sign-in just gave it.
        let user = user.filter(|_| session == Some(cookie.id));
        match (user, cookie.known.as_deref()) {
            // Known already: no write on every page.
            (Some(user), known) if known != Some(user) => self.cookies.insert(cookie.hash, Arc::from(user)),
            // Signed out, expired, replaced by a sign-in, or never signed in.
            (None, Some(_)) => self.cookies.invalidate(&cookie.hash),
            _ => {}
        }
    }

    /// Drops the keys whose buckets are full again: they are indistinguishable from new ones.
    fn sweep(&self) {
        for bucket in self.buckets.iter().flatten() {
            bucket.limiter.retain_recent();
            bucket.limiter.shrink_to_fit();
        }
    }

    /// Addresses with a bucket in any budget, for the memory bound's tests.
    #[cfg(test)]
    fn keys(&self) -> usize {
        self.buckets.iter().flatten().map(|bucket| bucket.limiter.len()).sum()
    }
}

/// A budget as governor's quota: one request per `per / rate`, up to `burst`; `None` when off.
fn quota(budget: Budget) -> Option<Quota> {
    let rate = NonZeroU32::new(budget.rate)?;
    let burst = NonZeroU32::new(budget.burst)?;
    Quota::with_period(budget.per / rate.get()).map(|quota| quota.allow_burst(burst))
}

/// Middleware: attributes the request to its client ([`ClientIp`]) and refuses it with 429 when
/// the budget of its user or address for its class is spent. `tokens` verifies bearer tokens.
pub(crate) async fn limit(
    State((limits, tokens)): State<(Arc<RateLimits>, Arc<Tokens>)>,
    mut request: Request,
    next: Next,
) -> Response {
    let Some(peer) = request.extensions().get::<ConnectionInfo>().map(|info| info.remote.ip()) else {
        // Only router tests without a transport get here; they test handlers, not budgets.
        return next.run(request).await;
    };
    let client = client_ip::resolve(peer, request.headers(), &limits.trust_proxies);
    request.extensions_mut().insert(ClientIp(client));
    let Some(class) = Class::of(request.method(), request.uri().path()) else {
        return next.run(request).await;
    };
    let (user, cookie) = limits.signed_in(&mut request, &tokens);
    let key = Key::of(class, client, user);
    if let Err(throttle) = limits.check(class, &key) {
        let user = match &key {
            Key::User(user) => Some(user.as_ref()),
            Key::Ip(_) => None,
        };
        tracing::debug!(%client, user, policy = throttle.policy, "rate limited");
        return AppError::TooManyRequests(throttle).into_response();
    }
    let response = next.run(request).await;
    if let Some(cookie) = cookie {
        limits.learn(cookie);
    }
    response
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn limits(page: Budget) -> Arc<RateLimits> {
        let mut config = Config::for_tests(std::path::Path::new("/nonexistent"));
        config.rate_limit.enabled = true;
        config.rate_limit.page = page;
        RateLimits::new(&config, Arc::default())
    }

    /// The key of an anonymous request from `address`.
    fn ip(address: &str) -> Key {
        Key::of(Class::Page, address.parse().unwrap(), None)
    }

    #[test]
    fn requests_are_classed_by_path_and_method() {
        let get = Method::GET;
        assert_eq!(Class::of(&get, "/healthz"), None);
        assert_eq!(Class::of(&Method::POST, "/api/auth/sign-in"), Some(Class::Auth));
        assert_eq!(Class::of(&Method::POST, "/api/session"), Some(Class::Auth));
        assert_eq!(Class::of(&Method::POST, "/session"), Some(Class::Auth));
        assert_eq!(Class::of(&Method::GET, "/api/me"), Some(Class::Page));
        // Mailed links: asking for one sends mail, spending one tries a token.
        assert_eq!(Class::of(&Method::POST, "/api/account/forgot"), Some(Class::Auth));
        assert_eq!(Class::of(&Method::POST, "/account/forgot"), Some(Class::Auth));
        assert_eq!(Class::of(&Method::GET, "/account/forgot"), Some(Class::Page));
        assert_eq!(Class::of(&Method::POST, "/api/uploads"), Some(Class::Upload));
        assert_eq!(Class::of(&Method::PATCH, "/api/uploads/abc"), Some(Class::Page));
        assert_eq!(Class::of(&get, "/stream/abcdefgh"), Some(Class::Stream));
        assert_eq!(Class::of(&get, "/streaming"), Some(Class::Page));
        assert_eq!(Class::of(&get, "/api/videos"), Some(Class::Page));
    }

    #[test]
    fn the_layer_is_needed_only_while_a_budget_is_on() {
        let off = Budget { rate: 0, per: Duration::from_secs(1), burst: 5 };
        let on = Budget { rate: 10, per: Duration::from_secs(1), burst: 5 };
        assert!(limits(on).any_on());
        let mut config = Config::for_tests(std::path::Path::new("/nonexistent"));
        config.rate_limit.enabled = false;
        assert!(!RateLimits::new(&config, Arc::default()).any_on(), "switched off as a whole");
        config.rate_limit.enabled = true;
        let rate_limit = &mut config.rate_limit;
        (rate_limit.page, rate_limit.stream, rate_limit.auth, rate_limit.upload) = (off, off, off, off);
        assert!(!RateLimits::new(&config, Arc::default()).any_on(), "every budget at rate 0");
        config.rate_limit.auth = on;
        assert!(RateLimits::new(&config, Arc::default()).any_on(), "one budget on");
    }

    #[tokio::test(start_paused = true)]
    async fn a_spent_budget_refills_at_its_rate() {
        let limits = limits(Budget { rate: 10, per: Duration::from_secs(1), burst: 5 });
        let client = ip("192.0.2.1");
        for _ in 0..5 {
            limits.check(Class::Page, &client).unwrap();
        }
        let throttle = limits.check(Class::Page, &client).unwrap_err();
        assert_eq!((throttle.policy, throttle.quota), ("page", 5));
        assert_eq!(throttle.window, Duration::from_millis(500));
        assert_eq!(throttle.retry_after, Duration::from_millis(100));
        // Another address has its own bucket; an IPv6 /64 shares one.
        limits.check(Class::Page, &ip("192.0.2.2")).unwrap();
        for host in 1..=5 {
            limits.check(Class::Page, &ip(&format!("2001:db8::{host}"))).unwrap();
        }
        assert!(limits.check(Class::Page, &ip("2001:db8::ff:1")).is_err());
        limits.check(Class::Page, &ip("2001:db8:0:1::1")).unwrap();
        tokio::time::advance(Duration::from_millis(100)).await;
        limits.check(Class::Page, &client).unwrap();
        assert!(limits.check(Class::Page, &client).is_err());
        // Classes are separate budgets.
        limits.check(Class::Stream, &client).unwrap();
    }

    #[tokio::test(start_paused = true)]
    async fn a_signed_in_user_spends_its_own_budget_but_not_for_sign_in() {
        let limits = limits(Budget { rate: 1, per: Duration::from_secs(60), burst: 2 });
        let office: IpAddr = "192.0.2.1".parse().unwrap();
        let user = |id: &str| Key::of(Class::Page, office, Some(Arc::from(id)));
        assert_eq!(user("alice"), Key::User(Arc::from("alice")));
        // Sign-in attempts stay the address's, token or not.
        assert_eq!(Key::of(Class::Auth, office, Some(Arc::from("alice"))), Key::Ip(office));
        for _ in 0..2 {
            limits.check(Class::Page, &user("alice")).unwrap();
        }
        assert!(limits.check(Class::Page, &user("alice")).is_err());
        // Bob behind the same address, and the address itself, still have theirs.
        limits.check(Class::Page, &user("bob")).unwrap();
        limits.check(Class::Page, &Key::of(Class::Page, office, None)).unwrap();
        // Alice from elsewhere is still Alice.
        let roaming = Key::of(Class::Page, "198.51.100.7".parse().unwrap(), Some(Arc::from("alice")));
        assert!(limits.check(Class::Page, &roaming).is_err());
    }

    #[tokio::test(start_paused = true)]
    async fn idle_addresses_are_forgotten() {
        let limits = limits(Budget { rate: 100, per: Duration::from_secs(1), burst: 10 });
        for n in 0..SWEEP_EVERY - 1 {
            let client = IpAddr::from(std::net::Ipv6Addr::from((u128::from(n) + 1) << 64));
            // Half of them signed in: users are swept like addresses.
            let user = (n % 2 == 0).then(|| Arc::from(format!("user{n}")));
            limits.check(Class::Page, &Key::of(Class::Page, client, user)).unwrap();
        }
        assert_eq!(limits.keys(), SWEEP_EVERY as usize - 1);
        // 0.1 s later every bucket is full again; the next check sweeps them all away.
        tokio::time::advance(Duration::from_millis(100)).await;
        limits.check(Class::Page, &ip("192.0.2.1")).unwrap();
        assert_eq!(limits.keys(), 1);
    }
}
