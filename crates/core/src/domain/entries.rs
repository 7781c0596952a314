//! The domain file's entries as written, in both directions: `apply`
//! reads them, `export` and the Keycloak importer write them. One set of
//! types, so whatever is exported is exactly what `apply` accepts.

use serde::{Deserialize, Serialize};

use super::app_input::AppInput;

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ResourceServerEntry {
    pub name: String,
    pub audience: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub scopes: Vec<String>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct GroupEntry {
    /// The immutable id (a UUID); given only to keep it across databases.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    pub name: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub app_roles: Vec<String>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct UserEntry {
    /// The immutable id, the `sub` of the user's tokens (a UUID).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    pub username: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_hash: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub given_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub family_name: Option<String>,
    /// SCIM `displayName`; when absent, the stored value is kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    /// SCIM `externalId`; when absent, the stored value is kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub active: Option<bool>,
    /// An administrator's lock; when absent, the stored value is kept (a
    /// lock is an operational state a domain file should not undo).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub locked: Option<bool>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub app_roles: Vec<String>,
}

/// A signing key as stored: its private key stays encrypted under the
/// master key (AES-256-GCM, the kid bound as associated data), so it can
/// be imported only where the same master key is in use.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SigningKeyEntry {
    pub kid: String,
    pub alg: String,
    /// `active`, `next`, `retiring` or `retired`.
    pub state: String,
    /// Unix seconds.
    pub created_at: i64,
    /// When it begins (a next key) or began to sign, if not at creation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub activates_at: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retiring_at: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retired_at: Option<i64>,
    pub public_jwk: String,
    /// Base64 of `nonce || ciphertext || tag`.
    pub encrypted_private_key: String,
}

/// A whole domain file.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct DomainFile {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub resource_servers: Vec<ResourceServerEntry>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<GroupEntry>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub users: Vec<UserEntry>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub apps: Vec<AppInput>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub signing_keys: Vec<SigningKeyEntry>,
}

impl DomainFile {
    /// The file as TOML, in the order `apply` reads it.
    pub fn to_toml(&self) -> String {
        toml::to_string(self).expect("a domain file always serialises")
    }
}
