//! The JSON admin API for what SCIM does not cover: `/admin/v1/Apps`,
//! `/admin/v1/ResourceServers`, `/admin/v1/SigningKeys`, and the OpenAPI
//! document that describes them. Same bearer rules and permission table as
//! the SCIM endpoints; bodies use the domain file's field names.

use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use latchkey_core::admin::{
    Actor, AdminError, RegistryError, WithSecret, app_json, key_json, resource_server_json,
};
use latchkey_core::domain::{AppInput, ResourceServerSpec};
use latchkey_core::keys::KeyRotation;
use latchkey_core::scim::ScimError;
use serde::Deserialize;
use serde_json::{Value, json};

use super::render::{admin_error, scim_error};
use super::{caller, json_body};
use crate::state::AppState;

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/admin/v1/Apps", get(list_apps).post(create_app))
        .route(
            "/admin/v1/Apps/{id}",
            get(get_app).put(replace_app).delete(delete_app),
        )
        .route("/admin/v1/Apps/{id}/secret", post(rotate_secret))
        .route(
            "/admin/v1/ResourceServers",
            get(list_servers).post(create_server),
        )
        .route(
            "/admin/v1/ResourceServers/{id}",
            get(get_server).put(replace_server).delete(delete_server),
        )
        .route("/admin/v1/SigningKeys", get(list_keys).post(rotate_key))
}

/// A JSON answer, never cached (it describes credentials).
fn json_answer(status: StatusCode, value: &Value) -> Response {
    let mut response = (status, value.to_string()).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// A `201 Created` names where the new resource lives.
fn located(mut response: Response, state: &AppState, collection: &str, id: &str) -> Response {
    let url = format!("{}/admin/v1/{collection}/{id}", state.issuer);
    if let Ok(location) = HeaderValue::from_str(&url) {
        response.headers_mut().insert(header::LOCATION, location);
    }
    response
}

fn list(items: Vec<Value>) -> Response {
    json_answer(
        StatusCode::OK,
        &json!({"totalResults": items.len(), "Resources": items}),
    )
}

fn refused(state: &AppState, error: RegistryError) -> Response {
    admin_error(&AdminError::from(error), &state.issuer)
}

/// The body as `T`, or a SCIM 400 naming what is wrong.
fn parse<T: for<'de> Deserialize<'de>>(
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<T, ScimError> {
    let value = json_body(headers, body)?;
    serde_json::from_value(value).map_err(|e| ScimError::invalid_value(e.to_string()))
}

fn with_secret(status: StatusCode, created: &WithSecret) -> Response {
    let mut body = app_json(&created.app);
    if let Some(secret) = &created.client_secret {
        // Shown once: only its keyed hash is stored.
        body["client_secret"] = json!(secret);
    }
    json_answer(status, &body)
}

macro_rules! caller_or {
    ($state:expr, $headers:expr, $query:expr) => {
        match caller(&$state, &$headers, $query).await {
            Ok(caller) => caller,
            Err(response) => return response,
        }
    };
}

macro_rules! done_or {
    ($state:expr, $result:expr) => {
        match $result {
            Ok(value) => value,
            Err(error) => return refused(&$state, error),
        }
    };
}

macro_rules! body_or {
    ($result:expr) => {
        match $result {
            Ok(value) => value,
            Err(error) => return scim_error(&error),
        }
    };
}

// ----- apps

async fn list_apps(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
) -> Response {
    let caller = caller_or!(state, headers, q.as_deref());
    let apps = done_or!(
        state,
        state.registry.list_apps(Actor::Caller(&caller)).await
    );
    list(apps.iter().map(app_json).collect())
}

async fn get_app(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
    Path(id): Path<String>,
) -> Response {
    let caller = caller_or!(state, headers, q.as_deref());
    let app = done_or!(state, state.registry.app(Actor::Caller(&caller), &id).await);
    json_answer(StatusCode::OK, &app_json(&app))
}

async fn create_app(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let caller = caller_or!(state, headers, q.as_deref());
    let input: AppInput = body_or!(parse(&headers, body));
    let created = done_or!(
        state,
        state
            .registry
            .create_app(Actor::Caller(&caller), input)
            .await
    );
    let response = with_secret(StatusCode::CREATED, &created);
    located(response, &state, "Apps", &created.app.id)
}

async fn replace_app(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
    Path(id): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let caller = caller_or!(state, headers, q.as_deref());
    let input: AppInput = body_or!(parse(&headers, body));
    let app = done_or!(
        state,
        state
            .registry
            .update_app(Actor::Caller(&caller), &id, input)
            .await
    );
    json_answer(StatusCode::OK, &app_json(&app))
}

async fn delete_app(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
    Path(id): Path<String>,
) -> Response {
    let caller = caller_or!(state, headers, q.as_deref());
    done_or!(
        state,
        state.registry.delete_app(Actor::Caller(&caller), &id).await
    );
    StatusCode::NO_CONTENT.into_response()
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RotateBody {
    /// How long the current secret keeps working ("24h", at most "30d").
    #[serde(default)]
    grace: Option<String>,
}

async fn rotate_secret(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
    Path(id): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let caller = caller_or!(state, headers, q.as_deref());
    let empty = body.as_ref().is_ok_and(|b| b.is_empty());
    let rotate: RotateBody = if empty {
        RotateBody::default()
    } else {
        body_or!(parse(&headers, body))
    };
    let grace = match rotate.grace.as_deref() {
        None => 0,
        Some(text) => body_or!(
            latchkey_core::duration::parse_duration(text)
                .map_err(|e| ScimError::invalid_value(format!("grace: {e}")))
        ),
    };
    let rotated = done_or!(
        state,
        state
            .registry
            .rotate_app_secret(Actor::Caller(&caller), &id, grace)
            .await
    );
    with_secret(StatusCode::OK, &rotated)
}

// ----- resource servers

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ServerBody {
    name: String,
    audience: String,
    #[serde(default)]
    scopes: Vec<String>,
}

impl From<ServerBody> for ResourceServerSpec {
    fn from(b: ServerBody) -> Self {
        ResourceServerSpec {
            name: b.name,
            audience: b.audience,
            scopes: b.scopes,
        }
    }
}

async fn list_servers(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
) -> Response {
    let caller = caller_or!(state, headers, q.as_deref());
    let servers = done_or!(
        state,
        state
            .registry
            .list_resource_servers(Actor::Caller(&caller))
            .await
    );
    list(servers.iter().map(resource_server_json).collect())
}

async fn get_server(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
    Path(id): Path<String>,
) -> Response {
    let caller = caller_or!(state, headers, q.as_deref());
    let server = done_or!(
        state,
        state
            .registry
            .resource_server(Actor::Caller(&caller), &id)
            .await
    );
    json_answer(StatusCode::OK, &resource_server_json(&server))
}

async fn create_server(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let caller = caller_or!(state, headers, q.as_deref());
    let spec: ServerBody = body_or!(parse(&headers, body));
    let server = done_or!(
        state,
        state
            .registry
            .write_resource_server(Actor::Caller(&caller), None, spec.into())
            .await
    );
    let response = json_answer(StatusCode::CREATED, &resource_server_json(&server));
    located(response, &state, "ResourceServers", &server.id)
}

async fn replace_server(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
    Path(id): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let caller = caller_or!(state, headers, q.as_deref());
    let spec: ServerBody = body_or!(parse(&headers, body));
    let server = done_or!(
        state,
        state
            .registry
            .write_resource_server(Actor::Caller(&caller), Some(&id), spec.into())
            .await
    );
    json_answer(StatusCode::OK, &resource_server_json(&server))
}

async fn delete_server(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
    Path(id): Path<String>,
) -> Response {
    let caller = caller_or!(state, headers, q.as_deref());
    done_or!(
        state,
        state
            .registry
            .delete_resource_server(Actor::Caller(&caller), &id)
            .await
    );
    StatusCode::NO_CONTENT.into_response()
}

// ----- signing keys

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RotateKeyBody {
    /// RS256, RS256-3072, ES256 or EdDSA (default: the configured one).
    #[serde(default)]
    alg: Option<String>,
    /// The emergency path: sign at once instead of after publish_ahead.
    #[serde(default)]
    now: bool,
}

async fn list_keys(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
) -> Response {
    let caller = caller_or!(state, headers, q.as_deref());
    let keys = done_or!(
        state,
        state.registry.list_keys(Actor::Caller(&caller)).await
    );
    list(keys.iter().map(key_json).collect())
}

async fn rotate_key(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let caller = caller_or!(state, headers, q.as_deref());
    let empty = body.as_ref().is_ok_and(|b| b.is_empty());
    let wanted: RotateKeyBody = if empty {
        RotateKeyBody::default()
    } else {
        body_or!(parse(&headers, body))
    };
    let alg = match wanted.alg.as_deref() {
        None => None,
        Some(text) => {
            Some(body_or!(text.parse().map_err(|e: String| {
                ScimError::invalid_value(format!("alg: {e}"))
            })))
        }
    };
    let key = done_or!(
        state,
        state
            .registry
            .rotate_key(
                Actor::Caller(&caller),
                alg,
                if wanted.now {
                    KeyRotation::Immediate
                } else {
                    KeyRotation::Staged
                }
            )
            .await
    );
    json_answer(StatusCode::CREATED, &key_json(&key))
}

// ----- the OpenAPI document

/// Unauthenticated, like the discovery documents: it describes, it grants
/// nothing; still, an internal endpoint, off a public listener by default
/// (`routes::internal_routes`).
pub(crate) async fn openapi(State(state): State<AppState>) -> Response {
    json_answer(StatusCode::OK, &crate::openapi::document(&state.issuer))
}
