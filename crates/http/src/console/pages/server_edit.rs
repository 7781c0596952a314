//! `/console/resource-servers/{id}/edit`: rename a resource server and
//! replace its scopes (its audience never changes), through
//! `RegistryService::write_resource_server`. A scope that an app may be
//! granted cannot be removed: that refusal is shown beside the scopes.

use askama::Template;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use latchkey_core::admin::{Actor, Permission};
use latchkey_core::domain::ResourceServerSpec;
use latchkey_core::model::ResourceServer;

use super::registry::{SERVER_FIELDS, refused, scope_list};
use super::valid_id;
use crate::console::fields::{FieldErrors, Refusal, registry_refusal};
use crate::console::session::{Signed, signed_in, signed_post};
use crate::console::view::{self, Chrome, Section};
use crate::state::AppState;

#[derive(Template)]
#[template(path = "console/resource_server_edit.html")]
struct EditPage {
    chrome: Chrome,
    errors: FieldErrors,
    id: String,
    audience: String,
    name: String,
    scopes: String,
}

async fn page(
    state: &AppState,
    signed: &Signed,
    server: &ResourceServer,
    name: String,
    scopes: String,
    errors: FieldErrors,
) -> Response {
    let status = if errors.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::BAD_REQUEST
    };
    let heading = format!("Edit {}", server.name);
    view::page(
        status,
        &EditPage {
            chrome: Chrome::signed(state, signed, heading, Section::ResourceServers, None).await,
            errors,
            id: server.id.clone(),
            audience: server.audience.clone(),
            name,
            scopes,
        },
    )
}

/// The server `id`, for a caller who may change resource servers.
async fn target(state: &AppState, signed: &Signed, id: &str) -> Result<ResourceServer, Response> {
    if !signed.session.caller.may(Permission::WriteApps) {
        return Err(view::forbidden(state, signed, "changing resource servers").await);
    }
    if !valid_id(id) {
        return Err(view::not_found(state, signed, "resource server").await);
    }
    match state
        .registry
        .resource_server(Actor::Caller(&signed.session.caller), id)
        .await
    {
        // Looked up by id only (the registry also takes an audience).
        Ok(server) if server.id == id => Ok(server),
        Ok(_) => Err(view::not_found(state, signed, "resource server").await),
        Err(e) => Err(refused(state, signed, e, "changing resource servers").await),
    }
}

pub(crate) async fn form(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let signed = match signed_in(&state, &headers).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let server = match target(&state, &signed, &id).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let (name, scopes) = (server.name.clone(), server.scopes.join(" "));
    page(
        &state,
        &signed,
        &server,
        name,
        scopes,
        FieldErrors::default(),
    )
    .await
}

pub(crate) async fn save(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    let (signed, form) = match signed_post(&state, &headers, &body).await {
        Ok(ok) => ok,
        Err(r) => return r,
    };
    let server = match target(&state, &signed, &id).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let name = form.get("name").trim().to_owned();
    let scopes = form.get("scopes").trim().to_owned();
    if name.is_empty() {
        let mut errors = FieldErrors::default();
        errors.add("name", "Enter a name.");
        return page(&state, &signed, &server, name, scopes, errors).await;
    }
    let spec = ResourceServerSpec {
        name: name.clone(),
        audience: server.audience.clone(),
        scopes: scope_list(&form),
    };
    match state
        .registry
        .write_resource_server(
            Actor::Caller(&signed.session.caller),
            Some(&server.id),
            spec,
        )
        .await
    {
        Ok(_) => view::redirect("/console/resource-servers?done=saved"),
        Err(e) => match registry_refusal(e, "scopes", &SERVER_FIELDS) {
            Refusal::Form(errors) => page(&state, &signed, &server, name, scopes, errors).await,
            Refusal::Denied => view::forbidden(&state, &signed, "changing resource servers").await,
            Refusal::SignedOut => view::redirect("/console/signin?done=expired"),
            Refusal::NotFound => view::not_found(&state, &signed, "resource server").await,
            Refusal::Unavailable => view::unavailable(),
        },
    }
}
