//! Liveness (the process answers) and readiness (the database answers).

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use serde_json::json;

use crate::state::AppState;

pub(crate) async fn live() -> impl IntoResponse {
    axum::Json(json!({"status": "ok"}))
}

/// A load balancer's health check has its own timeout (often 2–5 s):
/// answer "not ready" within 2 s rather than let it time out.
const READY_WITHIN: std::time::Duration = std::time::Duration::from_secs(2);

pub(crate) async fn ready(State(state): State<AppState>) -> impl IntoResponse {
    let ping = tokio::time::timeout(READY_WITHIN, state.repos.domain.ping()).await;
    match ping.unwrap_or_else(|_| {
        Err(latchkey_core::store::StoreError::Unavailable(
            "no answer within 2 s".into(),
        ))
    }) {
        Ok(()) => (StatusCode::OK, axum::Json(json!({"status": "ok"}))),
        Err(e) => {
            tracing::warn!(error = e.to_string(), "readiness check failed");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                axum::Json(json!({"status": "unavailable", "database": "unreachable"})),
            )
        }
    }
}
