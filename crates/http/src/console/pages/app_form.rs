//! The application form, for creating an app (`/console/apps/new`) and
//! editing one (`/console/apps/{id}/edit`): type, grant types, redirect
//! URIs, scopes, application roles, a certificate or JWK Set, and token
//! lifetimes. Validation is the core's (`AppInput`, through
//! `RegistryService::create_app` / `update_app`); its errors are shown
//! beside the field they name.

use askama::Template;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use latchkey_core::admin::{Actor, Permission};
use latchkey_core::domain::{AppInput, DurationInput};
use latchkey_core::duration::format_duration;
use latchkey_core::model::{App, AppRole, AppType, GrantType};
use latchkey_core::scope::SPECIAL_SCOPES;

use super::apps::{GRANTS, TYPES, post_on, refused, secret_page, start};
use super::valid_id;
use crate::console::fields::{FieldErrors, Refusal, registry_refusal};
use crate::console::form::Form;
use crate::console::session::{Signed, signed_post};
use crate::console::view::{self, Chrome, Section};
use crate::state::AppState;

/// Form fields that the registry's errors may name (`jwks` and
/// `certificate` are both the `keys` field).
pub(super) const FIELDS: [&str; 13] = [
    "name",
    "client_id",
    "type",
    "grant_types",
    "redirect_uris",
    "scopes",
    "app_roles",
    "jwks",
    "certificate",
    "access_token_ttl",
    "refresh_token_ttl",
    "session_lifetime",
    "refresh_token_reuse_interval",
];

/// A checkbox or radio: value, label, checked.
pub(crate) struct Choice {
    value: String,
    label: String,
    hint: String,
    checked: bool,
}

/// What the form shows: an app as written (from a posted form, or from
/// the stored app when editing starts).
struct Values {
    name: String,
    client_id: String,
    app_type: String,
    grants: Vec<String>,
    redirect_uris: String,
    scopes: Vec<String>,
    roles: Vec<String>,
    keys: String,
    access_ttl: String,
    refresh_ttl: String,
    session_lifetime: String,
    reuse_interval: String,
}

impl Values {
    fn blank() -> Values {
        Values {
            name: String::new(),
            client_id: String::new(),
            app_type: AppType::Trusted.as_str().into(),
            grants: vec![GrantType::Password.as_str().into()],
            redirect_uris: String::new(),
            scopes: vec![],
            roles: vec![],
            keys: String::new(),
            access_ttl: String::new(),
            refresh_ttl: String::new(),
            session_lifetime: String::new(),
            reuse_interval: String::new(),
        }
    }

    fn of_form(form: &Form) -> Values {
        Values {
            name: form.get("name").trim().to_owned(),
            client_id: form.get("client_id").trim().to_owned(),
            app_type: form.get("type").to_owned(),
            grants: form.all("grant_types"),
            redirect_uris: form.get("redirect_uris").to_owned(),
            scopes: form.all("scopes"),
            roles: form.all("app_roles"),
            keys: if form.get("remove_keys") == "yes" {
                String::new()
            } else {
                form.get("keys").to_owned()
            },
            access_ttl: form.get("access_token_ttl").trim().to_owned(),
            refresh_ttl: form.get("refresh_token_ttl").trim().to_owned(),
            session_lifetime: form.get("session_lifetime").trim().to_owned(),
            reuse_interval: form.get("refresh_token_reuse_interval").trim().to_owned(),
        }
    }

    fn of_app(app: &App) -> Values {
        let input = AppInput::from_app(app);
        Values {
            name: input.name,
            client_id: app.client_id.clone(),
            app_type: input.app_type,
            grants: input.grant_types.unwrap_or_default(),
            redirect_uris: input.redirect_uris.join("\n"),
            scopes: input.scopes,
            roles: input.app_roles,
            keys: input.jwks.or(input.certificate).unwrap_or_default(),
            access_ttl: format_duration(app.access_token_ttl),
            refresh_ttl: format_duration(app.refresh_token_ttl),
            session_lifetime: app
                .session_lifetime
                .map(format_duration)
                .unwrap_or_default(),
            reuse_interval: match app.refresh_token_reuse_interval {
                0 => "0".to_owned(),
                s => format_duration(s),
            },
        }
    }
}

/// A lifetime as written: blank is the default.
fn lifetime(form: &Form, name: &str) -> Option<DurationInput> {
    form.text(name).map(DurationInput::Text)
}

/// `base` (a new app's defaults, or the stored app as input) with what
/// the form sets. A key text that starts with `{` is a JWK Set, anything
/// else a PEM certificate or public key; "remove keys" drops both.
fn app_input(form: &Form, mut base: AppInput) -> AppInput {
    base.name = form.get("name").trim().to_owned();
    if base.client_id.is_none() {
        base.client_id = form.text("client_id");
    }
    base.app_type = form.get("type").to_owned();
    base.grant_types = Some(form.all("grant_types"));
    base.redirect_uris = form
        .get("redirect_uris")
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect();
    base.scopes = form.all("scopes");
    base.app_roles = form.all("app_roles");
    let keys = match form.text("keys") {
        Some(_) if form.get("remove_keys") == "yes" => None,
        keys => keys,
    };
    (base.jwks, base.certificate) = match keys {
        Some(k) if k.starts_with('{') => (Some(k), None),
        Some(k) => (None, Some(k)),
        None => (None, None),
    };
    base.access_token_ttl = lifetime(form, "access_token_ttl");
    base.refresh_token_ttl = lifetime(form, "refresh_token_ttl");
    base.session_lifetime = lifetime(form, "session_lifetime");
    base.refresh_token_reuse_interval = lifetime(form, "refresh_token_reuse_interval");
    base
}

/// The registry names `jwks` or `certificate`: both are the keys field.
fn keys_field(mut errors: FieldErrors) -> FieldErrors {
    for (field, _) in &mut errors.fields {
        if *field == "jwks" || *field == "certificate" {
            *field = "keys";
        }
    }
    errors
}

#[derive(Template)]
#[template(path = "console/app_form.html")]
struct AppFormPage {
    chrome: Chrome,
    errors: FieldErrors,
    /// Where the form posts; empty `app_id` when creating.
    action: String,
    app_id: String,
    heading: String,
    button: &'static str,
    name: String,
    client_id: String,
    redirect_uris: String,
    keys: String,
    has_keys: bool,
    access_ttl: String,
    refresh_ttl: String,
    session_lifetime: String,
    reuse_interval: String,
    types: Vec<Choice>,
    grants: Vec<Choice>,
    scopes: Vec<Choice>,
    roles: Vec<Choice>,
}

/// Which form: a new app, or the stored `App` being edited.
enum Target<'a> {
    New,
    Edit(&'a App),
}

async fn form_page(
    state: &AppState,
    signed: &Signed,
    target: Target<'_>,
    values: Values,
    errors: FieldErrors,
) -> Response {
    let servers = match state
        .registry
        .list_resource_servers(Actor::Caller(&signed.session.caller))
        .await
    {
        Ok(s) => s,
        Err(e) => return refused(state, signed, e).await,
    };
    let mut scope_values: Vec<(String, String)> = servers
        .iter()
        .flat_map(|s| {
            s.scopes
                .iter()
                .map(move |sc| (format!("{}{sc}", s.audience), format!("{} — {sc}", s.name)))
        })
        .collect();
    scope_values.extend(
        SPECIAL_SCOPES
            .iter()
            .map(|s| ((*s).to_owned(), (*s).to_owned())),
    );
    // A scope the app holds that no resource server offers any more stays
    // visible (and can be unticked).
    for scope in &values.scopes {
        if !scope_values.iter().any(|(v, _)| v == scope) {
            scope_values.push((scope.clone(), scope.clone()));
        }
    }
    let (action, app_id, heading, button, has_keys) = match target {
        Target::New => (
            "/console/apps".to_owned(),
            String::new(),
            "Create application".to_owned(),
            "Create application",
            false,
        ),
        Target::Edit(app) => (
            format!("/console/apps/{}/edit", app.id),
            app.id.clone(),
            format!("Edit {}", app.name),
            "Save changes",
            app.jwks.is_some() || app.certificate.is_some(),
        ),
    };
    let picked = |list: &[String], value: &str| list.iter().any(|v| v == value);
    let page = AppFormPage {
        chrome: Chrome::signed(state, signed, heading.clone(), Section::Apps, None).await,
        action,
        app_id,
        heading,
        button,
        types: TYPES
            .iter()
            .map(|(t, label, hint)| Choice {
                value: t.as_str().into(),
                label: (*label).into(),
                hint: (*hint).into(),
                checked: values.app_type == t.as_str(),
            })
            .collect(),
        grants: GRANTS
            .iter()
            .map(|(g, label)| Choice {
                value: g.as_str().into(),
                label: (*label).into(),
                hint: String::new(),
                checked: picked(&values.grants, g.as_str()),
            })
            .collect(),
        scopes: scope_values
            .into_iter()
            .map(|(value, label)| Choice {
                checked: picked(&values.scopes, &value),
                value,
                label,
                hint: String::new(),
            })
            .collect(),
        roles: AppRole::ALL
            .iter()
            .map(|r| Choice {
                value: r.as_str().into(),
                label: r.as_str().into(),
                hint: String::new(),
                checked: picked(&values.roles, r.as_str()),
            })
            .collect(),
        name: values.name,
        client_id: values.client_id,
        redirect_uris: values.redirect_uris,
        keys: values.keys,
        has_keys,
        access_ttl: values.access_ttl,
        refresh_ttl: values.refresh_ttl,
        session_lifetime: values.session_lifetime,
        reuse_interval: values.reuse_interval,
        errors,
    };
    let status = if page.errors.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::BAD_REQUEST
    };
    view::page(status, &page)
}

/// Errors the console finds before asking the core.
fn required(form: &Form) -> FieldErrors {
    let mut errors = FieldErrors::default();
    if form.text("name").is_none() {
        errors.add("name", "Enter a name.");
    }
    if form.text("type").is_none() {
        errors.add("type", "Choose a type.");
    }
    errors
}

pub(crate) async fn new_form(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let signed = match start(&state, &headers).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    if !signed.session.caller.may(Permission::WriteApps) {
        return view::forbidden(&state, &signed, "creating applications").await;
    }
    form_page(
        &state,
        &signed,
        Target::New,
        Values::blank(),
        FieldErrors::default(),
    )
    .await
}

pub(crate) async fn create(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (signed, form) = match signed_post(&state, &headers, &body).await {
        Ok(ok) => ok,
        Err(r) => return r,
    };
    let errors = required(&form);
    if !errors.is_empty() {
        return form_page(&state, &signed, Target::New, Values::of_form(&form), errors).await;
    }
    let input = app_input(&form, AppInput::default());
    match state
        .registry
        .create_app(Actor::Caller(&signed.session.caller), input)
        .await
    {
        // Shown once, never stored in the clear: this answer is the only
        // place the secret appears (and it is not cached).
        Ok(created) => {
            secret_page(
                &state,
                &signed,
                &created.app,
                created.client_secret,
                "Application created",
            )
            .await
        }
        Err(e) => match registry_refusal(e, "client_id", &FIELDS) {
            Refusal::Form(errors) => {
                let values = Values::of_form(&form);
                form_page(&state, &signed, Target::New, values, keys_field(errors)).await
            }
            Refusal::Denied => view::forbidden(&state, &signed, "creating applications").await,
            Refusal::SignedOut => view::redirect("/console/signin?done=expired"),
            Refusal::NotFound | Refusal::Unavailable => view::unavailable(),
        },
    }
}

/// `GET /console/apps/{id}/edit`: the form, filled in from the stored app.
pub(crate) async fn edit_form(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let signed = match start(&state, &headers).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    if !signed.session.caller.may(Permission::WriteApps) {
        return view::forbidden(&state, &signed, "changing applications").await;
    }
    if !valid_id(&id) {
        return view::not_found(&state, &signed, "application").await;
    }
    let app = match state
        .registry
        .app(Actor::Caller(&signed.session.caller), &id)
        .await
    {
        Ok(app) => app,
        Err(e) => return refused(&state, &signed, e).await,
    };
    if app.client_id == latchkey_core::console::CONSOLE_CLIENT_ID {
        return view::plain(
            StatusCode::CONFLICT,
            "The console's own application is managed by the server and cannot be changed here.",
        );
    }
    let values = Values::of_app(&app);
    form_page(
        &state,
        &signed,
        Target::Edit(&app),
        values,
        FieldErrors::default(),
    )
    .await
}

/// `POST /console/apps/{id}/edit`: everything the form shows replaces
/// what the app had; what it does not show (its secret, client_id,
/// `client_secret_jwt`, active) is kept.
pub(crate) async fn save(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    let (signed, form, app) = match post_on(&state, &headers, &id, &body).await {
        Ok(ok) => ok,
        Err(r) => return r,
    };
    let errors = required(&form);
    if !errors.is_empty() {
        let values = Values::of_form(&form);
        return form_page(&state, &signed, Target::Edit(&app), values, errors).await;
    }
    let input = app_input(&form, AppInput::from_app(&app));
    match state
        .registry
        .update_app(Actor::Caller(&signed.session.caller), &app.id, input)
        .await
    {
        Ok(_) => view::redirect(&format!("/console/apps/{}?done=saved", app.id)),
        Err(e) => match registry_refusal(e, "name", &FIELDS) {
            Refusal::Form(errors) => {
                let values = Values::of_form(&form);
                form_page(
                    &state,
                    &signed,
                    Target::Edit(&app),
                    values,
                    keys_field(errors),
                )
                .await
            }
            Refusal::Denied => view::forbidden(&state, &signed, "changing applications").await,
            Refusal::SignedOut => view::redirect("/console/signin?done=expired"),
            Refusal::NotFound => view::not_found(&state, &signed, "application").await,
            Refusal::Unavailable => view::unavailable(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn form(pairs: &[(&str, &str)]) -> Form {
        let enc = |v: &str| {
            percent_encoding::utf8_percent_encode(v, percent_encoding::NON_ALPHANUMERIC).to_string()
        };
        let body: Vec<String> = pairs
            .iter()
            .map(|(k, v)| format!("{}={}", enc(k), enc(v)))
            .collect();
        Form::parse(body.join("&").as_bytes()).unwrap()
    }

    #[test]
    fn keys_are_a_jwk_set_or_a_certificate_and_can_be_removed() {
        let jwks = app_input(&form(&[("keys", " {\"keys\":[]} ")]), AppInput::default());
        assert_eq!(jwks.jwks.as_deref(), Some("{\"keys\":[]}"));
        assert_eq!(jwks.certificate, None);
        let pem = app_input(
            &form(&[("keys", "-----BEGIN CERTIFICATE-----")]),
            AppInput::default(),
        );
        assert_eq!(pem.jwks, None);
        assert!(pem.certificate.is_some());
        let base = AppInput {
            jwks: Some("{}".into()),
            ..AppInput::default()
        };
        let removed = app_input(&form(&[("keys", "{}"), ("remove_keys", "yes")]), base);
        assert_eq!((removed.jwks, removed.certificate), (None, None));
    }

    #[test]
    fn blank_lifetimes_are_the_default() {
        let input = app_input(
            &form(&[("access_token_ttl", "15m"), ("refresh_token_ttl", " ")]),
            AppInput::default(),
        );
        assert_eq!(
            input.access_token_ttl,
            Some(DurationInput::Text("15m".into()))
        );
        assert_eq!(input.refresh_token_ttl, None);
        assert_eq!(input.session_lifetime, None);
    }
}
