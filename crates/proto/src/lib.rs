//! Wire types of Latchkey's HTTP interface: what clients send and receive.
//! Serde only; no behaviour and no internal dependencies.

mod discovery;
mod jwks;
mod oauth;

pub use discovery::AuthorizationServerMetadata;
pub use jwks::JwkSet;
pub use oauth::{OAuthErrorBody, TokenResponse};
