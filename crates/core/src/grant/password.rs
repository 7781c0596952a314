//! RFC 6749 §4.3: the Resource Owner Password Credentials grant.

use crate::audit::{self, AuditEvent, kind};
use crate::error::OAuthError;
use crate::issuer::{IssuedTokens, RefreshMode};
use crate::meta::RequestMeta;
use crate::model::App;
use crate::password::Password;
use crate::scope;
use crate::sign_in::{PasswordCheck, SignInAudit};

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

    let check = PasswordCheck {
        repos: &svc.repos,
        hasher: &svc.hasher,
        policy: &svc.throttle,
        clock: svc.clock.as_ref(),
    };
    let sign_in_audit = SignInAudit {
        client_id: &app.client_id,
        names: &svc.audit_names,
    };
    let user = match check
        .check_audited(username, password, meta.ip, &sign_in_audit)
        .await
    {
        Ok(user) => user,
        Err(e) => {
            let reason = e.detail.as_deref().unwrap_or("");
            tracing::info!(client_id = app.client_id.as_str(), ip = ?meta.ip, reason, "password grant refused");
            return Err(e);
        }
    };

    let now = svc.now();
    // v7: time-ordered, so sessions started in the same second still sort
    // by age (the session cap ends the oldest).
    let session_id = uuid::Uuid::now_v7().to_string();
    let grant = svc.user_grant(app, &user, scopes, session_id, now).await?;
    let issued = svc
        .issuer
        .issue(grant, RefreshMode::NewSession, now)
        .await?;
    tracing::info!(client_id = app.client_id.as_str(), user_id = user.id.as_str(), ip = ?meta.ip, "password grant issued");
    audit::record(
        svc.repos.audit.as_ref(),
        AuditEvent::new(kind::SIGN_IN, true, now)
            .actor(&user.id)
            .subject(&user.username)
            .client(&app.client_id)
            .ip(meta.ip),
    )
    .await;
    Ok(issued)
}
