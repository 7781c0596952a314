//! Users: create, read, list, change (profile, password, active state,
//! lock), delete. A change is one typed [`UserChange`]; what the actor
//! may change is decided by what the change touches: a help desk may set
//! passwords and unlock, nothing else.

use super::{DirectoryError, DirectoryResult, DirectoryService, require};
use crate::admin::{Actor, BearerError, Permission};
use crate::audit::kind;
use crate::model::{AppRole, User};
use crate::password::Password;
use crate::scim::query::{ListQuery, Page};
use crate::scim::user::{GroupRef, UserField};
use crate::store::UserRecord;

/// The attributes of a user that describe them (not whether they may
/// sign in).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Profile {
    pub username: String,
    pub external_id: Option<String>,
    pub given_name: Option<String>,
    pub family_name: Option<String>,
    pub display_name: Option<String>,
    pub email: Option<String>,
}

impl Profile {
    pub fn of(user: &User) -> Self {
        Profile {
            username: user.username.clone(),
            external_id: user.external_id.clone(),
            given_name: user.given_name.clone(),
            family_name: user.family_name.clone(),
            display_name: user.display_name.clone(),
            email: user.email.clone(),
        }
    }

    /// 256 characters are at most 1,024 bytes: within the index entry
    /// limit of both engines. The names are SCIM's, which every door's
    /// messages use.
    fn check(&self) -> DirectoryResult<()> {
        let text = |field: &'static str, value: Option<&str>| match value {
            Some(v)
                if v.trim().is_empty()
                    || v.chars().count() > 256
                    || v.chars().any(char::is_control) =>
            {
                Err(DirectoryError::invalid(
                    field,
                    format!("{field} must be 1 to 256 characters without control characters"),
                ))
            }
            _ => Ok(()),
        };
        text("userName", Some(&self.username))?;
        text("emails.value", self.email.as_deref())
    }

    fn record(&self, active: bool) -> UserRecord {
        UserRecord {
            username: self.username.clone(),
            external_id: self.external_id.clone(),
            given_name: self.given_name.clone(),
            family_name: self.family_name.clone(),
            display_name: self.display_name.clone(),
            email: self.email.clone(),
            active,
        }
    }
}

/// A user to create.
#[derive(Debug, Clone)]
pub struct NewUser {
    pub profile: Profile,
    pub active: bool,
    pub password: Option<Password>,
    /// Application roles granted directly at creation.
    pub roles: Vec<AppRole>,
}

/// What to change about a user; `None` leaves a part as it is.
#[derive(Debug, Clone, Default)]
pub struct UserChange {
    /// Replaces every profile attribute.
    pub profile: Option<Profile>,
    pub password: Option<Password>,
    pub active: Option<bool>,
    /// Locking ends the user's sessions; unlocking also clears the
    /// failed-sign-in throttle of their name.
    pub locked: Option<bool>,
}

impl UserChange {
    fn writes_record(&self) -> bool {
        self.profile.is_some() || self.password.is_some() || self.active.is_some()
    }
}

/// A user as readers see them: the stored user and their groups.
#[derive(Debug, Clone)]
pub struct UserView {
    pub user: User,
    pub groups: Vec<GroupRef>,
}

fn locking_denied() -> DirectoryError {
    DirectoryError::Denied(BearerError::Insufficient {
        scope: crate::scope::MY_SCOPES,
        detail: "locking a user needs the User Administrator or Identity Domain Administrator role"
            .into(),
    })
}

/// Whether `actor` may make `change` to another user, by the permission
/// table: WriteUsers changes anything; a help desk (ResetPasswords,
/// UnlockUsers) only sets passwords and unlocks.
fn may_change(actor: Actor<'_>, change: &UserChange) -> DirectoryResult<()> {
    let Actor::Caller(caller) = actor else {
        return Ok(());
    };
    if caller.may(Permission::WriteUsers) {
        return Ok(());
    }
    if change.profile.is_some() || change.active.is_some() {
        caller.require(Permission::WriteUsers)?;
    }
    if change.password.is_some() {
        caller.require(Permission::ResetPasswords)?;
    } else if change.locked.is_some() {
        caller.require(Permission::UnlockUsers)?;
    }
    if change.locked == Some(true) {
        return Err(locking_denied());
    }
    Ok(())
}

impl DirectoryService {
    pub(super) async fn view(&self, user: User) -> DirectoryResult<UserView> {
        let mut groups = self
            .repos
            .directory
            .groups_of_users(std::slice::from_ref(&user.id))
            .await?;
        let groups = groups.remove(&user.id).unwrap_or_default();
        Ok(UserView { user, groups })
    }

    pub async fn list_users(
        &self,
        actor: Actor<'_>,
        query: &ListQuery<UserField>,
    ) -> DirectoryResult<Page<UserView>> {
        require(actor, Permission::ReadUsers)?;
        let page = self.repos.directory.query_users(query).await?;
        let ids: Vec<String> = page.items.iter().map(|u| u.id.clone()).collect();
        let mut groups = self.repos.directory.groups_of_users(&ids).await?;
        Ok(Page {
            total: page.total,
            more: page.more,
            items: page
                .items
                .into_iter()
                .map(|user| {
                    let groups = groups.remove(&user.id).unwrap_or_default();
                    UserView { user, groups }
                })
                .collect(),
        })
    }

    pub async fn get_user(&self, actor: Actor<'_>, id: &str) -> DirectoryResult<UserView> {
        require(actor, Permission::ReadUsers)?;
        let user = self.load_user(id).await?;
        self.view(user).await
    }

    /// The user as a door that applies a patch document needs them, for
    /// an actor who may change users in some way (so that no one else
    /// learns who exists); the change it then makes is checked by
    /// `update_user`.
    pub(crate) async fn user_for_patch(
        &self,
        actor: Actor<'_>,
        id: &str,
    ) -> DirectoryResult<UserView> {
        if let Actor::Caller(caller) = actor
            && ![
                Permission::WriteUsers,
                Permission::ResetPasswords,
                Permission::UnlockUsers,
            ]
            .into_iter()
            .any(|p| caller.may(p))
        {
            caller.require(Permission::WriteUsers)?;
        }
        let user = self.load_user(id).await?;
        self.view(user).await
    }

    /// The user named `username` (ignoring case), for doors that name
    /// users rather than point at them (the command line).
    pub async fn find_user(&self, actor: Actor<'_>, username: &str) -> DirectoryResult<UserView> {
        require(actor, Permission::ReadUsers)?;
        let user = self
            .repos
            .users
            .find_by_username(username)
            .await?
            .ok_or_else(|| DirectoryError::NotFound(format!("no user named {username:?}")))?;
        self.view(user).await
    }

    pub async fn create_user(&self, actor: Actor<'_>, new: NewUser) -> DirectoryResult<UserView> {
        require(actor, Permission::WriteUsers)?;
        new.profile.check()?;
        actor.may_give(&new.roles)?;
        let hash = match &new.password {
            Some(p) => Some(self.hash_password(p).await?),
            None => None,
        };
        let user = self
            .repos
            .directory
            .create_user(
                &new.profile.record(new.active),
                hash.as_deref(),
                self.clock.now(),
            )
            .await?;
        for role in &new.roles {
            if let Err(e) = self.repos.users.grant_role(&user.id, *role).await {
                // No half-made user: one without the roles asked for.
                let _ = self.repos.directory.delete_user(&user.id, None).await;
                return Err(e.into());
            }
        }
        tracing::info!(
            user_id = user.id.as_str(),
            by = actor.name(),
            "user created"
        );
        // One event for the user and the roles made with them.
        let detail = match new.roles.as_slice() {
            [] => user.username.clone(),
            roles => format!(
                "{} with {}",
                user.username,
                roles
                    .iter()
                    .map(|r| r.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        };
        self.audit(kind::USER_CREATED, actor.name(), &user.id, Some(detail))
            .await;
        self.view(user).await
    }

    /// Changes another user (or any user, for the command line). With
    /// `if_version`, only if the user is still at that version.
    pub async fn update_user(
        &self,
        actor: Actor<'_>,
        id: &str,
        change: UserChange,
        if_version: Option<i64>,
    ) -> DirectoryResult<UserView> {
        may_change(actor, &change)?;
        let current = self.user_to_change(actor, id).await?;
        self.write_user(current, change, if_version, actor.name())
            .await
    }

    /// Writes a change already allowed: one conditional write of the
    /// user's record (a new password or a deactivation ends their
    /// sessions in the same transaction), then the lock.
    pub(super) async fn write_user(
        &self,
        current: User,
        change: UserChange,
        if_version: Option<i64>,
        by: &str,
    ) -> DirectoryResult<UserView> {
        if if_version.is_some_and(|v| v != current.version) {
            return Err(DirectoryError::VersionMismatch);
        }
        if let Some(profile) = &change.profile {
            profile.check()?;
        }
        let hash = match &change.password {
            Some(p) => Some(self.hash_password(p).await?),
            None => None,
        };
        let mut user = current.clone();
        if change.writes_record() {
            let profile = change
                .profile
                .clone()
                .unwrap_or_else(|| Profile::of(&current));
            let active = change.active.unwrap_or(current.active);
            user = self
                .repos
                .directory
                .replace_user(
                    &current.id,
                    &profile.record(active),
                    hash.as_deref(),
                    if_version,
                    self.clock.now(),
                )
                .await?;
            tracing::info!(
                user_id = current.id.as_str(),
                by = by,
                password_changed = hash.is_some(),
                "user changed"
            );
            self.audit(kind::USER_UPDATED, by, &current.id, None).await;
            if hash.is_some() {
                self.audit(kind::PASSWORD_CHANGED, by, &current.id, None)
                    .await;
            }
            if active != current.active {
                let event = if active {
                    kind::USER_ACTIVATED
                } else {
                    kind::USER_DEACTIVATED
                };
                self.audit(event, by, &current.id, None).await;
            }
        }
        if let Some(locked) = change.locked {
            self.set_lock(&user, locked, by).await?;
            user = self.load_user(&current.id).await?;
        }
        self.view(user).await
    }

    /// Locks (ending the user's sessions) or unlocks (also clearing the
    /// failed-sign-in throttle of their name).
    async fn set_lock(&self, user: &User, locked: bool, by: &str) -> DirectoryResult<()> {
        self.repos
            .users
            .set_locked(&user.id, locked, self.clock.now())
            .await?;
        if !locked {
            self.repos
                .throttle
                .clear_username(&user.username.to_lowercase())
                .await?;
        }
        tracing::info!(
            user_id = user.id.as_str(),
            by = by,
            locked,
            "user lock changed"
        );
        let event = if locked {
            kind::USER_LOCKED
        } else {
            kind::USER_UNLOCKED
        };
        self.audit(event, by, &user.id, None).await;
        Ok(())
    }

    pub async fn set_password(
        &self,
        actor: Actor<'_>,
        id: &str,
        password: Password,
    ) -> DirectoryResult<UserView> {
        let change = UserChange {
            password: Some(password),
            ..UserChange::default()
        };
        self.update_user(actor, id, change, None).await
    }

    pub async fn set_locked(
        &self,
        actor: Actor<'_>,
        id: &str,
        locked: bool,
    ) -> DirectoryResult<UserView> {
        let change = UserChange {
            locked: Some(locked),
            ..UserChange::default()
        };
        self.update_user(actor, id, change, None).await
    }

    pub async fn set_active(
        &self,
        actor: Actor<'_>,
        id: &str,
        active: bool,
    ) -> DirectoryResult<UserView> {
        let change = UserChange {
            active: Some(active),
            ..UserChange::default()
        };
        self.update_user(actor, id, change, None).await
    }

    /// Unlocks by name: the throttle counts failed sign-ins per name,
    /// for unknown names too, and this clears that count whether or not
    /// a user has the name.
    pub async fn unlock_username(&self, actor: Actor<'_>, username: &str) -> DirectoryResult<()> {
        match self.repos.users.find_by_username(username).await? {
            Some(user) => {
                self.set_locked(actor, &user.id, false).await?;
            }
            None => {
                if let Actor::Caller(caller) = actor {
                    caller.require(Permission::UnlockUsers)?;
                }
                self.repos
                    .throttle
                    .clear_username(&username.to_lowercase())
                    .await?;
                self.audit(kind::USER_UNLOCKED, actor.name(), username, None)
                    .await;
            }
        }
        Ok(())
    }

    pub async fn delete_user(
        &self,
        actor: Actor<'_>,
        id: &str,
        if_version: Option<i64>,
    ) -> DirectoryResult<()> {
        require(actor, Permission::WriteUsers)?;
        if let Actor::Caller(caller) = actor
            && caller.user_id.as_deref() == Some(id)
        {
            return Err(DirectoryError::Conflict(
                "a user cannot delete themselves".into(),
            ));
        }
        let user = self.user_to_change(actor, id).await?;
        self.repos.directory.delete_user(id, if_version).await?;
        tracing::info!(user_id = id, by = actor.name(), "user deleted");
        self.audit(
            kind::USER_DELETED,
            actor.name(),
            id,
            Some(user.username.clone()),
        )
        .await;
        Ok(())
    }
}
