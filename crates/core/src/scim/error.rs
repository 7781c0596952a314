//! SCIM errors (RFC 7644 §3.12): an HTTP status, a `scimType` where the
//! RFC defines one, and a detail safe to show the client.

use crate::store::StoreError;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{status} {scim_type:?}: {detail}")]
pub struct ScimError {
    pub status: u16,
    pub scim_type: Option<&'static str>,
    pub detail: String,
}

impl ScimError {
    pub fn new(status: u16, scim_type: Option<&'static str>, detail: impl Into<String>) -> Self {
        ScimError {
            status,
            scim_type,
            detail: detail.into(),
        }
    }
    pub fn invalid_filter(detail: impl Into<String>) -> Self {
        Self::new(400, Some("invalidFilter"), detail)
    }
    pub fn invalid_path(detail: impl Into<String>) -> Self {
        Self::new(400, Some("invalidPath"), detail)
    }
    pub fn invalid_value(detail: impl Into<String>) -> Self {
        Self::new(400, Some("invalidValue"), detail)
    }
    pub fn invalid_syntax(detail: impl Into<String>) -> Self {
        Self::new(400, Some("invalidSyntax"), detail)
    }
    pub fn no_target(detail: impl Into<String>) -> Self {
        Self::new(400, Some("noTarget"), detail)
    }
    pub fn mutability(detail: impl Into<String>) -> Self {
        Self::new(400, Some("mutability"), detail)
    }
    pub fn uniqueness(detail: impl Into<String>) -> Self {
        Self::new(409, Some("uniqueness"), detail)
    }
    pub fn conflict(detail: impl Into<String>) -> Self {
        Self::new(409, None, detail)
    }
    pub fn not_found(detail: impl Into<String>) -> Self {
        Self::new(404, None, detail)
    }
    pub fn precondition_failed() -> Self {
        Self::new(
            412,
            None,
            "the resource changed since that version (If-Match); read it again",
        )
    }
    pub fn forbidden(detail: impl Into<String>) -> Self {
        Self::new(403, None, detail)
    }
    pub fn server(detail: impl Into<String>) -> Self {
        Self::new(500, None, detail)
    }
    pub fn unavailable(detail: impl Into<String>) -> Self {
        Self::new(503, None, detail)
    }
}

impl From<StoreError> for ScimError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound => ScimError::not_found("no such resource"),
            StoreError::Conflict(detail) => ScimError::uniqueness(detail),
            StoreError::VersionMismatch => ScimError::precondition_failed(),
            StoreError::Unavailable(_) => {
                ScimError::unavailable("the database is unavailable; retry shortly")
            }
            StoreError::Other(detail) => {
                tracing::error!(error = detail.as_str(), "storage failure in the SCIM API");
                ScimError::server("internal error")
            }
        }
    }
}
