//! Pauses between failed rounds of a consumer, and the consumers' round loop.

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

/// Runs `round` until `shutdown` completes; a round answers whether it met a gap. A failure (the
/// broker down) is counted in `failed_rounds`, logged and retried after `retry.after(failures in
/// a row)`; a gap waits `retry.min`; otherwise the next round starts at once.
#[cfg(any(feature = "nats", feature = "rabbitmq", feature = "kafka"))]
pub(crate) async fn run_rounds<F, Fut>(
    consumer: &str,
    retry: Backoff,
    failed_rounds: &std::sync::atomic::AtomicU64,
    shutdown: impl std::future::Future<Output = ()> + Send,
    mut round: F,
) where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = ticketing_core::Result<bool>>,
{
    let mut shutdown = std::pin::pin!(shutdown);
    let mut failures = 0u32;
    loop {
        let delay = match round().await {
            Ok(true) => {
                failures = 0;
                retry.min
            }
            Ok(false) => {
                failures = 0;
                Duration::ZERO
            }
            Err(error) => {
                failures = failures.saturating_add(1);
                failed_rounds.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let pause = retry.after(failures);
                tracing::warn!(consumer, %error, failures, ?pause, "sales projection round failed");
                pause
            }
        };
        if tokio::time::timeout(delay, &mut shutdown).await.is_ok() {
            return;
        }
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
