//! `GET /admin/v1/AuditEvents`: the audit trail, newest first, for the
//! roles that may read it.

use serde_json::json;

use super::{AdminResult, Answer, Caller, Permission, ScimDirectory};
use crate::audit::{AuditEvent, AuditQuery};
use crate::scim::ScimError;
use crate::scim::query::{ListQuery, Page};
use crate::scim::resource::list_response;
use crate::scim::time::{format_datetime, parse_datetime};

pub const AUDIT_SCHEMA: &str = "urn:ietf:params:scim:schemas:latchkey:2.0:AuditEvent";

/// The query parameters of an audit read, as sent.
#[derive(Debug, Clone, Default)]
pub struct AuditParams {
    pub event_type: Option<String>,
    pub actor: Option<String>,
    pub subject: Option<String>,
    /// RFC 3339.
    pub since: Option<String>,
    pub until: Option<String>,
    pub start_index: Option<String>,
    pub count: Option<String>,
}

/// An integer query parameter (`startIndex`, `count`), `None` when absent.
pub(super) fn number(name: &str, value: &Option<String>) -> Result<Option<i64>, ScimError> {
    value
        .as_deref()
        .map(|v| {
            v.trim()
                .parse::<i64>()
                .map_err(|_| ScimError::invalid_value(format!("{name} must be an integer")))
        })
        .transpose()
}

fn time(name: &str, value: &Option<String>) -> Result<Option<i64>, ScimError> {
    value
        .as_deref()
        .map(|v| {
            parse_datetime(v).ok_or_else(|| {
                ScimError::invalid_value(format!("{name} must be an RFC 3339 date-time"))
            })
        })
        .transpose()
}

pub fn event_resource(event: &AuditEvent) -> serde_json::Value {
    json!({
        "schemas": [AUDIT_SCHEMA],
        "id": event.id,
        "timestamp": format_datetime(event.at),
        "eventType": event.event_type,
        "outcome": event.outcome,
        "actor": event.actor,
        "subject": event.subject,
        "clientId": event.client_id,
        "ip": event.ip,
        "detail": event.detail,
        "requestId": event.request_id,
        // Repeated refused sign-ins folded into this one event.
        "occurrences": event.occurrences,
        "lastTimestamp": event.last_at.map(format_datetime),
    })
}

impl AuditParams {
    pub fn query(&self) -> Result<AuditQuery, ScimError> {
        let (start_index, count) = ListQuery::<()>::page(
            number("startIndex", &self.start_index)?,
            number("count", &self.count)?,
        );
        Ok(AuditQuery {
            event_type: self.event_type.clone().filter(|v| !v.is_empty()),
            actor: self.actor.clone().filter(|v| !v.is_empty()),
            subject: self.subject.clone().filter(|v| !v.is_empty()),
            since: time("since", &self.since)?,
            until: time("until", &self.until)?,
            start_index,
            count,
        })
    }
}

impl ScimDirectory {
    pub async fn audit_events(&self, caller: &Caller, params: &AuditParams) -> AdminResult<Answer> {
        caller.require(Permission::ReadAudit)?;
        let query = params.query()?;
        let Page { total, items, .. } = self.directory.repos.audit.query(&query).await?;
        Ok(Answer {
            status: super::Outcome::Read,
            body: list_response(
                total,
                query.start_index,
                items.iter().map(event_resource).collect(),
            ),
            etag: None,
            location: None,
        })
    }
}
