//! Keeping the write-ahead log bounded under sustained writes.
//!
//! A WAL only starts over from its beginning when a checkpoint has copied
//! every frame back into the database while no write came in between
//! and no reader still needs the log. A checkpoint run beside the writer
//! (as a PASSIVE one each second once did) loses that race whenever writes arrive
//! every few milliseconds, so under steady load the log grew without end
//! (gigabytes beside a database a fraction of that size; docs/benchmarks.md).
//!
//! So the writer itself checkpoints, between its transactions: when the
//! writer connection goes back to its pool (after every write
//! transaction and every refresh batch) and the log has grown past the
//! limit, it runs a RESTART checkpoint, which no write can race (the pool
//! has one connection) and which waits for the readers still on the old
//! log, so the next write starts the log over; `journal_size_limit`
//! then cuts the file back to the limit. The cost is one `stat` per
//! release and, once per `limit` bytes written, one checkpoint that other
//! writers wait for (measured in docs/benchmarks.md).

use std::path::PathBuf;
use std::sync::Arc;

use sqlx::SqliteConnection;

/// The WAL file of a database and the size that triggers a restart.
#[derive(Debug, Clone)]
pub(super) struct WalBound {
    wal: PathBuf,
    limit_bytes: u64,
}

impl WalBound {
    /// `None` for an in-memory database (no WAL file to bound).
    pub(super) fn new(database: Option<&std::path::Path>, limit_bytes: u64) -> Option<Arc<Self>> {
        let database = database?;
        let mut wal = database.as_os_str().to_owned();
        wal.push("-wal");
        Some(Arc::new(WalBound {
            wal: PathBuf::from(wal),
            limit_bytes,
        }))
    }

    fn over_limit(&self) -> bool {
        std::fs::metadata(&self.wal).is_ok_and(|m| m.len() > self.limit_bytes)
    }

    /// Run on the writer connection between transactions. Never fails the
    /// connection: a checkpoint that could not finish is tried again at the
    /// next release.
    pub(super) async fn after_write(&self, conn: &mut SqliteConnection) {
        if !self.over_limit() {
            return;
        }
        // (busy, frames in the log, frames checkpointed); busy = 1 when a
        // reader held the old log past the busy timeout.
        let outcome: Result<(i64, i64, i64), _> = sqlx::query_as("PRAGMA wal_checkpoint(RESTART)")
            .fetch_one(&mut *conn)
            .await;
        match outcome {
            Ok((0, _, _)) => {}
            Ok((_, log, done)) => tracing::warn!(
                log_frames = log,
                checkpointed = done,
                "WAL restart checkpoint blocked by a reader; retried after the next write"
            ),
            Err(e) => tracing::warn!(error = %e, "WAL restart checkpoint failed"),
        }
    }
}
