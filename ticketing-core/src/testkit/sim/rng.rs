//! A small, self-contained, seeded PRNG and an id generator built on it.
//!
//! SplitMix64 is enough for a simulator: fast, full-period, and the same on every platform, so
//! one seed gives one history everywhere.

use std::sync::Mutex;

use uuid::Uuid;

use crate::domain::{EventId, OrderId, TicketId, VenueId};
use crate::ports::IdGenerator;

/// SplitMix64: a seeded pseudo-random stream. Never use it for anything but simulations.
#[derive(Debug, Clone)]
pub struct SimRng(u64);

impl SimRng {
    /// A stream starting at `seed`.
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    /// A second, independent stream derived from this seed and a stream number, so that drawing
    /// from one stream never shifts another.
    pub fn stream(seed: u64, stream: u64) -> Self {
        let mut mixer = Self(seed ^ stream.wrapping_mul(0xA076_1D64_78BD_642F));
        Self(mixer.next_u64())
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (`0` when `n` is `0`), without modulo bias worth mentioning.
    pub fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }

    /// A number in `low..=high`.
    pub fn between(&mut self, low: i64, high: i64) -> i64 {
        debug_assert!(low <= high);
        low + self.below((high - low) as u64 + 1) as i64
    }

    /// `true` with probability `p` (0 never, 1 always).
    pub fn chance(&mut self, p: f64) -> bool {
        if p <= 0.0 {
            return false;
        }
        let unit = (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
        unit < p
    }

    /// An index into a slice of `len` items, or `None` when it is empty.
    pub fn index(&mut self, len: usize) -> Option<usize> {
        (len > 0).then(|| self.below(len as u64) as usize)
    }

    /// 16 random bytes shaped as a UUID v4.
    pub fn uuid(&mut self) -> Uuid {
        let bytes = (u128::from(self.next_u64()) << 64 | u128::from(self.next_u64())).to_be_bytes();
        uuid::Builder::from_random_bytes(bytes).into_uuid()
    }
}

/// An [`IdGenerator`] drawing ids from a seeded stream: the same seed gives the same ids in the
/// same order. (Production uses time-ordered UUID v7; the services do not depend on the order.)
#[derive(Debug)]
pub struct SeededIds(Mutex<SimRng>);

impl SeededIds {
    /// Ids from `seed`'s own stream.
    pub fn new(seed: u64) -> Self {
        Self(Mutex::new(SimRng::stream(seed, 0x1D5)))
    }

    fn next(&self) -> Uuid {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).uuid()
    }
}

impl IdGenerator for SeededIds {
    fn ticket_id(&self) -> TicketId {
        TicketId::from_uuid(self.next())
    }

    fn order_id(&self) -> OrderId {
        OrderId::from_uuid(self.next())
    }

    fn venue_id(&self) -> VenueId {
        VenueId::from_uuid(self.next())
    }

    fn event_id(&self) -> EventId {
        EventId::from_uuid(self.next())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_stream_and_streams_differ() {
        let a: Vec<u64> = (0..8)
            .map({
                let mut r = SimRng::new(7);
                move |_| r.next_u64()
            })
            .collect();
        let b: Vec<u64> = (0..8)
            .map({
                let mut r = SimRng::new(7);
                move |_| r.next_u64()
            })
            .collect();
        assert_eq!(a, b);
        assert_ne!(
            SimRng::stream(7, 1).next_u64(),
            SimRng::stream(7, 2).next_u64()
        );
    }

    #[test]
    fn below_stays_in_range_and_hits_every_value() {
        let mut rng = SimRng::new(1);
        let mut seen = [false; 5];
        for _ in 0..200 {
            let n = rng.below(5) as usize;
            seen[n] = true;
        }
        assert!(seen.iter().all(|s| *s));
        assert_eq!(rng.below(0), 0);
        assert!(!rng.chance(0.0));
        assert!(rng.chance(1.0));
    }

    #[test]
    fn seeded_ids_repeat_per_seed() {
        let (a, b) = (SeededIds::new(3), SeededIds::new(3));
        assert_eq!(a.order_id(), b.order_id());
        assert_eq!(a.ticket_id(), b.ticket_id());
        assert_ne!(SeededIds::new(4).order_id(), SeededIds::new(3).order_id());
    }
}
