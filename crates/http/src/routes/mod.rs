//! The router: every endpoint, and the layers every request passes.

pub(crate) mod admin;
mod client_request;
mod discovery;
mod health;
mod introspect;
mod token;
mod userinfo;

use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderName, HeaderValue, Request, StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::{DefaultOnResponse, TraceLayer};
use tracing::Level;

use crate::state::AppState;

pub fn router(state: AppState) -> Router {
    let limits = state.limits;
    let metrics = state.metrics.clone();
    let internal_routes = state.internal_routes;
    let security_headers = [
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::REFERRER_POLICY, "no-referrer"),
        (
            HeaderName::from_static("content-security-policy"),
            "default-src 'none'; frame-ancestors 'none'",
        ),
    ];
    let mut router = Router::new()
        .route("/oauth2/v1/token", post(token::token))
        .route("/oauth2/v1/introspect", post(introspect::introspect))
        .route("/oauth2/v1/revoke", post(introspect::revoke))
        .route("/oauth2/v1/keys", get(discovery::jwks))
        .route("/admin/v1/SigningCert/jwk", get(discovery::jwks))
        .route("/.well-known/jwks.json", get(discovery::jwks))
        .route(
            "/.well-known/oauth-authorization-server",
            get(discovery::metadata),
        )
        .route(
            "/.well-known/openid-configuration",
            get(discovery::metadata),
        )
        .route("/health/live", get(health::live))
        .route("/health/ready", get(health::ready))
        .route(
            "/oauth2/v1/userinfo",
            get(userinfo::userinfo).post(userinfo::userinfo),
        )
        .merge(admin::routes())
        .merge(crate::console::routes());
    if internal_routes {
        router = router.merge(internal());
    }
    let mut router = router
        .method_not_allowed_fallback(method_not_allowed)
        .fallback(not_found)
        .with_state(state)
        .layer(axum::middleware::from_fn(
            crate::input_guard::refuse_unstorable,
        ))
        .layer(DefaultBodyLimit::max(limits.max_body_bytes))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            Duration::from_secs(limits.request_timeout_secs),
        ))
        .layer(axum::middleware::from_fn_with_state(
            metrics,
            crate::metrics::track,
        ));
    for (name, value) in security_headers {
        router = router.layer(SetResponseHeaderLayer::if_not_present(
            name,
            HeaderValue::from_static(value),
        ));
    }
    // One line per request: method, route template, path (never the query
    // string, which a careless client may fill with credentials), request
    // id, the client_id where there is one, status and latency. The request id is the caller's `X-Request-Id`, or a new
    // UUID, and is returned in the response.
    router
        .layer(axum::middleware::from_fn(in_request_scope))
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(|request: &Request<_>| {
                    let request_id = request
                        .headers()
                        .get("x-request-id")
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or("");
                    let route = request
                        .extensions()
                        .get::<axum::extract::MatchedPath>()
                        .map_or("unmatched", |p| p.as_str());
                    tracing::info_span!(
                        "request",
                        method = request.method().as_str(),
                        route,
                        path = request.uri().path(),
                        request_id,
                        // Filled in by the endpoints that authenticate a client.
                        client_id = tracing::field::Empty,
                    )
                })
                .on_request(())
                .on_response(DefaultOnResponse::new().level(Level::INFO))
                // The request line above carries every status; a failure
                // is logged once more, with its cause, by the code that
                // answered it (`error.rs`, `render.rs`, …), not a second
                // time here at ERROR with nothing but the status.
                .on_failure(()),
        )
        .layer(PropagateRequestIdLayer::x_request_id())
        .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
}

/// Serves the request as part of its id (`meta::with_request_id`), so
/// the audit events it records carry the id its log lines carry.
async fn in_request_scope(
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let id = request
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    latchkey_core::meta::with_request_id(&id, next.run(request)).await
}

/// What an operator's tools read and the public need not see: the
/// metrics, and the OpenAPI document of the admin API.
fn internal() -> Router<AppState> {
    Router::new()
        .route("/metrics", get(crate::metrics::scrape))
        .route("/admin/v1/openapi.json", get(admin::openapi))
}

/// The router of a separate metrics listener (`--metrics-listen`): the
/// internal endpoints.
pub fn metrics_router(state: AppState) -> Router {
    internal().fallback(not_found).with_state(state)
}

/// Under the SCIM base, every answer is a SCIM one (RFC 7644 §3.12), so
/// provisioning clients can read it; elsewhere a small JSON body.
fn under_scim_base(uri: &axum::http::Uri) -> bool {
    uri.path().starts_with("/admin/v1/") || uri.path() == "/admin/v1"
}

async fn not_found(uri: axum::http::Uri) -> axum::response::Response {
    if under_scim_base(&uri) {
        return admin::render::scim_error(&latchkey_core::scim::ScimError::not_found(
            "no such endpoint under the SCIM base",
        ));
    }
    (
        StatusCode::NOT_FOUND,
        axum::Json(serde_json::json!({"error": "not_found"})),
    )
        .into_response()
}

/// A known path asked with a method it does not take; axum adds `Allow`.
async fn method_not_allowed(uri: axum::http::Uri) -> axum::response::Response {
    if under_scim_base(&uri) {
        return admin::render::scim_error(&latchkey_core::scim::ScimError::new(
            latchkey_core::scim::ScimStatus::MethodNotAllowed,
            None,
            "this endpoint does not take that method",
        ));
    }
    StatusCode::METHOD_NOT_ALLOWED.into_response()
}
