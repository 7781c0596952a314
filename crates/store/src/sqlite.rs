//! The SQLite backend: one file, WAL mode, foreign keys on.

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use std::collections::HashSet;

use latchkey_core::model::RefreshTokenRecord;
use latchkey_core::store::{Rotation, StoreError, StoreResult};
use sqlx::SqlitePool;
use tokio::sync::{mpsc, oneshot};

use crate::error::map_err;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};

use crate::OpenError;

pub struct SqliteStore {
    /// Readers: WAL lets them run beside the writer.
    pub(crate) pool: SqlitePool,
    /// The queue of the group-committing rotation writer (below).
    rotations: mpsc::Sender<RotationRequest>,
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
        // The server checkpoints the WAL from a background task (below),
        // so the writer never stalls the rotations queued behind it on a
        // checkpoint's copy and fsync.
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .acquire_timeout(settings.acquire_timeout)
            .connect_with(options.clone().pragma("wal_autocheckpoint", "0"))
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
        let (rotations, queue) = mpsc::channel(1024);
        tokio::spawn(run_rotations(writer.clone(), queue));
        tokio::spawn(run_checkpoints(pool.clone()));
        Ok(SqliteStore {
            pool,
            rotations,
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

/// Refresh-token rotations are group-committed: concurrent rotations wait
/// in a queue, and one task writes everything queued in one transaction
/// and one round trip to the writer connection. Under load this divides
/// the per-commit cost (WAL frames of the shared index pages, the lock, the
/// hop to SQLite's thread) by the batch size; alone, a rotation is a batch
/// of one and waits for nothing.
const MAX_BATCH: usize = 64;

struct RotationRequest {
    old_hash: String,
    new: RefreshTokenRecord,
    now: i64,
    reply: oneshot::Sender<StoreResult<Rotation>>,
}

/// Per rotation, in order: mark the old token rotated (if it is live and
/// its session is); insert the successor only if that changed a row
/// (`changes()` is the previous statement's count), returning its hash;
/// otherwise revoke the session (reuse). Parameters are numbered from
/// `base`.
fn push_rotation_sql(sql: &mut String, base: usize) {
    let p = |i: usize| base + i;
    sql.push_str(&format!(
        "UPDATE refresh_tokens SET rotated_at = ${now} WHERE token_hash = ${old} AND rotated_at IS NULL \
             AND EXISTS (SELECT 1 FROM sessions s WHERE s.id = refresh_tokens.session_id AND s.revoked_at IS NULL);\n\
         INSERT INTO refresh_tokens (token_hash, session_id, app_id, user_id, scope, issued_at, expires_at, rotated_at) \
             SELECT ${a}, ${b}, ${c}, ${d}, ${e}, ${f}, ${g}, NULL WHERE changes() = 1 RETURNING token_hash;\n\
         UPDATE sessions SET revoked_at = COALESCE(revoked_at, ${now}) \
             WHERE changes() = 0 AND id = (SELECT session_id FROM refresh_tokens WHERE token_hash = ${old});\n",
        now = p(1), old = p(2), a = p(3), b = p(4), c = p(5), d = p(6), e = p(7), f = p(8), g = p(9),
    ));
}

fn batch_sql(n: usize) -> String {
    let mut sql = String::from("BEGIN IMMEDIATE;\n");
    for k in 0..n {
        push_rotation_sql(&mut sql, 9 * k);
    }
    sql.push_str("COMMIT;");
    sql
}

/// Writes one batch; returns the hashes of the successors inserted.
async fn write_batch(
    writer: &SqlitePool,
    batch: &[RotationRequest],
) -> StoreResult<HashSet<String>> {
    let sql = batch_sql(batch.len());
    let mut conn = writer.acquire().await.map_err(map_err)?;
    let mut query = sqlx::query_as::<_, (String,)>(sqlx::AssertSqlSafe(sql));
    for r in batch {
        query = query
            .bind(r.now)
            .bind(&r.old_hash)
            .bind(&r.new.token_hash)
            .bind(&r.new.session_id)
            .bind(&r.new.app_id)
            .bind(&r.new.user_id)
            .bind(&r.new.scope)
            .bind(r.new.issued_at)
            .bind(r.new.expires_at);
    }
    // fetch_all drives every statement to completion, COMMIT included.
    match query.fetch_all(&mut *conn).await {
        Ok(rows) => Ok(rows.into_iter().map(|(hash,)| hash).collect()),
        Err(e) => {
            // Never hand the connection back inside a transaction.
            let _ = sqlx::query("ROLLBACK").execute(&mut *conn).await;
            Err(map_err(e))
        }
    }
}

async fn run_rotations(writer: SqlitePool, mut queue: mpsc::Receiver<RotationRequest>) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while queue.recv_many(&mut batch, MAX_BATCH).await > 0 {
        let outcome = write_batch(&writer, &batch).await;
        for request in batch.drain(..) {
            let answer = match &outcome {
                Ok(inserted) if inserted.contains(&request.new.token_hash) => Ok(Rotation::Rotated),
                Ok(_) => Ok(Rotation::ReuseDetected),
                Err(e) => Err(e.clone()),
            };
            // The requester may have gone away; its rotation stands.
            let _ = request.reply.send(answer);
        }
    }
}

/// PASSIVE checkpoints copy what readers no longer need from the WAL into
/// the database without blocking the writer. Once a second keeps the WAL
/// small; the task ends when the store's pool closes.
async fn run_checkpoints(pool: SqlitePool) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        if pool.is_closed() {
            return;
        }
        if let Err(e) = sqlx::query("PRAGMA wal_checkpoint(PASSIVE)")
            .execute(&pool)
            .await
        {
            if pool.is_closed() {
                return;
            }
            tracing::warn!(error = %e, "WAL checkpoint failed");
        }
    }
}

impl SqliteStore {
    pub(crate) async fn rotate_refresh_atomically(
        &self,
        old_hash: &str,
        new: &RefreshTokenRecord,
        now: i64,
    ) -> StoreResult<Rotation> {
        let (reply, answer) = oneshot::channel();
        let request = RotationRequest {
            old_hash: old_hash.to_owned(),
            new: new.clone(),
            now,
            reply,
        };
        self.rotations
            .send(request)
            .await
            .map_err(|_| StoreError::Unavailable("the rotation writer has stopped".into()))?;
        answer
            .await
            .map_err(|_| StoreError::Unavailable("the rotation writer has stopped".into()))?
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn batch_parameters_are_numbered_per_rotation() {
        let sql = super::batch_sql(2);
        assert!(sql.starts_with("BEGIN IMMEDIATE;") && sql.ends_with("COMMIT;"));
        assert!(sql.contains("token_hash = $2 AND") && sql.contains("token_hash = $11 AND"));
        assert!(sql.contains("$18, NULL WHERE changes() = 1"));
        assert!(!sql.contains("$19"));
    }
}
