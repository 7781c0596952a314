//! Keeping the write-ahead log bounded under sustained writes.
//!
//! A WAL only starts over from its beginning when a checkpoint has copied
//! every frame back into the database while no write came in between
//! and no reader still needs the log. A checkpoint run beside the writer
//! (as a background task once did, each second) loses that race whenever
//! writes arrive every few milliseconds, so under steady load the log grew
//! without end (gigabytes beside a database a fraction of that size;
//! docs/benchmarks.md).
//!
//! So the log is checkpointed in two steps. Beside the writer, a
//! background task copies frames back five times a second (a PASSIVE
//! checkpoint on a reader connection: the writer goes on writing). When
//! the log passes the limit, the writer itself, between two of its
//! transactions (when its connection goes back to the pool, after every
//! write transaction and refresh batch), checkpoints what is left, which
//! no write can race (the pool has one connection), so the next write
//! starts the log over; one checkpoint runs at a time, so it waits for a
//! background one to end. `journal_size_limit` keeps the file at the limit
//! once started over (it is overwritten from its start, and grows past
//! the limit only when the log does). The cost is one `stat` per release
//! and, once per `limit` bytes written, one checkpoint of what the
//! background step has not copied yet, which other writers wait for
//! (measured in docs/benchmarks.md).

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use sqlx::{SqliteConnection, SqlitePool};

/// The WAL file of a database and the size that triggers a restart.
#[derive(Debug)]
pub(super) struct WalBound {
    wal: PathBuf,
    limit_bytes: u64,
    /// The "far over the limit" warning was given and not yet resolved.
    warned: AtomicBool,
    /// Held by whichever step is checkpointing: SQLite lets one
    /// checkpoint run at a time and fails the other at once, so the
    /// writer waits here for the background step to end instead.
    checkpointing: tokio::sync::Mutex<()>,
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
            warned: AtomicBool::new(false),
            checkpointing: tokio::sync::Mutex::new(()),
        }))
    }

    fn size(&self) -> Option<u64> {
        std::fs::metadata(&self.wal).map(|m| m.len()).ok()
    }

    /// The background step: five times a second, a PASSIVE checkpoint on
    /// a reader connection copies what it can while the writer writes
    /// (nearly free when there is nothing new). Ends when the pool closes.
    pub(super) async fn copy_beside_the_writer(self: Arc<Self>, readers: SqlitePool) {
        let mut tick = tokio::time::interval(std::time::Duration::from_millis(200));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            if readers.is_closed() {
                return;
            }
            let _only = self.checkpointing.lock().await;
            let started = std::time::Instant::now();
            let outcome: Result<(i64, i64, i64), _> =
                sqlx::query_as("PRAGMA wal_checkpoint(PASSIVE)")
                    .fetch_one(&readers)
                    .await;
            if readers.is_closed() {
                return;
            }
            tracing::trace!(?outcome, took = ?started.elapsed(), "WAL checkpoint beside the writer");
        }
    }

    /// Run on the writer connection between transactions. Never fails the
    /// connection: a checkpoint that could not finish is tried again at the
    /// next release.
    pub(super) async fn after_write(&self, conn: &mut SqliteConnection) {
        let Some(size) = self.size() else {
            return;
        };
        if size <= self.limit_bytes {
            return;
        }
        // No write can run meanwhile (this is the one writer), so a PASSIVE
        // checkpoint copies every frame no reader still needs, without
        // waiting for anyone; the next write then starts the log over
        // (unless a reader that began before is still on it). Only far
        // past the limit does the writer wait for such readers (RESTART,
        // with the busy timeout).
        let far_over = size > self.limit_bytes.saturating_mul(2);
        let sql = if far_over {
            "PRAGMA wal_checkpoint(RESTART)"
        } else {
            "PRAGMA wal_checkpoint(PASSIVE)"
        };
        // (busy, frames in the log, frames checkpointed); busy = 1 when a
        // RESTART was blocked by readers past the busy timeout.
        let started = std::time::Instant::now();
        let _only = self.checkpointing.lock().await;
        let outcome: Result<(i64, i64, i64), _> = sqlx::query_as(sql).fetch_one(&mut *conn).await;
        tracing::debug!(?outcome, took = ?started.elapsed(), far_over, "WAL checkpoint by the writer");
        match outcome {
            Ok((0, log, done)) if log == done => {
                self.warned.store(false, Ordering::Relaxed);
                return;
            }
            // A reader still on frames not copied: tried again after the
            // next write.
            Ok(_) => {}
            Err(e) => tracing::debug!(error = %e, "WAL checkpoint failed"),
        }
        // Said once, and only when the log keeps growing meanwhile.
        if size > self.limit_bytes.saturating_mul(4) && !self.warned.swap(true, Ordering::Relaxed) {
            tracing::warn!(
                limit_bytes = self.limit_bytes,
                "the WAL is 4 times its limit: long reads keep it from starting over"
            );
        }
    }
}
