//! Bounded retries of whole transactions that lost a deadlock, a lock wait or (PostgreSQL) a
//! serialization check. Shared by both databases: each adapter's error says what is transient.

use std::future::Future;
use std::time::Duration;

use uuid::Uuid;

/// An adapter error that knows whether running the whole transaction again may succeed.
pub(crate) trait Transient {
    /// A lost lock race (deadlock, lock-wait timeout, serialization failure).
    fn is_transient(&self) -> bool;
}

/// How many times a transaction runs again after a deadlock or lock-wait timeout.
pub(crate) const MAX_RETRIES: u32 = 10;

/// Runs `attempt` until it succeeds, fails for good, or lost [`MAX_RETRIES`] deadlocks or lock
/// waits in a row; between attempts it sleeps a small, growing, jittered delay so the contenders
/// do not collide again in lock step. The last transient error is returned as is (it becomes
/// `Unavailable`, which callers may retry later).
pub(crate) async fn retry<T, E, F, Fut>(operation: &'static str, mut attempt: F) -> Result<T, E>
where
    E: Transient + std::fmt::Debug,
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    let mut retries = 0;
    loop {
        match attempt().await {
            Err(e) if e.is_transient() && retries < MAX_RETRIES => {
                retries += 1;
                tracing::debug!(operation, retries, error = ?e, "retrying after a lock conflict");
                tokio::time::sleep(backoff(retries)).await;
            }
            other => return other,
        }
    }
}

/// [`retry`] with the MySQL adapters' error (named, so closures need no annotation).
#[cfg(feature = "mysql")]
pub(crate) async fn with_retry<T, F, Fut>(
    operation: &'static str,
    attempt: F,
) -> crate::error::StoreResult<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = crate::error::StoreResult<T>>,
{
    retry(operation, attempt).await
}

/// 1, 2, 4, … 32 ms (capped), plus up to as much again of random jitter.
pub(crate) fn backoff(retry: u32) -> Duration {
    let base_ms = 1u64 << retry.saturating_sub(1).min(5);
    // A v4 UUID is 122 random bits from the OS; enough jitter without another dependency.
    let jitter_us = (Uuid::new_v4().as_u128() as u64) % (base_ms * 1000 + 1);
    Duration::from_micros(base_ms * 1000 + jitter_us)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_stays_bounded() {
        for retry in 1..=MAX_RETRIES {
            let base = Duration::from_millis(1 << (retry - 1).min(5));
            let delay = backoff(retry);
            assert!(
                delay >= base && delay <= base * 2,
                "retry {retry}: {delay:?}"
            );
        }
    }
}
