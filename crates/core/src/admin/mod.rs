//! The identity domain's admin API (`/admin/v1/`): bearer callers, the
//! role-based permission table, the registry of apps and keys, and the
//! SCIM adapter over the typed directory service (`crate::directory`):
//! `scim_users`, `scim_groups` and `scim_sessions` turn SCIM documents,
//! PATCH operations and filters into typed calls and typed results back
//! into SCIM resources. The HTTP layer only parses requests and renders
//! answers.

mod audit;
mod caller;
mod permission;
mod privilege;
mod registry;
mod scim_groups;
mod scim_sessions;
mod scim_users;
mod search;

use std::sync::Arc;

use serde_json::Value;

pub use audit::{AUDIT_SCHEMA, AuditParams, event_resource};
pub use caller::{BearerError, BearerVerifier, Caller};
pub use permission::Permission;
pub use registry::{
    Actor, RegistryError, RegistryResult, RegistryService, WithSecret, app_json, key_json,
    resource_server_json,
};

use crate::directory::DirectoryError;
pub use crate::directory::DirectoryService;
use crate::scim::ScimError;
use crate::scim::filter::{parse_filter, parse_patch_path};
use crate::scim::query::{ListQuery, Resolved, Schema, resolve};
use crate::scim::resource::{Projection, parse_if_match};
use crate::store::StoreError;

/// A refused admin request: the caller may not (RFC 6750), or the
/// request is wrong (SCIM error).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AdminError {
    Denied(BearerError),
    Scim(ScimError),
}

impl From<BearerError> for AdminError {
    fn from(e: BearerError) -> Self {
        AdminError::Denied(e)
    }
}

impl From<ScimError> for AdminError {
    fn from(e: ScimError) -> Self {
        AdminError::Scim(e)
    }
}

impl From<StoreError> for AdminError {
    fn from(e: StoreError) -> Self {
        AdminError::Scim(e.into())
    }
}

/// The directory's refusals as SCIM errors (RFC 7644 §3.12).
impl From<DirectoryError> for AdminError {
    fn from(e: DirectoryError) -> Self {
        AdminError::Scim(match e {
            DirectoryError::Denied(denied) => return AdminError::Denied(denied),
            DirectoryError::NotFound(detail) => ScimError::not_found(detail),
            DirectoryError::Invalid { detail, .. } => ScimError::invalid_value(detail),
            DirectoryError::Immutable(detail) => ScimError::mutability(detail),
            DirectoryError::Taken(detail) => ScimError::uniqueness(detail),
            DirectoryError::Conflict(detail) => ScimError::conflict(detail),
            DirectoryError::VersionMismatch => ScimError::precondition_failed(),
            DirectoryError::Unavailable(detail) => ScimError::unavailable(detail),
            DirectoryError::Internal(detail) => ScimError::server(detail),
        })
    }
}

pub type AdminResult<T> = Result<T, AdminError>;

/// What a successful request did (the HTTP layer gives each its status:
/// 200, 201, 204).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Here is the resource or list.
    Read,
    Created,
    /// Done; nothing to show (a deletion).
    Done,
}

/// A successful answer: what happened, the SCIM body, and the resource's
/// ETag and location when there is one resource.
#[derive(Debug, Clone, PartialEq)]
pub struct Answer {
    pub status: Outcome,
    pub body: Value,
    pub etag: Option<String>,
    pub location: Option<String>,
}

impl Answer {
    fn resource(status: Outcome, body: Value) -> Self {
        let etag = body["meta"]["version"].as_str().map(str::to_owned);
        let location = body["meta"]["location"].as_str().map(str::to_owned);
        Answer {
            status,
            body,
            etag,
            location,
        }
    }

    fn no_content() -> Self {
        Answer {
            status: Outcome::Done,
            body: Value::Null,
            etag: None,
            location: None,
        }
    }
}

/// The query parameters of a list request (RFC 7644 §3.4.2), as sent.
#[derive(Debug, Clone, Default)]
pub struct ListParams {
    pub filter: Option<String>,
    pub sort_by: Option<String>,
    pub sort_order: Option<String>,
    pub start_index: Option<String>,
    pub count: Option<String>,
    pub attributes: Option<String>,
    pub excluded_attributes: Option<String>,
    /// RFC 9865: present (even empty) for cursor paging.
    pub cursor: Option<String>,
}

impl ListParams {
    pub fn query<S: Schema>(&self) -> Result<(ListQuery<S::Field>, Projection), ScimError> {
        let filter = match self.filter.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(text) => Some(resolve::<S>(
                &parse_filter(text).map_err(|e| ScimError::invalid_filter(e.0))?,
            )?),
        };
        let sort_by = match self.sort_by.as_deref() {
            None | Some("") => None,
            Some(name) => {
                let path = parse_patch_path(name)
                    .ok()
                    .filter(|p| p.filter.is_none())
                    .ok_or_else(|| {
                        ScimError::invalid_value(format!("sortBy {name:?} is not an attribute"))
                    })?;
                match S::field(&path.attr) {
                    Some(Resolved::Field(f)) => Some(f),
                    _ => {
                        return Err(ScimError::invalid_value(format!(
                            "sortBy {name:?} is not a sortable attribute"
                        )));
                    }
                }
            }
        };
        let descending = match self.sort_order.as_deref() {
            None | Some("") | Some("ascending") => false,
            Some("descending") => true,
            Some(other) => {
                return Err(ScimError::invalid_value(format!(
                    "sortOrder {other:?}: use ascending or descending"
                )));
            }
        };
        let number = audit::number;
        let (start_index, count) = ListQuery::<S::Field>::page(
            number("startIndex", &self.start_index)?,
            number("count", &self.count)?,
        );
        let projection = Projection::parse(
            self.attributes.as_deref(),
            self.excluded_attributes.as_deref(),
        )?;
        let cursor = match &self.cursor {
            None => None,
            Some(_) if self.start_index.is_some() => {
                return Err(ScimError::invalid_value(
                    "use cursor or startIndex, not both",
                ));
            }
            Some(_) if sort_by.is_some() => {
                return Err(ScimError::invalid_value(
                    "cursor paging follows the default order: leave out sortBy",
                ));
            }
            Some(token) => Some(decode_cursor(token)?),
        };
        Ok((
            ListQuery {
                filter,
                sort_by,
                descending,
                start_index,
                count,
                cursor,
            },
            projection,
        ))
    }
}

/// A cursor (RFC 9865) is the last resource id of the previous page,
/// base64url-encoded: opaque to clients, stable (keyset paging never
/// expires), and cheap however deep the page.
pub fn encode_cursor(id: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(id)
}

fn decode_cursor(token: &str) -> Result<String, ScimError> {
    use base64::Engine as _;
    if token.is_empty() {
        return Ok(String::new());
    }
    let invalid = || {
        ScimError::new(
            crate::scim::ScimStatus::BadRequest,
            Some("invalidCursor"),
            "the cursor is not one this server issued",
        )
    };
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(token)
        .map_err(|_| invalid())?;
    let id = String::from_utf8(bytes).map_err(|_| invalid())?;
    if id.is_empty() || id.len() > 64 || !id.chars().all(|c| c.is_ascii_hexdigit() || c == '-') {
        return Err(invalid());
    }
    Ok(id)
}

/// The SCIM face of the directory: SCIM documents in, SCIM resources
/// out; every rule is the typed service's.
pub struct ScimDirectory {
    pub directory: Arc<DirectoryService>,
}

impl ScimDirectory {
    pub fn new(directory: Arc<DirectoryService>) -> Self {
        ScimDirectory { directory }
    }

    fn base_url(&self) -> &str {
        &self.directory.base_url
    }
}

/// A written resource must name its schema (RFC 7644 §3.3).
fn require_schema(doc: &Value, schema: &str) -> Result<(), ScimError> {
    let ok = doc
        .as_object()
        .and_then(|o| crate::scim::resource::get_ci(o, "schemas"))
        .and_then(Value::as_array)
        .is_some_and(|s| s.iter().any(|v| v.as_str() == Some(schema)));
    if ok {
        Ok(())
    } else {
        Err(ScimError::invalid_syntax(format!(
            "schemas must contain {schema}"
        )))
    }
}

/// A list answer: the page, with the cursor of the next one when the
/// query pages by cursor (RFC 9865).
fn list_answer<Q, T>(
    query: &ListQuery<Q>,
    page: &crate::scim::query::Page<T>,
    id_of: impl Fn(&T) -> &str,
    resources: Vec<Value>,
) -> Answer {
    let body = match &query.cursor {
        None => crate::scim::resource::list_response(page.total, query.start_index, resources),
        Some(_) => crate::scim::resource::cursor_list_response(
            page.total,
            resources,
            page.more
                .then(|| page.items.last().map(|r| encode_cursor(id_of(r))))
                .flatten(),
        ),
    };
    Answer {
        status: Outcome::Read,
        body,
        etag: None,
        location: None,
    }
}

/// The version an `If-Match` header asks for, if any.
pub fn if_match(header: Option<&str>) -> Result<Option<i64>, ScimError> {
    match header {
        None => Ok(None),
        Some(value) => parse_if_match(value),
    }
}
