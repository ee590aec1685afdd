//! Token-bucket rate limits per client address, one budget per class of request (governor's GCRA).
//!
//! The key is the client address from [`crate::client_ip`] (IPv6 by its /64). A signed-in
//! user's requests should later be keyed by user id instead, so a shared address (an office NAT)
//! does not share one budget; the `auth` class covers sign-in and sign-up (pages and API),
//! `/api/auth/*`, and asking for or spending a mailed link (`/api/account/*`, the forms' posts).

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::extract::{Request, State};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use governor::clock::Clock;
use governor::state::keyed::HashMapStateStore;
use governor::{Quota, RateLimiter};

use crate::client_ip::{self, ClientIp};
use crate::config::{Budget, Config};
use crate::error::{AppError, Throttle};
use crate::metrics::Stats;
use crate::peer::ConnectionInfo;

/// Requests between two sweeps of idle keys. A key is dropped once its bucket is full again
/// (governor's `retain_recent`), so the map holds only addresses active within one refill
/// window, plus at most this many new ones.
const SWEEP_EVERY: u64 = 4096;

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
        } else if ["/stream", "/media", "/images", "/static"].iter().any(|prefix| under(prefix)) {
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

type Keyed = RateLimiter<IpAddr, HashMapStateStore<IpAddr>, TokioClock>;

/// One budget's buckets, keyed by client address.
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
        })
    }

    /// Whether any budget is on; with none, the middleware is left out of the stack.
    pub(crate) fn any_on(&self) -> bool {
        self.buckets.iter().any(Option::is_some)
    }

    /// Spends one request of `class` for `client`; the refusal says when to come back.
    pub(crate) fn check(&self, class: Class, client: IpAddr) -> Result<(), Throttle> {
        let Some(bucket) = &self.buckets[class as usize] else { return Ok(()) };
        if self.checks.fetch_add(1, Ordering::Relaxed) % SWEEP_EVERY == SWEEP_EVERY - 1 {
            self.sweep();
        }
        bucket.limiter.check_key(&client_ip::bucket(client)).map_err(|refused| {
            self.stats.rate_limited(class as usize);
            Throttle {
                policy: class.name(),
                quota: bucket.quota.burst_size().get(),
                window: bucket.quota.burst_size_replenished_in(),
                retry_after: refused.wait_time_from(TokioClock.now()),
            }
        })
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
/// the client's budget for its class is spent.
pub(crate) async fn limit(
    State(limits): State<Arc<RateLimits>>,
    mut request: Request,
    next: Next,
) -> Response {
    let Some(peer) = request.extensions().get::<ConnectionInfo>().map(|info| info.remote.ip()) else {
        // Only router tests without a transport get here; they test handlers, not budgets.
        return next.run(request).await;
    };
    let client = client_ip::resolve(peer, request.headers(), &limits.trust_proxies);
    request.extensions_mut().insert(ClientIp(client));
    if let Some(class) = Class::of(request.method(), request.uri().path())
        && let Err(throttle) = limits.check(class, client)
    {
        tracing::debug!(%client, policy = throttle.policy, "rate limited");
        return AppError::TooManyRequests(throttle).into_response();
    }
    next.run(request).await
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
        let client: IpAddr = "192.0.2.1".parse().unwrap();
        for _ in 0..5 {
            limits.check(Class::Page, client).unwrap();
        }
        let throttle = limits.check(Class::Page, client).unwrap_err();
        assert_eq!((throttle.policy, throttle.quota), ("page", 5));
        assert_eq!(throttle.window, Duration::from_millis(500));
        assert_eq!(throttle.retry_after, Duration::from_millis(100));
        // Another address has its own bucket; an IPv6 /64 shares one.
        limits.check(Class::Page, "192.0.2.2".parse().unwrap()).unwrap();
        for host in 1..=5 {
            limits.check(Class::Page, format!("2001:db8::{host}").parse().unwrap()).unwrap();
        }
        assert!(limits.check(Class::Page, "2001:db8::ff:1".parse().unwrap()).is_err());
        limits.check(Class::Page, "2001:db8:0:1::1".parse().unwrap()).unwrap();
        tokio::time::advance(Duration::from_millis(100)).await;
        limits.check(Class::Page, client).unwrap();
        assert!(limits.check(Class::Page, client).is_err());
        // Classes are separate budgets.
        limits.check(Class::Stream, client).unwrap();
    }

    #[tokio::test(start_paused = true)]
    async fn idle_addresses_are_forgotten() {
        let limits = limits(Budget { rate: 100, per: Duration::from_secs(1), burst: 10 });
        for n in 0..SWEEP_EVERY - 1 {
            let client = IpAddr::from(std::net::Ipv6Addr::from((u128::from(n) + 1) << 64));
            limits.check(Class::Page, client).unwrap();
        }
        assert_eq!(limits.keys(), SWEEP_EVERY as usize - 1);
        // 0.1 s later every bucket is full again; the next check sweeps them all away.
        tokio::time::advance(Duration::from_millis(100)).await;
        limits.check(Class::Page, "192.0.2.1".parse().unwrap()).unwrap();
        assert_eq!(limits.keys(), 1);
    }
}
