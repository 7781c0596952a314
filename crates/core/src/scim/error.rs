//! SCIM errors (RFC 7644 §3.12): what kind of refusal (the HTTP layer
//! gives each kind its status code), a `scimType` where the RFC defines
//! one, and a detail safe to show the client.

use crate::store::StoreError;

/// The kinds of refusal RFC 7644 §3.12 distinguishes by status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScimStatus {
    BadRequest,
    Forbidden,
    NotFound,
    MethodNotAllowed,
    Conflict,
    PreconditionFailed,
    PayloadTooLarge,
    UnsupportedMediaType,
    Internal,
    Unavailable,
}

impl ScimStatus {
    /// A failure of the server, not a refusal of the request.
    pub fn is_failure(self) -> bool {
        matches!(self, ScimStatus::Internal | ScimStatus::Unavailable)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{status:?} {scim_type:?}: {detail}")]
pub struct ScimError {
    pub status: ScimStatus,
    pub scim_type: Option<&'static str>,
    pub detail: String,
}

impl ScimError {
    pub fn new(
        status: ScimStatus,
        scim_type: Option<&'static str>,
        detail: impl Into<String>,
    ) -> Self {
        ScimError {
            status,
            scim_type,
            detail: detail.into(),
        }
    }
    pub fn invalid_filter(detail: impl Into<String>) -> Self {
        Self::new(ScimStatus::BadRequest, Some("invalidFilter"), detail)
    }
    pub fn invalid_path(detail: impl Into<String>) -> Self {
        Self::new(ScimStatus::BadRequest, Some("invalidPath"), detail)
    }
    pub fn invalid_value(detail: impl Into<String>) -> Self {
        Self::new(ScimStatus::BadRequest, Some("invalidValue"), detail)
    }
    pub fn invalid_syntax(detail: impl Into<String>) -> Self {
        Self::new(ScimStatus::BadRequest, Some("invalidSyntax"), detail)
    }
    pub fn no_target(detail: impl Into<String>) -> Self {
        Self::new(ScimStatus::BadRequest, Some("noTarget"), detail)
    }
    pub fn mutability(detail: impl Into<String>) -> Self {
        Self::new(ScimStatus::BadRequest, Some("mutability"), detail)
    }
    pub fn uniqueness(detail: impl Into<String>) -> Self {
        Self::new(ScimStatus::Conflict, Some("uniqueness"), detail)
    }
    pub fn conflict(detail: impl Into<String>) -> Self {
        Self::new(ScimStatus::Conflict, None, detail)
    }
    pub fn not_found(detail: impl Into<String>) -> Self {
        Self::new(ScimStatus::NotFound, None, detail)
    }
    pub fn precondition_failed() -> Self {
        Self::new(
            ScimStatus::PreconditionFailed,
            None,
            "the resource changed since that version (If-Match); read it again",
        )
    }
    pub fn forbidden(detail: impl Into<String>) -> Self {
        Self::new(ScimStatus::Forbidden, None, detail)
    }
    pub fn server(detail: impl Into<String>) -> Self {
        Self::new(ScimStatus::Internal, None, detail)
    }
    pub fn unavailable(detail: impl Into<String>) -> Self {
        Self::new(ScimStatus::Unavailable, None, detail)
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
