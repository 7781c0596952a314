//! A validated domain file, ready to write.

use std::fmt;

use crate::model::{AppRole, AppType, GrantType, SigningKeyRecord};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HashChange {
    /// Leave the stored hash as it is (or none, for a new entry).
    Keep,
    Set(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourceServerSpec {
    pub name: String,
    pub audience: String,
    pub scopes: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupSpec {
    /// The id to create the group with (checked against the stored one).
    pub id: Option<String>,
    pub name: String,
    /// Sorted, deduplicated.
    pub app_roles: Vec<AppRole>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserSpec {
    /// The id to create the user with (checked against the stored one).
    pub id: Option<String>,
    pub username: String,
    pub password: HashChange,
    pub given_name: Option<String>,
    pub family_name: Option<String>,
    pub email: Option<String>,
    pub active: bool,
    /// `None`: keep what is stored (false for a new user).
    pub locked: Option<bool>,
    /// `None`: keep what is stored.
    pub display_name: Option<String>,
    /// `None`: keep what is stored.
    pub external_id: Option<String>,
    /// Group names, sorted.
    pub groups: Vec<String>,
    /// Sorted, deduplicated.
    pub app_roles: Vec<AppRole>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppSpec {
    /// The id to create the app with (checked against the stored one).
    pub id: Option<String>,
    pub client_id: String,
    pub name: String,
    pub app_type: AppType,
    pub active: bool,
    /// The keyed hash of a new secret; setting one ends any grace period
    /// of a previous secret.
    pub secret: HashChange,
    /// The new secret sealed under the master key, with `secret` when the
    /// app accepts `client_secret_jwt`.
    pub sealed_secret: Option<String>,
    pub client_secret_jwt: bool,
    pub grant_types: Vec<GrantType>,
    pub redirect_uris: Vec<String>,
    pub scopes: Vec<String>,
    pub app_roles: Vec<AppRole>,
    pub jwks: Option<String>,
    pub certificate: Option<String>,
    pub access_token_ttl: i64,
    pub refresh_token_ttl: i64,
    pub session_lifetime: Option<i64>,
    pub refresh_token_reuse_interval: i64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DomainPlan {
    pub resource_servers: Vec<ResourceServerSpec>,
    pub groups: Vec<GroupSpec>,
    pub users: Vec<UserSpec>,
    pub apps: Vec<AppSpec>,
    /// Signing keys carried over, still encrypted under the master key.
    pub signing_keys: Vec<SigningKeyRecord>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeOutcome {
    Created,
    Updated,
    Unchanged,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// `resource_server`, `group`, `user`, `app` or `signing_key`.
    pub kind: &'static str,
    /// The natural key.
    pub key: String,
    pub outcome: ChangeOutcome,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ApplySummary {
    pub changes: Vec<Change>,
}

impl ApplySummary {
    pub fn count(&self, outcome: ChangeOutcome) -> usize {
        self.changes.iter().filter(|c| c.outcome == outcome).count()
    }

    pub fn record(&mut self, kind: &'static str, key: &str, outcome: ChangeOutcome) {
        self.changes.push(Change {
            kind,
            key: key.to_owned(),
            outcome,
        });
    }
}

impl fmt::Display for ApplySummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for change in self
            .changes
            .iter()
            .filter(|c| c.outcome != ChangeOutcome::Unchanged)
        {
            let verb = if change.outcome == ChangeOutcome::Created {
                "created"
            } else {
                "updated"
            };
            writeln!(f, "{verb} {} {}", change.kind, change.key)?;
        }
        let (created, updated, unchanged) = (
            self.count(ChangeOutcome::Created),
            self.count(ChangeOutcome::Updated),
            self.count(ChangeOutcome::Unchanged),
        );
        if created + updated == 0 {
            write!(f, "nothing changed ({unchanged} unchanged)")
        } else {
            write!(
                f,
                "{created} created, {updated} updated, {unchanged} unchanged"
            )
        }
    }
}

/// What `apply` did, for the CLI to print.
#[derive(Debug, Clone)]
pub struct ApplyReport {
    pub summary: ApplySummary,
    /// `(client_id, secret)` of secrets generated now; shown once.
    pub generated_secrets: Vec<(String, String)>,
    pub warnings: Vec<String>,
}
