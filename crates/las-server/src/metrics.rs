//! Prometheus metrics, all prefixed `las_`.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

// Labels are static strings (the routes, methods and error kinds are fixed sets): a
// request allocates nothing to count itself.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct RequestLabels {
    pub(crate) route: &'static str,
    pub(crate) method: &'static str,
    pub(crate) status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct RouteLabels {
    pub(crate) route: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct ReasonLabels {
    pub(crate) reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct InfoLabels {
    pub(crate) mode: String,
    pub(crate) version: String,
    pub(crate) platform_id: String,
}

/// The daemon's metrics and their registry.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    pub(crate) requests: Family<RequestLabels, Counter>,
    pub(crate) latency: Family<RouteLabels, Histogram>,
    pub(crate) quotes_issued: Counter,
    pub(crate) quotes_refused: Family<ReasonLabels, Counter>,
    pub(crate) quote_latency: Histogram,
    /// `requests{route="/v1/quote",method="POST",status="200"}` and
    /// `latency{route="/v1/quote"}`, looked up once: the hot path counts without a lookup.
    pub(crate) quote_ok: Counter,
    pub(crate) quote_route_latency: Histogram,
    /// The serve loop's counters (registered by [`crate::ConnectionMetrics::register`]).
    pub(crate) connections: crate::ConnectionMetrics,
}

fn latency_buckets() -> impl Iterator<Item = f64> {
    // 10 µs .. ~5 s
    exponential_buckets(0.000_01, 2.5, 15)
}

impl Metrics {
    /// Registers every metric. `start_time` is the process start, seconds since the epoch.
    pub fn new(mode: &str, version: &str, platform_id: &str, start_time: u64) -> Self {
        let mut registry = Registry::with_prefix("las");
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "http_requests",
            "HTTP requests by route, method and status",
            requests.clone(),
        );
        let latency = Family::<RouteLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(latency_buckets())
        });
        registry.register(
            "http_request_duration_seconds",
            "HTTP request latency by route",
            latency.clone(),
        );
        let quotes_issued = Counter::default();
        registry.register("quotes_issued", "Quotes issued", quotes_issued.clone());
        let quotes_refused = Family::<ReasonLabels, Counter>::default();
        registry.register(
            "quotes_refused",
            "Quote requests refused, by error kind",
            quotes_refused.clone(),
        );
        let quote_latency = Histogram::new(latency_buckets());
        registry.register(
            "quote_duration_seconds",
            "Time to check a REPORT and sign a quote",
            quote_latency.clone(),
        );
        let connections = crate::ConnectionMetrics::register(&mut registry);
        let start = Gauge::<i64>::default();
        start.set(i64::try_from(start_time).unwrap_or(i64::MAX));
        registry.register(
            "process_start_time_seconds",
            "Start time of the process, seconds since the Unix epoch",
            start,
        );
        let info = Family::<InfoLabels, Gauge>::default();
        info.get_or_create(&InfoLabels {
            mode: mode.to_owned(),
            version: version.to_owned(),
            platform_id: platform_id.to_owned(),
        })
        .set(1);
        registry.register(
            "info",
            "Constant 1, labelled with the platform mode (sim = NOT SECURE), version and platform ID",
            info,
        );
        let quote_ok = requests
            .get_or_create(&RequestLabels {
                route: las_core::api::QUOTE,
                method: "POST",
                status: 200,
            })
            .clone();
        let quote_route_latency = latency
            .get_or_create(&RouteLabels {
                route: las_core::api::QUOTE,
            })
            .clone();
        Self {
            registry,
            requests,
            latency,
            quote_ok,
            quote_route_latency,
            quotes_issued,
            quotes_refused,
            quote_latency,
            connections,
        }
    }

    /// The counters of the connection loop (shared with the registered ones).
    pub(crate) fn connections(&self) -> crate::ConnectionMetrics {
        self.connections.clone()
    }

    /// The Prometheus text exposition.
    pub fn encode(&self) -> String {
        let mut out = String::with_capacity(8192);
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}
