//! Everything a domain file can describe, read from the database at one
//! moment: what `export` writes and what `apply` checks ids against.

use crate::model::{App, AppRole, Group, ResourceServer, SigningKeyRecord, User};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotGroup {
    pub group: Group,
    /// Sorted.
    pub app_roles: Vec<AppRole>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotUser {
    pub user: User,
    /// Group names, sorted.
    pub groups: Vec<String>,
    /// Roles held directly (not through groups), sorted.
    pub app_roles: Vec<AppRole>,
}

/// Sorted by natural key: resource servers by audience, groups by name,
/// users by lower-cased username, apps by client_id, keys by creation.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DomainSnapshot {
    pub resource_servers: Vec<ResourceServer>,
    pub groups: Vec<SnapshotGroup>,
    pub users: Vec<SnapshotUser>,
    pub apps: Vec<App>,
    pub signing_keys: Vec<SigningKeyRecord>,
}
