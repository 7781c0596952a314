//! The identity domain's aggregates, as the services see them.

mod app;
mod role;
mod token;
mod user;

pub use app::{App, AppType, GrantType, PreviousSecret, ResourceServer};
pub use role::AppRole;
pub use token::{KeyState, RefreshTokenRecord, Session, SigningKeyRecord};
pub use user::{Group, User};
