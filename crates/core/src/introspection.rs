//! Token introspection (RFC 7662) and revocation (RFC 7009). Both require
//! client authentication and share one way of finding a token: a JWT is an
//! access token we signed; anything else may be one of our refresh tokens.

use std::sync::Arc;

use serde_json::{Map, Value, json};

use crate::client_auth::{ClientAuthenticator, ClientCredentials};
use crate::clock::Clock;
use crate::error::{OAuthError, OAuthErrorKind};
use crate::grant::TokenParams;
use crate::keys::KeyRing;
use crate::model::App;
use crate::secrets::sha256_hex;
use crate::store::{RefreshContext, Repos};

pub struct IntrospectionService {
    pub repos: Repos,
    pub keys: Arc<KeyRing>,
    pub issuer: String,
    pub clock: Arc<dyn Clock>,
    /// Decides who the calling client is.
    pub clients: Arc<ClientAuthenticator>,
}

/// What a presented token turned out to be.
enum Found {
    /// A valid signature from one of our keys; claims included.
    Access(Value),
    Refresh(Box<RefreshContext>),
    Nothing,
}

fn check_hint(params: &TokenParams) -> Result<(), OAuthError> {
    match params.get("token_type_hint") {
        None | Some("access_token") | Some("refresh_token") => Ok(()),
        Some(_) => Err(OAuthError::new(
            OAuthErrorKind::UnsupportedTokenType,
            "token_type_hint must be access_token or refresh_token",
        )),
    }
}

impl IntrospectionService {
    async fn find(&self, token: &str) -> Result<Found, OAuthError> {
        // The hint only orders the search (RFC 7662 §2.1): the two kinds
        // cannot be mistaken for each other, so one look suffices.
        if token.split('.').count() == 3 {
            return Ok(
                match self
                    .keys
                    .verify(token, "at+jwt", &self.issuer, self.clock.now())
                {
                    Ok(claims) => Found::Access(claims),
                    Err(e) => {
                        tracing::debug!(reason = %e, "presented JWT is not a valid access token");
                        Found::Nothing
                    }
                },
            );
        }
        Ok(
            match self.repos.tokens.find_refresh(&sha256_hex(token)).await? {
                Some(ctx) => Found::Refresh(Box::new(ctx)),
                None => Found::Nothing,
            },
        )
    }

    /// RFC 7662: `{"active": false}` and nothing else for every token that
    /// is not live or not the caller's to see.
    pub async fn introspect(
        &self,
        credentials: &ClientCredentials,
        params: &TokenParams,
    ) -> Result<Value, OAuthError> {
        let app = self.clients.authenticate(credentials).await?;
        // A public client proves nothing but a client_id anyone can read
        // in the app; it must not learn what a token holds (RFC 7662 §4:
        // the endpoint needs the caller's authentication).
        if app.app_type == crate::model::AppType::Public {
            tracing::info!(client_id = ?app.client_id, "introspection refused to a public client");
            return Err(OAuthError::invalid_client(
                false,
                "introspection needs a confidential or trusted client's credentials",
            ));
        }
        let token = params.require("token")?;
        // An unknown hint is ignored here (RFC 7662 lets the server search
        // anyway); revocation reports it.
        let answer = match self.find(token).await? {
            Found::Access(claims) => self.introspect_access(claims).await?,
            Found::Refresh(ctx) => self.introspect_refresh(&app, &ctx),
            Found::Nothing => None,
        };
        Ok(answer.unwrap_or_else(|| json!({"active": false})))
    }

    async fn introspect_access(&self, claims: Value) -> Result<Option<Value>, OAuthError> {
        let jti = claims
            .get("jti")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let sid = claims.get("sid").and_then(Value::as_str);
        if jti.is_empty() || self.repos.tokens.access_token_revoked(jti, sid).await? {
            return Ok(None);
        }
        // A token without a session (client_credentials) lives only as
        // long as its app is there and active.
        if sid.is_none() {
            let client_id = claims
                .get("client_id")
                .and_then(Value::as_str)
                .unwrap_or_default();
            let app = self.repos.apps.find_by_client_id(client_id).await?;
            if !crate::issuer::app_token_live(app.as_ref(), &claims) {
                return Ok(None);
            }
        }
        let mut out = Map::new();
        out.insert("active".into(), Value::Bool(true));
        out.insert("token_type".into(), Value::String("Bearer".into()));
        for name in [
            "scope",
            "client_id",
            "username",
            "exp",
            "iat",
            "nbf",
            "sub",
            "aud",
            "iss",
            "jti",
            "sid",
        ] {
            if let Some(value) = claims.get(name) {
                out.insert(name.into(), value.clone());
            }
        }
        Ok(Some(Value::Object(out)))
    }

    fn introspect_refresh(&self, app: &App, ctx: &RefreshContext) -> Option<Value> {
        let now = self.clock.now();
        let live = ctx.token.app_id == app.id
            && ctx.token.rotated_at.is_none()
            && ctx.token.expires_at > now
            && ctx.session.revoked_at.is_none()
            && ctx.user.active;
        live.then(|| {
            json!({
                "active": true,
                "token_type": "refresh_token",
                "scope": ctx.token.scope,
                "client_id": app.client_id,
                "username": ctx.user.username,
                "sub": ctx.user.id,
                "iss": self.issuer,
                "exp": ctx.token.expires_at,
                "iat": ctx.token.issued_at,
                "sid": ctx.session.id,
            })
        })
    }

    /// RFC 7009: revoking a refresh token ends its session; revoking an
    /// access token denies its `jti` until it expires. Unknown tokens and
    /// other clients' tokens change nothing and still succeed.
    pub async fn revoke(
        &self,
        credentials: &ClientCredentials,
        params: &TokenParams,
    ) -> Result<(), OAuthError> {
        let app = self.clients.authenticate(credentials).await?;
        let token = params.require("token")?;
        check_hint(params)?;
        let now = self.clock.now();
        match self.find(token).await? {
            Found::Refresh(ctx) if ctx.token.app_id == app.id => {
                self.repos
                    .tokens
                    .revoke_session(&ctx.session.id, now)
                    .await?;
                tracing::info!(
                    client_id = app.client_id.as_str(),
                    sid = ctx.session.id.as_str(),
                    "refresh token revoked; session ended"
                );
                crate::audit::record(
                    self.repos.audit.as_ref(),
                    crate::audit::AuditEvent::new(crate::audit::kind::TOKEN_REVOKED, true, now)
                        .actor(&app.client_id)
                        .subject(&ctx.user.id)
                        .client(&app.client_id)
                        .detail(format!("refresh token; session {} ended", ctx.session.id)),
                )
                .await;
            }
            Found::Access(claims)
                if claims.get("client_id").and_then(Value::as_str)
                    == Some(app.client_id.as_str()) =>
            {
                let jti = claims
                    .get("jti")
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                let exp = claims.get("exp").and_then(Value::as_i64).unwrap_or(now);
                if !jti.is_empty() {
                    self.repos.tokens.revoke_access_token(jti, exp).await?;
                    tracing::info!(
                        client_id = app.client_id.as_str(),
                        jti,
                        "access token revoked"
                    );
                    crate::audit::record(
                        self.repos.audit.as_ref(),
                        crate::audit::AuditEvent::new(crate::audit::kind::TOKEN_REVOKED, true, now)
                            .actor(&app.client_id)
                            .subject(
                                claims
                                    .get("sub")
                                    .and_then(Value::as_str)
                                    .unwrap_or_default(),
                            )
                            .client(&app.client_id)
                            .detail(format!("access token {jti}")),
                    )
                    .await;
                }
            }
            _ => {
                tracing::info!(
                    client_id = app.client_id.as_str(),
                    "revocation of an unknown or foreign token ignored"
                )
            }
        }
        Ok(())
    }
}
