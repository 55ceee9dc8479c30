//! Pauses between failed rounds of a consumer.

use std::time::Duration;

/// A bounded exponential backoff: `min` after the first failure, doubled per further failure
/// in a row, at most `max`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// The first pause (and the pause after a gap).
    pub min: Duration,
    /// The longest pause.
    pub max: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Self {
            min: Duration::from_millis(200),
            max: Duration::from_secs(30),
        }
    }
}

impl Backoff {
    /// The pause after `failures` failures in a row (at least 1).
    pub fn after(&self, failures: u32) -> Duration {
        let doublings = failures.saturating_sub(1).min(31);
        self.min
            .saturating_mul(1 << doublings)
            .min(self.max.max(self.min))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pauses_double_up_to_the_cap() {
        let backoff = Backoff {
            min: Duration::from_millis(100),
            max: Duration::from_millis(500),
        };
        let pauses: Vec<u128> = (1..=5).map(|n| backoff.after(n).as_millis()).collect();
        assert_eq!(pauses, [100, 200, 400, 500, 500]);
        assert_eq!(backoff.after(u32::MAX), Duration::from_millis(500));
    }
}
