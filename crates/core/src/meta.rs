//! What services may know about the HTTP request that reached them.

use std::future::Future;
use std::net::IpAddr;

#[derive(Debug, Clone, Default)]
pub struct RequestMeta {
    pub ip: Option<IpAddr>,
    pub user_agent: Option<String>,
    /// The `Latchkey-Forwarded-For` header as sent: the end user's address
    /// according to a trusted app's backend. Believed only for the apps the
    /// operator allows (`end_user_ip_clients`); ignored for every other.
    pub end_user_ip: Option<String>,
    /// The per-IP rate limit was not charged on arrival (the request names
    /// an end user's address, so whose address to charge is known only once
    /// the client has authenticated).
    pub ip_limit_deferred: bool,
}

tokio::task_local! {
    /// The id of the HTTP request being served (its `X-Request-Id`), for
    /// whatever records something on its behalf: audit events carry it,
    /// as the request's log lines do, so the two can be joined.
    static REQUEST_ID: String;
}

/// At most this much of a caller's `X-Request-Id` is kept.
const MAX_REQUEST_ID: usize = 128;

/// Runs `work` as part of the request `id`.
pub async fn with_request_id<F: Future>(id: &str, work: F) -> F::Output {
    let id: String = id.chars().take(MAX_REQUEST_ID).collect();
    REQUEST_ID.scope(id, work).await
}

/// The id of the request being served, if any (none at the command
/// line and in background jobs).
pub fn current_request_id() -> Option<String> {
    REQUEST_ID
        .try_with(|id| id.clone())
        .ok()
        .filter(|id| !id.is_empty())
}

/// The header a trusted app's backend names its end user's address in
/// (the idea of Auth0's `auth0-forwarded-for`).
pub const END_USER_IP_HEADER: &str = "latchkey-forwarded-for";
