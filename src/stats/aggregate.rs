//! The in-memory aggregate the access log feeds: one minute's traffic per route template, status
//! class and protocol, closed into rows when the minute is over.
//!
//! One mutex guards it: a request holds it for a hash lookup and a few additions (no allocation
//! once a route has been seen this minute), far below the cost of the request itself; the set
//! of keys is bounded by the route templates (unmatched paths share one key), not by traffic.

use std::collections::HashMap;
use std::sync::Mutex;

use crate::db::request_stats::{BUCKETS, LATENCY_BOUNDS_MS, StatsRow};
use crate::metrics::{CLASSES, Outcome, PROTOCOLS, class_index, protocol_index};

/// The route key of requests no route matched (404s for random paths, mostly).
pub(crate) const UNMATCHED: &str = "(unmatched)";

/// One key's traffic within the minute.
#[derive(Debug, Clone, Copy, Default)]
struct Cell {
    requests: u64,
    bytes: u64,
    views: u64,
    latency: [u64; BUCKETS],
}

type Cells = [[Cell; CLASSES.len()]; PROTOCOLS.len()];

#[derive(Default)]
struct Minutes {
    /// Start of the open minute, seconds since the epoch.
    current: i64,
    routes: HashMap<String, Box<Cells>>,
    /// Rows of minutes already over, waiting for the flush.
    closed: Vec<StatsRow>,
}

/// The aggregate: the open minute, and the closed ones not yet written.
#[derive(Default)]
pub(crate) struct Aggregate {
    minutes: Mutex<Minutes>,
}

impl Aggregate {
    /// Adds one response that ended at `now` (seconds since the epoch) on `route`.
    pub(crate) fn record(&self, now: i64, route: &str, outcome: &Outcome) {
        let minute = now - now.rem_euclid(60);
        let bucket = latency_bucket(outcome.micros);
        let mut minutes = self.minutes.lock().expect("stats lock");
        if minute != minutes.current {
            minutes.close();
            minutes.current = minute;
        }
        let cells = match minutes.routes.get_mut(route) {
            Some(cells) => cells,
            None => minutes.routes.entry(route.to_owned()).or_default(),
        };
        let cell = &mut cells[protocol_index(outcome.version)][class_index(outcome.status)];
        cell.requests += 1;
        cell.bytes += outcome.bytes;
        cell.views += u64::from(outcome.views);
        cell.latency[bucket] += 1;
    }

    /// Every row so far, the open minute's too, leaving the aggregate empty. Writing the open
    /// minute early is safe: the repository adds rows of the same minute together.
    pub(crate) fn take(&self) -> Vec<StatsRow> {
        let mut minutes = self.minutes.lock().expect("stats lock");
        minutes.close();
        std::mem::take(&mut minutes.closed)
    }

    /// Puts back rows a failed flush could not write, so the next one tries again.
    pub(crate) fn put_back(&self, rows: Vec<StatsRow>) {
        self.minutes.lock().expect("stats lock").closed.extend(rows);
    }
}

impl Minutes {
    /// Turns the open minute into rows.
    fn close(&mut self) {
        let at = self.current;
        for (route, cells) in self.routes.drain() {
            for (p, by_class) in cells.iter().enumerate() {
                for (c, cell) in by_class.iter().enumerate().filter(|(_, cell)| cell.requests > 0) {
                    self.closed.push(StatsRow {
                        at,
                        route: route.clone(),
                        status: CLASSES[c].to_owned(),
                        protocol: PROTOCOLS[p].to_owned(),
                        requests: saturate(cell.requests),
                        bytes: saturate(cell.bytes),
                        views: saturate(cell.views),
                        latency: cell.latency.map(saturate),
                    });
                }
            }
        }
    }
}

fn saturate(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// The bucket of a latency in [`LATENCY_BOUNDS_MS`].
fn latency_bucket(micros: u64) -> usize {
    LATENCY_BOUNDS_MS.iter().position(|&bound| micros <= bound * 1000).unwrap_or(LATENCY_BOUNDS_MS.len())
}

#[cfg(test)]
mod tests {
    use axum::http::{StatusCode, Version};

    use super::*;
    use crate::metrics::RouteClass;

    fn outcome(version: Version, status: StatusCode, micros: u64) -> Outcome {
        Outcome { version, status, class: RouteClass::Media, bytes: 100, micros, complete: true, views: 1 }
    }

    #[test]
    fn minutes_close_into_rows_per_route_status_and_protocol() {
        let aggregate = Aggregate::default();
        let t = 1_800_000_000; // a minute boundary: 1800000000 = 30000000 × 60
        aggregate.record(t + 1, "/stream/{id}", &outcome(Version::HTTP_2, StatusCode::PARTIAL_CONTENT, 800));
        aggregate.record(t + 2, "/stream/{id}", &outcome(Version::HTTP_2, StatusCode::OK, 30_000));
        aggregate.record(t + 3, "/", &outcome(Version::HTTP_3, StatusCode::NOT_FOUND, 20_000_000));
        aggregate.record(t + 61, "/", &outcome(Version::HTTP_11, StatusCode::OK, 1));
        let mut rows = aggregate.take();
        let last = rows.pop().expect("the open minute comes last");
        assert_eq!((last.at, last.protocol.as_str()), (t + 60, "http/1.1"));
        rows.sort_by(|a, b| (&a.route, &a.status).cmp(&(&b.route, &b.status)));
        assert_eq!(rows.len(), 2, "{rows:?}");
        let (page, stream) = (&rows[0], &rows[1]);
        assert_eq!(
            (page.at, page.route.as_str(), page.status.as_str(), page.protocol.as_str()),
            (t, "/", "4xx", "h3")
        );
        assert_eq!(page.latency[BUCKETS - 1], 1, "20 s is past the last bound");
        assert_eq!((stream.requests, stream.bytes, stream.views), (2, 200, 2));
        assert_eq!((stream.latency[0], stream.latency[4]), (1, 1), "0.8 ms and 30 ms");
        assert!(aggregate.take().is_empty(), "taken once");
    }
}
