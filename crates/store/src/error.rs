//! sqlx errors mapped once to `StoreError`.

use latchkey_core::store::StoreError;

pub(crate) fn map_err(err: sqlx::Error) -> StoreError {
    match err {
        sqlx::Error::RowNotFound => StoreError::NotFound,
        sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::Io(_)
        | sqlx::Error::Tls(_) => StoreError::Unavailable(err.to_string()),
        sqlx::Error::Database(db) if db.is_unique_violation() || db.is_foreign_key_violation() => {
            StoreError::Conflict(db.message().to_owned())
        }
        // SQLITE_BUSY / SQLITE_LOCKED: the writer lock was not obtained
        // within busy_timeout. PostgreSQL 57P01..57P03: shutting down.
        sqlx::Error::Database(db)
            if matches!(
                db.code().as_deref(),
                Some("5" | "6" | "57P01" | "57P02" | "57P03")
            ) =>
        {
            StoreError::Unavailable(db.message().to_owned())
        }
        other => StoreError::Other(other.to_string()),
    }
}
