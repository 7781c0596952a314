use std::sync::Arc;

use latchkey_core::grant::TokenService;
use latchkey_core::introspection::IntrospectionService;
use latchkey_core::keys::KeyRing;
use latchkey_core::store::Repos;

/// Limits on what a request may cost the server.
#[derive(Debug, Clone, Copy)]
pub struct HttpLimits {
    /// Largest accepted request body, in bytes (413 above).
    pub max_body_bytes: usize,
    /// Time allowed for a whole request (408 above).
    pub request_timeout_secs: u64,
    /// Time a new connection has to send its first request's line and
    /// headers (after TLS), and an HTTP/1 request's headers from their
    /// first byte; a slow or silent client is disconnected after it.
    pub header_read_timeout_secs: u64,
    /// Keep-alive: a connection with no request in flight for this long
    /// is closed.
    pub idle_timeout_secs: u64,
    /// Time a TLS handshake may take.
    pub tls_handshake_timeout_secs: u64,
    /// Connections open at once; beyond it, an idle one is closed to make
    /// room, or the new one waits.
    pub max_connections: usize,
    /// Largest request line plus headers, in bytes (431 above).
    pub max_header_bytes: usize,
    /// Most header fields in one request (431 above).
    pub max_headers: usize,
}

impl Default for HttpLimits {
    fn default() -> Self {
        // A token request is well under 1 KiB; 64 KiB leaves room for
        // client assertions with certificate chains.
        HttpLimits {
            max_body_bytes: 64 * 1024,
            request_timeout_secs: 30,
            header_read_timeout_secs: 10,
            // Longer than the 60 s idle timeout of common load balancers
            // (AWS ALB, nginx upstreams): the balancer closes first, never
            // a request racing our close.
            idle_timeout_secs: 75,
            tls_handshake_timeout_secs: 10,
            // At ~20 KiB per idle HTTP/1 connection (more with TLS), 4096
            // stay under 100 MiB; lowered at start to fit `ulimit -n`.
            max_connections: 4096,
            max_header_bytes: 16 * 1024,
            max_headers: 64,
        }
    }
}

/// Everything a handler may use. Cheap to clone.
#[derive(Clone)]
pub struct AppState {
    pub tokens: Arc<TokenService>,
    pub introspection: Arc<IntrospectionService>,
    pub keys: Arc<KeyRing>,
    pub repos: Repos,
    /// The issuer identifier, without a trailing slash; endpoint URLs in
    /// the metadata are built from it.
    pub issuer: String,
    pub limits: HttpLimits,
    /// Proxies whose `Forwarded` / `X-Forwarded-For` is believed.
    pub trusted_proxies: Arc<Vec<ipnet::IpNet>>,
    /// The header those proxies write.
    pub forwarded_header: crate::client_ip::ForwardedHeader,
    pub rate_limits: Arc<crate::rate_limit::RateLimits>,
    /// Verifies the bearer tokens of the admin API.
    pub bearer: Arc<latchkey_core::admin::BearerVerifier>,
    /// Users, groups, memberships and roles: the typed directory every
    /// door calls (the console directly).
    pub directory: Arc<latchkey_core::directory::DirectoryService>,
    /// The SCIM Users, Groups and Me operations over `directory`.
    pub scim: Arc<latchkey_core::admin::ScimDirectory>,
    /// Apps, resource servers and signing keys.
    pub registry: Arc<latchkey_core::admin::RegistryService>,
    /// The password hasher (its queue is a metric).
    pub hasher: Arc<latchkey_core::password::PasswordHasher>,
    pub metrics: Arc<crate::metrics::Metrics>,
    /// Serve the internal endpoints (`/metrics`, `/admin/v1/openapi.json`)
    /// on this router; by default only on a loopback listener without
    /// `--metrics-listen`.
    pub internal_routes: bool,
    /// The console's sign-in and sessions (`/console`).
    pub console: Arc<latchkey_core::console::ConsoleService>,
}
