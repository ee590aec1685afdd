//! What the stats pages show, read from the stored statistics: traffic per protocol over time,
//! status classes, latency percentiles from the summed histograms, and the busiest routes.

use crate::db::Db;
use crate::db::request_stats::{BUCKETS, Grain, LATENCY_BOUNDS_MS, StatsRow};
use crate::metrics::{CLASSES, PROTOCOLS};

/// The span a page covers, chosen with `?window=`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Window {
    /// The last hour, per minute.
    Hour,
    /// The last 24 hours, per hour.
    #[default]
    Day,
    /// The last 30 days, per day.
    Month,
}

impl Window {
    /// Every window, for the page's links.
    pub(crate) const ALL: [Self; 3] = [Self::Hour, Self::Day, Self::Month];

    /// The query value.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::Hour => "hour",
            Self::Day => "day",
            Self::Month => "month",
        }
    }

    /// Seconds per point, and how many points.
    pub(crate) fn slots(self) -> (i64, usize) {
        match self {
            Self::Hour => (60, 60),
            Self::Day => (3600, 24),
            Self::Month => (86_400, 30),
        }
    }

    /// Minutes are finer than the hour table; everything longer reads hours.
    fn grain(self) -> Grain {
        if self == Self::Hour { Grain::Minute } else { Grain::Hour }
    }

    /// The slot starts ending with the one holding `now`, oldest first.
    pub(crate) fn starts(self, now: i64) -> Vec<i64> {
        let (slot, n) = self.slots();
        let last = now - now.rem_euclid(slot);
        (0..n as i64).rev().map(|i| last - i * slot).collect()
    }
}

/// Latency percentiles, milliseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(crate) struct Percentiles {
    /// Median.
    pub(crate) p50: f64,
    /// 90th percentile.
    pub(crate) p90: f64,
    /// 99th percentile.
    pub(crate) p99: f64,
}

/// One route's traffic over the window.
#[derive(Debug, Clone)]
pub(crate) struct RouteLine {
    /// The route template.
    pub(crate) route: String,
    /// Responses.
    pub(crate) requests: u64,
    /// Body bytes.
    pub(crate) bytes: u64,
    /// Views counted.
    pub(crate) views: u64,
    /// Latency.
    pub(crate) latency: Option<Percentiles>,
}

/// The server-wide statistics of one window.
#[derive(Debug, Clone)]
pub(crate) struct ServerReport {
    /// Slot starts, oldest first.
    pub(crate) starts: Vec<i64>,
    /// Responses per slot, by protocol ([`PROTOCOLS`] order).
    pub(crate) requests: [Vec<u64>; 3],
    /// Body bytes per slot, by protocol.
    pub(crate) bytes: [Vec<u64>; 3],
    /// Responses per status class over the window ([`CLASSES`] order).
    pub(crate) statuses: [u64; 5],
    /// Latency over the window by protocol, `None` without traffic.
    pub(crate) latency: [Option<Percentiles>; 3],
    /// Latency of all responses.
    pub(crate) overall: Option<Percentiles>,
    /// Views counted over the window.
    pub(crate) views: u64,
    /// Routes, busiest first.
    pub(crate) routes: Vec<RouteLine>,
}

/// Reads the statistics of `window` ending at `now`.
pub(crate) async fn server(db: &Db, window: Window, now: i64) -> sqlx::Result<ServerReport> {
    let starts = window.starts(now);
    let (slot, _) = window.slots();
    let from = starts[0];
    let rows = db.request_stats().series(window.grain(), from, now + slot, slot).await?;
    Ok(summarize(starts, &rows))
}

fn summarize(starts: Vec<i64>, rows: &[StatsRow]) -> ServerReport {
    let n = starts.len();
    let mut requests = [vec![0; n], vec![0; n], vec![0; n]];
    let mut bytes = requests.clone();
    let mut statuses = [0u64; 5];
    let mut by_protocol = [[0i64; BUCKETS]; 3];
    let mut routes: Vec<(RouteLine, [i64; BUCKETS])> = Vec::new();
    let mut views = 0;
    for row in rows {
        let Some(i) = starts.iter().position(|&s| s == row.at) else { continue };
        let p = PROTOCOLS.iter().position(|&p| p == row.protocol).unwrap_or(0);
        let (count, size) = (unsigned(row.requests), unsigned(row.bytes));
        requests[p][i] += count;
        bytes[p][i] += size;
        if let Some(c) = CLASSES.iter().position(|&c| c == row.status) {
            statuses[c] += count;
        }
        add(&mut by_protocol[p], &row.latency);
        views += unsigned(row.views);
        let line = match routes.iter_mut().find(|(line, _)| line.route == row.route) {
            Some(line) => line,
            None => {
                let line =
                    RouteLine { route: row.route.clone(), requests: 0, bytes: 0, views: 0, latency: None };
                routes.push((line, [0; BUCKETS]));
                routes.last_mut().expect("just pushed")
            }
        };
        line.0.requests += count;
        line.0.bytes += size;
        line.0.views += unsigned(row.views);
        add(&mut line.1, &row.latency);
    }
    let mut all = [0i64; BUCKETS];
    for histogram in &by_protocol {
        add(&mut all, histogram);
    }
    let mut routes: Vec<RouteLine> = routes
        .into_iter()
        .map(|(line, histogram)| RouteLine { latency: percentiles(&histogram), ..line })
        .collect();
    routes.sort_by(|a, b| b.requests.cmp(&a.requests).then_with(|| a.route.cmp(&b.route)));
    ServerReport {
        starts,
        requests,
        bytes,
        statuses,
        latency: by_protocol.map(|h| percentiles(&h)),
        overall: percentiles(&all),
        views,
        routes,
    }
}

fn unsigned(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

fn add(into: &mut [i64; BUCKETS], from: &[i64; BUCKETS]) {
    for (a, b) in into.iter_mut().zip(from) {
        *a += b;
    }
}

/// p50/p90/p99 of a bucketed histogram, interpolated linearly inside the bucket each falls in
/// (the overflow bucket reads as its lower bound: "over 10 s").
pub(crate) fn percentiles(histogram: &[i64; BUCKETS]) -> Option<Percentiles> {
    let total: i64 = histogram.iter().sum();
    if total <= 0 {
        return None;
    }
    let quantile = |q: f64| {
        let rank = q * total as f64;
        let mut below = 0.0;
        for (i, &count) in histogram.iter().enumerate() {
            let count = count as f64;
            if count > 0.0 && below + count >= rank {
                let lower = if i == 0 { 0.0 } else { LATENCY_BOUNDS_MS[i - 1] as f64 };
                let Some(&upper) = LATENCY_BOUNDS_MS.get(i) else { return lower };
                return lower + (upper as f64 - lower) * ((rank - below) / count).clamp(0.0, 1.0);
            }
            below += count;
        }
        *LATENCY_BOUNDS_MS.last().expect("bounds") as f64
    };
    Some(Percentiles { p50: quantile(0.5), p90: quantile(0.9), p99: quantile(0.99) })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(at: i64, protocol: &str, status: &str, requests: i64, latency_bucket: usize) -> StatsRow {
        let mut latency = [0; BUCKETS];
        latency[latency_bucket] = requests;
        StatsRow {
            at,
            route: "/".into(),
            status: status.into(),
            protocol: protocol.into(),
            requests,
            bytes: requests * 10,
            views: 0,
            latency,
        }
    }

    #[test]
    fn percentiles_interpolate_inside_buckets() {
        let mut histogram = [0; BUCKETS];
        histogram[1] = 50; // 1–5 ms
        histogram[4] = 40; // 25–50 ms
        histogram[BUCKETS - 1] = 10; // over 10 s
        let p = percentiles(&histogram).unwrap();
        assert_eq!(p.p50, 5.0);
        assert_eq!(p.p90, 50.0);
        assert_eq!(p.p99, 10_000.0);
        assert_eq!(percentiles(&[0; BUCKETS]), None);
    }

    #[test]
    fn rows_land_in_their_slot_and_protocol() {
        let starts = Window::Hour.starts(1_800_000_000);
        assert_eq!(starts.len(), 60);
        assert_eq!(starts[59], 1_800_000_000);
        let rows = [
            row(starts[0], "h3", "2xx", 3, 0),
            row(starts[59], "h2", "4xx", 2, 2),
            row(5, "h2", "2xx", 9, 0),
        ];
        let report = summarize(starts, &rows);
        assert_eq!((report.requests[2][0], report.requests[1][59]), (3, 2));
        assert_eq!(report.bytes[1][59], 20);
        assert_eq!(report.statuses, [0, 3, 0, 2, 0], "the row outside the window is left out");
        assert_eq!(report.routes.len(), 1);
        assert_eq!(report.routes[0].requests, 5);
        assert!(report.latency[0].is_none() && report.latency[2].is_some());
    }
}
