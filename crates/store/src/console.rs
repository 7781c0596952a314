//! `ConsoleSessionRepo`, written once and stamped out per engine by
//! `impl_console!` beside `impl_repos!`.

macro_rules! impl_console {
    ($store:ident) => {
        mod console_impl {
            use async_trait::async_trait;
            use latchkey_core::console::{ConsoleSessionRecord, ConsoleSessionRepo};
            use latchkey_core::store::StoreResult;

            use super::$store;
            use crate::error::map_err;

            type Row = (String, String, String, i64, i64, i64, Option<i64>);

            #[async_trait]
            impl ConsoleSessionRepo for $store {
                async fn create_console_session(&self, s: &ConsoleSessionRecord) -> StoreResult<()> {
                    sqlx::query(
                        "INSERT INTO console_sessions (id_hash, user_id, sealed_tokens, access_expires_at, created_at, last_seen_at, refreshing_since) \
                         VALUES ($1, $2, $3, $4, $5, $6, $7)",
                    )
                    .bind(&s.id_hash)
                    .bind(&s.user_id)
                    .bind(&s.sealed_tokens)
                    .bind(s.access_expires_at)
                    .bind(s.created_at)
                    .bind(s.last_seen_at)
                    .bind(s.refreshing_since)
                    .execute(&self.writer)
                    .await
                    .map_err(map_err)?;
                    Ok(())
                }

                async fn find_console_session(&self, id_hash: &str) -> StoreResult<Option<ConsoleSessionRecord>> {
                    // From the writer: a refresh just stored by another
                    // request must be seen at once.
                    let row: Option<Row> = sqlx::query_as(
                        "SELECT id_hash, user_id, sealed_tokens, access_expires_at, created_at, last_seen_at, refreshing_since \
                         FROM console_sessions WHERE id_hash = $1",
                    )
                    .bind(id_hash)
                    .fetch_optional(&self.writer)
                    .await
                    .map_err(map_err)?;
                    Ok(row.map(|(id_hash, user_id, sealed_tokens, access_expires_at, created_at, last_seen_at, refreshing_since)| {
                        ConsoleSessionRecord { id_hash, user_id, sealed_tokens, access_expires_at, created_at, last_seen_at, refreshing_since }
                    }))
                }

                async fn list_console_sessions(&self, user_id: &str) -> StoreResult<Vec<ConsoleSessionRecord>> {
                    // No index on user_id: a user has a handful of rows, and
                    // the whole table is small (purged by housekeeping).
                    let rows: Vec<Row> = sqlx::query_as(
                        "SELECT id_hash, user_id, sealed_tokens, access_expires_at, created_at, last_seen_at, refreshing_since \
                         FROM console_sessions WHERE user_id = $1 ORDER BY created_at DESC, id_hash",
                    )
                    .bind(user_id)
                    .fetch_all(&self.writer)
                    .await
                    .map_err(map_err)?;
                    Ok(rows
                        .into_iter()
                        .map(|(id_hash, user_id, sealed_tokens, access_expires_at, created_at, last_seen_at, refreshing_since)| {
                            ConsoleSessionRecord { id_hash, user_id, sealed_tokens, access_expires_at, created_at, last_seen_at, refreshing_since }
                        })
                        .collect())
                }

                async fn touch_console_session(&self, id_hash: &str, now: i64) -> StoreResult<()> {
                    sqlx::query("UPDATE console_sessions SET last_seen_at = $2 WHERE id_hash = $1 AND last_seen_at < $2")
                        .bind(id_hash)
                        .bind(now)
                        .execute(&self.writer)
                        .await
                        .map_err(map_err)?;
                    Ok(())
                }

                async fn claim_console_refresh(&self, id_hash: &str, now: i64, stale_before: i64) -> StoreResult<bool> {
                    // One statement: of two concurrent claims, the second
                    // finds refreshing_since set and changes nothing.
                    let done = sqlx::query(
                        "UPDATE console_sessions SET refreshing_since = $2 \
                         WHERE id_hash = $1 AND (refreshing_since IS NULL OR refreshing_since < $3)",
                    )
                    .bind(id_hash)
                    .bind(now)
                    .bind(stale_before)
                    .execute(&self.writer)
                    .await
                    .map_err(map_err)?;
                    Ok(done.rows_affected() == 1)
                }

                async fn store_refreshed_tokens(&self, id_hash: &str, sealed_tokens: &str, access_expires_at: i64) -> StoreResult<()> {
                    sqlx::query(
                        "UPDATE console_sessions SET sealed_tokens = $2, access_expires_at = $3, refreshing_since = NULL WHERE id_hash = $1",
                    )
                    .bind(id_hash)
                    .bind(sealed_tokens)
                    .bind(access_expires_at)
                    .execute(&self.writer)
                    .await
                    .map_err(map_err)?;
                    Ok(())
                }

                async fn delete_console_session(&self, id_hash: &str) -> StoreResult<()> {
                    sqlx::query("DELETE FROM console_sessions WHERE id_hash = $1")
                        .bind(id_hash)
                        .execute(&self.writer)
                        .await
                        .map_err(map_err)?;
                    Ok(())
                }

                async fn purge_console_sessions(&self, idle_before: i64, created_before: i64, limit: u32) -> StoreResult<u64> {
                    let done = sqlx::query(
                        "DELETE FROM console_sessions WHERE id_hash IN (\
                         SELECT id_hash FROM console_sessions WHERE last_seen_at < $1 OR created_at < $2 LIMIT $3)",
                    )
                    .bind(idle_before)
                    .bind(created_before)
                    .bind(i64::from(limit))
                    .execute(&self.writer)
                    .await
                    .map_err(map_err)?;
                    Ok(done.rows_affected())
                }
            }
        }
    };
}

pub(crate) use impl_console;
