//! The periodic job that keeps the database small and the keys fresh:
//! purges expired refresh tokens, deny-list entries, ended sessions,
//! remembered client-assertion ids and old audit events in bounded batches (short transactions,
//! no long locks), retires signing keys whose tokens have all expired, and
//! rotates the active key on schedule.

use std::sync::Arc;

use crate::clock::Clock;
use crate::domain::MAX_ACCESS_TTL_SECS;
use crate::keys::{KeyAlgorithm, KeyError, KeyRing};
use crate::store::{Repos, StoreResult};

/// Clock skew allowed to verifiers when deciding a key's tokens are gone.
const SKEW_SECS: i64 = 300;

#[derive(Debug, Clone, Copy)]
pub struct HousekeepingConfig {
    /// Rows deleted per statement.
    pub batch: u32,
    /// Rotate the active signing key once it has signed this long
    /// (seconds): the next key is published `publish_ahead` before.
    pub rotate_every: Option<i64>,
    pub key_algorithm: KeyAlgorithm,
    /// Failed-login records idle this long are forgotten.
    pub failure_window: i64,
    /// Audit events older than this are deleted (seconds).
    pub audit_retention: i64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HousekeepingReport {
    pub refresh_tokens: u64,
    pub denied_tokens: u64,
    pub sessions: u64,
    pub keys_retired: u64,
    pub login_failures: u64,
    pub client_assertions: u64,
    pub audit_events: u64,
    /// The key published on schedule (it signs `publish_ahead` later).
    pub rotated: Option<String>,
}

pub struct Housekeeper {
    pub repos: Repos,
    pub keys: Arc<KeyRing>,
    pub clock: Arc<dyn Clock>,
    pub config: HousekeepingConfig,
}

/// Runs `step` until it deletes fewer than `batch` rows, yielding between
/// batches so request handling is never starved.
async fn in_batches<F, Fut>(batch: u32, mut step: F) -> StoreResult<u64>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = StoreResult<u64>>,
{
    let mut total = 0;
    loop {
        let deleted = step().await?;
        total += deleted;
        if deleted < u64::from(batch) {
            return Ok(total);
        }
        tokio::task::yield_now().await;
    }
}

impl Housekeeper {
    pub async fn run_once(&self) -> Result<HousekeepingReport, KeyError> {
        self.run_at(self.clock.now()).await
    }

    /// One pass as if the time were `now`.
    pub async fn run_at(&self, now: i64) -> Result<HousekeepingReport, KeyError> {
        let tokens = &self.repos.tokens;
        let batch = self.config.batch.max(1);
        // An ended session must outlive its access tokens: introspection
        // learns they are revoked from the session row.
        let token_horizon = now - MAX_ACCESS_TTL_SECS - SKEW_SECS;
        let mut report = HousekeepingReport {
            refresh_tokens: in_batches(batch, || tokens.purge_refresh_tokens(now, batch)).await?,
            denied_tokens: in_batches(batch, || tokens.purge_denied_tokens(now, batch)).await?,
            sessions: in_batches(batch, || {
                tokens.purge_sessions(token_horizon, token_horizon, batch)
            })
            .await?,
            keys_retired: self.repos.keys.retire_keys(token_horizon, now).await?,
            login_failures: in_batches(batch, || {
                self.repos
                    .throttle
                    .purge_failures(now - self.config.failure_window, batch)
            })
            .await?,
            client_assertions: in_batches(batch, || {
                self.repos.assertions.purge_assertions(now, batch)
            })
            .await?,
            audit_events: in_batches(batch, || {
                self.repos
                    .audit
                    .purge_audit(now - self.config.audit_retention, batch)
            })
            .await?,
            rotated: None,
        };
        if let Some(every) = self.config.rotate_every {
            let staged = self
                .keys
                .rotate_if_due(self.config.key_algorithm, every, now)
                .await?;
            if let Some(staged) = &staged {
                crate::audit::record(
                    self.repos.audit.as_ref(),
                    crate::audit::AuditEvent::new(crate::audit::kind::KEY_ROTATED, true, now)
                        .actor(crate::audit::SYSTEM_ACTOR)
                        .subject(&staged.kid)
                        .detail(format!(
                            "scheduled ({}); signs from {}",
                            self.config.key_algorithm, staged.activates_at
                        )),
                )
                .await;
            }
            report.rotated = staged.map(|s| s.kid);
        }
        if report.keys_retired > 0 {
            self.keys.reload_at(now).await?;
        }
        Ok(report)
    }
}
