//! Audit events on their way to the database, off the request's path.
//!
//! A request never waits for its audit write: `record` puts the event in a
//! bounded queue and returns, and one writer task stores the events in
//! order. When the database cannot be reached the writer keeps the event
//! and retries (100 ms, doubling to 5 s) until it can, so an outage costs
//! the events nothing but time; only a queue that fills up during a long
//! outage, or a process killed before the writer caught up, loses events,
//! and both are counted in the log (docs/operations.md). Reads flush the
//! queue first, so a node reads its own events.
//!
//! Repeated refused sign-ins of one (subject, address, client, reason)
//! are folded: the first is an event; the next ones within the window
//! only count (`occurrences`, `last_at`), written once a second, so an
//! attack adds rows per (username, address) and window, not per attempt.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::{mpsc, oneshot};

use super::{AuditEvent, AuditQuery, AuditRepo};
use crate::clock::Clock;
use crate::scim::query::Page;
use crate::store::{StoreError, StoreResult};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AuditQueueConfig {
    /// Events that may wait for the writer; past that, new events are
    /// dropped (and counted).
    pub capacity: usize,
    /// Refused sign-ins of one (username, IP) within this many seconds
    /// of the first are counted on its event; 0: no folding.
    pub fold_window_secs: i64,
    /// Distinct (username, IP, …) folds remembered at once.
    pub max_folds: usize,
}

impl Default for AuditQueueConfig {
    fn default() -> Self {
        AuditQueueConfig {
            capacity: 10_000,
            fold_window_secs: 300,
            max_folds: 10_000,
        }
    }
}

enum Command {
    Event(Box<AuditEvent>),
    /// Acknowledged once every event before it is written and the folded
    /// counts are stored.
    Flush(oneshot::Sender<()>),
    /// `Flush`, then the writer ends.
    Close(oneshot::Sender<()>),
}

/// A folded event: its id, and the occurrences not yet stored.
struct Fold {
    id: String,
    window_end: i64,
    /// The writer has stored the event (its counts may now be added).
    written: bool,
    pending: u32,
    last_at: i64,
}

/// The folds of windows still open, by fold key, and those of ended
/// windows whose counts are not stored yet.
#[derive(Default)]
struct Folds {
    open: HashMap<String, Fold>,
    ended: Vec<Fold>,
}

impl Folds {
    /// The fold of event `id`, open or ended.
    fn by_id(&mut self, key: &str, id: &str) -> Option<&mut Fold> {
        match self.open.get_mut(key) {
            Some(fold) if fold.id == id => Some(fold),
            _ => self.ended.iter_mut().find(|f| f.id == id),
        }
    }

    fn remove_id(&mut self, key: &str, id: &str) {
        if self.open.get(key).is_some_and(|f| f.id == id) {
            self.open.remove(key);
        }
        self.ended.retain(|f| f.id != id);
    }

    /// Moves the folds whose window ended at `now` out of `open`; drops
    /// those with nothing left to store.
    fn end_windows(&mut self, now: i64) {
        let ended: Vec<String> = self
            .open
            .iter()
            .filter(|(_, f)| f.window_end <= now)
            .map(|(k, _)| k.clone())
            .collect();
        for key in ended {
            if let Some(fold) = self.open.remove(&key) {
                self.ended.push(fold);
            }
        }
        self.ended.retain(|f| f.pending > 0 || !f.written);
    }
}

struct Shared {
    inner: Arc<dyn AuditRepo>,
    folds: Mutex<Folds>,
    clock: Arc<dyn Clock>,
    dropped: AtomicU64,
}

/// An `AuditRepo` in front of the store's: see the module comment.
pub struct AuditQueue {
    shared: Arc<Shared>,
    queue: mpsc::Sender<Command>,
    config: AuditQueueConfig,
    closed: AtomicBool,
}

/// How long a read waits for the queue to reach the database before it
/// reads anyway (the database is probably down, and the read says so).
const FLUSH_WAIT: Duration = Duration::from_secs(2);

impl AuditQueue {
    /// Starts the writer task (on the current tokio runtime).
    pub fn start(
        inner: Arc<dyn AuditRepo>,
        config: AuditQueueConfig,
        clock: Arc<dyn Clock>,
    ) -> Arc<AuditQueue> {
        let (queue, commands) = mpsc::channel(config.capacity.max(1));
        let shared = Arc::new(Shared {
            inner,
            folds: Mutex::new(Folds::default()),
            clock,
            dropped: AtomicU64::new(0),
        });
        tokio::spawn(run(shared.clone(), commands));
        Arc::new(AuditQueue {
            shared,
            queue,
            config,
            closed: AtomicBool::new(false),
        })
    }

    /// Events accepted and not yet written.
    pub fn backlog(&self) -> usize {
        self.queue.max_capacity() - self.queue.capacity()
    }

    /// Events dropped because the queue was full.
    pub fn dropped(&self) -> u64 {
        self.shared.dropped.load(Ordering::Relaxed)
    }

    /// Writes what is queued, then stops the writer; waits at most
    /// `within` (the database may be down) and says what was left.
    pub async fn close(&self, within: Duration) {
        self.closed.store(true, Ordering::Release);
        let (ack, done) = oneshot::channel();
        let sent = self.queue.send(Command::Close(ack));
        let finished =
            tokio::time::timeout(within, async { sent.await.is_ok() && done.await.is_ok() }).await;
        if finished != Ok(true) {
            tracing::error!(
                unwritten = self.backlog(),
                "audit events not written at shutdown: the database did not take them in time"
            );
        }
    }

    /// True when the event was counted on an earlier one instead.
    fn fold(&self, event: &AuditEvent) -> bool {
        if self.config.fold_window_secs <= 0 {
            return false;
        }
        let Some(key) = event.fold_key() else {
            return false;
        };
        let mut folds = self.shared.folds.lock().expect("fold table");
        if let Some(fold) = folds.open.get_mut(&key)
            && event.at < fold.window_end
        {
            fold.pending = fold.pending.saturating_add(1);
            fold.last_at = fold.last_at.max(event.at);
            return true;
        }
        folds.end_windows(event.at);
        if folds.open.len() >= self.config.max_folds {
            return false;
        }
        folds.open.insert(
            key,
            Fold {
                id: event.id.clone(),
                window_end: event.at + self.config.fold_window_secs,
                written: false,
                pending: 0,
                last_at: event.at,
            },
        );
        false
    }

    fn unfold(&self, event: &AuditEvent) {
        if let Some(key) = event.fold_key() {
            let mut folds = self.shared.folds.lock().expect("fold table");
            folds.remove_id(&key, &event.id);
        }
    }

    async fn flush(&self) {
        let (ack, done) = oneshot::channel();
        if self.queue.try_send(Command::Flush(ack)).is_ok() {
            let _ = tokio::time::timeout(FLUSH_WAIT, done).await;
        }
    }
}

#[async_trait]
impl AuditRepo for AuditQueue {
    /// Never waits for the database.
    async fn record(&self, event: &AuditEvent) -> StoreResult<()> {
        if self.closed.load(Ordering::Acquire) {
            return self.shared.inner.record(event).await;
        }
        if self.fold(event) {
            return Ok(());
        }
        if self
            .queue
            .try_send(Command::Event(Box::new(event.clone())))
            .is_err()
        {
            self.unfold(event);
            let dropped = self.shared.dropped.fetch_add(1, Ordering::Relaxed) + 1;
            // Once per thousand, not once per event, while the queue is full.
            if dropped % 1000 == 1 {
                tracing::error!(
                    dropped,
                    event = %event.event_type,
                    "audit queue full (the database has been unreachable for long): events dropped"
                );
            }
        }
        Ok(())
    }

    async fn query(&self, query: &AuditQuery) -> StoreResult<Page<AuditEvent>> {
        self.flush().await;
        self.shared.inner.query(query).await
    }

    async fn purge_audit(&self, before: i64, limit: u32) -> StoreResult<u64> {
        self.shared.inner.purge_audit(before, limit).await
    }

    async fn add_occurrences(&self, id: &str, more: u32, last_at: i64) -> StoreResult<()> {
        self.shared.inner.add_occurrences(id, more, last_at).await
    }
}

/// Runs `write` until it succeeds or fails for good; `false` when the
/// failure is not the database's absence (retrying would not help).
async fn with_retries<F, Fut>(what: &str, mut write: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = StoreResult<()>>,
{
    let mut delay = Duration::from_millis(100);
    let mut warned = false;
    loop {
        match write().await {
            Ok(()) => {
                if warned {
                    tracing::info!(what, "audit writes resumed");
                }
                return true;
            }
            // Written by an earlier try whose answer was lost.
            Err(StoreError::Conflict(_)) => return true,
            Err(StoreError::Unavailable(e)) => {
                if !warned {
                    tracing::warn!(what, error = %e, "audit write waits for the database; retrying");
                    warned = true;
                }
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(5));
            }
            Err(e) => {
                tracing::error!(what, error = %e, "audit event not recorded");
                return false;
            }
        }
    }
}

async fn run(shared: Arc<Shared>, mut commands: mpsc::Receiver<Command>) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let command = tokio::select! {
            command = commands.recv() => command,
            _ = tick.tick() => {
                store_counts(&shared, true).await;
                continue;
            }
        };
        match command {
            Some(Command::Event(event)) => {
                let inner = shared.inner.clone();
                let stored = with_retries(&event.event_type, || inner.record(&event)).await;
                if let Some(key) = event.fold_key() {
                    let mut folds = shared.folds.lock().expect("fold table");
                    if stored {
                        if let Some(fold) = folds.by_id(&key, &event.id) {
                            fold.written = true;
                        }
                    } else {
                        // Not stored: its counts have nowhere to go.
                        folds.remove_id(&key, &event.id);
                    }
                }
            }
            Some(Command::Flush(ack)) => {
                store_counts(&shared, false).await;
                let _ = ack.send(());
            }
            Some(Command::Close(ack)) => {
                store_counts(&shared, false).await;
                let _ = ack.send(());
                return;
            }
            None => {
                store_counts(&shared, false).await;
                return;
            }
        }
    }
}

/// Stores the counts folded onto written events; with `forget`, also
/// drops the folds whose window has ended.
async fn store_counts(shared: &Shared, forget: bool) {
    let now = shared.clock.now();
    let due: Vec<(String, u32, i64)> = {
        let mut folds = shared.folds.lock().expect("fold table");
        let Folds { open, ended } = &mut *folds;
        let due = open
            .values_mut()
            .chain(ended.iter_mut())
            .filter(|f| f.written && f.pending > 0)
            .map(|f| {
                let more = std::mem::take(&mut f.pending);
                (f.id.clone(), more, f.last_at)
            })
            .collect();
        if forget {
            folds.end_windows(now);
        }
        due
    };
    for (id, more, last_at) in due {
        let inner = shared.inner.clone();
        with_retries("audit.occurrences", || {
            inner.add_occurrences(&id, more, last_at)
        })
        .await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::SystemClock;

    /// A store that is down until told otherwise, and remembers writes.
    #[derive(Default)]
    struct Flaky {
        down: AtomicBool,
        written: Mutex<Vec<AuditEvent>>,
    }

    #[async_trait]
    impl AuditRepo for Flaky {
        async fn record(&self, event: &AuditEvent) -> StoreResult<()> {
            if self.down.load(Ordering::SeqCst) {
                // Like a pool that waits out its acquire timeout.
                tokio::time::sleep(Duration::from_millis(50)).await;
                return Err(StoreError::Unavailable("down".into()));
            }
            self.written.lock().unwrap().push(event.clone());
            Ok(())
        }
        async fn query(&self, _: &AuditQuery) -> StoreResult<Page<AuditEvent>> {
            let items = self.written.lock().unwrap().clone();
            Ok(Page {
                total: items.len() as u64,
                items,
                more: false,
            })
        }
        async fn purge_audit(&self, _: i64, _: u32) -> StoreResult<u64> {
            Ok(0)
        }
        async fn add_occurrences(&self, _: &str, _: u32, _: i64) -> StoreResult<()> {
            Ok(())
        }
    }

    #[tokio::test]
    async fn events_recorded_while_the_store_is_down_are_written_when_it_returns() {
        let store = Arc::new(Flaky::default());
        store.down.store(true, Ordering::SeqCst);
        let queue = AuditQueue::start(
            store.clone(),
            AuditQueueConfig::default(),
            Arc::new(SystemClock),
        );
        for i in 0..5 {
            // Returns without waiting for the store (which would take 50 ms
            // and fail): a request never waits for its audit write.
            let recorded = tokio::time::timeout(
                Duration::from_millis(20),
                queue.record(&AuditEvent::new("user.updated", true, i)),
            )
            .await;
            assert!(matches!(recorded, Ok(Ok(()))));
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(store.written.lock().unwrap().is_empty());
        assert!(queue.backlog() > 0);
        store.down.store(false, Ordering::SeqCst);
        queue.close(Duration::from_secs(20)).await;
        let written: Vec<i64> = store.written.lock().unwrap().iter().map(|e| e.at).collect();
        assert_eq!(written, [0, 1, 2, 3, 4], "all of them, in order");
        assert_eq!(queue.dropped(), 0);
    }

    #[tokio::test]
    async fn a_full_queue_drops_and_counts_instead_of_waiting() {
        let store = Arc::new(Flaky::default());
        store.down.store(true, Ordering::SeqCst);
        let queue = AuditQueue::start(
            store.clone(),
            AuditQueueConfig {
                capacity: 3,
                ..AuditQueueConfig::default()
            },
            Arc::new(SystemClock),
        );
        for i in 0..10 {
            queue
                .record(&AuditEvent::new("user.updated", true, i))
                .await
                .unwrap();
        }
        assert!(queue.dropped() >= 6, "{}", queue.dropped());
    }
}
