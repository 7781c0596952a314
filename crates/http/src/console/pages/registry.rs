//! `/console/resource-servers` and `/console/keys`: the APIs that accept
//! our tokens (with their scopes), and the signing keys (rotation).

use std::collections::HashMap;

use askama::Template;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use latchkey_core::admin::{Actor, Permission, RegistryError};
use latchkey_core::domain::ResourceServerSpec;
use latchkey_core::keys::KeyRotation;

use super::{valid_id, when_unix};
use crate::console::fields::{FieldErrors, Refusal, registry_refusal};
use crate::console::form::Form;
use crate::console::session::{Signed, signed_in, signed_post};
use crate::console::view::{self, Chrome, Section};
use crate::state::AppState;

pub(super) const SERVER_FIELDS: [&str; 3] = ["name", "audience", "scopes"];

/// The scopes field: separated by spaces, commas or lines.
pub(super) fn scope_list(form: &Form) -> Vec<String> {
    form.get("scopes")
        .split([' ', ',', '\n', '\r'])
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

struct ServerRow {
    id: String,
    name: String,
    audience: String,
    scopes: Vec<String>,
}

#[derive(Template)]
#[template(path = "console/resource_servers.html")]
struct ServersPage {
    chrome: Chrome,
    rows: Vec<ServerRow>,
    may_write: bool,
    errors: FieldErrors,
    name: String,
    audience: String,
    scopes: String,
}

pub(super) async fn refused(
    state: &AppState,
    signed: &Signed,
    error: RegistryError,
    what: &str,
) -> Response {
    match registry_refusal(error, "audience", &SERVER_FIELDS) {
        Refusal::Denied => view::forbidden(state, signed, what).await,
        Refusal::SignedOut => view::redirect("/console/signin?done=expired"),
        Refusal::NotFound => view::not_found(state, signed, "resource server or key").await,
        Refusal::Unavailable => view::unavailable(),
        Refusal::Form(errors) => view::plain(
            StatusCode::CONFLICT,
            errors
                .form
                .as_deref()
                .or(errors.fields.first().map(|(_, m)| m.as_str()))
                .unwrap_or("Refused."),
        ),
    }
}

async fn servers_page(
    state: &AppState,
    signed: &Signed,
    notice: Option<&'static str>,
    form: Option<&Form>,
    errors: FieldErrors,
) -> Response {
    let caller = &signed.session.caller;
    if !caller.may(Permission::ReadApps) {
        return view::forbidden(state, signed, "viewing resource servers").await;
    }
    let servers = match state
        .registry
        .list_resource_servers(Actor::Caller(caller))
        .await
    {
        Ok(s) => s,
        Err(e) => return refused(state, signed, e, "viewing resource servers").await,
    };
    let value = |name: &str| {
        form.map(|f| f.get(name).trim().to_owned())
            .unwrap_or_default()
    };
    let status = if errors.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::BAD_REQUEST
    };
    view::page(
        status,
        &ServersPage {
            chrome: Chrome::signed(
                state,
                signed,
                "Resource servers",
                Section::ResourceServers,
                notice,
            )
            .await,
            rows: servers
                .into_iter()
                .map(|s| ServerRow {
                    scopes: s
                        .scopes
                        .iter()
                        .map(|sc| format!("{}{sc}", s.audience))
                        .collect(),
                    id: s.id,
                    name: s.name,
                    audience: s.audience,
                })
                .collect(),
            may_write: caller.may(Permission::WriteApps),
            errors,
            name: value("name"),
            audience: value("audience"),
            scopes: value("scopes"),
        },
    )
}

pub(crate) async fn servers(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    match signed_in(&state, &headers).await {
        Ok(signed) => {
            let notice = view::notice(query.get("done").map(String::as_str));
            servers_page(&state, &signed, notice, None, FieldErrors::default()).await
        }
        Err(r) => r,
    }
}

pub(crate) async fn create_server(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (signed, form) = match signed_post(&state, &headers, &body).await {
        Ok(ok) => ok,
        Err(r) => return r,
    };
    let mut errors = FieldErrors::default();
    for (field, message) in [
        ("name", "Enter a name."),
        ("audience", "Enter the audience (the API's URL)."),
    ] {
        if form.text(field).is_none() {
            errors.add(field, message);
        }
    }
    if !errors.is_empty() {
        return servers_page(&state, &signed, None, Some(&form), errors).await;
    }
    let spec = ResourceServerSpec {
        name: form.get("name").trim().to_owned(),
        audience: form.get("audience").trim().to_owned(),
        scopes: scope_list(&form),
    };
    match state
        .registry
        .write_resource_server(Actor::Caller(&signed.session.caller), None, spec)
        .await
    {
        Ok(_) => view::redirect("/console/resource-servers?done=created"),
        Err(e) => match registry_refusal(e, "audience", &SERVER_FIELDS) {
            Refusal::Form(errors) => servers_page(&state, &signed, None, Some(&form), errors).await,
            Refusal::Denied => view::forbidden(&state, &signed, "creating resource servers").await,
            Refusal::SignedOut => view::redirect("/console/signin?done=expired"),
            Refusal::NotFound | Refusal::Unavailable => view::unavailable(),
        },
    }
}

pub(crate) async fn delete_server(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    let (signed, form) = match signed_post(&state, &headers, &body).await {
        Ok(ok) => ok,
        Err(r) => return r,
    };
    if !valid_id(&id) {
        return view::not_found(&state, &signed, "resource server").await;
    }
    if !form.confirmed() {
        return view::confirm(
            &state,
            &signed,
            &form,
            view::Question {
                action: format!("/console/resource-servers/{id}/delete"),
                back: "/console/resource-servers".into(),
                heading: "Delete this resource server?",
                message: "Its scopes can no longer be granted. This cannot be undone.".into(),
                button: "Delete resource server",
            },
        )
        .await;
    }
    match state
        .registry
        .delete_resource_server(Actor::Caller(&signed.session.caller), &id)
        .await
    {
        Ok(_) => view::redirect("/console/resource-servers?done=deleted"),
        Err(e) => refused(&state, &signed, e, "deleting resource servers").await,
    }
}

struct KeyRow {
    kid: String,
    alg: String,
    state: &'static str,
    state_class: &'static str,
    created: String,
    /// When a next key begins, or the active key began, to sign.
    signs_from: String,
    retiring: String,
}

#[derive(Template)]
#[template(path = "console/keys.html")]
struct KeysPage {
    chrome: Chrome,
    rows: Vec<KeyRow>,
    may_rotate: bool,
}

pub(crate) async fn keys(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let signed = match signed_in(&state, &headers).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let caller = &signed.session.caller;
    if !caller.may(Permission::ReadKeys) {
        return view::forbidden(&state, &signed, "viewing signing keys").await;
    }
    let keys = match state.registry.list_keys(Actor::Caller(caller)).await {
        Ok(k) => k,
        Err(e) => return refused(&state, &signed, e, "viewing signing keys").await,
    };
    let rows =
        keys.into_iter()
            .map(|k| KeyRow {
                state: k.state.as_str(),
                state_class: match k.state {
                    latchkey_core::model::KeyState::Active => "ok",
                    latchkey_core::model::KeyState::Next => "ok",
                    latchkey_core::model::KeyState::Retiring => "warn",
                    latchkey_core::model::KeyState::Retired => "bad",
                },
                created: when_unix(k.created_at),
                signs_from: match k.state {
                    latchkey_core::model::KeyState::Active
                    | latchkey_core::model::KeyState::Next => when_unix(k.signs_from()),
                    _ => String::new(),
                },
                retiring: k.retiring_at.map(when_unix).unwrap_or_default(),
                kid: k.kid,
                alg: k.alg,
            })
            .collect();
    let notice = view::notice(query.get("done").map(String::as_str));
    view::page(
        StatusCode::OK,
        &KeysPage {
            chrome: Chrome::signed(&state, &signed, "Signing keys", Section::Keys, notice).await,
            rows,
            may_rotate: caller.may(Permission::RotateKeys),
        },
    )
}

pub(crate) async fn rotate_key(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (signed, form) = match signed_post(&state, &headers, &body).await {
        Ok(ok) => ok,
        Err(r) => return r,
    };
    if !form.confirmed() {
        return view::confirm(&state, &signed, &form, view::Question { action: "/console/keys/rotate".into(), back: "/console/keys".into(), heading: "Rotate the signing key?", message: format!("A new key is published in the JWKS now and signs {} later, once resource servers that cache the JWKS hold it; the current key signs until then and keeps verifying its tokens until they expire. (In an emergency, `latchkey keys rotate --now` makes a key sign at once.)", latchkey_core::duration::format_duration(state.keys.rollover().publish_ahead)), button: "Rotate" })
        .await;
    }
    match state
        .registry
        .rotate_key(
            Actor::Caller(&signed.session.caller),
            None,
            KeyRotation::Staged,
        )
        .await
    {
        Ok(_) => view::redirect("/console/keys?done=rotated"),
        Err(e) => refused(&state, &signed, e, "rotating signing keys").await,
    }
}
