//! The refresh grant's storage on SQLite: every refresh goes through one
//! task that owns the writer connection and serves whatever is queued as
//! one batch: one query looks up every presented token, each refresh's
//! judge decides on its own, and one transaction writes every rotation,
//! redemption and revocation.
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
    MAX_REFRESH_ROUNDS, RefreshContext, RefreshJudge, RefreshVerdict, Refreshed, Rotation,
    StoreError, StoreResult,
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
    /// How many batches have judged it already (a write it was judged
    /// for lost to a change it could not see).
    rounds: usize,
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
        // Jobs whose write lost (never expected: this task is the only
        // writer of refresh tokens, and judges each batch on what the
        // batch before it wrote) are judged again at once.
        while !jobs.is_empty() {
            jobs = serve(&writer, std::mem::take(&mut jobs)).await;
        }
    }
}

/// What a judged refresh writes.
enum Write {
    Rotate(RefreshTokenRecord),
    Redeem(RefreshTokenRecord),
    EndSession,
}

/// A judged refresh waiting for the batch's transaction.
struct Pending {
    job: Job,
    found: RefreshContext,
    write: Write,
}

/// What the batch has decided so far, so that each judge sees the writes
/// of the jobs before it in the same batch (a token presented twice, two
/// siblings of one session): tokens rotated, and sessions' generations
/// and revocations.
#[derive(Default)]
struct Overlay {
    rotated: HashMap<String, i64>,
    sessions: HashMap<String, (i64, Option<i64>)>,
}

impl Overlay {
    fn apply(&self, context: &mut RefreshContext) {
        if let Some(at) = self.rotated.get(&context.token.token_hash) {
            context.token.rotated_at = Some(*at);
        }
        if let Some((generation, revoked_at)) = self.sessions.get(&context.session.id) {
            context.session.generation = *generation;
            context.session.revoked_at = *revoked_at;
        }
    }

    fn record(&mut self, context: &RefreshContext, write: &Write, now: i64) {
        let session = &context.session;
        match write {
            Write::Rotate(_) => {
                self.rotated.insert(context.token.token_hash.clone(), now);
                self.sessions.insert(
                    session.id.clone(),
                    (session.generation + 1, session.revoked_at),
                );
            }
            Write::Redeem(_) => {}
            Write::EndSession => {
                self.sessions.insert(
                    session.id.clone(),
                    (session.generation, Some(session.revoked_at.unwrap_or(now))),
                );
            }
        }
    }
}

/// Serves one batch; returns the jobs to judge again.
async fn serve(writer: &SqlitePool, mut jobs: Vec<Job>) -> Vec<Job> {
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
            return Vec::new();
        }
    };
    // Where each hash is asked for the last time: a hash presented twice
    // in one batch is looked up once (cloned for all but its last ask).
    let last_ask: HashMap<String, usize> = jobs
        .iter()
        .enumerate()
        .map(|(i, job)| (job.token_hash.clone(), i))
        .collect();
    let mut overlay = Overlay::default();
    let mut pending = Vec::with_capacity(jobs.len());
    for (i, job) in jobs.drain(..).enumerate() {
        let context = if last_ask[&job.token_hash] == i {
            found.remove(&job.token_hash)
        } else {
            found.get(&job.token_hash).cloned()
        };
        let Some(mut context) = context else {
            let _ = job.reply.send(Ok(Refreshed::Unknown));
            continue;
        };
        overlay.apply(&mut context);
        let write = match (job.judge)(&context) {
            RefreshVerdict::Refuse { end_session: false } => {
                let _ = job.reply.send(Ok(Refreshed::Refused(context)));
                continue;
            }
            RefreshVerdict::Refuse { end_session: true } => Write::EndSession,
            RefreshVerdict::Rotate(successor) => Write::Rotate(successor),
            RefreshVerdict::Redeem(sibling) => Write::Redeem(sibling),
        };
        overlay.record(&context, &write, job.now);
        pending.push(Pending {
            job,
            found: context,
            write,
        });
    }
    if pending.is_empty() {
        return Vec::new();
    }
    let outcome = write_batch(&mut conn, &pending).await;
    drop(conn);
    let mut again = Vec::new();
    for Pending { job, found, write } in pending {
        let answer = match (&outcome, write) {
            (Err(e), _) => Err(e.clone()),
            (Ok(_), Write::EndSession) => Ok(Refreshed::Refused(found)),
            (Ok(inserted), Write::Rotate(next)) if inserted.contains(&next.token_hash) => {
                Ok(Refreshed::Rotated(found))
            }
            (Ok(inserted), Write::Redeem(next)) if inserted.contains(&next.token_hash) => {
                Ok(Refreshed::Redeemed(found))
            }
            (Ok(_), _) if job.rounds + 1 < MAX_REFRESH_ROUNDS => {
                again.push(Job {
                    rounds: job.rounds + 1,
                    ..job
                });
                continue;
            }
            (Ok(_), _) => Err(StoreError::Conflict(
                "the refresh token kept changing under concurrent refreshes".into(),
            )),
        };
        // The requester may have gone away; what was written stands.
        let _ = job.reply.send(answer);
    }
    again
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

/// Parameters of each kind of write, in the order they are bound.
const ROTATION_PARAMS: usize = 10;
const REDEMPTION_PARAMS: usize = 8;
const END_SESSION_PARAMS: usize = 2;

/// A rotation: the session's row is the gate (live, still in the old
/// token's generation, the old token not rotated): it moves to the next
/// generation; only if it did (`changes()` is the previous statement's
/// count) is the old token marked rotated and the successor inserted,
/// returning its hash. Parameters from `base`: now, old hash, the
/// successor's hash, session, app, user, scope, issued, expires, and the
/// old generation.
fn push_rotation_sql(sql: &mut String, base: usize) {
    let p = |i: usize| base + i;
    sql.push_str(&format!(
        "UPDATE sessions SET generation = generation + 1 WHERE id = ${sid} AND revoked_at IS NULL AND generation = ${gen} \
             AND EXISTS (SELECT 1 FROM refresh_tokens WHERE token_hash = ${old} AND rotated_at IS NULL);\n\
         UPDATE refresh_tokens SET rotated_at = ${now} WHERE changes() = 1 AND token_hash = ${old};\n\
         INSERT INTO refresh_tokens (token_hash, session_id, app_id, user_id, scope, issued_at, expires_at, rotated_at, generation) \
             SELECT ${new}, ${sid}, ${app}, ${user}, ${scope}, ${issued}, ${expires}, NULL, ${gen} + 1 WHERE changes() = 1 RETURNING token_hash;\n",
        now = p(1), old = p(2), new = p(3), sid = p(4), app = p(5), user = p(6), scope = p(7),
        issued = p(8), expires = p(9), gen = p(10),
    ));
}

/// A redemption within the reuse interval: the sibling is inserted (its
/// hash returned) only if the session is live and in its generation.
/// Parameters from `base`: the sibling's hash, session, app, user, scope,
/// issued, expires, generation.
fn push_redemption_sql(sql: &mut String, base: usize) {
    let p = |i: usize| base + i;
    sql.push_str(&format!(
        "INSERT INTO refresh_tokens (token_hash, session_id, app_id, user_id, scope, issued_at, expires_at, rotated_at, generation) \
             SELECT ${new}, ${sid}, ${app}, ${user}, ${scope}, ${issued}, ${expires}, NULL, ${gen} \
             WHERE EXISTS (SELECT 1 FROM sessions WHERE id = ${sid} AND revoked_at IS NULL AND generation = ${gen}) \
             RETURNING token_hash;\n",
        new = p(1), sid = p(2), app = p(3), user = p(4), scope = p(5), issued = p(6),
        expires = p(7), gen = p(8),
    ));
}

/// Revokes a session (a replayed token, an absolute lifetime over);
/// parameters from `base`: now, session.
fn push_end_session_sql(sql: &mut String, base: usize) {
    sql.push_str(&format!(
        "UPDATE sessions SET revoked_at = COALESCE(revoked_at, ${}) WHERE id = ${};\n",
        base + 1,
        base + 2
    ));
}

/// The kinds of write, for building a batch's SQL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Rotate,
    Redeem,
    EndSession,
}

impl Write {
    fn kind(&self) -> Kind {
        match self {
            Write::Rotate(_) => Kind::Rotate,
            Write::Redeem(_) => Kind::Redeem,
            Write::EndSession => Kind::EndSession,
        }
    }
}

/// The transaction for writes of these kinds, in order.
fn batch_sql(kinds: impl Iterator<Item = Kind>) -> String {
    let mut sql = String::from("BEGIN IMMEDIATE;\n");
    let mut base = 0;
    for kind in kinds {
        match kind {
            Kind::Rotate => {
                push_rotation_sql(&mut sql, base);
                base += ROTATION_PARAMS;
            }
            Kind::Redeem => {
                push_redemption_sql(&mut sql, base);
                base += REDEMPTION_PARAMS;
            }
            Kind::EndSession => {
                push_end_session_sql(&mut sql, base);
                base += END_SESSION_PARAMS;
            }
        }
    }
    sql.push_str("COMMIT;");
    sql
}

/// The usual batch, rotations only, built once per size.
fn rotations_sql(rotations: usize) -> &'static str {
    static BUILT: [OnceLock<String>; MAX_BATCH + 1] = [const { OnceLock::new() }; MAX_BATCH + 1];
    BUILT[rotations].get_or_init(|| batch_sql(std::iter::repeat_n(Kind::Rotate, rotations)))
}

type BatchQuery<'q> =
    sqlx::query::QueryAs<'q, sqlx::Sqlite, (String,), <sqlx::Sqlite as sqlx::Database>::Arguments>;

fn bind_rotation<'q>(
    query: BatchQuery<'q>,
    old: &'q RefreshTokenRecord,
    new: &'q RefreshTokenRecord,
    now: i64,
) -> BatchQuery<'q> {
    query
        .bind(now)
        .bind(&old.token_hash)
        .bind(&new.token_hash)
        .bind(&new.session_id)
        .bind(&new.app_id)
        .bind(&new.user_id)
        .bind(&new.scope)
        .bind(new.issued_at)
        .bind(new.expires_at)
        .bind(old.generation)
}

fn bind_redemption<'q>(query: BatchQuery<'q>, sibling: &'q RefreshTokenRecord) -> BatchQuery<'q> {
    query
        .bind(&sibling.token_hash)
        .bind(&sibling.session_id)
        .bind(&sibling.app_id)
        .bind(&sibling.user_id)
        .bind(&sibling.scope)
        .bind(sibling.issued_at)
        .bind(sibling.expires_at)
        .bind(sibling.generation)
}

/// Writes one batch in one transaction and one round trip; returns the
/// hashes of the successors and siblings inserted.
async fn write_batch(
    conn: &mut SqliteConnection,
    pending: &[Pending],
) -> StoreResult<HashSet<String>> {
    let sql = if pending.iter().all(|item| item.write.kind() == Kind::Rotate) {
        std::borrow::Cow::Borrowed(rotations_sql(pending.len()))
    } else {
        std::borrow::Cow::Owned(batch_sql(pending.iter().map(|item| item.write.kind())))
    };
    let mut query = sqlx::query_as(sqlx::AssertSqlSafe(sql));
    for item in pending {
        query = match &item.write {
            Write::Rotate(next) => bind_rotation(query, &item.found.token, next, item.job.now),
            Write::Redeem(sibling) => bind_redemption(query, sibling),
            Write::EndSession => query.bind(item.job.now).bind(&item.found.session.id),
        };
    }
    run_batch(conn, query).await
}

/// Runs a batch transaction; the rows are the inserted tokens' hashes.
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

fn stored_if(inserted: &HashSet<String>, record: &RefreshTokenRecord) -> Rotation {
    if inserted.contains(&record.token_hash) {
        Rotation::Stored
    } else {
        Rotation::Lost
    }
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
            rounds: 0,
        };
        self.refresh_jobs.send(job).await.map_err(|_| stopped())?;
        answer.await.map_err(|_| stopped())?
    }

    /// A rotation on its own (not the refresh grant's path, which is
    /// `refresh_batched`): a transaction of one.
    pub(crate) async fn rotate_refresh_atomically(
        &self,
        old: &RefreshTokenRecord,
        new: &RefreshTokenRecord,
        now: i64,
    ) -> StoreResult<Rotation> {
        let query = sqlx::query_as(sqlx::AssertSqlSafe(rotations_sql(1)));
        let mut conn = self.writer.acquire().await.map_err(map_err)?;
        let inserted = run_batch(&mut conn, bind_rotation(query, old, new, now)).await?;
        Ok(stored_if(&inserted, new))
    }

    /// A redemption on its own: a transaction of one.
    pub(crate) async fn redeem_refresh_atomically(
        &self,
        sibling: &RefreshTokenRecord,
    ) -> StoreResult<Rotation> {
        static SQL: std::sync::LazyLock<String> =
            std::sync::LazyLock::new(|| batch_sql(std::iter::once(Kind::Redeem)));
        let query = sqlx::query_as(sqlx::AssertSqlSafe(SQL.as_str()));
        let mut conn = self.writer.acquire().await.map_err(map_err)?;
        let inserted = run_batch(&mut conn, bind_redemption(query, sibling)).await?;
        Ok(stored_if(&inserted, sibling))
    }
}

#[cfg(test)]
mod tests {
    use super::Kind;

    #[test]
    fn batch_parameters_are_numbered_per_statement() {
        let kinds = [Kind::Rotate, Kind::Redeem, Kind::Rotate, Kind::EndSession];
        let sql = super::batch_sql(kinds.into_iter());
        assert!(sql.starts_with("BEGIN IMMEDIATE;") && sql.ends_with("COMMIT;"));
        // The first rotation: $1..$10; the redemption $11..$18; the
        // second rotation $19..$28; the revocation $29, $30.
        assert!(sql.contains("WHERE id = $4 AND revoked_at IS NULL AND generation = $10"));
        assert!(sql.contains("NULL, $18 WHERE EXISTS (SELECT 1 FROM sessions WHERE id = $12"));
        assert!(sql.contains("token_hash = $20 AND rotated_at IS NULL"));
        assert!(sql.contains("NULL, $28 + 1 WHERE changes() = 1"));
        assert!(sql.contains("COALESCE(revoked_at, $29) WHERE id = $30;"));
        assert!(!sql.contains("$31"));
        assert_eq!(
            super::rotations_sql(2),
            super::batch_sql([Kind::Rotate, Kind::Rotate].into_iter())
        );
    }
}
