//! Why a directory operation was refused, in the directory's own terms.
//! Each door maps these to its wire: SCIM errors (RFC 7644 §3.12) in the
//! admin API, messages beside form fields in the console, exit messages
//! at the command line.

use crate::admin::BearerError;
use crate::store::StoreError;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DirectoryError {
    /// The actor may not (RFC 6750 `insufficient_scope` on the API).
    #[error("not allowed")]
    Denied(BearerError),
    #[error("{0}")]
    NotFound(String),
    /// A value is wrong; `field` names the attribute (SCIM's name), and
    /// `detail` is the whole message, which starts with it.
    #[error("{detail}")]
    Invalid { field: &'static str, detail: String },
    /// An attribute the actor may not change (SCIM `mutability`).
    #[error("{0}")]
    Immutable(String),
    /// The value is taken by another resource (SCIM `uniqueness`).
    #[error("{0}")]
    Taken(String),
    /// The operation contradicts the resource's state ("a user cannot
    /// delete themselves").
    #[error("{0}")]
    Conflict(String),
    /// The resource changed since the version the caller named.
    #[error("the resource changed since that version")]
    VersionMismatch,
    #[error("{0}")]
    Unavailable(String),
    #[error("{0}")]
    Internal(String),
}

pub type DirectoryResult<T> = Result<T, DirectoryError>;

impl DirectoryError {
    pub fn invalid(field: &'static str, detail: impl Into<String>) -> Self {
        DirectoryError::Invalid {
            field,
            detail: detail.into(),
        }
    }
}

impl From<BearerError> for DirectoryError {
    fn from(e: BearerError) -> Self {
        DirectoryError::Denied(e)
    }
}

impl From<StoreError> for DirectoryError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound => DirectoryError::NotFound("no such resource".into()),
            StoreError::Conflict(detail) => DirectoryError::Taken(detail),
            StoreError::VersionMismatch => DirectoryError::VersionMismatch,
            StoreError::Unavailable(_) => {
                DirectoryError::Unavailable("the database is unavailable; retry shortly".into())
            }
            StoreError::Other(detail) => {
                tracing::error!(error = detail.as_str(), "storage failure in the directory");
                DirectoryError::Internal("internal error".into())
            }
        }
    }
}
