//! Client authentication at the token, introspection and revocation
//! endpoints (RFC 6749 §2.3, RFC 7523): who is calling, and may it call.
//! The HTTP layer extracts the credentials; this module decides.

mod assertion;
#[cfg(test)]
mod assertion_proptest;
mod keys;
#[cfg(test)]
mod keys_proptest;
mod rotation;

use std::fmt;
use std::sync::Arc;

pub use assertion::{AssertionPolicy, ClientAssertion, JWT_BEARER};
pub use keys::{ClientKey, ClientKeys, KeyHint, KeyKind};
pub use rotation::{MAX_GRACE_SECS, RotateError, rotate_secret};

use crate::clock::Clock;
use crate::error::{OAuthError, OAuthErrorKind};
use crate::model::{App, AppType};
use crate::secrets::{MasterKey, SecretHasher};
use crate::store::{AppRepo, AssertionReplayRepo};

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
    /// `private_key_jwt` or `client_secret_jwt` (which one depends on the
    /// assertion's `alg`). `client_id` is optional in the body.
    Assertion {
        client_id: Option<String>,
        assertion: ClientAssertion,
    },
    /// `none`: a public client naming itself.
    None { client_id: String },
}

impl ClientCredentials {
    pub fn method(&self) -> &'static str {
        match self {
            ClientCredentials::Basic { .. } => "client_secret_basic",
            ClientCredentials::Post { .. } => "client_secret_post",
            ClientCredentials::Assertion { .. } => "client_assertion",
            ClientCredentials::None { .. } => "none",
        }
    }

    /// The client_id the request names, before it is authenticated (an
    /// assertion without a body `client_id` names it only inside the JWT).
    pub fn claimed_client_id(&self) -> Option<&str> {
        match self {
            ClientCredentials::Basic { client_id, .. }
            | ClientCredentials::Post { client_id, .. }
            | ClientCredentials::None { client_id } => Some(client_id),
            ClientCredentials::Assertion { client_id, .. } => client_id.as_deref(),
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
    /// The per-IP budget, for a request whose IP was not charged on
    /// arrival (see `RequestMeta::ip_limit_deferred`).
    fn charge_ip(&self, _ip: std::net::IpAddr) -> Result<(), u64> {
        Ok(())
    }
}

/// Over a rate limit: 429 with `Retry-After`.
pub fn rate_limited(secs: u64) -> OAuthError {
    OAuthError::new(
        OAuthErrorKind::RateLimited {
            retry_after_secs: secs.min(u64::from(u32::MAX)) as u32,
        },
        format!("too many requests; retry after {secs} s"),
    )
}

/// Longest client_id, in bytes (as the domain file and the admin API
/// allow).
pub const MAX_CLIENT_ID_BYTES: usize = 256;

/// Whether `client_id` could name an app at all: 1 to 256 bytes, no
/// control character. Anything else is an unknown client, answered
/// without asking the database (which may not even hold the text: a NUL
/// is not PostgreSQL text).
pub fn could_be_client_id(client_id: &str) -> bool {
    !client_id.is_empty()
        && client_id.len() <= MAX_CLIENT_ID_BYTES
        && !client_id.chars().any(char::is_control)
}

/// The one description of a refused client whose credentials prove
/// nothing: the same whether the client_id is unknown, deactivated,
/// public or confidential (the detail, for the log only, says which).
const FAILED: &str = "client authentication failed";

/// Decides who a client is, for every client-authenticated endpoint.
pub struct ClientAuthenticator {
    pub apps: Arc<dyn AppRepo>,
    pub replay: Arc<dyn AssertionReplayRepo>,
    pub secrets: SecretHasher,
    /// Opens the sealed secrets of `client_secret_jwt` apps.
    pub master: MasterKey,
    /// What an assertion's `aud` may name: the issuer first, then the
    /// token endpoint, then the other endpoints that accept assertions.
    pub audiences: Vec<String>,
    pub policy: AssertionPolicy,
    pub clock: Arc<dyn Clock>,
    /// Per-client request budget, charged after authentication.
    pub budget: Option<Arc<dyn ClientRateLimiter>>,
}

impl ClientAuthenticator {
    /// The audiences an issuer's assertions may name.
    pub fn audiences_for(issuer: &str) -> Vec<String> {
        let base = issuer.trim_end_matches('/');
        vec![
            issuer.to_owned(),
            format!("{base}/oauth2/v1/token"),
            format!("{base}/oauth2/v1/introspect"),
            format!("{base}/oauth2/v1/revoke"),
        ]
    }

    /// The app a presented client_id names: the one place authentication
    /// reads apps.
    async fn find_app(&self, client_id: &str) -> Result<Option<App>, OAuthError> {
        if !could_be_client_id(client_id) {
            return Ok(None);
        }
        Ok(self.apps.find_by_client_id(client_id).await?)
    }

    /// Authenticates the client, then charges its budget. Every failure
    /// is `invalid_client`; the description helps the developer without
    /// saying whether the client exists, and the detail tells the operator.
    pub async fn authenticate(&self, credentials: &ClientCredentials) -> Result<App, OAuthError> {
        let app = match credentials {
            ClientCredentials::Basic { client_id, secret }
            | ClientCredentials::Post { client_id, secret } => {
                self.by_secret(client_id, secret, credentials.is_basic())
                    .await?
            }
            ClientCredentials::Assertion {
                client_id,
                assertion,
            } => self.by_assertion(client_id.as_deref(), assertion).await?,
            ClientCredentials::None { client_id } => self.public(client_id).await?,
        };
        if let Some(budget) = &self.budget {
            budget.charge(&app.client_id).map_err(rate_limited)?;
        }
        Ok(app)
    }

    async fn by_secret(
        &self,
        client_id: &str,
        secret: &ClientSecret,
        basic: bool,
    ) -> Result<App, OAuthError> {
        let failed = || OAuthError::invalid_client(basic, FAILED);
        let app = self.find_app(client_id).await?;
        let now = self.clock.now();
        // The same work whoever asks: an unknown client (or one without a
        // secret) is checked against a stored hash that matches nothing,
        // and the previous secret is checked even when the current one
        // matched. The cache answers unknown client_ids as fast as known
        // ones (`cache.rs`).
        let unmatched = self.secrets.hash("");
        let stored = app
            .as_ref()
            .and_then(|app| app.secret_hash.as_deref())
            .unwrap_or(&unmatched);
        let current = self.secrets.verify(secret.expose(), stored)
            && app.as_ref().is_some_and(|app| app.secret_hash.is_some());
        let previous = app
            .as_ref()
            .and_then(|app| app.previous_secret_at(now))
            .is_some_and(|p| self.secrets.verify(secret.expose(), &p.hash));
        match app {
            None => Err(failed().with_detail("unknown client_id")),
            Some(app) if !app.active => {
                Err(failed().with_detail(format!("deactivated client_id={}", app.client_id)))
            }
            // The same answer as an unknown client: saying "public" would
            // say the client_id exists.
            Some(app) if app.app_type == AppType::Public => Err(failed().with_detail(format!(
                "public client_id={} presented a client secret",
                app.client_id
            ))),
            Some(app) if current || previous => {
                if previous && !current {
                    tracing::info!(
                        client_id = app.client_id.as_str(),
                        "client authenticated with its previous secret (grace period)"
                    );
                }
                Ok(app)
            }
            Some(app) => {
                Err(failed().with_detail(format!("wrong secret for client_id={}", app.client_id)))
            }
        }
    }

    async fn public(&self, client_id: &str) -> Result<App, OAuthError> {
        let failed = || OAuthError::invalid_client(false, FAILED);
        match self.find_app(client_id).await? {
            Some(app) if !app.active => {
                Err(failed().with_detail(format!("deactivated client_id={}", app.client_id)))
            }
            Some(app) if app.app_type == AppType::Public => Ok(app),
            // The same answer as an unknown client_id (saying that this
            // client needs credentials would say that it exists).
            Some(app) => Err(failed().with_detail(format!(
                "confidential client_id={} sent no credentials",
                app.client_id
            ))),
            None => Err(failed().with_detail("unknown client_id")),
        }
    }

    async fn by_assertion(
        &self,
        body_client_id: Option<&str>,
        assertion: &ClientAssertion,
    ) -> Result<App, OAuthError> {
        let refuse = |message: String, client_id: &str| {
            OAuthError::invalid_client(false, message.clone()).with_detail(format!(
                "client assertion refused for client_id={client_id}: {message}"
            ))
        };
        let unverified = assertion::Unverified::parse(assertion.expose(), &self.policy)
            .map_err(|r| refuse(r.0, body_client_id.unwrap_or("?")))?;
        // RFC 7521 §4.2: client_id is optional; when sent it must be the
        // assertion's subject (checked with the other claims below).
        let Some(client_id) = body_client_id.or(unverified.subject()) else {
            return Err(refuse(
                "the client assertion has no sub naming the client".into(),
                "?",
            ));
        };
        let Some(app) = self.find_app(client_id).await? else {
            return Err(OAuthError::invalid_client(false, FAILED)
                .with_detail("client assertion for an unknown client_id"));
        };
        if !app.active {
            return Err(OAuthError::invalid_client(false, FAILED)
                .with_detail(format!("deactivated client_id={}", app.client_id)));
        }
        if app.app_type == AppType::Public {
            return Err(
                OAuthError::invalid_client(false, FAILED).with_detail(format!(
                    "client assertion refused for public client_id={client_id}"
                )),
            );
        }
        let now = self.clock.now();
        assertion::verify_signature(assertion.expose(), &unverified, &app, &self.master, now)
            .map_err(|r| refuse(r.0, client_id))?;
        let (jti, remember_until) =
            assertion::check_claims(&unverified, client_id, &self.audiences, &self.policy, now)
                .map_err(|r| refuse(r.0, client_id))?;
        if !self
            .replay
            .record_assertion(client_id, &jti, remember_until)
            .await?
        {
            return Err(refuse(
                "the client assertion's jti was already used; sign a new assertion for every request".into(),
                client_id,
            ));
        }
        Ok(app)
    }
}
