//! Wiring the server: store → services → router → listener, plus the
//! background jobs, with graceful shutdown.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, anyhow};
use latchkey_core::admin::{BearerVerifier, DirectoryService};
use latchkey_core::cache::{CachedApps, CachedResourceServers};
use latchkey_core::client_auth::ClientAuthenticator;
use latchkey_core::console::{ConsoleKeys, ConsoleService};
use latchkey_core::grant::TokenService;
use latchkey_core::housekeeping::{Housekeeper, HousekeepingConfig, HousekeepingReport};
use latchkey_core::introspection::IntrospectionService;
use latchkey_core::issuer::TokenIssuer;
use latchkey_core::keys::KeyRing;
use latchkey_core::store::Repos;
use latchkey_http::{AppState, RateLimits};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::bootstrap;
use crate::config::Settings;
use crate::connections::{ConnectionLimits, ConnectionStats};
use crate::context::Context;

/// The metrics listener's connection cap (a scraper needs one or two).
const METRICS_CONNECTIONS: usize = 64;

/// A server running in this process.
pub struct RunningServer {
    pub addr: SocketAddr,
    /// Where `GET /metrics` is served when it has a listener of its own.
    pub metrics_addr: Option<SocketAddr>,
    pub issuer: String,
    /// Printed once at first start, when the admin password was generated.
    pub generated_admin_password: Option<String>,
    /// Generated at an earlier start and never changed since.
    pub admin_password_unchanged: bool,
    pub demo: Option<bootstrap::Demo>,
    /// The password hasher (tests read its verification count).
    pub hasher: Arc<latchkey_core::password::PasswordHasher>,
    /// The main listener's connections (tests read how many are open).
    pub connections: Arc<ConnectionStats>,
    /// The audit queue (tests read through it, so the events are written).
    pub audit: Arc<latchkey_core::audit::AuditQueue>,
    shutdown: watch::Sender<bool>,
    task: JoinHandle<anyhow::Result<()>>,
}

impl RunningServer {
    /// Stops accepting, lets requests in flight finish, closes the pool.
    pub async fn stop(self) -> anyhow::Result<()> {
        let _ = self.shutdown.send(true);
        self.task
            .await
            .map_err(|e| anyhow!("server task failed: {e}"))?
    }

    /// Waits until the server ends by itself (it does not, unless it fails).
    pub async fn wait(&mut self) -> anyhow::Result<()> {
        (&mut self.task)
            .await
            .map_err(|e| anyhow!("server task failed: {e}"))?
    }

    pub fn shutdown_handle(&self) -> watch::Sender<bool> {
        self.shutdown.clone()
    }
}

/// Opens everything, binds `settings.listen` and serves in the background.
pub async fn start(settings: Settings) -> anyhow::Result<RunningServer> {
    settings.check_transport().map_err(|e| anyhow!(e))?;
    let ctx = Context::open(&settings).await?;

    let keys = Arc::new(ctx.key_ring());
    keys.ensure_active(settings.key_algorithm, ctx.clock.now())
        .await
        .context("signing keys (is LATCHKEY_MASTER_KEY the key this database was created with?)")?;
    let admin_password = bootstrap::ensure_admin(&ctx, settings.admin_password.as_deref()).await?;
    let demo = if settings.demo {
        bootstrap::seed_demo(&ctx).await?
    } else {
        None
    };
    // After the demo: the demo seeds only an empty domain.
    bootstrap::ensure_console_app(&ctx, &settings.console).await?;
    if settings.demo && demo.is_none() {
        tracing::warn!(
            "--demo: the database already holds a domain without the demo app; not seeding"
        );
    }

    // TLS material is read before binding: a bad certificate stops the start.
    let tls = match &settings.tls {
        Some((cert, key)) => Some(
            axum_server::tls_rustls::RustlsConfig::from_pem_file(cert, key)
                .await
                .with_context(|| {
                    format!(
                        "tls_cert / tls_key: cannot use {} and {}",
                        cert.display(),
                        key.display()
                    )
                })?,
        ),
        None => None,
    };
    let connection_limits = connection_limits(&settings);
    let listener = TcpListener::bind(settings.listen)
        .await
        .with_context(|| format!("listen: cannot bind {}", settings.listen))?;
    let addr = listener.local_addr()?;
    let scheme = if tls.is_some() { "https" } else { "http" };
    let issuer = settings
        .issuer
        .clone()
        .unwrap_or_else(|| format!("{scheme}://{addr}"));

    let mut repos = serving_repos(&ctx, Duration::from_secs(settings.directory_cache_secs));
    // Audit events are written off the request path (core/src/audit/queue.rs).
    let audit_queue = latchkey_core::audit::AuditQueue::start(
        repos.audit.clone(),
        settings.audit_queue,
        ctx.clock.clone(),
    );
    repos.audit = audit_queue.clone();
    let issuer_service = Arc::new(TokenIssuer::new(
        issuer.clone(),
        keys.clone(),
        repos.tokens.clone(),
        settings.max_sessions_per_user,
    ));
    let rate_limits = Arc::new(RateLimits::new(settings.rate_limit));
    let clients = Arc::new(ClientAuthenticator {
        apps: repos.apps.clone(),
        replay: repos.assertions.clone(),
        secrets: ctx.master.secret_hasher(),
        master: ctx.master.clone(),
        audiences: ClientAuthenticator::audiences_for(&issuer),
        policy: settings.client_assertions.clone(),
        clock: ctx.clock.clone(),
        budget: Some(rate_limits.clone()),
    });
    let tokens = Arc::new(TokenService {
        repos: repos.clone(),
        hasher: ctx.hasher.clone(),
        issuer: issuer_service,
        clock: ctx.clock.clone(),
        throttle: settings.throttle,
        clients: clients.clone(),
        end_user_ip_clients: Arc::new(settings.end_user_ip_clients.clone()),
        audit_names: latchkey_core::audit::AuditNames::new(&ctx.master),
    });
    let introspection = Arc::new(IntrospectionService {
        repos: repos.clone(),
        keys: keys.clone(),
        issuer: issuer.clone(),
        clock: ctx.clock.clone(),
        clients,
    });
    let bearer = Arc::new(BearerVerifier {
        keys: keys.clone(),
        tokens: repos.tokens.clone(),
        apps: repos.apps.clone(),
        users: repos.users.clone(),
        issuer: issuer.clone(),
        clock: ctx.clock.clone(),
    });
    let directory = Arc::new(DirectoryService {
        repos: repos.clone(),
        hasher: ctx.hasher.clone(),
        policy: settings.password_policy,
        throttle: settings.throttle,
        clock: ctx.clock.clone(),
        base_url: format!("{issuer}/admin/v1"),
    });
    let console = Arc::new(ConsoleService {
        tokens: tokens.clone(),
        introspection: introspection.clone(),
        bearer: bearer.clone(),
        sessions: repos.console_sessions.clone(),
        clock: ctx.clock.clone(),
        policy: settings.console,
        keys: ConsoleKeys::new(&ctx.master),
    });
    let registry = Arc::new(latchkey_core::admin::RegistryService {
        domain: latchkey_core::domain::DomainService {
            repos: repos.clone(),
            ..ctx.domain_service()
        },
        keys: keys.clone(),
        key_algorithm: settings.key_algorithm,
    });
    let metrics = Arc::new(latchkey_http::Metrics::new());
    {
        let waits = metrics.histogram("latchkey_password_hash_wait_seconds");
        ctx.hasher
            .observe_waits(Box::new(move |waited| waits.record(waited.as_secs_f64())));
    }
    let state = AppState {
        bearer,
        scim: Arc::new(latchkey_core::admin::ScimDirectory::new(directory.clone())),
        directory,
        tokens,
        introspection,
        keys: keys.clone(),
        repos: repos.clone(),
        issuer: issuer.clone(),
        limits: settings.limits,
        trusted_proxies: Arc::new(settings.trusted_proxies.clone()),
        forwarded_header: settings.trusted_proxy_header,
        rate_limits: rate_limits.clone(),
        registry,
        hasher: ctx.hasher.clone(),
        metrics: metrics.clone(),
        internal_routes: settings.internal_on_listen(),
        console: console.clone(),
    };
    let metrics_listener = match settings.metrics_listen {
        Some(at) => {
            let listener = TcpListener::bind(at)
                .await
                .with_context(|| format!("metrics_listen: cannot bind {at}"))?;
            Some((listener, latchkey_http::metrics_router(state.clone())))
        }
        None => None,
    };
    if settings.metrics_listen.is_none() && !settings.internal_on_listen() {
        tracing::info!(
            "/metrics and /admin/v1/openapi.json are not served: listen is not a loopback address; \
             set metrics_listen (or internal_endpoints_on_listen = true)"
        );
    }
    let app = latchkey_http::router(state);

    let (shutdown, shutdown_rx) = watch::channel(false);
    let housekeeper = Housekeeper {
        repos: repos.clone(),
        keys: keys.clone(),
        clock: ctx.clock.clone(),
        config: HousekeepingConfig {
            batch: settings.housekeeping_batch,
            rotate_every: settings.key_rotate_every,
            key_algorithm: settings.key_algorithm,
            failure_window: settings.throttle.window_secs,
            audit_retention: settings.audit_retention_secs,
        },
    };
    let housekeeping = spawn_housekeeping(
        housekeeper,
        Duration::from_secs(settings.housekeeping_interval_secs),
        shutdown.subscribe(),
    );
    let console_upkeep = {
        let batch = settings.housekeeping_batch;
        spawn_every(
            Duration::from_secs(settings.housekeeping_interval_secs),
            shutdown.subscribe(),
            move || {
                let console = console.clone();
                async move {
                    match console.purge(batch).await {
                        Ok(0) => {}
                        Ok(n) => tracing::info!(
                            purged = n,
                            "console sessions past their timeouts deleted"
                        ),
                        Err(e) => {
                            tracing::warn!(error = e.to_string(), "console session purge failed")
                        }
                    }
                }
            },
        )
    };
    let limits_maintenance = {
        let rate_limits = rate_limits.clone();
        spawn_every(Duration::from_secs(60), shutdown.subscribe(), move || {
            rate_limits.retain_recent();
            std::future::ready(())
        })
    };
    let metrics_upkeep = {
        let metrics = metrics.clone();
        spawn_every(Duration::from_secs(5), shutdown.subscribe(), move || {
            metrics.upkeep();
            std::future::ready(())
        })
    };
    let metrics_addr = match metrics_listener {
        Some((listener, router)) => {
            let addr = listener.local_addr()?;
            // The same timeouts as the main listener; a scraper needs few
            // connections.
            let serving = crate::connections::Listener {
                listener,
                tls: None,
                router,
                limits: ConnectionLimits {
                    max_connections: connection_limits.max_connections.min(METRICS_CONNECTIONS),
                    ..connection_limits
                },
                http: crate::connections::http_builder(&settings.limits),
                stats: Arc::new(ConnectionStats::new(None)),
            };
            let stop = shutdown.subscribe();
            tokio::spawn(async move {
                if let Err(e) = serving.serve(stop).await {
                    tracing::error!(error = e.to_string(), "metrics listener failed");
                }
            });
            tracing::info!(%addr, "metrics listening");
            Some(addr)
        }
        None => None,
    };
    let reload = spawn_key_reload(
        keys,
        Duration::from_secs(settings.key_reload_secs),
        shutdown.subscribe(),
    );
    let hasher = ctx.hasher.clone();
    let connections = Arc::new(ConnectionStats::new(Some(metrics.clone())));
    let main_listener = crate::connections::Listener {
        listener,
        tls: tls.map(|tls| tokio_rustls::TlsAcceptor::from(tls.get_inner())),
        router: app,
        limits: connection_limits,
        http: crate::connections::http_builder(&settings.limits),
        stats: connections.clone(),
    };
    let audit_closer = audit_queue.clone();
    let task = tokio::spawn(async move {
        let served = main_listener.serve(shutdown_rx).await;
        reload.abort();
        housekeeping.abort();
        limits_maintenance.abort();
        console_upkeep.abort();
        metrics_upkeep.abort();
        audit_closer.close(Duration::from_secs(5)).await;
        ctx.store.close().await;
        served.context("serving HTTP")
    });
    tracing::info!(%addr, %issuer, "latchkey listening");
    Ok(RunningServer {
        addr,
        metrics_addr,
        issuer,
        generated_admin_password: admin_password.generated().map(str::to_owned),
        admin_password_unchanged: admin_password == bootstrap::AdminPassword::GeneratedEarlier,
        demo,
        hasher,
        connections,
        audit: audit_queue,
        shutdown,
        task,
    })
}

/// The connection limits, with the cap lowered to fit under the open-file
/// limit (else accepting fails before the cap is reached, and no idle
/// connection is closed to make room).
fn connection_limits(settings: &Settings) -> ConnectionLimits {
    let mut limits = ConnectionLimits::from_http(&settings.limits);
    let open_files = crate::connections::open_file_limit();
    let cap = crate::connections::fitting_cap(
        limits.max_connections,
        open_files,
        settings.db_max_connections,
    );
    if cap < limits.max_connections {
        tracing::warn!(
            configured = limits.max_connections,
            cap,
            open_file_limit = open_files,
            "limits.max_connections lowered to fit the open-file limit (ulimit -n); raise that limit to allow more"
        );
        limits.max_connections = cap;
    }
    limits
}

/// The repositories as the server uses them: apps and resource servers,
/// read by every token request and rarely changed, through short caches.
fn serving_repos(ctx: &Context, ttl: Duration) -> Repos {
    let mut repos = ctx.store.repos.clone();
    repos.apps = Arc::new(CachedApps::new(repos.apps, ttl));
    repos.resource_servers = Arc::new(CachedResourceServers::new(repos.resource_servers, ttl));
    repos
}

/// Runs `job` every `every` (the first run at once) until shutdown. A
/// run that takes longer than the interval delays the next instead of
/// making up for it in a burst.
fn spawn_every<F, Fut>(
    every: Duration,
    mut stop: watch::Receiver<bool>,
    mut job: F,
) -> JoinHandle<()>
where
    F: FnMut() -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => job().await,
                _ = stop.changed() => return,
            }
        }
    })
}

/// Purges what expired, retires old keys, rotates on schedule.
fn spawn_housekeeping(
    housekeeper: Housekeeper,
    every: Duration,
    stop: watch::Receiver<bool>,
) -> JoinHandle<()> {
    let housekeeper = Arc::new(housekeeper);
    spawn_every(every, stop, move || {
        let housekeeper = housekeeper.clone();
        async move {
            match housekeeper.run_once().await {
                Ok(report) if report != HousekeepingReport::default() => {
                    tracing::info!(?report, "housekeeping")
                }
                Ok(_) => {}
                Err(e) => tracing::warn!(
                    error = e.to_string(),
                    "housekeeping failed; retrying at the next interval"
                ),
            }
        }
    })
}

/// Picks up keys rotated by another node or the CLI.
fn spawn_key_reload(
    keys: Arc<KeyRing>,
    every: Duration,
    stop: watch::Receiver<bool>,
) -> JoinHandle<()> {
    spawn_every(every, stop, move || {
        let keys = keys.clone();
        async move {
            if let Err(e) = keys.reload().await {
                tracing::warn!(
                    error = e.to_string(),
                    "key reload failed; keeping the keys in memory"
                );
            }
        }
    })
}

/// `latchkey serve`: runs until SIGTERM or ctrl-c.
pub async fn serve(settings: Settings) -> anyhow::Result<()> {
    let mut server = start(settings).await?;
    if let Some(password) = &server.generated_admin_password {
        println!(
            "Created user admin with password {password}\n(shown once; set LATCHKEY_ADMIN_PASSWORD to choose it, or change it later with `latchkey user set-password admin`)\n"
        );
    } else if server.admin_password_unchanged {
        println!("{}", bootstrap::unchanged_password_notice());
    }
    if let Some(demo) = &server.demo {
        println!("{}", bootstrap::demo_instructions(&server.issuer, demo));
    }
    let shutdown = server.shutdown_handle();
    tokio::select! {
        result = server.wait() => return result,
        _ = shutdown_signal() => {}
    }
    tracing::info!("shutting down");
    let _ = shutdown.send(true);
    server.wait().await
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = terminate => {}
    }
}
