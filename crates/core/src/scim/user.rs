//! The SCIM User resource (RFC 7643 §4.1) as Latchkey holds it: which
//! attributes exist, how a user is rendered, and how a written document
//! becomes the fields to store.

use serde_json::{Map, Value, json};

use super::ScimError;
use super::filter::AttrPath;
use super::query::{FieldKind, FieldValue, Resolved, Schema};
use super::resource::{get_ci, meta, optional_string, required_string};
use crate::model::User;
use crate::password::Password;

pub const USER_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:User";

/// The fields a user filter or sort may name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UserField {
    Id,
    ExternalId,
    UserName,
    GivenName,
    FamilyName,
    DisplayName,
    Email,
    Active,
    Created,
    LastModified,
    /// Of the user's groups (member rows).
    GroupId,
    GroupName,
}

pub struct UserSchema;

impl Schema for UserSchema {
    type Field = UserField;

    fn field(path: &AttrPath) -> Option<Resolved<UserField>> {
        let name = path.name.to_ascii_lowercase();
        let sub = path.sub.as_deref().map(str::to_ascii_lowercase);
        Some(match (name.as_str(), sub.as_deref()) {
            ("id", None) => Resolved::Field(UserField::Id),
            ("externalid", None) => Resolved::Field(UserField::ExternalId),
            ("username", None) => Resolved::Field(UserField::UserName),
            ("name", None) => Resolved::AnyOf(vec![UserField::GivenName, UserField::FamilyName]),
            ("name", Some("givenname")) => Resolved::Field(UserField::GivenName),
            ("name", Some("familyname")) => Resolved::Field(UserField::FamilyName),
            ("displayname", None) => Resolved::Field(UserField::DisplayName),
            ("active", None) => Resolved::Field(UserField::Active),
            ("meta", Some("created")) => Resolved::Field(UserField::Created),
            ("meta", Some("lastmodified")) => Resolved::Field(UserField::LastModified),
            ("groups", None) => Resolved::Members,
            ("emails", None) => Resolved::Field(UserField::Email),
            ("emails" | "groups", Some(sub)) => return Self::sub_field(&name, sub),
            _ => return None,
        })
    }

    fn sub_field(attr: &str, sub: &str) -> Option<Resolved<UserField>> {
        let sub = sub.to_ascii_lowercase();
        Some(match (attr.to_ascii_lowercase().as_str(), sub.as_str()) {
            ("emails", "value") => Resolved::Field(UserField::Email),
            // One email per user, always the primary work address.
            ("emails", "type") => Resolved::Constant(FieldValue::Text("work".into())),
            ("emails", "primary") => Resolved::Constant(FieldValue::Bool(true)),
            ("groups", "value") => Resolved::MemberField(UserField::GroupId),
            ("groups", "display") => Resolved::MemberField(UserField::GroupName),
            ("groups", "type") => Resolved::Constant(FieldValue::Text("direct".into())),
            _ => return None,
        })
    }

    fn kind(field: UserField) -> FieldKind {
        match field {
            UserField::Id | UserField::ExternalId | UserField::GroupId => {
                FieldKind::Text { case_exact: true }
            }
            UserField::Active => FieldKind::Bool,
            UserField::Created | UserField::LastModified => FieldKind::Time,
            _ => FieldKind::Text { case_exact: false },
        }
    }

    fn schema_uri() -> &'static str {
        USER_SCHEMA
    }
}

/// A group the user belongs to, for the `groups` attribute.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupRef {
    pub id: String,
    pub name: String,
}

/// The user as a SCIM resource. `base` is the admin API's URL
/// (`https://…/admin/v1`). The password is never rendered.
pub fn user_resource(user: &User, groups: &[GroupRef], base: &str) -> Value {
    let mut out = Map::new();
    out.insert(
        "schemas".into(),
        json!([USER_SCHEMA, super::discovery::USER_EXTENSION]),
    );
    out.insert("id".into(), json!(user.id));
    if let Some(external_id) = &user.external_id {
        out.insert("externalId".into(), json!(external_id));
    }
    out.insert("userName".into(), json!(user.username));
    let mut name = Map::new();
    if let Some(given) = &user.given_name {
        name.insert("givenName".into(), json!(given));
    }
    if let Some(family) = &user.family_name {
        name.insert("familyName".into(), json!(family));
    }
    let formatted = [user.given_name.as_deref(), user.family_name.as_deref()]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join(" ");
    if !formatted.is_empty() {
        name.insert("formatted".into(), json!(formatted));
        out.insert("name".into(), Value::Object(name));
    }
    if let Some(display) = &user.display_name {
        out.insert("displayName".into(), json!(display));
    }
    if let Some(email) = &user.email {
        out.insert(
            "emails".into(),
            json!([{"value": email, "type": "work", "primary": true}]),
        );
    }
    out.insert("active".into(), json!(user.active));
    out.insert(
        super::discovery::USER_EXTENSION.into(),
        json!({"locked": user.locked}),
    );
    if !groups.is_empty() {
        out.insert(
            "groups".into(),
            Value::Array(
                groups
                    .iter()
                    .map(|g| {
                        json!({
                            "value": g.id,
                            "display": g.name,
                            "$ref": format!("{base}/Groups/{}", g.id),
                            "type": "direct",
                        })
                    })
                    .collect(),
            ),
        );
    }
    out.insert(
        "meta".into(),
        meta(
            "User",
            user.created_at,
            user.updated_at,
            user.version,
            &format!("{base}/Users/{}", user.id),
        ),
    );
    Value::Object(out)
}

/// The attributes a client writes (POST, PUT, or a PATCH's result).
#[derive(Debug, Clone)]
pub struct UserWrite {
    pub user_name: String,
    pub external_id: Option<String>,
    pub given_name: Option<String>,
    pub family_name: Option<String>,
    pub display_name: Option<String>,
    pub email: Option<String>,
    /// `None` when the document leaves `active` out: RFC 7643 gives it no
    /// default, so a create makes the user active and a replace keeps
    /// what the user had (a PUT that forgets it must not re-enable a
    /// deactivated account).
    pub active: Option<bool>,
    /// Write-only: hashed before it is stored, never returned.
    pub password: Option<Password>,
}

impl UserWrite {
    /// Reads a User document. Read-only attributes (`id`, `meta`,
    /// `groups`) are ignored, as RFC 7644 §3.5.1 asks of PUT.
    pub fn from_resource(doc: &Value) -> Result<Self, ScimError> {
        let object = doc
            .as_object()
            .ok_or_else(|| ScimError::invalid_syntax("the body must be a JSON object"))?;
        let name = match get_ci(object, "name") {
            None | Some(Value::Null) => None,
            Some(Value::Object(name)) => Some(name),
            Some(_) => return Err(ScimError::invalid_value("name must be an object")),
        };
        let email = match get_ci(object, "emails") {
            None | Some(Value::Null) => None,
            Some(Value::Array(list)) if list.is_empty() => None,
            Some(Value::Array(list)) => {
                // One address per user: the primary one, or the only one.
                let chosen = match list.as_slice() {
                    [one] => one,
                    many => many
                        .iter()
                        .find(|e| e.get("primary") == Some(&Value::Bool(true)))
                        .ok_or_else(|| {
                            ScimError::invalid_value(
                                "Latchkey keeps one email per user: mark one primary",
                            )
                        })?,
                };
                let value = chosen
                    .as_object()
                    .and_then(|e| get_ci(e, "value"))
                    .and_then(Value::as_str)
                    .ok_or_else(|| ScimError::invalid_value("emails[].value must be a string"))?;
                Some(check_text("emails.value", value)?)
            }
            Some(_) => return Err(ScimError::invalid_value("emails must be an array")),
        };
        let active = match get_ci(object, "active") {
            None | Some(Value::Null) => None,
            Some(Value::Bool(b)) => Some(*b),
            Some(_) => return Err(ScimError::invalid_value("active must be a boolean")),
        };
        let password = match get_ci(object, "password") {
            None | Some(Value::Null) => None,
            Some(Value::String(p)) => Some(Password::new(p.clone())),
            Some(_) => return Err(ScimError::invalid_value("password must be a string")),
        };
        Ok(UserWrite {
            user_name: check_text("userName", &required_string(object, "userName")?)?,
            external_id: optional_string(object, "externalId")?,
            given_name: name
                .map(|n| optional_string(n, "givenName"))
                .transpose()?
                .flatten(),
            family_name: name
                .map(|n| optional_string(n, "familyName"))
                .transpose()?
                .flatten(),
            display_name: optional_string(object, "displayName")?,
            email,
            active,
            password,
        })
    }
}

/// 256 characters are at most 1,024 bytes: within the index entry limit
/// of both engines, so this limit may count characters.
fn check_text(field: &str, value: &str) -> Result<String, ScimError> {
    if value.trim().is_empty() || value.chars().count() > 256 || value.chars().any(char::is_control)
    {
        return Err(ScimError::invalid_value(format!(
            "{field} must be 1 to 256 characters without control characters"
        )));
    }
    Ok(value.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scim::filter::parse_filter;
    use crate::scim::query::{Cond, resolve};

    fn user() -> User {
        User {
            id: "u1".into(),
            username: "alice".into(),
            password_hash: Some("$argon2id$secret".into()),
            given_name: Some("Alice".into()),
            family_name: Some("Liddell".into()),
            email: Some("alice@example.com".into()),
            active: true,
            created_at: 0,
            updated_at: 60,
            external_id: None,
            display_name: None,
            version: 3,
            locked: false,
        }
    }

    #[test]
    fn a_user_renders_without_its_password() {
        let doc = user_resource(
            &user(),
            &[GroupRef {
                id: "g1".into(),
                name: "admins".into(),
            }],
            "https://id.example.com/admin/v1",
        );
        assert_eq!(doc["userName"], "alice");
        assert_eq!(doc["name"]["formatted"], "Alice Liddell");
        assert_eq!(doc["emails"][0]["primary"], true);
        assert_eq!(doc["groups"][0]["display"], "admins");
        assert_eq!(doc["meta"]["version"], "W/\"3\"");
        assert_eq!(doc["meta"]["lastModified"], "1970-01-01T00:01:00Z");
        assert_eq!(
            doc["meta"]["location"],
            "https://id.example.com/admin/v1/Users/u1"
        );
        assert!(!doc.to_string().contains("argon2"));
        assert!(doc.get("password").is_none());
    }

    #[test]
    fn documents_are_read_ignoring_attribute_case() {
        let write = UserWrite::from_resource(&json!({
            "schemas": [USER_SCHEMA],
            "USERNAME": "bob",
            "name": {"GivenName": "Bob"},
            "emails": [{"value": "b@x.org", "primary": false}, {"value": "bob@example.com", "primary": true}],
            "password": "a new password",
            "id": "ignored",
        }))
        .unwrap();
        assert_eq!(write.user_name, "bob");
        assert_eq!(write.given_name.as_deref(), Some("Bob"));
        assert_eq!(write.email.as_deref(), Some("bob@example.com"));
        assert_eq!(write.active, None, "left out: the writer decides");
        assert_eq!(write.password.unwrap().expose(), "a new password");
        for bad in [
            json!({}),
            json!({"userName": ""}),
            json!({"userName": 7}),
            json!({"userName": "x", "active": "yes"}),
            json!({"userName": "x", "emails": [{"value": "a"}, {"value": "b"}]}),
            json!([]),
        ] {
            assert!(UserWrite::from_resource(&bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn filters_resolve_to_fields() {
        let cond = |f: &str| resolve::<UserSchema>(&parse_filter(f).unwrap());
        assert!(matches!(
            cond(r#"userName eq "alice""#).unwrap(),
            Cond::Cmp {
                field: UserField::UserName,
                ..
            }
        ));
        assert!(matches!(
            cond(r#"urn:ietf:params:scim:schemas:core:2.0:User:name.familyName co "d""#).unwrap(),
            Cond::Cmp {
                field: UserField::FamilyName,
                ..
            }
        ));
        assert!(matches!(
            cond(r#"emails[type eq "work" and value ew "example.com"]"#).unwrap(),
            Cond::And(..)
        ));
        assert!(matches!(
            cond(r#"groups[value eq "g1" and display eq "admins"]"#).unwrap(),
            Cond::AnyMember(_)
        ));
        assert!(matches!(
            cond(r#"groups.display eq "admins""#).unwrap(),
            Cond::AnyMember(_)
        ));
        assert_eq!(
            cond(r#"emails.type eq "home""#).unwrap(),
            Cond::Const(false)
        );
        assert!(matches!(
            cond("meta.created gt \"2020-01-01T00:00:00Z\"").unwrap(),
            Cond::Cmp {
                value: FieldValue::Time(1_577_836_800),
                ..
            }
        ));
        for bad in [
            r#"nickName eq "x""#,
            r#"active gt true"#,
            r#"active eq "yes""#,
            r#"meta.created co "2020""#,
            r#"meta.created eq "last week""#,
            r#"name eq "x""#,
            r#"urn:other:schema:userName eq "x""#,
            r#"emails[groups[value eq "x"]]"#,
        ] {
            let err = cond(bad).unwrap_err();
            assert_eq!(err.scim_type, Some("invalidFilter"), "{bad}");
        }
    }
}
