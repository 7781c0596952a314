//! RFC 6749 §4.3: the Resource Owner Password Credentials grant.

use crate::error::OAuthError;
use crate::issuer::{Grant, IssuedTokens, RefreshMode, shared_roles};
use crate::meta::RequestMeta;
use crate::model::App;
use crate::password::{HashError, Password, Verification};
use crate::scope;

use super::TokenService;

pub(super) async fn handle(
    svc: &TokenService,
    app: &App,
    username: &str,
    password: &Password,
    requested_scope: Option<&str>,
    meta: &RequestMeta,
) -> Result<IssuedTokens, OAuthError> {
    // Scope first: a bad scope costs no hash and reveals nothing.
    let scopes = scope::resolve(app, requested_scope)?;

    let user = svc.repos.users.find_by_username(username).await?;
    // Unknown user or no password: verify against the dummy hash, so the
    // answer costs the same as a wrong password.
    let stored = user.as_ref().and_then(|u| u.password_hash.as_deref());
    let verification = svc
        .hasher
        .verify(password, stored)
        .await
        .map_err(hash_error)?;

    let user = match (user, verification) {
        (Some(user), Verification::Valid { needs_rehash }) if user.active => {
            if needs_rehash {
                rehash(svc, &user.id, password).await;
            }
            user
        }
        (user, verification) => {
            let reason = match (&user, verification) {
                (None, _) => "unknown user",
                (Some(u), Verification::Valid { .. }) if !u.active => "inactive user",
                _ => "wrong password",
            };
            tracing::info!(client_id = %app.client_id, ip = ?meta.ip, reason, "password grant refused");
            return Err(OAuthError::bad_credentials().with_detail(reason));
        }
    };

    let now = svc.now();
    let servers = svc.repos.resource_servers.list().await?;
    let roles = if scopes.iter().any(|s| s == scope::MY_SCOPES) {
        shared_roles(&svc.repos.users.effective_roles(&user.id).await?, app)
    } else {
        Vec::new()
    };
    let grant = Grant {
        app,
        user: &user,
        audiences: scope::audiences(&scopes, &servers, svc.issuer.issuer()),
        scopes,
        roles,
        // v7: time-ordered, so sessions started in the same second still
        // sort by age (the session cap ends the oldest).
        session_id: uuid::Uuid::now_v7().to_string(),
        auth_time: now,
    };
    let issued = svc
        .issuer
        .issue(grant, RefreshMode::NewSession, now)
        .await?;
    tracing::info!(client_id = %app.client_id, user_id = %user.id, ip = ?meta.ip, "password grant issued");
    Ok(issued)
}

/// Upgrades an outdated hash after a successful login. A failure only
/// means the upgrade waits for the next login.
async fn rehash(svc: &TokenService, user_id: &str, password: &Password) {
    match svc.hasher.hash(password).await {
        Ok(hash) => {
            if let Err(e) = svc
                .repos
                .users
                .upgrade_password_hash(user_id, &hash, svc.now())
                .await
            {
                tracing::warn!(user_id, error = %e, "could not store the upgraded password hash");
            }
        }
        Err(e) => tracing::warn!(user_id, error = %e, "could not upgrade the password hash"),
    }
}

pub(super) fn hash_error(err: HashError) -> OAuthError {
    match err {
        HashError::Busy => OAuthError::busy(1, "password hashing queue full"),
        other => OAuthError::server_error(other.to_string()),
    }
}
