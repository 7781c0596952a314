//! Latchkey's storage: the repository traits of `latchkey-core`,
//! implemented on SQLite (the default) and PostgreSQL. The engine is chosen
//! by the URL scheme.

mod console;
mod directory;
mod error;
mod postgres;
mod repos;
mod rows;
mod scim_sql;
mod sqlite;
pub mod testing;

use std::sync::Arc;
use std::time::Duration;

use latchkey_core::store::Repos;

pub use sqlite::create_private_dir;
pub use sqlite::file_of as sqlite_file_of;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    Sqlite,
    Postgres,
}

/// Why the database could not be opened; the message is for the operator.
#[derive(Debug, Clone, thiserror::Error)]
#[error("database_url: {message}")]
pub struct OpenError {
    message: String,
}

impl OpenError {
    fn new(message: String) -> Self {
        OpenError { message }
    }
}

enum Backend {
    Sqlite(Arc<sqlite::SqliteStore>),
    Postgres(Arc<postgres::PostgresStore>),
}

/// An open, migrated database.
pub struct Store {
    pub repos: Repos,
    pub engine: Engine,
    backend: Backend,
}

impl Store {
    pub async fn close(&self) {
        match &self.backend {
            Backend::Sqlite(s) => s.close().await,
            Backend::Postgres(p) => p.close().await,
        }
    }
}

pub fn engine_of(url: &str) -> Option<Engine> {
    if url.starts_with("sqlite:") {
        Some(Engine::Sqlite)
    } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        Some(Engine::Postgres)
    } else {
        None
    }
}

/// How the connection pool behaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolSettings {
    pub max_connections: u32,
    /// How long a query waits for a connection (all busy, or the database
    /// unreachable) before it fails as unavailable (503).
    pub acquire_timeout: Duration,
    /// SQLite: the WAL size past which the writer checkpoints and starts
    /// the log over, between two transactions (ignored by PostgreSQL).
    pub sqlite_wal_limit_bytes: u64,
}

/// The default `PoolSettings::sqlite_wal_limit_bytes` (16 MiB).
pub const DEFAULT_SQLITE_WAL_LIMIT_BYTES: u64 = 16 << 20;

/// Opens the database named by `url` (creating an SQLite file and its
/// folder when missing) and applies pending migrations.
pub async fn open(url: &str, max_connections: u32) -> Result<Store, OpenError> {
    open_with(
        url,
        PoolSettings {
            max_connections,
            acquire_timeout: Duration::from_secs(5),
            sqlite_wal_limit_bytes: DEFAULT_SQLITE_WAL_LIMIT_BYTES,
        },
    )
    .await
}

/// `open`, with every pool setting.
pub async fn open_with(url: &str, pool: PoolSettings) -> Result<Store, OpenError> {
    match engine_of(url) {
        Some(Engine::Sqlite) => {
            let store = Arc::new(sqlite::SqliteStore::open(url, pool).await?);
            Ok(Store {
                repos: Repos::from_backend(store.clone()),
                engine: Engine::Sqlite,
                backend: Backend::Sqlite(store),
            })
        }
        Some(Engine::Postgres) => {
            let store = Arc::new(postgres::PostgresStore::open(url, pool).await?);
            Ok(Store {
                repos: Repos::from_backend(store.clone()),
                engine: Engine::Postgres,
                backend: Backend::Postgres(store),
            })
        }
        None => Err(OpenError::new(
            "unsupported URL (expected sqlite://PATH or postgres://USER@HOST/DB)".to_owned(),
        )),
    }
}
