//! `/admin/v1/Groups`. Members are users; they hold the group's
//! application roles.

use serde_json::Value;

use super::{Actor, AdminResult, Answer, Caller, DirectoryService, ListParams, Permission};
use crate::audit::kind;
use crate::model::Group;
use crate::scim::ScimError;
use crate::scim::group::{GROUP_SCHEMA, GroupSchema, GroupWrite, group_resource};
use crate::scim::patch;
use crate::scim::resource::{Projection, cursor_list_response, get_ci, list_response};

const READ_ONLY: [&str; 2] = ["id", "meta"];
const PATCH_ATTEMPTS: usize = 3;

fn require_schema(doc: &Value) -> Result<(), ScimError> {
    let ok = doc
        .as_object()
        .and_then(|o| get_ci(o, "schemas"))
        .and_then(Value::as_array)
        .is_some_and(|s| s.iter().any(|v| v.as_str() == Some(GROUP_SCHEMA)));
    if ok {
        Ok(())
    } else {
        Err(ScimError::invalid_syntax(format!(
            "schemas must contain {GROUP_SCHEMA}"
        )))
    }
}

impl DirectoryService {
    async fn render_group(&self, group: &Group) -> AdminResult<Value> {
        let mut members = self
            .repos
            .directory
            .members_of(std::slice::from_ref(&group.id))
            .await?;
        Ok(group_resource(
            group,
            &members.remove(&group.id).unwrap_or_default(),
            &self.base_url,
        ))
    }

    async fn load_group(&self, id: &str) -> AdminResult<Group> {
        self.repos
            .directory
            .find_group(id)
            .await?
            .ok_or_else(|| ScimError::not_found(format!("no group {id}")).into())
    }

    /// Every member must be an existing user.
    async fn check_members(&self, members: &[String]) -> AdminResult<()> {
        for id in members {
            if self.repos.users.find_by_id(id).await?.is_none() {
                return Err(ScimError::invalid_value(format!("member {id} is not a user")).into());
            }
        }
        Ok(())
    }

    /// A member who joins or leaves a group gains or loses the group's
    /// roles: changing who is in a group that holds roles is giving and
    /// taking away those roles (`privilege.rs`).
    async fn may_change_members(
        &self,
        caller: &Caller,
        group_id: &str,
        members: &[String],
    ) -> AdminResult<()> {
        let roles = self.repos.directory.group_roles(group_id).await?;
        if roles.is_empty() {
            return Ok(());
        }
        let mut current: Vec<String> = self
            .repos
            .directory
            .members_of(&[group_id.to_owned()])
            .await?
            .remove(group_id)
            .unwrap_or_default()
            .into_iter()
            .map(|m| m.id)
            .collect();
        let mut wanted = members.to_vec();
        current.sort();
        wanted.sort();
        wanted.dedup();
        if current != wanted {
            Actor::Caller(caller).may_give(&roles)?;
        }
        Ok(())
    }

    pub async fn list_groups(&self, caller: &Caller, params: &ListParams) -> AdminResult<Answer> {
        caller.require(Permission::ReadUsers)?;
        let (query, projection) = params.query::<GroupSchema>()?;
        let page = self.repos.directory.query_groups(&query).await?;
        let ids: Vec<String> = page.items.iter().map(|g| g.id.clone()).collect();
        let mut members = self.repos.directory.members_of(&ids).await?;
        let resources = page
            .items
            .iter()
            .map(|g| {
                projection.apply(group_resource(
                    g,
                    &members.remove(&g.id).unwrap_or_default(),
                    &self.base_url,
                ))
            })
            .collect();
        Ok(Answer {
            status: 200,
            body: match &query.cursor {
                None => list_response(page.total, query.start_index, resources),
                Some(_) => cursor_list_response(
                    page.total,
                    resources,
                    page.more
                        .then(|| page.items.last().map(|r| super::encode_cursor(&r.id)))
                        .flatten(),
                ),
            },
            etag: None,
            location: None,
        })
    }

    pub async fn get_group(
        &self,
        caller: &Caller,
        id: &str,
        projection: &Projection,
    ) -> AdminResult<Answer> {
        caller.require(Permission::ReadUsers)?;
        let group = self.load_group(id).await?;
        let mut answer = Answer::resource(200, self.render_group(&group).await?);
        answer.body = projection.apply(answer.body);
        Ok(answer)
    }

    pub async fn create_group(&self, caller: &Caller, doc: &Value) -> AdminResult<Answer> {
        caller.require(Permission::WriteUsers)?;
        require_schema(doc)?;
        let write = GroupWrite::from_resource(doc)?;
        self.check_members(&write.members).await?;
        let group = self
            .repos
            .directory
            .create_group(
                &write.display_name,
                write.external_id.as_deref(),
                &write.members,
                self.clock.now(),
            )
            .await?;
        tracing::info!(
            group_id = group.id.as_str(),
            by = caller.subject.as_str(),
            "group created through SCIM"
        );
        self.audit(
            kind::GROUP_CREATED,
            &caller.subject,
            &group.id,
            Some(group.name.clone()),
        )
        .await;
        Ok(Answer::resource(201, self.render_group(&group).await?))
    }

    pub async fn replace_group(
        &self,
        caller: &Caller,
        id: &str,
        doc: &Value,
        if_version: Option<i64>,
    ) -> AdminResult<Answer> {
        caller.require(Permission::WriteUsers)?;
        require_schema(doc)?;
        self.put_group(id, doc, if_version, caller).await
    }

    async fn put_group(
        &self,
        id: &str,
        doc: &Value,
        if_version: Option<i64>,
        caller: &Caller,
    ) -> AdminResult<Answer> {
        let by = caller.subject.as_str();
        let write = GroupWrite::from_resource(doc)?;
        self.check_members(&write.members).await?;
        self.may_change_members(caller, id, &write.members).await?;
        let group = self
            .repos
            .directory
            .replace_group(
                id,
                &write.display_name,
                write.external_id.as_deref(),
                &write.members,
                if_version,
                self.clock.now(),
            )
            .await?;
        tracing::info!(group_id = id, by = by, "group replaced through SCIM");
        self.audit(
            kind::GROUP_UPDATED,
            by,
            id,
            Some(format!("{} members", write.members.len())),
        )
        .await;
        Ok(Answer::resource(200, self.render_group(&group).await?))
    }

    pub async fn patch_group(
        &self,
        caller: &Caller,
        id: &str,
        body: &Value,
        if_version: Option<i64>,
    ) -> AdminResult<Answer> {
        caller.require(Permission::WriteUsers)?;
        let operations = patch::parse_operations(body)?;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let current = self.load_group(id).await?;
            if if_version.is_some_and(|v| v != current.version) {
                return Err(ScimError::precondition_failed().into());
            }
            let mut doc = self.render_group(&current).await?;
            patch::apply(&mut doc, &operations, &READ_ONLY, GROUP_SCHEMA)?;
            match self
                .put_group(id, &doc, Some(current.version), caller)
                .await
            {
                Err(super::AdminError::Scim(e))
                    if e.status == 412 && if_version.is_none() && attempt < PATCH_ATTEMPTS =>
                {
                    continue;
                }
                other => return other,
            }
        }
    }

    pub async fn delete_group(
        &self,
        caller: &Caller,
        id: &str,
        if_version: Option<i64>,
    ) -> AdminResult<Answer> {
        caller.require(Permission::WriteUsers)?;
        // Deleting a group takes its roles away from every member.
        let roles = self.repos.directory.group_roles(id).await?;
        Actor::Caller(caller).may_give(&roles)?;
        self.repos.directory.delete_group(id, if_version).await?;
        tracing::info!(
            group_id = id,
            by = caller.subject.as_str(),
            "group deleted through SCIM"
        );
        self.audit(kind::GROUP_DELETED, &caller.subject, id, None)
            .await;
        Ok(Answer::no_content())
    }
}
