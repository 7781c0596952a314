//! Audit events: who did what to whom, when, from where, and how it ended.
//! Recorded for sign-ins and for every administrative change; read by the
//! Audit, Security and Identity Domain Administrators. Never a secret: a
//! detail is a reason or a name, not a password or a token.

mod names;
mod queue;

use async_trait::async_trait;

pub use names::{AuditNames, UNKNOWN_USER_PREFIX};
pub use queue::{AuditQueue, AuditQueueConfig};

use crate::scim::query::Page;
use crate::store::StoreResult;

/// What happened.
pub mod kind {
    pub const SIGN_IN: &str = "user.signin";
    pub const REFRESH_REUSE: &str = "token.refresh_reuse";
    /// A rotated-out refresh token presented again within the app's reuse
    /// interval, answered with a sibling of its successor.
    pub const REFRESH_REDEEMED: &str = "token.refresh_redeemed";
    pub const TOKEN_REVOKED: &str = "token.revoked";
    pub const SESSION_ENDED: &str = "session.ended";
    pub const USER_CREATED: &str = "user.created";
    pub const USER_UPDATED: &str = "user.updated";
    pub const USER_DELETED: &str = "user.deleted";
    pub const USER_LOCKED: &str = "user.locked";
    pub const USER_UNLOCKED: &str = "user.unlocked";
    pub const PASSWORD_CHANGED: &str = "user.password_changed";
    /// A self-service password change whose current password did not check.
    pub const PASSWORD_CHANGE_REFUSED: &str = "user.password_change_refused";
    pub const GROUP_CREATED: &str = "group.created";
    pub const GROUP_UPDATED: &str = "group.updated";
    pub const GROUP_DELETED: &str = "group.deleted";
    pub const USER_ACTIVATED: &str = "user.activated";
    pub const USER_DEACTIVATED: &str = "user.deactivated";
    pub const SESSIONS_ENDED: &str = "user.sessions_ended";
    pub const ROLE_GRANTED: &str = "user.role_granted";
    pub const ROLE_REVOKED: &str = "user.role_revoked";
    pub const GROUP_ROLE_GRANTED: &str = "group.role_granted";
    pub const GROUP_ROLE_REVOKED: &str = "group.role_revoked";
    pub const APP_CREATED: &str = "app.created";
    pub const APP_UPDATED: &str = "app.updated";
    pub const APP_SECRET_ROTATED: &str = "app.secret_rotated";
    pub const APP_ACTIVATED: &str = "app.activated";
    pub const APP_DEACTIVATED: &str = "app.deactivated";
    pub const APP_DELETED: &str = "app.deleted";
    pub const KEY_ROTATED: &str = "key.rotated";
    pub const RESOURCE_SERVER_CREATED: &str = "resource_server.created";
    pub const RESOURCE_SERVER_UPDATED: &str = "resource_server.updated";
    pub const RESOURCE_SERVER_DELETED: &str = "resource_server.deleted";
    pub const DOMAIN_APPLIED: &str = "domain.applied";
    /// The whole domain, hashes included, was written out.
    pub const DOMAIN_EXPORTED: &str = "domain.exported";
}

/// The actor of changes made with the `latchkey` command line.
pub const CLI_ACTOR: &str = "cli";
/// The actor of what the server does by itself (scheduled key rotation).
pub const SYSTEM_ACTOR: &str = "system";

/// Longest detail, actor or subject kept (a typo'd username is still a
/// string the client chose).
const MAX_FIELD: usize = 256;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEvent {
    pub id: String,
    pub at: i64,
    pub event_type: String,
    /// `success` or `failure`.
    pub outcome: String,
    /// Who acted: a user id, a client_id, or `cli`.
    pub actor: Option<String>,
    /// Whom it concerned: a user id or name, a group id, a session id.
    pub subject: Option<String>,
    pub client_id: Option<String>,
    pub ip: Option<String>,
    pub detail: Option<String>,
    /// The HTTP request it happened in (`X-Request-Id`), as its log lines
    /// carry it.
    pub request_id: Option<String>,
    /// How many times it happened: repeated refused sign-ins of one
    /// (username, IP) are folded into one event (`AuditQueue`).
    pub occurrences: u32,
    /// When it last happened, for a folded event.
    pub last_at: Option<i64>,
}

impl AuditEvent {
    pub fn new(event_type: &str, success: bool, at: i64) -> Self {
        AuditEvent {
            id: uuid::Uuid::now_v7().to_string(),
            at,
            event_type: event_type.to_owned(),
            outcome: if success { "success" } else { "failure" }.to_owned(),
            actor: None,
            subject: None,
            client_id: None,
            ip: None,
            detail: None,
            request_id: crate::meta::current_request_id(),
            occurrences: 1,
            last_at: None,
        }
    }

    /// Repeated refused sign-ins of one subject from one address (through
    /// one client, for one reason) may be folded into one event with a
    /// count (`AuditQueue`); nothing else is.
    pub fn fold_key(&self) -> Option<String> {
        if self.event_type != kind::SIGN_IN || self.outcome != "failure" {
            return None;
        }
        let part = |v: &Option<String>| v.clone().unwrap_or_default();
        // Joined by a control character, which none of them holds (a
        // stored username, a keyed hash, an address, a client_id, a reason).
        Some(
            [
                part(&self.subject),
                part(&self.ip),
                part(&self.client_id),
                part(&self.detail),
            ]
            .join("\u{1f}"),
        )
    }

    fn clip(value: impl Into<String>) -> Option<String> {
        let value: String = value.into();
        Some(value.chars().take(MAX_FIELD).collect())
    }

    pub fn actor(mut self, actor: impl Into<String>) -> Self {
        self.actor = Self::clip(actor);
        self
    }
    pub fn subject(mut self, subject: impl Into<String>) -> Self {
        self.subject = Self::clip(subject);
        self
    }
    pub fn client(mut self, client_id: impl Into<String>) -> Self {
        self.client_id = Self::clip(client_id);
        self
    }
    pub fn ip(mut self, ip: Option<std::net::IpAddr>) -> Self {
        self.ip = ip.map(|ip| ip.to_string());
        self
    }
    pub fn detail(mut self, detail: impl Into<String>) -> Self {
        self.detail = Self::clip(detail);
        self
    }
}

/// Which events to read: each given field must match; newest first.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditQuery {
    pub event_type: Option<String>,
    pub actor: Option<String>,
    pub subject: Option<String>,
    pub since: Option<i64>,
    pub until: Option<i64>,
    /// 1-based.
    pub start_index: u64,
    pub count: u32,
}

#[async_trait]
pub trait AuditRepo: Send + Sync {
    async fn record(&self, event: &AuditEvent) -> StoreResult<()>;
    async fn query(&self, query: &AuditQuery) -> StoreResult<Page<AuditEvent>>;
    /// Deletes up to `limit` events older than `before`.
    async fn purge_audit(&self, before: i64, limit: u32) -> StoreResult<u64>;
    /// Counts `more` further occurrences of a recorded event, the last at
    /// `last_at` (a folded event; see `AuditQueue`).
    async fn add_occurrences(&self, id: &str, more: u32, last_at: i64) -> StoreResult<()>;
}

/// Records an event. An audit write that fails is logged, never the
/// cause of a failed request. In a server, `repo` is the `AuditQueue`,
/// so this returns at once and the event is written (with retries) in
/// the background.
pub async fn record(repo: &dyn AuditRepo, event: AuditEvent) {
    if let Err(e) = repo.record(&event).await {
        tracing::warn!(error = %e, event = %event.event_type, "audit event not recorded");
    }
}
