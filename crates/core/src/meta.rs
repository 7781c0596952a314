//! What services may know about the HTTP request that reached them.

use std::net::IpAddr;

#[derive(Debug, Clone, Default)]
pub struct RequestMeta {
    pub ip: Option<IpAddr>,
    pub user_agent: Option<String>,
    pub request_id: Option<String>,
    /// The `Latchkey-Forwarded-For` header as sent: the end user's address
    /// according to a trusted app's backend. Believed only for the apps the
    /// operator allows (`end_user_ip_clients`); ignored for every other.
    pub end_user_ip: Option<String>,
    /// The per-IP rate limit was not charged on arrival (the request names
    /// an end user's address, so whose address to charge is known only once
    /// the client has authenticated).
    pub ip_limit_deferred: bool,
}

/// The header a trusted app's backend names its end user's address in
/// (the idea of Auth0's `auth0-forwarded-for`).
pub const END_USER_IP_HEADER: &str = "latchkey-forwarded-for";
