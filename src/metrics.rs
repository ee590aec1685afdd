//! The server's metrics, registered once with prometheus-client and exposed on `/metrics` in the
//! Prometheus text format.
//!
//! The hot path never touches the registry: every label set is created here, up front, and the
//! handles kept in arrays indexed by protocol, status class and route class, so counting a
//! request is a few relaxed atomic adds plus one histogram observation (a short uncontended
//! mutex inside prometheus-client), with no allocation and no map lookup.

use axum::http::{Method, StatusCode, Version};
use prometheus_client::collector::Collector;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

/// Protocol labels, indexed by [`protocol_index`].
pub(crate) const PROTOCOLS: [&str; 3] = ["http/1.1", "h2", "h3"];
/// Status class labels, indexed by [`class_index`].
pub(crate) const CLASSES: [&str; 5] = ["1xx", "2xx", "3xx", "4xx", "5xx"];
/// Rate-limit budgets, in the order of `middleware::rate_limit::Class`.
pub(crate) const BUDGETS: [&str; 4] = ["page", "stream", "auth", "upload"];
/// Upper bounds of the latency histograms, seconds: from a cached 304 (well under a millisecond)
/// to a film streamed for a minute (a media response lasts as long as the client downloads).
const LATENCY_BUCKETS: [f64; 14] =
    [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0, 30.0, 60.0];

type Labels = [(&'static str, &'static str); 1];
type Labels2 = [(&'static str, &'static str); 2];

/// Which kind of route answered, for the latency histograms: few enough values to keep the
/// series count small, distinct enough that a slow page is not hidden by fast media.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RouteClass {
    /// HTML pages.
    Page,
    /// JSON API calls.
    Api,
    /// Media bytes: `/stream`, `/media`, `/images`.
    Media,
    /// The stylesheet and other static files.
    Static,
    /// New uploads and tus chunks.
    Upload,
    /// Health probes and metrics.
    Ops,
}

impl RouteClass {
    const ALL: [Self; 6] = [Self::Page, Self::Api, Self::Media, Self::Static, Self::Upload, Self::Ops];

    /// The class of a request by its method and path.
    pub(crate) fn of(method: &Method, path: &str) -> Self {
        let under = |prefix: &str| {
            path.strip_prefix(prefix).is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
        };
        if matches!(path, "/healthz" | "/readyz" | "/metrics") {
            Self::Ops
        } else if (method == Method::POST && matches!(path, "/api/videos" | "/api/images"))
            || under("/api/uploads") && method != Method::OPTIONS
        {
            Self::Upload
        } else if under("/api") {
            Self::Api
        } else if under("/stream") || under("/media") || under("/images") || under("/download") {
            Self::Media
        } else if under("/static") {
            Self::Static
        } else {
            Self::Page
        }
    }

    /// The label value.
    pub(crate) fn label(self) -> &'static str {
        match self {
            Self::Page => "page",
            Self::Api => "api",
            Self::Media => "media",
            Self::Static => "static",
            Self::Upload => "upload",
            Self::Ops => "ops",
        }
    }
}

/// One finished (or aborted) response, as the access log reports it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Outcome {
    /// The protocol it was answered over.
    pub(crate) version: Version,
    /// Its status.
    pub(crate) status: StatusCode,
    /// Its route class.
    pub(crate) class: RouteClass,
    /// Body bytes delivered.
    pub(crate) bytes: u64,
    /// Microseconds from request to last body byte (or abort).
    pub(crate) micros: u64,
    /// Whether the body was delivered to its end.
    pub(crate) complete: bool,
    /// Views this response's bytes made count.
    pub(crate) views: u32,
}

/// Every metric of the server, and the registry that encodes them.
pub(crate) struct Stats {
    registry: Registry,
    requests: [[Counter; CLASSES.len()]; PROTOCOLS.len()],
    response_bytes: [Counter; PROTOCOLS.len()],
    aborted: [Counter; PROTOCOLS.len()],
    duration_micros: [Counter; PROTOCOLS.len()],
    partial: [Counter; PROTOCOLS.len()],
    send_timeouts: [Counter; PROTOCOLS.len()],
    latency: [[Histogram; RouteClass::ALL.len()]; PROTOCOLS.len()],
    rate_limited: [Counter; BUDGETS.len()],
    views_counted: Counter,
    streams_active: Gauge,
    connections_open: Gauge,
    connections_total: Counter,
    connections_parked: Gauge,
    quic_retries: Counter,
}

/// Counts a connection as open until dropped.
pub(crate) struct OpenConnection<'a>(&'a Stats);

impl Drop for OpenConnection<'_> {
    fn drop(&mut self) {
        self.0.connections_open.dec();
    }
}

/// Counts a connection as parked until dropped.
pub(crate) struct ParkedConnection<'a>(&'a Stats);

impl Drop for ParkedConnection<'_> {
    fn drop(&mut self) {
        self.0.connections_parked.dec();
    }
}

/// Counts a media body as being delivered until dropped.
pub(crate) struct ActiveStream(std::sync::Arc<Stats>);

impl Drop for ActiveStream {
    fn drop(&mut self) {
        self.0.streams_active.dec();
    }
}

/// A counter family labelled by protocol, with one pre-created counter per protocol.
fn by_protocol(registry: &mut Registry, name: &str, help: &str) -> [Counter; PROTOCOLS.len()] {
    let family = Family::<Labels, Counter>::default();
    registry.register(name, help, family.clone());
    PROTOCOLS.map(|protocol| family.get_or_create_owned(&[("protocol", protocol)]))
}

fn histogram() -> Histogram {
    Histogram::new(LATENCY_BUCKETS)
}

impl Default for Stats {
    fn default() -> Self {
        Self::new()
    }
}

impl Stats {
    /// Registers every metric, each label set created now.
    pub(crate) fn new() -> Self {
        let mut registry = Registry::default();
        let requests = Family::<Labels2, Counter>::default();
        registry.register("kino_requests", "Responses sent, by protocol and status class", requests.clone());
        let requests = PROTOCOLS.map(|protocol| {
            CLASSES.map(|status| requests.get_or_create_owned(&[("protocol", protocol), ("status", status)]))
        });
        let response_bytes =
            by_protocol(&mut registry, "kino_response_body_bytes", "Response body bytes delivered");
        let aborted = by_protocol(
            &mut registry,
            "kino_responses_aborted",
            "Responses whose body was not fully delivered",
        );
        let partial = by_protocol(
            &mut registry,
            "kino_partial_responses",
            "206 Partial Content responses (range requests served)",
        );
        let send_timeouts = by_protocol(
            &mut registry,
            "kino_send_timeouts",
            "Responses or connections aborted because the client accepted no bytes for limits.send_timeout",
        );
        let duration_micros = by_protocol(
            &mut registry,
            "kino_response_duration_microseconds",
            "Time from request to last body byte, summed",
        );
        let latency_family = Family::<Labels2, Histogram, fn() -> Histogram>::new_with_constructor(histogram);
        registry.register(
            "kino_request_duration_seconds",
            "Time from request to last body byte, by protocol and route class",
            latency_family.clone(),
        );
        let latency = PROTOCOLS.map(|protocol| {
            RouteClass::ALL.map(|class| {
                latency_family.get_or_create_owned(&[("protocol", protocol), ("route", class.label())])
            })
        });
        let limited = Family::<Labels, Counter>::default();
        registry.register(
            "kino_rate_limited",
            "Requests refused with 429 because the client's budget was spent, by budget",
            limited.clone(),
        );
        let rate_limited = BUDGETS.map(|budget| limited.get_or_create_owned(&[("budget", budget)]));
        let stats = Self {
            registry,
            requests,
            response_bytes,
            aborted,
            duration_micros,
            partial,
            send_timeouts,
            latency,
            rate_limited,
            views_counted: Counter::default(),
            streams_active: Gauge::default(),
            connections_open: Gauge::default(),
            connections_total: Counter::default(),
            connections_parked: Gauge::default(),
            quic_retries: Counter::default(),
        };
        stats.register_singles()
    }

    /// Registers the metrics without labels.
    fn register_singles(mut self) -> Self {
        let r = &mut self.registry;
        r.register(
            "kino_views_counted",
            "Views counted (a viewer reached enough checkpoints)",
            self.views_counted.clone(),
        );
        r.register(
            "kino_streams_active",
            "Media responses whose body is being delivered",
            self.streams_active.clone(),
        );
        r.register("kino_connections_open", "Connections being served", self.connections_open.clone());
        r.register("kino_connections", "Connections served", self.connections_total.clone());
        r.register(
            "kino_connections_parked",
            "Idle HTTP/1.1 keep-alive connections holding no HTTP state",
            self.connections_parked.clone(),
        );
        r.register(
            "kino_quic_retries",
            "QUIC Initials answered with Retry because limits.quic_retry_threshold handshakes were half-open",
            self.quic_retries.clone(),
        );
        self
    }

    /// Adds metrics read at each scrape (the image memory budget's), before the stats are shared.
    pub(crate) fn collect(&mut self, collector: Box<dyn Collector>) {
        self.registry.register_collector(collector);
    }

    /// Records one finished (or aborted) response.
    pub(crate) fn record(&self, outcome: &Outcome) {
        let p = protocol_index(outcome.version);
        self.requests[p][class_index(outcome.status)].inc();
        self.response_bytes[p].inc_by(outcome.bytes);
        self.duration_micros[p].inc_by(outcome.micros);
        // The variants are declared in `RouteClass::ALL`'s order.
        self.latency[p][outcome.class as usize].observe(outcome.micros as f64 / 1e6);
        if !outcome.complete {
            self.aborted[p].inc();
        }
        if outcome.status == StatusCode::PARTIAL_CONTENT {
            self.partial[p].inc();
        }
        if outcome.views > 0 {
            self.views_counted.inc_by(u64::from(outcome.views));
        }
    }

    /// Records a request refused by the rate limit of `budget` (an index into [`BUDGETS`]).
    pub(crate) fn rate_limited(&self, budget: usize) {
        if let Some(counter) = self.rate_limited.get(budget) {
            counter.inc();
        }
    }

    /// Counts a media body as active until the guard is dropped.
    pub(crate) fn stream_started(self: &std::sync::Arc<Self>) -> ActiveStream {
        self.streams_active.inc();
        ActiveStream(self.clone())
    }

    /// Records a response (or HTTP/1.1 or HTTP/2 connection) aborted by `limits.send_timeout`.
    pub(crate) fn send_timed_out(&self, version: Version) {
        self.send_timeouts[protocol_index(version)].inc();
    }

    /// Records a QUIC Initial answered with Retry (address validation) instead of a handshake.
    pub(crate) fn quic_retried(&self) {
        self.quic_retries.inc();
    }

    /// Records a connection (TCP or QUIC) that completed its handshake.
    pub(crate) fn connection_opened(&self) -> OpenConnection<'_> {
        self.connections_open.inc();
        self.connections_total.inc();
        OpenConnection(self)
    }

    /// Counts an idle HTTP/1.1 connection as parked (holding no HTTP state) until dropped.
    pub(crate) fn connection_parked(&self) -> ParkedConnection<'_> {
        self.connections_parked.inc();
        ParkedConnection(self)
    }

    /// Every metric in the Prometheus text exposition format (version 0.0.4).
    pub(crate) fn render(&self) -> String {
        let mut out = String::with_capacity(16 * 1024);
        // Writing into a String cannot fail; a collector's error would be a bug, shown as a gap.
        if let Err(error) = prometheus_client::encoding::prometheus_text::encode(&mut out, &self.registry) {
            tracing::error!(%error, "encoding the metrics failed");
        }
        out
    }
}

/// The content type of [`Stats::render`]'s output.
pub(crate) const CONTENT_TYPE: &str = prometheus_client::encoding::prometheus_text::CONTENT_TYPE;

/// The label of an HTTP version as the access log and metrics print it.
pub(crate) fn protocol_label(version: Version) -> &'static str {
    PROTOCOLS[protocol_index(version)]
}

/// The index of an HTTP version in [`PROTOCOLS`].
pub(crate) fn protocol_index(version: Version) -> usize {
    match version {
        Version::HTTP_2 => 1,
        Version::HTTP_3 => 2,
        _ => 0,
    }
}

/// The index of a status's class in [`CLASSES`].
pub(crate) fn class_index(status: StatusCode) -> usize {
    usize::from(status.as_u16() / 100).clamp(1, 5) - 1
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outcome(version: Version, status: StatusCode, bytes: u64, complete: bool) -> Outcome {
        Outcome { version, status, class: RouteClass::Media, bytes, micros: 5, complete, views: 0 }
    }

    #[test]
    fn records_by_protocol_and_class() {
        let stats = Stats::default();
        stats.record(&outcome(Version::HTTP_2, StatusCode::PARTIAL_CONTENT, 100, true));
        stats.record(&Outcome { views: 2, ..outcome(Version::HTTP_3, StatusCode::NOT_FOUND, 10, false) });
        stats.rate_limited(1);
        let text = stats.render();
        assert!(text.contains("kino_requests_total{protocol=\"h2\",status=\"2xx\"} 1\n"), "{text}");
        assert!(text.contains("kino_requests_total{protocol=\"h3\",status=\"4xx\"} 1\n"), "{text}");
        assert!(text.contains("kino_response_body_bytes_total{protocol=\"h2\"} 100\n"), "{text}");
        assert!(text.contains("kino_responses_aborted_total{protocol=\"h3\"} 1\n"), "{text}");
        assert!(text.contains("kino_views_counted_total 2\n"), "{text}");
        assert!(text.contains("kino_rate_limited_total{budget=\"stream\"} 1\n"), "{text}");
        assert!(
            text.contains(
                "kino_request_duration_seconds_bucket{le=\"0.001\",protocol=\"h2\",route=\"media\"} 1\n"
            ) || text.contains(
                "kino_request_duration_seconds_bucket{protocol=\"h2\",route=\"media\",le=\"0.001\"} 1\n"
            ),
            "{text}"
        );
        assert!(text.contains("kino_connections_open 0\n"), "{text}");
    }

    #[test]
    fn routes_are_classed_by_path_and_method() {
        assert_eq!(RouteClass::of(&Method::GET, "/"), RouteClass::Page);
        assert_eq!(RouteClass::of(&Method::GET, "/stats"), RouteClass::Page);
        assert_eq!(RouteClass::of(&Method::GET, "/api/videos"), RouteClass::Api);
        assert_eq!(RouteClass::of(&Method::POST, "/api/videos"), RouteClass::Upload);
        assert_eq!(RouteClass::of(&Method::PATCH, "/api/uploads/abc"), RouteClass::Upload);
        assert_eq!(RouteClass::of(&Method::GET, "/stream/abcdefgh.mp4"), RouteClass::Media);
        assert_eq!(RouteClass::of(&Method::GET, "/streaming"), RouteClass::Page);
        assert_eq!(RouteClass::of(&Method::GET, "/static/kino.css"), RouteClass::Static);
        assert_eq!(RouteClass::of(&Method::GET, "/metrics"), RouteClass::Ops);
        assert!(RouteClass::ALL.iter().enumerate().all(|(i, &c)| c as usize == i), "indexes the histograms");
    }
}
