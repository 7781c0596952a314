//! RFC 6749 §6: refreshing an access token, with rotation and reuse
//! detection (OAuth 2.0 Security BCP §4.14.2).

use crate::error::OAuthError;
use crate::issuer::{IssuedTokens, RefreshMode};
use crate::model::App;
use crate::scope;
use crate::secrets::sha256_hex;

use super::TokenService;

fn rejected(detail: &str) -> OAuthError {
    OAuthError::invalid_grant("the refresh token is invalid, expired or revoked")
        .with_detail(detail.to_owned())
}

pub(super) async fn handle(
    svc: &TokenService,
    app: &App,
    refresh_token: &str,
    requested_scope: Option<&str>,
) -> Result<IssuedTokens, OAuthError> {
    let now = svc.now();
    let token_hash = sha256_hex(refresh_token);
    let Some(found) = svc.repos.tokens.find_refresh(&token_hash).await? else {
        return Err(rejected("unknown refresh token"));
    };
    let (record, session, user) = (found.token, found.session, found.user);
    if record.app_id != app.id {
        // Not this client's token: refuse without touching it (another
        // client must not be able to revoke a session it does not own).
        return Err(rejected("refresh token issued to another client"));
    }
    if record.rotated_at.is_some() {
        svc.repos
            .tokens
            .revoke_session(&record.session_id, now)
            .await?;
        tracing::warn!(sid = %record.session_id, client_id = %app.client_id,
            "rotated-out refresh token presented again; session revoked");
        crate::audit::record(
            svc.repos.audit.as_ref(),
            crate::audit::AuditEvent::new(crate::audit::kind::REFRESH_REUSE, false, now)
                .subject(&record.user_id)
                .client(&app.client_id)
                .detail(format!("session {} revoked", record.session_id)),
        )
        .await;
        return Err(rejected("refresh token reuse detected"));
    }
    if record.expires_at <= now {
        return Err(rejected("refresh token expired"));
    }
    if session.revoked_at.is_some() {
        return Err(rejected("session revoked"));
    }
    if app
        .session_lifetime
        .is_some_and(|limit| now >= session.auth_time + limit)
    {
        // The absolute lifetime is over: the user signs in again.
        svc.repos.tokens.revoke_session(&session.id, now).await?;
        return Err(rejected("session lifetime exceeded"));
    }
    if !user.may_sign_in() {
        return Err(rejected("user inactive or locked"));
    }

    let original: Vec<String> = record
        .scope
        .split(' ')
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect();
    let scopes = scope::narrow(&original, requested_scope)?;
    // The app may have lost a scope since the grant: drop what it no
    // longer holds rather than keep granting it.
    let scopes: Vec<String> = scopes
        .into_iter()
        .filter(|s| app.scopes.contains(s))
        .collect();

    let grant = svc
        .user_grant(app, &user, scopes, session.id.clone(), session.auth_time)
        .await?;
    svc.issuer
        .issue(
            grant,
            RefreshMode::Rotate {
                old_hash: &token_hash,
            },
            now,
        )
        .await
}
