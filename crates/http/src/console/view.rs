//! What every console page shares: the frame around it (title, the
//! navigation the caller may use, the CSRF token for its forms, a notice),
//! and turning a template into a response.

use askama::Template;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use latchkey_core::admin::{Caller, Permission};

use super::session::Signed;
use crate::state::AppState;

pub(crate) struct NavItem {
    pub(crate) href: &'static str,
    pub(crate) label: &'static str,
    pub(crate) current: bool,
}

/// The frame of a page.
pub(crate) struct Chrome {
    pub(crate) title: String,
    pub(crate) nav: Vec<NavItem>,
    /// Empty when nobody is signed in.
    pub(crate) username: String,
    pub(crate) csrf: String,
    pub(crate) notice: Option<&'static str>,
}

/// Sections of the console, each shown only to callers who may use it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Section {
    Users,
    Groups,
    Audit,
    Apps,
    ResourceServers,
    Keys,
    Profile,
    None,
}

const SECTIONS: [(Section, &str, &str, Option<Permission>); 7] = [
    (
        Section::Users,
        "/console/users",
        "Users",
        Some(Permission::ReadUsers),
    ),
    (
        Section::Groups,
        "/console/groups",
        "Groups",
        Some(Permission::ReadUsers),
    ),
    (
        Section::Apps,
        "/console/apps",
        "Applications",
        Some(Permission::ReadApps),
    ),
    (
        Section::ResourceServers,
        "/console/resource-servers",
        "Resource servers",
        Some(Permission::ReadApps),
    ),
    (
        Section::Keys,
        "/console/keys",
        "Signing keys",
        Some(Permission::ReadKeys),
    ),
    (
        Section::Audit,
        "/console/audit",
        "Audit events",
        Some(Permission::ReadAudit),
    ),
    (Section::Profile, "/console/profile", "My profile", None),
];

pub(crate) fn nav(caller: &Caller, current: Section) -> Vec<NavItem> {
    SECTIONS
        .iter()
        .filter(|(_, _, _, needs)| needs.is_none_or(|p| caller.may(p)))
        .map(|(section, href, label, _)| NavItem {
            href,
            label,
            current: *section == current,
        })
        .collect()
}

impl Chrome {
    /// The frame of a signed-in page; the username comes from the
    /// caller's own profile.
    pub(crate) async fn signed(
        state: &AppState,
        signed: &Signed,
        title: impl Into<String>,
        current: Section,
        notice: Option<&'static str>,
    ) -> Chrome {
        let caller = &signed.session.caller;
        let username = state
            .directory
            .me(caller)
            .await
            .ok()
            .map(|me| me.user.username)
            .unwrap_or_else(|| caller.subject.clone());
        Chrome {
            title: title.into(),
            nav: nav(caller, current),
            username,
            csrf: signed.session.csrf_token.clone(),
            notice,
        }
    }

    pub(crate) fn anonymous(
        title: impl Into<String>,
        csrf: String,
        notice: Option<&'static str>,
    ) -> Chrome {
        Chrome {
            title: title.into(),
            nav: Vec::new(),
            username: String::new(),
            csrf,
            notice,
        }
    }
}

/// A rendered page. Console pages are personal: never cached.
pub(crate) fn page<T: Template>(status: StatusCode, template: &T) -> Response {
    match template.render() {
        Ok(html) => {
            let mut response = (status, html).into_response();
            let headers = response.headers_mut();
            headers.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/html; charset=utf-8"),
            );
            headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            response
        }
        Err(e) => {
            tracing::error!(error = e.to_string(), "console template failed");
            plain(
                StatusCode::INTERNAL_SERVER_ERROR,
                "The page could not be shown.",
            )
        }
    }
}

/// After a POST: see the result with a GET (303), so reloading does not
/// send the form again.
pub(crate) fn redirect(to: &str) -> Response {
    let mut response = StatusCode::SEE_OTHER.into_response();
    if let Ok(location) = HeaderValue::from_str(to) {
        response.headers_mut().insert(header::LOCATION, location);
    }
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

#[derive(Template)]
#[template(path = "console/message.html")]
pub(crate) struct MessagePage {
    pub(crate) chrome: Chrome,
    pub(crate) heading: String,
    pub(crate) message: String,
}

/// A page with one message and no session data (errors before or
/// outside a session).
pub(crate) fn plain(status: StatusCode, message: &str) -> Response {
    let heading = status.canonical_reason().unwrap_or("Error").to_owned();
    page(
        status,
        &MessagePage {
            chrome: Chrome::anonymous(heading.clone(), String::new(), None),
            heading,
            message: message.to_owned(),
        },
    )
}

pub(crate) fn unavailable() -> Response {
    let mut response = plain(
        StatusCode::SERVICE_UNAVAILABLE,
        "The service is busy or its database cannot be reached. Try again in a few seconds.",
    );
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
    response
}

/// A signed-in page saying the caller may not do or see this.
pub(crate) async fn forbidden(state: &AppState, signed: &Signed, what: &str) -> Response {
    page(
        StatusCode::FORBIDDEN,
        &MessagePage {
            chrome: Chrome::signed(state, signed, "Not allowed", Section::None, None).await,
            heading: "Not allowed".to_owned(),
            message: format!(
                "Your application roles do not allow {what}. Ask an identity domain administrator if you need it."
            ),
        },
    )
}

pub(crate) async fn not_found(state: &AppState, signed: &Signed, what: &str) -> Response {
    page(
        StatusCode::NOT_FOUND,
        &MessagePage {
            chrome: Chrome::signed(state, signed, "Not found", Section::None, None).await,
            heading: "Not found".to_owned(),
            message: format!("There is no such {what}; it may have been deleted."),
        },
    )
}

#[derive(Template)]
#[template(path = "console/confirm.html")]
pub(crate) struct ConfirmPage {
    pub(crate) chrome: Chrome,
    pub(crate) heading: String,
    pub(crate) message: String,
    pub(crate) action: String,
    pub(crate) fields: Vec<(String, String)>,
    pub(crate) button: String,
    pub(crate) back: String,
}

/// What a confirmation page asks.
pub(crate) struct Question<'a> {
    /// Where the confirmed form goes (the same POST again).
    pub(crate) action: String,
    /// Where "Cancel" leads.
    pub(crate) back: String,
    pub(crate) heading: &'a str,
    pub(crate) message: String,
    pub(crate) button: &'a str,
}

/// A destructive action asks once more: the same POST again, with
/// `confirm=yes`. No script needed.
pub(crate) async fn confirm(
    state: &AppState,
    signed: &Signed,
    form: &super::form::Form,
    question: Question<'_>,
) -> Response {
    page(
        StatusCode::OK,
        &ConfirmPage {
            chrome: Chrome::signed(state, signed, question.heading, Section::None, None).await,
            heading: question.heading.to_owned(),
            message: question.message,
            action: question.action,
            fields: form.carried(),
            button: question.button.to_owned(),
            back: question.back,
        },
    )
}

/// Notices after a redirect name a fixed message by code: nothing a
/// link can carry is ever reflected into the page.
pub(crate) fn notice(code: Option<&str>) -> Option<&'static str> {
    Some(match code? {
        "created" => "Created.",
        "saved" => "Saved.",
        "deleted" => "Deleted.",
        "locked" => "The user is locked and signed out everywhere.",
        "unlocked" => "The user is unlocked.",
        "activated" => "The user is active.",
        "deactivated" => "The user is deactivated and signed out everywhere.",
        "password" => "The password was set. The user's sessions have ended.",
        "signed-out-everywhere" => "Every session of the user has ended.",
        "signed-out" => "You are signed out.",
        "expired" => "Your session ended. Sign in again.",
        "own-password" => "Your password was changed. Sign in with the new one.",
        "member-added" => "The member is added.",
        "member-removed" => "The member is removed.",
        "renamed" => "The group is renamed.",
        "role-granted" => "The role is granted.",
        "role-revoked" => "The role is revoked.",
        "role-not-direct" => {
            "The user holds that role only through a group: remove it from the group, or the user from the group."
        }
        "app-activated" => "The application is active.",
        "app-deactivated" => "The application is deactivated and its sessions have ended.",
        "rotated" => {
            "A new signing key is active. The previous one keeps verifying the tokens it signed."
        }
        _ => return None,
    })
}
