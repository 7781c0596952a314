//! `latchkey group …`: groups by name, through the typed directory (the
//! same rules and audit as the admin API and the console).

use anyhow::{anyhow, bail};
use latchkey_core::admin::{Actor, ListParams};
use latchkey_core::directory::{
    DirectoryError, DirectoryService, GroupChange, GroupView, NewGroup,
};
use latchkey_core::model::AppRole;
use latchkey_core::scim::group::GroupSchema;
use serde_json::json;

use super::print_json;
use super::user::{find, refused};
use crate::cli::{GroupCommand, Output};
use crate::context::Context;

pub async fn run(ctx: &Context, command: GroupCommand) -> anyhow::Result<()> {
    let directory = ctx.directory();
    let cli = Actor::Cli;
    match command {
        GroupCommand::Add { name } => {
            let new = NewGroup {
                name,
                ..NewGroup::default()
            };
            let group = directory.create_group(cli, new).await.map_err(refused)?;
            println!("created group {} ({})", group.group.name, group.group.id);
        }
        GroupCommand::List { output } => {
            let groups = list(&directory, None).await?;
            match output {
                Output::Json => print_json(&json!(
                    groups
                        .iter()
                        .map(|g| json!({"id": g.group.id, "name": g.group.name, "members": g.members.len()}))
                        .collect::<Vec<_>>()
                )),
                Output::Text => {
                    for g in &groups {
                        println!("{:<36}  {:<24}  {} member(s)", g.group.id, g.group.name, g.members.len());
                    }
                }
            }
        }
        GroupCommand::Show { name, output } => {
            let group = find_group(&directory, &name).await?;
            let roles = directory
                .group_roles(cli, &group.group.id)
                .await
                .map_err(refused)?;
            let value = json!({
                "id": group.group.id,
                "name": group.group.name,
                "external_id": group.group.external_id,
                "members": group.members.iter().map(|m| &m.username).collect::<Vec<_>>(),
                "app_roles": roles.iter().map(|r| r.as_str()).collect::<Vec<_>>(),
            });
            match output {
                Output::Json => print_json(&value),
                Output::Text => {
                    for (k, v) in value.as_object().expect("object") {
                        println!("{k:<12} {v}");
                    }
                }
            }
        }
        GroupCommand::AddMember { name, username } => {
            let group = find_group(&directory, &name).await?;
            let user = find(&directory, &username).await?;
            directory
                .update_group(
                    cli,
                    &group.group.id,
                    GroupChange::AddMembers(vec![user.id]),
                    None,
                )
                .await
                .map_err(refused)?;
            println!("{username} is a member of {name}");
        }
        GroupCommand::RemoveMember { name, username } => {
            let group = find_group(&directory, &name).await?;
            let user = find(&directory, &username).await?;
            if !group.members.iter().any(|m| m.id == user.id) {
                bail!("{username} is not a member of {name}");
            }
            directory
                .update_group(
                    cli,
                    &group.group.id,
                    GroupChange::RemoveMembers(vec![user.id]),
                    None,
                )
                .await
                .map_err(refused)?;
            println!("{username} is no longer a member of {name}");
        }
        GroupCommand::GrantRole { name, role } => {
            let group = find_group(&directory, &name).await?;
            let role: AppRole = role.parse().map_err(|e| anyhow!("role: {e}"))?;
            if directory
                .grant_group_role(cli, &group.group.id, role)
                .await
                .map_err(refused)?
            {
                println!("{name} now holds {role}");
            } else {
                println!("{name} already holds {role}");
            }
        }
        GroupCommand::RevokeRole { name, role } => {
            let group = find_group(&directory, &name).await?;
            let role: AppRole = role.parse().map_err(|e| anyhow!("role: {e}"))?;
            if !directory
                .revoke_group_role(cli, &group.group.id, role)
                .await
                .map_err(refused)?
            {
                bail!("{name} does not hold {role}");
            }
            println!("{name} no longer holds {role}");
        }
        GroupCommand::Delete { name } => {
            let group = find_group(&directory, &name).await?;
            directory
                .delete_group(cli, &group.group.id, None)
                .await
                .map_err(refused)?;
            println!("deleted group {name}");
        }
    }
    Ok(())
}

/// Every group, or those named `name` (ignoring case), by name.
async fn list(directory: &DirectoryService, name: Option<&str>) -> anyhow::Result<Vec<GroupView>> {
    let filter = name.map(|n| {
        format!(
            "displayName eq {}",
            serde_json::to_string(n).expect("a string serializes")
        )
    });
    let (query, _) = ListParams {
        filter,
        sort_by: Some("displayName".into()),
        count: Some("1000".into()),
        ..ListParams::default()
    }
    .query::<GroupSchema>()
    .map_err(|e| anyhow!("{}", e.detail))?;
    Ok(directory
        .list_groups(Actor::Cli, &query)
        .await
        .map_err(refused)?
        .items)
}

async fn find_group(directory: &DirectoryService, name: &str) -> anyhow::Result<GroupView> {
    match list(directory, Some(name)).await?.into_iter().next() {
        Some(group) => Ok(group),
        None => Err(refused(DirectoryError::NotFound(format!(
            "no group named {name:?}"
        )))),
    }
}
