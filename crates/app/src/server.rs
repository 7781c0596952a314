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
use crate::context::Context;

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
    let listener = TcpListener::bind(settings.listen)
        .await
        .with_context(|| format!("listen: cannot bind {}", settings.listen))?;
    let addr = listener.local_addr()?;
    let scheme = if tls.is_some() { "https" } else { "http" };
    let issuer = settings
        .issuer
        .clone()
        .unwrap_or_else(|| format!("{scheme}://{addr}"));

    let repos = serving_repos(&ctx, Duration::from_secs(settings.directory_cache_secs));
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
        issuer: issuer.clone(),
        clock: ctx.clock.clone(),
    });
    let directory = Arc::new(DirectoryService {
        repos: repos.clone(),
        hasher: ctx.hasher.clone(),
        policy: settings.password_policy,
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
        metrics_route: settings.metrics_listen.is_none(),
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
    let app = latchkey_http::router(state);

    let (shutdown, mut shutdown_rx) = watch::channel(false);
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
        let (every, batch) = (
            Duration::from_secs(settings.housekeeping_interval_secs),
            settings.housekeeping_batch,
        );
        let mut stop = shutdown.subscribe();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            loop {
                tokio::select! {
                    _ = tick.tick() => match console.purge(batch).await {
                        Ok(0) => {}
                        Ok(n) => tracing::info!(purged = n, "console sessions past their timeouts deleted"),
                        Err(e) => tracing::warn!(error = %e, "console session purge failed"),
                    },
                    _ = stop.changed() => return,
                }
            }
        })
    };
    let limits_maintenance = {
        let (rate_limits, mut stop) = (rate_limits.clone(), shutdown.subscribe());
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(60));
            loop {
                tokio::select! {
                    _ = tick.tick() => rate_limits.retain_recent(),
                    _ = stop.changed() => return,
                }
            }
        })
    };
    let metrics_upkeep = {
        let mut stop = shutdown.subscribe();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(5));
            loop {
                tokio::select! {
                    _ = tick.tick() => metrics.upkeep(),
                    _ = stop.changed() => return,
                }
            }
        })
    };
    let metrics_addr = match metrics_listener {
        Some((listener, router)) => {
            let addr = listener.local_addr()?;
            let mut stop = shutdown.subscribe();
            tokio::spawn(async move {
                let served = axum::serve(listener, router)
                    .with_graceful_shutdown(async move {
                        let _ = stop.wait_for(|stop| *stop).await;
                    })
                    .await;
                if let Err(e) = served {
                    tracing::error!(error = %e, "metrics listener failed");
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
    let http_limits = settings.limits;
    let task = tokio::spawn(async move {
        let service = app.into_make_service_with_connect_info::<SocketAddr>();
        let handle = axum_server::Handle::new();
        let stopper = handle.clone();
        tokio::spawn(async move {
            let _ = shutdown_rx.wait_for(|stop| *stop).await;
            stopper.graceful_shutdown(Some(Duration::from_secs(30)));
        });
        let served = match listener.into_std() {
            Ok(std_listener) => match tls {
                None => match axum_server::from_tcp(std_listener) {
                    Ok(mut server) => {
                        configure_http(server.http_builder(), &http_limits);
                        server.handle(handle).serve(service).await
                    }
                    Err(e) => Err(e),
                },
                Some(tls) => match axum_server::from_tcp_rustls(std_listener, tls) {
                    Ok(mut server) => {
                        configure_http(server.http_builder(), &http_limits);
                        server.handle(handle).serve(service).await
                    }
                    Err(e) => Err(e),
                },
            },
            Err(e) => Err(e),
        };
        reload.abort();
        housekeeping.abort();
        limits_maintenance.abort();
        console_upkeep.abort();
        metrics_upkeep.abort();
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
        shutdown,
        task,
    })
}

/// Connection-level limits, below axum: how long a client may take to send
/// its headers (a slowloris holds connections open by trickling them), and
/// how large they may be.
fn configure_http(
    builder: &mut hyper_util::server::conn::auto::Builder<hyper_util::rt::TokioExecutor>,
    limits: &latchkey_http::HttpLimits,
) {
    builder
        .http1()
        .header_read_timeout(Duration::from_secs(limits.header_read_timeout_secs))
        .max_buf_size(limits.max_header_bytes)
        .max_headers(limits.max_headers);
    builder
        .http2()
        .max_header_list_size(limits.max_header_bytes as u32);
}

/// The repositories as the server uses them: apps and resource servers,
/// read by every token request and rarely changed, through short caches.
fn serving_repos(ctx: &Context, ttl: Duration) -> Repos {
    let mut repos = ctx.store.repos.clone();
    repos.apps = Arc::new(CachedApps::new(repos.apps, ttl));
    repos.resource_servers = Arc::new(CachedResourceServers::new(repos.resource_servers, ttl));
    repos
}

/// Purges what expired, retires old keys, rotates on schedule.
fn spawn_housekeeping(
    housekeeper: Housekeeper,
    every: Duration,
    mut stop: watch::Receiver<bool>,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => match housekeeper.run_once().await {
                    Ok(report) if report != HousekeepingReport::default() => tracing::info!(?report, "housekeeping"),
                    Ok(_) => {}
                    Err(e) => tracing::warn!(error = %e, "housekeeping failed; retrying at the next interval"),
                },
                _ = stop.changed() => return,
            }
        }
    })
}

/// Picks up keys rotated by another node or the CLI.
fn spawn_key_reload(
    keys: Arc<KeyRing>,
    every: Duration,
    mut stop: watch::Receiver<bool>,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => {
                    if let Err(e) = keys.reload().await {
                        tracing::warn!(error = %e, "key reload failed; keeping the keys in memory");
                    }
                }
                _ = stop.changed() => return,
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
