//! `/console/users`: the list (search, paging) and creating a user.

use std::collections::HashMap;

use askama::Template;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use latchkey_core::admin::{Actor, ListParams, Permission};
use latchkey_core::directory::{NewUser, Profile, UserView};
use latchkey_core::model::User;
use latchkey_core::password::Password;
use latchkey_core::scim::user::UserSchema;

use super::refused;
use crate::console::fields::{FieldErrors, Refusal, directory_refusal, refusal};
use crate::console::form::Form;
use crate::console::session::{Signed, signed_in, signed_post};
use crate::console::view::{self, Chrome, Section};
use crate::state::AppState;

const PAGE_SIZE: u64 = 20;

pub(crate) struct UserRow {
    pub(crate) id: String,
    pub(crate) username: String,
    pub(crate) name: String,
    pub(crate) email: String,
    pub(crate) badges: Vec<(&'static str, &'static str)>,
}

/// Status badges: (style, label).
pub(crate) fn badges(user: &User) -> Vec<(&'static str, &'static str)> {
    let mut out = Vec::new();
    if user.active {
        out.push(("ok", "Active"));
    } else {
        out.push(("bad", "Inactive"));
    }
    if user.locked {
        out.push(("warn", "Locked"));
    }
    out
}

/// "Given Family", as far as the user has them.
pub(crate) fn full_name(user: &User) -> String {
    [user.given_name.as_deref(), user.family_name.as_deref()]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join(" ")
}

pub(crate) fn row(view: &UserView) -> UserRow {
    let user = &view.user;
    UserRow {
        id: user.id.clone(),
        username: user.username.clone(),
        name: full_name(user),
        email: user.email.clone().unwrap_or_default(),
        badges: badges(user),
    }
}

#[derive(Template)]
#[template(path = "console/users.html")]
struct UsersPage {
    chrome: Chrome,
    query: String,
    rows: Vec<UserRow>,
    range_text: String,
    previous: Option<String>,
    next: Option<String>,
    may_write: bool,
    error: Option<String>,
}

/// The SCIM filter of a search box: any of the names or the email
/// contains the text (a JSON string literal is a SCIM one).
pub(crate) fn search_filter(query: &str) -> Option<String> {
    if query.is_empty() {
        return None;
    }
    let literal = serde_json::to_string(query).expect("a string serializes");
    Some(
        [
            "userName",
            "name.givenName",
            "name.familyName",
            "emails.value",
        ]
        .iter()
        .map(|attr| format!("{attr} co {literal}"))
        .collect::<Vec<_>>()
        .join(" or "),
    )
}

fn page_link(query: &str, page: u64) -> String {
    let q: String =
        percent_encoding::utf8_percent_encode(query, percent_encoding::NON_ALPHANUMERIC)
            .to_string();
    format!("/console/users?q={q}&page={page}")
}

pub(crate) async fn list(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(params): Query<HashMap<String, String>>,
) -> Response {
    let signed = match signed_in(&state, &headers).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let caller = &signed.session.caller;
    if !caller.may(Permission::ReadUsers) {
        return view::forbidden(&state, &signed, "viewing users").await;
    }
    let query: String = params
        .get("q")
        .map(|q| q.trim().chars().take(200).collect())
        .unwrap_or_default();
    let page = params
        .get("page")
        .and_then(|p| p.parse::<u64>().ok())
        .filter(|p| (1..=100_000).contains(p))
        .unwrap_or(1);
    let list = ListParams {
        filter: search_filter(&query),
        sort_by: Some("userName".into()),
        start_index: Some(((page - 1) * PAGE_SIZE + 1).to_string()),
        count: Some(PAGE_SIZE.to_string()),
        ..ListParams::default()
    };
    let listed = match list.query::<UserSchema>() {
        Ok((query, _)) => state
            .directory
            .list_users(Actor::Caller(caller), &query)
            .await
            .map_err(directory_refusal_of),
        Err(e) => Err(refusal(e.into(), &[])),
    };
    let (rows, total, error) = match listed {
        Ok(page) => (page.items.iter().map(row).collect(), page.total, None),
        Err(refused) => match refused {
            Refusal::Form(errors) => (
                Vec::new(),
                0,
                errors.form.or(Some("The search could not be run.".into())),
            ),
            _ => return view::unavailable(),
        },
    };
    let first = (page - 1) * PAGE_SIZE + 1;
    let last = first + rows.len() as u64 - 1;
    let notice = view::notice(params.get("done").map(String::as_str));
    // A refused search (a filter the directory cannot run) is the
    // request's fault: 400, with the page and its message.
    let status = if error.is_some() {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    };
    view::page(
        status,
        &UsersPage {
            chrome: Chrome::signed(&state, &signed, "Users", Section::Users, notice).await,
            range_text: format!("Users {first}–{last} of {total}"),
            previous: (page > 1).then(|| page_link(&query, page - 1)),
            next: (last < total).then(|| page_link(&query, page + 1)),
            query,
            rows,
            may_write: caller.may(Permission::WriteUsers),
            error,
        },
    )
}

#[derive(Template)]
#[template(path = "console/user_new.html")]
struct NewUserPage {
    chrome: Chrome,
    errors: FieldErrors,
    username: String,
    given_name: String,
    family_name: String,
    email: String,
    active: bool,
}

async fn new_page(
    state: &AppState,
    signed: &Signed,
    form: Option<&Form>,
    errors: FieldErrors,
) -> Response {
    let value = |name: &str| {
        form.map(|f| f.get(name).trim().to_owned())
            .unwrap_or_default()
    };
    view::page(
        if errors.is_empty() {
            StatusCode::OK
        } else {
            StatusCode::BAD_REQUEST
        },
        &NewUserPage {
            chrome: Chrome::signed(state, signed, "Create user", Section::Users, None).await,
            username: value("username"),
            given_name: value("given_name"),
            family_name: value("family_name"),
            email: value("email"),
            active: form.is_none_or(|f| f.get("active") == "true"),
            errors,
        },
    )
}

pub(crate) async fn new_form(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let signed = match signed_in(&state, &headers).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    if !signed.session.caller.may(Permission::WriteUsers) {
        return view::forbidden(&state, &signed, "creating users").await;
    }
    new_page(&state, &signed, None, FieldErrors::default()).await
}

fn directory_refusal_of(e: latchkey_core::directory::DirectoryError) -> Refusal {
    directory_refusal(e, &[])
}

/// The profile fields of a console form; what the form does not show
/// (`externalId`, `displayName`) is taken from `kept`.
pub(crate) fn profile_from(form: &Form, kept: Option<&User>) -> Profile {
    Profile {
        username: form.get("username").trim().to_owned(),
        given_name: form.text("given_name"),
        family_name: form.text("family_name"),
        email: form.text("email"),
        external_id: kept.and_then(|u| u.external_id.clone()),
        display_name: kept.and_then(|u| u.display_name.clone()),
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
    let mut errors = FieldErrors::default();
    if form.text("username").is_none() {
        errors.add("username", "Enter a username.");
    }
    if !errors.is_empty() {
        return new_page(&state, &signed, Some(&form), errors).await;
    }
    let new = NewUser {
        profile: profile_from(&form, None),
        active: form.get("active") == "true",
        password: (!form.get("password").is_empty()).then(|| Password::new(form.get("password"))),
        roles: Vec::new(),
    };
    match state
        .directory
        .create_user(Actor::Caller(&signed.session.caller), new)
        .await
    {
        Ok(view) => view::redirect(&format!("/console/users/{}?done=created", view.user.id)),
        Err(e) => match directory_refusal(e.clone(), &[]) {
            Refusal::Form(errors) => new_page(&state, &signed, Some(&form), errors).await,
            _ => refused(&state, &signed, e, "creating users").await,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn search_is_a_safe_scim_filter() {
        assert_eq!(search_filter(""), None);
        let filter = search_filter("a\"b").unwrap();
        assert!(filter.starts_with(r#"userName co "a\"b" or "#));
        assert!(latchkey_core::scim::filter::parse_filter(&filter).is_ok());
    }

    #[test]
    fn a_profile_leaves_out_empty_fields() {
        let form = Form::parse(b"username=+bob+&given_name=&email=b%40x.org").unwrap();
        let profile = profile_from(&form, None);
        assert_eq!(profile.username, "bob");
        assert!(profile.given_name.is_none() && profile.family_name.is_none());
        assert_eq!(profile.email.as_deref(), Some("b@x.org"));
    }
}
