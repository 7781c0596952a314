//! Latchkey's HTTP layer (axum). Parses requests, calls the core services,
//! renders their answers. `error.rs` is the only place that knows status
//! codes.

mod client_credentials;
mod client_ip;
mod console;
mod error;
mod form;
mod input_guard;
mod metrics;
mod openapi;
mod rate_limit;
mod routes;
mod state;

pub use client_ip::ForwardedHeader;
pub use ipnet::IpNet;
pub use metrics::Metrics;
pub use rate_limit::{Rate, RateLimitConfig, RateLimits};
pub use routes::{metrics_router, router};
pub use state::{AppState, HttpLimits};

/// The request parsers, reachable from the fuzz targets in `fuzz/`; not an API.
#[doc(hidden)]
pub mod fuzzing;
