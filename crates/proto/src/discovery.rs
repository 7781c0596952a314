use serde::{Deserialize, Serialize};

/// RFC 8414 §2 authorization server metadata (also served as the OpenID
/// Connect discovery document).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct AuthorizationServerMetadata {
    pub issuer: String,
    pub token_endpoint: String,
    /// RFC 7662 / RFC 8414 §2.
    pub introspection_endpoint: String,
    /// Oracle IAM's name for the same endpoint.
    pub introspect_endpoint: String,
    pub revocation_endpoint: String,
    /// OpenID Connect Discovery §3.
    pub userinfo_endpoint: String,
    pub jwks_uri: String,
    pub scopes_supported: Vec<String>,
    /// Required by RFC 8414; empty because Latchkey has no authorization
    /// endpoint (the password grant needs none).
    pub response_types_supported: Vec<String>,
    pub grant_types_supported: Vec<String>,
    pub token_endpoint_auth_methods_supported: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token_endpoint_auth_signing_alg_values_supported: Option<Vec<String>>,
    pub introspection_endpoint_auth_methods_supported: Vec<String>,
    pub revocation_endpoint_auth_methods_supported: Vec<String>,
    pub id_token_signing_alg_values_supported: Vec<String>,
    pub subject_types_supported: Vec<String>,
    pub claims_supported: Vec<String>,
}
