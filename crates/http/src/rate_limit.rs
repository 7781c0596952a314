//! Token buckets on the token endpoint: per client IP (before anything
//! else is read) and per presented client_id. Over the limit: 429 with
//! `Retry-After`. Buckets live in this node's memory: N nodes admit up to
//! N times the configured rate (documented).

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::state::keyed::DashMapStateStore;
use governor::{Quota, RateLimiter};

type Keyed<K> = RateLimiter<K, DashMapStateStore<K>, DefaultClock>;

/// Requests per second and burst, per key; `per_second = 0` disables.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rate {
    pub per_second: u32,
    pub burst: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RateLimitConfig {
    pub per_ip: Rate,
    pub per_client: Rate,
}

impl Default for RateLimitConfig {
    fn default() -> Self {
        // Generous for a NAT'd office or a busy backend, tight enough that
        // one address cannot turn the hash pool into its own.
        RateLimitConfig {
            per_ip: Rate {
                per_second: 50,
                burst: 100,
            },
            per_client: Rate {
                per_second: 1000,
                burst: 2000,
            },
        }
    }
}

pub struct RateLimits {
    per_ip: Option<Keyed<IpAddr>>,
    per_client: Option<Keyed<String>>,
}

fn limiter<K: std::hash::Hash + Eq + Clone>(rate: Rate) -> Option<Keyed<K>> {
    let per_second = NonZeroU32::new(rate.per_second)?;
    let burst = NonZeroU32::new(rate.burst.max(rate.per_second)).unwrap_or(per_second);
    Some(RateLimiter::dashmap(
        Quota::per_second(per_second).allow_burst(burst),
    ))
}

/// Whole seconds to wait, at least one.
fn retry_after<K: std::hash::Hash + Eq + Clone>(limiter: &Keyed<K>, key: &K) -> Result<(), u64> {
    limiter.check_key(key).map_err(|not_until| {
        let wait: Duration = not_until.wait_time_from(DefaultClock::default().now());
        wait.as_secs() + 1
    })
}

impl RateLimits {
    pub fn new(config: RateLimitConfig) -> Self {
        RateLimits {
            per_ip: limiter(config.per_ip),
            per_client: limiter(config.per_client),
        }
    }

    pub(crate) fn check_ip(&self, ip: IpAddr) -> Result<(), u64> {
        self.per_ip.as_ref().map_or(Ok(()), |l| retry_after(l, &ip))
    }

    pub(crate) fn check_client(&self, client_id: &str) -> Result<(), u64> {
        self.per_client
            .as_ref()
            .map_or(Ok(()), |l| retry_after(l, &client_id.to_owned()))
    }

    /// Drops buckets that are full again (call periodically: keys come
    /// from the network and must not accumulate).
    pub fn retain_recent(&self) {
        if let Some(l) = &self.per_ip {
            l.retain_recent();
            l.shrink_to_fit();
        }
        if let Some(l) = &self.per_client {
            l.retain_recent();
            l.shrink_to_fit();
        }
    }
}

/// The per-client bucket, charged by the services once the client has
/// authenticated (charging the claimed client_id would let anyone spend a
/// real client's budget).
impl latchkey_core::client_auth::ClientRateLimiter for RateLimits {
    fn charge(&self, client_id: &str) -> Result<(), u64> {
        self.check_client(client_id)
    }

    fn charge_ip(&self, ip: IpAddr) -> Result<(), u64> {
        self.check_ip(ip)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_admit_the_burst_then_refuse_with_a_wait() {
        let limits = RateLimits::new(RateLimitConfig {
            per_ip: Rate {
                per_second: 1,
                burst: 3,
            },
            per_client: Rate {
                per_second: 0,
                burst: 0,
            },
        });
        let ip: IpAddr = "1.2.3.4".parse().unwrap();
        for _ in 0..3 {
            assert!(limits.check_ip(ip).is_ok());
        }
        let wait = limits.check_ip(ip).unwrap_err();
        assert!((1..=2).contains(&wait), "{wait}");
        assert!(
            limits.check_ip("1.2.3.5".parse().unwrap()).is_ok(),
            "buckets are per key"
        );
        assert!(limits.check_client("anything").is_ok(), "0 disables");
    }
}
