//! From core errors to HTTP answers: one table, one place.

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use latchkey_core::{OAuthError, OAuthErrorKind};
use latchkey_proto::OAuthErrorBody;

/// Headers every token endpoint answer carries (RFC 6749 §5.1, §5.2).
pub(crate) fn no_store(headers: &mut HeaderMap) {
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
}

pub(crate) fn status_of(kind: OAuthErrorKind) -> StatusCode {
    match kind {
        OAuthErrorKind::InvalidClient { .. } => StatusCode::UNAUTHORIZED,
        OAuthErrorKind::ServerError => StatusCode::INTERNAL_SERVER_ERROR,
        OAuthErrorKind::TemporarilyUnavailable { .. } => StatusCode::SERVICE_UNAVAILABLE,
        OAuthErrorKind::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
        OAuthErrorKind::InvalidRequest
        | OAuthErrorKind::InvalidGrant
        | OAuthErrorKind::UnauthorizedClient
        | OAuthErrorKind::UnsupportedGrantType
        | OAuthErrorKind::InvalidScope
        | OAuthErrorKind::UnsupportedTokenType => StatusCode::BAD_REQUEST,
    }
}

/// An OAuth error on its way out, with the realm for `WWW-Authenticate`.
pub(crate) struct OAuthResponse<'a> {
    pub error: OAuthError,
    pub realm: &'a str,
}

impl IntoResponse for OAuthResponse<'_> {
    fn into_response(self) -> Response {
        let OAuthResponse { error, realm } = self;
        let status = status_of(error.kind);
        if status.is_server_error() {
            tracing::error!(
                error = error.kind.code(),
                detail = error.detail.as_deref().unwrap_or(""),
                "token request failed"
            );
        } else {
            tracing::info!(
                error = error.kind.code(),
                detail = error.detail.as_deref().unwrap_or(""),
                "token request refused"
            );
        }
        let body = OAuthErrorBody {
            error: error.kind.code().to_owned(),
            error_description: Some(error.description),
        };
        let mut response = (status, axum::Json(body)).into_response();
        let headers = response.headers_mut();
        no_store(headers);
        match error.kind {
            OAuthErrorKind::InvalidClient {
                basic_attempted: true,
            } => {
                let value = format!(
                    "Basic realm=\"{}\", charset=\"UTF-8\"",
                    realm.replace('"', "")
                );
                if let Ok(value) = HeaderValue::from_str(&value) {
                    headers.insert(header::WWW_AUTHENTICATE, value);
                }
            }
            OAuthErrorKind::TemporarilyUnavailable { retry_after_secs }
            | OAuthErrorKind::RateLimited { retry_after_secs } => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from(retry_after_secs));
            }
            _ => {}
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every variant, rendered: status, code, and the headers it must carry.
    #[test]
    fn every_error_renders_per_rfc_6749() {
        let table = [
            (OAuthErrorKind::InvalidRequest, 400, "invalid_request", None),
            (
                OAuthErrorKind::InvalidClient {
                    basic_attempted: true,
                },
                401,
                "invalid_client",
                Some(header::WWW_AUTHENTICATE),
            ),
            (
                OAuthErrorKind::InvalidClient {
                    basic_attempted: false,
                },
                401,
                "invalid_client",
                None,
            ),
            (OAuthErrorKind::InvalidGrant, 400, "invalid_grant", None),
            (
                OAuthErrorKind::UnauthorizedClient,
                400,
                "unauthorized_client",
                None,
            ),
            (
                OAuthErrorKind::UnsupportedGrantType,
                400,
                "unsupported_grant_type",
                None,
            ),
            (OAuthErrorKind::InvalidScope, 400, "invalid_scope", None),
            (
                OAuthErrorKind::UnsupportedTokenType,
                400,
                "unsupported_token_type",
                None,
            ),
            (OAuthErrorKind::ServerError, 500, "server_error", None),
            (
                OAuthErrorKind::RateLimited {
                    retry_after_secs: 2,
                },
                429,
                "temporarily_unavailable",
                Some(header::RETRY_AFTER),
            ),
            (
                OAuthErrorKind::TemporarilyUnavailable {
                    retry_after_secs: 3,
                },
                503,
                "temporarily_unavailable",
                Some(header::RETRY_AFTER),
            ),
        ];
        for (kind, status, code, extra) in table {
            let response = OAuthResponse {
                error: OAuthError::new(kind, "d"),
                realm: "http://x",
            }
            .into_response();
            assert_eq!(response.status().as_u16(), status, "{code}");
            assert_eq!(
                response.headers()[header::CACHE_CONTROL],
                "no-store",
                "{code}"
            );
            assert_eq!(response.headers()[header::PRAGMA], "no-cache", "{code}");
            assert_eq!(
                response.headers()[header::CONTENT_TYPE],
                "application/json",
                "{code}"
            );
            assert_eq!(kind.code(), code);
            match extra {
                Some(h) => assert!(response.headers().contains_key(&h), "{code} lacks {h}"),
                None => {
                    assert!(
                        !response.headers().contains_key(header::WWW_AUTHENTICATE),
                        "{code}"
                    );
                    assert!(
                        !response.headers().contains_key(header::RETRY_AFTER),
                        "{code}"
                    );
                }
            }
        }
    }
}
