//! Granting and revoking a user's identity domain application roles,
//! for the console and the CLI alike. Only an Identity Domain
//! Administrator may (`Permission::GrantRoles`): a User Administrator who
//! could grant roles could make themselves one.

use super::{Actor, AdminError, AdminResult, DirectoryService, Permission};
use crate::audit::kind;
use crate::model::{AppRole, User};
use crate::scim::ScimError;

impl DirectoryService {
    fn may_grant(actor: Actor<'_>) -> AdminResult<()> {
        match actor {
            Actor::Caller(caller) => caller
                .require(Permission::GrantRoles)
                .map_err(AdminError::Denied),
            Actor::Cli => Ok(()),
        }
    }

    async fn role_target(&self, user_id: &str) -> AdminResult<User> {
        self.repos
            .users
            .find_by_id(user_id)
            .await?
            .ok_or_else(|| ScimError::not_found(format!("no user {user_id}")).into())
    }

    /// Grants `role` to the user directly; `false` when they held it
    /// directly already (nothing is recorded then).
    pub async fn grant_role(
        &self,
        actor: Actor<'_>,
        user_id: &str,
        role: AppRole,
    ) -> AdminResult<bool> {
        Self::may_grant(actor)?;
        let user = self.role_target(user_id).await?;
        let granted = self.repos.users.grant_role(&user.id, role).await?;
        if granted {
            self.audit(
                kind::ROLE_GRANTED,
                actor.name(),
                &user.id,
                Some(role.to_string()),
            )
            .await;
        }
        Ok(granted)
    }

    /// Revokes a role the user holds directly; `false` when they do not
    /// (a role held only through a group stays until the group loses it
    /// or the user leaves the group).
    pub async fn revoke_role(
        &self,
        actor: Actor<'_>,
        user_id: &str,
        role: AppRole,
    ) -> AdminResult<bool> {
        Self::may_grant(actor)?;
        let user = self.role_target(user_id).await?;
        let revoked = self.repos.users.revoke_role(&user.id, role).await?;
        if revoked {
            self.audit(
                kind::ROLE_REVOKED,
                actor.name(),
                &user.id,
                Some(role.to_string()),
            )
            .await;
        }
        Ok(revoked)
    }

    /// The roles the user holds, directly or through groups (readers of
    /// users may see them).
    pub async fn roles_of(&self, actor: Actor<'_>, user_id: &str) -> AdminResult<Vec<AppRole>> {
        if let Actor::Caller(caller) = actor {
            caller.require(Permission::ReadUsers)?;
        }
        let user = self.role_target(user_id).await?;
        Ok(self.repos.users.effective_roles(&user.id).await?)
    }
}
