//! `/console/users/{id}`: one user — profile, password, lock, active
//! state, roles (held directly or through groups), sessions (OAuth
//! sessions with "sign out everywhere", and console sign-ins) and
//! deletion. Destructive
//! actions ask for confirmation first.

use std::collections::HashMap;

use askama::Template;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use latchkey_core::admin::{Actor, Permission};
use latchkey_core::directory::{UserChange, UserView};
use latchkey_core::model::AppRole;
use latchkey_core::password::Password;
use latchkey_core::store::HeldRole;

use super::users::{badges, full_name, profile_from};
use super::{refused, valid_id, when_unix};
use crate::console::fields::{FieldErrors, Refusal, directory_refusal};
use crate::console::form::Form;
use crate::console::session::{Signed, signed_in, signed_post};
use crate::console::view::{self, Chrome, Section};
use crate::state::AppState;

/// The user as the page shows them.
struct UserCard {
    id: String,
    username: String,
    name: String,
    email: String,
    groups: String,
    created: String,
    active: bool,
    locked: bool,
    badges: Vec<(&'static str, &'static str)>,
}

/// The profile form's values.
struct ProfileForm {
    username: String,
    given_name: String,
    family_name: String,
    email: String,
}

/// One application role on the user page: held directly (revocable
/// here), through groups (changed on the group's page), both, or not.
struct RoleRow {
    name: &'static str,
    held: bool,
    direct: bool,
    groups: Vec<GroupLink>,
}

struct GroupLink {
    id: String,
    name: String,
}

fn role_rows(held: &[HeldRole]) -> Vec<RoleRow> {
    AppRole::ALL
        .iter()
        .map(|role| {
            let of_role = || held.iter().filter(move |h| h.role == *role);
            let groups: Vec<GroupLink> = of_role()
                .filter_map(|h| h.via.as_ref())
                .map(|g| GroupLink {
                    id: g.id.clone(),
                    name: g.name.clone(),
                })
                .collect();
            let direct = of_role().any(|h| h.via.is_none());
            RoleRow {
                name: role.as_str(),
                held: direct || !groups.is_empty(),
                direct,
                groups,
            }
        })
        .collect()
}

struct SessionRow {
    id: String,
    client_id: String,
    auth_time: String,
}

/// A console sign-in of the user (`ConsoleService::sessions_of`).
struct ConsoleRow {
    signed_in: String,
    last_seen: String,
    ends: String,
    /// The browser looking at this page.
    current: bool,
}

#[derive(Template)]
#[template(path = "console/user.html")]
struct UserPage {
    chrome: Chrome,
    user: UserCard,
    form: ProfileForm,
    errors: FieldErrors,
    password_errors: FieldErrors,
    sessions: Vec<SessionRow>,
    console_sessions: Vec<ConsoleRow>,
    /// Every application role, and how the user holds it.
    roles: Vec<RoleRow>,
    may_grant: bool,
    may_write: bool,
    may_reset: bool,
    may_unlock: bool,
    is_self: bool,
}

fn user_card(view: &UserView) -> UserCard {
    let user = &view.user;
    UserCard {
        id: user.id.clone(),
        username: user.username.clone(),
        name: full_name(user),
        email: user.email.clone().unwrap_or_default(),
        groups: view
            .groups
            .iter()
            .map(|g| g.name.as_str())
            .collect::<Vec<_>>()
            .join(", "),
        created: when_unix(user.created_at),
        active: user.active,
        locked: user.locked,
        badges: badges(user),
    }
}

/// What a page render may carry over from a refused form.
#[derive(Default)]
struct Redo<'a> {
    profile: Option<&'a Form>,
    errors: FieldErrors,
    password_errors: FieldErrors,
}

async fn render(
    state: &AppState,
    signed: &Signed,
    id: &str,
    notice: Option<&'static str>,
    redo: Redo<'_>,
) -> Response {
    let caller = &signed.session.caller;
    let actor = Actor::Caller(caller);
    let viewed = match state.directory.get_user(actor, id).await {
        Ok(view) => view,
        Err(e) => return refused(state, signed, e, "viewing users").await,
    };
    let sessions = match state.directory.sessions_of(actor, id).await {
        Ok(list) => list
            .into_iter()
            .map(|s| SessionRow {
                id: s.id,
                client_id: s.client_id.unwrap_or_default(),
                auth_time: when_unix(s.auth_time),
            })
            .collect(),
        Err(e) => return refused(state, signed, e, "viewing sessions").await,
    };
    let console_sessions = match state.console.sessions_of(caller, id, &signed.cookie).await {
        Ok(list) => list
            .into_iter()
            .map(|s| ConsoleRow {
                signed_in: when_unix(s.signed_in_at),
                last_seen: when_unix(s.last_seen_at),
                ends: when_unix(s.ends_at),
                current: s.current,
            })
            .collect(),
        Err(e) => return refused(state, signed, e, "viewing sessions").await,
    };
    let roles = match state.directory.held_roles(Actor::Caller(caller), id).await {
        Ok(held) => role_rows(&held),
        Err(e) => return refused(state, signed, e, "viewing users").await,
    };
    let form = match redo.profile {
        Some(f) => ProfileForm {
            username: f.get("username").trim().to_owned(),
            given_name: f.get("given_name").trim().to_owned(),
            family_name: f.get("family_name").trim().to_owned(),
            email: f.get("email").trim().to_owned(),
        },
        None => ProfileForm {
            username: viewed.user.username.clone(),
            given_name: viewed.user.given_name.clone().unwrap_or_default(),
            family_name: viewed.user.family_name.clone().unwrap_or_default(),
            email: viewed.user.email.clone().unwrap_or_default(),
        },
    };
    let user = user_card(&viewed);
    let status = if redo.errors.is_empty() && redo.password_errors.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::BAD_REQUEST
    };
    view::page(
        status,
        &UserPage {
            chrome: Chrome::signed(state, signed, user.username.clone(), Section::Users, notice)
                .await,
            is_self: caller.user_id.as_deref() == Some(id),
            user,
            form,
            errors: redo.errors,
            password_errors: redo.password_errors,
            sessions,
            console_sessions,
            roles,
            may_grant: caller.may(Permission::GrantRoles),
            may_write: caller.may(Permission::WriteUsers),
            may_reset: caller.may(Permission::ResetPasswords),
            may_unlock: caller.may(Permission::UnlockUsers),
        },
    )
}

pub(crate) async fn show(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let signed = match signed_in(&state, &headers).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    if !valid_id(&id) {
        return view::not_found(&state, &signed, "user").await;
    }
    let notice = view::notice(query.get("done").map(String::as_str));
    render(&state, &signed, &id, notice, Redo::default()).await
}

/// The common start of every POST on one user.
pub(super) async fn post(
    state: &AppState,
    headers: &HeaderMap,
    id: &str,
    body: &[u8],
) -> Result<(Signed, Form), Response> {
    let (signed, form) = signed_post(state, headers, body).await?;
    if !valid_id(id) {
        return Err(view::not_found(state, &signed, "user").await);
    }
    Ok((signed, form))
}

/// The username for a confirmation question (the id when it cannot be
/// read: the action itself will say why).
pub(super) async fn who(state: &AppState, signed: &Signed, id: &str) -> String {
    state
        .directory
        .get_user(Actor::Caller(&signed.session.caller), id)
        .await
        .map(|v| v.user.username)
        .unwrap_or_else(|_| id.to_owned())
}

pub(super) fn done(id: &str, code: &str) -> Response {
    view::redirect(&format!("/console/users/{id}?done={code}"))
}

pub(crate) async fn save(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    let (signed, form) = match post(&state, &headers, &id, &body).await {
        Ok(ok) => ok,
        Err(r) => return r,
    };
    let actor = Actor::Caller(&signed.session.caller);
    let mut errors = FieldErrors::default();
    if form.text("username").is_none() {
        errors.add("username", "Enter a username.");
    }
    if errors.is_empty() {
        let saved = match state.directory.get_user(actor, &id).await {
            Ok(current) => {
                let change = UserChange {
                    profile: Some(profile_from(&form, Some(&current.user))),
                    ..UserChange::default()
                };
                state.directory.update_user(actor, &id, change, None).await
            }
            Err(e) => Err(e),
        };
        match saved {
            Ok(_) => return done(&id, "saved"),
            Err(e) => match directory_refusal(e.clone(), &[]) {
                Refusal::Form(found) => errors = found,
                _ => return refused(&state, &signed, e, "changing users").await,
            },
        }
    }
    render(
        &state,
        &signed,
        &id,
        None,
        Redo {
            profile: Some(&form),
            errors,
            ..Redo::default()
        },
    )
    .await
}

pub(crate) async fn set_password(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    let (signed, form) = match post(&state, &headers, &id, &body).await {
        Ok(ok) => ok,
        Err(r) => return r,
    };
    let mut errors = FieldErrors::default();
    let password = form.get("password");
    if password.is_empty() {
        errors.add("password", "Enter the new password.");
    } else if password != form.get("confirm_password") {
        errors.add("confirm_password", "The two passwords differ.");
    }
    if errors.is_empty() {
        match state
            .directory
            .set_password(
                Actor::Caller(&signed.session.caller),
                &id,
                Password::new(password),
            )
            .await
        {
            Ok(_) => return done(&id, "password"),
            Err(e) => match directory_refusal(e.clone(), &[]) {
                Refusal::Form(found) => errors = found,
                _ => return refused(&state, &signed, e, "setting passwords").await,
            },
        }
    }
    render(
        &state,
        &signed,
        &id,
        None,
        Redo {
            password_errors: errors,
            ..Redo::default()
        },
    )
    .await
}

pub(crate) async fn lock(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    let (signed, form) = match post(&state, &headers, &id, &body).await {
        Ok(ok) => ok,
        Err(r) => return r,
    };
    let locked = form.get("locked") == "true";
    if locked && !form.confirmed() {
        return view::confirm(
            &state,
            &signed,
            &form,
            view::Question {
                action: format!("/console/users/{id}/lock"),
                back: format!("/console/users/{id}"),
                heading: "Lock this user?",
                message: format!(
                    "{} cannot sign in until unlocked, and every session of theirs ends now.",
                    who(&state, &signed, &id).await
                ),
                button: "Lock user",
            },
        )
        .await;
    }
    match state
        .directory
        .set_locked(Actor::Caller(&signed.session.caller), &id, locked)
        .await
    {
        Ok(_) => done(&id, if locked { "locked" } else { "unlocked" }),
        Err(e) => {
            refused(
                &state,
                &signed,
                e,
                if locked {
                    "locking users"
                } else {
                    "unlocking users"
                },
            )
            .await
        }
    }
}

pub(crate) async fn activate(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    let (signed, form) = match post(&state, &headers, &id, &body).await {
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
                action: format!("/console/users/{id}/active"),
                back: format!("/console/users/{id}"),
                heading: "Deactivate this user?",
                message: format!(
                    "{} cannot sign in while inactive, and every session of theirs ends now.",
                    who(&state, &signed, &id).await
                ),
                button: "Deactivate user",
            },
        )
        .await;
    }
    match state
        .directory
        .set_active(Actor::Caller(&signed.session.caller), &id, active)
        .await
    {
        Ok(_) => done(&id, if active { "activated" } else { "deactivated" }),
        Err(e) => refused(&state, &signed, e, "changing users").await,
    }
}

pub(crate) async fn sign_out_everywhere(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    let (signed, form) = match post(&state, &headers, &id, &body).await {
        Ok(ok) => ok,
        Err(r) => return r,
    };
    if !form.confirmed() {
        return view::confirm(&state, &signed, &form, view::Question { action: format!("/console/users/{id}/signout"), back: format!("/console/users/{id}"), heading: "Sign this user out everywhere?", message: format!("Every session of {} ends: refresh tokens stop working and access tokens are refused.", who(&state, &signed, &id).await), button: "Sign out everywhere" })
        .await;
    }
    match state
        .directory
        .end_all_sessions(Actor::Caller(&signed.session.caller), &id)
        .await
    {
        Ok(_) => done(&id, "signed-out-everywhere"),
        Err(e) => refused(&state, &signed, e, "ending sessions").await,
    }
}

pub(crate) async fn delete(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    let (signed, form) = match post(&state, &headers, &id, &body).await {
        Ok(ok) => ok,
        Err(r) => return r,
    };
    if !form.confirmed() {
        return view::confirm(
            &state,
            &signed,
            &form,
            view::Question {
                action: format!("/console/users/{id}/delete"),
                back: format!("/console/users/{id}"),
                heading: "Delete this user?",
                message: format!(
                    "{} and their sessions are removed. This cannot be undone.",
                    who(&state, &signed, &id).await
                ),
                button: "Delete user",
            },
        )
        .await;
    }
    match state
        .directory
        .delete_user(Actor::Caller(&signed.session.caller), &id, None)
        .await
    {
        Ok(_) => view::redirect("/console/users?done=deleted"),
        Err(e) => refused(&state, &signed, e, "deleting users").await,
    }
}
