//! The hash workers: dedicated threads, a bounded queue, and argon2
//! memory kept between hashes while they keep coming.
//!
//! - Memory: a hash borrows a buffer from a shared stash and gives it back,
//!   so a busy worker allocates nothing and touches no fresh pages (the
//!   hash costs what argon2 costs). When no hash has come for
//!   `idle_release`, the stash is emptied and the memory (19 MiB per
//!   worker with the defaults, mapped directly: memory.rs) goes back to
//!   the system.
//! - Priority: workers run at a lower CPU priority (`nice`) than the
//!   threads serving requests, so a password flood that saturates them
//!   still leaves the cores to refreshes and other requests the moment
//!   those need them; alone, the workers get the whole machine.

use std::sync::atomic::AtomicUsize;
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, sync_channel};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::memory::Memory;

pub(super) type Job = Box<dyn FnOnce(&mut Memory) + Send>;

/// Argon2 buffers not in use right now.
#[derive(Default)]
struct Stash(Mutex<Vec<Memory>>);

impl Stash {
    fn take(&self) -> Memory {
        self.0
            .lock()
            .map(|mut s| s.pop().unwrap_or_default())
            .unwrap_or_default()
    }

    fn give_back(&self, memory: Memory) {
        if let Ok(mut stash) = self.0.lock() {
            stash.push(memory);
        }
    }

    fn release(&self) {
        let freed = self.0.lock().map(|mut s| std::mem::take(&mut *s));
        // Dropped outside the lock.
        drop(freed);
    }

    fn held_bytes(&self) -> usize {
        self.0
            .lock()
            .map(|s| s.iter().map(Memory::bytes).sum())
            .unwrap_or(0)
    }
}

pub(super) struct Pool {
    jobs: SyncSender<Job>,
    stash: Arc<Stash>,
    /// Jobs accepted and not yet finished (queued or running), and hash
    /// slots reserved for a job about to be queued.
    pub(super) in_flight: Arc<AtomicUsize>,
    pub(super) capacity: usize,
}

impl Pool {
    pub(super) fn start(
        workers: usize,
        max_queue: usize,
        idle_release: Duration,
        nice: i32,
    ) -> std::io::Result<Pool> {
        let capacity = workers + max_queue;
        let (jobs, queue) = sync_channel::<Job>(capacity);
        let queue = Arc::new(Mutex::new(queue));
        let stash = Arc::new(Stash::default());
        for i in 0..workers {
            let (queue, stash) = (queue.clone(), stash.clone());
            std::thread::Builder::new()
                .name(format!("latchkey-hash-{i}"))
                .spawn(move || work(&queue, &stash, idle_release, nice))?;
        }
        Ok(Pool {
            jobs,
            stash,
            in_flight: Arc::new(AtomicUsize::new(0)),
            capacity,
        })
    }

    /// Queues a job whose slot was reserved; gives the job back if the
    /// queue is closed or (it cannot be, the slots being counted) full.
    pub(super) fn submit(&self, job: Job) -> Result<(), Job> {
        self.jobs.try_send(job).map_err(|e| match e {
            std::sync::mpsc::TrySendError::Full(job)
            | std::sync::mpsc::TrySendError::Disconnected(job) => job,
        })
    }

    /// Bytes of argon2 memory kept for the next hashes.
    pub(super) fn held_bytes(&self) -> usize {
        self.stash.held_bytes()
    }
}

fn work(queue: &Mutex<Receiver<Job>>, stash: &Stash, idle_release: Duration, nice: i32) {
    lower_priority(nice);
    loop {
        // One worker waits for the next job (holding the lock), the others
        // wait for the lock; the waiting one sees the pool go idle.
        let job = match queue.lock() {
            Ok(queue) => queue.recv_timeout(idle_release),
            Err(_) => return,
        };
        match job {
            Ok(job) => {
                let mut memory = stash.take();
                job(&mut memory);
                stash.give_back(memory);
            }
            Err(RecvTimeoutError::Timeout) => stash.release(),
            // Every sender is gone: the hasher was dropped.
            Err(RecvTimeoutError::Disconnected) => return,
        }
    }
}

/// Lowers this thread's CPU priority (Linux keeps a nice value per
/// thread). Failure only leaves the default priority.
fn lower_priority(nice: i32) {
    #[cfg(target_os = "linux")]
    if nice > 0 {
        // SAFETY: plain system calls on the calling thread, no memory passed.
        let rc = unsafe {
            let tid = libc::syscall(libc::SYS_gettid) as libc::id_t;
            libc::setpriority(libc::PRIO_PROCESS, tid, nice)
        };
        if rc != 0 {
            tracing::warn!(
                nice,
                error = %std::io::Error::last_os_error(),
                "cannot lower the hash workers' CPU priority"
            );
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = nice;
}
