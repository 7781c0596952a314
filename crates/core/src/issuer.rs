//! Issues tokens: signs access (and ID) tokens, mints refresh tokens and
//! stores their hashes. Grants decide *whether* to issue; only this module
//! decides *how*.

use std::sync::Arc;

use serde::Serialize;

use crate::error::OAuthError;
use crate::keys::KeyRing;
use crate::model::{App, AppRole, RefreshTokenRecord, Session, User};
use crate::scope::{EMAIL, MY_SCOPES, OFFLINE_ACCESS, OPENID, PROFILE};
use crate::secrets::{random_token, sha256_hex};
use crate::store::TokenRepo;

/// What the grant hands to the issuer.
#[derive(Debug, Clone)]
pub struct Grant<'a> {
    pub app: &'a App,
    pub user: &'a User,
    pub scopes: Vec<String>,
    /// Application roles held by both the user and the app.
    pub roles: Vec<AppRole>,
    pub audiences: Vec<String>,
    pub session_id: String,
    pub auth_time: i64,
}

/// The issued tokens (rendered by the HTTP layer).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssuedTokens {
    pub access_token: String,
    pub expires_in: i64,
    pub scope: String,
    pub refresh_token: Option<String>,
    pub id_token: Option<String>,
}

#[derive(Serialize)]
#[serde(untagged)]
enum Audience<'a> {
    One(&'a str),
    Many(&'a [String]),
}

impl<'a> Audience<'a> {
    fn of(audiences: &'a [String]) -> Self {
        match audiences {
            [one] => Audience::One(one),
            many => Audience::Many(many),
        }
    }
}

/// RFC 9068 access token claims (plus `sid`, `username` and `roles`).
#[derive(Serialize)]
struct AccessClaims<'a> {
    iss: &'a str,
    sub: &'a str,
    aud: Audience<'a>,
    exp: i64,
    iat: i64,
    jti: String,
    client_id: &'a str,
    scope: &'a str,
    username: &'a str,
    auth_time: i64,
    sid: &'a str,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    roles: Vec<&'static str>,
}

/// Access token claims for a client acting on its own behalf
/// (`client_credentials`): no user, no session.
#[derive(Serialize)]
struct ClientAccessClaims<'a> {
    iss: &'a str,
    sub: &'a str,
    aud: Audience<'a>,
    exp: i64,
    iat: i64,
    jti: String,
    client_id: &'a str,
    /// The app instance's immutable id (Oracle's claim name): a token of a
    /// deleted app never works for another app created with its client_id.
    client_guid: &'a str,
    scope: &'a str,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    roles: Vec<&'static str>,
}

/// OpenID Connect ID token claims, when `openid` was granted.
#[derive(Serialize)]
struct IdClaims<'a> {
    iss: &'a str,
    sub: &'a str,
    aud: &'a str,
    exp: i64,
    iat: i64,
    auth_time: i64,
    sid: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    preferred_username: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    given_name: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    family_name: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    email: Option<&'a str>,
}

pub struct TokenIssuer {
    issuer: String,
    keys: Arc<KeyRing>,
    tokens: Arc<dyn TokenRepo>,
    /// Live sessions a user may hold; a new sign-in ends the oldest beyond.
    max_sessions_per_user: Option<u32>,
}

/// How the refresh token of an issue is stored.
pub enum RefreshMode {
    /// A password grant: start the session (and its first refresh token).
    NewSession,
    /// A refresh grant: the store has already rotated to `token`'s
    /// record (`TokenRepo::refresh`); hand it out.
    Rotated { token: String },
}

/// The stored record of a refresh token minted for `app`: it lives the
/// app's refresh token lifetime, never beyond the session's absolute one.
fn refresh_record(
    app: &App,
    token_hash: String,
    session_id: &str,
    user_id: &str,
    scope: String,
    auth_time: i64,
    now: i64,
) -> RefreshTokenRecord {
    RefreshTokenRecord {
        token_hash,
        session_id: session_id.to_owned(),
        app_id: app.id.clone(),
        user_id: user_id.to_owned(),
        scope,
        issued_at: now,
        expires_at: refresh_expiry(app.refresh_token_ttl, app.session_lifetime, auth_time, now),
        rotated_at: None,
        generation: 0,
    }
}

/// When a refresh token minted at `now` expires: after `ttl`, never
/// beyond the session's absolute `session_lifetime`.
pub fn refresh_expiry(ttl: i64, session_lifetime: Option<i64>, auth_time: i64, now: i64) -> i64 {
    match session_lifetime {
        Some(limit) => (now + ttl).min(auth_time + limit),
        None => now + ttl,
    }
}

impl TokenIssuer {
    pub fn new(
        issuer: String,
        keys: Arc<KeyRing>,
        tokens: Arc<dyn TokenRepo>,
        max_sessions_per_user: Option<u32>,
    ) -> Self {
        TokenIssuer {
            issuer,
            keys,
            tokens,
            max_sessions_per_user,
        }
    }

    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// Signs the tokens of `grant` and stores what must be stored. A
    /// new session gets a refresh token when `offline_access` was granted
    /// and the app may use the refresh grant; a rotation hands out its
    /// successor.
    pub async fn issue(
        &self,
        grant: Grant<'_>,
        mode: RefreshMode,
        now: i64,
    ) -> Result<IssuedTokens, OAuthError> {
        let scope = grant.scopes.join(" ");
        let access_token = self.sign_access(&grant, &scope, now)?;
        let id_token = if grant.scopes.iter().any(|s| s == OPENID) {
            Some(self.sign_id(&grant, now)?)
        } else {
            None
        };

        let refresh_token = match mode {
            RefreshMode::Rotated { token } => Some(token),
            RefreshMode::NewSession => {
                let wants_refresh = grant.scopes.iter().any(|s| s == OFFLINE_ACCESS)
                    && grant
                        .app
                        .allows_grant(crate::model::GrantType::RefreshToken);
                let refresh_token = wants_refresh.then(random_token);
                let record = refresh_token.as_ref().map(|token| {
                    refresh_record(
                        grant.app,
                        sha256_hex(token),
                        &grant.session_id,
                        &grant.user.id,
                        scope.clone(),
                        grant.auth_time,
                        now,
                    )
                });
                let session = Session {
                    id: grant.session_id.clone(),
                    user_id: grant.user.id.clone(),
                    app_id: grant.app.id.clone(),
                    auth_time: grant.auth_time,
                    created_at: now,
                    revoked_at: None,
                    generation: 0,
                };
                self.tokens
                    .start_session(&session, record.as_ref(), self.max_sessions_per_user)
                    .await?;
                refresh_token
            }
        };

        Ok(IssuedTokens {
            access_token,
            expires_in: grant.app.access_token_ttl,
            scope,
            refresh_token,
            id_token,
        })
    }

    /// A token in the app's own context: `sub` is the client_id, `roles`
    /// the app's roles (with the admin scope); never a refresh token.
    pub fn issue_for_client(
        &self,
        app: &App,
        scopes: &[String],
        audiences: &[String],
        now: i64,
    ) -> Result<IssuedTokens, OAuthError> {
        let scope = scopes.join(" ");
        let claims = ClientAccessClaims {
            iss: &self.issuer,
            sub: &app.client_id,
            aud: Audience::of(audiences),
            exp: now + app.access_token_ttl,
            iat: now,
            jti: uuid::Uuid::new_v4().to_string(),
            client_id: &app.client_id,
            client_guid: &app.id,
            scope: &scope,
            roles: if scopes.iter().any(|s| s == MY_SCOPES) {
                app.app_roles.iter().map(|r| r.as_str()).collect()
            } else {
                Vec::new()
            },
        };
        let key = self
            .keys
            .active()
            .map_err(|e| OAuthError::server_error(e.to_string()))?;
        let access_token = key
            .sign_jwt("at+jwt", &claims)
            .map_err(|e| OAuthError::server_error(e.to_string()))?;
        Ok(IssuedTokens {
            access_token,
            expires_in: app.access_token_ttl,
            scope,
            refresh_token: None,
            id_token: None,
        })
    }

    fn sign_access(&self, grant: &Grant<'_>, scope: &str, now: i64) -> Result<String, OAuthError> {
        let claims = AccessClaims {
            iss: &self.issuer,
            sub: &grant.user.id,
            aud: Audience::of(&grant.audiences),
            exp: now + grant.app.access_token_ttl,
            iat: now,
            jti: uuid::Uuid::new_v4().to_string(),
            client_id: &grant.app.client_id,
            scope,
            username: &grant.user.username,
            auth_time: grant.auth_time,
            sid: &grant.session_id,
            roles: if grant.scopes.iter().any(|s| s == MY_SCOPES) {
                grant.roles.iter().map(|r| r.as_str()).collect()
            } else {
                Vec::new()
            },
        };
        let key = self
            .keys
            .active()
            .map_err(|e| OAuthError::server_error(e.to_string()))?;
        key.sign_jwt("at+jwt", &claims)
            .map_err(|e| OAuthError::server_error(e.to_string()))
    }

    fn sign_id(&self, grant: &Grant<'_>, now: i64) -> Result<String, OAuthError> {
        let has = |s: &str| grant.scopes.iter().any(|x| x == s);
        let user = grant.user;
        let claims = IdClaims {
            iss: &self.issuer,
            sub: &user.id,
            aud: &grant.app.client_id,
            exp: now + grant.app.access_token_ttl,
            iat: now,
            auth_time: grant.auth_time,
            sid: &grant.session_id,
            preferred_username: has(PROFILE).then_some(user.username.as_str()),
            name: if has(PROFILE) {
                crate::userinfo::full_name(user)
            } else {
                None
            },
            given_name: if has(PROFILE) {
                user.given_name.as_deref()
            } else {
                None
            },
            family_name: if has(PROFILE) {
                user.family_name.as_deref()
            } else {
                None
            },
            email: if has(EMAIL) {
                user.email.as_deref()
            } else {
                None
            },
        };
        let key = self
            .keys
            .active()
            .map_err(|e| OAuthError::server_error(e.to_string()))?;
        key.sign_jwt("JWT", &claims)
            .map_err(|e| OAuthError::server_error(e.to_string()))
    }
}

/// Whether an app's own token (client_credentials: no session) still
/// lives: it dies for good with the app instance that issued it (a new app
/// with the same client_id is another instance) and with any deactivation
/// after it was issued, whatever happens to the app later.
pub fn app_token_live(app: Option<&App>, claims: &serde_json::Value) -> bool {
    let Some(app) = app.filter(|a| a.active) else {
        return false;
    };
    let iat = claims.get("iat").and_then(serde_json::Value::as_i64);
    let Some(iat) = iat else {
        return false;
    };
    let same_instance = match claims
        .get("client_guid")
        .and_then(serde_json::Value::as_str)
    {
        Some(guid) => guid == app.id,
        // Issued before tokens named their instance: it must not be older
        // than the app.
        None => iat >= app.created_at,
    };
    // A token issued in the very second of a deactivation is treated as
    // issued before it: refusing one token too many is the safe side.
    same_instance && app.tokens_revoked_at.is_none_or(|at| iat > at)
}

/// The roles a token carries for the admin scope: those held by both the
/// user and the app (never one because only the other has it).
pub fn shared_roles(user_roles: &[AppRole], app: &App) -> Vec<AppRole> {
    let mut roles: Vec<AppRole> = user_roles
        .iter()
        .copied()
        .filter(|r| app.app_roles.contains(r))
        .collect();
    roles.sort();
    roles.dedup();
    roles
}
