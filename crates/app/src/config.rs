//! Settings: flags and `LATCHKEY_*` env vars (clap) over the optional TOML
//! config file, over defaults. Validated at start; every error names the
//! option.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use latchkey_core::client_auth::AssertionPolicy;
use latchkey_core::keys::KeyAlgorithm;
use latchkey_core::password::{HashParams, PoolConfig};
use latchkey_core::throttle::ThrottlePolicy;
use latchkey_http::HttpLimits;

use crate::config_env::EnvOverride;
use serde::Deserialize;

pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";
/// `latchkey config example`: every option with its default (a test
/// checks it parses and matches the defaults).
pub const EXAMPLE: &str = include_str!("config_example.toml");
pub const DEFAULT_DATABASE_URL: &str = "sqlite://latchkey-data/latchkey.db";

/// The optional config file (`--config`). Every field is optional.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigFile {
    pub listen: Option<String>,
    pub issuer: Option<String>,
    pub database_url: Option<String>,
    pub behind_tls_proxy: Option<bool>,
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    pub key_algorithm: Option<String>,
    /// A separate listener for `GET /metrics` (then not on `listen`).
    pub metrics_listen: Option<String>,
    /// Serve `/metrics` and `/admin/v1/openapi.json` on `listen` (default:
    /// only when it is a loopback address and there is no metrics_listen).
    pub internal_endpoints_on_listen: Option<bool>,
    #[serde(default)]
    pub database: DatabaseSection,
    #[serde(default)]
    pub hashing: HashingSection,
    #[serde(default)]
    pub limits: LimitsSection,
    #[serde(default)]
    pub keys: KeysSection,
    #[serde(default)]
    pub sessions: SessionsSection,
    #[serde(default)]
    pub housekeeping: HousekeepingSection,
    /// Proxies (CIDRs) whose Forwarded / X-Forwarded-For is believed.
    #[serde(default)]
    pub trusted_proxies: Vec<String>,
    /// The header those proxies write: "x-forwarded-for" or "forwarded".
    #[serde(default)]
    pub trusted_proxy_header: latchkey_http::ForwardedHeader,
    /// Apps (client_ids) whose backends may name their end user's address
    /// in `Latchkey-Forwarded-For`.
    #[serde(default)]
    pub end_user_ip_clients: Vec<String>,
    #[serde(default)]
    pub lockout: ThrottlePolicy,
    #[serde(default)]
    pub rate_limit: latchkey_http::RateLimitConfig,
    #[serde(default)]
    pub password_policy: latchkey_core::password_policy::PasswordPolicy,
    #[serde(default)]
    pub client_assertions: ClientAssertionsSection,
    #[serde(default)]
    pub audit: AuditSection,
    #[serde(default)]
    pub console: ConsoleSection,
    #[serde(default)]
    pub tokens: TokensSection,
}

/// Token lifetimes of apps that name none of their own.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokensSection {
    #[serde(default, deserialize_with = "duration_text")]
    pub access_token_ttl: Option<String>,
    #[serde(default, deserialize_with = "duration_text")]
    pub refresh_token_ttl: Option<String>,
    /// How long a rotated-out refresh token may come back (docs/tokens.md);
    /// `0` turns the interval off.
    #[serde(default, deserialize_with = "duration_text")]
    pub refresh_token_reuse_interval: Option<String>,
}

/// A duration written `"90d"` or as whole seconds (`86400`), kept as text
/// for `parse_duration`: an environment override of `86400` arrives as a
/// number.
fn duration_text<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Text {
        Seconds(u64),
        Written(String),
    }
    Ok(Option::<Text>::deserialize(d)?.map(|t| match t {
        Text::Seconds(secs) => secs.to_string(),
        Text::Written(text) => text,
    }))
}

/// The console's session timeouts.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsoleSection {
    /// A console session ends after this long without a request ("30m").
    #[serde(default, deserialize_with = "duration_text")]
    pub idle_timeout: Option<String>,
    /// ... and this long after sign-in, however active ("8h").
    #[serde(default, deserialize_with = "duration_text")]
    pub absolute_timeout: Option<String>,
}

fn console_policy(
    section: &ConsoleSection,
) -> Result<latchkey_core::console::ConsolePolicy, String> {
    let defaults = latchkey_core::console::ConsolePolicy::default();
    let seconds = |name: &str, value: &Option<String>, default: i64| match value {
        None => Ok(default),
        Some(text) => {
            let secs = latchkey_core::duration::parse_duration(text)
                .map_err(|e| format!("console.{name}: {e}"))?;
            if !(60..=30 * 86_400).contains(&secs) {
                return Err(format!("console.{name}: must be between 1m and 30d"));
            }
            Ok(secs)
        }
    };
    let policy = latchkey_core::console::ConsolePolicy {
        idle_timeout_secs: seconds(
            "idle_timeout",
            &section.idle_timeout,
            defaults.idle_timeout_secs,
        )?,
        absolute_timeout_secs: seconds(
            "absolute_timeout",
            &section.absolute_timeout,
            defaults.absolute_timeout_secs,
        )?,
    };
    if policy.idle_timeout_secs > policy.absolute_timeout_secs {
        return Err(
            "console.idle_timeout: must not be longer than console.absolute_timeout".to_owned(),
        );
    }
    Ok(policy)
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditSection {
    /// How long audit events are kept ("90d").
    #[serde(default, deserialize_with = "duration_text")]
    pub retention: Option<String>,
    /// Refused sign-ins of one (username, IP) within this long of the
    /// first are counted on its event ("5m"; "0s": never folded).
    #[serde(default, deserialize_with = "duration_text")]
    pub fold_window: Option<String>,
    /// Events that may wait for the database (during an outage).
    pub queue_capacity: Option<usize>,
}

/// Limits on JWT client assertions (private_key_jwt, client_secret_jwt).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientAssertionsSection {
    /// How far ahead an assertion's exp may lie ("10m").
    #[serde(default, deserialize_with = "duration_text")]
    pub max_lifetime: Option<String>,
    /// Clock difference tolerated for exp, nbf and iat ("60s").
    #[serde(default, deserialize_with = "duration_text")]
    pub clock_skew: Option<String>,
    /// Longest accepted assertion, in bytes.
    pub max_bytes: Option<usize>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeysSection {
    /// Rotate the active signing key when it has signed this long ("90d").
    #[serde(default, deserialize_with = "duration_text")]
    pub rotate_every: Option<String>,
    /// A new key is in the JWKS this long before it signs ("5m").
    #[serde(default, deserialize_with = "duration_text")]
    pub publish_ahead: Option<String>,
    /// The JWKS's `Cache-Control: max-age` ("60s").
    #[serde(default, deserialize_with = "duration_text")]
    pub jwks_max_age: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SessionsSection {
    /// Live sessions per user; a new sign-in ends the oldest beyond it.
    pub max_per_user: Option<u32>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HousekeepingSection {
    pub interval_secs: Option<u64>,
    pub batch: Option<u32>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseSection {
    pub max_connections: Option<u32>,
    /// How long a query waits for a connection before it is a 503.
    pub acquire_timeout_secs: Option<u64>,
    /// SQLite: the WAL size (MiB) past which the writer restarts it.
    pub sqlite_wal_limit_mib: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HashingSection {
    pub memory_kib: Option<u32>,
    pub iterations: Option<u32>,
    pub parallelism: Option<u32>,
    /// Hashes that may run at once (default: the number of cores).
    pub workers: Option<usize>,
    /// Hashes that may wait for a worker before requests get 503.
    pub max_queue: Option<usize>,
    /// Argon2 memory is given back after this many seconds without a hash.
    pub idle_release_secs: Option<u64>,
    /// How much lower the workers' CPU priority is (nice, 0 … 19).
    pub worker_nice: Option<i32>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitsSection {
    pub max_body_bytes: Option<usize>,
    pub request_timeout_secs: Option<u64>,
    pub header_read_timeout_secs: Option<u64>,
    pub idle_timeout_secs: Option<u64>,
    pub tls_handshake_timeout_secs: Option<u64>,
    pub max_connections: Option<usize>,
    pub max_header_bytes: Option<usize>,
    pub max_headers: Option<usize>,
}

fn assertion_policy(section: &ClientAssertionsSection) -> Result<AssertionPolicy, String> {
    let defaults = AssertionPolicy::default();
    let seconds =
        |name: &str, value: &Option<String>, default: i64, range: std::ops::RangeInclusive<i64>| {
            let Some(text) = value else {
                return Ok(default);
            };
            let secs = latchkey_core::duration::parse_duration(text)
                .map_err(|e| format!("client_assertions.{name}: {e}"))?;
            if !range.contains(&secs) {
                return Err(format!(
                    "client_assertions.{name}: must be between {}s and {}s",
                    range.start(),
                    range.end()
                ));
            }
            Ok(secs)
        };
    let policy = AssertionPolicy {
        max_lifetime_secs: seconds(
            "max_lifetime",
            &section.max_lifetime,
            defaults.max_lifetime_secs,
            10..=3600,
        )?,
        clock_skew_secs: seconds(
            "clock_skew",
            &section.clock_skew,
            defaults.clock_skew_secs,
            0..=600,
        )?,
        max_bytes: section.max_bytes.unwrap_or(defaults.max_bytes),
    };
    if !(512..=65_536).contains(&policy.max_bytes) {
        return Err("client_assertions.max_bytes: must be between 512 and 65536".to_owned());
    }
    Ok(policy)
}

impl ConfigFile {
    /// The file (if any) with the environment's overrides applied; an
    /// error names the file's line or the variable.
    pub fn load_with(path: Option<&Path>, env: &[EnvOverride]) -> Result<Self, String> {
        let (file, text) = match path {
            Some(path) => (Self::load(path)?, read(path)?),
            None => (ConfigFile::default(), String::new()),
        };
        if env.is_empty() {
            return Ok(file);
        }
        let mut table: toml::Table = text.parse().map_err(|e: toml::de::Error| e.to_string())?;
        let mut merged = file;
        // One variable at a time, so an error names the one that caused it.
        for over in env {
            crate::config_env::apply(&mut table, over)?;
            merged =
                toml::Value::Table(table.clone())
                    .try_into()
                    .map_err(|e: toml::de::Error| {
                        format!("{}: {}", over.variable, e.message().trim())
                    })?;
        }
        Ok(merged)
    }

    pub fn load(path: &Path) -> Result<Self, String> {
        let text = read(path)?;
        toml::from_str(&text).map_err(|e| {
            let line = e
                .span()
                .map(|s| text[..s.start].matches('\n').count() + 1)
                .unwrap_or(1);
            format!(
                "config {}: line {line}: {}",
                path.display(),
                e.message().trim()
            )
        })
    }
}

/// How often every node re-reads the signing keys.
const KEY_RELOAD_SECS: u64 = 5;

/// `keys.publish_ahead` and `keys.jwks_max_age`. A verifier may hold a
/// JWKS fetched up to `jwks_max_age` ago, from a node that read the keys
/// up to `reload_secs` before: a new key must be published at least that
/// long before it signs, or such a verifier refuses its tokens.
fn key_rollover(
    keys: &KeysSection,
    reload_secs: u64,
    rotate_every: Option<i64>,
) -> Result<latchkey_core::keys::KeyRollover, String> {
    let defaults = latchkey_core::keys::KeyRollover::default();
    let secs = |name: &str, text: &Option<String>, default: i64| match text {
        None => Ok(default),
        Some(text) => {
            latchkey_core::duration::parse_duration(text).map_err(|e| format!("keys.{name}: {e}"))
        }
    };
    let jwks_max_age = secs(
        "jwks_max_age",
        &keys.jwks_max_age,
        defaults.jwks_max_age as i64,
    )?;
    if !(0..=86_400).contains(&jwks_max_age) {
        return Err("keys.jwks_max_age: must be between 0s and 1d".to_owned());
    }
    let publish_ahead = secs("publish_ahead", &keys.publish_ahead, defaults.publish_ahead)?;
    let least = jwks_max_age + reload_secs as i64;
    if publish_ahead < least {
        return Err(format!(
            "keys.publish_ahead: must be at least keys.jwks_max_age plus the {reload_secs}s key reload ({least}s), \
             or verifiers that cached the JWKS refuse the new key's first tokens"
        ));
    }
    if publish_ahead > 7 * 86_400 {
        return Err("keys.publish_ahead: must be at most 7d".to_owned());
    }
    if let Some(every) = rotate_every
        && every <= publish_ahead
    {
        return Err("keys.rotate_every: must be longer than keys.publish_ahead".to_owned());
    }
    Ok(latchkey_core::keys::KeyRollover {
        publish_ahead,
        jwks_max_age: jwks_max_age as u64,
    })
}

fn read(path: &Path) -> Result<String, String> {
    std::fs::read_to_string(path)
        .map_err(|e| format!("config: cannot read {}: {e}", path.display()))
}

/// Everything the server needs, resolved and validated.
#[derive(Debug, Clone)]
pub struct Settings {
    pub listen: SocketAddr,
    /// `Some`: metrics are served there, and not on `listen`.
    pub metrics_listen: Option<SocketAddr>,
    /// Serve the internal endpoints on `listen` too; `None`: see
    /// [`Settings::internal_on_listen`].
    pub internal_endpoints_on_listen: Option<bool>,
    /// `None`: `http://` + the bound address.
    pub issuer: Option<String>,
    pub database_url: String,
    pub db_max_connections: u32,
    pub db_acquire_timeout_secs: u64,
    pub sqlite_wal_limit_mib: u64,
    pub behind_tls_proxy: bool,
    /// Certificate chain and private key (PEM): serve HTTPS.
    pub tls: Option<(PathBuf, PathBuf)>,
    pub key_algorithm: KeyAlgorithm,
    pub hash_params: HashParams,
    pub hash_pool: PoolConfig,
    pub limits: HttpLimits,
    /// Base64 of 32 bytes; `None`: the key file beside the SQLite database.
    pub master_key: Option<String>,
    pub admin_password: Option<String>,
    pub demo: bool,
    /// How often keys are re-read from the database (rotation made elsewhere).
    pub key_reload_secs: u64,
    /// How long apps and resource servers are cached by a running server.
    pub directory_cache_secs: u64,
    pub key_rotate_every: Option<i64>,
    /// How new keys are published before they sign, and the JWKS cached.
    pub key_rollover: latchkey_core::keys::KeyRollover,
    pub max_sessions_per_user: Option<u32>,
    pub housekeeping_interval_secs: u64,
    pub housekeeping_batch: u32,
    pub trusted_proxies: Vec<latchkey_http::IpNet>,
    pub trusted_proxy_header: latchkey_http::ForwardedHeader,
    pub end_user_ip_clients: Vec<String>,
    pub throttle: ThrottlePolicy,
    pub rate_limit: latchkey_http::RateLimitConfig,
    pub password_policy: latchkey_core::password_policy::PasswordPolicy,
    pub client_assertions: AssertionPolicy,
    pub audit_retention_secs: i64,
    pub audit_queue: latchkey_core::audit::AuditQueueConfig,
    pub console: latchkey_core::console::ConsolePolicy,
    pub token_defaults: latchkey_core::domain::TokenDefaults,
}

/// Values given on the command line or in the environment.
#[derive(Debug, Default, Clone)]
pub struct Overrides {
    pub listen: Option<String>,
    pub metrics_listen: Option<String>,
    pub issuer: Option<String>,
    pub database_url: Option<String>,
    pub behind_tls_proxy: bool,
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    pub key_algorithm: Option<String>,
    pub config: Option<PathBuf>,
    pub master_key: Option<String>,
    pub admin_password: Option<String>,
    pub demo: bool,
    /// `LATCHKEY_<SECTION>__<OPTION>` variables (`config_env`).
    pub env: Vec<EnvOverride>,
}

impl Settings {
    pub fn resolve(overrides: Overrides) -> Result<Settings, String> {
        let file = ConfigFile::load_with(overrides.config.as_deref(), &overrides.env)?;
        let listen_text = overrides
            .listen
            .or(file.listen)
            .unwrap_or_else(|| DEFAULT_LISTEN.to_owned());
        let listen: SocketAddr = listen_text.parse().map_err(|_| {
            format!("listen: {listen_text:?} is not an address such as 127.0.0.1:8080")
        })?;
        let metrics_listen = match overrides.metrics_listen.or(file.metrics_listen) {
            None => None,
            Some(text) => Some(text.parse::<SocketAddr>().map_err(|_| {
                format!("metrics_listen: {text:?} is not an address such as 127.0.0.1:9090")
            })?),
        };
        let issuer = overrides
            .issuer
            .or(file.issuer)
            .map(|i| i.trim_end_matches('/').to_owned());
        if let Some(issuer) = &issuer {
            validate_issuer(issuer)?;
        }
        let database_url = overrides
            .database_url
            .or(file.database_url)
            .unwrap_or_else(|| DEFAULT_DATABASE_URL.to_owned());
        if latchkey_store::engine_of(&database_url).is_none() {
            return Err(
                "database_url: expected sqlite://PATH or postgres://USER@HOST/DB".to_owned(),
            );
        }
        let key_algorithm = match overrides.key_algorithm.or(file.key_algorithm) {
            Some(name) => name.parse().map_err(|e| format!("key_algorithm: {e}"))?,
            None => KeyAlgorithm::Rs256,
        };
        let defaults = HashParams::default();
        let hash_params = HashParams {
            memory_kib: file.hashing.memory_kib.unwrap_or(defaults.memory_kib),
            iterations: file.hashing.iterations.unwrap_or(defaults.iterations),
            parallelism: file.hashing.parallelism.unwrap_or(defaults.parallelism),
        };
        hash_params
            .validate()
            .map_err(|e| format!("hashing: {e}"))?;
        let pool_defaults = PoolConfig::default();
        let hash_pool = PoolConfig {
            workers: file.hashing.workers.unwrap_or(pool_defaults.workers),
            max_queue: file.hashing.max_queue.unwrap_or(pool_defaults.max_queue),
            idle_release: file
                .hashing
                .idle_release_secs
                .map(std::time::Duration::from_secs)
                .unwrap_or(pool_defaults.idle_release),
            nice: file.hashing.worker_nice.unwrap_or(pool_defaults.nice),
        };
        if hash_pool.workers == 0 {
            return Err("hashing.workers: must be at least 1".to_owned());
        }
        if !(1..=86_400).contains(&hash_pool.idle_release.as_secs()) {
            return Err("hashing.idle_release_secs: must be between 1 and 86400".to_owned());
        }
        if !(0..=19).contains(&hash_pool.nice) {
            return Err("hashing.worker_nice: must be between 0 and 19".to_owned());
        }
        let limit_defaults = HttpLimits::default();
        let limits = HttpLimits {
            max_body_bytes: file
                .limits
                .max_body_bytes
                .unwrap_or(limit_defaults.max_body_bytes),
            request_timeout_secs: file
                .limits
                .request_timeout_secs
                .unwrap_or(limit_defaults.request_timeout_secs),
            header_read_timeout_secs: file
                .limits
                .header_read_timeout_secs
                .unwrap_or(limit_defaults.header_read_timeout_secs),
            idle_timeout_secs: file
                .limits
                .idle_timeout_secs
                .unwrap_or(limit_defaults.idle_timeout_secs),
            tls_handshake_timeout_secs: file
                .limits
                .tls_handshake_timeout_secs
                .unwrap_or(limit_defaults.tls_handshake_timeout_secs),
            max_connections: file
                .limits
                .max_connections
                .unwrap_or(limit_defaults.max_connections),
            max_header_bytes: file
                .limits
                .max_header_bytes
                .unwrap_or(limit_defaults.max_header_bytes),
            max_headers: file
                .limits
                .max_headers
                .unwrap_or(limit_defaults.max_headers),
        };
        if limits.max_body_bytes < 1024 {
            return Err("limits.max_body_bytes: must be at least 1024".to_owned());
        }
        if limits.request_timeout_secs == 0 {
            return Err("limits.request_timeout_secs: must be at least 1".to_owned());
        }
        if !(1..=300).contains(&limits.header_read_timeout_secs) {
            return Err("limits.header_read_timeout_secs: must be between 1 and 300".to_owned());
        }
        if !(1..=3600).contains(&limits.idle_timeout_secs) {
            return Err("limits.idle_timeout_secs: must be between 1 and 3600".to_owned());
        }
        if !(1..=300).contains(&limits.tls_handshake_timeout_secs) {
            return Err("limits.tls_handshake_timeout_secs: must be between 1 and 300".to_owned());
        }
        if !(8..=1_000_000).contains(&limits.max_connections) {
            return Err("limits.max_connections: must be between 8 and 1000000".to_owned());
        }
        // hyper's read buffer cannot be smaller than 8 KiB.
        if !(8192..=1024 * 1024).contains(&limits.max_header_bytes) {
            return Err("limits.max_header_bytes: must be between 8192 and 1048576".to_owned());
        }
        if !(16..=1000).contains(&limits.max_headers) {
            return Err("limits.max_headers: must be between 16 and 1000".to_owned());
        }
        // SQLite has one writer and readers that pay for every commit
        // (their page caches are invalidated), so a few readers beat many.
        let default_connections = match latchkey_store::engine_of(&database_url) {
            Some(latchkey_store::Engine::Sqlite) => 4,
            _ => 16,
        };
        let db_max_connections = file.database.max_connections.unwrap_or(default_connections);
        let db_acquire_timeout_secs = file.database.acquire_timeout_secs.unwrap_or(5);
        if !(1..=60).contains(&db_acquire_timeout_secs) {
            return Err("database.acquire_timeout_secs: must be between 1 and 60".to_owned());
        }
        if db_max_connections == 0 {
            return Err("database.max_connections: must be at least 1".to_owned());
        }
        let sqlite_wal_limit_mib = file
            .database
            .sqlite_wal_limit_mib
            .unwrap_or(latchkey_store::DEFAULT_SQLITE_WAL_LIMIT_BYTES >> 20);
        if !(1..=4096).contains(&sqlite_wal_limit_mib) {
            return Err("database.sqlite_wal_limit_mib: must be between 1 and 4096".to_owned());
        }
        let key_rotate_every = match &file.keys.rotate_every {
            Some(text) => {
                let secs = latchkey_core::duration::parse_duration(text)
                    .map_err(|e| format!("keys.rotate_every: {e}"))?;
                if secs < 3600 {
                    return Err("keys.rotate_every: must be at least 1h".to_owned());
                }
                Some(secs)
            }
            None => None,
        };
        let key_rollover = key_rollover(&file.keys, KEY_RELOAD_SECS, key_rotate_every)?;
        let max_sessions_per_user = file.sessions.max_per_user;
        if max_sessions_per_user == Some(0) {
            return Err(
                "sessions.max_per_user: must be at least 1 (omit it for no limit)".to_owned(),
            );
        }
        let housekeeping_interval_secs = file.housekeeping.interval_secs.unwrap_or(60);
        let housekeeping_batch = file.housekeeping.batch.unwrap_or(1000);
        if housekeeping_interval_secs == 0 || housekeeping_batch == 0 {
            return Err("housekeeping: interval_secs and batch must be at least 1".to_owned());
        }
        let mut trusted_proxies = Vec::new();
        for entry in &file.trusted_proxies {
            let net = entry
                .parse::<latchkey_http::IpNet>()
                .or_else(|_| {
                    entry
                        .parse::<std::net::IpAddr>()
                        .map(latchkey_http::IpNet::from)
                })
                .map_err(|_| {
                    format!(
                        "trusted_proxies: {entry:?} is not an address or CIDR such as 10.0.0.0/8"
                    )
                })?;
            trusted_proxies.push(net);
        }
        file.lockout
            .validate()
            .map_err(|e| format!("lockout: {e}"))?;
        file.password_policy
            .validate()
            .map_err(|e| format!("password_policy: {e}"))?;
        let client_assertions = assertion_policy(&file.client_assertions)?;
        let console = console_policy(&file.console)?;
        let audit_retention_secs = match &file.audit.retention {
            None => 90 * 86_400,
            Some(text) => {
                let secs = latchkey_core::duration::parse_duration(text)
                    .map_err(|e| format!("audit.retention: {e}"))?;
                if secs < 86_400 {
                    return Err("audit.retention: must be at least 1d".to_owned());
                }
                secs
            }
        };
        let audit_queue = {
            let defaults = latchkey_core::audit::AuditQueueConfig::default();
            let fold_window_secs = match &file.audit.fold_window {
                None => defaults.fold_window_secs,
                Some(text) => {
                    let secs = latchkey_core::duration::parse_duration(text)
                        .map_err(|e| format!("audit.fold_window: {e}"))?;
                    if !(0..=86_400).contains(&secs) {
                        return Err("audit.fold_window: must be between 0s and 1d".to_owned());
                    }
                    secs
                }
            };
            let capacity = file.audit.queue_capacity.unwrap_or(defaults.capacity);
            if !(100..=1_000_000).contains(&capacity) {
                return Err("audit.queue_capacity: must be between 100 and 1000000".to_owned());
            }
            latchkey_core::audit::AuditQueueConfig {
                capacity,
                fold_window_secs,
                ..defaults
            }
        };
        let tls = match (
            overrides.tls_cert.or(file.tls_cert),
            overrides.tls_key.or(file.tls_key),
        ) {
            (Some(cert), Some(key)) => Some((cert, key)),
            (None, None) => None,
            (Some(_), None) => return Err("tls_key: required with tls_cert".to_owned()),
            (None, Some(_)) => return Err("tls_cert: required with tls_key".to_owned()),
        };
        let token_defaults = {
            let defaults = latchkey_core::domain::TokenDefaults::default();
            let secs = |name: &str, text: &Option<String>, default: i64| match text {
                None => Ok(default),
                Some(text) => latchkey_core::duration::parse_duration(text)
                    .map_err(|e| format!("tokens.{name}: {e}")),
            };
            let resolved = latchkey_core::domain::TokenDefaults {
                access_token_ttl: secs(
                    "access_token_ttl",
                    &file.tokens.access_token_ttl,
                    defaults.access_token_ttl,
                )?,
                refresh_token_ttl: secs(
                    "refresh_token_ttl",
                    &file.tokens.refresh_token_ttl,
                    defaults.refresh_token_ttl,
                )?,
                refresh_token_reuse_interval: match file
                    .tokens
                    .refresh_token_reuse_interval
                    .as_deref()
                {
                    Some("0") => 0,
                    text => secs(
                        "refresh_token_reuse_interval",
                        &text.map(str::to_owned),
                        defaults.refresh_token_reuse_interval,
                    )?,
                },
            };
            resolved.validate().map_err(|e| format!("tokens.{e}"))?;
            resolved
        };
        Ok(Settings {
            listen,
            metrics_listen,
            internal_endpoints_on_listen: file.internal_endpoints_on_listen,
            issuer,
            database_url,
            db_max_connections,
            db_acquire_timeout_secs,
            sqlite_wal_limit_mib,
            token_defaults,
            end_user_ip_clients: file.end_user_ip_clients,
            behind_tls_proxy: overrides.behind_tls_proxy || file.behind_tls_proxy.unwrap_or(false),
            tls,
            key_algorithm,
            hash_params,
            hash_pool,
            limits,
            master_key: overrides.master_key,
            admin_password: overrides.admin_password,
            demo: overrides.demo,
            key_reload_secs: KEY_RELOAD_SECS,
            directory_cache_secs: 2,
            key_rotate_every,
            key_rollover,
            max_sessions_per_user,
            housekeeping_interval_secs,
            housekeeping_batch,
            trusted_proxies,
            trusted_proxy_header: file.trusted_proxy_header,
            throttle: file.lockout,
            rate_limit: file.rate_limit,
            password_policy: file.password_policy,
            client_assertions,
            audit_retention_secs,
            audit_queue,
            console,
        })
    }

    /// Whether `/metrics` and `/admin/v1/openapi.json` are served on
    /// `listen`: as configured, else only on a loopback address without a
    /// metrics listener (a public port does not show the server's figures
    /// and API surface to everyone).
    pub fn internal_on_listen(&self) -> bool {
        self.internal_endpoints_on_listen
            .unwrap_or(self.metrics_listen.is_none() && self.listen.ip().is_loopback())
    }

    /// Plain HTTP on a non-loopback address would put passwords on the
    /// network in clear: refuse unless TLS ends in front of us.
    pub fn check_transport(&self) -> Result<(), String> {
        if !self.listen.ip().is_loopback() && !self.behind_tls_proxy && self.tls.is_none() {
            return Err(format!(
                "listen: {} is not a loopback address and Latchkey would serve plain HTTP; \
                 give it --tls-cert and --tls-key, or terminate TLS in a proxy in front of it \
                 and pass --behind-tls-proxy",
                self.listen
            ));
        }
        // TLS in front (a proxy) or our own: an http:// issuer would put
        // that URL in tokens and metadata, and the console's cookies would
        // lack `Secure` (it reads the scheme from the issuer).
        if let Some(issuer) = &self.issuer
            && issuer.starts_with("http://")
            && (self.behind_tls_proxy || self.tls.is_some())
        {
            let why = if self.tls.is_some() {
                "Latchkey serves HTTPS (tls_cert)"
            } else {
                "--behind-tls-proxy says TLS ends in front of Latchkey"
            };
            return Err(format!(
                "issuer: {issuer:?} must be an https:// URL: {why}, so clients reach it over https"
            ));
        }
        // Behind a proxy, the address we bind is not the one clients use:
        // tokens would carry an `iss` no verifier expects.
        if !self.listen.ip().is_loopback() && self.issuer.is_none() {
            return Err(format!(
                "issuer: required when listening on {} (set --issuer to the public https URL clients use)",
                self.listen
            ));
        }
        Ok(())
    }
}

fn validate_issuer(issuer: &str) -> Result<(), String> {
    // RFC 8414 §2: an https URL with no query or fragment (http tolerated
    // for development).
    let ok = (issuer.starts_with("https://") || issuer.starts_with("http://"))
        && !issuer.contains(['?', '#']);
    if ok {
        Ok(())
    } else {
        Err(format!(
            "issuer: {issuer:?} must be an http(s) URL without query or fragment"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The printed example is a valid file, and every value in it is the
    /// default (so it documents the defaults truthfully).
    #[test]
    fn the_example_parses_to_the_defaults() {
        let dir = std::env::temp_dir().join(format!("latchkey-example-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("latchkey.toml");
        std::fs::write(&path, EXAMPLE).unwrap();
        let from_example = Settings::resolve(Overrides {
            config: Some(path),
            ..Overrides::default()
        })
        .unwrap();
        let defaults = Settings::resolve(Overrides::default()).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        let view = |s: &Settings| {
            format!(
                "{} {} {} {:?} {:?} {:?} {:?} {:?} {:?} {:?} {:?} {} {} {:?} {:?} {:?} {} {:?} {} {:?} {:?}",
                s.listen,
                s.database_url,
                s.behind_tls_proxy,
                s.key_algorithm,
                s.hash_params,
                s.limits,
                s.throttle,
                s.rate_limit,
                s.password_policy,
                s.client_assertions,
                s.trusted_proxies,
                s.housekeeping_interval_secs,
                s.housekeeping_batch,
                s.key_rotate_every,
                s.key_rollover,
                s.max_sessions_per_user,
                s.audit_retention_secs,
                s.console,
                s.sqlite_wal_limit_mib,
                s.audit_queue,
                s.hash_pool,
            )
        };
        assert_eq!(view(&from_example), view(&defaults));
    }

    #[test]
    fn defaults_follow_the_contract() {
        let s = Settings::resolve(Overrides::default()).unwrap();
        assert_eq!(s.listen.to_string(), DEFAULT_LISTEN);
        assert_eq!(s.database_url, DEFAULT_DATABASE_URL);
        assert_eq!(s.key_algorithm, KeyAlgorithm::Rs256);
        assert_eq!(
            s.hash_params,
            HashParams {
                memory_kib: 19_456,
                iterations: 2,
                parallelism: 1
            }
        );
        assert!(s.check_transport().is_ok());
    }

    #[test]
    fn errors_name_the_option() {
        let bad = |o: Overrides| Settings::resolve(o).unwrap_err();
        assert!(
            bad(Overrides {
                listen: Some("nowhere".into()),
                ..Default::default()
            })
            .starts_with("listen:")
        );
        assert!(
            bad(Overrides {
                issuer: Some("ftp://x".into()),
                ..Default::default()
            })
            .starts_with("issuer:")
        );
        assert!(
            bad(Overrides {
                database_url: Some("mysql://x".into()),
                ..Default::default()
            })
            .starts_with("database_url:")
        );
        assert!(
            bad(Overrides {
                key_algorithm: Some("HS256".into()),
                ..Default::default()
            })
            .starts_with("key_algorithm:")
        );
    }

    /// A new key must be in the JWKS at least as long as a verifier may
    /// cache it (plus the nodes' reload lag) before it signs.
    #[test]
    fn key_rollover_covers_the_jwks_cache_lifetime() {
        let with = |pairs: &[(&str, &str)]| {
            Settings::resolve(Overrides {
                env: crate::config_env::overrides_from(
                    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())),
                ),
                ..Default::default()
            })
        };
        let defaults = with(&[]).unwrap().key_rollover;
        assert_eq!((defaults.publish_ahead, defaults.jwks_max_age), (300, 60));
        let s = with(&[
            ("LATCHKEY_KEYS__JWKS_MAX_AGE", "5m"),
            ("LATCHKEY_KEYS__PUBLISH_AHEAD", "305"),
        ])
        .unwrap();
        assert_eq!(
            (s.key_rollover.publish_ahead, s.key_rollover.jwks_max_age),
            (305, 300)
        );
        for (pairs, option) in [
            (
                &[("LATCHKEY_KEYS__JWKS_MAX_AGE", "5m")][..],
                "keys.publish_ahead:",
            ),
            (
                &[("LATCHKEY_KEYS__PUBLISH_AHEAD", "64s")][..],
                "keys.publish_ahead:",
            ),
            (
                &[("LATCHKEY_KEYS__PUBLISH_AHEAD", "8d")][..],
                "keys.publish_ahead:",
            ),
            (
                &[("LATCHKEY_KEYS__JWKS_MAX_AGE", "2d")][..],
                "keys.jwks_max_age:",
            ),
            (
                &[("LATCHKEY_KEYS__JWKS_MAX_AGE", "soon")][..],
                "keys.jwks_max_age:",
            ),
            (
                &[
                    ("LATCHKEY_KEYS__ROTATE_EVERY", "1h"),
                    ("LATCHKEY_KEYS__PUBLISH_AHEAD", "2h"),
                ][..],
                "keys.rotate_every:",
            ),
        ] {
            let err = with(pairs).unwrap_err();
            assert!(err.starts_with(option), "{pairs:?}: {err}");
        }
        // Exactly the JWKS lifetime plus the reload interval is enough.
        assert!(with(&[("LATCHKEY_KEYS__PUBLISH_AHEAD", "65s")]).is_ok());
    }

    #[test]
    fn plain_http_off_loopback_needs_a_tls_proxy() {
        let s = Settings::resolve(Overrides {
            listen: Some("0.0.0.0:8080".into()),
            ..Default::default()
        })
        .unwrap();
        assert!(s.check_transport().unwrap_err().starts_with("listen:"));
        let s = Settings::resolve(Overrides {
            listen: Some("0.0.0.0:8080".into()),
            behind_tls_proxy: true,
            ..Default::default()
        })
        .unwrap();
        assert!(s.check_transport().unwrap_err().starts_with("issuer:"));
        let s = Settings::resolve(Overrides {
            listen: Some("0.0.0.0:8080".into()),
            behind_tls_proxy: true,
            issuer: Some("https://login.example.com".into()),
            ..Default::default()
        })
        .unwrap();
        assert!(s.check_transport().is_ok());
    }

    /// TLS in front or our own: the issuer clients see is https, and the
    /// console's cookies get `Secure` from it.
    #[test]
    fn an_http_issuer_is_refused_behind_tls() {
        for (listen, behind_tls_proxy, tls) in [
            ("0.0.0.0:8080", true, false),
            ("127.0.0.1:8080", true, false),
            ("127.0.0.1:8443", false, true),
        ] {
            let mut s = Settings::resolve(Overrides {
                listen: Some(listen.into()),
                behind_tls_proxy,
                issuer: Some("http://login.example.com".into()),
                ..Default::default()
            })
            .unwrap();
            if tls {
                s.tls = Some(("cert.pem".into(), "key.pem".into()));
            }
            let err = s.check_transport().unwrap_err();
            assert!(
                err.starts_with("issuer: ") && err.contains("https://"),
                "{err}"
            );
            s.issuer = Some("https://login.example.com".into());
            assert!(s.check_transport().is_ok());
        }
        // Plain HTTP on loopback, for development, keeps its http issuer.
        let s = Settings::resolve(Overrides {
            issuer: Some("http://localhost:8080".into()),
            ..Default::default()
        })
        .unwrap();
        assert!(s.check_transport().is_ok());
    }

    #[test]
    fn internal_endpoints_stay_off_a_public_listener_unless_configured() {
        let on = |listen: &str, metrics: Option<&str>, env: &[(&str, &str)]| {
            Settings::resolve(Overrides {
                listen: Some(listen.into()),
                metrics_listen: metrics.map(str::to_owned),
                env: crate::config_env::overrides_from(
                    env.iter().map(|(k, v)| (k.to_string(), v.to_string())),
                ),
                ..Default::default()
            })
            .unwrap()
            .internal_on_listen()
        };
        assert!(on("127.0.0.1:8080", None, &[]));
        assert!(on("[::1]:8080", None, &[]));
        assert!(!on("127.0.0.1:8080", Some("127.0.0.1:9090"), &[]));
        assert!(!on("0.0.0.0:8080", None, &[]));
        assert!(!on("10.1.2.3:8080", None, &[]));
        let switch = [("LATCHKEY_INTERNAL_ENDPOINTS_ON_LISTEN", "true")];
        assert!(on("0.0.0.0:8080", None, &switch));
        let switch = [("LATCHKEY_INTERNAL_ENDPOINTS_ON_LISTEN", "false")];
        assert!(!on("127.0.0.1:8080", None, &switch));
    }

    #[test]
    fn config_file_errors_name_line_and_option() {
        let dir = std::env::temp_dir().join(format!("latchkey-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("c.toml");
        std::fs::write(
            &path,
            "listen = \"127.0.0.1:9\"\n[hashing]\nmemory_kb = 5\n",
        )
        .unwrap();
        let err = ConfigFile::load(&path).unwrap_err();
        assert!(err.contains("line 3") && err.contains("memory_kb"), "{err}");
        std::fs::write(&path, "[hashing]\nmemory_kib = 1\n").unwrap();
        let err = Settings::resolve(Overrides {
            config: Some(path.clone()),
            ..Default::default()
        })
        .unwrap_err();
        assert!(err.starts_with("hashing:"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn every_option_can_come_from_the_environment() {
        let env = |list: &[(&str, &str)]| {
            crate::config_env::overrides_from(
                list.iter().map(|(k, v)| (k.to_string(), v.to_string())),
            )
        };
        let dir = std::env::temp_dir().join(format!("latchkey-envcfg-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("c.toml");
        std::fs::write(
            &path,
            "[lockout]\npair_threshold = 7\nuser_threshold = 70\n",
        )
        .unwrap();
        let s = Settings::resolve(Overrides {
            config: Some(path.clone()),
            env: env(&[
                ("LATCHKEY_LOCKOUT__PAIR_THRESHOLD", "10"),
                ("LATCHKEY_AUDIT__RETENTION", "172800"),
                ("LATCHKEY_KEYS__ROTATE_EVERY", "30d"),
                ("LATCHKEY_KEYS__PUBLISH_AHEAD", "10m"),
                ("LATCHKEY_PASSWORD_POLICY__REJECT_BREACHED", "false"),
                (
                    "LATCHKEY_RATE_LIMIT__PER_IP",
                    "{ per_second = 5, burst = 9 }",
                ),
                ("LATCHKEY_TRUSTED_PROXIES", "[\"10.0.0.0/8\"]"),
                ("LATCHKEY_LIMITS__HEADER_READ_TIMEOUT_SECS", "3"),
                ("LATCHKEY_LIMITS__IDLE_TIMEOUT_SECS", "120"),
                ("LATCHKEY_LIMITS__MAX_CONNECTIONS", "20000"),
                ("LATCHKEY_TOKENS__ACCESS_TOKEN_TTL", "10m"),
            ]),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(s.throttle.pair_threshold, 10, "the variable beats the file");
        assert_eq!(s.throttle.user_threshold, 70, "the rest of the file stays");
        assert_eq!(s.audit_retention_secs, 172_800);
        assert_eq!(s.key_rotate_every, Some(30 * 86_400));
        assert_eq!(s.key_rollover.publish_ahead, 600);
        assert!(!s.password_policy.reject_breached);
        assert_eq!(s.rate_limit.per_ip.burst, 9);
        assert_eq!(s.trusted_proxies.len(), 1);
        assert_eq!(s.limits.header_read_timeout_secs, 3);
        assert_eq!(s.limits.idle_timeout_secs, 120);
        assert_eq!(s.limits.max_connections, 20_000);
        assert_eq!(s.limits.tls_handshake_timeout_secs, 10);
        assert_eq!(s.token_defaults.access_token_ttl, 600);
        assert_eq!(s.token_defaults.refresh_token_ttl, 7 * 86_400);
        assert_eq!(s.token_defaults.refresh_token_reuse_interval, 30);

        for (variable, value) in [
            ("LATCHKEY_LOCKOUT__PAIR_THRESHOLD", "many"),
            ("LATCHKEY_LOCKOUT__NO_SUCH_OPTION", "1"),
            ("LATCHKEY_NO_SUCH_SECTION__X", "1"),
        ] {
            let err = Settings::resolve(Overrides {
                env: env(&[(variable, value)]),
                ..Default::default()
            })
            .unwrap_err();
            assert!(err.starts_with(&format!("{variable}: ")), "{err}");
        }
        // Values are validated as if written in the file.
        for (variable, value, prefix) in [
            ("LATCHKEY_HASHING__MEMORY_KIB", "1", "hashing:"),
            (
                "LATCHKEY_LIMITS__MAX_CONNECTIONS",
                "2",
                "limits.max_connections:",
            ),
            (
                "LATCHKEY_LIMITS__IDLE_TIMEOUT_SECS",
                "0",
                "limits.idle_timeout_secs:",
            ),
            (
                "LATCHKEY_TOKENS__ACCESS_TOKEN_TTL",
                "2d",
                "tokens.access_token_ttl:",
            ),
            (
                "LATCHKEY_TOKENS__REFRESH_TOKEN_TTL",
                "soon",
                "tokens.refresh_token_ttl:",
            ),
            (
                "LATCHKEY_TOKENS__REFRESH_TOKEN_REUSE_INTERVAL",
                "2m",
                "tokens.refresh_token_reuse_interval:",
            ),
        ] {
            let err = Settings::resolve(Overrides {
                env: env(&[(variable, value)]),
                ..Default::default()
            })
            .unwrap_err();
            assert!(err.starts_with(prefix), "{err}");
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
