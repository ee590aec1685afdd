//! Request statistics kept in memory and exposed as Prometheus text on `/metrics`.

use std::fmt::Write;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

use axum::http::{StatusCode, Version};

const PROTOCOLS: [&str; 3] = ["http/1.1", "h2", "h3"];
const CLASSES: [&str; 5] = ["1xx", "2xx", "3xx", "4xx", "5xx"];

/// Counters of every request, by protocol and status class, updated by the access log.
#[derive(Default)]
pub(crate) struct Stats {
    requests: [[AtomicU64; CLASSES.len()]; PROTOCOLS.len()],
    response_bytes: [AtomicU64; PROTOCOLS.len()],
    aborted: [AtomicU64; PROTOCOLS.len()],
    duration_micros: [AtomicU64; PROTOCOLS.len()],
    partial: [AtomicU64; PROTOCOLS.len()],
    send_timeouts: [AtomicU64; PROTOCOLS.len()],
    connections_open: AtomicI64,
    connections_total: AtomicU64,
    connections_parked: AtomicI64,
    quic_retries: AtomicU64,
}

/// Counts a connection as open until dropped.
pub(crate) struct OpenConnection<'a>(&'a Stats);

impl Drop for OpenConnection<'_> {
    fn drop(&mut self) {
        self.0.connections_open.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Counts a connection as parked until dropped.
pub(crate) struct ParkedConnection<'a>(&'a Stats);

impl Drop for ParkedConnection<'_> {
    fn drop(&mut self) {
        self.0.connections_parked.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Stats {
    /// Records one finished (or aborted) response.
    pub(crate) fn record(
        &self,
        version: Version,
        status: StatusCode,
        bytes: u64,
        micros: u64,
        complete: bool,
    ) {
        let p = protocol_index(version);
        let class = usize::from(status.as_u16() / 100).clamp(1, 5) - 1;
        self.requests[p][class].fetch_add(1, Ordering::Relaxed);
        self.response_bytes[p].fetch_add(bytes, Ordering::Relaxed);
        self.duration_micros[p].fetch_add(micros, Ordering::Relaxed);
        if !complete {
            self.aborted[p].fetch_add(1, Ordering::Relaxed);
        }
        if status == StatusCode::PARTIAL_CONTENT {
            self.partial[p].fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Records a response (or HTTP/1.1 or HTTP/2 connection) aborted by `limits.send_timeout`.
    pub(crate) fn send_timed_out(&self, version: Version) {
        self.send_timeouts[protocol_index(version)].fetch_add(1, Ordering::Relaxed);
    }

    /// Records a QUIC Initial answered with Retry (address validation) instead of a handshake.
    pub(crate) fn quic_retried(&self) {
        self.quic_retries.fetch_add(1, Ordering::Relaxed);
    }

    /// Records a connection (TCP or QUIC) that completed its handshake.
    pub(crate) fn connection_opened(&self) -> OpenConnection<'_> {
        self.connections_open.fetch_add(1, Ordering::Relaxed);
        self.connections_total.fetch_add(1, Ordering::Relaxed);
        OpenConnection(self)
    }

    /// Counts an idle HTTP/1.1 connection as parked (holding no HTTP state) until dropped.
    pub(crate) fn connection_parked(&self) -> ParkedConnection<'_> {
        self.connections_parked.fetch_add(1, Ordering::Relaxed);
        ParkedConnection(self)
    }

    /// The counters in the Prometheus text exposition format.
    pub(crate) fn render(&self) -> String {
        let mut out = String::new();
        out.push_str("# HELP kino_requests_total Responses sent, by protocol and status class.\n");
        out.push_str("# TYPE kino_requests_total counter\n");
        for (p, protocol) in PROTOCOLS.iter().enumerate() {
            for (c, class) in CLASSES.iter().enumerate() {
                let n = self.requests[p][c].load(Ordering::Relaxed);
                let _ =
                    writeln!(out, "kino_requests_total{{protocol=\"{protocol}\",status=\"{class}\"}} {n}");
            }
        }
        let families = [
            ("kino_response_body_bytes_total", "Response body bytes delivered.", &self.response_bytes),
            ("kino_responses_aborted_total", "Responses whose body was not fully delivered.", &self.aborted),
            (
                "kino_partial_responses_total",
                "206 Partial Content responses (range requests served).",
                &self.partial,
            ),
            (
                "kino_send_timeouts_total",
                "Responses or connections aborted because the client accepted no bytes for limits.send_timeout.",
                &self.send_timeouts,
            ),
            (
                "kino_response_duration_microseconds_total",
                "Time from request to last body byte.",
                &self.duration_micros,
            ),
        ];
        for (name, help, values) in families {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter");
            for (p, protocol) in PROTOCOLS.iter().enumerate() {
                let n = values[p].load(Ordering::Relaxed);
                let _ = writeln!(out, "{name}{{protocol=\"{protocol}\"}} {n}");
            }
        }
        let open = self.connections_open.load(Ordering::Relaxed);
        let total = self.connections_total.load(Ordering::Relaxed);
        let _ = writeln!(
            out,
            "# HELP kino_connections_open Connections being served.\n# TYPE kino_connections_open gauge\nkino_connections_open {open}"
        );
        let _ = writeln!(
            out,
            "# HELP kino_connections_total Connections served.\n# TYPE kino_connections_total counter\nkino_connections_total {total}"
        );
        let parked = self.connections_parked.load(Ordering::Relaxed);
        let _ = writeln!(
            out,
            "# HELP kino_connections_parked Idle HTTP/1.1 keep-alive connections holding no HTTP state.\n# TYPE kino_connections_parked gauge\nkino_connections_parked {parked}"
        );
        let retries = self.quic_retries.load(Ordering::Relaxed);
        let _ = writeln!(
            out,
            "# HELP kino_quic_retries_total QUIC Initials answered with Retry because limits.quic_retry_threshold handshakes were half-open.\n# TYPE kino_quic_retries_total counter\nkino_quic_retries_total {retries}"
        );
        out
    }
}

/// The label of an HTTP version as the access log and metrics print it.
pub(crate) fn protocol_label(version: Version) -> &'static str {
    PROTOCOLS[protocol_index(version)]
}

fn protocol_index(version: Version) -> usize {
    match version {
        Version::HTTP_2 => 1,
        Version::HTTP_3 => 2,
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_by_protocol_and_class() {
        let stats = Stats::default();
        stats.record(Version::HTTP_2, StatusCode::PARTIAL_CONTENT, 100, 5, true);
        stats.record(Version::HTTP_3, StatusCode::NOT_FOUND, 10, 5, false);
        let text = stats.render();
        assert!(text.contains("kino_requests_total{protocol=\"h2\",status=\"2xx\"} 1"), "{text}");
        assert!(text.contains("kino_requests_total{protocol=\"h3\",status=\"4xx\"} 1"), "{text}");
        assert!(text.contains("kino_response_body_bytes_total{protocol=\"h2\"} 100"), "{text}");
        assert!(text.contains("kino_responses_aborted_total{protocol=\"h3\"} 1"), "{text}");
    }
}
