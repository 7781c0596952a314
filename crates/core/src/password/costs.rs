//! How long a password check takes, by kind of stored hash, so that every
//! refusal can take as long as the slowest.
//!
//! A refusal says nothing, but its timing can: an unknown user is checked
//! against the dummy argon2id hash, a user with an imported bcrypt or
//! PBKDF2 hash against that, a throttled attempt against nothing. Each
//! check (successful or not) reports how long it took, from its start to
//! the end of its hash, under the class of its stored hash (algorithm and
//! cost); a refusal then waits until the slowest class's running average
//! has passed since its start. All refusals end together, whatever they
//! hashed; a success is never delayed.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Weight of a new sample in a class's running average.
const ALPHA: f64 = 0.1;
/// A class not seen for this long no longer sets the pace (its users all
/// signed in and were rehashed, or were removed).
const FORGET_AFTER: Duration = Duration::from_secs(24 * 3600);

struct Cost {
    average_secs: f64,
    seen: Instant,
}

#[derive(Default)]
pub(super) struct CheckCosts {
    classes: Mutex<HashMap<String, Cost>>,
}

impl CheckCosts {
    pub(super) fn record(&self, class: String, took: Duration) {
        let Ok(mut classes) = self.classes.lock() else {
            return;
        };
        let secs = took.as_secs_f64();
        let now = Instant::now();
        classes
            .entry(class)
            .and_modify(|c| {
                c.average_secs += ALPHA * (secs - c.average_secs);
                c.seen = now;
            })
            .or_insert(Cost {
                average_secs: secs,
                seen: now,
            });
    }

    /// How long a refusal should take: the slowest class's average.
    pub(super) fn refusal_target(&self) -> Duration {
        let Ok(mut classes) = self.classes.lock() else {
            return Duration::ZERO;
        };
        classes.retain(|_, c| c.seen.elapsed() < FORGET_AFTER);
        let slowest = classes
            .values()
            .map(|c| c.average_secs)
            .fold(0.0_f64, f64::max);
        Duration::from_secs_f64(slowest)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_slowest_class_sets_the_target_and_averages_move_slowly() {
        let costs = CheckCosts::default();
        assert_eq!(costs.refusal_target(), Duration::ZERO);
        costs.record("argon2id".into(), Duration::from_millis(25));
        assert_eq!(costs.refusal_target(), Duration::from_millis(25));
        costs.record("bcrypt:10".into(), Duration::from_millis(60));
        assert_eq!(costs.refusal_target(), Duration::from_millis(60));
        // One quick bcrypt check moves the average a tenth of the way.
        costs.record("bcrypt:10".into(), Duration::from_millis(50));
        let target = costs.refusal_target().as_secs_f64();
        assert!((target - 0.059).abs() < 1e-9, "{target}");
    }
}
