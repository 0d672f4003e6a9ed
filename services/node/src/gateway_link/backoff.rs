//! When to redial: jittered exponential backoff, as gRPC's connection-backoff protocol
//! describes it (`grpc/grpc` `doc/connection-backoff.md`): multiply by 1.6 after each failed
//! attempt up to a ceiling, and spread every wait by ±20 %, so that the nodes of a whole network
//! that lost the gateway at the same instant do not all come back at the same instant.

use rand::Rng;
use std::time::Duration;

/// Growth of the wait after each failed attempt.
const MULTIPLIER: f64 = 1.6;
/// Relative spread of each wait, either way.
const JITTER: f64 = 0.2;

/// The waits between attempts to make one link.
#[derive(Debug, Clone)]
pub struct Backoff {
    initial: Duration,
    max: Duration,
    current: Duration,
}

impl Backoff {
    /// Waits from `initial`, growing to at most `max` (before jitter).
    pub fn new(initial: Duration, max: Duration) -> Self {
        Self {
            initial,
            max,
            current: initial,
        }
    }

    /// The wait before the next attempt; the one after will be longer.
    pub fn next_wait(&mut self) -> Duration {
        let base = self.current;
        self.current = self.current.mul_f64(MULTIPLIER).min(self.max);
        base.mul_f64(1.0 + rand::rng().random_range(-JITTER..=JITTER))
    }

    /// Back to the first wait: the last link was up long enough to count as a success.
    pub fn reset(&mut self) {
        self.current = self.initial;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_grow_by_1_6_to_the_ceiling_within_20_percent_and_reset() {
        let ms = Duration::from_millis;
        let mut backoff = Backoff::new(ms(100), ms(1_000));
        let bases = [100.0, 160.0, 256.0, 409.6, 655.36, 1_000.0, 1_000.0];
        for base in bases {
            let wait = backoff.next_wait().as_secs_f64() * 1000.0;
            assert!(
                (base * 0.8 - 1e-6..=base * 1.2 + 1e-6).contains(&wait),
                "{wait} not within 20 % of {base}"
            );
        }
        backoff.reset();
        assert!(backoff.next_wait() <= ms(120));
        // Many nodes starting together spread out.
        let waits: std::collections::BTreeSet<u128> = (0..50)
            .map(|_| Backoff::new(ms(1_000), ms(1_000)).next_wait().as_micros())
            .collect();
        assert!(waits.len() > 40, "{waits:?}");
    }
}
