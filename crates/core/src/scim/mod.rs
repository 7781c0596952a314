//! SCIM 2.0 (RFC 7643, RFC 7644): the filter language, list queries,
//! PATCH, and the User and Group resources of the identity domain's admin
//! API.

pub mod discovery;
pub mod error;
pub mod filter;
pub mod group;
pub mod patch;
pub mod query;
pub mod resource;
pub mod time;
pub mod user;

pub use error::{ScimError, ScimStatus};
