//! The refresh grant's storage on SQLite: every lookup and rotation of a
//! refresh token goes through one task that owns the writer connection
//! and serves whatever is queued as one batch.
//!
//! Why: on SQLite a query is a hop to the connection's own thread and
//! back, and on this path the hops (thread wake-ups and switches) cost
//! more than the SQL. Batching divides them, and the per-commit cost (WAL
//! frames of the shared index pages, the lock), by the batch size. Reading
//! on the writer connection, not a reader, also keeps its page cache
//! warm: a reader's cache is dropped whenever another connection commits,
//! which on this path is every time. Alone, a request is a batch of one
//! and waits for nothing.

use std::collections::{HashMap, HashSet};

use latchkey_core::model::RefreshTokenRecord;
use latchkey_core::store::{RefreshContext, Rotation, StoreError, StoreResult};
use sqlx::SqlitePool;
use tokio::sync::{mpsc, oneshot};

use super::SqliteStore;
use crate::error::map_err;
use crate::rows::{REFRESH_CONTEXT_SELECT, RefreshContextRow};

const MAX_BATCH: usize = 64;

pub(super) type Queue = mpsc::Sender<Job>;

pub(super) enum Job {
    Find {
        token_hash: String,
        reply: oneshot::Sender<StoreResult<Option<RefreshContext>>>,
    },
    Rotate(RotationRequest),
}

pub(super) struct RotationRequest {
    old_hash: String,
    new: RefreshTokenRecord,
    now: i64,
    reply: oneshot::Sender<StoreResult<Rotation>>,
}

/// Starts the task; it ends when the store (every queue sender) is gone.
pub(super) fn start(writer: SqlitePool) -> Queue {
    let (queue, jobs) = mpsc::channel(1024);
    tokio::spawn(run(writer, jobs));
    queue
}

async fn run(writer: SqlitePool, mut queue: mpsc::Receiver<Job>) {
    let mut jobs = Vec::with_capacity(MAX_BATCH);
    let (mut finds, mut rotations) = (Vec::new(), Vec::new());
    while queue.recv_many(&mut jobs, MAX_BATCH).await > 0 {
        for job in jobs.drain(..) {
            match job {
                Job::Find { token_hash, reply } => finds.push((token_hash, reply)),
                Job::Rotate(request) => rotations.push(request),
            }
        }
        // Lookups first: their requesters sign their tokens while the
        // rotations queued beside them are written.
        if !finds.is_empty() {
            answer_finds(&writer, &mut finds).await;
        }
        if !rotations.is_empty() {
            answer_rotations(&writer, &mut rotations).await;
        }
    }
}

type FindRequest = (String, oneshot::Sender<StoreResult<Option<RefreshContext>>>);

async fn answer_finds(writer: &SqlitePool, finds: &mut Vec<FindRequest>) {
    let hashes: Vec<&str> = finds.iter().map(|(hash, _)| hash.as_str()).collect();
    let outcome = find_batch(writer, &hashes).await;
    // Where each hash is asked for the last time: a hash asked twice in
    // one batch (a replayed token) gets the same row both times.
    let last_ask: HashMap<String, usize> = finds
        .iter()
        .enumerate()
        .map(|(i, (hash, _))| (hash.clone(), i))
        .collect();
    match outcome {
        Ok(mut found) => {
            for (i, (hash, reply)) in finds.drain(..).enumerate() {
                let context = if last_ask[&hash] == i {
                    found.remove(&hash)
                } else {
                    found.get(&hash).cloned()
                };
                // The requester may have gone away.
                let _ = reply.send(Ok(context));
            }
        }
        Err(e) => {
            for (_, reply) in finds.drain(..) {
                let _ = reply.send(Err(e.clone()));
            }
        }
    }
}

/// One query for the whole batch: the hashes go in as one JSON array, so
/// the statement is the same (and prepared once) whatever the batch size.
async fn find_batch(
    writer: &SqlitePool,
    hashes: &[&str],
) -> StoreResult<HashMap<String, RefreshContext>> {
    static FIND: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
        format!("{REFRESH_CONTEXT_SELECT} WHERE r.token_hash IN (SELECT value FROM json_each($1))")
    });
    let list = serde_json::to_string(hashes).expect("a list of strings serializes");
    let rows: Vec<RefreshContextRow> = sqlx::query_as(sqlx::AssertSqlSafe(FIND.as_str()))
        .bind(list)
        .fetch_all(writer)
        .await
        .map_err(map_err)?;
    Ok(rows
        .into_iter()
        .map(|row| (row.token_hash.clone(), RefreshContext::from(row)))
        .collect())
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

async fn answer_rotations(writer: &SqlitePool, rotations: &mut Vec<RotationRequest>) {
    let outcome = write_batch(writer, rotations).await;
    for request in rotations.drain(..) {
        let answer = match &outcome {
            Ok(inserted) if inserted.contains(&request.new.token_hash) => Ok(Rotation::Rotated),
            Ok(_) => Ok(Rotation::ReuseDetected),
            Err(e) => Err(e.clone()),
        };
        // The requester may have gone away; its rotation stands.
        let _ = request.reply.send(answer);
    }
}

/// Writes one batch in one transaction and one round trip; returns the
/// hashes of the successors inserted.
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

fn stopped() -> StoreError {
    StoreError::Unavailable("the refresh token writer has stopped".into())
}

impl SqliteStore {
    pub(crate) async fn find_refresh_context(
        &self,
        token_hash: &str,
    ) -> StoreResult<Option<RefreshContext>> {
        let (reply, answer) = oneshot::channel();
        let job = Job::Find {
            token_hash: token_hash.to_owned(),
            reply,
        };
        self.refresh_jobs.send(job).await.map_err(|_| stopped())?;
        answer.await.map_err(|_| stopped())?
    }

    pub(crate) async fn rotate_refresh_atomically(
        &self,
        old_hash: &str,
        new: &RefreshTokenRecord,
        now: i64,
    ) -> StoreResult<Rotation> {
        let (reply, answer) = oneshot::channel();
        let job = Job::Rotate(RotationRequest {
            old_hash: old_hash.to_owned(),
            new: new.clone(),
            now,
            reply,
        });
        self.refresh_jobs.send(job).await.map_err(|_| stopped())?;
        answer.await.map_err(|_| stopped())?
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
