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
/// transaction). Of two concurrent rotations of one token, the second
/// waits on the row lock, then finds `rotated_at` set and revokes.
const ROTATE: &str = "WITH rotated AS (
    UPDATE refresh_tokens SET rotated_at = $1 WHERE token_hash = $2 AND rotated_at IS NULL
        AND EXISTS (SELECT 1 FROM sessions s WHERE s.id = refresh_tokens.session_id AND s.revoked_at IS NULL)
    RETURNING session_id
), inserted AS (
    INSERT INTO refresh_tokens (token_hash, session_id, app_id, user_id, scope, issued_at, expires_at, rotated_at)
    SELECT $3, $4, $5, $6, $7, $8, $9, NULL FROM rotated
    RETURNING 1
), revoked AS (
    UPDATE sessions SET revoked_at = COALESCE(revoked_at, $1)
    WHERE NOT EXISTS (SELECT 1 FROM rotated)
      AND id = (SELECT session_id FROM refresh_tokens WHERE token_hash = $2)
    RETURNING 1
)
SELECT (SELECT COUNT(*) FROM inserted) + 0 * (SELECT COUNT(*) FROM revoked)";

impl PostgresStore {
    /// Many nodes may share the database, so there is no batching here:
    /// the trait's lookup, judgement and atomic rotation.
    pub(crate) async fn refresh_batched(
        &self,
        token_hash: &str,
        now: i64,
        judge: latchkey_core::store::RefreshJudge,
    ) -> latchkey_core::store::StoreResult<latchkey_core::store::Refreshed> {
        latchkey_core::store::refresh_in_three_calls(self, token_hash, now, judge).await
    }

    pub(crate) async fn rotate_refresh_atomically(
        &self,
        old_hash: &str,
        new: &latchkey_core::model::RefreshTokenRecord,
        now: i64,
    ) -> latchkey_core::store::StoreResult<latchkey_core::store::Rotation> {
        use latchkey_core::store::Rotation;
        let (inserted,): (i64,) = sqlx::query_as(ROTATE)
            .bind(now)
            .bind(old_hash)
            .bind(&new.token_hash)
            .bind(&new.session_id)
            .bind(&new.app_id)
            .bind(&new.user_id)
            .bind(&new.scope)
            .bind(new.issued_at)
            .bind(new.expires_at)
            .fetch_one(&self.writer)
            .await
            .map_err(crate::error::map_err)?;
        Ok(if inserted == 1 {
            Rotation::Rotated
        } else {
            Rotation::ReuseDetected
        })
    }
}
