//! Who is calling the admin API: a bearer token (RFC 6750) verified with
//! our own keys, for our issuer as audience, not revoked, and what it
//! may do (application roles, scopes).

use std::sync::Arc;

use serde_json::Value;

use super::permission::Permission;
use crate::clock::Clock;
use crate::keys::KeyRing;
use crate::model::AppRole;
use crate::scope::MY_SCOPES;
use crate::store::{AppRepo, StoreError, TokenRepo, UserRepo};

/// An authenticated caller of the admin API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// The token's `sub`: a user id, or a client_id for app tokens.
    pub subject: String,
    /// Set for tokens issued to a user (password or refresh grant).
    pub user_id: Option<String>,
    pub client_id: String,
    pub roles: Vec<AppRole>,
    pub scopes: Vec<String>,
}

/// Why a bearer request is refused (RFC 6750 §3.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BearerError {
    /// No credentials: 401 with a bare challenge.
    Missing,
    /// The request itself is malformed (`invalid_request`, 400).
    Malformed(String),
    /// `invalid_token` (401).
    Invalid(String),
    /// `insufficient_scope` (403), naming the scope needed.
    Insufficient { scope: &'static str, detail: String },
    /// The store failed: 503.
    Unavailable,
}

impl From<StoreError> for BearerError {
    fn from(e: StoreError) -> Self {
        tracing::warn!(error = %e, "bearer check could not reach the database");
        BearerError::Unavailable
    }
}

impl Caller {
    pub fn has_scope(&self, scope: &str) -> bool {
        self.scopes.iter().any(|s| s == scope)
    }

    /// Checks the admin scope and that one of the caller's roles grants
    /// `permission`.
    pub fn require(&self, permission: Permission) -> Result<(), BearerError> {
        if !self.has_scope(MY_SCOPES) {
            return Err(BearerError::Insufficient {
                scope: MY_SCOPES,
                detail: format!("the token lacks the {MY_SCOPES} scope"),
            });
        }
        if self.roles.iter().any(|r| permission.granted_to(*r)) {
            return Ok(());
        }
        Err(BearerError::Insufficient {
            scope: MY_SCOPES,
            detail: format!(
                "{} needs one of these application roles: {}",
                permission.describe(),
                permission
                    .roles()
                    .map(|r| r.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        })
    }

    pub fn may(&self, permission: Permission) -> bool {
        self.require(permission).is_ok()
    }

    /// The caller's own user id (`/Me`).
    pub fn user(&self) -> Result<&str, BearerError> {
        self.user_id
            .as_deref()
            .ok_or_else(|| BearerError::Insufficient {
                scope: MY_SCOPES,
                detail: "this endpoint needs a token issued to a user".into(),
            })
    }
}

/// Verifies bearer tokens for the admin API.
pub struct BearerVerifier {
    pub keys: Arc<KeyRing>,
    pub tokens: Arc<dyn TokenRepo>,
    pub apps: Arc<dyn AppRepo>,
    /// For the roles a user holds now: a role revoked after the token was
    /// issued stops working at once, as a lock does.
    pub users: Arc<dyn UserRepo>,
    /// The issuer: both the expected `iss` and the admin API's audience.
    pub issuer: String,
    pub clock: Arc<dyn Clock>,
}

impl BearerVerifier {
    /// Verifies a token for the admin API: its audience must be us.
    pub async fn verify(&self, token: &str) -> Result<Caller, BearerError> {
        self.verify_for(token, true).await
    }

    /// Verifies a token for the UserInfo endpoint, part of the
    /// authorization server itself: any audience will do.
    pub async fn verify_any_audience(&self, token: &str) -> Result<Caller, BearerError> {
        self.verify_for(token, false).await
    }

    async fn verify_for(&self, token: &str, check_audience: bool) -> Result<Caller, BearerError> {
        let claims = self
            .keys
            .verify(token, "at+jwt", &self.issuer, self.clock.now())
            .map_err(|e| BearerError::Invalid(format!("the access token is not valid: {e}")))?;
        let audience_ok = !check_audience
            || match claims.get("aud") {
                Some(Value::String(aud)) => *aud == self.issuer,
                Some(Value::Array(list)) => list.iter().any(|a| a.as_str() == Some(&self.issuer)),
                _ => false,
            };
        if !audience_ok {
            return Err(BearerError::Invalid(
                "the access token is not meant for this API (aud)".into(),
            ));
        }
        let text = |name: &str| claims.get(name).and_then(Value::as_str).map(str::to_owned);
        let subject = text("sub").unwrap_or_default();
        let client_id = text("client_id").unwrap_or_default();
        let jti = text("jti").unwrap_or_default();
        let sid = text("sid");
        if jti.is_empty()
            || self
                .tokens
                .access_token_revoked(&jti, sid.as_deref())
                .await?
        {
            return Err(BearerError::Invalid("the access token was revoked".into()));
        }
        let app = self.apps.find_by_client_id(&client_id).await?;
        // An app token lives only as long as the app instance and the
        // activation that issued it.
        if sid.is_none() && !crate::issuer::app_token_live(app.as_ref(), &claims) {
            return Err(BearerError::Invalid(
                "the access token's client is no longer active".into(),
            ));
        }
        let mut roles: Vec<AppRole> = claims
            .get("roles")
            .and_then(Value::as_array)
            .map(|list| {
                list.iter()
                    .filter_map(Value::as_str)
                    .filter_map(|r| r.parse().ok())
                    .collect()
            })
            .unwrap_or_default();
        // The token's roles count only while they are still held: by the
        // app, and for a user's token by the user (directly or through a
        // group). The token says what was granted at issue; the store
        // says what is left of it now.
        if !roles.is_empty() {
            let app_roles = app.map(|a| a.app_roles).unwrap_or_default();
            roles.retain(|r| app_roles.contains(r));
            if sid.is_some() && !roles.is_empty() {
                let held = self.users.effective_roles(&subject).await?;
                roles.retain(|r| held.contains(r));
            }
        }
        let scopes = text("scope")
            .map(|s| {
                s.split(' ')
                    .filter(|s| !s.is_empty())
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default();
        Ok(Caller {
            user_id: sid.is_some().then(|| subject.clone()),
            subject,
            client_id,
            roles,
            scopes,
        })
    }
}
