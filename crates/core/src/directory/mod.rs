//! The identity domain's directory: users, groups, memberships and the
//! roles they hold, as one typed service behind every door (the SCIM
//! admin API, the console, the command line). Who may do what is decided
//! here, once: the permission table (`admin::Permission`), the privilege
//! boundary (`admin::privilege`), what a help desk may do, and what a user
//! may change about themselves. The doors only translate: SCIM JSON and
//! PATCH operations (`admin::scim_users`, `admin::scim_groups`), form
//! fields, command-line flags. Errors are typed ([`DirectoryError`]); the
//! doors decide how each looks on their wire.

mod error;
mod groups;
mod me;
mod roles;
mod sessions;
mod users;

use std::sync::Arc;

pub use error::{DirectoryError, DirectoryResult};
pub use groups::{GroupChange, GroupView, NewGroup};
pub(crate) use me::may_write_self;
pub use sessions::SessionView;
pub use users::{NewUser, Profile, UserChange, UserView};

use crate::admin::{Actor, Permission};
use crate::clock::Clock;
use crate::model::User;
use crate::password::{HashError, Password, PasswordHasher};
use crate::password_policy::PasswordPolicy;
use crate::store::Repos;

/// The directory service.
pub struct DirectoryService {
    pub repos: Repos,
    pub hasher: Arc<PasswordHasher>,
    pub policy: PasswordPolicy,
    /// The brute-force throttle of the sign-in gate, which a self-service
    /// password change's current-password proof passes too.
    pub throttle: crate::throttle::ThrottlePolicy,
    pub clock: Arc<dyn Clock>,
    /// The admin API's base URL (`<issuer>/admin/v1`), for `location`
    /// and `$ref` in SCIM resources.
    pub base_url: String,
}

/// Whether the actor's roles grant `permission` (the operator at the
/// command line holds every permission).
fn require(actor: Actor<'_>, permission: Permission) -> DirectoryResult<()> {
    if let Actor::Caller(caller) = actor {
        caller.require(permission)?;
    }
    Ok(())
}

impl DirectoryService {
    /// Records an administrative change made by `actor`.
    async fn audit(&self, event_type: &str, actor: &str, subject: &str, detail: Option<String>) {
        let mut event = crate::audit::AuditEvent::new(event_type, true, self.clock.now())
            .actor(actor)
            .subject(subject);
        if let Some(detail) = detail {
            event = event.detail(detail);
        }
        crate::audit::record(self.repos.audit.as_ref(), event).await;
    }

    /// Checks a new password against the policy and hashes it.
    async fn hash_password(&self, password: &Password) -> DirectoryResult<String> {
        self.policy
            .check(password.expose())
            .map_err(|e| DirectoryError::invalid("password", format!("password: {e}")))?;
        self.hasher.hash(password).await.map_err(|e| match e {
            HashError::Busy => {
                DirectoryError::Unavailable("password hashing is busy; retry shortly".into())
            }
            other => DirectoryError::Internal(other.to_string()),
        })
    }

    async fn load_group(&self, id: &str) -> DirectoryResult<crate::model::Group> {
        self.repos
            .directory
            .find_group(id)
            .await?
            .ok_or_else(|| DirectoryError::NotFound(format!("no group {id}")))
    }

    async fn load_user(&self, id: &str) -> DirectoryResult<User> {
        self.repos
            .users
            .find_by_id(id)
            .await?
            .ok_or_else(|| DirectoryError::NotFound(format!("no user {id}")))
    }

    /// The user `id`, when `actor` may act on them: they hold no role
    /// the actor lacks (`admin::privilege`). Every write on another user
    /// passes here, whichever door it came through.
    async fn user_to_change(&self, actor: Actor<'_>, id: &str) -> DirectoryResult<User> {
        let user = self.load_user(id).await?;
        let roles = self.repos.users.effective_roles(&user.id).await?;
        actor.may_act_on(&roles, "this user")?;
        Ok(user)
    }
}
