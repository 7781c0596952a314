//! Prometheus metrics (`GET /metrics`), through the `metrics` facade.
//!
//! Each server owns its recorder (no process-global one): two servers in
//! one process — the test suite runs many — keep separate figures. Values
//! that exist anyway (pool sizes, the hash queue, the signing key's age)
//! are read when scraped rather than tracked on every change.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::{MatchedPath, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use metrics::{Histogram, Key, Label, Metadata, Recorder, Unit};
use metrics_exporter_prometheus::{
    Matcher, PrometheusBuilder, PrometheusHandle, PrometheusRecorder,
};

use crate::state::AppState;

/// Request latencies span well under a millisecond (refresh, JWKS) to the
/// tens of milliseconds of a password hash, and seconds when overloaded.
const SECONDS_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

pub struct Metrics {
    recorder: PrometheusRecorder,
    handle: PrometheusHandle,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let recorder = PrometheusBuilder::new()
            .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), SECONDS_BUCKETS)
            .expect("the bucket list is not empty")
            .build_recorder();
        let handle = recorder.handle();
        let metrics = Metrics { recorder, handle };
        metrics.record(|| {
            metrics::describe_counter!(
                "latchkey_http_requests_total",
                "HTTP requests by method, route and status"
            );
            metrics::describe_histogram!(
                "latchkey_http_request_duration_seconds",
                Unit::Seconds,
                "HTTP request latency by method, route and status"
            );
            metrics::describe_counter!(
                "latchkey_token_requests_total",
                "Token endpoint requests by grant type and outcome"
            );
            metrics::describe_histogram!(
                "latchkey_password_hash_wait_seconds",
                Unit::Seconds,
                "Time a password hash waited for a worker"
            );
            metrics::describe_gauge!(
                "latchkey_password_hash_queue_depth",
                "Password hashes waiting for a worker"
            );
            metrics::describe_gauge!(
                "latchkey_password_hash_running",
                "Password hashes running now"
            );
            metrics::describe_gauge!(
                "latchkey_password_hash_workers",
                "Password hash worker threads"
            );
            metrics::describe_gauge!(
                "latchkey_db_pool_connections",
                "Database connections by state (idle, in_use)"
            );
            metrics::describe_gauge!(
                "latchkey_db_pool_max_connections",
                "The most connections the pool opens"
            );
            metrics::describe_histogram!(
                "latchkey_db_pool_acquire_seconds",
                Unit::Seconds,
                "Time to take a connection from the pool, sampled at each scrape"
            );
            metrics::describe_counter!(
                "latchkey_db_pool_acquire_failures_total",
                "Scrapes that could not take a connection within 1 s"
            );
            metrics::describe_gauge!(
                "latchkey_signing_key_age_seconds",
                Unit::Seconds,
                "Age of the active signing key"
            );
            metrics::describe_gauge!(
                "latchkey_http_connections",
                "Connections open on the main listener"
            );
            metrics::describe_counter!(
                "latchkey_http_connections_closed_total",
                "Connections the server closed, by reason (idle, no_request, slow_headers, tls_handshake_timeout, evicted)"
            );
            metrics::describe_gauge!("latchkey_build_info", "Build information");
            metrics::gauge!("latchkey_build_info", "version" => env!("CARGO_PKG_VERSION")).set(1.0);
        });
        metrics
    }

    /// Runs `f` with this server's recorder behind the `metrics` macros.
    pub fn record<T>(&self, f: impl FnOnce() -> T) -> T {
        metrics::with_local_recorder(&self.recorder, f)
    }

    /// A histogram handle of this recorder, usable from any thread (the
    /// password hasher's workers record their queueing time with it).
    pub fn histogram(&self, name: &'static str) -> Histogram {
        self.recorder.register_histogram(
            &Key::from_static_name(name),
            &Metadata::new(module_path!(), metrics::Level::INFO, None),
        )
    }

    /// Drains recorded histogram samples into their buckets; run it
    /// periodically so memory stays bounded between scrapes.
    pub fn upkeep(&self) {
        self.handle.run_upkeep();
    }

    /// The main listener's open connections (its accept loop reports them).
    pub fn connections_open(&self, open: usize) {
        self.record(|| metrics::gauge!("latchkey_http_connections").set(open as f64));
    }

    /// A connection the server closed, by reason (a fixed set of labels).
    pub fn connection_closed(&self, reason: &'static str) {
        self.record(|| {
            metrics::counter!("latchkey_http_connections_closed_total", "reason" => reason)
                .increment(1)
        });
    }

    fn render(&self) -> String {
        self.handle.render()
    }
}

/// Records the outcome of one token request.
pub(crate) fn token_outcome(metrics: &Metrics, grant_type: &str, outcome: &'static str) {
    // Only the grant types Latchkey knows become labels: a client cannot
    // grow the label set by inventing grant types.
    let grant_type = match grant_type {
        "password" | "refresh_token" | "client_credentials" => grant_type.to_owned(),
        _ => "other".to_owned(),
    };
    metrics.record(|| {
        metrics::counter!("latchkey_token_requests_total", "grant_type" => grant_type, "outcome" => outcome)
            .increment(1);
    });
}

/// The request method as a label: the methods of RFC 9110 keep their
/// name, anything a client invents is `other` (a label per invented method
/// would grow the registry, and every scrape, without bound). The other
/// labels are bounded by construction: `route` is a route template or
/// `unmatched`, `status` a code the server chose, `grant_type` one of
/// three or `other`, `outcome` and `reason` fixed sets.
fn method_label(method: &axum::http::Method) -> &'static str {
    use axum::http::Method;
    match *method {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::PATCH => "PATCH",
        Method::OPTIONS => "OPTIONS",
        Method::CONNECT => "CONNECT",
        Method::TRACE => "TRACE",
        _ => "other",
    }
}

/// Middleware: counts every request and its latency by route template (not
/// the raw path, which would make a label per user id) and status.
pub(crate) async fn track(
    State(metrics): State<Arc<Metrics>>,
    request: Request,
    next: Next,
) -> Response {
    let started = Instant::now();
    let method = method_label(request.method());
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let response = next.run(request).await;
    let elapsed = started.elapsed().as_secs_f64();
    let labels = [
        Label::from_static_parts("method", method),
        Label::new("route", route),
        Label::new("status", response.status().as_str().to_owned()),
    ];
    metrics.record(|| {
        metrics::counter!("latchkey_http_requests_total", labels.iter()).increment(1);
        metrics::histogram!("latchkey_http_request_duration_seconds", labels.iter())
            .record(elapsed);
    });
    response
}

/// `GET /metrics`: the Prometheus text format.
pub(crate) async fn scrape(State(state): State<AppState>) -> Response {
    let metrics = &state.metrics;
    let pool = state.repos.domain.pool_stats();
    // Bounded: a scrape must answer even while the database does not.
    let acquire =
        tokio::time::timeout(Duration::from_secs(1), state.repos.domain.acquire_latency()).await;
    let key_age = state
        .keys
        .active_created_at()
        .ok()
        .map(|created| (state.tokens.clock.now() - created).max(0));
    let hasher = &state.hasher;
    let in_flight = hasher.in_flight();
    metrics.record(|| {
        metrics::gauge!("latchkey_db_pool_connections", "state" => "idle").set(pool.idle as f64);
        metrics::gauge!("latchkey_db_pool_connections", "state" => "in_use")
            .set(pool.size.saturating_sub(pool.idle) as f64);
        metrics::gauge!("latchkey_db_pool_max_connections").set(pool.max as f64);
        match acquire {
            Ok(Ok(took)) => {
                metrics::histogram!("latchkey_db_pool_acquire_seconds").record(took.as_secs_f64())
            }
            _ => metrics::counter!("latchkey_db_pool_acquire_failures_total").increment(1),
        }
        if let Some(age) = key_age {
            metrics::gauge!("latchkey_signing_key_age_seconds").set(age as f64);
        }
        metrics::gauge!("latchkey_password_hash_queue_depth")
            .set(in_flight.saturating_sub(hasher.workers()) as f64);
        metrics::gauge!("latchkey_password_hash_running")
            .set(in_flight.min(hasher.workers()) as f64);
        metrics::gauge!("latchkey_password_hash_workers").set(hasher.workers() as f64);
    });
    (
        StatusCode::OK,
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        metrics.render(),
    )
        .into_response()
}
