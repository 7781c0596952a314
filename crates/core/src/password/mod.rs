//! Password hashing: argon2id, run off the async runtime on a bounded pool.
//!
//! Hashes are the most expensive thing Latchkey does (≈25 ms of one core
//! each), so they are a budgeted resource: `workers` dedicated threads run
//! them (one per core, so they queue instead of thrashing, at a lower CPU
//! priority than request handling), at most `max_queue` wait, and past
//! that the caller is told to come back later (pool.rs). A caller can take
//! its place in the queue before doing what a refusal for lack of room
//! must not do (`reserve`).

mod costs;
mod memory;
mod pool;

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use argon2::{Algorithm, Argon2, Params, PasswordHash};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD_NO_PAD;

use memory::Memory;

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
    /// Argon2 memory kept between hashes is given back after this long
    /// without one.
    pub idle_release: Duration,
    /// How much lower than request handling the workers' CPU priority is
    /// (a nice value, 0 … 19; 0: the same).
    pub nice: i32,
}

impl Default for PoolConfig {
    fn default() -> Self {
        let cores = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(2);
        PoolConfig {
            workers: cores,
            max_queue: 64 * cores,
            idle_release: Duration::from_secs(30),
            nice: 10,
        }
    }
}

/// Largest argon2 memory cost Latchkey will verify (1 GiB): an imported
/// hash cannot make a worker allocate without bound.
pub const MAX_MEMORY_KIB: u32 = 1 << 20;

/// The password hasher and its bounded pool of dedicated worker threads.
///
/// Argon2 memory (19 MiB per worker with the defaults) is kept from one
/// verification to the next while they keep coming, so a verification
/// allocates nothing and touches no fresh pages: the hash costs what
/// argon2 costs, no more.
pub struct PasswordHasher {
    params: HashParams,
    argon2: Argon2<'static>,
    pool: pool::Pool,
    /// Stands in for the hash of a user who does not exist, so that an
    /// unknown user costs the same as a wrong password.
    dummy_hash: String,
    verifications: AtomicU64,
    workers: usize,
    /// How long checks take, by class of stored hash (costs.rs).
    costs: costs::CheckCosts,
    /// Refusals made to wait for the refusal target (tests read it).
    padded_refusals: AtomicU64,
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
        let started = Instant::now();
        let dummy_hash = hash_phc(&argon2, &params, &random, &mut Memory::default())?;
        // The first estimate of a check's cost: hashing costs what
        // verifying does.
        let costs = costs::CheckCosts::default();
        costs.record(hash_class(&dummy_hash), started.elapsed());
        let workers = pool.workers.max(1);
        let pool = pool::Pool::start(workers, pool.max_queue, pool.idle_release, pool.nice)
            .map_err(|e| HashError::Internal(format!("cannot start a hash worker: {e}")))?;
        Ok(PasswordHasher {
            params,
            argon2,
            pool,
            dummy_hash,
            verifications: AtomicU64::new(0),
            workers,
            costs,
            padded_refusals: AtomicU64::new(0),
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

    /// Jobs queued or running now, and places reserved for jobs about to
    /// be queued.
    pub fn in_flight(&self) -> usize {
        self.pool.in_flight.load(Ordering::Relaxed)
    }

    /// Worker threads (hashes that can run at once).
    pub fn workers(&self) -> usize {
        self.workers
    }

    /// Bytes of argon2 memory kept now for the next hashes (given back
    /// after `PoolConfig::idle_release` without one).
    pub fn held_memory(&self) -> usize {
        self.pool.held_bytes()
    }

    /// Sets, once, what is told each job's queueing time; later calls are
    /// ignored (one server owns the hasher).
    pub fn observe_waits(&self, observer: WaitObserver) {
        let _ = self.wait_observer.set(observer);
    }

    /// Reports how long a password check against `stored` (`None`: the
    /// dummy hash) took, from its start to the end of its hash.
    pub fn record_check(&self, stored: Option<&str>, took: Duration) {
        self.costs
            .record(hash_class(stored.unwrap_or(&self.dummy_hash)), took);
    }

    /// How long, from its start, a refused check should take: as long as
    /// a check against the slowest kind of stored hash seen (costs.rs).
    pub fn refusal_target(&self) -> Duration {
        self.costs.refusal_target()
    }

    /// Waits until the refusal target has passed since `started`: every
    /// refusal ends when the slowest would have.
    pub async fn pad_refusal(&self, started: Instant) {
        self.padded_refusals.fetch_add(1, Ordering::Relaxed);
        if let Some(left) = self.refusal_target().checked_sub(started.elapsed()) {
            tokio::time::sleep(left).await;
        }
    }

    /// Refusals that waited for the refusal target.
    pub fn padded_refusals(&self) -> u64 {
        self.padded_refusals.load(Ordering::Relaxed)
    }

    /// Takes a place in the hash queue now, for a hash run later in the
    /// returned slot; `Busy` at once when the queue is full. Dropping the
    /// slot gives the place back.
    pub fn reserve(&self) -> Result<HashSlot<'_>, HashError> {
        let in_flight = &self.pool.in_flight;
        if in_flight.fetch_add(1, Ordering::AcqRel) >= self.pool.capacity {
            in_flight.fetch_sub(1, Ordering::AcqRel);
            return Err(HashError::Busy);
        }
        Ok(HashSlot {
            hasher: self,
            reserved: true,
        })
    }

    /// Hashes `password` with the current parameters (PHC string).
    pub async fn hash(&self, password: &Password) -> Result<String, HashError> {
        let (argon2, params) = (self.argon2.clone(), self.params);
        let password = password.clone();
        self.reserve()?
            .run(move |memory| hash_phc(&argon2, &params, password.expose().as_bytes(), memory))
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
        self.reserve()?.verify(password, stored).await
    }
}

/// A place in the hash queue (`PasswordHasher::reserve`).
pub struct HashSlot<'a> {
    hasher: &'a PasswordHasher,
    /// Still this slot's to give back (not yet handed to a job).
    reserved: bool,
}

impl Drop for HashSlot<'_> {
    fn drop(&mut self) {
        if self.reserved {
            self.hasher.pool.in_flight.fetch_sub(1, Ordering::AcqRel);
        }
    }
}

impl HashSlot<'_> {
    /// `PasswordHasher::verify`, in this slot.
    pub async fn verify(
        self,
        password: &Password,
        stored: Option<&str>,
    ) -> Result<Verification, HashError> {
        let hasher = self.hasher;
        let real = stored.is_some();
        let hash = stored.unwrap_or(&hasher.dummy_hash).to_owned();
        let current = hasher.params;
        let password = password.clone();
        hasher.verifications.fetch_add(1, Ordering::Relaxed);
        let outcome = self
            .run(move |memory| verify_phc(&password, &hash, current, memory))
            .await?;
        Ok(if real { outcome } else { Verification::Invalid })
    }

    /// Queues `work` for a worker in this slot.
    async fn run<T: Send + 'static>(
        mut self,
        work: impl FnOnce(&mut Memory) -> T + Send + 'static,
    ) -> Result<T, HashError> {
        let hasher = self.hasher;
        let (done, result) = tokio::sync::oneshot::channel();
        let in_flight = hasher.pool.in_flight.clone();
        let observer = hasher.wait_observer.clone();
        let queued_at = Instant::now();
        let job: pool::Job = Box::new(move |memory| {
            if let Some(observe) = observer.get() {
                observe(queued_at.elapsed());
            }
            let out = work(memory);
            in_flight.fetch_sub(1, Ordering::AcqRel);
            // The caller may have gone away (client disconnected).
            let _ = done.send(out);
        });
        match hasher.pool.submit(job) {
            // From now on the job gives the place back when it ends.
            Ok(()) => self.reserved = false,
            // Dropping the slot gives it back.
            Err(_) => return Err(HashError::Busy),
        }
        result
            .await
            .map_err(|_| HashError::Internal("hash worker stopped".into()))
    }
}

/// A new argon2id PHC string for `secret` (random salt), computed in
/// `memory` rather than in memory of the global allocator's (memory.rs).
fn hash_phc(
    argon2: &Argon2<'_>,
    params: &HashParams,
    secret: &[u8],
    memory: &mut Memory,
) -> Result<String, HashError> {
    let mut salt = [0u8; 16];
    crate::secrets::fill_random(&mut salt);
    let mut out = [0u8; 32];
    let blocks = argon2.params().block_count();
    argon2
        .hash_password_into_with_memory(secret, &salt, &mut out, memory.blocks(blocks))
        .map_err(|e| HashError::Internal(e.to_string()))?;
    Ok(format!(
        "$argon2id$v=19$m={},t={},p={}${}${}",
        params.memory_kib,
        params.iterations,
        params.parallelism,
        STANDARD_NO_PAD.encode(salt),
        STANDARD_NO_PAD.encode(out)
    ))
}

/// What a check's cost depends on: the algorithm and its work factors
/// (not the salt or the digest).
fn hash_class(stored: &str) -> String {
    if let Some((_, params, algorithm, version, _, _)) = parse_phc(stored) {
        return format!(
            "{}:v{}:m{}:t{}:p{}",
            algorithm.as_str(),
            u32::from(version),
            params.m_cost(),
            params.t_cost(),
            params.p_cost()
        );
    }
    match LegacyHash::parse(stored) {
        Some(legacy) => legacy.cost_class(),
        None => "unusable".to_owned(),
    }
}

/// Verifies against a PHC string, computing into the worker's `memory`.
/// A malformed or foreign stored hash is a failed verification, never an
/// error the client could tell apart.
fn verify_phc(
    password: &Password,
    stored: &str,
    current: HashParams,
    memory: &mut Memory,
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
    let mut out = vec![0u8; expected.len()];
    if argon2
        .hash_password_into_with_memory(
            password.expose().as_bytes(),
            &salt,
            &mut out,
            memory.blocks(params.block_count()),
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
/// A Keycloak argon2 credential as the PHC string it is (`None`: not one).
pub use crate::legacy_hash::keycloak_argon2_to_phc;

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
                ..PoolConfig::default()
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
                ..PoolConfig::default()
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
            let stored = argon2::PasswordHasher::hash_password(&other, b"pw")
                .unwrap()
                .to_string();
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

    #[tokio::test]
    async fn argon2_memory_is_kept_while_busy_and_given_back_when_idle() {
        let h = PasswordHasher::new(
            cheap(),
            PoolConfig {
                workers: 1,
                max_queue: 4,
                idle_release: Duration::from_millis(300),
                nice: 0,
            },
        )
        .unwrap();
        // The worker gives its buffer back just after the answer.
        async fn until(what: &str, check: impl Fn() -> bool) {
            let started = Instant::now();
            while !check() {
                assert!(started.elapsed() < Duration::from_secs(10), "{what}");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
        let pw = Password::new("pw");
        let hash = h.hash(&pw).await.unwrap();
        until("kept for the next hash", || h.held_memory() == 64 * 1024).await;
        h.verify(&pw, Some(&hash)).await.unwrap();
        until("reused, not grown", || h.held_memory() == 64 * 1024).await;
        until("given back when idle", || h.held_memory() == 0).await;
        h.verify(&pw, Some(&hash)).await.unwrap();
        until("taken again by the next hash", || {
            h.held_memory() == 64 * 1024
        })
        .await;
    }

    #[test]
    fn password_never_prints() {
        assert_eq!(format!("{:?}", Password::new("hunter2")), "Password(***)");
    }
}
