//! The PostgreSQL backend, for several Latchkey nodes sharing one database.
use sqlx::PgPool;
use sqlx::postgres::PgPoolOptions;

use crate::OpenError;

pub struct PostgresStore {
    pub(crate) pool: PgPool,
    /// The same pool: PostgreSQL handles concurrent writers itself.
    pub(crate) writer: PgPool,
}

impl PostgresStore {
    pub async fn open(url: &str, settings: crate::PoolSettings) -> Result<Self, OpenError> {
        let pool = PgPoolOptions::new()
            .max_connections(settings.max_connections)
            .acquire_timeout(settings.acquire_timeout)
            .connect(url)
            .await
            .map_err(|e| OpenError::new(format!("cannot connect to PostgreSQL: {e}")))?;
        sqlx::migrate!("./migrations/postgres")
            .run(&pool)
            .await
            .map_err(|e| OpenError::new(format!("PostgreSQL migration failed: {e}")))?;
        Ok(PostgresStore {
            writer: pool.clone(),
            pool,
        })
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }

    pub(crate) fn stats(&self) -> latchkey_core::store::PoolStats {
        latchkey_core::store::PoolStats {
            size: self.pool.size(),
            idle: self.pool.num_idle() as u32,
            max: self.pool.options().get_max_connections(),
        }
    }
}

mod repos {
    use super::PostgresStore;
    // Scheduled key rotation takes a transaction-scoped advisory lock, so of
    // several nodes checking at once one rotates and the others then see
    // the fresh key.
    crate::repos::impl_repos!(
        PostgresStore,
        sqlx::Postgres,
        "BEGIN",
        Some("SELECT pg_advisory_xact_lock(7364616176)")
    );
    // Order strings by code point, whatever the database's locale, so
    // both engines sort and compare alike.
    crate::directory::impl_directory!(PostgresStore, sqlx::Postgres, " COLLATE \"C\"");
    crate::console::impl_console!(PostgresStore);
}

/// The whole rotation as one statement (one round trip, one implicit
/// transaction). The session's row is the gate: the rotation moves it to
/// the next generation only if it is live and still in the old token's
/// generation, and the old token has not rotated. Of two concurrent
/// rotations in one session, the second waits on that row's lock, then
/// finds the generation moved on and writes nothing (`Lost`: judged again).
const ROTATE: &str = "WITH bumped AS (
    UPDATE sessions SET generation = generation + 1
    WHERE id = $4 AND revoked_at IS NULL AND generation = $10
      AND EXISTS (SELECT 1 FROM refresh_tokens WHERE token_hash = $2 AND session_id = $4 AND rotated_at IS NULL)
    RETURNING id
), rotated AS (
    UPDATE refresh_tokens SET rotated_at = $1 WHERE token_hash = $2 AND EXISTS (SELECT 1 FROM bumped)
    RETURNING 1
), inserted AS (
    INSERT INTO refresh_tokens (token_hash, session_id, app_id, user_id, scope, issued_at, expires_at, rotated_at, generation)
    SELECT $3, $4, $5, $6, $7, $8, $9, NULL, $10 + 1 FROM bumped
    RETURNING 1
)
SELECT (SELECT COUNT(*) FROM inserted) + 0 * (SELECT COUNT(*) FROM rotated)";

/// A redemption within the reuse interval: the sibling is stored only if
/// the session is live and still in its generation. `FOR SHARE` waits for
/// a concurrent rotation (which takes the row for update) and then sees
/// its generation, so a sibling is never born into a dead generation.
const REDEEM: &str = "WITH live AS (
    SELECT id FROM sessions WHERE id = $2 AND revoked_at IS NULL AND generation = $8 FOR SHARE
)
INSERT INTO refresh_tokens (token_hash, session_id, app_id, user_id, scope, issued_at, expires_at, rotated_at, generation)
SELECT $1, $2, $3, $4, $5, $6, $7, NULL, $8 FROM live
RETURNING 1";

impl PostgresStore {
    /// Many nodes may share the database, so there is no batching here:
    /// the trait's lookup, judgement and atomic write, judged again when
    /// a concurrent refresh won the write.
    pub(crate) async fn refresh_batched(
        &self,
        token_hash: &str,
        now: i64,
        judge: latchkey_core::store::RefreshJudge,
    ) -> latchkey_core::store::StoreResult<latchkey_core::store::Refreshed> {
        latchkey_core::store::refresh_in_calls(self, token_hash, now, judge).await
    }

    pub(crate) async fn rotate_refresh_atomically(
        &self,
        old: &latchkey_core::model::RefreshTokenRecord,
        new: &latchkey_core::model::RefreshTokenRecord,
        now: i64,
    ) -> latchkey_core::store::StoreResult<latchkey_core::store::Rotation> {
        use latchkey_core::store::Rotation;
        let (inserted,): (i64,) = sqlx::query_as(ROTATE)
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
            .fetch_one(&self.writer)
            .await
            .map_err(crate::error::map_err)?;
        Ok(if inserted == 1 {
            Rotation::Stored
        } else {
            Rotation::Lost
        })
    }

    pub(crate) async fn redeem_refresh_atomically(
        &self,
        sibling: &latchkey_core::model::RefreshTokenRecord,
    ) -> latchkey_core::store::StoreResult<latchkey_core::store::Rotation> {
        use latchkey_core::store::Rotation;
        let stored: Option<(i32,)> = sqlx::query_as(REDEEM)
            .bind(&sibling.token_hash)
            .bind(&sibling.session_id)
            .bind(&sibling.app_id)
            .bind(&sibling.user_id)
            .bind(&sibling.scope)
            .bind(sibling.issued_at)
            .bind(sibling.expires_at)
            .bind(sibling.generation)
            .fetch_optional(&self.writer)
            .await
            .map_err(crate::error::map_err)?;
        Ok(if stored.is_some() {
            Rotation::Stored
        } else {
            Rotation::Lost
        })
    }
}
