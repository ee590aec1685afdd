//! Request ids for requests that arrive without an `x-request-id`.
//!
//! tower-http's `MakeRequestUuid` asks the kernel for 16 random bytes on every request (a
//! `getrandom` system call, ~1% of a 64 KiB range response in the profile). A random prefix
//! drawn once per process and a counter are as unique across restarts and cost an increment.

use std::sync::atomic::{AtomicU64, Ordering};

use axum::http::{HeaderValue, Request};
use tower_http::request_id::{MakeRequestId, RequestId};

/// Makes ids of the form `<16 hex digits of this process>-<request number>`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct ProcessCounter;

/// The per-process prefix and the request counter.
struct Ids {
    prefix: u64,
    next: AtomicU64,
}

static IDS: std::sync::LazyLock<Ids> = std::sync::LazyLock::new(|| Ids {
    prefix: u64::from_le_bytes(crate::id::random_bytes()),
    next: AtomicU64::new(1),
});

impl MakeRequestId for ProcessCounter {
    fn make_request_id<B>(&mut self, _request: &Request<B>) -> Option<RequestId> {
        let n = IDS.next.fetch_add(1, Ordering::Relaxed);
        let value = HeaderValue::try_from(format!("{:016x}-{n}", IDS.prefix)).ok()?;
        Some(RequestId::new(value))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_share_the_process_prefix_and_never_repeat() {
        let request = Request::new(());
        let mut make = ProcessCounter;
        let a = make.make_request_id(&request).unwrap();
        let b = make.make_request_id(&request).unwrap();
        let (a, b) = (a.header_value().to_str().unwrap(), b.header_value().to_str().unwrap());
        assert_ne!(a, b);
        let (prefix_a, n_a) = a.split_once('-').unwrap();
        let (prefix_b, n_b) = b.split_once('-').unwrap();
        assert_eq!((prefix_a.len(), prefix_a), (16, prefix_b));
        assert!(n_b.parse::<u64>().unwrap() > n_a.parse::<u64>().unwrap());
    }
}
