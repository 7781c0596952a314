//! Sign-in and sign-out. The browser posts username and password here;
//! the server runs the password grant in-process for the console app and
//! keeps the tokens; the browser gets only an opaque session cookie.

use std::collections::HashMap;
use std::net::SocketAddr;

use askama::Template;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Response;
use latchkey_core::console::SignInError;
use latchkey_core::meta::RequestMeta;
use latchkey_core::password::Password;
use latchkey_core::secrets::random_token;

use crate::console::form::{Form, same_origin};
use crate::console::session::{self, SESSION_COOKIE, SIGN_IN_COOKIE, cookie, set_cookie};
use crate::console::view::{self, Chrome};
use crate::state::AppState;

/// The sign-in form's nonce lives this long (seconds).
const SIGN_IN_NONCE_SECS: u32 = 3600;

#[derive(Template)]
#[template(path = "console/signin.html")]
struct SignInPage {
    chrome: Chrome,
    error: Option<String>,
    username: String,
    username_error: String,
    password_error: String,
}

/// The form with a fresh nonce cookie and its CSRF token.
fn form_page(
    state: &AppState,
    status: StatusCode,
    notice: Option<&'static str>,
    page: SignInPageParts,
) -> Response {
    let nonce = random_token();
    let csrf = state.console.sign_in_csrf(&nonce);
    let mut response = view::page(
        status,
        &SignInPage {
            chrome: Chrome::anonymous("Sign in", csrf, notice),
            error: page.error,
            username: page.username,
            username_error: page.username_error,
            password_error: page.password_error,
        },
    );
    response.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(
            state,
            SIGN_IN_COOKIE,
            Some(&nonce),
            Some(SIGN_IN_NONCE_SECS),
        ),
    );
    response
}

#[derive(Default)]
struct SignInPageParts {
    error: Option<String>,
    username: String,
    username_error: String,
    password_error: String,
}

pub(crate) async fn show(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    if let Some(value) = cookie(&headers, SESSION_COOKIE)
        && state.console.resume(value).await.is_ok()
    {
        return view::redirect("/console");
    }
    let notice = view::notice(query.get("done").map(String::as_str));
    form_page(&state, StatusCode::OK, notice, SignInPageParts::default())
}

pub(crate) async fn submit(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if !same_origin(&headers) {
        return session::forbidden_post();
    }
    let ip = crate::client_ip::client_ip(
        peer,
        &headers,
        &state.trusted_proxies,
        state.forwarded_header,
    );
    // The per-IP request limit of the token endpoint, before any work.
    if state.rate_limits.check_ip(ip).is_err() {
        let mut response = form_page(
            &state,
            StatusCode::TOO_MANY_REQUESTS,
            None,
            SignInPageParts {
                error: Some(
                    "Too many requests from your address. Wait a minute and try again.".into(),
                ),
                ..Default::default()
            },
        );
        response.headers_mut().insert(
            header::RETRY_AFTER,
            axum::http::HeaderValue::from_static("60"),
        );
        return response;
    }
    let Some(form) = Form::parse(&body) else {
        return view::plain(StatusCode::BAD_REQUEST, "The form could not be read.");
    };
    let username = form.get("username").trim().to_owned();
    let csrf_ok = cookie(&headers, SIGN_IN_COOKIE)
        .is_some_and(|nonce| state.console.check_sign_in_csrf(nonce, form.get("csrf")));
    if !csrf_ok {
        return form_page(
            &state,
            StatusCode::BAD_REQUEST,
            None,
            SignInPageParts {
                error: Some("The sign-in form expired. Please sign in again.".into()),
                username,
                ..Default::default()
            },
        );
    }
    let mut parts = SignInPageParts {
        username: username.clone(),
        ..Default::default()
    };
    if username.is_empty() {
        parts.username_error = "Enter your username.".into();
    }
    if form.get("password").is_empty() {
        parts.password_error = "Enter your password.".into();
    }
    if !parts.username_error.is_empty() || !parts.password_error.is_empty() {
        return form_page(&state, StatusCode::BAD_REQUEST, None, parts);
    }
    let meta = RequestMeta {
        ip: Some(ip),
        user_agent: headers
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(|v| v.chars().take(256).collect()),
        // The per-IP limit was charged above; the console names no end
        // user address other than the browser's own.
        ..RequestMeta::default()
    };
    match state
        .console
        .sign_in(&username, Password::new(form.get("password")), &meta)
        .await
    {
        Ok(signed) => {
            let mut response = view::redirect("/console");
            let headers = response.headers_mut();
            headers.append(
                header::SET_COOKIE,
                set_cookie(&state, SESSION_COOKIE, Some(&signed.cookie), None),
            );
            headers.append(
                header::SET_COOKIE,
                set_cookie(&state, SIGN_IN_COOKIE, None, None),
            );
            response
        }
        Err(SignInError::Rejected) => {
            // One answer for every reason, as at the token endpoint.
            parts.error = Some(
                "The username or password is not right, or this account cannot sign in now.".into(),
            );
            form_page(&state, StatusCode::BAD_REQUEST, None, parts)
        }
        Err(SignInError::Unavailable) => {
            parts.error = Some("The service is busy. Try again in a few seconds.".into());
            form_page(&state, StatusCode::SERVICE_UNAVAILABLE, None, parts)
        }
        Err(SignInError::Failed) => {
            parts.error =
                Some("Signing in failed on the server. The operator's log has the details.".into());
            form_page(&state, StatusCode::INTERNAL_SERVER_ERROR, None, parts)
        }
    }
}

pub(crate) async fn sign_out(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (signed, _form) = match session::signed_post(&state, &headers, &body).await {
        Ok(ok) => ok,
        Err(response) => return response,
    };
    if state.console.sign_out(&signed.cookie).await.is_err() {
        return view::unavailable();
    }
    let mut response = view::redirect("/console/signin?done=signed-out");
    response.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(&state, SESSION_COOKIE, None, None),
    );
    response
}
