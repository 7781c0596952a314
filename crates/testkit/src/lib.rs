//! Starts a real Latchkey server for tests: bound to 127.0.0.1:0, with its
//! own database (SQLite in a temporary folder, or a fresh PostgreSQL
//! database), spoken to over real HTTP.

use std::sync::Arc;

use latchkey::config::{Overrides, Settings};
use latchkey::context::Context;
use latchkey::server::{self, RunningServer};
use latchkey_core::domain::ApplyReport;
use latchkey_core::password::{HashParams, PasswordHasher, PoolConfig};
use latchkey_core::secrets::MasterKey;
use latchkey_store::testing::TestDatabase;

/// Which storage engine a test server runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    Sqlite,
    Postgres,
}

/// Knobs a test may turn before the server starts.
#[derive(Debug, Clone)]
pub struct Options {
    pub key_algorithm: &'static str,
    pub hash_params: HashParams,
    pub hash_pool: PoolConfig,
    pub max_body_bytes: usize,
    pub header_read_timeout_secs: u64,
    /// Keep-alive: connections with nothing in flight are closed after it.
    pub idle_timeout_secs: u64,
    pub tls_handshake_timeout_secs: u64,
    pub max_connections: usize,
    /// Serve HTTPS with this certificate chain and key (PEM files).
    pub tls: Option<(std::path::PathBuf, std::path::PathBuf)>,
    /// Serve `/metrics` on a listener of its own (on a random port).
    pub metrics_listener: bool,
    /// Listen on every interface (0.0.0.0) as a public node does, behind
    /// a (pretend) TLS proxy; tests still connect through 127.0.0.1.
    pub public_listener: bool,
    /// `internal_endpoints_on_listen`.
    pub internal_endpoints_on_listen: Option<bool>,
    pub admin_password: String,
    pub max_sessions_per_user: Option<u32>,
    pub trusted_proxies: Vec<&'static str>,
    /// Apps whose backends may name their end user's address.
    pub end_user_ip_clients: Vec<&'static str>,
    pub throttle: latchkey_core::throttle::ThrottlePolicy,
    pub rate_limit: latchkey_http::RateLimitConfig,
    /// The console's session timeouts.
    pub console: latchkey_core::console::ConsolePolicy,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            key_algorithm: "ES256",
            // Real argon2id, with small costs so the suite stays fast.
            hash_params: HashParams {
                memory_kib: 1024,
                iterations: 1,
                parallelism: 1,
            },
            hash_pool: PoolConfig {
                workers: 2,
                max_queue: 1024,
                ..PoolConfig::default()
            },
            max_body_bytes: 64 * 1024,
            header_read_timeout_secs: 10,
            idle_timeout_secs: 75,
            tls_handshake_timeout_secs: 10,
            max_connections: 4096,
            tls: None,
            metrics_listener: false,
            public_listener: false,
            internal_endpoints_on_listen: None,
            admin_password: "admin-password-for-tests".to_owned(),
            max_sessions_per_user: None,
            trusted_proxies: Vec::new(),
            end_user_ip_clients: Vec::new(),
            throttle: Default::default(),
            // High: tests fire requests in bursts; one test sets its own.
            rate_limit: latchkey_http::RateLimitConfig {
                per_ip: latchkey_http::Rate {
                    per_second: 10_000,
                    burst: 10_000,
                },
                per_client: latchkey_http::Rate {
                    per_second: 10_000,
                    burst: 10_000,
                },
            },
            console: Default::default(),
        }
    }
}

pub struct TestServer {
    pub base: String,
    issuer: String,
    pub engine: Engine,
    pub admin_password: String,
    server: Option<RunningServer>,
    settings: Settings,
    // Dropped last: the database outlives the server using it. A sibling
    // shares its first server's database and owns none.
    _db: Option<TestDatabase>,
}

impl TestServer {
    /// A server on SQLite.
    pub async fn start() -> TestServer {
        Self::start_on(Engine::Sqlite, Options::default())
            .await
            .expect("SQLite always works")
    }

    /// A server on `engine`; `None` when PostgreSQL is not available and
    /// not required (the notice is printed by `TestDatabase`).
    pub async fn start_on(engine: Engine, options: Options) -> Option<TestServer> {
        let db = match engine {
            Engine::Sqlite => TestDatabase::sqlite(),
            Engine::Postgres => TestDatabase::postgres().await?,
        };
        let public = options.public_listener;
        let mut settings = Settings::resolve(Overrides {
            listen: Some(if public { "0.0.0.0:0" } else { "127.0.0.1:0" }.to_owned()),
            behind_tls_proxy: public,
            issuer: public.then(|| "https://login.example.test".to_owned()),
            database_url: Some(db.url.clone()),
            key_algorithm: Some(options.key_algorithm.to_owned()),
            master_key: Some(MasterKey::generate().to_base64()),
            admin_password: Some(options.admin_password.clone()),
            ..Overrides::default()
        })
        .expect("test settings are valid");
        settings.hash_params = options.hash_params;
        settings.hash_pool = options.hash_pool;
        settings.limits.max_body_bytes = options.max_body_bytes;
        settings.limits.header_read_timeout_secs = options.header_read_timeout_secs;
        settings.limits.idle_timeout_secs = options.idle_timeout_secs;
        settings.limits.tls_handshake_timeout_secs = options.tls_handshake_timeout_secs;
        settings.limits.max_connections = options.max_connections;
        settings.tls = options.tls.clone();
        settings.internal_endpoints_on_listen = options.internal_endpoints_on_listen;
        if options.metrics_listener {
            settings.metrics_listen = Some("127.0.0.1:0".parse().expect("an address"));
        }
        settings.db_max_connections = 4;
        settings.max_sessions_per_user = options.max_sessions_per_user;
        settings.trusted_proxies = options
            .trusted_proxies
            .iter()
            .map(|p| p.parse().expect("a CIDR"))
            .collect();
        settings.throttle = options.throttle;
        settings.end_user_ip_clients = options
            .end_user_ip_clients
            .iter()
            .map(|c| c.to_string())
            .collect();
        settings.rate_limit = options.rate_limit;
        settings.console = options.console;
        // Tests wait for reloads; keep them quick.
        settings.key_reload_secs = 1;
        let server = server::start(settings.clone())
            .await
            .expect("test server starts");
        Some(TestServer {
            // https:// with a certificate, like the issuer.
            base: if public {
                format!("http://127.0.0.1:{}", server.addr.port())
            } else {
                server.issuer.clone()
            },
            issuer: server.issuer.clone(),
            engine,
            admin_password: options.admin_password,
            server: Some(server),
            settings,
            _db: Some(db),
        })
    }

    /// A second server process-equivalent on the same database (another
    /// node behind the same load balancer): nothing shared but the database.
    pub async fn start_sibling(&self) -> TestServer {
        self.start_sibling_with(|_| {}).await
    }

    /// A sibling whose settings differ as `change` says (a node
    /// configured differently, e.g. with another key algorithm).
    pub async fn start_sibling_with(&self, change: impl FnOnce(&mut Settings)) -> TestServer {
        // Every node of a deployment shares the one configured issuer.
        let mut settings = self.settings.clone();
        settings.issuer = Some(self.issuer.clone());
        change(&mut settings);
        let server = server::start(settings.clone())
            .await
            .expect("sibling starts");
        TestServer {
            base: format!("http://{}", server.addr),
            issuer: self.issuer.clone(),
            engine: self.engine,
            admin_password: self.admin_password.clone(),
            server: Some(server),
            settings,
            _db: None,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    pub fn token_url(&self) -> String {
        self.url("/oauth2/v1/token")
    }

    /// The issuer the server advertises.
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// The settings the server runs with (to start another on the same database).
    pub fn settings(&self) -> Settings {
        self.settings.clone()
    }

    /// The separate metrics listener's base URL, when it has one.
    pub fn metrics_base(&self) -> Option<String> {
        let server = self.server.as_ref().expect("running");
        server.metrics_addr.map(|addr| format!("http://{addr}"))
    }

    /// The main listener's connection counts.
    pub fn connections(&self) -> Arc<latchkey::connections::ConnectionStats> {
        self.server.as_ref().expect("running").connections.clone()
    }

    /// The address the server listens on.
    pub fn addr(&self) -> std::net::SocketAddr {
        self.server.as_ref().expect("running").addr
    }

    pub fn hasher(&self) -> Arc<PasswordHasher> {
        self.server.as_ref().expect("running").hasher.clone()
    }

    /// Audit events, read through the server's audit queue (so every event
    /// recorded before is written).
    pub async fn audit_events(
        &self,
        query: latchkey_core::audit::AuditQuery,
    ) -> Vec<latchkey_core::audit::AuditEvent> {
        use latchkey_core::audit::AuditRepo as _;
        let server = self.server.as_ref().expect("running");
        server
            .audit
            .query(&query)
            .await
            .expect("audit events")
            .items
    }

    /// Applies a domain file to the server's database, as `latchkey apply` would.
    pub async fn apply(&self, domain: &str) -> anyhow::Result<ApplyReport> {
        let ctx = Context::open(&self.settings).await?;
        let report = ctx.domain_service().apply(domain).await;
        ctx.store.close().await;
        Ok(report?)
    }

    /// Opens the server's database directly (for assertions on storage).
    pub async fn context(&self) -> Context {
        Context::open(&self.settings)
            .await
            .expect("open the test database")
    }

    pub async fn stop(mut self) {
        if let Some(server) = self.server.take() {
            server.stop().await.expect("clean shutdown");
        }
    }
}

/// A domain most tests share: one resource server, a trusted app, a
/// confidential app, a public app and two users (one inactive).
pub const DOMAIN: &str = r#"
[[resource_servers]]
name = "HR API"
audience = "https://hr.example.com/"
scopes = ["employees.read", "employees.write"]

[[groups]]
name = "admins"
app_roles = ["User Administrator"]

[[users]]
username = "alice"
password = "correct horse battery staple"
given_name = "Alice"
family_name = "Liddell"
email = "alice@example.com"
groups = ["admins"]
app_roles = ["Help Desk Administrator"]

[[users]]
username = "mallory"
password = "mallory's password"
active = false

[[apps]]
name = "HR Mobile"
type = "trusted"
client_secret = "hr-mobile-secret-0123456789"
grant_types = ["password", "refresh_token"]
scopes = ["https://hr.example.com/employees.read", "https://hr.example.com/employees.write", "offline_access", "openid", "profile", "email", "urn:opc:idm:__myscopes__"]
app_roles = ["User Administrator", "Security Administrator"]

[[apps]]
name = "Reports"
client_id = "reports:app"
type = "confidential"
client_secret = "reports secret: with spaces & symbols"
grant_types = ["password"]
scopes = ["https://hr.example.com/employees.read"]
access_token_ttl = "90s"

[[apps]]
name = "Kiosk"
type = "public"
grant_types = ["password", "refresh_token"]
scopes = ["https://hr.example.com/employees.read", "offline_access"]
refresh_token_ttl = "1h"

[[apps]]
name = "Batch"
type = "trusted"
client_secret = "batch-secret-0123456789"
grant_types = ["client_credentials"]
scopes = ["https://hr.example.com/employees.read", "urn:opc:idm:__myscopes__", "offline_access"]
app_roles = ["Audit Administrator"]

[[apps]]
name = "Blink"
type = "confidential"
client_secret = "blink-secret-0123456789"
grant_types = ["password", "refresh_token"]
scopes = ["https://hr.example.com/employees.read", "offline_access"]
access_token_ttl = "1s"
refresh_token_ttl = "1s"
"#;

pub const BATCH_SECRET: &str = "batch-secret-0123456789";
pub const BLINK_SECRET: &str = "blink-secret-0123456789";

pub const ALICE_PASSWORD: &str = "correct horse battery staple";
pub const HR_SECRET: &str = "hr-mobile-secret-0123456789";
pub const REPORTS_ID: &str = "reports:app";
pub const REPORTS_SECRET: &str = "reports secret: with spaces & symbols";
pub const READ: &str = "https://hr.example.com/employees.read";
pub const WRITE: &str = "https://hr.example.com/employees.write";
