/// One sign-in: started by a password grant, continued by each refresh.
/// Every refresh token of the family carries its id (`sid`); revoking the
/// session ends them all.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    pub id: String,
    pub user_id: String,
    pub app_id: String,
    pub auth_time: i64,
    pub created_at: i64,
    pub revoked_at: Option<i64>,
    /// How many times the session's refresh token has rotated: only a
    /// token of this generation may rotate (docs/tokens.md).
    pub generation: i64,
}

/// A refresh token as stored: only the SHA-256 of the token is kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefreshTokenRecord {
    pub token_hash: String,
    pub session_id: String,
    pub app_id: String,
    pub user_id: String,
    /// Space-separated granted scope.
    pub scope: String,
    pub issued_at: i64,
    pub expires_at: i64,
    /// Set when the token was exchanged for its successor.
    pub rotated_at: Option<i64>,
    /// The session's generation the token was issued in: the first token
    /// is 0, each rotation's successor one more, and a sibling issued
    /// within the reuse interval shares its generation.
    pub generation: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyState {
    /// Signs new tokens (exactly one key at a time).
    Active,
    /// Published, not signing yet: it becomes active at `activates_at`,
    /// once every verifier's cached copy of the JWKS holds it (at most one
    /// key at a time).
    Next,
    /// No longer signs, still published so its tokens verify.
    Retiring,
    /// Gone from the JWKS.
    Retired,
}

impl KeyState {
    pub fn as_str(self) -> &'static str {
        match self {
            KeyState::Active => "active",
            KeyState::Next => "next",
            KeyState::Retiring => "retiring",
            KeyState::Retired => "retired",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "active" => Some(KeyState::Active),
            "next" => Some(KeyState::Next),
            "retiring" => Some(KeyState::Retiring),
            "retired" => Some(KeyState::Retired),
            _ => None,
        }
    }
}

/// A signing key as stored: the private key encrypted under the master key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SigningKeyRecord {
    pub kid: String,
    pub alg: String,
    pub encrypted_private_key: Vec<u8>,
    pub public_jwk: String,
    pub state: KeyState,
    pub created_at: i64,
    /// When it begins (a next key) or began (since) to sign; `None` for a
    /// key that signed from `created_at` (keys made before staging
    /// existed, and the first key).
    pub activates_at: Option<i64>,
    /// When it stopped signing (it stays published until its tokens expire).
    pub retiring_at: Option<i64>,
    pub retired_at: Option<i64>,
}

impl SigningKeyRecord {
    /// When it began, or will begin, to sign.
    pub fn signs_from(&self) -> i64 {
        self.activates_at.unwrap_or(self.created_at)
    }
}
