//! One module per console page (or group of pages).

pub(crate) mod app_form;
pub(crate) mod apps;
pub(crate) mod audit;
pub(crate) mod group_roles;
pub(crate) mod groups;
pub(crate) mod home;
pub(crate) mod profile;
pub(crate) mod registry;
pub(crate) mod server_edit;
pub(crate) mod signin;
pub(crate) mod user;
pub(crate) mod user_roles;
pub(crate) mod users;

use axum::http::StatusCode;
use axum::response::Response;
use serde_json::Value;

use super::fields::{IntoRefusal, Refusal};
use super::session::Signed;
use super::view;
use crate::state::AppState;

/// A refusal that is not a form's: the page that says so.
pub(crate) async fn refused(
    state: &AppState,
    signed: &Signed,
    error: impl IntoRefusal,
    what: &str,
) -> Response {
    match error.into_refusal() {
        Refusal::Denied => view::forbidden(state, signed, what).await,
        Refusal::SignedOut => view::redirect("/console/signin?done=expired"),
        Refusal::NotFound => view::not_found(state, signed, "user").await,
        Refusal::Unavailable => view::unavailable(),
        Refusal::Form(errors) => view::plain(
            StatusCode::BAD_REQUEST,
            errors
                .form
                .as_deref()
                .or(errors.fields.first().map(|(_, m)| m.as_str()))
                .unwrap_or("The request was refused."),
        ),
    }
}

/// A text attribute of a SCIM resource ("" when absent).
pub(crate) fn text(resource: &Value, pointer: &str) -> String {
    resource
        .pointer(pointer)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned()
}

/// A SCIM date-time shown to a person: "2026-12-01 21:57:52 UTC".
pub(crate) fn when(value: &str) -> String {
    match value.split_once('T') {
        Some((date, time)) => format!("{date} {} UTC", time.trim_end_matches('Z')),
        None => value.to_owned(),
    }
}

/// Unix seconds shown to a person.
pub(crate) fn when_unix(seconds: i64) -> String {
    when(&latchkey_core::scim::time::format_datetime(seconds))
}

/// Ids in console URLs are the server's own (UUIDs); anything else is
/// not one of ours and is not put into a redirect.
pub(crate) fn valid_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= 64 && id.chars().all(|c| c.is_ascii_hexdigit() || c == '-')
}
