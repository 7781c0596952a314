//! `/admin/v1/`: the SCIM Users, Groups and Me endpoints and the SCIM
//! discovery documents, all behind bearer tokens (RFC 6750). The JWKS at
//! `/admin/v1/SigningCert/jwk` stays public (it is routed elsewhere).

pub(crate) mod render;

use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use std::net::SocketAddr;

use axum::extract::{ConnectInfo, Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Response;
use axum::routing::{get, post};
use latchkey_core::admin::{AdminResult, Answer, Caller, ListParams, if_match};
use latchkey_core::meta::RequestMeta;
use latchkey_core::scim::discovery;
use latchkey_core::scim::resource::Projection;
use latchkey_core::scim::{ScimError, ScimStatus};
use serde_json::Value;

use crate::form;
use crate::state::AppState;
use render::{admin_error, answer, bearer_error, bearer_token, scim_error};

pub(crate) fn routes() -> Router<AppState> {
    registry::routes()
        .route("/admin/v1/Users", get(list_users).post(create_user))
        .route("/admin/v1/Users/.search", post(search_users))
        .route("/admin/v1/Groups/.search", post(search_groups))
        .route("/admin/v1/.search", post(search_all))
        .route(
            "/admin/v1/Users/{id}",
            get(get_user)
                .put(replace_user)
                .patch(patch_user)
                .delete(delete_user),
        )
        .route("/admin/v1/Groups", get(list_groups).post(create_group))
        .route(
            "/admin/v1/Groups/{id}",
            get(get_group)
                .put(replace_group)
                .patch(patch_group)
                .delete(delete_group),
        )
        .route("/admin/v1/Users/{id}/Sessions", get(list_sessions))
        .route(
            "/admin/v1/Sessions/{sid}",
            axum::routing::delete(end_session),
        )
        .route("/admin/v1/AuditEvents", get(audit_events))
        .route("/admin/v1/Me", get(get_me).put(replace_me).patch(patch_me))
        .route(
            "/admin/v1/ServiceProviderConfig",
            get(service_provider_config),
        )
        .route("/admin/v1/ResourceTypes", get(resource_types))
        .route("/admin/v1/ResourceTypes/{id}", get(resource_type))
        .route("/admin/v1/Schemas", get(schemas))
        .route("/admin/v1/Schemas/{id}", get(schema))
}

/// What every admin handler does first: who is calling.
async fn caller(
    state: &AppState,
    headers: &HeaderMap,
    query: Option<&str>,
) -> Result<Caller, Response> {
    let token = bearer_token(headers, query).map_err(|e| bearer_error(&e, &state.issuer))?;
    state
        .bearer
        .verify(&token)
        .await
        .map_err(|e| bearer_error(&e, &state.issuer))
}

fn respond(state: &AppState, result: AdminResult<Answer>) -> Response {
    match result {
        Ok(a) => answer(a),
        Err(e) => admin_error(&e, &state.issuer),
    }
}

/// The query string, strictly: a repeated parameter is an error.
fn query_params(
    query: Option<&str>,
) -> Result<std::collections::HashMap<String, String>, ScimError> {
    form::parse(query.unwrap_or("").as_bytes())
        .map_err(|e| ScimError::invalid_value(e.description.clone()))
}

fn list_params(query: Option<&str>) -> Result<ListParams, ScimError> {
    let mut q = query_params(query)?;
    Ok(ListParams {
        filter: q.remove("filter"),
        sort_by: q.remove("sortBy"),
        sort_order: q.remove("sortOrder"),
        start_index: q.remove("startIndex"),
        count: q.remove("count"),
        attributes: q.remove("attributes"),
        excluded_attributes: q.remove("excludedAttributes"),
        cursor: q.remove("cursor"),
    })
}

fn projection(query: Option<&str>) -> Result<Projection, ScimError> {
    let q = query_params(query)?;
    Projection::parse(
        q.get("attributes").map(String::as_str),
        q.get("excludedAttributes").map(String::as_str),
    )
}

/// A SCIM request body: `application/scim+json` (or `application/json`).
fn json_body(headers: &HeaderMap, body: Result<Bytes, BytesRejection>) -> Result<Value, ScimError> {
    let body = body.map_err(|rejection| {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ScimError::new(
                ScimStatus::PayloadTooLarge,
                None,
                "the request body is too large",
            )
        } else {
            ScimError::invalid_syntax("the request body could not be read")
        }
    })?;
    let media = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(|v| v.trim().to_ascii_lowercase());
    if !matches!(
        media.as_deref(),
        Some(render::SCIM_JSON | "application/json")
    ) {
        return Err(ScimError::new(
            ScimStatus::UnsupportedMediaType,
            None,
            "send application/scim+json (or application/json)",
        ));
    }
    serde_json::from_slice(&body)
        .map_err(|e| ScimError::invalid_syntax(format!("the body is not valid JSON: {e}")))
}

fn version(headers: &HeaderMap) -> Result<Option<i64>, ScimError> {
    if_match(headers.get(header::IF_MATCH).and_then(|v| v.to_str().ok()))
}

/// Unwraps a step or returns its error response.
macro_rules! try_or {
    ($result:expr) => {
        match $result {
            Ok(value) => value,
            Err(error) => return scim_error(&error),
        }
    };
}

macro_rules! authorized {
    ($state:expr, $headers:expr, $query:expr) => {
        match caller(&$state, &$headers, $query).await {
            Ok(caller) => caller,
            Err(response) => return response,
        }
    };
}

/// The handlers of one SCIM resource type, each a thin shell around a
/// `DirectoryService` method: who is calling, what was sent, the answer.
macro_rules! resource_handlers {
    (
        list: $list:ident => $list_m:ident,
        get: $get:ident => $get_m:ident,
        create: $create:ident => $create_m:ident,
        replace: $replace:ident => $replace_m:ident,
        patch: $patch:ident => $patch_m:ident,
        delete: $delete:ident => $delete_m:ident $(,)?
    ) => {
        async fn $list(
            State(state): State<AppState>,
            headers: HeaderMap,
            RawQuery(query): RawQuery,
        ) -> Response {
            let caller = authorized!(state, headers, query.as_deref());
            let params = try_or!(list_params(query.as_deref()));
            respond(&state, state.scim.$list_m(&caller, &params).await)
        }

        async fn $get(
            State(state): State<AppState>,
            Path(id): Path<String>,
            headers: HeaderMap,
            RawQuery(query): RawQuery,
        ) -> Response {
            let caller = authorized!(state, headers, query.as_deref());
            let projection = try_or!(projection(query.as_deref()));
            respond(&state, state.scim.$get_m(&caller, &id, &projection).await)
        }

        async fn $create(
            State(state): State<AppState>,
            headers: HeaderMap,
            RawQuery(query): RawQuery,
            body: Result<Bytes, BytesRejection>,
        ) -> Response {
            let caller = authorized!(state, headers, query.as_deref());
            let doc = try_or!(json_body(&headers, body));
            respond(&state, state.scim.$create_m(&caller, &doc).await)
        }

        resource_handlers!(@write $replace => $replace_m);
        resource_handlers!(@write $patch => $patch_m);

        async fn $delete(
            State(state): State<AppState>,
            Path(id): Path<String>,
            headers: HeaderMap,
            RawQuery(query): RawQuery,
        ) -> Response {
            let caller = authorized!(state, headers, query.as_deref());
            let version = try_or!(version(&headers));
            respond(&state, state.scim.$delete_m(&caller, &id, version).await)
        }
    };
    (@write $name:ident => $method:ident) => {
        async fn $name(
            State(state): State<AppState>,
            Path(id): Path<String>,
            headers: HeaderMap,
            RawQuery(query): RawQuery,
            body: Result<Bytes, BytesRejection>,
        ) -> Response {
            let caller = authorized!(state, headers, query.as_deref());
            let doc = try_or!(json_body(&headers, body));
            let version = try_or!(version(&headers));
            respond(&state, state.scim.$method(&caller, &id, &doc, version).await)
        }
    };
}

/// `POST …/.search` (RFC 7644 §3.4.3): a list whose query is a
/// `SearchRequest` body.
macro_rules! search_handler {
    ($name:ident => $method:ident) => {
        async fn $name(
            State(state): State<AppState>,
            headers: HeaderMap,
            RawQuery(query): RawQuery,
            body: Result<Bytes, BytesRejection>,
        ) -> Response {
            let caller = authorized!(state, headers, query.as_deref());
            let doc = try_or!(json_body(&headers, body));
            let params = try_or!(ListParams::from_search_request(&doc));
            respond(&state, state.scim.$method(&caller, &params).await)
        }
    };
}

search_handler!(search_users => list_users);
search_handler!(search_groups => list_groups);
search_handler!(search_all => search_all);

resource_handlers!(
    list: list_users => list_users,
    get: get_user => get_user,
    create: create_user => create_user,
    replace: replace_user => replace_user,
    patch: patch_user => patch_user,
    delete: delete_user => delete_user,
);

resource_handlers!(
    list: list_groups => list_groups,
    get: get_group => get_group,
    create: create_group => create_group,
    replace: replace_group => replace_group,
    patch: patch_group => patch_group,
    delete: delete_group => delete_group,
);

async fn get_me(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let caller = authorized!(state, headers, query.as_deref());
    let projection = try_or!(projection(query.as_deref()));
    respond(&state, state.scim.get_me(&caller, &projection).await)
}

/// The caller's address, for the sign-in gate a self-service password
/// change passes (the throttle counts per username and IP).
fn request_meta(state: &AppState, peer: SocketAddr, headers: &HeaderMap) -> RequestMeta {
    RequestMeta {
        ip: Some(crate::client_ip::client_ip(
            peer,
            headers,
            &state.trusted_proxies,
            state.forwarded_header,
        )),
        ..RequestMeta::default()
    }
}

async fn replace_me(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let caller = authorized!(state, headers, query.as_deref());
    let doc = try_or!(json_body(&headers, body));
    let version = try_or!(version(&headers));
    let meta = request_meta(&state, peer, &headers);
    respond(
        &state,
        state.scim.replace_me(&caller, &doc, version, &meta).await,
    )
}

async fn patch_me(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let caller = authorized!(state, headers, query.as_deref());
    let doc = try_or!(json_body(&headers, body));
    let version = try_or!(version(&headers));
    let meta = request_meta(&state, peer, &headers);
    respond(
        &state,
        state.scim.patch_me(&caller, &doc, version, &meta).await,
    )
}

async fn list_sessions(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let caller = authorized!(state, headers, query.as_deref());
    respond(&state, state.scim.list_sessions(&caller, &id).await)
}

async fn end_session(
    State(state): State<AppState>,
    Path(sid): Path<String>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let caller = authorized!(state, headers, query.as_deref());
    respond(&state, state.scim.end_session(&caller, &sid).await)
}

async fn audit_events(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let caller = authorized!(state, headers, query.as_deref());
    let mut q = try_or!(query_params(query.as_deref()));
    let params = latchkey_core::admin::AuditParams {
        event_type: q.remove("eventType"),
        actor: q.remove("actor"),
        subject: q.remove("subject"),
        since: q.remove("since"),
        until: q.remove("until"),
        start_index: q.remove("startIndex"),
        count: q.remove("count"),
    };
    respond(&state, state.scim.audit_events(&caller, &params).await)
}

fn document(body: Value) -> Response {
    answer(Answer {
        status: latchkey_core::admin::Outcome::Read,
        body,
        etag: None,
        location: None,
    })
}

async fn service_provider_config(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    authorized!(state, headers, query.as_deref());
    document(discovery::service_provider_config(
        &state.directory.base_url,
    ))
}

async fn resource_types(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    authorized!(state, headers, query.as_deref());
    document(discovery::resource_types_list(&state.directory.base_url))
}

async fn resource_type(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    authorized!(state, headers, query.as_deref());
    one_of(
        discovery::resource_types(&state.directory.base_url),
        &id,
        "resource type",
    )
}

/// The discovery document with this `id`, or a SCIM 404.
fn one_of(documents: Vec<Value>, id: &str, what: &str) -> Response {
    match documents.into_iter().find(|d| d["id"] == id) {
        Some(d) => document(d),
        None => scim_error(&ScimError::not_found(format!("no {what} {id}"))),
    }
}

async fn schemas(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    authorized!(state, headers, query.as_deref());
    document(discovery::schemas_list(&state.directory.base_url))
}

async fn schema(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    authorized!(state, headers, query.as_deref());
    one_of(discovery::schemas(&state.directory.base_url), &id, "schema")
}

mod registry;
pub(crate) use registry::openapi;
