//! The SQLite backend: one file, WAL mode, foreign keys on.

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use sqlx::SqlitePool;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};

use crate::OpenError;

pub use files::create_private_dir;

mod files;
mod refresh_writer;
mod wal;

pub struct SqliteStore {
    /// Readers: WAL lets them run beside the writer.
    pub(crate) pool: SqlitePool,
    /// The queue of the refresh grant's batching writer (refresh_writer.rs).
    refresh_jobs: refresh_writer::Queue,
    /// The one writer connection. SQLite admits one writer at a time;
    /// queueing writers here (an async wait) instead of in SQLite's busy
    /// handler (sleep-and-retry) keeps write latency flat under load.
    pub(crate) writer: SqlitePool,
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
    pub async fn open(url: &str, settings: crate::PoolSettings) -> Result<Self, OpenError> {
        if let Some(file) = file_of(url) {
            files::prepare(file)?;
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
        // No automatic checkpoint inside a commit: a background task copies
        // the WAL back beside the writer, and the writer finishes the job
        // between transactions once the WAL passes the limit, so the next
        // write starts it over (wal.rs): bounded under any write rate.
        // SQLite runs one checkpoint at a time and fails a second at once,
        // so the two take turns on a lock of their own (the writer waits
        // for a background one to end rather than fail and let the log grow).
        let bound = wal::WalBound::new(file_of(url), settings.sqlite_wal_limit_bytes);
        let release_bound = bound.clone();
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .acquire_timeout(settings.acquire_timeout)
            .after_release(move |conn, _| {
                let bound = release_bound.clone();
                Box::pin(async move {
                    if let Some(bound) = bound {
                        bound.after_write(conn).await;
                    }
                    Ok(true)
                })
            })
            .connect_with(
                options
                    .clone()
                    .pragma("wal_autocheckpoint", "0")
                    // After a restart, the file is cut back to the limit.
                    .pragma(
                        "journal_size_limit",
                        settings.sqlite_wal_limit_bytes.to_string(),
                    )
                    // Room for a batch statement of every size (refresh_writer.rs)
                    // beside the writes' own.
                    .statement_cache_capacity(256),
            )
            .await
            .map_err(|e| OpenError::new(format!("cannot open the SQLite database: {e}")))?;
        sqlx::migrate!("./migrations/sqlite")
            .run(&writer)
            .await
            .map_err(|e| OpenError::new(format!("SQLite migration failed: {e}")))?;
        let pool = SqlitePoolOptions::new()
            .max_connections(settings.max_connections)
            .acquire_timeout(settings.acquire_timeout)
            .connect_with(options)
            .await
            .map_err(|e| OpenError::new(format!("cannot open the SQLite database: {e}")))?;
        let refresh_jobs = refresh_writer::start(writer.clone());
        if let Some(bound) = bound {
            tokio::spawn(bound.copy_beside_the_writer(pool.clone()));
        }
        Ok(SqliteStore {
            pool,
            refresh_jobs,
            writer,
        })
    }

    pub async fn close(&self) {
        self.pool.close().await;
        self.writer.close().await;
    }

    /// The readers and the one writer together.
    pub(crate) fn stats(&self) -> latchkey_core::store::PoolStats {
        latchkey_core::store::PoolStats {
            size: self.pool.size() + self.writer.size(),
            idle: (self.pool.num_idle() + self.writer.num_idle()) as u32,
            max: self.pool.options().get_max_connections()
                + self.writer.options().get_max_connections(),
        }
    }
}

mod repos {
    use super::SqliteStore;
    // Write transactions take SQLite's write lock up front, so a
    // transaction that reads first never fails to upgrade its lock.
    crate::repos::impl_repos!(SqliteStore, sqlx::Sqlite, "BEGIN IMMEDIATE", None::<&str>);
    // SQLite compares strings by code point already (BINARY).
    crate::directory::impl_directory!(SqliteStore, sqlx::Sqlite, "");
    crate::console::impl_console!(SqliteStore);
}
