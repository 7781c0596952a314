//! Latchkey's domain: the model, the repository traits, client
//! authentication, the grants and token issuing. No HTTP, no SQL.

pub mod admin;
pub mod audit;
pub mod breached;
pub mod cache;
pub mod client_auth;
pub mod clock;
pub mod console;
pub mod directory;
pub mod domain;
pub mod duration;
pub mod error;
pub mod grant;
pub mod housekeeping;
pub mod introspection;
pub mod issuer;
pub mod keys;
mod legacy_hash;
pub mod meta;
pub mod model;
pub mod password;
pub mod password_policy;
pub mod scim;
pub mod scope;
pub mod secrets;
pub mod sign_in;
pub mod store;
pub mod throttle;
pub mod userinfo;

pub use error::{OAuthError, OAuthErrorKind};
