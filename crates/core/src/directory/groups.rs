//! Groups and their members. Members are users; they hold the group's
//! application roles, so changing who is in a group that holds roles is
//! giving and taking away those roles (`admin::privilege`).

use super::{DirectoryError, DirectoryResult, DirectoryService, require};
use crate::admin::{Actor, Permission};
use crate::audit::kind;
use crate::model::Group;
use crate::scim::group::GroupField;
use crate::scim::group::MemberRef;
use crate::scim::query::{ListQuery, Page};

/// A group to create, or every attribute of one to replace.
#[derive(Debug, Clone, Default)]
pub struct NewGroup {
    pub name: String,
    pub external_id: Option<String>,
    /// User ids.
    pub members: Vec<String>,
}

/// What to change about a group's members.
#[derive(Debug, Clone)]
pub enum GroupChange {
    /// Every attribute.
    Replace(NewGroup),
    Rename(String),
    AddMembers(Vec<String>),
    RemoveMembers(Vec<String>),
}

/// A group as readers see it.
#[derive(Debug, Clone)]
pub struct GroupView {
    pub group: Group,
    pub members: Vec<MemberRef>,
}

/// A change retried this often when another write slips in between the
/// read and the write (the caller named no version).
const ATTEMPTS: usize = 3;

fn check_name(name: &str) -> DirectoryResult<()> {
    if name.trim().is_empty() || name.chars().count() > 256 || name.chars().any(char::is_control) {
        return Err(DirectoryError::invalid(
            "displayName",
            "displayName must be 1 to 256 characters without control characters",
        ));
    }
    Ok(())
}

/// Deduplicated, in the order given.
fn unique(ids: Vec<String>) -> Vec<String> {
    let mut out: Vec<String> = Vec::with_capacity(ids.len());
    for id in ids {
        if !out.contains(&id) {
            out.push(id);
        }
    }
    out
}

impl DirectoryService {
    async fn group_view(&self, group: Group) -> DirectoryResult<GroupView> {
        let mut members = self
            .repos
            .directory
            .members_of(std::slice::from_ref(&group.id))
            .await?;
        let members = members.remove(&group.id).unwrap_or_default();
        Ok(GroupView { group, members })
    }

    /// Every member must be an existing user.
    async fn check_members(&self, members: &[String]) -> DirectoryResult<()> {
        for id in members {
            if self.repos.users.find_by_id(id).await?.is_none() {
                return Err(DirectoryError::invalid(
                    "members",
                    format!("member {id} is not a user"),
                ));
            }
        }
        Ok(())
    }

    /// Changing who is in a group that holds roles gives and takes away
    /// those roles.
    async fn may_change_members(
        &self,
        actor: Actor<'_>,
        current: &[MemberRef],
        group_id: &str,
        members: &[String],
    ) -> DirectoryResult<()> {
        let roles = self.repos.directory.group_roles(group_id).await?;
        if roles.is_empty() {
            return Ok(());
        }
        let mut now: Vec<&str> = current.iter().map(|m| m.id.as_str()).collect();
        let mut wanted: Vec<&str> = members.iter().map(String::as_str).collect();
        now.sort_unstable();
        wanted.sort_unstable();
        wanted.dedup();
        if now != wanted {
            actor.may_give(&roles)?;
        }
        Ok(())
    }

    pub async fn list_groups(
        &self,
        actor: Actor<'_>,
        query: &ListQuery<GroupField>,
    ) -> DirectoryResult<Page<GroupView>> {
        require(actor, Permission::ReadUsers)?;
        let page = self.repos.directory.query_groups(query).await?;
        let ids: Vec<String> = page.items.iter().map(|g| g.id.clone()).collect();
        let mut members = self.repos.directory.members_of(&ids).await?;
        Ok(Page {
            total: page.total,
            more: page.more,
            items: page
                .items
                .into_iter()
                .map(|group| {
                    let members = members.remove(&group.id).unwrap_or_default();
                    GroupView { group, members }
                })
                .collect(),
        })
    }

    pub async fn get_group(&self, actor: Actor<'_>, id: &str) -> DirectoryResult<GroupView> {
        require(actor, Permission::ReadUsers)?;
        let group = self.load_group(id).await?;
        self.group_view(group).await
    }

    /// The group as a door that applies a patch document needs it, for an
    /// actor who may change groups; the change is checked by
    /// `update_group`.
    pub(crate) async fn group_for_patch(
        &self,
        actor: Actor<'_>,
        id: &str,
    ) -> DirectoryResult<GroupView> {
        require(actor, Permission::WriteUsers)?;
        let group = self.load_group(id).await?;
        self.group_view(group).await
    }

    pub async fn create_group(
        &self,
        actor: Actor<'_>,
        new: NewGroup,
    ) -> DirectoryResult<GroupView> {
        require(actor, Permission::WriteUsers)?;
        check_name(&new.name)?;
        let members = unique(new.members);
        self.check_members(&members).await?;
        let group = self
            .repos
            .directory
            .create_group(
                &new.name,
                new.external_id.as_deref(),
                &members,
                self.clock.now(),
            )
            .await?;
        tracing::info!(
            group_id = group.id.as_str(),
            by = actor.name(),
            "group created"
        );
        self.audit(
            kind::GROUP_CREATED,
            actor.name(),
            &group.id,
            Some(group.name.clone()),
        )
        .await;
        self.group_view(group).await
    }

    /// Changes a group; with `if_version`, only if it is still at that
    /// version. Adding or removing members reads the group and writes it
    /// back conditionally, retrying when another write came between.
    pub async fn update_group(
        &self,
        actor: Actor<'_>,
        id: &str,
        change: GroupChange,
        if_version: Option<i64>,
    ) -> DirectoryResult<GroupView> {
        require(actor, Permission::WriteUsers)?;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let current = self.group_view(self.load_group(id).await?).await?;
            if if_version.is_some_and(|v| v != current.group.version) {
                return Err(DirectoryError::VersionMismatch);
            }
            let ids = || current.members.iter().map(|m| m.id.clone());
            let (wanted, version) = match &change {
                GroupChange::Replace(all) => (all.clone(), if_version),
                GroupChange::Rename(name) => (
                    NewGroup {
                        name: name.clone(),
                        external_id: current.group.external_id.clone(),
                        members: ids().collect(),
                    },
                    Some(current.group.version),
                ),
                GroupChange::AddMembers(add) => (
                    NewGroup {
                        name: current.group.name.clone(),
                        external_id: current.group.external_id.clone(),
                        members: ids().chain(add.iter().cloned()).collect(),
                    },
                    Some(current.group.version),
                ),
                GroupChange::RemoveMembers(gone) => (
                    NewGroup {
                        name: current.group.name.clone(),
                        external_id: current.group.external_id.clone(),
                        members: ids().filter(|m| !gone.contains(m)).collect(),
                    },
                    Some(current.group.version),
                ),
            };
            match self.write_group(actor, &current, wanted, version).await {
                Err(DirectoryError::VersionMismatch)
                    if if_version.is_none() && version.is_some() && attempt < ATTEMPTS =>
                {
                    continue;
                }
                other => return other,
            }
        }
    }

    /// Replaces every attribute of the group `current` with `wanted`.
    pub(crate) async fn write_group(
        &self,
        actor: Actor<'_>,
        current: &GroupView,
        wanted: NewGroup,
        if_version: Option<i64>,
    ) -> DirectoryResult<GroupView> {
        check_name(&wanted.name)?;
        let members = unique(wanted.members);
        self.check_members(&members).await?;
        self.may_change_members(actor, &current.members, &current.group.id, &members)
            .await?;
        let group = self
            .repos
            .directory
            .replace_group(
                &current.group.id,
                &wanted.name,
                wanted.external_id.as_deref(),
                &members,
                if_version,
                self.clock.now(),
            )
            .await?;
        tracing::info!(
            group_id = group.id.as_str(),
            by = actor.name(),
            "group changed"
        );
        self.audit(
            kind::GROUP_UPDATED,
            actor.name(),
            &group.id,
            Some(format!("{} members", members.len())),
        )
        .await;
        self.group_view(group).await
    }

    pub async fn delete_group(
        &self,
        actor: Actor<'_>,
        id: &str,
        if_version: Option<i64>,
    ) -> DirectoryResult<()> {
        require(actor, Permission::WriteUsers)?;
        // Deleting a group takes its roles away from every member.
        let roles = self.repos.directory.group_roles(id).await?;
        actor.may_give(&roles)?;
        self.repos.directory.delete_group(id, if_version).await?;
        tracing::info!(group_id = id, by = actor.name(), "group deleted");
        self.audit(kind::GROUP_DELETED, actor.name(), id, None)
            .await;
        Ok(())
    }
}
