//! Signing keys: generation, encryption at rest, the in-memory key ring
//! that signs every token, and the JWKS that publishes it.
//!
//! Keys are parsed once when loaded and kept: parsing a PKCS#8 key costs
//! more than an ES256 or EdDSA signature, so doing it per token would
//! dominate the refresh grant.

use std::sync::{Arc, RwLock};

use serde_json::{Value, json};

use crate::clock::{Clock, SystemClock};
use crate::model::{KeyState, SigningKeyRecord};
use crate::secrets::MasterKey;
use crate::store::{KeyRepo, Staging, StoreError};

mod signing_key;

pub use signing_key::{KeyAlgorithm, KeyError, SigningKey};

/// The keys in use: one active key that signs, plus every published key
/// (to verify what any of them signed).
struct Ring {
    active: Arc<SigningKey>,
    /// When the active key began to sign (its age is a metric).
    active_created_at: i64,
    jwks: Value,
    /// The JWS `alg` of every published key, the active key's first.
    algorithms: Vec<&'static str>,
    kids: Vec<String>,
    verifiers:
        std::collections::HashMap<String, (jsonwebtoken::DecodingKey, jsonwebtoken::Algorithm)>,
}

/// Why a token did not verify (for the log; clients see one answer).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    #[error("not a JWT")]
    Malformed,
    #[error("unknown signing key")]
    UnknownKey,
    #[error("wrong token type")]
    WrongType,
    #[error("invalid: {0}")]
    Invalid(String),
}

/// How signing keys roll over. A verifier that caches the JWKS (jose's
/// `createRemoteJWKSet`, oauth4webapi, most resource servers) rejects a
/// token whose `kid` it has not seen until its copy expires; so a new key
/// is published this long before it signs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyRollover {
    /// Seconds a new key is in the JWKS before it signs. At least
    /// `jwks_max_age` plus the nodes' key reload interval (checked where
    /// the configuration is read).
    pub publish_ahead: i64,
    /// The JWKS's `Cache-Control: max-age` (seconds).
    pub jwks_max_age: u64,
}

impl Default for KeyRollover {
    fn default() -> Self {
        KeyRollover {
            publish_ahead: 300,
            jwks_max_age: 60,
        }
    }
}

/// How a rotation asked for by an administrator takes effect.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyRotation {
    /// Published now, signing after `publish_ahead` (`rotate`).
    Staged,
    /// Signing at once: the emergency path (`rotate_now`).
    Immediate,
}

/// A key published by `rotate`, signing from `activates_at`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StagedKey {
    pub kid: String,
    pub activates_at: i64,
}

/// Loads, creates and serves signing keys. Cheap to share.
pub struct KeyRing {
    repo: Arc<dyn KeyRepo>,
    master: MasterKey,
    ring: RwLock<Option<Arc<Ring>>>,
    rollover: KeyRollover,
    /// When a staged key is due (`reload`).
    clock: Arc<dyn Clock>,
}

impl KeyRing {
    pub fn new(repo: Arc<dyn KeyRepo>, master: MasterKey) -> Self {
        KeyRing {
            repo,
            master,
            ring: RwLock::new(None),
            rollover: KeyRollover::default(),
            clock: Arc::new(SystemClock),
        }
    }

    pub fn with_rollover(mut self, rollover: KeyRollover) -> Self {
        self.rollover = rollover;
        self
    }

    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    pub fn rollover(&self) -> KeyRollover {
        self.rollover
    }

    /// Loads the stored keys; when there is no active key, generates one
    /// with `alg`, stores it encrypted and activates it.
    pub async fn ensure_active(&self, alg: KeyAlgorithm, now: i64) -> Result<(), KeyError> {
        let published = self.repo.list_published().await?;
        if !published.iter().any(|k| k.state == KeyState::Active) {
            // Nodes starting together on an empty database race to create
            // the first key: activate only while there is still none (the
            // check and the insert are one locked transaction), so every
            // node ends up signing with the one key all of them know.
            let (record, kid) = self.new_record(alg, now, None)?;
            if self.repo.activate_if_due(&record, i64::MIN).await? {
                tracing::info!(kid = %kid, alg = %alg, "signing key created");
            } else {
                tracing::info!("another node created the first signing key");
            }
        }
        self.reload().await
    }

    /// Generates a new key and publishes it as the next key: it signs from
    /// `now + publish_ahead`, when every verifier's cached JWKS holds it
    /// (`reload` makes it active then, on whichever node gets there
    /// first). Refused while another key is waiting.
    pub async fn rotate(&self, alg: KeyAlgorithm, now: i64) -> Result<StagedKey, KeyError> {
        // No key signs yet (a database only the CLI has used): nothing to
        // roll over from, and no verifier has cached anything.
        if !self
            .repo
            .list_published()
            .await?
            .iter()
            .any(|k| k.state == KeyState::Active)
        {
            let (record, kid) = self.new_record(alg, now, None)?;
            if self.repo.activate_if_due(&record, i64::MIN).await? {
                tracing::info!(kid = %kid, alg = %alg, "signing key created");
                self.reload_at(now).await?;
                return Ok(StagedKey {
                    kid,
                    activates_at: now,
                });
            }
        }
        let activates_at = now + self.rollover.publish_ahead;
        let (record, kid) = self.new_record(alg, now, Some(activates_at))?;
        match self.repo.stage(&record, None).await? {
            Staging::Staged => {
                tracing::info!(kid = %kid, alg = %alg, activates_at, "signing key published; it signs once verifiers have it");
                self.reload_at(now).await?;
                Ok(StagedKey { kid, activates_at })
            }
            Staging::AlreadyStaged(kid) => Err(self.already_staged(kid).await),
            Staging::NotDue => Err(KeyError::Store(StoreError::Other(
                "staging refused an unconditional rotation".into(),
            ))),
        }
    }

    async fn already_staged(&self, kid: String) -> KeyError {
        let activates_at = match self.repo.list_published().await {
            Ok(keys) => keys
                .iter()
                .find(|k| k.kid == kid)
                .map(SigningKeyRecord::signs_from)
                .unwrap_or_default(),
            Err(e) => return KeyError::Store(e),
        };
        KeyError::AlreadyStaged { kid, activates_at }
    }

    /// The emergency path: a new key that signs at once (verifiers that
    /// cached the JWKS refuse its tokens until they fetch it again). The
    /// previous key keeps being published; a waiting next key is dropped.
    pub async fn rotate_now(&self, alg: KeyAlgorithm, now: i64) -> Result<String, KeyError> {
        let (record, kid) = self.new_record(alg, now, None)?;
        self.repo.activate(&record).await?;
        tracing::warn!(kid = %kid, alg = %alg, "signing key created and active at once (emergency rotation)");
        self.reload_at(now).await?;
        Ok(kid)
    }

    /// Scheduled rotation: publishes the next key `publish_ahead` before
    /// the active key has signed for `max_age`, so the new one signs from
    /// exactly then — unless a key is already waiting or another node
    /// just did it. Returns the staged key.
    pub async fn rotate_if_due(
        &self,
        alg: KeyAlgorithm,
        max_age: i64,
        now: i64,
    ) -> Result<Option<StagedKey>, KeyError> {
        let lead = self.rollover.publish_ahead.min(max_age);
        let due_before = now - (max_age - lead);
        let published = self.repo.list_published().await?;
        if published.iter().any(|k| k.state == KeyState::Next) {
            return Ok(None);
        }
        let due = published
            .iter()
            .any(|k| k.state == KeyState::Active && k.signs_from() <= due_before);
        if !due {
            return Ok(None);
        }
        let activates_at = now + lead;
        let (record, kid) = self.new_record(alg, now, Some(activates_at))?;
        if self.repo.stage(&record, Some(due_before)).await? != Staging::Staged {
            return Ok(None);
        }
        tracing::info!(kid = %kid, alg = %alg, activates_at, "signing key published on schedule");
        self.reload_at(now).await?;
        Ok(Some(StagedKey { kid, activates_at }))
    }

    /// A new key record: active at once, or next from `activates_at`.
    fn new_record(
        &self,
        alg: KeyAlgorithm,
        now: i64,
        activates_at: Option<i64>,
    ) -> Result<(SigningKeyRecord, String), KeyError> {
        let (key, pkcs8) = SigningKey::generate(alg)?;
        let kid = key.kid().to_owned();
        let record = SigningKeyRecord {
            kid: kid.clone(),
            alg: alg.as_str().to_owned(),
            encrypted_private_key: self.master.encrypt(&pkcs8, key.kid()),
            public_jwk: key.public_jwk().to_string(),
            state: if activates_at.is_some() {
                KeyState::Next
            } else {
                KeyState::Active
            },
            created_at: now,
            activates_at,
            retiring_at: None,
            retired_at: None,
        };
        Ok((record, kid))
    }

    /// Re-reads the published keys (picks up a rotation made elsewhere),
    /// first making a next key whose time has come the active one.
    /// Keys already loaded are not decrypted again.
    pub async fn reload(&self) -> Result<(), KeyError> {
        self.reload_at(self.clock.now()).await
    }

    /// `reload` as if the time were `now`. Every node runs it every few
    /// seconds; the promotion is one locked conditional write, so exactly
    /// one node makes it and the others find it made.
    pub async fn reload_at(&self, now: i64) -> Result<(), KeyError> {
        let mut records = self.repo.list_published().await?;
        let due = records
            .iter()
            .find(|r| r.state == KeyState::Next && r.signs_from() <= now)
            .map(|r| r.kid.clone());
        if let Some(kid) = due {
            if self.repo.promote(&kid, now).await? {
                tracing::info!(kid = %kid, "next signing key is now active");
            }
            records = self.repo.list_published().await?;
        }
        let kids: Vec<String> = records.iter().map(|r| r.kid.clone()).collect();
        let current = self.ring.read().expect("key ring lock").clone();
        let active_record = records
            .iter()
            .find(|r| r.state == KeyState::Active)
            .ok_or(KeyError::NoActiveKey)?;
        if let Some(ring) = &current
            && ring.kids == kids
            && ring.active.kid() == active_record.kid
        {
            return Ok(());
        }
        let active = match &current {
            Some(ring) if ring.active.kid() == active_record.kid => ring.active.clone(),
            _ => Arc::new(self.decrypt(active_record)?),
        };
        let mut keys = Vec::with_capacity(records.len());
        let mut algorithms = vec![active.alg().jws_name()];
        let mut verifiers = std::collections::HashMap::new();
        for record in &records {
            let corrupt = |reason: String| KeyError::Corrupt {
                kid: record.kid.clone(),
                reason,
            };
            let jwk: Value =
                serde_json::from_str(&record.public_jwk).map_err(|e| corrupt(e.to_string()))?;
            let parsed: jsonwebtoken::jwk::Jwk =
                serde_json::from_value(jwk.clone()).map_err(|e| corrupt(e.to_string()))?;
            let decoding =
                jsonwebtoken::DecodingKey::from_jwk(&parsed).map_err(|e| corrupt(e.to_string()))?;
            let key_alg = record.alg.parse::<KeyAlgorithm>().map_err(corrupt)?;
            if !algorithms.contains(&key_alg.jws_name()) {
                algorithms.push(key_alg.jws_name());
            }
            let alg = match key_alg {
                KeyAlgorithm::Rs256 | KeyAlgorithm::Rs256Bits3072 => jsonwebtoken::Algorithm::RS256,
                KeyAlgorithm::Es256 => jsonwebtoken::Algorithm::ES256,
                KeyAlgorithm::EdDsa => jsonwebtoken::Algorithm::EdDSA,
            };
            verifiers.insert(record.kid.clone(), (decoding, alg));
            keys.push(jwk);
        }
        let ring = Ring {
            active,
            active_created_at: active_record.signs_from(),
            jwks: json!({ "keys": keys }),
            algorithms,
            kids,
            verifiers,
        };
        *self.ring.write().expect("key ring lock") = Some(Arc::new(ring));
        Ok(())
    }

    fn decrypt(&self, record: &SigningKeyRecord) -> Result<SigningKey, KeyError> {
        let corrupt = |reason: String| KeyError::Corrupt {
            kid: record.kid.clone(),
            reason,
        };
        let alg: KeyAlgorithm = record.alg.parse().map_err(corrupt)?;
        let der = self
            .master
            .decrypt(&record.encrypted_private_key, &record.kid)
            .map_err(|e| corrupt(e.to_string()))?;
        SigningKey::from_pkcs8(Some(&record.kid), alg, &der).map_err(corrupt)
    }

    fn current(&self) -> Result<Arc<Ring>, KeyError> {
        self.ring
            .read()
            .expect("key ring lock")
            .clone()
            .ok_or(KeyError::NoActiveKey)
    }

    /// The key that signs new tokens.
    pub fn active(&self) -> Result<Arc<SigningKey>, KeyError> {
        Ok(self.current()?.active.clone())
    }

    /// When the active signing key began to sign (Unix seconds): its
    /// creation, or its promotion from next.
    pub fn active_created_at(&self) -> Result<i64, KeyError> {
        Ok(self.current()?.active_created_at)
    }

    /// Verifies a JWT signed by one of our published keys: signature (the
    /// algorithm pinned to the key's), `typ`, `iss` and expiry. Returns the
    /// claims.
    pub fn verify(
        &self,
        token: &str,
        typ: &str,
        issuer: &str,
        now: i64,
    ) -> Result<Value, VerifyError> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| VerifyError::Malformed)?;
        if !header
            .typ
            .as_deref()
            .is_some_and(|t| t.eq_ignore_ascii_case(typ))
        {
            return Err(VerifyError::WrongType);
        }
        let ring = self.current().map_err(|_| VerifyError::UnknownKey)?;
        let (key, alg) = header
            .kid
            .as_deref()
            .and_then(|kid| ring.verifiers.get(kid))
            .ok_or(VerifyError::UnknownKey)?;
        if header.alg != *alg {
            return Err(VerifyError::Invalid(
                "algorithm does not match the key".into(),
            ));
        }
        let mut validation = jsonwebtoken::Validation::new(*alg);
        validation.set_issuer(&[issuer]);
        validation.validate_aud = false;
        // Expiry is checked below against our clock, without leeway: an
        // expired token is inactive, whatever the clocks of others say.
        validation.validate_exp = false;
        validation.set_required_spec_claims(&["exp", "iss", "sub"]);
        let data = jsonwebtoken::decode::<Value>(token, key, &validation)
            .map_err(|e| VerifyError::Invalid(e.to_string()))?;
        let exp = data
            .claims
            .get("exp")
            .and_then(Value::as_i64)
            .ok_or_else(|| VerifyError::Invalid("no exp".into()))?;
        if exp <= now {
            return Err(VerifyError::Invalid("expired".into()));
        }
        Ok(data.claims)
    }

    /// The JWS `alg` of every published key, the active key's first:
    /// everything a verifier may meet in a token still valid.
    pub fn published_algorithms(&self) -> Result<Vec<&'static str>, KeyError> {
        Ok(self.current()?.algorithms.clone())
    }

    /// The JWK Set of every published key.
    pub fn jwks(&self) -> Result<Value, KeyError> {
        Ok(self.current()?.jwks.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::FixedClock;
    use crate::store::StoreResult;
    use std::sync::Mutex;

    /// The key repository's contract, in memory (the store's conformance
    /// suite holds both engines to the same).
    #[derive(Default)]
    struct MemoryKeys {
        keys: Mutex<Vec<SigningKeyRecord>>,
        promotions: std::sync::atomic::AtomicUsize,
    }

    impl MemoryKeys {
        fn retire_active(keys: &mut [SigningKeyRecord], at: i64) {
            for k in keys.iter_mut().filter(|k| k.state == KeyState::Active) {
                k.state = KeyState::Retiring;
                k.retiring_at = Some(at);
            }
        }
        fn state_of(&self, kid: &str) -> KeyState {
            let keys = self.keys.lock().unwrap();
            keys.iter().find(|k| k.kid == kid).unwrap().state
        }
    }

    #[async_trait::async_trait]
    impl KeyRepo for MemoryKeys {
        async fn list_published(&self) -> StoreResult<Vec<SigningKeyRecord>> {
            let mut keys: Vec<_> = self
                .keys
                .lock()
                .unwrap()
                .iter()
                .filter(|k| k.state != KeyState::Retired)
                .cloned()
                .collect();
            keys.sort_by_key(|k| -k.created_at);
            Ok(keys)
        }
        async fn list_all(&self) -> StoreResult<Vec<SigningKeyRecord>> {
            Ok(self.keys.lock().unwrap().clone())
        }
        async fn activate(&self, key: &SigningKeyRecord) -> StoreResult<()> {
            let mut keys = self.keys.lock().unwrap();
            Self::retire_active(&mut keys, key.created_at);
            for k in keys.iter_mut().filter(|k| k.state == KeyState::Next) {
                k.state = KeyState::Retired;
                k.retired_at = Some(key.created_at);
            }
            keys.push(SigningKeyRecord {
                state: KeyState::Active,
                ..key.clone()
            });
            Ok(())
        }
        async fn activate_if_due(&self, key: &SigningKeyRecord, due: i64) -> StoreResult<bool> {
            let recent = self
                .keys
                .lock()
                .unwrap()
                .iter()
                .any(|k| k.state == KeyState::Active && k.signs_from() > due);
            if recent {
                return Ok(false);
            }
            self.activate(key).await.map(|_| true)
        }
        async fn stage(&self, key: &SigningKeyRecord, due: Option<i64>) -> StoreResult<Staging> {
            let mut keys = self.keys.lock().unwrap();
            if let Some(next) = keys.iter().find(|k| k.state == KeyState::Next) {
                return Ok(Staging::AlreadyStaged(next.kid.clone()));
            }
            if let Some(due) = due
                && keys
                    .iter()
                    .any(|k| k.state == KeyState::Active && k.signs_from() > due)
            {
                return Ok(Staging::NotDue);
            }
            keys.push(SigningKeyRecord {
                state: KeyState::Next,
                ..key.clone()
            });
            Ok(Staging::Staged)
        }
        async fn promote(&self, kid: &str, now: i64) -> StoreResult<bool> {
            let mut keys = self.keys.lock().unwrap();
            if !keys
                .iter()
                .any(|k| k.kid == kid && k.state == KeyState::Next)
            {
                return Ok(false);
            }
            Self::retire_active(&mut keys, now);
            let next = keys.iter_mut().find(|k| k.kid == kid).unwrap();
            next.state = KeyState::Active;
            next.activates_at = Some(now);
            self.promotions
                .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            Ok(true)
        }
        async fn retire_keys(&self, _: i64, _: i64) -> StoreResult<u64> {
            Ok(0)
        }
    }

    const START: i64 = 1_000_000;

    /// A ring on `repo` whose clock the test moves; publish 300 s ahead.
    fn ring(repo: &Arc<MemoryKeys>, clock: &Arc<FixedClock>) -> KeyRing {
        // Every node of a deployment shares the master key.
        static MASTER: std::sync::OnceLock<MasterKey> = std::sync::OnceLock::new();
        KeyRing::new(
            repo.clone(),
            MASTER.get_or_init(MasterKey::generate).clone(),
        )
        .with_clock(clock.clone())
        .with_rollover(KeyRollover {
            publish_ahead: 300,
            jwks_max_age: 60,
        })
    }

    fn kids(ring: &KeyRing) -> Vec<String> {
        ring.jwks().unwrap()["keys"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| k["kid"].as_str().unwrap().to_owned())
            .collect()
    }

    fn block_on<F: std::future::Future>(f: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(f)
    }

    #[test]
    fn a_rotated_key_is_published_first_and_signs_once_due() {
        block_on(async {
            let (repo, clock) = (
                Arc::new(MemoryKeys::default()),
                Arc::new(FixedClock::new(START)),
            );
            let ring = ring(&repo, &clock);
            ring.ensure_active(KeyAlgorithm::Es256, START)
                .await
                .unwrap();
            let first = ring.active().unwrap().kid().to_owned();

            clock.advance(10);
            let staged = ring.rotate(KeyAlgorithm::EdDsa, clock.now()).await.unwrap();
            assert_eq!(staged.activates_at, START + 10 + 300);
            assert_eq!(repo.state_of(&staged.kid), KeyState::Next);
            // Published at once, not signing: the old key still signs.
            assert!(kids(&ring).contains(&staged.kid));
            assert_eq!(ring.active().unwrap().kid(), first);
            assert_eq!(ring.published_algorithms().unwrap(), ["ES256", "EdDSA"]);

            // A second rotation while one waits is refused, naming it.
            match ring.rotate(KeyAlgorithm::Es256, clock.now()).await {
                Err(KeyError::AlreadyStaged { kid, activates_at }) => {
                    assert_eq!(
                        (kid, activates_at),
                        (staged.kid.clone(), staged.activates_at)
                    );
                }
                other => panic!("{other:?}"),
            }

            // One second early: nothing moves.
            clock.advance(299);
            ring.reload().await.unwrap();
            assert_eq!(ring.active().unwrap().kid(), first);
            assert_eq!(repo.promotions.load(std::sync::atomic::Ordering::SeqCst), 0);

            // Due: it signs, the old key retires and still verifies.
            clock.advance(1);
            ring.reload().await.unwrap();
            assert_eq!(ring.active().unwrap().kid(), staged.kid);
            assert_eq!(ring.active_created_at().unwrap(), staged.activates_at);
            assert_eq!(repo.state_of(&first), KeyState::Retiring);
            assert!(kids(&ring).contains(&first));
            // Reloading again promotes nothing more.
            ring.reload().await.unwrap();
            assert_eq!(repo.promotions.load(std::sync::atomic::Ordering::SeqCst), 1);
        });
    }

    #[test]
    fn of_several_nodes_one_promotes_and_all_sign_with_the_new_key() {
        block_on(async {
            let (repo, clock) = (
                Arc::new(MemoryKeys::default()),
                Arc::new(FixedClock::new(START)),
            );
            let nodes: Vec<KeyRing> = (0..3).map(|_| ring(&repo, &clock)).collect();
            for node in &nodes {
                node.ensure_active(KeyAlgorithm::Es256, START)
                    .await
                    .unwrap();
            }
            let first = nodes[0].active().unwrap().kid().to_owned();
            assert!(nodes.iter().all(|n| n.active().unwrap().kid() == first));
            let staged = nodes[1].rotate(KeyAlgorithm::Es256, START).await.unwrap();
            // The others publish it at their next reload, still signing
            // with the old key.
            for node in &nodes {
                node.reload().await.unwrap();
                assert!(kids(node).contains(&staged.kid));
                assert_eq!(node.active().unwrap().kid(), first);
            }
            clock.advance(300);
            for node in &nodes {
                node.reload().await.unwrap();
                assert_eq!(node.active().unwrap().kid(), staged.kid);
            }
            assert_eq!(repo.promotions.load(std::sync::atomic::Ordering::SeqCst), 1);
        });
    }

    #[test]
    fn the_emergency_rotation_signs_at_once_and_drops_a_waiting_key() {
        block_on(async {
            let (repo, clock) = (
                Arc::new(MemoryKeys::default()),
                Arc::new(FixedClock::new(START)),
            );
            let ring = ring(&repo, &clock);
            ring.ensure_active(KeyAlgorithm::Es256, START)
                .await
                .unwrap();
            let staged = ring.rotate(KeyAlgorithm::Es256, START).await.unwrap();
            clock.advance(5);
            let now_kid = ring
                .rotate_now(KeyAlgorithm::Es256, clock.now())
                .await
                .unwrap();
            assert_eq!(ring.active().unwrap().kid(), now_kid);
            assert_eq!(repo.state_of(&staged.kid), KeyState::Retired);
            assert!(!kids(&ring).contains(&staged.kid));
            // Its time passing changes nothing.
            clock.advance(600);
            ring.reload().await.unwrap();
            assert_eq!(ring.active().unwrap().kid(), now_kid);
        });
    }

    #[test]
    fn scheduled_rotation_publishes_ahead_so_the_new_key_signs_on_time() {
        block_on(async {
            let (repo, clock) = (
                Arc::new(MemoryKeys::default()),
                Arc::new(FixedClock::new(START)),
            );
            let ring = ring(&repo, &clock);
            ring.ensure_active(KeyAlgorithm::Es256, START)
                .await
                .unwrap();
            let every = 86_400;
            // Not yet: the key has signed for less than a day minus the lead.
            let early = START + every - 300 - 1;
            assert_eq!(
                ring.rotate_if_due(KeyAlgorithm::Es256, every, early)
                    .await
                    .unwrap(),
                None
            );
            let staged = ring
                .rotate_if_due(KeyAlgorithm::Es256, every, early + 1)
                .await
                .unwrap()
                .expect("due");
            assert_eq!(
                staged.activates_at,
                START + every,
                "signs exactly a day after the first"
            );
            // Waiting: no second one.
            assert_eq!(
                ring.rotate_if_due(KeyAlgorithm::Es256, every, early + 2)
                    .await
                    .unwrap(),
                None
            );
            ring.reload_at(START + every).await.unwrap();
            assert_eq!(ring.active().unwrap().kid(), staged.kid);
            // The next period counts from its promotion.
            assert_eq!(
                ring.rotate_if_due(KeyAlgorithm::Es256, every, START + 2 * every - 301)
                    .await
                    .unwrap(),
                None
            );
            assert!(
                ring.rotate_if_due(KeyAlgorithm::Es256, every, START + 2 * every - 300)
                    .await
                    .unwrap()
                    .is_some()
            );
        });
    }

    #[test]
    fn every_algorithm_generates_signs_and_reloads() {
        for alg in [
            KeyAlgorithm::Rs256,
            KeyAlgorithm::Rs256Bits3072,
            KeyAlgorithm::Es256,
            KeyAlgorithm::EdDsa,
        ] {
            let (key, der) = SigningKey::generate(alg).unwrap();
            let again = SigningKey::from_pkcs8(Some(key.kid()), alg, &der).unwrap();
            assert_eq!(key.public_jwk(), again.public_jwk());
            if alg == KeyAlgorithm::Rs256Bits3072 {
                // 3072 bits: a 384-byte modulus, 512 characters of base64url.
                assert_eq!(key.public_jwk()["n"].as_str().unwrap().len(), 512);
            }
            let jwt = key.sign_jwt("at+jwt", &json!({"sub": "x"})).unwrap();
            assert_eq!(jwt.split('.').count(), 3);
            assert_eq!(key.public_jwk()["alg"], alg.jws_name());
            assert_eq!(key.public_jwk()["kid"], key.kid());
        }
    }

    #[test]
    fn signed_tokens_verify_and_tampering_is_caught() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        rt.block_on(async {
            for alg in [
                KeyAlgorithm::Rs256,
                KeyAlgorithm::Es256,
                KeyAlgorithm::EdDsa,
            ] {
                let ring = KeyRing::new(Arc::new(MemoryKeys::default()), MasterKey::generate());
                ring.ensure_active(alg, 0).await.unwrap();
                let key = ring.active().unwrap();
                let token = key
                    .sign_jwt(
                        "at+jwt",
                        &json!({"iss": "https://i", "sub": "u", "exp": 100}),
                    )
                    .unwrap();
                assert_eq!(
                    ring.verify(&token, "at+jwt", "https://i", 99).unwrap()["sub"],
                    "u"
                );
                assert_eq!(
                    ring.verify(&token, "JWT", "https://i", 99),
                    Err(VerifyError::WrongType)
                );
                assert!(matches!(
                    ring.verify(&token, "at+jwt", "https://other", 99),
                    Err(VerifyError::Invalid(_))
                ));
                assert!(matches!(
                    ring.verify(&token, "at+jwt", "https://i", 100),
                    Err(VerifyError::Invalid(_))
                ));
                let mut tampered = token.clone();
                tampered.replace_range(token.len() - 6..token.len() - 2, "AAAA");
                assert!(ring.verify(&tampered, "at+jwt", "https://i", 99).is_err());
                assert_eq!(
                    ring.verify("garbage", "at+jwt", "https://i", 99),
                    Err(VerifyError::Malformed)
                );
            }
        });
    }

    #[test]
    fn algorithm_names_parse() {
        assert_eq!("es256".parse::<KeyAlgorithm>(), Ok(KeyAlgorithm::Es256));
        assert_eq!("EdDSA".parse::<KeyAlgorithm>(), Ok(KeyAlgorithm::EdDsa));
        assert!("HS256".parse::<KeyAlgorithm>().is_err());
    }
}
