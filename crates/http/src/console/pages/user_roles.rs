//! `POST /console/users/{id}/roles`: grant or revoke one of a user's
//! application roles, through `DirectoryService::grant_role` /
//! `revoke_role` (only an Identity Domain Administrator may). Revoking
//! asks for confirmation first.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use latchkey_core::admin::Actor;
use latchkey_core::model::AppRole;

use super::refused;
use super::user::{done, post, who};
use crate::console::view;
use crate::state::AppState;

pub(crate) async fn set_role(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    let (signed, form) = match post(&state, &headers, &id, &body).await {
        Ok(ok) => ok,
        Err(r) => return r,
    };
    let Ok(role) = form.get("role").parse::<AppRole>() else {
        return view::plain(StatusCode::BAD_REQUEST, "That is not an application role.");
    };
    let grant = form.get("grant") == "true";
    if !grant && !form.confirmed() {
        let username = who(&state, &signed, &id).await;
        return view::confirm(
            &state,
            &signed,
            &form,
            view::Question {
                action: format!("/console/users/{id}/roles"),
                back: format!("/console/users/{id}"),
                heading: "Revoke this role?",
                message: format!("{username} no longer holds {role} directly."),
                button: "Revoke role",
            },
        )
        .await;
    }
    let actor = Actor::Caller(&signed.session.caller);
    let changed = if grant {
        state.directory.grant_role(actor, &id, role).await
    } else {
        state.directory.revoke_role(actor, &id, role).await
    };
    match changed {
        Ok(_) if grant => done(&id, "role-granted"),
        Ok(true) => done(&id, "role-revoked"),
        // Not held directly: held only through a group.
        Ok(false) => done(&id, "role-not-direct"),
        Err(e) => refused(&state, &signed, e, "granting or revoking roles").await,
    }
}
