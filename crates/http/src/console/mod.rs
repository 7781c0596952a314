//! The server-rendered console at `/console`: askama templates (checked
//! at compile time), one small stylesheet, and one small script for copy
//! buttons that every page works without. Every page acts
//! through the same core services as the admin API, with the `Caller` of
//! the signed-in user's own access token, so what a page shows and does
//! is what the user's application roles allow there.

mod fields;
mod form;
mod pages;
mod session;
pub(crate) mod view;

use axum::Router;
use axum::http::{HeaderName, HeaderValue, header};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use tower_http::set_header::SetResponseHeaderLayer;

use crate::state::AppState;

/// The console's own policy: its stylesheet, its one small script (copy
/// buttons) and its forms come from this origin; nothing inline, nothing
/// from elsewhere.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

const STYLESHEET: &str = include_str!("../../static/console.css");
const SCRIPT: &str = include_str!("../../static/console.js");

pub(crate) fn routes() -> Router<AppState> {
    use pages::{
        app_form, apps, audit, group_roles, groups, home, profile, registry, server_edit, signin,
        user, user_roles, users,
    };
    Router::new()
        // Someone who opens the server's bare address in a browser wants
        // the console.
        .route("/", get(|| async { view::redirect("/console") }))
        .route("/console", get(home::home))
        .route("/console/", get(home::home))
        .route("/console/static/console.css", get(stylesheet))
        .route("/console/signin", get(signin::show).post(signin::submit))
        .route("/console/signout", post(signin::sign_out))
        .route("/console/profile", get(profile::show))
        .route("/console/profile/password", post(profile::change_password))
        .route("/console/users", get(users::list).post(users::create))
        .route("/console/users/new", get(users::new_form))
        .route("/console/users/{id}", get(user::show).post(user::save))
        .route("/console/users/{id}/password", post(user::set_password))
        .route("/console/users/{id}/lock", post(user::lock))
        .route("/console/users/{id}/active", post(user::activate))
        .route(
            "/console/users/{id}/signout",
            post(user::sign_out_everywhere),
        )
        .route("/console/users/{id}/delete", post(user::delete))
        .route("/console/users/{id}/roles", post(user_roles::set_role))
        .route("/console/audit", get(audit::list))
        .route("/console/groups", get(groups::list).post(groups::create))
        .route(
            "/console/groups/{id}",
            get(groups::show).post(groups::rename),
        )
        .route("/console/groups/{id}/roles", post(group_roles::set_role))
        .route("/console/groups/{id}/members", post(groups::add_member))
        .route(
            "/console/groups/{id}/members/remove",
            post(groups::remove_member),
        )
        .route("/console/groups/{id}/delete", post(groups::delete))
        .route("/console/apps", get(apps::list).post(app_form::create))
        .route("/console/apps/new", get(app_form::new_form))
        .route("/console/apps/{id}", get(apps::show))
        .route(
            "/console/apps/{id}/edit",
            get(app_form::edit_form).post(app_form::save),
        )
        .route("/console/apps/{id}/active", post(apps::set_active))
        .route("/console/apps/{id}/secret", post(apps::rotate_secret))
        .route("/console/apps/{id}/delete", post(apps::delete))
        .route(
            "/console/resource-servers",
            get(registry::servers).post(registry::create_server),
        )
        .route(
            "/console/resource-servers/{id}/edit",
            get(server_edit::form).post(server_edit::save),
        )
        .route(
            "/console/resource-servers/{id}/delete",
            post(registry::delete_server),
        )
        .route("/console/keys", get(registry::keys))
        .route("/console/keys/rotate", post(registry::rotate_key))
        .route("/console/static/console.js", get(script))
        .layer(SetResponseHeaderLayer::overriding(
            HeaderName::from_static("content-security-policy"),
            HeaderValue::from_static(CSP),
        ))
        // `no-referrer` (the API's) makes browsers send `Origin: null` on
        // every form post, which the origin check must refuse; with
        // `same-origin` they name our origin on our own forms, and still
        // `null` for a post from another site.
        .layer(SetResponseHeaderLayer::overriding(
            header::REFERRER_POLICY,
            HeaderValue::from_static("same-origin"),
        ))
}

async fn stylesheet() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        STYLESHEET,
    )
}

async fn script() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        SCRIPT,
    )
}
