//! `/console/apps`: applications — the list, creating one (its secret and
//! a ready `curl` for the password grant shown once), one app's page with
//! activate/deactivate, a new secret and deletion. Everything through the
//! core `RegistryService`, as the JSON admin API and the CLI do.

use askama::Template;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use base64::Engine as _;
use latchkey_core::admin::{Actor, Permission, RegistryError};
use latchkey_core::console::CONSOLE_CLIENT_ID;
use latchkey_core::model::{App, AppType, GrantType};
use latchkey_core::scope::{OFFLINE_ACCESS, is_special};
use std::collections::HashMap;

use super::valid_id;
use crate::console::fields::{Refusal, registry_refusal};
use crate::console::form::Form;
use crate::console::session::{Signed, signed_in, signed_post};
use crate::console::view::{self, Chrome, Section};
use crate::state::AppState;

/// The grant types as a person knows them.
pub(super) const GRANTS: [(GrantType, &str); 3] = [
    (GrantType::Password, "Resource Owner (password)"),
    (GrantType::RefreshToken, "Refresh token"),
    (GrantType::ClientCredentials, "Client credentials"),
];

pub(super) const TYPES: [(AppType, &str, &str); 3] = [
    (
        AppType::Trusted,
        "Trusted",
        "a confidential client that may hold application roles and use certificates",
    ),
    (
        AppType::Confidential,
        "Confidential",
        "has a secret, no roles",
    ),
    (
        AppType::Public,
        "Public",
        "no secret: authenticates with its client_id alone",
    ),
];

struct AppRow {
    id: String,
    name: String,
    client_id: String,
    app_type: &'static str,
    grants: String,
    active: bool,
    built_in: bool,
}

#[derive(Template)]
#[template(path = "console/apps.html")]
struct AppsPage {
    chrome: Chrome,
    rows: Vec<AppRow>,
    may_write: bool,
    /// The search, as typed ("" for none).
    query: String,
}

/// Whether `app` answers a search: its name or client_id contains the
/// words, ignoring case.
fn matches(app: &App, query: &str) -> bool {
    let query = query.trim().to_lowercase();
    query.is_empty()
        || app.name.to_lowercase().contains(&query)
        || app.client_id.to_lowercase().contains(&query)
}

fn grant_label(g: GrantType) -> &'static str {
    GRANTS.iter().find(|(x, _)| *x == g).map_or("?", |(_, l)| l)
}

fn type_label(t: AppType) -> &'static str {
    TYPES
        .iter()
        .find(|(x, _, _)| *x == t)
        .map_or("?", |(_, l, _)| l)
}

pub(super) async fn start(state: &AppState, headers: &HeaderMap) -> Result<Signed, Response> {
    let signed = signed_in(state, headers).await?;
    if !signed.session.caller.may(Permission::ReadApps) {
        return Err(view::forbidden(state, &signed, "viewing applications").await);
    }
    Ok(signed)
}

/// A refusal that is not a form's.
pub(super) async fn refused(state: &AppState, signed: &Signed, error: RegistryError) -> Response {
    match registry_refusal(error, "client_id", &super::app_form::FIELDS) {
        Refusal::Denied => view::forbidden(state, signed, "changing applications").await,
        Refusal::SignedOut => view::redirect("/console/signin?done=expired"),
        Refusal::NotFound => view::not_found(state, signed, "application").await,
        Refusal::Unavailable => view::unavailable(),
        Refusal::Form(errors) => view::plain(
            StatusCode::BAD_REQUEST,
            errors
                .form
                .as_deref()
                .or(errors.fields.first().map(|(_, m)| m.as_str()))
                .unwrap_or("Refused."),
        ),
    }
}

pub(crate) async fn list(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let signed = match start(&state, &headers).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let caller = &signed.session.caller;
    let apps = match state.registry.list_apps(Actor::Caller(caller)).await {
        Ok(apps) => apps,
        Err(e) => return refused(&state, &signed, e).await,
    };
    let search: String = query
        .get("q")
        .map(|q| q.trim().chars().take(200).collect())
        .unwrap_or_default();
    let rows = apps
        .iter()
        .filter(|a| matches(a, &search))
        .map(|a| AppRow {
            id: a.id.clone(),
            name: a.name.clone(),
            client_id: a.client_id.clone(),
            app_type: type_label(a.app_type),
            grants: a
                .grant_types
                .iter()
                .map(|g| grant_label(*g))
                .collect::<Vec<_>>()
                .join(", "),
            active: a.active,
            built_in: a.client_id == CONSOLE_CLIENT_ID,
        })
        .collect();
    let notice = view::notice(query.get("done").map(String::as_str));
    view::page(
        StatusCode::OK,
        &AppsPage {
            chrome: Chrome::signed(&state, &signed, "Applications", Section::Apps, notice).await,
            rows,
            may_write: caller.may(Permission::WriteApps),
            query: search,
        },
    )
}

#[derive(Template)]
#[template(path = "console/app_secret.html")]
struct SecretPage {
    chrome: Chrome,
    app_id: String,
    name: String,
    client_id: String,
    secret: String,
    curl: String,
    heading: String,
}

/// Everything but RFC 3986's unreserved characters is percent-encoded
/// (form encoding, as the token endpoint reads it).
const FORM: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

fn form_encode(value: &str) -> String {
    percent_encoding::utf8_percent_encode(value, FORM).to_string()
}

/// A password grant for this app, in the exact form of Oracle's
/// documentation (and of `serve --demo`): the app's resource scopes and,
/// when it may have one, a refresh token.
pub(crate) fn password_grant_curl(issuer: &str, app: &App, secret: &str) -> String {
    let basic = base64::engine::general_purpose::STANDARD.encode(format!(
        "{}:{}",
        form_encode(&app.client_id),
        form_encode(secret)
    ));
    let mut scopes: Vec<&str> = app
        .scopes
        .iter()
        .map(String::as_str)
        .filter(|s| !is_special(s))
        .collect();
    if app.scopes.iter().any(|s| s == OFFLINE_ACCESS) {
        scopes.push(OFFLINE_ACCESS);
    }
    let scope = if scopes.is_empty() {
        String::new()
    } else {
        format!("&scope={}", form_encode(&scopes.join(" ")))
    };
    format!(
        "curl -i -H 'Authorization: Basic {basic}' -H 'Content-Type: application/x-www-form-urlencoded;charset=UTF-8' --request POST {issuer}/oauth2/v1/token -d 'grant_type=password&username=USERNAME&password=PASSWORD{scope}'"
    )
}

pub(super) async fn secret_page(
    state: &AppState,
    signed: &Signed,
    app: &App,
    secret: Option<String>,
    heading: &str,
) -> Response {
    let secret = secret.unwrap_or_default();
    view::page(
        StatusCode::OK,
        &SecretPage {
            chrome: Chrome::signed(state, signed, heading, Section::Apps, None).await,
            app_id: app.id.clone(),
            name: app.name.clone(),
            client_id: app.client_id.clone(),
            curl: if app.allows_grant(GrantType::Password) && !secret.is_empty() {
                password_grant_curl(&state.issuer, app, &secret)
            } else {
                String::new()
            },
            secret,
            heading: heading.to_owned(),
        },
    )
}

struct AppView {
    id: String,
    name: String,
    client_id: String,
    app_type: &'static str,
    active: bool,
    has_secret: bool,
    grants: String,
    redirect_uris: Vec<String>,
    scopes: Vec<String>,
    roles: String,
    access_ttl: String,
    refresh_ttl: String,
    session_lifetime: String,
    reuse_interval: String,
    keys: &'static str,
    built_in: bool,
}

#[derive(Template)]
#[template(path = "console/app.html")]
struct AppPage {
    chrome: Chrome,
    app: AppView,
    may_write: bool,
}

pub(crate) async fn show(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let signed = match start(&state, &headers).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    if !valid_id(&id) {
        return view::not_found(&state, &signed, "application").await;
    }
    let caller = &signed.session.caller;
    let app = match state.registry.app(Actor::Caller(caller), &id).await {
        Ok(app) => app,
        Err(e) => return refused(&state, &signed, e).await,
    };
    let view_model = AppView {
        id: app.id.clone(),
        name: app.name.clone(),
        client_id: app.client_id.clone(),
        app_type: type_label(app.app_type),
        active: app.active,
        has_secret: app.secret_hash.is_some(),
        grants: app
            .grant_types
            .iter()
            .map(|g| grant_label(*g))
            .collect::<Vec<_>>()
            .join(", "),
        redirect_uris: app.redirect_uris.clone(),
        scopes: app.scopes.clone(),
        roles: app
            .app_roles
            .iter()
            .map(|r| r.as_str())
            .collect::<Vec<_>>()
            .join(", "),
        access_ttl: latchkey_core::duration::format_duration(app.access_token_ttl),
        refresh_ttl: latchkey_core::duration::format_duration(app.refresh_token_ttl),
        session_lifetime: app.session_lifetime.map_or_else(
            || "No limit".into(),
            latchkey_core::duration::format_duration,
        ),
        reuse_interval: match app.refresh_token_reuse_interval {
            0 => "Off: a refresh token exchanged once is never accepted again".into(),
            s => latchkey_core::duration::format_duration(s),
        },
        keys: match (&app.jwks, &app.certificate) {
            (Some(_), _) => "A JWK Set",
            (None, Some(_)) => "A certificate or public key",
            (None, None) => "None",
        },
        built_in: app.client_id == CONSOLE_CLIENT_ID,
    };
    let notice = view::notice(query.get("done").map(String::as_str));
    view::page(
        StatusCode::OK,
        &AppPage {
            chrome: Chrome::signed(&state, &signed, app.name.clone(), Section::Apps, notice).await,
            app: view_model,
            may_write: caller.may(Permission::WriteApps),
        },
    )
}

/// The start of every POST on one app; the built-in console app is
/// managed by the server and refuses changes here.
pub(super) async fn post_on(
    state: &AppState,
    headers: &HeaderMap,
    id: &str,
    body: &[u8],
) -> Result<(Signed, Form, App), Response> {
    let (signed, form) = signed_post(state, headers, body).await?;
    if !valid_id(id) {
        return Err(view::not_found(state, &signed, "application").await);
    }
    let app = match state
        .registry
        .app(Actor::Caller(&signed.session.caller), id)
        .await
    {
        Ok(app) => app,
        Err(e) => return Err(refused(state, &signed, e).await),
    };
    if app.client_id == CONSOLE_CLIENT_ID {
        return Err(view::plain(
            StatusCode::CONFLICT,
            "The console's own application is managed by the server: changing it here would lock everyone out of the console.",
        ));
    }
    Ok((signed, form, app))
}

pub(crate) async fn set_active(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    let (signed, form, app) = match post_on(&state, &headers, &id, &body).await {
        Ok(ok) => ok,
        Err(r) => return r,
    };
    let active = form.get("active") == "true";
    if !active && !form.confirmed() {
        return view::confirm(
            &state,
            &signed,
            &form,
            view::Question {
                action: format!("/console/apps/{id}/active"),
                back: format!("/console/apps/{id}"),
                heading: "Deactivate this application?",
                message: format!(
                    "{} can no longer authenticate, and every session it started ends now.",
                    app.client_id
                ),
                button: "Deactivate",
            },
        )
        .await;
    }
    match state
        .registry
        .set_app_active(Actor::Caller(&signed.session.caller), &app.id, active)
        .await
    {
        Ok(_) => view::redirect(&format!(
            "/console/apps/{id}?done={}",
            if active {
                "app-activated"
            } else {
                "app-deactivated"
            }
        )),
        Err(e) => refused(&state, &signed, e).await,
    }
}

pub(crate) async fn rotate_secret(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    let (signed, form, app) = match post_on(&state, &headers, &id, &body).await {
        Ok(ok) => ok,
        Err(r) => return r,
    };
    if !form.confirmed() {
        return view::confirm(&state, &signed, &form, view::Question { action: format!("/console/apps/{id}/secret"), back: format!("/console/apps/{id}"), heading: "Give this application a new secret?", message: "The new secret is shown once. The current secret stops working at once: update the application first if it must keep running.".into(), button: "New secret" })
        .await;
    }
    match state
        .registry
        .rotate_app_secret(Actor::Caller(&signed.session.caller), &app.id, 0)
        .await
    {
        Ok(rotated) => {
            secret_page(
                &state,
                &signed,
                &rotated.app,
                rotated.client_secret,
                "New client secret",
            )
            .await
        }
        Err(e) => refused(&state, &signed, e).await,
    }
}

pub(crate) async fn delete(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    let (signed, form, app) = match post_on(&state, &headers, &id, &body).await {
        Ok(ok) => ok,
        Err(r) => return r,
    };
    if !form.confirmed() {
        return view::confirm(
            &state,
            &signed,
            &form,
            view::Question {
                action: format!("/console/apps/{id}/delete"),
                back: format!("/console/apps/{id}"),
                heading: "Delete this application?",
                message: format!(
                    "{} and every session it started are removed. This cannot be undone.",
                    app.client_id
                ),
                button: "Delete application",
            },
        )
        .await;
    }
    match state
        .registry
        .delete_app(Actor::Caller(&signed.session.caller), &app.id)
        .await
    {
        Ok(_) => view::redirect("/console/apps?done=deleted"),
        Err(e) => refused(&state, &signed, e).await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_curl_command_has_oracles_form() {
        let app = App {
            id: "1".into(),
            client_id: "hr app".into(),
            name: "HR".into(),
            app_type: AppType::Trusted,
            active: true,
            secret_hash: None,
            secret_sealed: None,
            previous_secret: None,
            grant_types: vec![GrantType::Password],
            redirect_uris: vec![],
            scopes: vec![
                "https://hr.example.com/read".into(),
                "openid".into(),
                "offline_access".into(),
            ],
            app_roles: vec![],
            jwks: None,
            certificate: None,
            access_token_ttl: 3600,
            refresh_token_ttl: 86_400,
            session_lifetime: None,
            refresh_token_reuse_interval: 30,
            created_at: 0,
            updated_at: 0,
            tokens_revoked_at: None,
        };
        let curl = password_grant_curl("http://127.0.0.1:8080", &app, "s/cr+t");
        let basic = base64::engine::general_purpose::STANDARD.encode("hr%20app:s%2Fcr%2Bt");
        assert_eq!(
            curl,
            format!(
                "curl -i -H 'Authorization: Basic {basic}' -H 'Content-Type: application/x-www-form-urlencoded;charset=UTF-8' --request POST http://127.0.0.1:8080/oauth2/v1/token -d 'grant_type=password&username=USERNAME&password=PASSWORD&scope=https%3A%2F%2Fhr.example.com%2Fread%20offline_access'"
            )
        );
    }
}
