//! `POST /console/groups/{id}/roles`: grant or revoke one of a group's
//! own application roles (its members hold them), through
//! `DirectoryService::grant_group_role` / `revoke_group_role` (only an
//! Identity Domain Administrator may). Revoking asks for confirmation
//! first.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use latchkey_core::admin::Actor;
use latchkey_core::model::AppRole;

use super::groups::{post_on, refused};
use crate::console::view;
use crate::state::AppState;

pub(crate) async fn set_role(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    let (signed, form) = match post_on(&state, &headers, &id, &body).await {
        Ok(ok) => ok,
        Err(r) => return r,
    };
    let Ok(role) = form.get("role").parse::<AppRole>() else {
        return view::plain(StatusCode::BAD_REQUEST, "That is not an application role.");
    };
    let grant = form.get("grant") == "true";
    if !grant && !form.confirmed() {
        return view::confirm(
            &state,
            &signed,
            &form,
            view::Question {
                action: format!("/console/groups/{id}/roles"),
                back: format!("/console/groups/{id}"),
                heading: "Revoke this role from the group?",
                message: format!(
                    "The group's members no longer hold {role} through it (those who hold it directly or through another group keep it)."
                ),
                button: "Revoke role",
            },
        )
        .await;
    }
    let actor = Actor::Caller(&signed.session.caller);
    let changed = if grant {
        state.directory.grant_group_role(actor, &id, role).await
    } else {
        state.directory.revoke_group_role(actor, &id, role).await
    };
    let code = if grant {
        "role-granted"
    } else {
        "role-revoked"
    };
    match changed {
        Ok(_) => view::redirect(&format!("/console/groups/{id}?done={code}")),
        Err(e) => refused(&state, &signed, e, "granting or revoking roles").await,
    }
}
