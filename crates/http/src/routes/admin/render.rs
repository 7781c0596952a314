//! How admin API answers look on the wire: SCIM bodies as
//! `application/scim+json`, SCIM errors (RFC 7644 §3.12), and RFC 6750
//! bearer challenges.

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use latchkey_core::admin::{AdminError, Answer, BearerError, Outcome};
use latchkey_core::scim::resource::ERROR_SCHEMA;
use latchkey_core::scim::{ScimError, ScimStatus};
use serde_json::{Value, json};

pub(crate) const SCIM_JSON: &str = "application/scim+json";

fn body(status: StatusCode, value: &Value) -> Response {
    let mut response = (status, value.to_string()).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(SCIM_JSON));
    // Directory data is personal: never cached by intermediaries.
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// The status of each outcome and refusal of the admin API: the one
/// place SCIM's kinds meet HTTP (RFC 7644 §3.12).
fn outcome_status(outcome: Outcome) -> StatusCode {
    match outcome {
        Outcome::Read => StatusCode::OK,
        Outcome::Created => StatusCode::CREATED,
        Outcome::Done => StatusCode::NO_CONTENT,
    }
}

pub(crate) fn scim_status(status: ScimStatus) -> StatusCode {
    match status {
        ScimStatus::BadRequest => StatusCode::BAD_REQUEST,
        ScimStatus::Forbidden => StatusCode::FORBIDDEN,
        ScimStatus::NotFound => StatusCode::NOT_FOUND,
        ScimStatus::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
        ScimStatus::Conflict => StatusCode::CONFLICT,
        ScimStatus::PreconditionFailed => StatusCode::PRECONDITION_FAILED,
        ScimStatus::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
        ScimStatus::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
        ScimStatus::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        ScimStatus::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
    }
}

pub(crate) fn answer(answer: Answer) -> Response {
    let status = outcome_status(answer.status);
    let mut response = if status == StatusCode::NO_CONTENT {
        status.into_response()
    } else {
        body(status, &answer.body)
    };
    let headers = response.headers_mut();
    if let Some(etag) = answer.etag.and_then(|e| HeaderValue::from_str(&e).ok()) {
        headers.insert(header::ETAG, etag);
    }
    if status == StatusCode::CREATED
        && let Some(location) = answer.location.and_then(|l| HeaderValue::from_str(&l).ok())
    {
        headers.insert(header::LOCATION, location);
    }
    response
}

pub(crate) fn scim_error(error: &ScimError) -> Response {
    let status = scim_status(error.status);
    if error.status.is_failure() {
        tracing::warn!(
            status = status.as_u16(),
            detail = error.detail.as_str(),
            "admin API failure"
        );
    } else {
        tracing::info!(status = status.as_u16(), scim_type = ?error.scim_type, detail = error.detail.as_str(), "admin request refused");
    }
    let mut value = json!({
        "schemas": [ERROR_SCHEMA],
        "status": status.as_u16().to_string(),
        "detail": error.detail,
    });
    if let Some(scim_type) = error.scim_type {
        value["scimType"] = json!(scim_type);
    }
    let mut response = body(status, &value);
    if status == StatusCode::SERVICE_UNAVAILABLE {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
    }
    response
}

fn quoted(text: &str) -> String {
    text.replace(['"', '\\'], "'")
}

/// RFC 6750 §3: the status, the `WWW-Authenticate` challenge and a
/// description of a refused bearer request (`None`: the store failed).
pub(crate) fn challenge_of(
    error: &BearerError,
    realm: &str,
) -> Option<(StatusCode, String, &'static str, String)> {
    let realm = quoted(realm);
    Some(match error {
        BearerError::Missing => (
            StatusCode::UNAUTHORIZED,
            format!("Bearer realm=\"{realm}\""),
            "invalid_request",
            "an access token is required: Authorization: Bearer <token>".to_owned(),
        ),
        BearerError::Malformed(detail) => (
            StatusCode::BAD_REQUEST,
            format!(
                "Bearer realm=\"{realm}\", error=\"invalid_request\", error_description=\"{}\"",
                quoted(detail)
            ),
            "invalid_request",
            detail.clone(),
        ),
        BearerError::Invalid(detail) => (
            StatusCode::UNAUTHORIZED,
            format!(
                "Bearer realm=\"{realm}\", error=\"invalid_token\", error_description=\"{}\"",
                quoted(detail)
            ),
            "invalid_token",
            detail.clone(),
        ),
        BearerError::Insufficient { scope, detail } => (
            StatusCode::FORBIDDEN,
            format!(
                "Bearer realm=\"{realm}\", error=\"insufficient_scope\", scope=\"{scope}\", error_description=\"{}\"",
                quoted(detail)
            ),
            "insufficient_scope",
            detail.clone(),
        ),
        BearerError::Unavailable => return None,
    })
}

/// A refused bearer request with a SCIM error body, for SCIM clients.
pub(crate) fn bearer_error(error: &BearerError, realm: &str) -> Response {
    let Some((status, challenge, _, detail)) = challenge_of(error, realm) else {
        return scim_error(&ScimError::unavailable(
            "the database is unavailable; retry shortly",
        ));
    };
    tracing::info!(
        status = status.as_u16(),
        detail = detail.as_str(),
        "bearer request refused"
    );
    let mut response = body(
        status,
        &json!({"schemas": [ERROR_SCHEMA], "status": status.as_u16().to_string(), "detail": detail}),
    );
    if let Ok(value) = HeaderValue::from_str(&challenge) {
        response
            .headers_mut()
            .insert(header::WWW_AUTHENTICATE, value);
    }
    response
}

pub(crate) fn admin_error(error: &AdminError, realm: &str) -> Response {
    match error {
        AdminError::Denied(e) => bearer_error(e, realm),
        AdminError::Scim(e) => scim_error(e),
    }
}

/// The bearer token of a request (RFC 6750 §2.1: the header only).
pub(crate) fn bearer_token(
    headers: &HeaderMap,
    query: Option<&str>,
) -> Result<String, BearerError> {
    let mut values = headers.get_all(header::AUTHORIZATION).iter();
    let first = values.next();
    if values.next().is_some() {
        return Err(BearerError::Malformed(
            "more than one Authorization header".into(),
        ));
    }
    let Some(value) = first else {
        if query.is_some_and(|q| q.split('&').any(|p| p.starts_with("access_token="))) {
            return Err(BearerError::Malformed(
                "send the access token in the Authorization header; tokens in the query string are not accepted".into(),
            ));
        }
        return Err(BearerError::Missing);
    };
    let value = value
        .to_str()
        .map_err(|_| BearerError::Invalid("the Authorization header is not ASCII".into()))?;
    match value.trim().split_once(' ') {
        Some((scheme, token))
            if scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty() =>
        {
            Ok(token.trim().to_owned())
        }
        Some((scheme, _)) if scheme.eq_ignore_ascii_case("bearer") => {
            Err(BearerError::Invalid("the bearer token is empty".into()))
        }
        // Another scheme (Basic…): as if no credentials were sent.
        _ => Err(BearerError::Missing),
    }
}
