use serde::{Deserialize, Serialize};

/// RFC 7517 §5 JWK Set. Keys are kept as JSON values: they are produced by
/// the JOSE library and only passed through here.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct JwkSet {
    pub keys: Vec<serde_json::Value>,
}
