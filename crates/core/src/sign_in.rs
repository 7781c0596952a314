//! Checking a username and password: the one path every password
//! verification takes (the password grant today, any sign-in form later),
//! so the brute-force defence guards them all.
//!
//! Every refusal takes the same time: unknown user, wrong password,
//! imported hash or throttled, each waits until a check of the slowest
//! kind of stored hash would have ended (password/costs.rs), so timing
//! tells none of them apart; a success does not wait. A request the hash
//! queue has no room for is answered 503 before anything is counted: it
//! was never checked, so it is no failed login.

use std::net::IpAddr;
use std::time::Instant;

use crate::audit::{AuditEvent, AuditNames, kind};
use crate::clock::Clock;
use crate::error::OAuthError;
use crate::model::User;
use crate::password::{HashError, Password, PasswordHasher, Verification};
use crate::store::Repos;
use crate::throttle::{Gate, ThrottlePolicy, pair_key, user_key};

pub struct PasswordCheck<'a> {
    pub repos: &'a Repos,
    pub hasher: &'a PasswordHasher,
    pub policy: &'a ThrottlePolicy,
    pub clock: &'a dyn Clock,
}

/// Where a refused check is recorded: the `user.signin` failure event,
/// under the user's name, or under a keyed hash of what was typed when
/// it names no user (audit/names.rs).
pub struct SignInAudit<'a> {
    pub client_id: &'a str,
    pub names: &'a AuditNames,
}

/// A refusal, with the user it concerned when the username named one.
struct Refused {
    error: OAuthError,
    user: Option<User>,
}

impl From<crate::store::StoreError> for Refused {
    fn from(error: crate::store::StoreError) -> Self {
        OAuthError::from(error).into()
    }
}

impl From<OAuthError> for Refused {
    fn from(error: OAuthError) -> Self {
        Refused { error, user: None }
    }
}

impl PasswordCheck<'_> {
    /// The user, when `password` is theirs, they are active and not
    /// throttled; otherwise the one `invalid_grant` (with the reason in
    /// the log detail only).
    pub async fn check(
        &self,
        username: &str,
        password: &Password,
        ip: Option<IpAddr>,
    ) -> Result<User, OAuthError> {
        self.attempt(username, password, ip)
            .await
            .map_err(|refused| refused.error)
    }

    /// `check`, recording a refusal in the audit trail (a success is the
    /// caller's to record, with what it then issues). The event is queued,
    /// never waited for.
    pub async fn check_audited(
        &self,
        username: &str,
        password: &Password,
        ip: Option<IpAddr>,
        audit: &SignInAudit<'_>,
    ) -> Result<User, OAuthError> {
        let refused = match self.attempt(username, password, ip).await {
            Ok(user) => return Ok(user),
            Err(refused) => refused,
        };
        let subject = match &refused.user {
            Some(user) => user.username.clone(),
            None => audit.names.unknown(username),
        };
        // The reason of a refusal; only a kind for a check never made (the
        // database or the hash queue was unavailable), whose detail is
        // the operator's log's, not the audit trail's.
        let reason = if refused.error.kind == crate::error::OAuthErrorKind::InvalidGrant {
            refused.error.detail.clone().unwrap_or_default()
        } else {
            format!("not checked ({})", refused.error.kind.code())
        };
        crate::audit::record(
            self.repos.audit.as_ref(),
            AuditEvent::new(kind::SIGN_IN, false, self.clock.now())
                .subject(subject)
                .client(audit.client_id)
                .ip(ip)
                .detail(reason),
        )
        .await;
        Err(refused.error)
    }

    async fn attempt(
        &self,
        username: &str,
        password: &Password,
        ip: Option<IpAddr>,
    ) -> Result<User, Refused> {
        let started = Instant::now();
        let now = self.clock.now();
        let keys = [pair_key(username, ip), user_key(username)];
        let user = self.repos.users.find_by_username(username).await?;

        match self.gate(&keys, user.as_ref(), ip, now).await? {
            Gate::Open => {}
            gate => {
                let reason = if gate == Gate::PairThrottled {
                    "throttled (this IP)"
                } else {
                    "throttled (this user, unknown IP)"
                };
                self.hasher.pad_refusal(started).await;
                return Err(Refused {
                    error: OAuthError::throttled(reason),
                    user,
                });
            }
        }

        // A place in the hash queue first: without one the answer is 503,
        // and nothing may count against the user for a check never made.
        let slot = self.hasher.reserve().map_err(hash_error)?;
        // The attempt is charged as a failure before the (slow) hash, and
        // forgiven on success: parallel guesses cannot all slip through
        // the gate while earlier ones are still hashing.
        self.repos
            .throttle
            .record_failure(&keys, now, now - self.policy.window_secs)
            .await?;

        // Unknown user or no password: verify against the dummy hash, so
        // the answer costs the same as a wrong password.
        let stored = user.as_ref().and_then(|u| u.password_hash.as_deref());
        let verification = slot.verify(password, stored).await.map_err(hash_error)?;
        self.hasher.record_check(stored, started.elapsed());
        match (user, verification) {
            (Some(user), Verification::Valid { needs_rehash }) if user.may_sign_in() => {
                self.repos.throttle.clear(&keys).await?;
                if let Some(ip) = ip {
                    self.repos
                        .throttle
                        .remember_ip(&user.id, &ip.to_string(), now)
                        .await?;
                }
                if needs_rehash {
                    self.rehash(&user, password).await;
                }
                Ok(user)
            }
            (user, verification) => {
                let reason = match (&user, verification) {
                    (None, _) => "unknown user",
                    (Some(u), Verification::Valid { .. }) if !u.active => "inactive user",
                    (Some(u), Verification::Valid { .. }) if u.locked => "locked user",
                    _ => "wrong password",
                };
                self.hasher.pad_refusal(started).await;
                Err(Refused {
                    error: OAuthError::bad_credentials().with_detail(reason),
                    user,
                })
            }
        }
    }

    async fn gate(
        &self,
        keys: &[String; 2],
        user: Option<&User>,
        ip: Option<IpAddr>,
        now: i64,
    ) -> Result<Gate, OAuthError> {
        let failures = self
            .repos
            .throttle
            .failures(keys, now - self.policy.window_secs)
            .await?;
        let blocked = |key: &str, threshold: u32| {
            failures
                .iter()
                .find(|f| f.key == key)
                .and_then(|f| {
                    self.policy
                        .blocked_until(threshold, f.failures, f.last_failure)
                })
                .is_some_and(|until| until > now)
        };
        if blocked(&keys[0], self.policy.pair_threshold) {
            return Ok(Gate::PairThrottled);
        }
        if blocked(&keys[1], self.policy.user_threshold) {
            // The real user, from an address they signed in from before,
            // still gets through.
            let known = match (user, ip) {
                (Some(user), Some(ip)) => {
                    self.repos
                        .throttle
                        .is_known_ip(&user.id, &ip.to_string())
                        .await?
                }
                _ => false,
            };
            if !known {
                return Ok(Gate::UserThrottled);
            }
        }
        Ok(Gate::Open)
    }

    /// Upgrades an outdated hash after a successful login. A failure only
    /// means the upgrade waits for the next login.
    async fn rehash(&self, user: &User, password: &Password) {
        let user_id = user.id.as_str();
        let Some(old) = user.password_hash.as_deref() else {
            return;
        };
        match self.hasher.hash(password).await {
            Ok(hash) => {
                if let Err(e) = self
                    .repos
                    .users
                    .upgrade_password_hash(user_id, old, &hash, self.clock.now())
                    .await
                {
                    tracing::warn!(user_id, error = %e, "could not store the upgraded password hash");
                }
            }
            Err(e) => tracing::warn!(user_id, error = %e, "could not upgrade the password hash"),
        }
    }
}

pub(crate) fn hash_error(err: HashError) -> OAuthError {
    match err {
        HashError::Busy => OAuthError::busy(1, "password hashing queue full"),
        other => OAuthError::server_error(other.to_string()),
    }
}
