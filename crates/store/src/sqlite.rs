//! The SQLite backend: one file, WAL mode, foreign keys on.

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use sqlx::SqlitePool;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};

use crate::OpenError;

pub struct SqliteStore {
    /// Readers: WAL lets them run beside the writer.
    pub(crate) pool: SqlitePool,
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
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .acquire_timeout(Duration::from_secs(5))
            .connect_with(options.clone())
            .await
            .map_err(|e| OpenError::new(format!("cannot open the SQLite database: {e}")))?;
        sqlx::migrate!("./migrations/sqlite")
            .run(&writer)
            .await
            .map_err(|e| OpenError::new(format!("SQLite migration failed: {e}")))?;
        let pool = SqlitePoolOptions::new()
            .max_connections(max_connections)
            .acquire_timeout(Duration::from_secs(5))
            .connect_with(options)
            .await
            .map_err(|e| OpenError::new(format!("cannot open the SQLite database: {e}")))?;
        Ok(SqliteStore { pool, writer })
    }

    pub async fn close(&self) {
        self.pool.close().await;
        self.writer.close().await;
    }
}

mod repos {
    use super::SqliteStore;
    // Write transactions take SQLite's write lock up front, so a
    // transaction that reads first never fails to upgrade its lock.
    crate::repos::impl_repos!(SqliteStore, sqlx::Sqlite, "BEGIN IMMEDIATE");
}

/// The whole rotation in one round trip to the writer: SQLite runs the
/// statements in order on one connection, `changes()` carries the outcome
/// of each to the next, and BEGIN IMMEDIATE…COMMIT makes them one
/// transaction.
const ROTATE: &str = "BEGIN IMMEDIATE;
UPDATE refresh_tokens SET rotated_at = $1 WHERE token_hash = $2 AND rotated_at IS NULL
    AND EXISTS (SELECT 1 FROM sessions s WHERE s.id = refresh_tokens.session_id AND s.revoked_at IS NULL);
INSERT INTO refresh_tokens (token_hash, session_id, app_id, user_id, scope, issued_at, expires_at, rotated_at)
    SELECT $3, $4, $5, $6, $7, $8, $9, NULL WHERE changes() = 1 RETURNING 1;
UPDATE sessions SET revoked_at = COALESCE(revoked_at, $1)
    WHERE changes() = 0 AND id = (SELECT session_id FROM refresh_tokens WHERE token_hash = $2);
COMMIT;";

impl SqliteStore {
    pub(crate) async fn rotate_refresh_atomically(
        &self,
        old_hash: &str,
        new: &latchkey_core::model::RefreshTokenRecord,
        now: i64,
    ) -> latchkey_core::store::StoreResult<latchkey_core::store::Rotation> {
        use latchkey_core::store::Rotation;
        let mut conn = self.writer.acquire().await.map_err(crate::error::map_err)?;
        let result = sqlx::query(ROTATE)
            .bind(now)
            .bind(old_hash)
            .bind(&new.token_hash)
            .bind(&new.session_id)
            .bind(&new.app_id)
            .bind(&new.user_id)
            .bind(&new.scope)
            .bind(new.issued_at)
            .bind(new.expires_at)
            // fetch_all drives every statement to completion, COMMIT
            // included; only the INSERT returns a row, when it inserted.
            .fetch_all(&mut *conn)
            .await;
        match result {
            Ok(rows) => Ok(if rows.len() == 1 {
                Rotation::Rotated
            } else {
                Rotation::ReuseDetected
            }),
            Err(e) => {
                // Never hand the connection back inside a transaction.
                let _ = sqlx::query("ROLLBACK").execute(&mut *conn).await;
                Err(crate::error::map_err(e))
            }
        }
    }
}
