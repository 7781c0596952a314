//! The console's cookies and what every signed-in request does first:
//! find its session, and for a POST check origin and CSRF token.

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;
use latchkey_core::console::{ConsoleSession, ResumeError};

use super::form::{Form, same_origin};
use super::view;
use crate::state::AppState;

/// The session cookie. Not `__Host-`: that prefix demands `Path=/`, and
/// the cookie should reach nothing but the console.
pub(crate) const SESSION_COOKIE: &str = "latchkey_console";
/// The sign-in form's nonce (CSRF before a session exists).
pub(crate) const SIGN_IN_COOKIE: &str = "latchkey_console_signin";

/// The value of cookie `name`, if the request carries it once.
pub(crate) fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    let mut found = headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .filter(|(n, _)| *n == name)
        .map(|(_, v)| v);
    let first = found.next()?;
    // Two cookies of one name (one planted by a sibling subdomain): trust
    // neither.
    found.next().is_none().then_some(first)
}

/// `Set-Cookie` for a console cookie; `None` as value clears it.
pub(crate) fn set_cookie(
    state: &AppState,
    name: &str,
    value: Option<&str>,
    max_age: Option<u32>,
) -> HeaderValue {
    let secure = if state.issuer.starts_with("https://") {
        "; Secure"
    } else {
        ""
    };
    let lifetime = match (value, max_age) {
        (None, _) => "; Max-Age=0".to_owned(),
        (Some(_), Some(secs)) => format!("; Max-Age={secs}"),
        // A browser-session cookie: the server enforces the timeouts.
        (Some(_), None) => String::new(),
    };
    let text = format!(
        "{name}={}; Path=/console; HttpOnly; SameSite=Strict{secure}{lifetime}",
        value.unwrap_or("")
    );
    HeaderValue::from_str(&text).expect("cookie values are base64url")
}

/// A signed-in request.
pub(crate) struct Signed {
    pub(crate) session: ConsoleSession,
    pub(crate) cookie: String,
}

/// The session of a request, or the answer that replaces the page: to
/// sign-in when there is none.
pub(crate) async fn signed_in(state: &AppState, headers: &HeaderMap) -> Result<Signed, Response> {
    let Some(cookie) = cookie(headers, SESSION_COOKIE) else {
        return Err(view::redirect("/console/signin"));
    };
    match state.console.resume(cookie).await {
        Ok(session) => Ok(Signed {
            session,
            cookie: cookie.to_owned(),
        }),
        Err(ResumeError::Ended) => {
            let mut response = view::redirect("/console/signin?done=expired");
            response.headers_mut().append(
                header::SET_COOKIE,
                set_cookie(state, SESSION_COOKIE, None, None),
            );
            Err(response)
        }
        Err(ResumeError::Unavailable) => Err(view::unavailable()),
    }
}

/// A signed-in form post: same origin, a session, a well-formed body and
/// the session's CSRF token.
pub(crate) async fn signed_post(
    state: &AppState,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<(Signed, Form), Response> {
    if !same_origin(headers) {
        return Err(forbidden_post());
    }
    let signed = signed_in(state, headers).await?;
    let form = Form::parse(body)
        .ok_or_else(|| view::plain(StatusCode::BAD_REQUEST, "The form could not be read."))?;
    if !state.console.check_csrf(&signed.cookie, form.get("csrf")) {
        return Err(forbidden_post());
    }
    Ok((signed, form))
}

pub(crate) fn forbidden_post() -> Response {
    view::plain(
        StatusCode::FORBIDDEN,
        "This form was not sent from this console page, or it expired. Go back, reload the page and try again.",
    )
}
