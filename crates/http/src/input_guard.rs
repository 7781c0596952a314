//! One guard for what every URL carries: a path segment that decodes to a
//! control character names no resource (ids, names and client_ids never
//! hold one), and a NUL anywhere in the path or query cannot be stored
//! (PostgreSQL's `text` refuses it; SQLite would store it and answer
//! differently). Such requests are refused here, before any handler or
//! the database, with the refusal of their door: SCIM `invalidFilter` /
//! `invalidValue` under `/admin/`, a 400 page under `/console`, the OAuth
//! `invalid_request` elsewhere. Bodies are checked by their own parsers
//! (form.rs, the SCIM validators, the client assertion's claims).

use axum::extract::Request;
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use latchkey_core::OAuthError;
use latchkey_core::scim::ScimError;
use percent_encoding::percent_decode;

/// What is wrong with a request's URL, if anything.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Unstorable {
    /// In the path.
    Path,
    /// In the query parameter `filter` (SCIM).
    Filter,
    /// In another query parameter.
    Query,
}

fn check(path: &str, query: Option<&str>) -> Option<Unstorable> {
    let path_bytes: Vec<u8> = percent_decode(path.as_bytes()).collect();
    if path_bytes.iter().any(|&b| b < 0x20 || b == 0x7f) {
        return Some(Unstorable::Path);
    }
    for pair in query?.split('&') {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        let has_nul = |raw: &str| percent_decode(raw.as_bytes()).any(|b| b == 0);
        if has_nul(value) || has_nul(name) {
            let name: Vec<u8> = percent_decode(name.as_bytes()).collect();
            return Some(if name == b"filter" {
                Unstorable::Filter
            } else {
                Unstorable::Query
            });
        }
    }
    None
}

pub(crate) async fn refuse_unstorable(request: Request, next: Next) -> Response {
    let uri = request.uri();
    let Some(problem) = check(uri.path(), uri.query()) else {
        return next.run(request).await;
    };
    let path = uri.path();
    let message = match problem {
        Unstorable::Path => "the path holds a control character",
        Unstorable::Filter | Unstorable::Query => "the query string holds a NUL character",
    };
    if path.starts_with("/admin/") {
        let error = match problem {
            Unstorable::Filter => ScimError::invalid_filter(message),
            _ => ScimError::invalid_value(message),
        };
        crate::routes::admin::render::scim_error(&error)
    } else if path == "/console" || path.starts_with("/console/") {
        crate::console::view::plain(
            StatusCode::BAD_REQUEST,
            "The address holds a character that cannot be used here.",
        )
    } else {
        crate::error::OAuthResponse {
            error: OAuthError::invalid_request(message),
            realm: "latchkey",
        }
        .into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_in_paths_and_nul_in_queries_are_found() {
        assert_eq!(check("/admin/v1/Users/abc", Some("filter=x")), None);
        assert_eq!(check("/admin/v1/Users/a%00b", None), Some(Unstorable::Path));
        assert_eq!(check("/console/users/a%0Ab", None), Some(Unstorable::Path));
        assert_eq!(
            check(
                "/admin/v1/Users",
                Some("count=2&filter=userName%20eq%20%22a%00%22")
            ),
            Some(Unstorable::Filter)
        );
        assert_eq!(
            check("/console/users", Some("q=%00")),
            Some(Unstorable::Query)
        );
        // A newline in a search is odd but storable; a space or `+` is fine.
        assert_eq!(check("/console/users", Some("q=a%0Ab+c")), None);
        assert_eq!(check("/console/users", None), None);
    }
}
