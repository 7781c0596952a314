//! Brute-force defence for every path that verifies a password.
//!
//! Failures are counted per (username, client IP) and per username, in the
//! database so every node sees them, and decay after `window`. Past
//! `pair_threshold` failures a (username, IP) pair waits `base_delay`,
//! doubling with each further failure up to `max_delay`. Past the higher
//! `user_threshold` (failures from all IPs together) the username is
//! throttled the same way — except from IPs the user has signed in from
//! before, so an attacker spraying from many addresses cannot lock the real
//! user out (the weakness of lockouts such as Keycloak's, CVE-2024-10270).
//! A throttled attempt gets the ordinary `invalid_grant` and runs no hash.
//!
//! Keys use the lower-cased username, not the user id: an unknown username
//! is throttled exactly like a known one, so throttling reveals nothing.

use std::net::IpAddr;

use async_trait::async_trait;
use serde::Deserialize;

use crate::store::StoreResult;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ThrottlePolicy {
    /// Failures from one IP for one username before that pair must wait.
    pub pair_threshold: u32,
    /// Failures from all IPs for one username before unknown IPs must wait.
    pub user_threshold: u32,
    /// First wait, in seconds; doubles with each further failure.
    pub base_delay_secs: i64,
    pub max_delay_secs: i64,
    /// Failures older than this are forgotten.
    pub window_secs: i64,
}

impl Default for ThrottlePolicy {
    fn default() -> Self {
        ThrottlePolicy {
            pair_threshold: 5,
            user_threshold: 50,
            base_delay_secs: 60,
            max_delay_secs: 900,
            window_secs: 3600,
        }
    }
}

impl ThrottlePolicy {
    pub fn validate(&self) -> Result<(), String> {
        if self.pair_threshold == 0 || self.user_threshold == 0 {
            return Err("thresholds must be at least 1".into());
        }
        if self.base_delay_secs < 1 || self.max_delay_secs < self.base_delay_secs {
            return Err("base_delay_secs must be at least 1 and at most max_delay_secs".into());
        }
        if self.window_secs < self.max_delay_secs {
            return Err("window_secs must be at least max_delay_secs".into());
        }
        Ok(())
    }

    /// Until when a key with `failures` (the last at `last_failure`) must
    /// wait, if it must.
    pub fn blocked_until(&self, threshold: u32, failures: i64, last_failure: i64) -> Option<i64> {
        let over = failures - i64::from(threshold);
        if over < 0 {
            return None;
        }
        let delay = self
            .base_delay_secs
            .saturating_mul(1i64 << over.min(30))
            .min(self.max_delay_secs);
        Some(last_failure + delay)
    }
}

/// Failures recorded under one key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failures {
    pub key: String,
    pub failures: i64,
    pub last_failure: i64,
}

#[async_trait]
pub trait ThrottleRepo: Send + Sync {
    /// Failures under `keys` whose window started after `window_start_after`.
    async fn failures(
        &self,
        keys: &[String],
        window_start_after: i64,
    ) -> StoreResult<Vec<Failures>>;
    /// Counts one failure under each key (a fresh window when the old one
    /// ended), atomically per key.
    async fn record_failure(
        &self,
        keys: &[String],
        now: i64,
        window_start_after: i64,
    ) -> StoreResult<()>;
    /// Forgets the failures under `keys` (success, or an admin's unlock).
    async fn clear(&self, keys: &[String]) -> StoreResult<()>;
    /// Forgets every failure of a username, from every IP.
    async fn clear_username(&self, username_key: &str) -> StoreResult<()>;
    async fn is_known_ip(&self, user_id: &str, ip: &str) -> StoreResult<bool>;
    async fn remember_ip(&self, user_id: &str, ip: &str, now: i64) -> StoreResult<()>;
    /// Deletes up to `limit` failure records last touched before `before`.
    async fn purge_failures(&self, before: i64, limit: u32) -> StoreResult<u64>;
}

pub fn user_key(username: &str) -> String {
    format!("user:{}", username.to_lowercase())
}

pub fn pair_key(username: &str, ip: Option<IpAddr>) -> String {
    match ip {
        Some(ip) => format!("pair:{}:{ip}", username.to_lowercase()),
        None => format!("pair:{}:-", username.to_lowercase()),
    }
}

/// What the checks before a password verification decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gate {
    Open,
    /// Refused without verifying; the reason is for the log.
    PairThrottled,
    UserThrottled,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_double_from_the_threshold_up_to_the_cap() {
        let p = ThrottlePolicy::default();
        assert_eq!(p.blocked_until(5, 4, 1000), None);
        assert_eq!(p.blocked_until(5, 5, 1000), Some(1060));
        assert_eq!(p.blocked_until(5, 6, 1000), Some(1120));
        assert_eq!(p.blocked_until(5, 8, 1000), Some(1480));
        assert_eq!(
            p.blocked_until(5, 9, 1000),
            Some(1900),
            "capped at 15 minutes"
        );
        assert_eq!(p.blocked_until(5, 500, 1000), Some(1900), "no overflow");
    }

    #[test]
    fn keys_ignore_case_and_name_the_ip() {
        assert_eq!(user_key("Alice"), "user:alice");
        assert_eq!(
            pair_key("Alice", Some("10.0.0.1".parse().unwrap())),
            "pair:alice:10.0.0.1"
        );
        assert_eq!(pair_key("alice", None), "pair:alice:-");
    }

    #[test]
    fn policy_validation() {
        assert!(ThrottlePolicy::default().validate().is_ok());
        assert!(
            ThrottlePolicy {
                pair_threshold: 0,
                ..Default::default()
            }
            .validate()
            .is_err()
        );
        assert!(
            ThrottlePolicy {
                window_secs: 10,
                ..Default::default()
            }
            .validate()
            .is_err()
        );
    }
}
