//! Granting and revoking the identity domain application roles of a user
//! or of a group, for the console and the CLI alike. Only an actor who may
//! grant roles (`Permission::GrantRoles`) and holds the role itself may
//! (`privilege.rs`): a User Administrator who could grant roles could make
//! themselves one.

use super::{DirectoryResult, DirectoryService};
use crate::admin::{Actor, Permission};
use crate::audit::kind;
use crate::model::AppRole;
use crate::store::HeldRole;

impl DirectoryService {
    fn may_grant(actor: Actor<'_>, role: AppRole) -> DirectoryResult<()> {
        Ok(actor.may_give(&[role])?)
    }

    /// Audits a grant or revocation that changed something; passes on
    /// whether it did.
    async fn role_changed(
        &self,
        actor: Actor<'_>,
        event: &str,
        subject_id: &str,
        role: AppRole,
        changed: bool,
    ) -> DirectoryResult<bool> {
        if changed {
            self.audit(event, actor.name(), subject_id, Some(role.to_string()))
                .await;
        }
        Ok(changed)
    }

    /// Grants `role` to the user directly; `false` when they held it
    /// directly already (nothing is recorded then).
    pub async fn grant_role(
        &self,
        actor: Actor<'_>,
        user_id: &str,
        role: AppRole,
    ) -> DirectoryResult<bool> {
        Self::may_grant(actor, role)?;
        let user = self.user_to_change(actor, user_id).await?;
        let granted = self.repos.users.grant_role(&user.id, role).await?;
        self.role_changed(actor, kind::ROLE_GRANTED, &user.id, role, granted)
            .await
    }

    /// Revokes a role the user holds directly; `false` when they do not
    /// (a role held only through a group stays until the group loses it
    /// or the user leaves the group).
    pub async fn revoke_role(
        &self,
        actor: Actor<'_>,
        user_id: &str,
        role: AppRole,
    ) -> DirectoryResult<bool> {
        Self::may_grant(actor, role)?;
        let user = self.user_to_change(actor, user_id).await?;
        let revoked = self.repos.users.revoke_role(&user.id, role).await?;
        self.role_changed(actor, kind::ROLE_REVOKED, &user.id, role, revoked)
            .await
    }

    /// The user's roles with where each comes from (directly, or through
    /// which group), for readers of users.
    pub async fn held_roles(
        &self,
        actor: Actor<'_>,
        user_id: &str,
    ) -> DirectoryResult<Vec<HeldRole>> {
        super::require(actor, Permission::ReadUsers)?;
        let user = self.load_user(user_id).await?;
        Ok(self.repos.directory.held_roles(&user.id).await?)
    }

    /// The roles the group holds itself (its members hold them too).
    pub async fn group_roles(
        &self,
        actor: Actor<'_>,
        group_id: &str,
    ) -> DirectoryResult<Vec<AppRole>> {
        super::require(actor, Permission::ReadUsers)?;
        let group = self.load_group(group_id).await?;
        Ok(self.repos.directory.group_roles(&group.id).await?)
    }

    /// Grants `role` to the group, and so to every member; `false` when
    /// it held it already (nothing is recorded then).
    pub async fn grant_group_role(
        &self,
        actor: Actor<'_>,
        group_id: &str,
        role: AppRole,
    ) -> DirectoryResult<bool> {
        Self::may_grant(actor, role)?;
        let group = self.load_group(group_id).await?;
        let granted = self
            .repos
            .directory
            .grant_group_role(&group.id, role)
            .await?;
        self.role_changed(actor, kind::GROUP_ROLE_GRANTED, &group.id, role, granted)
            .await
    }

    /// Revokes `role` from the group; its members keep it only if they
    /// hold it otherwise. `false` when the group did not hold it.
    pub async fn revoke_group_role(
        &self,
        actor: Actor<'_>,
        group_id: &str,
        role: AppRole,
    ) -> DirectoryResult<bool> {
        Self::may_grant(actor, role)?;
        let group = self.load_group(group_id).await?;
        let revoked = self
            .repos
            .directory
            .revoke_group_role(&group.id, role)
            .await?;
        self.role_changed(actor, kind::GROUP_ROLE_REVOKED, &group.id, role, revoked)
            .await
    }
}
