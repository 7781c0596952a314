//! The end-to-end suite: the real server on a random port, its own
//! database, spoken to over HTTP. One test binary.

mod support;

mod admin_registry;
mod brute_force;
mod client_assertions;
mod client_auth;
mod connections;
mod console;
mod discovery;
mod escalation;
mod imported_hashes;
mod introspection;
mod keycloak_import;
mod lifecycle;
mod limits;
mod malformed;
mod metrics;
mod nodes;
mod oauth2_client;
mod password_grant;
mod privilege;
mod refresh;
mod request_ids;
mod rollover;
mod scim;
mod scim_conformance;
mod sign_in_refusals;
mod unstorable;
