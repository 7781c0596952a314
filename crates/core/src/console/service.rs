//! Sign-in, resuming a session on each request (with the idle and
//! absolute timeouts and the token refresh), and sign-out.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::app::{CONSOLE_CLIENT_ID, CONSOLE_SCOPES};
use super::{ConsoleKeys, ConsolePolicy, ConsoleSessionRecord, ConsoleSessionRepo};
use crate::admin::{BearerError, BearerVerifier, Caller};
use crate::client_auth::{ClientCredentials, ClientSecret};
use crate::clock::Clock;
use crate::error::{OAuthError, OAuthErrorKind};
use crate::grant::{TokenParams, TokenService};
use crate::introspection::IntrospectionService;
use crate::meta::RequestMeta;
use crate::password::Password;
use crate::secrets::{random_token, sha256_hex};
use crate::store::StoreError;

/// Refresh this long before the access token expires, so a page never
/// starts with a token about to die.
const REFRESH_MARGIN_SECS: i64 = 30;
/// A refresh claim older than this belongs to a request that died.
const STALE_CLAIM_SECS: i64 = 30;
/// Activity is written at most this often (a write per page view would
/// only add load).
const TOUCH_EVERY_SECS: i64 = 15;
/// How long a request waits for another one's refresh.
const REFRESH_WAIT: Duration = Duration::from_millis(100);
const REFRESH_WAIT_ROUNDS: u32 = 50;

/// The CSRF purpose of a signed-in session's forms.
const SESSION_CSRF: &str = "session";
/// The CSRF purpose of the sign-in form (before any session exists).
const SIGN_IN_CSRF: &str = "sign-in";

#[derive(Serialize, Deserialize)]
pub(super) struct Tokens {
    pub(super) access: String,
    refresh: String,
}

/// A request's session: who is acting, and the token its forms carry.
#[derive(Debug, Clone)]
pub struct ConsoleSession {
    pub caller: Caller,
    pub csrf_token: String,
}

/// A new sign-in: the cookie value to set, and the session.
#[derive(Debug)]
pub struct SignedIn {
    pub cookie: String,
    pub session: ConsoleSession,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SignInError {
    /// Wrong username or password, unknown, locked, inactive or throttled
    /// user: one answer, as at the token endpoint.
    Rejected,
    /// Overloaded or the database is down; retry later.
    Unavailable,
    /// Anything else (logged).
    Failed,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ResumeError {
    /// No session, or it ended (timeout, sign-out, revocation): sign in.
    Ended,
    /// The database or the token service is unavailable.
    Unavailable,
}

impl From<StoreError> for ResumeError {
    fn from(e: StoreError) -> Self {
        tracing::warn!(error = e.to_string(), "console session store failed");
        ResumeError::Unavailable
    }
}

pub struct ConsoleService {
    pub tokens: Arc<TokenService>,
    pub introspection: Arc<IntrospectionService>,
    pub bearer: Arc<BearerVerifier>,
    pub sessions: Arc<dyn ConsoleSessionRepo>,
    pub clock: Arc<dyn Clock>,
    pub policy: ConsolePolicy,
    pub keys: ConsoleKeys,
}

impl ConsoleService {
    fn credentials(&self) -> ClientCredentials {
        ClientCredentials::Basic {
            client_id: CONSOLE_CLIENT_ID.to_owned(),
            secret: ClientSecret::new(self.keys.client_secret()),
        }
    }

    fn params(pairs: &[(&str, &str)]) -> TokenParams {
        TokenParams::new(
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect::<HashMap<_, _>>(),
        )
    }

    /// The CSRF token of the sign-in form, for the nonce in its cookie.
    pub fn sign_in_csrf(&self, nonce: &str) -> String {
        self.keys.csrf_token(SIGN_IN_CSRF, nonce)
    }

    pub fn check_sign_in_csrf(&self, nonce: &str, given: &str) -> bool {
        self.keys.check_csrf(SIGN_IN_CSRF, nonce, given)
    }

    /// Checks a signed-in form's CSRF token against the session cookie.
    pub fn check_csrf(&self, cookie: &str, given: &str) -> bool {
        self.keys.check_csrf(SESSION_CSRF, cookie, given)
    }

    /// Signs in with the password grant, exactly as the token endpoint
    /// would for the console app (throttle, lockout, audit included).
    pub async fn sign_in(
        &self,
        username: &str,
        password: Password,
        meta: &RequestMeta,
    ) -> Result<SignedIn, SignInError> {
        let params = Self::params(&[
            ("grant_type", "password"),
            ("username", username),
            ("password", password.expose()),
            ("scope", CONSOLE_SCOPES),
        ]);
        let issued = self
            .tokens
            .token(&self.credentials(), &params, meta)
            .await
            .map_err(sign_in_error)?;
        let Some(refresh) = issued.refresh_token else {
            tracing::error!(
                "the console app got no refresh token; is offline_access among its scopes?"
            );
            return Err(SignInError::Failed);
        };
        let caller = self.bearer.verify(&issued.access_token).await.map_err(|e| {
            tracing::error!(error = ?e, "the console could not verify a token it was just issued");
            SignInError::Failed
        })?;
        let Some(user_id) = caller.user_id.clone() else {
            return Err(SignInError::Failed);
        };
        let cookie = random_token();
        let id_hash = sha256_hex(&cookie);
        let now = self.clock.now();
        let record = ConsoleSessionRecord {
            sealed_tokens: self.seal(
                &id_hash,
                &Tokens {
                    access: issued.access_token,
                    refresh,
                },
            ),
            id_hash,
            user_id,
            access_expires_at: now + issued.expires_in,
            created_at: now,
            last_seen_at: now,
            refreshing_since: None,
        };
        self.sessions
            .create_console_session(&record)
            .await
            .map_err(|e| {
                tracing::warn!(error = e.to_string(), "console session not stored");
                SignInError::Unavailable
            })?;
        tracing::info!(user_id = record.user_id.as_str(), "console sign-in");
        Ok(SignedIn {
            session: ConsoleSession {
                caller,
                csrf_token: self.keys.csrf_token(SESSION_CSRF, &cookie),
            },
            cookie,
        })
    }

    /// The session of a request's cookie, refreshed when its access token
    /// is (nearly) expired; `Ended` when it timed out or was revoked.
    pub async fn resume(&self, cookie: &str) -> Result<ConsoleSession, ResumeError> {
        let id_hash = sha256_hex(cookie);
        let Some(record) = self.sessions.find_console_session(&id_hash).await? else {
            return Err(ResumeError::Ended);
        };
        let now = self.clock.now();
        if now - record.created_at >= self.policy.absolute_timeout_secs
            || now - record.last_seen_at >= self.policy.idle_timeout_secs
        {
            tracing::info!(
                user_id = record.user_id.as_str(),
                "console session timed out"
            );
            self.end(&record).await;
            return Err(ResumeError::Ended);
        }
        let mut tokens = self.open(&record).await?;
        if now >= record.access_expires_at - REFRESH_MARGIN_SECS {
            tokens = self.refresh(&record, tokens).await?;
        }
        let caller = match self.bearer.verify(&tokens.access).await {
            Ok(caller) => caller,
            Err(BearerError::Unavailable) => return Err(ResumeError::Unavailable),
            Err(e) => {
                // Revoked elsewhere ("sign out everywhere", a lock, a new
                // password): the console session ends with it.
                tracing::info!(user_id = record.user_id.as_str(), reason = ?e, "console session's token no longer valid");
                self.sessions.delete_console_session(&id_hash).await?;
                return Err(ResumeError::Ended);
            }
        };
        if now - record.last_seen_at >= TOUCH_EVERY_SECS {
            self.sessions.touch_console_session(&id_hash, now).await?;
        }
        Ok(ConsoleSession {
            caller,
            csrf_token: self.keys.csrf_token(SESSION_CSRF, cookie),
        })
    }

    /// Signs out: revokes the refresh token (ending the OAuth session and
    /// its access tokens, as `/oauth2/v1/revoke` does) and forgets the
    /// console session.
    pub async fn sign_out(&self, cookie: &str) -> Result<(), ResumeError> {
        let id_hash = sha256_hex(cookie);
        if let Some(record) = self.sessions.find_console_session(&id_hash).await? {
            tracing::info!(user_id = record.user_id.as_str(), "console sign-out");
            self.end(&record).await;
        }
        Ok(())
    }

    /// Deletes sessions past their timeouts (housekeeping). Their OAuth
    /// sessions end by themselves: the console app's session lifetime is
    /// the absolute timeout.
    pub async fn purge(&self, limit: u32) -> Result<u64, StoreError> {
        let now = self.clock.now();
        self.sessions
            .purge_console_sessions(
                now - self.policy.idle_timeout_secs,
                now - self.policy.absolute_timeout_secs,
                limit,
            )
            .await
    }

    async fn end(&self, record: &ConsoleSessionRecord) {
        if let Ok(tokens) = self.open_quietly(record) {
            let params = Self::params(&[
                ("token", &tokens.refresh),
                ("token_type_hint", "refresh_token"),
            ]);
            if let Err(e) = self
                .introspection
                .revoke(&self.credentials(), &params)
                .await
            {
                tracing::warn!(
                    error = e.description.as_str(),
                    "console sign-out could not revoke its refresh token"
                );
            }
        }
        if let Err(e) = self.sessions.delete_console_session(&record.id_hash).await {
            tracing::warn!(error = e.to_string(), "console session not deleted");
        }
    }

    fn seal(&self, id_hash: &str, tokens: &Tokens) -> String {
        let json = serde_json::to_vec(tokens).expect("two strings serialize");
        self.keys.seal(id_hash, &json)
    }

    pub(super) fn open_quietly(&self, record: &ConsoleSessionRecord) -> Result<Tokens, ()> {
        let plain = self
            .keys
            .open(&record.id_hash, &record.sealed_tokens)
            .map_err(|_| ())?;
        serde_json::from_slice(&plain).map_err(|_| ())
    }

    async fn open(&self, record: &ConsoleSessionRecord) -> Result<Tokens, ResumeError> {
        match self.open_quietly(record) {
            Ok(tokens) => Ok(tokens),
            Err(()) => {
                // Another master key, or a tampered row: unusable.
                tracing::warn!(
                    user_id = record.user_id.as_str(),
                    "console session tokens do not open; ending it"
                );
                self.sessions
                    .delete_console_session(&record.id_hash)
                    .await?;
                Err(ResumeError::Ended)
            }
        }
    }

    /// The refresh grant, by one request at a time: presenting a refresh
    /// token twice would look like theft and end the session, so the
    /// others wait for the winner's tokens (or keep using the current
    /// access token while it is still valid).
    async fn refresh(
        &self,
        record: &ConsoleSessionRecord,
        current: Tokens,
    ) -> Result<Tokens, ResumeError> {
        let now = self.clock.now();
        let claimed = self
            .sessions
            .claim_console_refresh(&record.id_hash, now, now - STALE_CLAIM_SECS)
            .await?;
        if !claimed {
            if now < record.access_expires_at {
                return Ok(current);
            }
            return self.wait_for_refresh(&record.id_hash).await;
        }
        let params = Self::params(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", &current.refresh),
        ]);
        let issued = match self
            .tokens
            .token(&self.credentials(), &params, &RequestMeta::default())
            .await
        {
            Ok(issued) => issued,
            Err(e) if e.kind == OAuthErrorKind::InvalidGrant => {
                tracing::info!(
                    user_id = record.user_id.as_str(),
                    "console session's refresh token no longer valid"
                );
                self.sessions
                    .delete_console_session(&record.id_hash)
                    .await?;
                return Err(ResumeError::Ended);
            }
            Err(e) => {
                tracing::warn!(
                    error = e.description.as_str(),
                    "console token refresh failed"
                );
                return Err(ResumeError::Unavailable);
            }
        };
        let tokens = Tokens {
            access: issued.access_token,
            refresh: issued.refresh_token.unwrap_or(current.refresh),
        };
        self.sessions
            .store_refreshed_tokens(
                &record.id_hash,
                &self.seal(&record.id_hash, &tokens),
                self.clock.now() + issued.expires_in,
            )
            .await?;
        Ok(tokens)
    }

    async fn wait_for_refresh(&self, id_hash: &str) -> Result<Tokens, ResumeError> {
        for _ in 0..REFRESH_WAIT_ROUNDS {
            tokio::time::sleep(REFRESH_WAIT).await;
            match self.sessions.find_console_session(id_hash).await? {
                None => return Err(ResumeError::Ended),
                Some(record) if record.refreshing_since.is_none() => {
                    return self.open(&record).await;
                }
                Some(_) => {}
            }
        }
        Err(ResumeError::Unavailable)
    }
}

fn sign_in_error(e: OAuthError) -> SignInError {
    match e.kind {
        // A too-long username is invalid_request at the token endpoint;
        // to a person it is one more wrong username.
        OAuthErrorKind::InvalidGrant | OAuthErrorKind::InvalidRequest => SignInError::Rejected,
        OAuthErrorKind::TemporarilyUnavailable { .. } | OAuthErrorKind::RateLimited { .. } => {
            SignInError::Unavailable
        }
        _ => {
            tracing::error!(error = e.description.as_str(), detail = ?e.detail, "console sign-in failed");
            SignInError::Failed
        }
    }
}
