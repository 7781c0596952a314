/// A user of the identity domain. `id` is immutable and is the `sub` of
/// every token issued to the user; `username` is unique ignoring case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub id: String,
    pub username: String,
    /// PHC string (argon2id for passwords Latchkey hashed itself). `None`
    /// means the user cannot sign in with a password.
    pub password_hash: Option<String>,
    pub given_name: Option<String>,
    pub family_name: Option<String>,
    pub email: Option<String>,
    pub active: bool,
    /// Locked by an administrator: no sign-in until unlocked.
    pub locked: bool,
    pub created_at: i64,
    pub updated_at: i64,
    /// SCIM `externalId`: the provisioning client's identifier.
    pub external_id: Option<String>,
    /// SCIM `displayName`.
    pub display_name: Option<String>,
    /// Incremented by every write: the SCIM ETag.
    pub version: i64,
}

/// A group of users; its members hold its application roles.
impl User {
    /// Active and not locked.
    pub fn may_sign_in(&self) -> bool {
        self.active && !self.locked
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Group {
    pub id: String,
    pub name: String,
    pub created_at: i64,
    pub updated_at: i64,
    /// Incremented by every write: the SCIM ETag.
    pub version: i64,
    /// The provisioning client's own identifier (SCIM `externalId`).
    pub external_id: Option<String>,
}
