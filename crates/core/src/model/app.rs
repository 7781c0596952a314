use std::fmt;
use std::str::FromStr;

use super::AppRole;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AppType {
    /// Confidential, may hold application roles and certificates.
    Trusted,
    /// Has a secret or keys, but no roles.
    Confidential,
    /// No credentials; authenticates with `client_id` alone.
    Public,
}

impl AppType {
    pub fn as_str(self) -> &'static str {
        match self {
            AppType::Trusted => "trusted",
            AppType::Confidential => "confidential",
            AppType::Public => "public",
        }
    }
}

impl fmt::Display for AppType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for AppType {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "trusted" => Ok(AppType::Trusted),
            "confidential" => Ok(AppType::Confidential),
            "public" => Ok(AppType::Public),
            other => Err(format!(
                "unknown app type {other:?} (expected trusted, confidential or public)"
            )),
        }
    }
}

/// Grant types an app may be allowed to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum GrantType {
    Password,
    RefreshToken,
    ClientCredentials,
}

impl GrantType {
    pub const ALL: [GrantType; 3] = [
        GrantType::Password,
        GrantType::RefreshToken,
        GrantType::ClientCredentials,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            GrantType::Password => "password",
            GrantType::RefreshToken => "refresh_token",
            GrantType::ClientCredentials => "client_credentials",
        }
    }
}

impl fmt::Display for GrantType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for GrantType {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        GrantType::ALL
            .into_iter()
            .find(|g| g.as_str() == s)
            .ok_or_else(|| {
                format!("unknown grant type {s:?} (expected password, refresh_token or client_credentials)")
            })
    }
}

/// An OAuth client registered in the domain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct App {
    pub id: String,
    pub client_id: String,
    pub name: String,
    pub app_type: AppType,
    /// Deactivated apps fail client authentication.
    pub active: bool,
    /// Keyed hash of the client secret (see `secrets::SecretHasher`).
    pub secret_hash: Option<String>,
    /// The same secret sealed under the master key, kept only by apps that
    /// accept `client_secret_jwt` (the MAC needs the secret itself).
    pub secret_sealed: Option<String>,
    /// The secret being rotated out, still accepted until its grace ends.
    pub previous_secret: Option<PreviousSecret>,
    pub grant_types: Vec<GrantType>,
    pub redirect_uris: Vec<String>,
    /// Every scope the app may be granted, fully qualified.
    pub scopes: Vec<String>,
    pub app_roles: Vec<AppRole>,
    pub jwks: Option<String>,
    pub certificate: Option<String>,
    pub access_token_ttl: i64,
    pub refresh_token_ttl: i64,
    /// Absolute lifetime of a session started with this app: past it, the
    /// refresh grant stops and the user signs in again. `None`: unlimited.
    pub session_lifetime: Option<i64>,
    /// Seconds after a rotation during which the rotated-out refresh
    /// token may be presented again (docs/tokens.md); 0: never.
    pub refresh_token_reuse_interval: i64,
    pub created_at: i64,
    pub updated_at: i64,
    /// When the app was last deactivated: its own tokens issued up to
    /// then never come back, even if it is reactivated.
    pub tokens_revoked_at: Option<i64>,
}

impl App {
    pub fn allows_grant(&self, grant: GrantType) -> bool {
        self.grant_types.contains(&grant)
    }

    /// True when the app accepts HMAC client assertions.
    pub fn accepts_client_secret_jwt(&self) -> bool {
        self.secret_sealed.is_some()
    }

    /// True when the app registered public keys for `private_key_jwt`.
    pub fn has_public_keys(&self) -> bool {
        self.jwks.is_some() || self.certificate.is_some()
    }

    /// The previous secret, while its grace period lasts.
    pub fn previous_secret_at(&self, now: i64) -> Option<&PreviousSecret> {
        self.previous_secret.as_ref().filter(|p| p.expires_at > now)
    }
}

/// A client secret that was rotated out with a grace period.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PreviousSecret {
    pub hash: String,
    pub sealed: Option<String>,
    pub expires_at: i64,
}

/// An API that accepts Latchkey's access tokens. A scope's fully qualified
/// name is `audience + scope`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourceServer {
    pub id: String,
    pub name: String,
    pub audience: String,
    pub scopes: Vec<String>,
    pub created_at: i64,
    pub updated_at: i64,
}
