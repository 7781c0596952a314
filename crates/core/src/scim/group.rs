//! The SCIM Group resource (RFC 7643 §4.2): a display name and members
//! (users). Members hold the group's application roles.

use serde_json::{Map, Value, json};

use super::ScimError;
use super::filter::AttrPath;
use super::query::{FieldKind, FieldValue, Resolved, Schema};
use super::resource::{get_ci, meta, required_string};
use crate::model::Group;

pub const GROUP_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";

/// At most this many members per write (larger groups are built in steps).
pub const MAX_MEMBERS_PER_WRITE: usize = 10_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupField {
    Id,
    DisplayName,
    Created,
    LastModified,
    /// Of the group's members (member rows).
    MemberId,
    MemberName,
}

pub struct GroupSchema;

impl Schema for GroupSchema {
    type Field = GroupField;

    fn field(path: &AttrPath) -> Option<Resolved<GroupField>> {
        let name = path.name.to_ascii_lowercase();
        let sub = path.sub.as_deref().map(str::to_ascii_lowercase);
        Some(match (name.as_str(), sub.as_deref()) {
            ("id", None) => Resolved::Field(GroupField::Id),
            ("displayname", None) => Resolved::Field(GroupField::DisplayName),
            ("meta", Some("created")) => Resolved::Field(GroupField::Created),
            ("meta", Some("lastmodified")) => Resolved::Field(GroupField::LastModified),
            ("members", None) => Resolved::Members,
            ("members", Some(sub)) => return Self::sub_field("members", sub),
            _ => return None,
        })
    }

    fn sub_field(attr: &str, sub: &str) -> Option<Resolved<GroupField>> {
        if !attr.eq_ignore_ascii_case("members") {
            return None;
        }
        Some(match sub.to_ascii_lowercase().as_str() {
            "value" => Resolved::MemberField(GroupField::MemberId),
            "display" => Resolved::MemberField(GroupField::MemberName),
            "type" => Resolved::Constant(FieldValue::Text("User".into())),
            _ => return None,
        })
    }

    fn kind(field: GroupField) -> FieldKind {
        match field {
            GroupField::Id | GroupField::MemberId => FieldKind::Text { case_exact: true },
            GroupField::Created | GroupField::LastModified => FieldKind::Time,
            GroupField::DisplayName | GroupField::MemberName => {
                FieldKind::Text { case_exact: false }
            }
        }
    }

    fn schema_uri() -> &'static str {
        GROUP_SCHEMA
    }
}

/// A member of a group, for the `members` attribute.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberRef {
    pub id: String,
    pub username: String,
}

pub fn group_resource(group: &Group, members: &[MemberRef], base: &str) -> Value {
    let mut out = Map::new();
    out.insert("schemas".into(), json!([GROUP_SCHEMA]));
    out.insert("id".into(), json!(group.id));
    out.insert("displayName".into(), json!(group.name));
    if let Some(external_id) = &group.external_id {
        out.insert("externalId".into(), json!(external_id));
    }
    out.insert(
        "members".into(),
        Value::Array(
            members
                .iter()
                .map(|m| {
                    json!({
                        "value": m.id,
                        "display": m.username,
                        "$ref": format!("{base}/Users/{}", m.id),
                        "type": "User",
                    })
                })
                .collect(),
        ),
    );
    out.insert(
        "meta".into(),
        meta(
            "Group",
            group.created_at,
            group.updated_at,
            group.version,
            &format!("{base}/Groups/{}", group.id),
        ),
    );
    Value::Object(out)
}

/// What a client writes to a group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupWrite {
    pub display_name: String,
    pub external_id: Option<String>,
    /// User ids, deduplicated, in the order given.
    pub members: Vec<String>,
}

impl GroupWrite {
    pub fn from_resource(doc: &Value) -> Result<Self, ScimError> {
        let object = doc
            .as_object()
            .ok_or_else(|| ScimError::invalid_syntax("the body must be a JSON object"))?;
        let display_name = required_string(object, "displayName")?;
        if display_name.trim().is_empty()
            || display_name.chars().count() > 256
            || display_name.chars().any(char::is_control)
        {
            return Err(ScimError::invalid_value(
                "displayName must be 1 to 256 characters without control characters",
            ));
        }
        let mut members: Vec<String> = Vec::new();
        match get_ci(object, "members") {
            None | Some(Value::Null) => {}
            Some(Value::Array(list)) => {
                for member in list {
                    let value = member
                        .as_object()
                        .and_then(|m| get_ci(m, "value"))
                        .and_then(Value::as_str)
                        .ok_or_else(|| {
                            ScimError::invalid_value("members[].value must be a user id")
                        })?;
                    if let Some(kind) = member.as_object().and_then(|m| get_ci(m, "type"))
                        && kind.as_str() != Some("User")
                    {
                        return Err(ScimError::invalid_value(
                            "members are users (type \"User\"); groups do not nest",
                        ));
                    }
                    // A user id: never long, never a control character
                    // (a NUL cannot even be looked up on PostgreSQL).
                    if value.is_empty() || value.len() > 256 || value.chars().any(char::is_control)
                    {
                        return Err(ScimError::invalid_value(
                            "members[].value must be a user id",
                        ));
                    }
                    if !members.iter().any(|m| m == value) {
                        members.push(value.to_owned());
                    }
                }
            }
            Some(_) => return Err(ScimError::invalid_value("members must be an array")),
        }
        if members.len() > MAX_MEMBERS_PER_WRITE {
            return Err(ScimError::new(
                super::ScimStatus::PayloadTooLarge,
                None,
                format!("at most {MAX_MEMBERS_PER_WRITE} members per request"),
            ));
        }
        Ok(GroupWrite {
            display_name,
            external_id: super::resource::optional_string(object, "externalId")?,
            members,
        })
    }
}
