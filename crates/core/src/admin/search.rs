//! `POST …/.search` (RFC 7644 §3.4.3): the query of a list request sent
//! as a `SearchRequest` body, so filters need not travel in a URL. On
//! `/Users` and `/Groups` it is exactly their list; at the SCIM root it
//! searches users and groups together.

use serde_json::Value;

use super::{AdminError, AdminResult, Answer, Caller, ListParams, Permission, ScimDirectory};
use crate::scim::ScimError;
use crate::scim::query::{DEFAULT_COUNT, MAX_COUNT};
use crate::scim::resource::{get_ci, list_response};

pub const SEARCH_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:SearchRequest";

impl ListParams {
    /// The list parameters of a `SearchRequest` body.
    pub fn from_search_request(body: &Value) -> Result<ListParams, ScimError> {
        let object = body
            .as_object()
            .ok_or_else(|| ScimError::invalid_syntax("the body must be a JSON object"))?;
        let schemas_ok = get_ci(object, "schemas")
            .and_then(Value::as_array)
            .is_some_and(|s| s.iter().any(|v| v.as_str() == Some(SEARCH_SCHEMA)));
        if !schemas_ok {
            return Err(ScimError::invalid_syntax(format!(
                "schemas must contain {SEARCH_SCHEMA}"
            )));
        }
        let text = |name: &str| -> Result<Option<String>, ScimError> {
            match get_ci(object, name) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::String(s)) => Ok(Some(s.clone())),
                Some(_) => Err(ScimError::invalid_value(format!("{name} must be a string"))),
            }
        };
        // attributes and excludedAttributes are arrays of names here
        // (a comma-separated string is accepted too).
        let names = |name: &str| -> Result<Option<String>, ScimError> {
            match get_ci(object, name) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::String(s)) => Ok(Some(s.clone())),
                Some(Value::Array(list)) => list
                    .iter()
                    .map(|v| {
                        v.as_str().map(str::to_owned).ok_or_else(|| {
                            ScimError::invalid_value(format!("{name} must hold strings"))
                        })
                    })
                    .collect::<Result<Vec<_>, _>>()
                    .map(|v| Some(v.join(","))),
                Some(_) => Err(ScimError::invalid_value(format!(
                    "{name} must be an array of attribute names"
                ))),
            }
        };
        let number = |name: &str| -> Result<Option<String>, ScimError> {
            match get_ci(object, name) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::Number(n)) if n.is_i64() => Ok(Some(n.to_string())),
                Some(_) => Err(ScimError::invalid_value(format!(
                    "{name} must be an integer"
                ))),
            }
        };
        Ok(ListParams {
            filter: text("filter")?,
            sort_by: text("sortBy")?,
            sort_order: text("sortOrder")?,
            start_index: number("startIndex")?,
            count: number("count")?,
            attributes: names("attributes")?,
            excluded_attributes: names("excludedAttributes")?,
            cursor: text("cursor")?,
        })
    }
}

impl ScimDirectory {
    /// A search at the SCIM root: users, then groups, each matched by the
    /// filter where it applies to that type (a filter naming `userName`
    /// finds no groups); `startIndex` and `count` page the combined list.
    pub async fn search_all(&self, caller: &Caller, params: &ListParams) -> AdminResult<Answer> {
        caller.require(Permission::ReadUsers)?;
        if params.cursor.is_some() {
            return Err(ScimError::invalid_value(
                "cursor paging is per resource type: search /Users or /Groups",
            )
            .into());
        }
        let parse = super::audit::number;
        let start = parse("startIndex", &params.start_index)?
            .unwrap_or(1)
            .max(1) as u64;
        let count = parse("count", &params.count)?
            .map(|c| c.clamp(0, i64::from(MAX_COUNT)) as u64)
            .unwrap_or(u64::from(DEFAULT_COUNT));
        // Enough of each type to fill the requested window of the whole.
        let window = ListParams {
            start_index: Some("1".into()),
            count: Some((start - 1 + count).min(u64::from(MAX_COUNT)).to_string()),
            ..params.clone()
        };
        let mut total = 0;
        let mut resources = Vec::new();
        let mut refusals = Vec::new();
        for answer in [
            self.list_users(caller, &window).await,
            self.list_groups(caller, &window).await,
        ] {
            match answer {
                Ok(answer) => {
                    total += answer.body["totalResults"].as_u64().unwrap_or(0);
                    if let Some(Value::Array(found)) = answer.body.get("Resources") {
                        resources.extend(found.iter().cloned());
                    }
                }
                // A filter or sort that names another type's attribute.
                Err(AdminError::Scim(e)) if e.status == crate::scim::ScimStatus::BadRequest => {
                    refusals.push(e)
                }
                Err(e) => return Err(e),
            }
        }
        if refusals.len() == 2 {
            return Err(refusals.remove(0).into());
        }
        let page: Vec<Value> = resources
            .into_iter()
            .skip((start - 1) as usize)
            .take(count as usize)
            .collect();
        Ok(Answer {
            status: super::Outcome::Read,
            body: list_response(total, start, page),
            etag: None,
            location: None,
        })
    }
}
