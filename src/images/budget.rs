//! Admission by memory: an image job starts only once its estimated peak fits one shared budget.
//!
//! The CPU pool bounds how many jobs run, not how much they hold: four legal 49 MP images at
//! once peak at hundreds of MB. Each job reserves its estimate ([`super::Header::peak_bytes`])
//! here first and keeps it until it is done. A job that fits waits its turn, in arrival order;
//! one larger than the whole budget can never run and is refused at once ([`ImageError::TooLarge`]);
//! when too many wait, or the wait is too long, the caller sheds the request ([`ImageError::Busy`]).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::ImageError;

/// Permits count KiB: tokio counts permits in `u32`, and KiB keeps budgets up to 4 TiB exact
/// enough.
const UNIT: u64 = 1024;

/// A memory budget shared by every image job.
pub(crate) struct MemoryBudget {
    permits: Arc<Semaphore>,
    total_units: u64,
    max_waiting: usize,
    max_wait: Duration,
    waiting: AtomicUsize,
    waited: AtomicU64,
    refused: AtomicU64,
}

/// A job's share of the budget, given back when dropped.
#[derive(Debug)]
pub(crate) struct Reservation {
    _permit: OwnedSemaphorePermit,
}

impl MemoryBudget {
    /// A budget of `total` bytes; at most `max_waiting` jobs wait for it, each at most `max_wait`.
    pub(crate) fn new(total: u64, max_waiting: usize, max_wait: Duration) -> Self {
        let total_units = (total / UNIT).clamp(1, u64::from(u32::MAX));
        Self {
            permits: Arc::new(Semaphore::new(total_units as usize)),
            total_units,
            max_waiting,
            max_wait,
            waiting: AtomicUsize::new(0),
            waited: AtomicU64::new(0),
            refused: AtomicU64::new(0),
        }
    }

    /// Reserves `bytes`, waiting while other jobs hold the budget.
    ///
    /// Cancel-safe: a caller that goes away while waiting leaves the queue and reserves nothing.
    pub(crate) async fn admit(&self, bytes: u64) -> Result<Reservation, ImageError> {
        let units = bytes.div_ceil(UNIT).max(1);
        if units > self.total_units {
            self.refused.fetch_add(1, Ordering::Relaxed);
            return Err(ImageError::TooLarge {
                reason: format!(
                    "processing it needs about {} MiB, over the {} MiB image memory budget",
                    bytes.div_ceil(1 << 20),
                    (self.total_units * UNIT) >> 20
                ),
            });
        }
        let units = u32::try_from(units).expect("no more units than the budget, which fits u32");
        if let Ok(permit) = Arc::clone(&self.permits).try_acquire_many_owned(units) {
            return Ok(Reservation { _permit: permit });
        }
        let _waiter = Waiter::enter(&self.waiting, self.max_waiting).ok_or_else(|| self.busy())?;
        self.waited.fetch_add(1, Ordering::Relaxed);
        match tokio::time::timeout(self.max_wait, Arc::clone(&self.permits).acquire_many_owned(units)).await {
            Ok(Ok(permit)) => Ok(Reservation { _permit: permit }),
            // Timed out; the semaphore is never closed.
            Ok(Err(_)) | Err(_) => Err(self.busy()),
        }
    }

    fn busy(&self) -> ImageError {
        self.refused.fetch_add(1, Ordering::Relaxed);
        ImageError::Busy
    }

    /// Bytes reserved by running jobs now.
    pub(crate) fn reserved(&self) -> u64 {
        (self.total_units - self.permits.available_permits() as u64) * UNIT
    }

    /// Encodes the budget's gauges and counters, read now (called at each `/metrics` scrape).
    pub(crate) fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let gauges: [(&str, &str, u64); 3] = [
            ("kino_image_memory_budget_bytes", "The image memory budget.", self.total_units * UNIT),
            ("kino_image_memory_reserved_bytes", "Memory reserved by running image jobs.", self.reserved()),
            (
                "kino_image_jobs_waiting",
                "Image jobs waiting for memory.",
                self.waiting.load(Ordering::Relaxed) as u64,
            ),
        ];
        for (name, help, value) in gauges {
            let gauge = ConstGauge::new(value);
            gauge.encode(encoder.encode_descriptor(name, help, None, gauge.metric_type())?)?;
        }
        let counters: [(&str, &str, u64); 2] = [
            (
                "kino_image_admission_waits",
                "Image jobs that had to wait for memory.",
                self.waited.load(Ordering::Relaxed),
            ),
            (
                "kino_image_admission_refused",
                "Image jobs refused for memory: over the budget, or waiting too long.",
                self.refused.load(Ordering::Relaxed),
            ),
        ];
        for (name, help, value) in counters {
            let counter = ConstCounter::new(value);
            counter.encode(encoder.encode_descriptor(name, help, None, counter.metric_type())?)?;
        }
        Ok(())
    }
}

/// One place in the waiting line, left when dropped (also when the waiting future is).
struct Waiter<'a>(&'a AtomicUsize);

impl<'a> Waiter<'a> {
    fn enter(waiting: &'a AtomicUsize, max: usize) -> Option<Self> {
        waiting.fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| (n < max).then_some(n + 1)).ok()?;
        Some(Self(waiting))
    }
}

impl Drop for Waiter<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: u64 = 1 << 20;

    #[tokio::test]
    async fn a_job_over_the_whole_budget_is_too_large_at_once() {
        let budget = MemoryBudget::new(8 * MIB, 4, Duration::from_secs(1));
        let result = budget.admit(9 * MIB).await;
        let Err(ImageError::TooLarge { reason }) = result else { panic!("{result:?}") };
        assert!(reason.contains("9 MiB") && reason.contains("8 MiB"), "{reason}");
        assert_eq!(budget.reserved(), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn a_second_job_waits_until_the_first_gives_its_share_back() {
        let budget = Arc::new(MemoryBudget::new(8 * MIB, 4, Duration::from_secs(10)));
        let first = budget.admit(6 * MIB).await.unwrap();
        assert_eq!(budget.reserved(), 6 * MIB);
        let second = tokio::spawn({
            let budget = Arc::clone(&budget);
            async move { budget.admit(6 * MIB).await.map(|_| ()) }
        });
        tokio::time::sleep(Duration::from_secs(5)).await;
        assert!(!second.is_finished(), "6 + 6 MiB ran in an 8 MiB budget");
        assert_eq!(budget.waiting.load(Ordering::Relaxed), 1);
        drop(first);
        second.await.unwrap().unwrap();
        assert_eq!(budget.reserved(), 0);
        assert_eq!(budget.waited.load(Ordering::Relaxed), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn waiting_too_long_or_behind_too_many_is_busy() {
        let budget = Arc::new(MemoryBudget::new(8 * MIB, 1, Duration::from_secs(10)));
        let _held = budget.admit(8 * MIB).await.unwrap();
        let waiter = tokio::spawn({
            let budget = Arc::clone(&budget);
            async move { budget.admit(MIB).await.map(|_| ()) }
        });
        tokio::task::yield_now().await;
        // The one waiting place is taken: the next is refused without waiting.
        assert!(matches!(budget.admit(MIB).await, Err(ImageError::Busy)));
        // And the waiter gives up after `max_wait`.
        assert!(matches!(waiter.await.unwrap(), Err(ImageError::Busy)));
        assert_eq!(budget.waiting.load(Ordering::Relaxed), 0);
    }

    #[tokio::test]
    async fn a_cancelled_waiter_leaves_the_line() {
        let budget = MemoryBudget::new(8 * MIB, 1, Duration::from_secs(10));
        let _held = budget.admit(8 * MIB).await.unwrap();
        {
            let waiting = budget.admit(MIB);
            tokio::pin!(waiting);
            tokio::select! {
                biased;
                _ = &mut waiting => panic!("admitted past a full budget"),
                () = std::future::ready(()) => {}
            }
            assert_eq!(budget.waiting.load(Ordering::Relaxed), 1);
        }
        assert_eq!(budget.waiting.load(Ordering::Relaxed), 0);
    }
}
