//! Latchkey's domain, with no HTTP and no SQL: the model and the
//! repository traits (`model`, `store`), the sign-in gate and its
//! defences (`sign_in`, `throttle`, `password`, `breached`), client
//! authentication, the grants and token issuing (`grant`, `issuer`,
//! `keys`, `introspection`, `userinfo`), the typed directory of users and
//! groups (`directory`), the admin API's callers, registry and SCIM adapter
//! (`admin`, `scim`), the console's sessions (`console`), the domain file
//! (`domain`), and the audit trail (`audit`).

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
