//! The request parsers the token, introspection and revocation routes run
//! on untrusted bytes, reachable from the fuzz targets in `fuzz/` (which
//! live outside the workspace). The same functions, in the same order as
//! `routes::client_request`; not an API.

use std::collections::HashMap;

use axum::http::{HeaderMap, HeaderValue, header};
use latchkey_core::OAuthError;
use latchkey_core::client_auth::ClientCredentials;

use crate::{client_credentials, form};

/// The strict form parser (`application/x-www-form-urlencoded`).
pub fn form(body: &[u8]) -> Result<HashMap<String, String>, OAuthError> {
    form::parse(body)
}

/// The form body, then the client credentials of the request: what the
/// routes hand to client authentication. `None` when `authorization` is
/// not a header value at all (hyper refuses such a request before any
/// route runs).
pub fn client_credentials(
    authorization: Option<&[u8]>,
    body: &[u8],
) -> Option<Result<ClientCredentials, OAuthError>> {
    let mut headers = HeaderMap::new();
    if let Some(value) = authorization {
        headers.insert(header::AUTHORIZATION, HeaderValue::from_bytes(value).ok()?);
    }
    Some(
        form::parse(body).and_then(|mut params| client_credentials::extract(&headers, &mut params)),
    )
}
