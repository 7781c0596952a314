//! RFC 6749 §5.2 errors. Each carries a description that is safe to show
//! the client and, apart from it, a detail for the operator's log only.

use crate::store::StoreError;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OAuthErrorKind {
    InvalidRequest,
    /// `basic_attempted`: the client tried HTTP Basic, so the answer is 401
    /// with `WWW-Authenticate: Basic`.
    InvalidClient {
        basic_attempted: bool,
    },
    InvalidGrant,
    UnauthorizedClient,
    UnsupportedGrantType,
    InvalidScope,
    /// RFC 7009 §2.2.1.
    UnsupportedTokenType,
    /// Storage or another internal failure (500, `server_error`).
    ServerError,
    /// Overloaded or the database is down (503, `temporarily_unavailable`).
    TemporarilyUnavailable {
        retry_after_secs: u32,
    },
    /// Over a rate limit (429; RFC 6749 has no code for it, so
    /// `temporarily_unavailable`).
    RateLimited {
        retry_after_secs: u32,
    },
}

impl OAuthErrorKind {
    pub fn code(self) -> &'static str {
        match self {
            OAuthErrorKind::InvalidRequest => "invalid_request",
            OAuthErrorKind::InvalidClient { .. } => "invalid_client",
            OAuthErrorKind::InvalidGrant => "invalid_grant",
            OAuthErrorKind::UnauthorizedClient => "unauthorized_client",
            OAuthErrorKind::UnsupportedGrantType => "unsupported_grant_type",
            OAuthErrorKind::InvalidScope => "invalid_scope",
            OAuthErrorKind::UnsupportedTokenType => "unsupported_token_type",
            OAuthErrorKind::ServerError => "server_error",
            OAuthErrorKind::TemporarilyUnavailable { .. } | OAuthErrorKind::RateLimited { .. } => {
                "temporarily_unavailable"
            }
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OAuthError {
    pub kind: OAuthErrorKind,
    /// Shown to the client. Never names which of user/password was wrong.
    pub description: String,
    /// For the log only. Never holds a secret.
    pub detail: Option<String>,
    /// A sign-in refused by the brute-force throttle, not for its password:
    /// the client sees the same `invalid_grant`; the operator's metrics and
    /// log tell them apart.
    pub throttled: bool,
}

impl OAuthError {
    pub fn new(kind: OAuthErrorKind, description: impl Into<String>) -> Self {
        OAuthError {
            kind,
            description: description.into(),
            detail: None,
            throttled: false,
        }
    }

    pub fn with_detail(mut self, detail: impl Into<String>) -> Self {
        self.detail = Some(detail.into());
        self
    }

    pub fn invalid_request(description: impl Into<String>) -> Self {
        Self::new(OAuthErrorKind::InvalidRequest, description)
    }

    pub fn invalid_client(basic_attempted: bool, description: impl Into<String>) -> Self {
        Self::new(
            OAuthErrorKind::InvalidClient { basic_attempted },
            description,
        )
    }

    /// The one answer for a wrong password, an unknown user, an inactive
    /// user and a locked user: callers cannot tell them apart.
    pub fn bad_credentials() -> Self {
        Self::new(OAuthErrorKind::InvalidGrant, "invalid username or password")
    }

    /// `bad_credentials`, marked as the throttle's doing.
    pub fn throttled(reason: &str) -> Self {
        let mut err = Self::bad_credentials().with_detail(reason);
        err.throttled = true;
        err
    }

    /// The outcome of a token request that failed with this error, as the
    /// operator's metrics name it.
    pub fn outcome(&self) -> &'static str {
        match self.kind {
            _ if self.throttled => "throttled",
            OAuthErrorKind::RateLimited { .. } => "rate_limited",
            kind => kind.code(),
        }
    }

    pub fn invalid_grant(description: impl Into<String>) -> Self {
        Self::new(OAuthErrorKind::InvalidGrant, description)
    }

    pub fn unauthorized_client(description: impl Into<String>) -> Self {
        Self::new(OAuthErrorKind::UnauthorizedClient, description)
    }

    pub fn unsupported_grant_type(description: impl Into<String>) -> Self {
        Self::new(OAuthErrorKind::UnsupportedGrantType, description)
    }

    pub fn invalid_scope(description: impl Into<String>) -> Self {
        Self::new(OAuthErrorKind::InvalidScope, description)
    }

    pub fn server_error(detail: impl Into<String>) -> Self {
        Self::new(
            OAuthErrorKind::ServerError,
            "the server could not complete the request",
        )
        .with_detail(detail)
    }

    pub fn busy(retry_after_secs: u32, detail: impl Into<String>) -> Self {
        Self::new(
            OAuthErrorKind::TemporarilyUnavailable { retry_after_secs },
            "the server is busy; retry later",
        )
        .with_detail(detail)
    }
}

impl std::fmt::Display for OAuthError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.kind.code(), self.description)?;
        if let Some(detail) = &self.detail {
            write!(f, " ({detail})")?;
        }
        Ok(())
    }
}

impl std::error::Error for OAuthError {}

impl From<StoreError> for OAuthError {
    /// A storage failure is never an `invalid_grant`: the client did
    /// nothing wrong.
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::Unavailable(detail) => OAuthError::busy(5, detail),
            other => OAuthError::server_error(other.to_string()),
        }
    }
}
