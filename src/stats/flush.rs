//! The background task that writes the aggregate to the database every `stats.flush_interval`,
//! rolls the minutes up into hours and prunes what is past its retention.

use std::sync::Arc;

use tokio::time::MissedTickBehavior;
use tokio_util::sync::CancellationToken;

use super::aggregate::Aggregate;
use crate::config::StatsConfig;
use crate::db::Db;

/// Wall-clock seconds since the epoch; injected so tests choose the time.
pub(crate) type Clock = Arc<dyn Fn() -> i64 + Send + Sync>;

/// The system clock.
pub(crate) fn system_clock() -> Clock {
    Arc::new(crate::db::now_secs)
}

/// What the flusher works with.
pub(crate) struct Flusher {
    /// Where rows go.
    pub(crate) db: Db,
    /// What the access log fills.
    pub(crate) aggregate: Arc<Aggregate>,
    /// Retention and interval.
    pub(crate) config: StatsConfig,
    /// The time rows are stamped and pruned by.
    pub(crate) clock: Clock,
}

impl Flusher {
    /// Flushes every interval until `stop` is cancelled, then once more.
    pub(crate) async fn run(self, stop: CancellationToken) {
        let mut tick = tokio::time::interval(self.config.flush_interval);
        tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
        tick.tick().await; // the first tick is immediate; nothing has been counted yet
        loop {
            tokio::select! {
                _ = tick.tick() => self.flush(false).await,
                () = stop.cancelled() => {
                    self.flush(true).await;
                    return;
                }
            }
        }
    }

    /// Writes what the aggregate holds, then rolls up and prunes; `last` at shutdown, when rows
    /// that cannot be written are not kept for a retry that will not come.
    pub(crate) async fn flush(&self, last: bool) {
        let now = (self.clock)();
        let rows = self.aggregate.take();
        // `db.request_stats()` each time: the repository reference is not `Sync`, so it may not be
        // held across an await in a spawned task.
        let db = &self.db;
        if !rows.is_empty()
            && let Err(error) = db.request_stats().add_minutes(&rows).await
        {
            tracing::warn!(%error, rows = rows.len(), "writing request statistics failed; retrying later");
            if !last {
                self.aggregate.put_back(rows);
            }
            return;
        }
        // The hour before too: its last minutes may have been written only now.
        let hour = now - now.rem_euclid(3600);
        let retention = |d: std::time::Duration| now - i64::try_from(d.as_secs()).unwrap_or(i64::MAX);
        let result = async {
            db.request_stats().roll_up(hour - 3600, hour + 3600).await?;
            db.request_stats()
                .prune(retention(self.config.minute_retention), retention(self.config.retention))
                .await
        }
        .await;
        match result {
            Ok(0) => {}
            Ok(pruned) => tracing::debug!(pruned, "request statistics past retention deleted"),
            Err(error) => tracing::warn!(%error, "rolling up request statistics failed"),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicI64, Ordering};

    use axum::http::{StatusCode, Version};

    use super::*;
    use crate::db::request_stats::Grain;
    use crate::metrics::{Outcome, RouteClass};

    const DAY: i64 = 24 * 3600;

    fn outcome() -> Outcome {
        Outcome {
            version: Version::HTTP_3,
            status: StatusCode::OK,
            class: RouteClass::Page,
            bytes: 1000,
            micros: 2000,
            complete: true,
            views: 0,
        }
    }

    /// The injected clock decides what time it is; each step calls `flush` as the interval would.
    #[tokio::test]
    async fn flushes_roll_up_and_prune_by_the_injected_clock() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(dir.path()).await.unwrap();
        let t0: i64 = 1_800_000_000; // an hour boundary: 500,000 × 3600
        let wall = Arc::new(AtomicI64::new(t0));
        let clock: Clock = {
            let wall = wall.clone();
            Arc::new(move || wall.load(Ordering::SeqCst))
        };
        let aggregate = Arc::new(Aggregate::default());
        let config = StatsConfig::default();
        let flusher = Flusher { db: db.clone(), aggregate: aggregate.clone(), config, clock };
        let stats = db.request_stats();

        for minute in 0..3 {
            aggregate.record(t0 + minute * 60 + 5, "/", &outcome());
            aggregate.record(t0 + minute * 60 + 6, "/", &outcome());
        }
        wall.store(t0 + 3 * 60 + 1, Ordering::SeqCst);
        flusher.flush(false).await;
        let minutes = stats.series(Grain::Minute, t0, t0 + 3600, 60).await.unwrap();
        assert_eq!(minutes.len(), 3, "{minutes:?}");
        assert!(
            minutes.iter().all(|r| r.requests == 2 && r.bytes == 2000 && r.latency[1] == 2),
            "{minutes:?}"
        );
        let hours = stats.series(Grain::Hour, t0, t0 + 3600, 3600).await.unwrap();
        assert_eq!(hours.len(), 1, "{hours:?}");
        assert_eq!((hours[0].at, hours[0].requests), (t0, 6), "three minutes rolled into the hour");
        // A later minute of the same hour: the roll-up recomputes the hour, it does not add twice.
        aggregate.record(t0 + 10 * 60, "/", &outcome());
        flusher.flush(false).await;
        let hours = stats.series(Grain::Hour, t0, t0 + 3600, 3600).await.unwrap();
        assert_eq!(hours[0].requests, 7);
        // Per day, the minutes sum into one slot.
        let days = stats.series(Grain::Minute, t0 - 86_400, t0 + 86_400, 86_400).await.unwrap();
        assert_eq!(days.iter().map(|r| r.requests).sum::<i64>(), 7);

        // Three days on: the minutes are past the 48 h retention, the hour is not.
        wall.store(t0 + 3 * DAY, Ordering::SeqCst);
        flusher.flush(false).await;
        assert!(stats.series(Grain::Minute, t0, t0 + 3600, 60).await.unwrap().is_empty());
        assert_eq!(stats.series(Grain::Hour, t0, t0 + 3600, 3600).await.unwrap().len(), 1);
        // A month and a day on, the hour goes too.
        wall.store(t0 + 31 * DAY, Ordering::SeqCst);
        flusher.flush(false).await;
        assert!(stats.series(Grain::Hour, t0, t0 + 3600, 3600).await.unwrap().is_empty());
    }

    /// Stopping the task flushes what is left (the open minute), and a restart adds to it.
    #[tokio::test]
    async fn the_last_flush_at_stop_writes_the_open_minute() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(dir.path()).await.unwrap();
        let now = 1_800_000_000;
        let aggregate = Arc::new(Aggregate::default());
        let flusher = |aggregate: Arc<Aggregate>| Flusher {
            db: db.clone(),
            aggregate,
            config: StatsConfig::default(),
            clock: Arc::new(move || now + 3),
        };
        let stop = CancellationToken::new();
        let task = tokio::spawn(flusher(aggregate.clone()).run(stop.clone()));
        aggregate.record(now + 1, "/", &outcome());
        stop.cancel();
        task.await.unwrap();
        let restarted = Arc::new(Aggregate::default());
        restarted.record(now + 2, "/", &outcome());
        flusher(restarted).flush(true).await;
        let rows = db.request_stats().series(Grain::Minute, now - 60, now + 60, 60).await.unwrap();
        assert_eq!(rows.len(), 1, "one minute, summed: {rows:?}");
        assert_eq!(rows[0].requests, 2, "{rows:?}");
    }
}
