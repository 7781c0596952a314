//! Foreign formats become a Latchkey domain file (docs/export-import.md):
//! what another identity server exports is read here, checked, and
//! handed on as a `latchkey_core::domain::DomainFile` that `apply` writes
//! like any other. Only Keycloak realm exports so far; later importers
//! join as sibling modules.

mod keycloak;

pub use keycloak::{KeycloakImport, KeycloakOptions, import_keycloak};
