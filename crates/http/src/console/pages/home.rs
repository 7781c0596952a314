//! `/console`: where a signed-in user starts.

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use latchkey_core::admin::Permission;

use crate::console::session::signed_in;
use crate::console::view::redirect;
use crate::state::AppState;

pub(crate) async fn home(State(state): State<AppState>, headers: HeaderMap) -> Response {
    match signed_in(&state, &headers).await {
        Ok(signed) if signed.session.caller.may(Permission::ReadUsers) => {
            redirect("/console/users")
        }
        Ok(_) => redirect("/console/profile"),
        Err(response) => response,
    }
}
