//! What every SCIM resource shares: case-insensitive attribute access,
//! `meta` with its ETag, list responses, and the `attributes` /
//! `excludedAttributes` projection (RFC 7644 §3.9).

use serde_json::{Map, Value, json};

use super::ScimError;
use super::filter::parse_patch_path;
use super::time::format_datetime;

pub const LIST_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:ListResponse";
pub const PATCH_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";
pub const ERROR_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:Error";

/// Longest optional string attribute (`externalId`, `displayName`,
/// `name.givenName`, …), in UTF-8 bytes.
pub const MAX_ATTRIBUTE_BYTES: usize = 1024;

/// Attribute names are case-insensitive (RFC 7643 §2.1).
pub fn get_ci<'a>(object: &'a Map<String, Value>, name: &str) -> Option<&'a Value> {
    object
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v)
}

/// The key under which `name` is stored in `object`, if any.
pub fn key_ci(object: &Map<String, Value>, name: &str) -> Option<String> {
    object
        .keys()
        .find(|k| k.eq_ignore_ascii_case(name))
        .cloned()
}

pub fn required_string(object: &Map<String, Value>, name: &str) -> Result<String, ScimError> {
    match get_ci(object, name) {
        Some(Value::String(s)) => Ok(s.clone()),
        Some(_) => Err(ScimError::invalid_value(format!("{name} must be a string"))),
        None => Err(ScimError::invalid_value(format!("{name} is required"))),
    }
}

pub fn optional_string(
    object: &Map<String, Value>,
    name: &str,
) -> Result<Option<String>, ScimError> {
    match get_ci(object, name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.is_empty() => Ok(None),
        // Bytes, not characters: these attributes are indexed, and an
        // index entry is limited in bytes (PostgreSQL: about 2,700).
        Some(Value::String(s))
            if s.len() > MAX_ATTRIBUTE_BYTES || s.chars().any(char::is_control) =>
        {
            Err(ScimError::invalid_value(format!(
                "{name} must be at most {MAX_ATTRIBUTE_BYTES} bytes (UTF-8) without control characters"
            )))
        }
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(ScimError::invalid_value(format!("{name} must be a string"))),
    }
}

/// The weak ETag of a resource version.
pub fn etag(version: i64) -> String {
    format!("W/\"{version}\"")
}

/// The version an `If-Match` header names; `None` for `*`.
pub fn parse_if_match(value: &str) -> Result<Option<i64>, ScimError> {
    let value = value.trim();
    if value == "*" {
        return Ok(None);
    }
    value
        .trim_start_matches("W/")
        .trim_matches('"')
        .parse::<i64>()
        .map(Some)
        .map_err(|_| {
            ScimError::new(
                super::ScimStatus::PreconditionFailed,
                None,
                "If-Match names no version of this resource",
            )
        })
}

pub fn meta(
    resource_type: &str,
    created: i64,
    modified: i64,
    version: i64,
    location: &str,
) -> Value {
    json!({
        "resourceType": resource_type,
        "created": format_datetime(created),
        "lastModified": format_datetime(modified),
        "version": etag(version),
        "location": location,
    })
}

pub fn list_response(total: u64, start_index: u64, resources: Vec<Value>) -> Value {
    json!({
        "schemas": [LIST_SCHEMA],
        "totalResults": total,
        "startIndex": start_index,
        "itemsPerPage": resources.len(),
        "Resources": resources,
    })
}

/// A ListResponse of cursor paging (RFC 9865 §2): `nextCursor` when
/// another page follows, no `startIndex`.
pub fn cursor_list_response(
    total: u64,
    resources: Vec<Value>,
    next_cursor: Option<String>,
) -> Value {
    let mut out = json!({
        "schemas": [LIST_SCHEMA],
        "totalResults": total,
        "itemsPerPage": resources.len(),
        "Resources": resources,
    });
    if let Some(next) = next_cursor {
        out["nextCursor"] = json!(next);
    }
    out
}

/// `attributes` or `excludedAttributes` (comma-separated paths, with or
/// without the schema URI).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Projection {
    All,
    Only(Vec<(String, Option<String>)>),
    Except(Vec<(String, Option<String>)>),
}

impl Projection {
    pub fn parse(
        attributes: Option<&str>,
        excluded: Option<&str>,
    ) -> Result<Projection, ScimError> {
        let paths = |list: &str| -> Result<Vec<(String, Option<String>)>, ScimError> {
            list.split(',')
                .map(str::trim)
                .filter(|p| !p.is_empty())
                .map(|p| {
                    let path = parse_patch_path(p)
                        .map_err(|e| ScimError::invalid_value(format!("attributes: {e}")))?;
                    if path.filter.is_some() {
                        return Err(ScimError::invalid_value(
                            "attributes: value filters are not allowed here",
                        ));
                    }
                    Ok((path.attr.name, path.attr.sub))
                })
                .collect()
        };
        match (attributes, excluded) {
            (Some(_), Some(_)) => Err(ScimError::invalid_value(
                "give attributes or excludedAttributes, not both",
            )),
            (Some(a), None) => Ok(Projection::Only(paths(a)?)),
            (None, Some(e)) => Ok(Projection::Except(paths(e)?)),
            (None, None) => Ok(Projection::All),
        }
    }

    /// Applies the projection; `id` and `schemas` are always returned
    /// (`returned: always`), as is `meta.resourceType`.
    pub fn apply(&self, resource: Value) -> Value {
        let Value::Object(object) = resource else {
            return resource;
        };
        let always = |k: &str| k == "id" || k == "schemas";
        match self {
            Projection::All => Value::Object(object),
            Projection::Only(paths) => {
                let mut out = Map::new();
                for (key, value) in object {
                    if always(&key) {
                        out.insert(key, value);
                        continue;
                    }
                    let wanted: Vec<&Option<String>> = paths
                        .iter()
                        .filter(|(name, _)| name.eq_ignore_ascii_case(&key))
                        .map(|(_, sub)| sub)
                        .collect();
                    if wanted.is_empty() {
                        continue;
                    }
                    if wanted.iter().any(|s| s.is_none()) {
                        out.insert(key, value);
                    } else {
                        let subs: Vec<&str> = wanted.iter().filter_map(|s| s.as_deref()).collect();
                        out.insert(key, keep_subs(value, &subs));
                    }
                }
                Value::Object(out)
            }
            Projection::Except(paths) => {
                let mut out = Map::new();
                for (key, value) in object {
                    let dropped: Vec<&Option<String>> = paths
                        .iter()
                        .filter(|(name, _)| name.eq_ignore_ascii_case(&key))
                        .map(|(_, sub)| sub)
                        .collect();
                    if always(&key) || dropped.is_empty() {
                        out.insert(key, value);
                    } else if dropped.iter().all(|s| s.is_some()) {
                        let subs: Vec<&str> = dropped.iter().filter_map(|s| s.as_deref()).collect();
                        out.insert(key, drop_subs(value, &subs));
                    }
                }
                Value::Object(out)
            }
        }
    }
}

fn keep_subs(value: Value, subs: &[&str]) -> Value {
    match value {
        Value::Object(o) => Value::Object(
            o.into_iter()
                .filter(|(k, _)| subs.iter().any(|s| s.eq_ignore_ascii_case(k)))
                .collect(),
        ),
        Value::Array(items) => {
            Value::Array(items.into_iter().map(|v| keep_subs(v, subs)).collect())
        }
        other => other,
    }
}

fn drop_subs(value: Value, subs: &[&str]) -> Value {
    match value {
        Value::Object(o) => Value::Object(
            o.into_iter()
                .filter(|(k, _)| !subs.iter().any(|s| s.eq_ignore_ascii_case(k)))
                .collect(),
        ),
        Value::Array(items) => {
            Value::Array(items.into_iter().map(|v| drop_subs(v, subs)).collect())
        }
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn projections_keep_id_and_schemas() {
        let doc = json!({
            "schemas": ["s"], "id": "1", "userName": "a",
            "name": {"givenName": "A", "familyName": "B"},
            "emails": [{"value": "a@x", "type": "work"}],
        });
        let only = Projection::parse(Some("userName,name.givenName,emails.value"), None).unwrap();
        assert_eq!(
            only.apply(doc.clone()),
            json!({"schemas": ["s"], "id": "1", "userName": "a", "name": {"givenName": "A"}, "emails": [{"value": "a@x"}]})
        );
        let except = Projection::parse(None, Some("NAME.familyName,emails,id")).unwrap();
        assert_eq!(
            except.apply(doc),
            json!({"schemas": ["s"], "id": "1", "userName": "a", "name": {"givenName": "A"}})
        );
        assert!(Projection::parse(Some("a"), Some("b")).is_err());
        assert!(Projection::parse(Some("emails[type eq \"x\"]"), None).is_err());
    }

    #[test]
    fn if_match_names_a_version() {
        assert_eq!(parse_if_match("W/\"3\""), Ok(Some(3)));
        assert_eq!(parse_if_match("\"3\""), Ok(Some(3)));
        assert_eq!(parse_if_match("*"), Ok(None));
        assert_eq!(
            parse_if_match("W/\"x\"").unwrap_err().status,
            super::super::ScimStatus::PreconditionFailed
        );
        assert_eq!(etag(7), "W/\"7\"");
    }
}
