//! Self-service: a user reading and changing their own account. A token
//! of the user may read it; only one meant for self-service may change
//! it, never the user name, active state or lock, and a new password
//! needs the current one.

use std::net::IpAddr;

use super::{DirectoryError, DirectoryResult, DirectoryService, UserChange, UserView};
use crate::admin::{BearerError, Caller};
use crate::audit::kind;
use crate::error::OAuthErrorKind;
use crate::model::User;
use crate::password::Password;
use crate::scope::{ME_SCOPE, MY_SCOPES};
use crate::sign_in::PasswordCheck;

/// An `openid` token handed to some public app must not be enough to
/// rewrite the account.
pub(crate) fn may_write_self(caller: &Caller) -> Result<String, BearerError> {
    let id = caller.user()?.to_owned();
    if caller.has_scope(ME_SCOPE) || caller.has_scope(MY_SCOPES) {
        return Ok(id);
    }
    Err(BearerError::Insufficient {
        scope: ME_SCOPE,
        detail: format!("changing your own account needs the {ME_SCOPE} scope"),
    })
}

impl DirectoryService {
    /// The caller's own account.
    pub async fn me(&self, caller: &Caller) -> DirectoryResult<UserView> {
        let id = caller.user()?;
        let user = self.load_user(id).await.map_err(|e| match e {
            // The user was deleted while the token lives.
            DirectoryError::NotFound(_) => DirectoryError::Denied(BearerError::Invalid(
                "the token's user no longer exists".into(),
            )),
            other => other,
        })?;
        self.view(user).await
    }

    /// Changes the caller's own account. `current_password` proves a
    /// password change; `ip` is the address the proof is throttled for.
    pub async fn update_me(
        &self,
        caller: &Caller,
        change: UserChange,
        current_password: Option<&Password>,
        if_version: Option<i64>,
        ip: Option<IpAddr>,
    ) -> DirectoryResult<UserView> {
        let id = may_write_self(caller)?;
        if change.locked.is_some() {
            return Err(DirectoryError::Immutable(
                "a user may not lock or unlock themselves".into(),
            ));
        }
        let current = self.load_user(&id).await?;
        if change.active.is_some_and(|a| a != current.active)
            || change
                .profile
                .as_ref()
                .is_some_and(|p| p.username != current.username)
        {
            return Err(DirectoryError::Immutable(
                "a user may not change their own userName or active state".into(),
            ));
        }
        if change.password.is_some() {
            let given = current_password.ok_or_else(|| {
                DirectoryError::invalid(
                    "currentPassword",
                    format!(
                        "changing your own password needs {}:currentPassword",
                        crate::scim::discovery::USER_EXTENSION
                    ),
                )
            })?;
            self.check_current_password(&current, given, ip).await?;
        }
        self.write_user(current, change, if_version, &caller.subject)
            .await
    }

    /// The proof goes through the sign-in gate (`sign_in::PasswordCheck`),
    /// so it is throttled, counted and timed exactly as a sign-in: a
    /// stolen access token is no password oracle.
    async fn check_current_password(
        &self,
        user: &User,
        given: &Password,
        ip: Option<IpAddr>,
    ) -> DirectoryResult<()> {
        let gate = PasswordCheck {
            repos: &self.repos,
            hasher: &self.hasher,
            policy: &self.throttle,
            clock: self.clock.as_ref(),
        };
        let refused = match gate.check(&user.username, given, ip).await {
            Ok(signed_in) if signed_in.id == user.id => return Ok(()),
            Ok(_) => "another user".to_owned(),
            Err(e) => match e.kind {
                OAuthErrorKind::InvalidGrant => e.detail.unwrap_or_default(),
                OAuthErrorKind::TemporarilyUnavailable { .. } => {
                    return Err(DirectoryError::Unavailable(
                        "password hashing is busy; retry shortly".into(),
                    ));
                }
                _ => return Err(DirectoryError::Internal(e.to_string())),
            },
        };
        tracing::info!(user_id = user.id.as_str(), ip = ?ip, reason = refused.as_str(), "self-service password change refused: the current password did not check");
        let event =
            crate::audit::AuditEvent::new(kind::PASSWORD_CHANGE_REFUSED, false, self.clock.now())
                .actor(&user.id)
                .subject(&user.id)
                .ip(ip)
                .detail(refused);
        crate::audit::record(self.repos.audit.as_ref(), event).await;
        Err(DirectoryError::invalid(
            "currentPassword",
            "currentPassword is not the current password",
        ))
    }
}
