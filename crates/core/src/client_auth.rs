//! Client authentication at the token endpoint (RFC 6749 §2.3): who is
//! calling, and may it call. The HTTP layer extracts the credentials; this
//! module decides.

use std::fmt;

use crate::error::OAuthError;
use crate::model::{App, AppType};
use crate::secrets::SecretHasher;
use crate::store::AppRepo;

/// A client secret in transit. Never printed.
#[derive(Clone)]
pub struct ClientSecret(String);

impl ClientSecret {
    pub fn new(value: impl Into<String>) -> Self {
        ClientSecret(value.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for ClientSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ClientSecret(***)")
    }
}

/// The credentials a request presented: exactly one method.
#[derive(Debug, Clone)]
pub enum ClientCredentials {
    /// `client_secret_basic`.
    Basic {
        client_id: String,
        secret: ClientSecret,
    },
    /// `client_secret_post`.
    Post {
        client_id: String,
        secret: ClientSecret,
    },
    /// `none`: a public client naming itself.
    None { client_id: String },
}

impl ClientCredentials {
    pub fn client_id(&self) -> &str {
        match self {
            ClientCredentials::Basic { client_id, .. }
            | ClientCredentials::Post { client_id, .. }
            | ClientCredentials::None { client_id } => client_id,
        }
    }

    pub fn method(&self) -> &'static str {
        match self {
            ClientCredentials::Basic { .. } => "client_secret_basic",
            ClientCredentials::Post { .. } => "client_secret_post",
            ClientCredentials::None { .. } => "none",
        }
    }

    fn is_basic(&self) -> bool {
        matches!(self, ClientCredentials::Basic { .. })
    }
}

/// A per-client request budget, charged only once the client has proved
/// who it is (charging the claimed client_id would let anyone spend a
/// real client's budget).
pub trait ClientRateLimiter: Send + Sync {
    /// `Err(seconds to wait)` when the client is over its budget.
    fn charge(&self, client_id: &str) -> Result<(), u64>;
}

/// Authenticates the client, then charges its budget.
pub async fn authenticate_within_budget(
    apps: &dyn AppRepo,
    secrets: &SecretHasher,
    credentials: &ClientCredentials,
    budget: Option<&dyn ClientRateLimiter>,
) -> Result<App, OAuthError> {
    let app = authenticate(apps, secrets, credentials).await?;
    if let Some(budget) = budget {
        budget.charge(&app.client_id).map_err(|secs| {
            OAuthError::new(
                crate::error::OAuthErrorKind::RateLimited {
                    retry_after_secs: secs.min(u64::from(u32::MAX)) as u32,
                },
                format!("too many requests; retry after {secs} s"),
            )
        })?;
    }
    Ok(app)
}

/// Authenticates the client. Every failure is `invalid_client`; the
/// description helps the developer without saying whether the client
/// exists.
pub async fn authenticate(
    apps: &dyn AppRepo,
    secrets: &SecretHasher,
    credentials: &ClientCredentials,
) -> Result<App, OAuthError> {
    let basic = credentials.is_basic();
    let failed = || OAuthError::invalid_client(basic, "client authentication failed");
    let app = apps.find_by_client_id(credentials.client_id()).await?;
    match credentials {
        ClientCredentials::Basic { secret, .. } | ClientCredentials::Post { secret, .. } => {
            // Hash even for an unknown client so both cost the same.
            let matches = match app.as_ref().and_then(|a| a.secret_hash.as_deref()) {
                Some(stored) => secrets.verify(secret.expose(), stored),
                None => {
                    let _ = secrets.hash(secret.expose());
                    false
                }
            };
            match app {
                Some(app) if app.app_type == AppType::Public => Err(OAuthError::invalid_client(
                    basic,
                    "a public client must not present a client secret",
                )
                .with_detail(format!("client_id={}", app.client_id))),
                Some(app) if matches => Ok(app),
                Some(app) => {
                    Err(failed()
                        .with_detail(format!("wrong secret for client_id={}", app.client_id)))
                }
                None => Err(failed().with_detail("unknown client_id")),
            }
        }
        ClientCredentials::None { .. } => match app {
            Some(app) if app.app_type == AppType::Public => Ok(app),
            Some(app) => Err(OAuthError::invalid_client(
                false,
                "client authentication is required for this client",
            )
            .with_detail(format!(
                "confidential client_id={} sent no credentials",
                app.client_id
            ))),
            None => Err(failed().with_detail("unknown client_id")),
        },
    }
}
