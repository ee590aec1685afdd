//! The idle tracking of connections: requests in flight and when the last one ended.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use tokio::time::Instant;

/// Requests in flight on one connection and when the last one ended, for the idle timeout.
#[derive(Debug)]
pub(crate) struct Activity {
    in_flight: AtomicUsize,
    started: AtomicU64,
    last_end: std::sync::Mutex<Instant>,
}

impl Activity {
    pub(crate) fn new() -> Arc<Self> {
        Arc::new(Self {
            in_flight: AtomicUsize::new(0),
            started: AtomicU64::new(0),
            last_end: std::sync::Mutex::new(Instant::now()),
        })
    }

    /// Marks a request as started; the guard marks it ended when its response body is dropped.
    pub(crate) fn begin(self: &Arc<Self>) -> InFlight {
        self.in_flight.fetch_add(1, Ordering::AcqRel);
        self.started.fetch_add(1, Ordering::AcqRel);
        InFlight(self.clone())
    }

    /// Whether any request has arrived on this connection.
    pub(crate) fn has_served(&self) -> bool {
        self.requests_started() > 0
    }

    /// How many requests have started on this connection.
    pub(crate) fn requests_started(&self) -> u64 {
        self.started.load(Ordering::Acquire)
    }

    /// Whether a request is in flight (its response body not yet dropped).
    pub(crate) fn is_busy(&self) -> bool {
        self.in_flight.load(Ordering::Acquire) > 0
    }

    /// When the last request ended (or the connection began, before any).
    pub(crate) fn last_end(&self) -> Instant {
        *self.last_end.lock().expect("activity lock")
    }

    /// Resolves once no request has been in flight for `idle`, or when no request at all has
    /// arrived within `first`: a connection that never sends one (hyper-util's protocol sniffing
    /// and HTTP/2 have no header timeout of their own) does not hold a slot for long.
    pub(crate) async fn idle_for(&self, first: Duration, idle: Duration) {
        self.quiet(|a| if a.has_served() { idle } else { first.min(idle) }, Instant::now()).await;
    }

    /// Resolves once no request has been in flight for `period`, and not before `not_before`.
    pub(crate) async fn quiet_for(&self, period: Duration, not_before: Instant) {
        self.quiet(|_| period, not_before).await;
    }

    async fn quiet(&self, period: impl Fn(&Self) -> Duration, mut not_before: Instant) {
        loop {
            tokio::time::sleep_until((self.last_end() + period(self)).max(not_before)).await;
            let period = period(self);
            if !self.is_busy() && self.last_end() + period <= Instant::now() {
                return;
            }
            // A busy connection is checked again a full period later: its request may run long
            // (a video download), and the period only starts counting once it has ended.
            not_before = Instant::now() + period;
        }
    }
}

/// A request in flight; dropping it records the end of the request.
#[derive(Debug)]
pub(crate) struct InFlight(Arc<Activity>);

impl Drop for InFlight {
    fn drop(&mut self) {
        *self.0.last_end.lock().expect("activity lock") = Instant::now();
        self.0.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

/// A response body that keeps its request counted as in flight until it is dropped.
pub(crate) struct TrackedBody<B> {
    inner: B,
    _in_flight: InFlight,
}

impl<B> TrackedBody<B> {
    pub(crate) fn new(inner: B, in_flight: InFlight) -> Self {
        Self { inner, _in_flight: in_flight }
    }
}

impl<B: Body<Data = Bytes> + Unpin> Body for TrackedBody<B> {
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, B::Error>>> {
        // Over HTTP/2, tells the stream's send-timeout watch when the body waits on the client.
        super::stall::poll_frame_watched(|| Pin::new(&mut self.inner).poll_frame(cx))
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn idle_waits_for_requests_to_end() {
        let activity = Activity::new();
        let guard = activity.begin();
        let idle = activity.idle_for(Duration::from_secs(30), Duration::from_secs(75));
        tokio::pin!(idle);
        // Busy for five minutes: never idle.
        assert!(tokio::time::timeout(Duration::from_secs(300), idle.as_mut()).await.is_err());
        drop(guard);
        let started = Instant::now();
        idle.await;
        assert!(started.elapsed() >= Duration::from_secs(75));
    }

    #[tokio::test(start_paused = true)]
    async fn a_connection_without_requests_gets_the_shorter_first_timeout() {
        let activity = Activity::new();
        let started = Instant::now();
        activity.idle_for(Duration::from_secs(30), Duration::from_secs(75)).await;
        assert_eq!(started.elapsed().as_secs(), 30);
    }
}
