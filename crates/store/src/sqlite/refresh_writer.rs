//! The refresh grant's storage on SQLite: every refresh goes through one
//! task that owns the writer connection and serves whatever is queued as
//! one batch: one query looks up every presented token, each refresh's
//! judge decides on its own, and one transaction writes every rotation
//! and revocation.
//!
//! Why: on SQLite a query is a hop to the connection's own thread and
//! back, and on this path the hops (thread wake-ups and switches) cost
//! more than the SQL. Batching divides them, and the per-commit cost (WAL
//! frames of the shared index pages, the lock), by the batch size. Reading
//! on the writer connection, not a reader, also keeps its page cache
//! warm: a reader's cache is dropped whenever another connection commits,
//! which on this path is every time. Alone, a refresh is a batch of one
//! and waits for nothing.

use std::collections::{HashMap, HashSet};
use std::sync::OnceLock;

use latchkey_core::model::RefreshTokenRecord;
use latchkey_core::store::{
    RefreshContext, RefreshJudge, RefreshVerdict, Refreshed, Rotation, StoreError, StoreResult,
};
use sqlx::{SqliteConnection, SqlitePool};
use tokio::sync::{mpsc, oneshot};

use super::SqliteStore;
use crate::error::map_err;
use crate::rows::{REFRESH_CONTEXT_SELECT, RefreshContextRow};

const MAX_BATCH: usize = 64;

pub(super) type Queue = mpsc::Sender<Job>;

pub(super) struct Job {
    token_hash: String,
    now: i64,
    judge: RefreshJudge,
    reply: oneshot::Sender<StoreResult<Refreshed>>,
}

/// Starts the writer on a thread of its own (a batch then never waits in
/// the server's run queues behind HTTP work); it ends when the store
/// (every queue sender) is gone.
pub(super) fn start(writer: SqlitePool) -> Queue {
    let (queue, jobs) = mpsc::channel(1024);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a current-thread runtime");
    std::thread::Builder::new()
        .name("latchkey-refresh".into())
        .spawn(move || runtime.block_on(run(writer, jobs)))
        .expect("spawn the refresh writer thread");
    queue
}

async fn run(writer: SqlitePool, mut queue: mpsc::Receiver<Job>) {
    let mut jobs = Vec::with_capacity(MAX_BATCH);
    while queue.recv_many(&mut jobs, MAX_BATCH).await > 0 {
        serve(&writer, &mut jobs).await;
    }
}

/// A judged refresh waiting for the batch's transaction.
struct Pending {
    token_hash: String,
    now: i64,
    found: RefreshContext,
    /// The successor to rotate to; none when the session ends instead.
    successor: Option<RefreshTokenRecord>,
    reply: oneshot::Sender<StoreResult<Refreshed>>,
}

async fn serve(writer: &SqlitePool, jobs: &mut Vec<Job>) {
    // One checkout for the lookup and the write: other writers wait for
    // the batch, not for each of its statements.
    let found = match writer.acquire().await.map_err(map_err) {
        Ok(mut conn) => {
            let hashes: Vec<&str> = jobs.iter().map(|job| job.token_hash.as_str()).collect();
            find_batch(&mut conn, &hashes)
                .await
                .map(|found| (conn, found))
        }
        Err(e) => Err(e),
    };
    let (mut conn, mut found) = match found {
        Ok(both) => both,
        Err(e) => {
            for job in jobs.drain(..) {
                let _ = job.reply.send(Err(e.clone()));
            }
            return;
        }
    };
    // Where each hash is asked for the last time: a hash presented twice
    // in one batch (a replayed token) is judged on the same row twice, and
    // the transaction lets only the first rotation win.
    let last_ask: HashMap<String, usize> = jobs
        .iter()
        .enumerate()
        .map(|(i, job)| (job.token_hash.clone(), i))
        .collect();
    let mut pending = Vec::with_capacity(jobs.len());
    for (i, job) in jobs.drain(..).enumerate() {
        let Job {
            token_hash,
            now,
            judge,
            reply,
        } = job;
        let context = if last_ask[&token_hash] == i {
            found.remove(&token_hash)
        } else {
            found.get(&token_hash).cloned()
        };
        let Some(context) = context else {
            let _ = reply.send(Ok(Refreshed::Unknown));
            continue;
        };
        let successor = match judge(&context) {
            RefreshVerdict::Refuse { end_session: false } => {
                let _ = reply.send(Ok(Refreshed::Refused(context)));
                continue;
            }
            RefreshVerdict::Refuse { end_session: true } => None,
            RefreshVerdict::Rotate(successor) => Some(successor),
        };
        pending.push(Pending {
            token_hash,
            now,
            found: context,
            successor,
            reply,
        });
    }
    if pending.is_empty() {
        return;
    }
    let outcome = write_batch(&mut conn, &pending).await;
    drop(conn);
    for item in pending {
        let answer = match (&outcome, item.successor) {
            (Err(e), _) => Err(e.clone()),
            (Ok(inserted), Some(successor)) if inserted.contains(&successor.token_hash) => {
                Ok(Refreshed::Rotated(item.found))
            }
            (Ok(_), Some(_)) => Ok(Refreshed::Lost(item.found)),
            (Ok(_), None) => Ok(Refreshed::Refused(item.found)),
        };
        // The requester may have gone away; what was written stands.
        let _ = item.reply.send(answer);
    }
}

/// One query for the whole batch: the hashes go in as one JSON array, so
/// the statement is the same (and prepared once) whatever the batch size.
async fn find_batch(
    conn: &mut SqliteConnection,
    hashes: &[&str],
) -> StoreResult<HashMap<String, RefreshContext>> {
    static FIND: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
        format!("{REFRESH_CONTEXT_SELECT} WHERE r.token_hash IN (SELECT value FROM json_each($1))")
    });
    let list = serde_json::to_string(hashes).expect("a list of strings serializes");
    let rows: Vec<RefreshContextRow> = sqlx::query_as(sqlx::AssertSqlSafe(FIND.as_str()))
        .bind(list)
        .fetch_all(&mut *conn)
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
/// `base`; nine of them.
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

/// Revokes a session (a replayed token, an absolute lifetime over); two
/// parameters from `base`.
fn push_end_session_sql(sql: &mut String, base: usize) {
    sql.push_str(&format!(
        "UPDATE sessions SET revoked_at = COALESCE(revoked_at, ${}) WHERE id = ${};\n",
        base + 1,
        base + 2
    ));
}

/// The transaction for `rotations` rotations then `ended` revocations.
fn batch_sql(rotations: usize, ended: usize) -> String {
    let mut sql = String::from("BEGIN IMMEDIATE;\n");
    for k in 0..rotations {
        push_rotation_sql(&mut sql, 9 * k);
    }
    for k in 0..ended {
        push_end_session_sql(&mut sql, 9 * rotations + 2 * k);
    }
    sql.push_str("COMMIT;");
    sql
}

/// The usual batch, rotations only, built once per size.
fn rotations_sql(rotations: usize) -> &'static str {
    static BUILT: [OnceLock<String>; MAX_BATCH + 1] = [const { OnceLock::new() }; MAX_BATCH + 1];
    BUILT[rotations].get_or_init(|| batch_sql(rotations, 0))
}

type BatchQuery<'q> =
    sqlx::query::QueryAs<'q, sqlx::Sqlite, (String,), <sqlx::Sqlite as sqlx::Database>::Arguments>;

fn bind_rotation<'q>(
    query: BatchQuery<'q>,
    old_hash: &'q str,
    new: &'q RefreshTokenRecord,
    now: i64,
) -> BatchQuery<'q> {
    query
        .bind(now)
        .bind(old_hash)
        .bind(&new.token_hash)
        .bind(&new.session_id)
        .bind(&new.app_id)
        .bind(&new.user_id)
        .bind(&new.scope)
        .bind(new.issued_at)
        .bind(new.expires_at)
}

/// Writes one batch in one transaction and one round trip; returns the
/// hashes of the successors inserted.
async fn write_batch(
    conn: &mut SqliteConnection,
    pending: &[Pending],
) -> StoreResult<HashSet<String>> {
    let rotations: Vec<(&Pending, &RefreshTokenRecord)> = pending
        .iter()
        .filter_map(|item| item.successor.as_ref().map(|next| (item, next)))
        .collect();
    let ended: Vec<&Pending> = pending
        .iter()
        .filter(|item| item.successor.is_none())
        .collect();
    let sql = if ended.is_empty() {
        std::borrow::Cow::Borrowed(rotations_sql(rotations.len()))
    } else {
        std::borrow::Cow::Owned(batch_sql(rotations.len(), ended.len()))
    };
    let mut query = sqlx::query_as(sqlx::AssertSqlSafe(sql));
    for (item, next) in &rotations {
        query = bind_rotation(query, &item.token_hash, next, item.now);
    }
    for item in &ended {
        query = query.bind(item.now).bind(&item.found.session.id);
    }
    run_batch(conn, query).await
}

/// Runs a batch transaction; the rows are the inserted successors' hashes.
async fn run_batch(
    conn: &mut SqliteConnection,
    query: BatchQuery<'_>,
) -> StoreResult<HashSet<String>> {
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
    pub(crate) async fn refresh_batched(
        &self,
        token_hash: &str,
        now: i64,
        judge: RefreshJudge,
    ) -> StoreResult<Refreshed> {
        let (reply, answer) = oneshot::channel();
        let job = Job {
            token_hash: token_hash.to_owned(),
            now,
            judge,
            reply,
        };
        self.refresh_jobs.send(job).await.map_err(|_| stopped())?;
        answer.await.map_err(|_| stopped())?
    }

    /// A rotation on its own (not the refresh grant's path, which is
    /// `refresh_batched`): a transaction of one.
    pub(crate) async fn rotate_refresh_atomically(
        &self,
        old_hash: &str,
        new: &RefreshTokenRecord,
        now: i64,
    ) -> StoreResult<Rotation> {
        let query = sqlx::query_as(sqlx::AssertSqlSafe(rotations_sql(1)));
        let mut conn = self.writer.acquire().await.map_err(map_err)?;
        let inserted = run_batch(&mut conn, bind_rotation(query, old_hash, new, now)).await?;
        Ok(if inserted.contains(&new.token_hash) {
            Rotation::Rotated
        } else {
            Rotation::ReuseDetected
        })
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn batch_parameters_are_numbered_per_statement() {
        let sql = super::batch_sql(2, 1);
        assert!(sql.starts_with("BEGIN IMMEDIATE;") && sql.ends_with("COMMIT;"));
        assert!(sql.contains("token_hash = $2 AND") && sql.contains("token_hash = $11 AND"));
        assert!(sql.contains("$18, NULL WHERE changes() = 1"));
        assert!(sql.contains("COALESCE(revoked_at, $19) WHERE id = $20;"));
        assert!(!sql.contains("$21"));
        assert_eq!(super::rotations_sql(2), super::batch_sql(2, 0));
    }
}
