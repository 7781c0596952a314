//! The grants, a closed set with one module each. `GrantRequest::parse`
//! reads every grant's parameters in one place (RFC 6749 §4.3.2, §6,
//! §4.4.2); each grant module decides on its request and hands the
//! issuing to `issuer`.

mod client_credentials;
mod password;
mod refresh_token;

use std::collections::HashMap;
use std::sync::Arc;

use crate::client_auth::{ClientAuthenticator, ClientCredentials};
use crate::clock::Clock;
use crate::error::OAuthError;
use crate::issuer::{Grant, IssuedTokens, TokenIssuer, shared_roles};
use crate::meta::RequestMeta;
use crate::model::GrantType;
use crate::model::{App, User};
use crate::password::{Password, PasswordHasher};
use crate::scope;
use crate::store::Repos;

/// The form parameters of a token request, already checked by the HTTP
/// layer for duplicates and encoding. Client credentials are removed.
#[derive(Debug, Default, Clone)]
pub struct TokenParams(HashMap<String, String>);

impl TokenParams {
    pub fn new(map: HashMap<String, String>) -> Self {
        TokenParams(map)
    }

    /// A parameter sent empty counts as absent (RFC 6749 §3.1).
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .get(name)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }

    pub fn require(&self, name: &str) -> Result<&str, OAuthError> {
        self.get(name)
            .ok_or_else(|| OAuthError::invalid_request(format!("the {name} parameter is required")))
    }
}

/// A parsed token request.
#[derive(Debug)]
pub enum GrantRequest {
    Password {
        username: String,
        password: Password,
        scope: Option<String>,
    },
    RefreshToken {
        refresh_token: String,
        scope: Option<String>,
    },
    ClientCredentials {
        scope: Option<String>,
    },
}

impl GrantRequest {
    pub fn parse(params: &TokenParams) -> Result<Self, OAuthError> {
        let grant_type = params.require("grant_type")?;
        let scope = params.get("scope").map(str::to_owned);
        match grant_type {
            "password" => Ok(GrantRequest::Password {
                username: {
                    let username = params.require("username")?;
                    // The domain file allows 256: longer names no user.
                    if username.chars().count() > 256 {
                        return Err(OAuthError::invalid_request("the username is too long"));
                    }
                    username.to_owned()
                },
                password: Password::new(params.require("password")?),
                scope,
            }),
            "refresh_token" => Ok(GrantRequest::RefreshToken {
                refresh_token: params.require("refresh_token")?.to_owned(),
                scope,
            }),
            "client_credentials" => Ok(GrantRequest::ClientCredentials { scope }),
            other => Err(OAuthError::unsupported_grant_type(format!(
                "the grant type {:?} is not supported",
                other.chars().take(64).collect::<String>()
            ))),
        }
    }

    pub fn grant_type(&self) -> GrantType {
        match self {
            GrantRequest::Password { .. } => GrantType::Password,
            GrantRequest::RefreshToken { .. } => GrantType::RefreshToken,
            GrantRequest::ClientCredentials { .. } => GrantType::ClientCredentials,
        }
    }
}

/// Everything the token endpoint needs.
pub struct TokenService {
    pub repos: Repos,
    pub hasher: Arc<PasswordHasher>,
    pub issuer: Arc<TokenIssuer>,
    pub clock: Arc<dyn Clock>,
    pub throttle: crate::throttle::ThrottlePolicy,
    /// Decides who the calling client is.
    pub clients: Arc<ClientAuthenticator>,
    /// Apps whose backends may name their end user's address
    /// (`Latchkey-Forwarded-For`): the brute-force throttle, the per-IP
    /// rate limit and the audit trail then see the user, not the backend.
    pub end_user_ip_clients: Arc<Vec<String>>,
    /// Keyed hashes of unknown usernames, for the audit trail.
    pub audit_names: crate::audit::AuditNames,
}

impl TokenService {
    /// The token endpoint: authenticate the client, parse the grant, check
    /// the client may use it, run it.
    pub async fn token(
        &self,
        credentials: &ClientCredentials,
        params: &TokenParams,
        meta: &RequestMeta,
    ) -> Result<IssuedTokens, OAuthError> {
        let app = match self.clients.authenticate(credentials).await {
            Ok(app) => app,
            Err(e) => {
                // A failed authentication still costs its sender's address.
                if meta.ip_limit_deferred {
                    self.charge_ip(meta.ip)?;
                }
                return Err(e);
            }
        };
        let meta = &self.end_user_meta(&app, meta)?;
        let request = GrantRequest::parse(params)?;
        let grant_type = request.grant_type();
        if !app.allows_grant(grant_type) {
            return Err(OAuthError::unauthorized_client(format!(
                "the client is not allowed to use the {grant_type} grant"
            )));
        }
        match request {
            GrantRequest::Password {
                username,
                password,
                scope,
            } => password::handle(self, &app, &username, &password, scope.as_deref(), meta).await,
            GrantRequest::RefreshToken {
                refresh_token,
                scope,
            } => refresh_token::handle(self, &app, &refresh_token, scope.as_deref()).await,
            GrantRequest::ClientCredentials { scope } => {
                client_credentials::handle(self, &app, scope.as_deref()).await
            }
        }
    }

    /// The request as the grant sees it: for an app the operator allows,
    /// the end user's address its backend names replaces the backend's.
    fn end_user_meta(&self, app: &App, meta: &RequestMeta) -> Result<RequestMeta, OAuthError> {
        let mut meta = meta.clone();
        if let Some(named) = &meta.end_user_ip {
            // A public app proves nothing about who sends its client_id.
            let allowed = app.app_type != crate::model::AppType::Public
                && self.end_user_ip_clients.contains(&app.client_id);
            if allowed {
                let ip: std::net::IpAddr = named.trim().parse().map_err(|_| {
                    OAuthError::invalid_request(format!(
                        "the {} header must hold one IP address",
                        crate::meta::END_USER_IP_HEADER
                    ))
                })?;
                meta.ip = Some(ip.to_canonical());
            } else {
                tracing::info!(
                    client_id = app.client_id.as_str(),
                    "end-user address header ignored: this client may not name one"
                );
            }
        }
        if meta.ip_limit_deferred {
            self.charge_ip(meta.ip)?;
        }
        Ok(meta)
    }

    fn charge_ip(&self, ip: Option<std::net::IpAddr>) -> Result<(), OAuthError> {
        match (&self.clients.budget, ip) {
            (Some(budget), Some(ip)) => budget
                .charge_ip(ip)
                .map_err(crate::client_auth::rate_limited),
            _ => Ok(()),
        }
    }

    fn now(&self) -> i64 {
        self.clock.now()
    }

    /// What the issuer needs for a token in `user`'s context: the
    /// audiences of `scopes`, and with the admin scope the roles held by
    /// both the user and the app.
    async fn user_grant<'a>(
        &self,
        app: &'a App,
        user: &'a User,
        scopes: Vec<String>,
        session_id: String,
        auth_time: i64,
    ) -> Result<Grant<'a>, OAuthError> {
        let servers = self.repos.resource_servers.list().await?;
        let roles = if scopes.iter().any(|s| s == scope::MY_SCOPES) {
            shared_roles(&self.repos.users.effective_roles(&user.id).await?, app)
        } else {
            Vec::new()
        };
        Ok(Grant {
            app,
            user,
            audiences: scope::audiences(&scopes, &servers, self.issuer.issuer()),
            scopes,
            roles,
            session_id,
            auth_time,
        })
    }
}
