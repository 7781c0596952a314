//! Password hashing: argon2id, run off the async runtime on a bounded pool.
//!
//! Hashes are the most expensive thing Latchkey does (≈25 ms of one core
//! each), so they are a budgeted resource: at most `workers` run at once
//! (one per core, so they queue instead of thrashing), and at most
//! `max_queue` wait; past that the caller is told to come back later.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use argon2::{Algorithm, Argon2, Params, PasswordHash, PasswordHasher as _, PasswordVerifier};
use tokio::sync::Semaphore;

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

/// The password hasher and its bounded pool.
pub struct PasswordHasher {
    params: HashParams,
    argon2: Argon2<'static>,
    permits: Arc<Semaphore>,
    max_queue: usize,
    waiting: AtomicUsize,
    /// Stands in for the hash of a user who does not exist, so that an
    /// unknown user costs the same as a wrong password.
    dummy_hash: String,
    verifications: AtomicU64,
}

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
        Ok(PasswordHasher {
            params,
            argon2,
            permits: Arc::new(Semaphore::new(pool.workers.max(1))),
            max_queue: pool.max_queue,
            waiting: AtomicUsize::new(0),
            dummy_hash,
            verifications: AtomicU64::new(0),
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

    /// Hashes `password` with the current parameters (PHC string).
    pub async fn hash(&self, password: &Password) -> Result<String, HashError> {
        let argon2 = self.argon2.clone();
        let password = password.clone();
        self.run(move || {
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
            .run(move || verify_phc(&password, &hash, current))
            .await?;
        Ok(if real { outcome } else { Verification::Invalid })
    }

    /// Runs `work` on the blocking pool once a worker is free, or fails at
    /// once with `Busy` when too many are already waiting.
    async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, HashError> {
        if self.waiting.fetch_add(1, Ordering::AcqRel) >= self.max_queue {
            self.waiting.fetch_sub(1, Ordering::AcqRel);
            return Err(HashError::Busy);
        }
        let permit = self.permits.clone().acquire_owned().await;
        self.waiting.fetch_sub(1, Ordering::AcqRel);
        let permit = permit.map_err(|e| HashError::Internal(e.to_string()))?;
        tokio::task::spawn_blocking(move || {
            let out = work();
            drop(permit);
            out
        })
        .await
        .map_err(|e| HashError::Internal(e.to_string()))
    }
}

/// Verifies against a PHC string. A malformed or foreign stored hash is a
/// failed verification, never an error the client could tell apart.
fn verify_phc(password: &Password, stored: &str, current: HashParams) -> Verification {
    let Ok(parsed) = PasswordHash::new(stored) else {
        return Verification::Invalid;
    };
    let Ok(params) = Params::try_from(&parsed) else {
        return Verification::Invalid;
    };
    let Ok(algorithm) = Algorithm::try_from(parsed.algorithm.as_str()) else {
        return Verification::Invalid;
    };
    let verifier = Argon2::new(algorithm, argon2::Version::V0x13, params.clone());
    if verifier
        .verify_password(password.expose().as_bytes(), &parsed)
        .is_err()
    {
        return Verification::Invalid;
    }
    let needs_rehash = algorithm != Algorithm::Argon2id
        || parsed.version != Some(argon2::Version::V0x13.into())
        || params.m_cost() != current.memory_kib
        || params.t_cost() != current.iterations
        || params.p_cost() != current.parallelism;
    Verification::Valid { needs_rehash }
}

/// True when `hash` is a PHC string this build can verify. Used by
/// `apply` to reject unknown `password_hash` formats up front.
pub fn is_supported_hash(hash: &str) -> bool {
    PasswordHash::new(hash)
        .ok()
        .filter(|h| Algorithm::try_from(h.algorithm.as_str()).is_ok())
        .and_then(|h| Params::try_from(&h).ok())
        .is_some()
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
        assert!(!is_supported_hash("$2b$10$abc"));
        assert!(is_supported_hash(
            &h.hash(&Password::new("x")).await.unwrap()
        ));
    }

    #[tokio::test]
    async fn a_full_queue_answers_busy_at_once() {
        let h = Arc::new(
            PasswordHasher::new(
                cheap(),
                PoolConfig {
                    workers: 1,
                    max_queue: 0,
                },
            )
            .unwrap(),
        );
        assert_eq!(h.hash(&Password::new("x")).await, Err(HashError::Busy));
    }

    #[test]
    fn password_never_prints() {
        assert_eq!(format!("{:?}", Password::new("hunter2")), "Password(***)");
    }
}
