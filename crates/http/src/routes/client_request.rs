//! What every client-authenticated endpoint (token, introspect, revoke)
//! does first: read the body within its limit, check it is a form, parse
//! it strictly, and take the client credentials out of it.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use latchkey_core::OAuthError;
use latchkey_core::client_auth::ClientCredentials;
use latchkey_core::grant::TokenParams;

use crate::client_credentials;
use crate::error::{OAuthResponse, no_store};
use crate::form;

/// A request that could not be read as an OAuth client request.
pub(crate) enum Refused {
    TooLarge,
    /// Over a rate limit: retry after this many seconds.
    RateLimited(u64),
    OAuth(OAuthError),
}

impl From<OAuthError> for Refused {
    fn from(e: OAuthError) -> Self {
        Refused::OAuth(e)
    }
}

impl Refused {
    pub(crate) fn into_response(self, realm: &str) -> Response {
        match self {
            Refused::TooLarge => {
                let error = latchkey_proto::OAuthErrorBody {
                    error: "invalid_request".to_owned(),
                    error_description: Some("the request body is too large".to_owned()),
                };
                let mut response =
                    (StatusCode::PAYLOAD_TOO_LARGE, axum::Json(error)).into_response();
                no_store(response.headers_mut());
                response
            }
            Refused::RateLimited(retry_after) => {
                tracing::info!(retry_after, "token request rate limited");
                let error = latchkey_proto::OAuthErrorBody {
                    error: "temporarily_unavailable".to_owned(),
                    error_description: Some(format!(
                        "too many requests; retry after {retry_after} s"
                    )),
                };
                let mut response =
                    (StatusCode::TOO_MANY_REQUESTS, axum::Json(error)).into_response();
                no_store(response.headers_mut());
                response.headers_mut().insert(
                    header::RETRY_AFTER,
                    axum::http::HeaderValue::from(retry_after),
                );
                response
            }
            Refused::OAuth(error) => OAuthResponse { error, realm }.into_response(),
        }
    }
}

/// Names the client in the request's log line: the `client_id` it claims
/// (not secret; whether it authenticated shows in the status).
pub(crate) fn log_client(credentials: &ClientCredentials) {
    if let Some(client_id) = credentials.claimed_client_id() {
        tracing::Span::current().record("client_id", client_id);
    }
}

/// `read`, behind the per-IP rate limit (client secrets are checked with a
/// fast hash: unlimited, they could be guessed at network speed). The
/// per-client limit is charged by the services after authentication.
pub(crate) fn read_limited(
    state: &crate::state::AppState,
    peer: std::net::SocketAddr,
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<(ClientCredentials, TokenParams), Refused> {
    let ip = crate::client_ip::client_ip(
        peer,
        headers,
        &state.trusted_proxies,
        state.forwarded_header,
    );
    state
        .rate_limits
        .check_ip(ip)
        .map_err(Refused::RateLimited)?;
    let (credentials, params) = read(headers, body)?;
    log_client(&credentials);
    Ok((credentials, params))
}

pub(crate) fn read(
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<(ClientCredentials, TokenParams), Refused> {
    let body = match body {
        Ok(body) => body,
        Err(rejection) if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            return Err(Refused::TooLarge);
        }
        Err(rejection) => {
            return Err(
                OAuthError::invalid_request("the request body could not be read")
                    .with_detail(rejection.body_text())
                    .into(),
            );
        }
    };
    form::check_content_type(
        headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok()),
    )?;
    let mut params = form::parse(&body)?;
    let credentials = client_credentials::extract(headers, &mut params)?;
    Ok((credentials, TokenParams::new(params)))
}
