//! Where console sessions live: in the database, so that any node can
//! serve any console request (nodes keep no state of their own).

use async_trait::async_trait;

use crate::store::StoreResult;

/// One signed-in console browser. The cookie's value itself is never
/// stored: `id_hash` is its SHA-256, so a stolen database (or backup)
/// holds no usable session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsoleSessionRecord {
    /// Hex SHA-256 of the cookie value.
    pub id_hash: String,
    pub user_id: String,
    /// The access and refresh tokens, AES-256-GCM sealed under a subkey
    /// of the master key and bound to `id_hash` (base64).
    pub sealed_tokens: String,
    /// When the sealed access token expires (Unix seconds).
    pub access_expires_at: i64,
    pub created_at: i64,
    /// The last request seen, for the idle timeout.
    pub last_seen_at: i64,
    /// Set while one request refreshes the tokens, so concurrent requests
    /// do not present the same refresh token twice (which the token
    /// endpoint would take for a stolen token and end the whole session).
    pub refreshing_since: Option<i64>,
}

#[async_trait]
pub trait ConsoleSessionRepo: Send + Sync {
    async fn create_console_session(&self, session: &ConsoleSessionRecord) -> StoreResult<()>;
    async fn find_console_session(
        &self,
        id_hash: &str,
    ) -> StoreResult<Option<ConsoleSessionRecord>>;
    /// Records activity (the idle timeout counts from it).
    async fn touch_console_session(&self, id_hash: &str, now: i64) -> StoreResult<()>;
    /// Claims the right to refresh: true for exactly one caller until the
    /// claim is released by `store_refreshed_tokens` or is older than
    /// `stale_before` (a node that died mid-refresh).
    async fn claim_console_refresh(
        &self,
        id_hash: &str,
        now: i64,
        stale_before: i64,
    ) -> StoreResult<bool>;
    /// Stores the tokens of a refresh and releases the claim.
    async fn store_refreshed_tokens(
        &self,
        id_hash: &str,
        sealed_tokens: &str,
        access_expires_at: i64,
    ) -> StoreResult<()>;
    /// The console sessions of one user, newest first. Rows past their
    /// timeouts stay until their next request or housekeeping.
    async fn list_console_sessions(&self, user_id: &str) -> StoreResult<Vec<ConsoleSessionRecord>>;
    async fn delete_console_session(&self, id_hash: &str) -> StoreResult<()>;
    /// Deletes up to `limit` sessions idle since before `idle_before` or
    /// created before `created_before`; returns how many went.
    async fn purge_console_sessions(
        &self,
        idle_before: i64,
        created_before: i64,
        limit: u32,
    ) -> StoreResult<u64>;
}
