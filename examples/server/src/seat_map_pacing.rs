//! A server-wide pace for seat-map reads, so a crowd of readers cannot take the buyers' CPU.
//!
//! A seat map is shared and cached, and an unchanged one costs a client a `304`; what a client
//! reading in a tight loop still costs is the request and the bytes of its answer. 200 such
//! clients sent 26,000 reads a second to one server and tripled the buyers' p99. So an answer
//! beyond the pace waits its turn (governor's GCRA) before it is sent: a reader that waits for
//! its answer before asking again cannot ask faster, and a waiting answer costs a timer, not the
//! CPU. A read counts once per [`READ_UNIT`] bytes of its answer, so a client asking for the
//! whole JSON (165 KB) uses the budget of eleven `304`s, as it costs the server that much more to
//! send. Waiting is bounded by the request timeout and the in-flight limit like any request. A
//! read is never refused for the pace: a refusal would be asked again at once.

use std::num::NonZeroU32;

use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};

/// The answer bytes one read unit covers: an answer of up to this size counts as one read.
pub const READ_UNIT: u64 = 16 * 1024;

/// The pace: `None` answers every read at once.
pub struct SeatMapPacer {
    limiter: Option<(DefaultDirectRateLimiter, NonZeroU32)>,
}

impl SeatMapPacer {
    /// At most `per_second` read units a second over the whole server, up to that many at once
    /// after a quiet second; `None`: no pace.
    pub fn new(per_second: Option<NonZeroU32>) -> Self {
        Self {
            limiter: per_second.map(|rate| (RateLimiter::direct(Quota::per_second(rate)), rate)),
        }
    }

    /// Waits until an answer of `bytes` is within the pace.
    pub async fn wait_turn(&self, bytes: u64) {
        let Some((limiter, burst)) = &self.limiter else {
            return;
        };
        let units = u32::try_from(1 + bytes / READ_UNIT).unwrap_or(u32::MAX);
        // No answer waits for more than a second's budget.
        let units = NonZeroU32::new(units).map_or(NonZeroU32::MIN, |units| units.min(*burst));
        // Within the burst, so the limiter can always grant it.
        let _ = limiter.until_n_ready(units).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    #[tokio::test]
    async fn reads_beyond_the_pace_wait_their_turn() {
        let pacer = SeatMapPacer::new(NonZeroU32::new(20));
        let started = Instant::now();
        // 20 at once after a quiet second, then one every 50 ms.
        for _ in 0..30 {
            pacer.wait_turn(0).await;
        }
        let waited = started.elapsed();
        assert!(waited >= Duration::from_millis(450), "{waited:?}");

        let unpaced = SeatMapPacer::new(None);
        let started = Instant::now();
        for _ in 0..10_000 {
            unpaced.wait_turn(1 << 20).await;
        }
        assert!(started.elapsed() < Duration::from_millis(450));
    }

    #[tokio::test]
    async fn a_large_answer_counts_once_per_unit() {
        let pacer = SeatMapPacer::new(NonZeroU32::new(20));
        let started = Instant::now();
        // Four answers of 10 units: 20 at once, 20 more over the next second.
        for _ in 0..4 {
            pacer.wait_turn(9 * READ_UNIT + 1).await;
        }
        let waited = started.elapsed();
        assert!(waited >= Duration::from_millis(950), "{waited:?}");
        // An answer larger than a second's budget waits a second, not forever.
        let started = Instant::now();
        pacer.wait_turn(1_000 * READ_UNIT).await;
        assert!(started.elapsed() < Duration::from_secs(3));
    }
}
