//! Upload request bodies: what a failed body means, and the minimum upload rate.
//!
//! tower-http's body timeout (`limits.body_idle_timeout`) ends a body that stops; it cannot see a
//! body that trickles one byte just inside every timeout, which would hold an upload (its slot,
//! its temporary file) open for ever. [`RateGuard`] ends those: every `limits.upload_rate_window`
//! a body must have brought at least `upload_min_rate × window` bytes, like Apache's
//! `RequestReadTimeout … MinRate` (nginx has no such setting; its `client_body_timeout` is our
//! idle timeout).

use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use bytes::Bytes;
use futures_util::Stream;
use tokio::time::{Instant, Sleep};

use crate::config::Limits;

/// Why an upload's body did not arrive whole.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub(crate) enum BodyError {
    /// No bytes arrived for `limits.body_idle_timeout`.
    #[error("the request body stalled: no bytes for {0:?}")]
    Stalled(Duration),
    /// Fewer bytes than the minimum rate over a window.
    #[error("the request body was slower than the minimum of {rate} bytes/s over {window:?}")]
    TooSlow {
        /// The configured minimum, bytes per second.
        rate: u64,
        /// The window it is averaged over.
        window: Duration,
    },
    /// More bytes than the endpoint takes.
    #[error("the request body is larger than the {limit}-byte limit")]
    TooLarge {
        /// The limit in bytes.
        limit: u64,
    },
    /// The client's body failed: a disconnect, a reset stream, bad chunked framing.
    #[error("the request body was cut off: {0}")]
    Failed(String),
}

impl BodyError {
    /// Whether the client was too slow (408) rather than wrong (400, 413).
    pub(crate) fn is_timeout(&self) -> bool {
        matches!(self, Self::Stalled(_) | Self::TooSlow { .. })
    }
}

/// The body of an upload request as a stream of chunks, with the idle timeout recognised and the
/// minimum rate enforced.
pub(crate) type UploadBody = RateGuard<Pin<Box<dyn Stream<Item = Result<Bytes, BodyError>> + Send>>>;

/// Wraps a request body for an upload route (see the module docs).
pub(crate) fn upload_body(body: axum::body::Body, limits: &Limits) -> UploadBody {
    use futures_util::TryStreamExt;
    let idle = limits.body_idle_timeout;
    let chunks = body.into_data_stream().map_err(move |error| classify(&error, idle));
    RateGuard::new(Box::pin(chunks), limits.upload_min_rate, limits.upload_rate_window)
}

/// A body error as the client caused it: tower-http's idle timeout is reported as such (it
/// surfaces as a boxed `TimeoutError` somewhere in the source chain), anything else as a cut-off.
fn classify(error: &axum::Error, idle: Duration) -> BodyError {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(current) = cause {
        if current.is::<tower_http::timeout::TimeoutError>() {
            return BodyError::Stalled(idle);
        }
        cause = current.source();
    }
    BodyError::Failed(error.to_string())
}

/// A stream of body chunks that fails with [`BodyError::TooSlow`] when a window brings fewer
/// bytes than the minimum rate asks for.
///
/// The clock starts at the first poll. Time the handler spends not polling (writing a block to
/// disk) counts too; that is milliseconds per MiB, far inside any sensible window.
pub(crate) struct RateGuard<S> {
    inner: S,
    /// The end of the current window; `None` until the first poll, or when the guard is off.
    window_end: Option<Pin<Box<Sleep>>>,
    window: Duration,
    rate: u64,
    /// Bytes the current window must bring.
    min_bytes: u64,
    in_window: u64,
    done: bool,
}

impl<S> RateGuard<S> {
    /// Guards `inner` with a minimum of `rate` bytes/s averaged over `window`; a zero rate or
    /// window turns the guard off.
    pub(crate) fn new(inner: S, rate: u64, window: Duration) -> Self {
        let min_bytes = u64::try_from(u128::from(rate) * window.as_millis() / 1000).unwrap_or(u64::MAX);
        Self { inner, window_end: None, window, rate, min_bytes, in_window: 0, done: false }
    }

    /// Checks the window when it has ended: fails if it brought too little, else starts the next.
    fn check_window(&mut self, cx: &mut Context<'_>) -> Result<(), BodyError> {
        if self.min_bytes == 0 {
            return Ok(());
        }
        let window = self.window;
        let end = self.window_end.get_or_insert_with(|| Box::pin(tokio::time::sleep(window)));
        if end.as_mut().poll(cx).is_pending() {
            return Ok(());
        }
        if self.in_window < self.min_bytes {
            return Err(BodyError::TooSlow { rate: self.rate, window });
        }
        self.in_window = 0;
        // From now, not from the old deadline: a handler that paused for longer than a window
        // must not face windows that have already ended.
        end.as_mut().reset(Instant::now() + window);
        let _ = end.as_mut().poll(cx);
        Ok(())
    }
}

impl<S> Stream for RateGuard<S>
where
    S: Stream<Item = Result<Bytes, BodyError>> + Unpin,
{
    type Item = Result<Bytes, BodyError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        if this.done {
            return Poll::Ready(None);
        }
        if let Err(error) = this.check_window(cx) {
            this.done = true;
            return Poll::Ready(Some(Err(error)));
        }
        let item = ready!(Pin::new(&mut this.inner).poll_next(cx));
        match &item {
            Some(Ok(chunk)) => this.in_window += chunk.len() as u64,
            Some(Err(_)) | None => this.done = true,
        }
        Poll::Ready(item)
    }
}

#[cfg(test)]
mod tests {
    use futures_util::StreamExt;

    use super::*;

    /// `count` chunks of `size` bytes, one every `every`.
    fn trickle(
        count: usize,
        size: usize,
        every: Duration,
    ) -> Pin<Box<dyn Stream<Item = Result<Bytes, BodyError>> + Send>> {
        Box::pin(futures_util::stream::iter(0..count).then(move |_| async move {
            tokio::time::sleep(every).await;
            Ok(Bytes::from(vec![b'x'; size]))
        }))
    }

    async fn drain(
        mut guard: impl Stream<Item = Result<Bytes, BodyError>> + Unpin,
    ) -> (u64, Option<BodyError>) {
        let mut bytes = 0;
        while let Some(chunk) = guard.next().await {
            match chunk {
                Ok(chunk) => bytes += chunk.len() as u64,
                Err(error) => return (bytes, Some(error)),
            }
        }
        (bytes, None)
    }

    #[tokio::test(start_paused = true)]
    async fn a_body_at_the_minimum_rate_passes() {
        // 1 KiB every 100 ms is 10 KiB/s, above a 8 KiB/s minimum, for 30 s.
        let guard =
            RateGuard::new(trickle(300, 1024, Duration::from_millis(100)), 8 * 1024, Duration::from_secs(1));
        assert_eq!(drain(guard).await, (300 * 1024, None));
    }

    #[tokio::test(start_paused = true)]
    async fn a_trickle_under_the_minimum_rate_is_cut_off_at_the_end_of_a_window() {
        let started = Instant::now();
        // 10 bytes every 100 ms is 100 B/s: far under 1 KiB/s, yet never idle for long.
        let guard =
            RateGuard::new(trickle(10_000, 10, Duration::from_millis(100)), 1024, Duration::from_secs(2));
        let (bytes, error) = drain(guard).await;
        assert!(matches!(error, Some(BodyError::TooSlow { rate: 1024, .. })), "{error:?}");
        assert_eq!(started.elapsed(), Duration::from_secs(2), "cut off when the first window ends");
        assert!(bytes <= 200, "{bytes}");
    }

    #[tokio::test(start_paused = true)]
    async fn a_body_that_stops_is_cut_off_too() {
        let stopped = Box::pin(futures_util::stream::pending::<Result<Bytes, BodyError>>());
        let (bytes, error) = drain(RateGuard::new(stopped, 1, Duration::from_secs(5))).await;
        assert_eq!(bytes, 0);
        assert!(error.is_some_and(|e| e.is_timeout()));
    }

    #[tokio::test(start_paused = true)]
    async fn a_zero_rate_turns_the_guard_off() {
        let guard = RateGuard::new(trickle(50, 1, Duration::from_secs(1)), 0, Duration::from_secs(1));
        assert_eq!(drain(guard).await, (50, None));
    }
}
