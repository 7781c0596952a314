//! `/admin/v1/Groups` over the typed directory: SCIM group documents and
//! PATCH operations become a typed `GroupChange`.

use serde_json::Value;

use super::{
    Actor, AdminResult, Answer, Caller, ListParams, Outcome, ScimDirectory, list_answer,
    require_schema,
};
use crate::directory::{DirectoryError, GroupChange, GroupView, NewGroup};
use crate::scim::ScimError;
use crate::scim::group::{GROUP_SCHEMA, GroupSchema, GroupWrite, group_resource};
use crate::scim::patch;
use crate::scim::resource::Projection;

const READ_ONLY: [&str; 2] = ["id", "meta"];
const PATCH_ATTEMPTS: usize = 3;

fn new_group(write: GroupWrite) -> NewGroup {
    NewGroup {
        name: write.display_name,
        external_id: write.external_id,
        members: write.members,
    }
}

impl ScimDirectory {
    fn render_group(&self, view: &GroupView) -> Value {
        group_resource(&view.group, &view.members, self.base_url())
    }

    pub async fn list_groups(&self, caller: &Caller, params: &ListParams) -> AdminResult<Answer> {
        let (query, projection) = params.query::<GroupSchema>()?;
        let page = self
            .directory
            .list_groups(Actor::Caller(caller), &query)
            .await?;
        let resources = page
            .items
            .iter()
            .map(|g| projection.apply(self.render_group(g)))
            .collect();
        Ok(list_answer(&query, &page, |g| &g.group.id, resources))
    }

    pub async fn get_group(
        &self,
        caller: &Caller,
        id: &str,
        projection: &Projection,
    ) -> AdminResult<Answer> {
        let view = self.directory.get_group(Actor::Caller(caller), id).await?;
        Ok(Answer::resource(
            Outcome::Read,
            projection.apply(self.render_group(&view)),
        ))
    }

    pub async fn create_group(&self, caller: &Caller, doc: &Value) -> AdminResult<Answer> {
        require_schema(doc, GROUP_SCHEMA)?;
        let write = GroupWrite::from_resource(doc)?;
        let view = self
            .directory
            .create_group(Actor::Caller(caller), new_group(write))
            .await?;
        Ok(Answer::resource(Outcome::Created, self.render_group(&view)))
    }

    pub async fn replace_group(
        &self,
        caller: &Caller,
        id: &str,
        doc: &Value,
        if_version: Option<i64>,
    ) -> AdminResult<Answer> {
        require_schema(doc, GROUP_SCHEMA)?;
        let write = GroupWrite::from_resource(doc)?;
        let view = self
            .directory
            .update_group(
                Actor::Caller(caller),
                id,
                GroupChange::Replace(new_group(write)),
                if_version,
            )
            .await?;
        Ok(Answer::resource(Outcome::Read, self.render_group(&view)))
    }

    pub async fn patch_group(
        &self,
        caller: &Caller,
        id: &str,
        body: &Value,
        if_version: Option<i64>,
    ) -> AdminResult<Answer> {
        let operations = patch::parse_operations(body)?;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let current = self
                .directory
                .group_for_patch(Actor::Caller(caller), id)
                .await?;
            if if_version.is_some_and(|v| v != current.group.version) {
                return Err(ScimError::precondition_failed().into());
            }
            let mut doc = self.render_group(&current);
            patch::apply(&mut doc, &operations, &READ_ONLY, GROUP_SCHEMA)?;
            let write = GroupWrite::from_resource(&doc)?;
            match self
                .directory
                .update_group(
                    Actor::Caller(caller),
                    id,
                    GroupChange::Replace(new_group(write)),
                    Some(current.group.version),
                )
                .await
            {
                Err(DirectoryError::VersionMismatch)
                    if if_version.is_none() && attempt < PATCH_ATTEMPTS =>
                {
                    continue;
                }
                Err(e) => return Err(e.into()),
                Ok(view) => return Ok(Answer::resource(Outcome::Read, self.render_group(&view))),
            }
        }
    }

    pub async fn delete_group(
        &self,
        caller: &Caller,
        id: &str,
        if_version: Option<i64>,
    ) -> AdminResult<Answer> {
        self.directory
            .delete_group(Actor::Caller(caller), id, if_version)
            .await?;
        Ok(Answer::no_content())
    }
}
