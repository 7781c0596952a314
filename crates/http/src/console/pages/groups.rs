//! `/console/groups`: groups — the list, creating one, one group's
//! name (rename), members (add by username, remove), application roles
//! (shown here; granted in `group_roles`) and deletion. Everything
//! through the typed `DirectoryService`, as the admin API and the command
//! line do.

use std::collections::HashMap;

use askama::Template;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use latchkey_core::admin::{Actor, ListParams, Permission};
use latchkey_core::directory::{DirectoryError, GroupChange, NewGroup};
use latchkey_core::model::AppRole;
use latchkey_core::scim::group::GroupSchema;

use super::valid_id;
use crate::console::fields::{FieldErrors, Refusal, directory_refusal};
use crate::console::form::Form;
use crate::console::session::{Signed, signed_in, signed_post};
use crate::console::view::{self, Chrome, Section};
use crate::state::AppState;

/// A refusal that is not a form's; a missing group is named as one.
pub(super) async fn refused(
    state: &AppState,
    signed: &Signed,
    e: DirectoryError,
    what: &str,
) -> Response {
    match &e {
        DirectoryError::NotFound(_) => view::not_found(state, signed, "group").await,
        _ => super::refused(state, signed, e, what).await,
    }
}

struct GroupRow {
    id: String,
    name: String,
    members: usize,
}

#[derive(Template)]
#[template(path = "console/groups.html")]
struct GroupsPage {
    chrome: Chrome,
    rows: Vec<GroupRow>,
    may_write: bool,
    errors: FieldErrors,
    name: String,
}

async fn list_page(
    state: &AppState,
    signed: &Signed,
    notice: Option<&'static str>,
    name: String,
    errors: FieldErrors,
) -> Response {
    let caller = &signed.session.caller;
    let params = ListParams {
        count: Some("1000".into()),
        ..ListParams::default()
    };
    let (query, _) = params
        .query::<GroupSchema>()
        .expect("a plain count is a valid query");
    let listed = match state
        .directory
        .list_groups(Actor::Caller(caller), &query)
        .await
    {
        Ok(page) => page,
        Err(e) => return refused(state, signed, e, "viewing groups").await,
    };
    let rows = listed
        .items
        .into_iter()
        .map(|g| GroupRow {
            id: g.group.id,
            name: g.group.name,
            members: g.members.len(),
        })
        .collect();
    let status = if errors.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::BAD_REQUEST
    };
    view::page(
        status,
        &GroupsPage {
            chrome: Chrome::signed(state, signed, "Groups", Section::Groups, notice).await,
            rows,
            may_write: caller.may(Permission::WriteUsers),
            errors,
            name,
        },
    )
}

pub(crate) async fn list(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let signed = match signed_in(&state, &headers).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let notice = view::notice(query.get("done").map(String::as_str));
    list_page(
        &state,
        &signed,
        notice,
        String::new(),
        FieldErrors::default(),
    )
    .await
}

/// A form's refusal beside `field`, or the page that says why not.
async fn form_error(
    state: &AppState,
    signed: &Signed,
    e: DirectoryError,
    field: &'static str,
) -> Result<FieldErrors, Response> {
    match directory_refusal(e.clone(), &[("displayName", "name"), ("members", field)]) {
        Refusal::Form(mut errors) => {
            if let Some(message) = errors.form.take() {
                errors.add(field, message);
            }
            Ok(errors)
        }
        _ => Err(refused(state, signed, e, "changing groups").await),
    }
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
    let name = form.get("name").trim().to_owned();
    let mut errors = FieldErrors::default();
    if name.is_empty() {
        errors.add("name", "Enter a name.");
        return list_page(&state, &signed, None, name, errors).await;
    }
    let new = NewGroup {
        name: name.clone(),
        ..NewGroup::default()
    };
    match state
        .directory
        .create_group(Actor::Caller(&signed.session.caller), new)
        .await
    {
        Ok(view) => view::redirect(&format!("/console/groups/{}?done=created", view.group.id)),
        Err(e) => match form_error(&state, &signed, e, "name").await {
            Ok(errors) => list_page(&state, &signed, None, name, errors).await,
            Err(r) => r,
        },
    }
}

struct Member {
    id: String,
    username: String,
}

#[derive(Template)]
#[template(path = "console/group.html")]
struct GroupPage {
    chrome: Chrome,
    id: String,
    name: String,
    members: Vec<Member>,
    /// Every application role, and whether the group holds it.
    roles: Vec<(&'static str, bool)>,
    may_write: bool,
    may_grant: bool,
    errors: FieldErrors,
    username: String,
    /// The rename form: its value and errors.
    new_name: String,
    name_errors: FieldErrors,
}

/// What a page render may carry over from a refused form.
#[derive(Default)]
struct Redo {
    /// The member form's username and errors.
    username: String,
    errors: FieldErrors,
    /// The rename form's name (the group's own when `None`) and errors.
    name: Option<String>,
    name_errors: FieldErrors,
}

async fn group_page(
    state: &AppState,
    signed: &Signed,
    id: &str,
    notice: Option<&'static str>,
    redo: Redo,
) -> Response {
    let caller = &signed.session.caller;
    let group = match state.directory.get_group(Actor::Caller(caller), id).await {
        Ok(view) => view,
        Err(e) => return refused(state, signed, e, "viewing groups").await,
    };
    let held = match state.directory.group_roles(Actor::Caller(caller), id).await {
        Ok(held) => held,
        Err(e) => return refused(state, signed, e, "viewing groups").await,
    };
    let roles = AppRole::ALL
        .iter()
        .map(|r| (r.as_str(), held.contains(r)))
        .collect();
    let name = group.group.name.clone();
    let members = group
        .members
        .into_iter()
        .map(|m| Member {
            id: m.id,
            username: m.username,
        })
        .collect();
    let status = if redo.errors.is_empty() && redo.name_errors.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::BAD_REQUEST
    };
    view::page(
        status,
        &GroupPage {
            chrome: Chrome::signed(state, signed, name.clone(), Section::Groups, notice).await,
            id: id.to_owned(),
            new_name: redo.name.unwrap_or_else(|| name.clone()),
            name,
            members,
            roles,
            may_write: caller.may(Permission::WriteUsers),
            may_grant: caller.may(Permission::GrantRoles),
            errors: redo.errors,
            username: redo.username,
            name_errors: redo.name_errors,
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
        return view::not_found(&state, &signed, "group").await;
    }
    let notice = view::notice(query.get("done").map(String::as_str));
    group_page(&state, &signed, &id, notice, Redo::default()).await
}

/// The common start of every POST on one group.
pub(super) async fn post_on(
    state: &AppState,
    headers: &HeaderMap,
    id: &str,
    body: &[u8],
) -> Result<(Signed, Form), Response> {
    let (signed, form) = signed_post(state, headers, body).await?;
    if !valid_id(id) {
        return Err(view::not_found(state, &signed, "group").await);
    }
    Ok((signed, form))
}

/// `POST /console/groups/{id}`: renames the group to `name` (members
/// and roles stay).
pub(crate) async fn rename(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    let (signed, form) = match post_on(&state, &headers, &id, &body).await {
        Ok(ok) => ok,
        Err(r) => return r,
    };
    let name = form.get("name").trim().to_owned();
    let mut name_errors = FieldErrors::default();
    if name.is_empty() {
        name_errors.add("name", "Enter a name.");
    } else {
        match state
            .directory
            .update_group(
                Actor::Caller(&signed.session.caller),
                &id,
                GroupChange::Rename(name.clone()),
                None,
            )
            .await
        {
            Ok(_) => return view::redirect(&format!("/console/groups/{id}?done=renamed")),
            Err(e) => match form_error(&state, &signed, e, "name").await {
                Ok(errors) => name_errors = errors,
                Err(r) => return r,
            },
        }
    }
    let redo = Redo {
        name: Some(name),
        name_errors,
        ..Redo::default()
    };
    group_page(&state, &signed, &id, None, redo).await
}

/// `POST /console/groups/{id}/members`: adds the user named `username`.
pub(crate) async fn add_member(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    let (signed, form) = match post_on(&state, &headers, &id, &body).await {
        Ok(ok) => ok,
        Err(r) => return r,
    };
    let caller = &signed.session.caller;
    let username = form.get("username").trim().to_owned();
    let mut errors = FieldErrors::default();
    let actor = Actor::Caller(caller);
    let found = if username.is_empty() {
        None
    } else {
        match state.directory.find_user(actor, &username).await {
            Ok(view) => Some(view.user.id),
            Err(DirectoryError::NotFound(_)) => None,
            Err(e) => return super::refused(&state, &signed, e, "viewing users").await,
        }
    };
    let Some(user_id) = found else {
        errors.add("username", "No user has that username.");
        let redo = Redo {
            username,
            errors,
            ..Redo::default()
        };
        return group_page(&state, &signed, &id, None, redo).await;
    };
    match state
        .directory
        .update_group(actor, &id, GroupChange::AddMembers(vec![user_id]), None)
        .await
    {
        Ok(_) => view::redirect(&format!("/console/groups/{id}?done=member-added")),
        Err(e) => match form_error(&state, &signed, e, "username").await {
            Ok(errors) => {
                let redo = Redo {
                    username,
                    errors,
                    ..Redo::default()
                };
                group_page(&state, &signed, &id, None, redo).await
            }
            Err(r) => r,
        },
    }
}

/// `POST /console/groups/{id}/members/remove`: removes the member `user`.
pub(crate) async fn remove_member(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    let (signed, form) = match post_on(&state, &headers, &id, &body).await {
        Ok(ok) => ok,
        Err(r) => return r,
    };
    let user = form.get("user");
    if !valid_id(user) {
        return view::plain(StatusCode::BAD_REQUEST, "That is not a member.");
    }
    if !form.confirmed() {
        return view::confirm(
            &state,
            &signed,
            &form,
            view::Question {
                action: format!("/console/groups/{id}/members/remove"),
                back: format!("/console/groups/{id}"),
                heading: "Remove this member?",
                message: "They lose the roles they hold through this group.".into(),
                button: "Remove member",
            },
        )
        .await;
    }
    match state
        .directory
        .update_group(
            Actor::Caller(&signed.session.caller),
            &id,
            GroupChange::RemoveMembers(vec![user.to_owned()]),
            None,
        )
        .await
    {
        Ok(_) => view::redirect(&format!("/console/groups/{id}?done=member-removed")),
        Err(e) => refused(&state, &signed, e, "changing groups").await,
    }
}

pub(crate) async fn delete(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    let (signed, form) = match post_on(&state, &headers, &id, &body).await {
        Ok(ok) => ok,
        Err(r) => return r,
    };
    if !form.confirmed() {
        return view::confirm(
            &state,
            &signed,
            &form,
            view::Question {
                action: format!("/console/groups/{id}/delete"),
                back: format!("/console/groups/{id}"),
                heading: "Delete this group?",
                message: "Its members lose the roles they hold through it. This cannot be undone."
                    .into(),
                button: "Delete group",
            },
        )
        .await;
    }
    match state
        .directory
        .delete_group(Actor::Caller(&signed.session.caller), &id, None)
        .await
    {
        Ok(_) => view::redirect("/console/groups?done=deleted"),
        Err(e) => refused(&state, &signed, e, "deleting groups").await,
    }
}
