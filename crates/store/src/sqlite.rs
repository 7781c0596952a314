//! The SQLite backend: one file, WAL mode, foreign keys on.

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use sqlx::SqlitePool;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};

use crate::OpenError;

pub struct SqliteStore {
    pub(crate) pool: SqlitePool,
}

/// The database file of a `sqlite:` URL, if it names one.
pub fn file_of(url: &str) -> Option<&Path> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))?;
    let path = rest.split('?').next().unwrap_or(rest);
    (!path.is_empty() && path != ":memory:").then(|| Path::new(path))
}

impl SqliteStore {
    pub async fn open(url: &str, max_connections: u32) -> Result<Self, OpenError> {
        if let Some(parent) = file_of(url)
            .and_then(Path::parent)
            .filter(|p| !p.as_os_str().is_empty())
        {
            std::fs::create_dir_all(parent).map_err(|e| {
                OpenError::new(format!(
                    "cannot create the folder {}: {e}",
                    parent.display()
                ))
            })?;
        }
        let options = SqliteConnectOptions::from_str(url)
            .map_err(|e| OpenError::new(format!("invalid SQLite URL: {e}")))?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // In WAL mode NORMAL loses no committed data on a crash of the
            // process, only possibly the last transactions on power loss.
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(5));
        let pool = SqlitePoolOptions::new()
            .max_connections(max_connections)
            .acquire_timeout(Duration::from_secs(5))
            .connect_with(options)
            .await
            .map_err(|e| OpenError::new(format!("cannot open the SQLite database: {e}")))?;
        sqlx::migrate!("./migrations/sqlite")
            .run(&pool)
            .await
            .map_err(|e| OpenError::new(format!("SQLite migration failed: {e}")))?;
        Ok(SqliteStore { pool })
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }
}

mod repos {
    use super::SqliteStore;
    // Write transactions take SQLite's write lock up front, so a
    // transaction that reads first never fails to upgrade its lock.
    crate::repos::impl_repos!(SqliteStore, sqlx::Sqlite, "BEGIN IMMEDIATE");
}
