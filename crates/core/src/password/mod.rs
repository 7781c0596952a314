//! Password hashing: argon2id, run off the async runtime on a bounded pool.
//!
//! Hashes are the most expensive thing Latchkey does (≈25 ms of one core
//! each), so they are a budgeted resource: `workers` dedicated threads run
//! them (one per core, so they queue instead of thrashing), at most
//! `max_queue` wait, and past that the caller is told to come back later.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use argon2::{Algorithm, Argon2, Block, Params, PasswordHash, PasswordHasher as _};

use crate::legacy_hash::LegacyHash;

/// A password in transit. Never printed, never logged.
#[derive(Clone)]
pub struct Password(String);

impl Password {
    pub fn new(value: impl Into<String>) -> Self {
        Password(value.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(***)")
    }
}

/// argon2id cost parameters. Defaults are OWASP's (m = 19 MiB, t = 2, p = 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HashParams {
    pub memory_kib: u32,
    pub iterations: u32,
    pub parallelism: u32,
}

impl Default for HashParams {
    fn default() -> Self {
        HashParams {
            memory_kib: 19_456,
            iterations: 2,
            parallelism: 1,
        }
    }
}

impl HashParams {
    fn argon2(&self) -> Result<Argon2<'static>, HashError> {
        let params = Params::new(self.memory_kib, self.iterations, self.parallelism, None)
            .map_err(|e| HashError::Config(e.to_string()))?;
        Ok(Argon2::new(
            Algorithm::Argon2id,
            argon2::Version::V0x13,
            params,
        ))
    }

    pub fn validate(&self) -> Result<(), String> {
        self.argon2().map(|_| ()).map_err(|e| e.to_string())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HashError {
    #[error("invalid hashing parameters: {0}")]
    Config(String),
    /// The hash queue is full.
    #[error("password hashing queue is full")]
    Busy,
    #[error("password hashing failed: {0}")]
    Internal(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verification {
    Valid {
        /// The stored hash uses other parameters or another algorithm and
        /// should be replaced by a fresh argon2id hash.
        needs_rehash: bool,
    },
    Invalid,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolConfig {
    pub workers: usize,
    pub max_queue: usize,
}

impl Default for PoolConfig {
    fn default() -> Self {
        let cores = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(2);
        PoolConfig {
            workers: cores,
            max_queue: 64 * cores,
        }
    }
}

/// Largest argon2 memory cost Latchkey will verify (1 GiB): an imported
/// hash cannot make a worker allocate without bound.
pub const MAX_MEMORY_KIB: u32 = 1 << 20;

type Job = Box<dyn FnOnce(&mut Vec<Block>) + Send>;

/// The password hasher and its bounded pool of dedicated worker threads.
///
/// Each worker keeps its argon2 memory (19 MiB with the defaults) from one
/// verification to the next, so a verification allocates nothing and
/// touches no fresh pages: the hash costs what argon2 costs, no more.
pub struct PasswordHasher {
    params: HashParams,
    argon2: Argon2<'static>,
    jobs: std::sync::mpsc::SyncSender<Job>,
    /// Jobs accepted and not yet finished (queued or running).
    in_flight: Arc<AtomicUsize>,
    capacity: usize,
    /// Stands in for the hash of a user who does not exist, so that an
    /// unknown user costs the same as a wrong password.
    dummy_hash: String,
    verifications: AtomicU64,
    workers: usize,
    /// Told how long each job waited for a worker (the metrics histogram).
    wait_observer: Arc<std::sync::OnceLock<WaitObserver>>,
}

/// Receives the time each hash job spent queued before a worker took it.
pub type WaitObserver = Box<dyn Fn(std::time::Duration) + Send + Sync>;

impl fmt::Debug for PasswordHasher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PasswordHasher")
            .field("params", &self.params)
            .finish_non_exhaustive()
    }
}

impl PasswordHasher {
    pub fn new(params: HashParams, pool: PoolConfig) -> Result<Self, HashError> {
        let argon2 = params.argon2()?;
        let mut random = [0u8; 32];
        crate::secrets::fill_random(&mut random);
        let dummy_hash = argon2
            .hash_password(&random)
            .map_err(|e| HashError::Internal(e.to_string()))?
            .to_string();
        let workers = pool.workers.max(1);
        let capacity = workers + pool.max_queue;
        let (jobs, queue) = std::sync::mpsc::sync_channel::<Job>(capacity);
        let queue = Arc::new(std::sync::Mutex::new(queue));
        for i in 0..workers {
            let queue = queue.clone();
            std::thread::Builder::new()
                .name(format!("latchkey-hash-{i}"))
                .spawn(move || {
                    let mut memory: Vec<Block> = Vec::new();
                    loop {
                        // The lock is held only while taking one job.
                        let job = match queue.lock() {
                            Ok(queue) => queue.recv(),
                            Err(_) => return,
                        };
                        match job {
                            Ok(job) => job(&mut memory),
                            // Every sender is gone: the hasher was dropped.
                            Err(_) => return,
                        }
                    }
                })
                .map_err(|e| HashError::Internal(format!("cannot start a hash worker: {e}")))?;
        }
        Ok(PasswordHasher {
            params,
            argon2,
            jobs,
            in_flight: Arc::new(AtomicUsize::new(0)),
            capacity,
            dummy_hash,
            verifications: AtomicU64::new(0),
            workers,
            wait_observer: Arc::new(std::sync::OnceLock::new()),
        })
    }

    pub fn params(&self) -> HashParams {
        self.params
    }

    /// How many verifications ran (real or dummy): lets tests prove that
    /// an unknown user costs one hash, like a wrong password.
    pub fn verifications(&self) -> u64 {
        self.verifications.load(Ordering::Relaxed)
    }

    /// Jobs queued or running now.
    pub fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::Relaxed)
    }

    /// Worker threads (hashes that can run at once).
    pub fn workers(&self) -> usize {
        self.workers
    }

    /// Sets, once, what is told each job's queueing time; later calls are
    /// ignored (one server owns the hasher).
    pub fn observe_waits(&self, observer: WaitObserver) {
        let _ = self.wait_observer.set(observer);
    }

    /// Hashes `password` with the current parameters (PHC string).
    pub async fn hash(&self, password: &Password) -> Result<String, HashError> {
        let argon2 = self.argon2.clone();
        let password = password.clone();
        self.run(move |_| {
            argon2
                .hash_password(password.expose().as_bytes())
                .map(|h| h.to_string())
                .map_err(|e| HashError::Internal(e.to_string()))
        })
        .await?
    }

    /// Verifies `password` against `stored`; with `None` (no such user, or
    /// no password set) verifies against the dummy hash and answers
    /// `Invalid`, at the same cost.
    pub async fn verify(
        &self,
        password: &Password,
        stored: Option<&str>,
    ) -> Result<Verification, HashError> {
        let real = stored.is_some();
        let hash = stored.unwrap_or(&self.dummy_hash).to_owned();
        let current = self.params;
        let password = password.clone();
        self.verifications.fetch_add(1, Ordering::Relaxed);
        let outcome = self
            .run(move |memory| verify_phc(&password, &hash, current, memory))
            .await?;
        Ok(if real { outcome } else { Verification::Invalid })
    }

    /// Queues `work` for a worker, or fails at once with `Busy` when the
    /// workers are all busy and the queue is full.
    async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce(&mut Vec<Block>) -> T + Send + 'static,
    ) -> Result<T, HashError> {
        if self.in_flight.fetch_add(1, Ordering::AcqRel) >= self.capacity {
            self.in_flight.fetch_sub(1, Ordering::AcqRel);
            return Err(HashError::Busy);
        }
        let (done, result) = tokio::sync::oneshot::channel();
        let in_flight = self.in_flight.clone();
        let observer = self.wait_observer.clone();
        let queued_at = std::time::Instant::now();
        let job: Job = Box::new(move |memory| {
            if let Some(observe) = observer.get() {
                observe(queued_at.elapsed());
            }
            let out = work(memory);
            in_flight.fetch_sub(1, Ordering::AcqRel);
            // The caller may have gone away (client disconnected).
            let _ = done.send(out);
        });
        if self.jobs.try_send(job).is_err() {
            self.in_flight.fetch_sub(1, Ordering::AcqRel);
            return Err(HashError::Busy);
        }
        result
            .await
            .map_err(|_| HashError::Internal("hash worker stopped".into()))
    }
}

/// Verifies against a PHC string, computing into the worker's `memory`.
/// A malformed or foreign stored hash is a failed verification, never an
/// error the client could tell apart.
fn verify_phc(
    password: &Password,
    stored: &str,
    current: HashParams,
    memory: &mut Vec<Block>,
) -> Verification {
    let Some((argon2, params, algorithm, version, salt, expected)) = parse_phc(stored) else {
        // Not argon2: perhaps a hash imported from another system, which
        // is replaced by argon2id after this successful login.
        return match LegacyHash::parse(stored) {
            Some(legacy) if legacy.verify(password.expose().as_bytes()) => {
                Verification::Valid { needs_rehash: true }
            }
            _ => Verification::Invalid,
        };
    };
    let blocks = params.block_count();
    if memory.len() < blocks {
        memory.resize(blocks, Block::default());
    }
    let mut out = vec![0u8; expected.len()];
    if argon2
        .hash_password_into_with_memory(
            password.expose().as_bytes(),
            &salt,
            &mut out,
            &mut memory[..blocks],
        )
        .is_err()
    {
        return Verification::Invalid;
    }
    if !bool::from(subtle::ConstantTimeEq::ct_eq(
        out.as_slice(),
        expected.as_slice(),
    )) {
        return Verification::Invalid;
    }
    let needs_rehash = algorithm != Algorithm::Argon2id
        || version != argon2::Version::V0x13
        || params.m_cost() != current.memory_kib
        || params.t_cost() != current.iterations
        || params.p_cost() != current.parallelism;
    Verification::Valid { needs_rehash }
}

type ParsedPhc = (
    Argon2<'static>,
    Params,
    Algorithm,
    argon2::Version,
    Vec<u8>,
    Vec<u8>,
);

/// Splits an argon2 PHC string into what verification needs.
fn parse_phc(stored: &str) -> Option<ParsedPhc> {
    let parsed = PasswordHash::new(stored).ok()?;
    let algorithm = Algorithm::try_from(parsed.algorithm.as_str()).ok()?;
    let version = match parsed.version {
        Some(v) => argon2::Version::try_from(v).ok()?,
        None => argon2::Version::V0x10,
    };
    let params = Params::try_from(&parsed).ok()?;
    if params.m_cost() > MAX_MEMORY_KIB {
        return None;
    }
    let salt = parsed.salt?.to_vec();
    let expected = parsed.hash?.as_bytes().to_vec();
    let argon2 = Argon2::new(algorithm, version, params.clone());
    Some((argon2, params, algorithm, version, salt, expected))
}

/// True when `hash` is a PHC string this build can verify. Used by
/// `apply` to reject unknown `password_hash` formats up front.
pub fn is_supported_hash(hash: &str) -> bool {
    parse_phc(hash).is_some() || LegacyHash::parse(hash).is_some()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cheap() -> HashParams {
        HashParams {
            memory_kib: 64,
            iterations: 1,
            parallelism: 1,
        }
    }

    fn hasher(params: HashParams) -> PasswordHasher {
        PasswordHasher::new(
            params,
            PoolConfig {
                workers: 1,
                max_queue: 4,
            },
        )
        .unwrap()
    }

    #[tokio::test]
    async fn hash_then_verify() {
        let h = hasher(cheap());
        let pw = Password::new("correct horse");
        let hash = h.hash(&pw).await.unwrap();
        assert!(hash.starts_with("$argon2id$v=19$m=64,t=1,p=1$"));
        assert_eq!(
            h.verify(&pw, Some(&hash)).await.unwrap(),
            Verification::Valid {
                needs_rehash: false
            }
        );
        assert_eq!(
            h.verify(&Password::new("wrong"), Some(&hash))
                .await
                .unwrap(),
            Verification::Invalid
        );
    }

    #[tokio::test]
    async fn unknown_user_costs_one_verification_and_fails() {
        let h = hasher(cheap());
        let before = h.verifications();
        assert_eq!(
            h.verify(&Password::new("x"), None).await.unwrap(),
            Verification::Invalid
        );
        assert_eq!(h.verifications(), before + 1);
    }

    #[tokio::test]
    async fn outdated_parameters_ask_for_a_rehash() {
        let old = hasher(cheap());
        let pw = Password::new("pw");
        let hash = old.hash(&pw).await.unwrap();
        let new = hasher(HashParams {
            memory_kib: 128,
            ..cheap()
        });
        assert_eq!(
            new.verify(&pw, Some(&hash)).await.unwrap(),
            Verification::Valid { needs_rehash: true }
        );
    }

    #[tokio::test]
    async fn garbage_stored_hash_is_just_invalid() {
        let h = hasher(cheap());
        assert_eq!(
            h.verify(&Password::new("x"), Some("not a hash"))
                .await
                .unwrap(),
            Verification::Invalid
        );
        assert!(!is_supported_hash("$2b$10$abc"), "a truncated bcrypt hash");
        assert!(is_supported_hash(&bcrypt::hash("x", 4).unwrap()));
        assert!(is_supported_hash(
            &h.hash(&Password::new("x")).await.unwrap()
        ));
    }

    #[tokio::test]
    async fn a_full_queue_answers_busy_at_once() {
        // Slow enough that none finishes while the three are submitted.
        let slow = HashParams {
            memory_kib: 32 * 1024,
            iterations: 4,
            parallelism: 1,
        };
        let h = PasswordHasher::new(
            slow,
            PoolConfig {
                workers: 1,
                max_queue: 1,
            },
        )
        .unwrap();
        let pw = Password::new("x");
        let (a, b, c) = tokio::join!(
            h.verify(&pw, None),
            h.verify(&pw, None),
            h.verify(&pw, None)
        );
        assert_eq!(a, Ok(Verification::Invalid));
        assert_eq!(b, Ok(Verification::Invalid));
        assert_eq!(
            c,
            Err(HashError::Busy),
            "one running + one queued is the capacity"
        );
        assert_eq!(h.in_flight(), 0);
    }

    #[tokio::test]
    async fn hashes_of_other_argon2_variants_verify_and_ask_for_a_rehash() {
        let h = hasher(cheap());
        let pw = Password::new("pw");
        for algorithm in [Algorithm::Argon2i, Algorithm::Argon2d] {
            let other = Argon2::new(
                algorithm,
                argon2::Version::V0x13,
                Params::new(64, 1, 1, None).unwrap(),
            );
            let stored = other.hash_password(b"pw").unwrap().to_string();
            assert_eq!(
                h.verify(&pw, Some(&stored)).await.unwrap(),
                Verification::Valid { needs_rehash: true }
            );
            assert_eq!(
                h.verify(&Password::new("no"), Some(&stored)).await.unwrap(),
                Verification::Invalid
            );
        }
    }

    #[test]
    fn password_never_prints() {
        assert_eq!(format!("{:?}", Password::new("hunter2")), "Password(***)");
    }
}
