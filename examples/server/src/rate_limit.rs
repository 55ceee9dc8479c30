//! The per-customer rate limit on purchases: a token bucket per customer (governor's GCRA), so
//! one customer's burst of purchases cannot crowd out the others. The customer is the token's,
//! so a client cannot dodge the limit by naming another customer.

use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use ticketing_core::domain::CustomerId;

use crate::error::ApiError;

/// The sustained rate and the burst of purchases one customer may make.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PurchaseRate {
    /// Purchases per second, sustained.
    pub per_second: NonZeroU32,
    /// Purchases allowed at once after a quiet spell.
    pub burst: NonZeroU32,
}

impl Default for PurchaseRate {
    /// 10 purchases a second, 20 at once: far above what a person at a checkout does.
    fn default() -> Self {
        Self {
            per_second: NonZeroU32::new(10).unwrap_or(NonZeroU32::MIN),
            burst: NonZeroU32::new(20).unwrap_or(NonZeroU32::MIN),
        }
    }
}

/// How often the limiter forgets customers whose bucket has refilled.
pub const FORGET_INTERVAL: Duration = Duration::from_secs(10);

/// The limiter. Its memory is bounded: governor's keyed store keeps one entry per customer it
/// has seen, so every [`FORGET_INTERVAL`] the first check after it drops the customers whose
/// bucket is full again (`retain_recent`: they are indistinguishable from new ones). What is
/// kept is the customers active in the last `burst / per_second` seconds plus one interval.
pub struct PurchaseLimiter {
    limiter: DefaultKeyedRateLimiter<CustomerId>,
    clock: DefaultClock,
    /// Milliseconds since `started` of the last forgetting.
    last_forget_ms: AtomicU64,
    started: std::time::Instant,
}

impl PurchaseLimiter {
    /// A limiter of `rate` per customer.
    pub fn new(rate: PurchaseRate) -> Self {
        let quota = Quota::per_second(rate.per_second).allow_burst(rate.burst);
        Self {
            limiter: RateLimiter::keyed(quota),
            clock: DefaultClock::default(),
            last_forget_ms: AtomicU64::new(0),
            started: std::time::Instant::now(),
        }
    }

    /// Takes one purchase from `customer`'s bucket, or says how long until one is free.
    pub fn check(&self, customer: &CustomerId) -> Result<(), RateLimited> {
        self.forget_idle();
        self.limiter
            .check_key(customer)
            .map_err(|not_until| RateLimited {
                retry_after: not_until.wait_time_from(self.clock.now()),
            })
    }

    /// Customers the limiter remembers now.
    pub fn remembered(&self) -> usize {
        self.limiter.len()
    }

    /// Drops the idle customers, at most once per [`FORGET_INTERVAL`] (the caller that wins the
    /// race does it; the others go on).
    fn forget_idle(&self) {
        self.forget_idle_at(self.started.elapsed());
    }

    /// [`forget_idle`](Self::forget_idle) at `elapsed` since the limiter was made.
    fn forget_idle_at(&self, elapsed: Duration) {
        let now = elapsed.as_millis() as u64;
        let last = self.last_forget_ms.load(Ordering::Relaxed);
        if now.saturating_sub(last) < FORGET_INTERVAL.as_millis() as u64 {
            return;
        }
        if self
            .last_forget_ms
            .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
            .is_ok()
        {
            self.limiter.retain_recent();
            self.limiter.shrink_to_fit();
        }
    }
}

/// A purchase refused by the rate limit: `429 RATE_LIMITED` with `Retry-After`.
#[derive(Debug, Clone, Copy)]
pub struct RateLimited {
    /// How long until the customer's next purchase is allowed.
    pub retry_after: Duration,
}

impl RateLimited {
    /// `Retry-After` in whole seconds, rounded up, at least 1.
    pub fn retry_after_seconds(&self) -> u64 {
        self.retry_after.as_secs_f64().ceil().max(1.0) as u64
    }
}

impl IntoResponse for RateLimited {
    fn into_response(self) -> Response {
        let seconds = self.retry_after_seconds();
        let mut response = ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "RATE_LIMITED",
            format!("too many purchases by this customer; retry in {seconds} s"),
        )
        .into_response();
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rate(per_second: u32, burst: u32) -> PurchaseRate {
        PurchaseRate {
            per_second: NonZeroU32::new(per_second).unwrap(),
            burst: NonZeroU32::new(burst).unwrap(),
        }
    }

    #[test]
    fn a_burst_passes_then_the_customer_waits_and_others_do_not() {
        let limiter = PurchaseLimiter::new(rate(1, 3));
        let alice: CustomerId = "alice".parse().unwrap();
        let bob: CustomerId = "bob".parse().unwrap();
        for _ in 0..3 {
            assert!(limiter.check(&alice).is_ok());
        }
        let refused = limiter.check(&alice).unwrap_err();
        assert!(refused.retry_after <= Duration::from_secs(1));
        assert_eq!(refused.retry_after_seconds(), 1);
        assert!(limiter.check(&bob).is_ok());
    }

    #[test]
    fn retry_after_rounds_up_to_whole_seconds() {
        let at = |ms| RateLimited {
            retry_after: Duration::from_millis(ms),
        };
        assert_eq!(at(0).retry_after_seconds(), 1);
        assert_eq!(at(1).retry_after_seconds(), 1);
        assert_eq!(at(1000).retry_after_seconds(), 1);
        assert_eq!(at(1001).retry_after_seconds(), 2);
    }

    #[test]
    fn idle_customers_are_forgotten() {
        let limiter = PurchaseLimiter::new(rate(1000, 1));
        for i in 0..100 {
            let customer: CustomerId = format!("c{i}").parse().unwrap();
            limiter.check(&customer).unwrap();
        }
        assert_eq!(limiter.remembered(), 100);
        // Their one-purchase buckets refill in a millisecond.
        std::thread::sleep(Duration::from_millis(5));
        limiter.forget_idle_at(FORGET_INTERVAL / 2);
        assert_eq!(limiter.remembered(), 100, "not before the interval");
        limiter.forget_idle_at(FORGET_INTERVAL + Duration::from_millis(1));
        assert_eq!(limiter.remembered(), 0);
        // A customer still in their bucket's refill is kept.
        let slow = PurchaseLimiter::new(rate(1, 1));
        slow.check(&"busy".parse().unwrap()).unwrap();
        slow.forget_idle_at(FORGET_INTERVAL + Duration::from_millis(1));
        assert_eq!(slow.remembered(), 1);
    }
}
