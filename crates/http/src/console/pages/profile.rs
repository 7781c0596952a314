//! `/console/profile`: every signed-in user sees their own profile and
//! may change their own password (proving the current one).

use std::collections::HashMap;
use std::net::SocketAddr;

use askama::Template;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Response;
use latchkey_core::directory::UserChange;
use latchkey_core::password::Password;

use super::refused;
use super::users::full_name;
use crate::console::fields::{FieldErrors, Refusal, directory_refusal};
use crate::console::session::{SESSION_COOKIE, Signed, set_cookie, signed_in, signed_post};
use crate::console::view::{self, Chrome, Section};
use crate::state::AppState;

#[derive(Template)]
#[template(path = "console/profile.html")]
struct ProfilePage {
    chrome: Chrome,
    username: String,
    name: String,
    email: String,
    groups: String,
    roles: String,
    errors: FieldErrors,
}

async fn render(
    state: &AppState,
    signed: &Signed,
    notice: Option<&'static str>,
    errors: FieldErrors,
) -> Response {
    let caller = &signed.session.caller;
    let me = match state.directory.me(caller).await {
        Ok(view) => view,
        Err(e) => return refused(state, signed, e, "viewing your profile").await,
    };
    let status = if errors.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::BAD_REQUEST
    };
    view::page(
        status,
        &ProfilePage {
            chrome: Chrome::signed(state, signed, "My profile", Section::Profile, notice).await,
            username: me.user.username.clone(),
            name: full_name(&me.user),
            email: me.user.email.clone().unwrap_or_default(),
            groups: me
                .groups
                .iter()
                .map(|g| g.name.as_str())
                .collect::<Vec<_>>()
                .join(", "),
            roles: caller
                .roles
                .iter()
                .map(|r| r.as_str())
                .collect::<Vec<_>>()
                .join(", "),
            errors,
        },
    )
}

pub(crate) async fn show(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    match signed_in(&state, &headers).await {
        Ok(signed) => {
            render(
                &state,
                &signed,
                view::notice(query.get("done").map(String::as_str)),
                FieldErrors::default(),
            )
            .await
        }
        Err(r) => r,
    }
}

pub(crate) async fn change_password(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (signed, form) = match signed_post(&state, &headers, &body).await {
        Ok(ok) => ok,
        Err(r) => return r,
    };
    let mut errors = FieldErrors::default();
    if form.get("current_password").is_empty() {
        errors.add("current_password", "Enter your current password.");
    }
    if form.get("password").is_empty() {
        errors.add("password", "Enter a new password.");
    } else if form.get("password") != form.get("confirm_password") {
        errors.add("confirm_password", "The two passwords differ.");
    }
    if !errors.is_empty() {
        return render(&state, &signed, None, errors).await;
    }
    // The current password passes the sign-in gate, throttled for the
    // browser's address as a console sign-in is.
    let ip = crate::client_ip::client_ip(
        peer,
        &headers,
        &state.trusted_proxies,
        state.forwarded_header,
    );
    let change = UserChange {
        password: Some(Password::new(form.get("password"))),
        ..UserChange::default()
    };
    let current = Password::new(form.get("current_password"));
    match state
        .directory
        .update_me(
            &signed.session.caller,
            change,
            Some(&current),
            None,
            Some(ip),
        )
        .await
    {
        Ok(_) => {
            // A new password ends every session of the user, this one's
            // tokens included: sign in again with the new password.
            if state.console.sign_out(&signed.cookie).await.is_err() {
                return view::unavailable();
            }
            let mut response = view::redirect("/console/signin?done=own-password");
            response.headers_mut().append(
                header::SET_COOKIE,
                set_cookie(&state, SESSION_COOKIE, None, None),
            );
            response
        }
        Err(e) => match directory_refusal(e.clone(), &[]) {
            Refusal::Form(mut found) => {
                for (field, message) in &mut found.fields {
                    if *field == "current_password" {
                        *message = "This is not your current password.".into();
                    }
                }
                render(&state, &signed, None, found).await
            }
            _ => refused(&state, &signed, e, "changing your password").await,
        },
    }
}
