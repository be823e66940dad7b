//! The gateway's own Prometheus metrics; `GET /metrics` serves them after
//! the node's (one OpenMetrics text document).

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

type Labels = Vec<(String, String)>;
/// A request's route (never its parameters: one of a fixed set of names).
type Route = [(&'static str, &'static str); 1];
/// A request's route and status: typed, so counting a request allocates
/// nothing.
type RouteStatus = (Route, [(&'static str, u16); 1]);

/// Request counters and latencies, by route; refusals by reason; open
/// connections.
#[derive(Debug)]
pub(crate) struct Metrics {
    requests: Family<RouteStatus, Counter>,
    latency: Family<Route, Histogram>,
    bytes_served: Counter,
    refused: Family<Labels, Counter>,
    connections: Gauge,
    view_cache_bytes: Gauge,
    view_cache_views: Gauge,
    rendered_bytes: Gauge,
    rendered_views: Gauge,
    pins_refused: Family<Labels, Counter>,
    fdroid_builds: Counter,
    fdroid_build_seconds: Histogram,
    registry: Registry,
}

fn latency_histogram() -> Histogram {
    // 0.5 ms .. about 16 s
    Histogram::new(exponential_buckets(0.0005, 2.0, 16))
}

impl Default for Metrics {
    fn default() -> Self {
        let requests = Family::<RouteStatus, Counter>::default();
        let latency = Family::<Route, Histogram>::new_with_constructor(
            latency_histogram as fn() -> Histogram,
        );
        let bytes_served = Counter::default();
        let refused = Family::<Labels, Counter>::default();
        let connections = Gauge::default();
        let view_cache_bytes = Gauge::default();
        let view_cache_views = Gauge::default();
        let rendered_bytes = Gauge::default();
        let rendered_views = Gauge::default();
        let pins_refused = Family::<Labels, Counter>::default();
        let fdroid_builds = Counter::default();
        let fdroid_build_seconds = Histogram::new(exponential_buckets(0.001, 2.0, 16));
        let mut registry = Registry::with_prefix("ipsr_gateway");
        registry.register(
            "requests",
            "HTTP requests answered, by route and status",
            requests.clone(),
        );
        registry.register(
            "request_duration_seconds",
            "Time to answer (to the start of the body), by route",
            latency.clone(),
        );
        registry.register(
            "content_bytes",
            "Bytes of app content and blocks sent",
            bytes_served.clone(),
        );
        registry.register(
            "refused",
            "Requests and connections refused to protect the gateway, by reason",
            refused.clone(),
        );
        registry.register(
            "open_connections",
            "HTTP connections open now",
            connections.clone(),
        );
        registry.register(
            "view_cache_bytes",
            "Bytes of rendered JSON views (bodies and keys) kept in the micro-cache",
            view_cache_bytes.clone(),
        );
        registry.register(
            "view_cache_views",
            "Rendered JSON views kept in the micro-cache",
            view_cache_views.clone(),
        );
        registry.register(
            "rendered_views_bytes",
            "Bytes of package views kept under the index's token of their state",
            rendered_bytes.clone(),
        );
        registry.register(
            "rendered_views",
            "Package views kept under the index's token of their state",
            rendered_views.clone(),
        );
        registry.register(
            "pins_refused",
            "Published content not pinned, by reason (uploads_forbidden, too_large, \
             quota_exceeded, blockstore_full, busy, content_mismatch, unavailable)",
            pins_refused.clone(),
        );
        registry.register(
            "fdroid_builds",
            "Builds of the F-Droid index files",
            fdroid_builds.clone(),
        );
        registry.register(
            "fdroid_build_seconds",
            "Time to build the F-Droid index files",
            fdroid_build_seconds.clone(),
        );
        Self {
            requests,
            latency,
            bytes_served,
            refused,
            connections,
            view_cache_bytes,
            view_cache_views,
            rendered_bytes,
            rendered_views,
            pins_refused,
            fdroid_builds,
            fdroid_build_seconds,
            registry,
        }
    }
}

impl Metrics {
    /// Counts one answered request.
    pub(crate) fn request(&self, route: &'static str, status: u16, seconds: f64) {
        let route = [("route", route)];
        self.requests
            .get_or_create(&(route, [("status", status)]))
            .inc();
        self.latency.get_or_create(&route).observe(seconds);
    }

    /// Counts published content not pinned, for `reason`.
    pub(crate) fn pin_refused(&self, reason: &str) {
        self.pins_refused
            .get_or_create(&vec![("reason".to_owned(), reason.to_owned())])
            .inc();
    }

    /// Counts one build of the F-Droid index files, that took `seconds`.
    pub(crate) fn fdroid_build(&self, seconds: f64) {
        self.fdroid_builds.inc();
        self.fdroid_build_seconds.observe(seconds);
    }

    /// Counts content bytes sent.
    pub(crate) fn served(&self, bytes: u64) {
        self.bytes_served.inc_by(bytes);
    }

    /// Counts one refusal (`docs/gateway.md` lists the reasons).
    pub(crate) fn refused(&self, reason: &'static str) {
        self.refused
            .get_or_create(&vec![("reason".to_owned(), reason.to_owned())])
            .inc();
    }

    /// Counts a connection opened (`+1`) or closed (`-1`).
    pub(crate) fn connection(&self, delta: i64) {
        self.connections.inc_by(delta);
    }

    /// Sets what the view micro-cache holds now: `bytes` by its bound's
    /// measure, in `views` views.
    pub(crate) fn view_cache(&self, bytes: u64, views: usize) {
        self.view_cache_bytes
            .set(i64::try_from(bytes).unwrap_or(i64::MAX));
        self.view_cache_views
            .set(i64::try_from(views).unwrap_or(i64::MAX));
    }

    /// Sets what the rendered package views hold now: `bytes` by their
    /// bound's measure, in `views` views.
    pub(crate) fn rendered(&self, bytes: u64, views: usize) {
        self.rendered_bytes
            .set(i64::try_from(bytes).unwrap_or(i64::MAX));
        self.rendered_views
            .set(i64::try_from(views).unwrap_or(i64::MAX));
    }

    /// The node's metrics text followed by the gateway's.
    pub(crate) fn encode(&self, node: &str) -> String {
        let mut out = node.trim_end().trim_end_matches("# EOF").to_owned();
        if let Err(e) = encode(&mut out, &self.registry) {
            tracing::error!(error = %e, "cannot encode metrics");
        }
        out
    }
}
