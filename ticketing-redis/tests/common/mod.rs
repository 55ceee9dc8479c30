//! Shared helpers of the integration tests: fixtures and a counting hold source. The per-test
//! prefix and private servers live in `ticketing_redis::testing` (feature `testing`).

#![allow(dead_code)] // each test binary uses a different subset

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, TimeDelta, Utc};
use ticketing_core::domain::{EventId, OrderId, SeatRef, TicketId, ZoneCode};
use ticketing_core::ports::{
    ActiveHold, HoldItem, HoldOutcome, HoldPage, HoldRequest, HoldSource, SeatLock,
};
use ticketing_core::{Error, Result};
pub use ticketing_redis::testing::*;
use uuid::Uuid;

/// A fixed instant in the future, far from any real clock, as every test's "now".
pub fn t0() -> DateTime<Utc> {
    DateTime::from_timestamp_millis(1_900_000_000_000).expect("valid time")
}

pub fn secs(s: i64) -> TimeDelta {
    TimeDelta::seconds(s)
}

pub fn event() -> EventId {
    EventId::from_uuid(Uuid::now_v7())
}

pub fn order() -> OrderId {
    OrderId::from_uuid(Uuid::now_v7())
}

pub fn seat(key: &str) -> SeatRef {
    key.parse().expect("seat key")
}

pub fn zone(code: &str) -> ZoneCode {
    code.parse().expect("zone code")
}

pub fn seats(keys: &[&str]) -> Vec<HoldItem> {
    keys.iter().map(|k| HoldItem::Seat(seat(k))).collect()
}

pub fn general(code: &str, quantity: u32, capacity: u32) -> HoldItem {
    HoldItem::General {
        zone: zone(code),
        quantity,
        capacity,
    }
}

pub fn request(
    event: EventId,
    order: OrderId,
    items: Vec<HoldItem>,
    now: DateTime<Utc>,
    until: DateTime<Utc>,
) -> HoldRequest {
    HoldRequest {
        event,
        order,
        items,
        now,
        until,
    }
}

/// Holds and expects a definite answer.
pub async fn hold(
    lock: &dyn SeatLock,
    event: EventId,
    order: OrderId,
    items: Vec<HoldItem>,
    now: DateTime<Utc>,
    until: DateTime<Utc>,
) -> HoldOutcome {
    lock.hold(&request(event, order, items, now, until))
        .await
        .expect("hold")
}

/// Marks `event` loaded with no holds.
pub async fn load_empty(lock: &dyn SeatLock, event: EventId) {
    lock.rebuild(event, &(CountingSource::new(vec![])))
        .await
        .expect("rebuild");
}

/// A hold source with fixed holds that counts how often it was read.
pub struct CountingSource {
    holds: Vec<ActiveHold>,
    calls: AtomicUsize,
    delay: Duration,
    fail: bool,
}

impl CountingSource {
    pub fn new(holds: Vec<ActiveHold>) -> Self {
        Self {
            holds,
            calls: AtomicUsize::new(0),
            delay: Duration::ZERO,
            fail: false,
        }
    }

    /// Reading takes `delay` (a slow database).
    pub fn slow(holds: Vec<ActiveHold>, delay: Duration) -> Self {
        Self {
            delay,
            ..Self::new(holds)
        }
    }

    /// Reading fails with `Unavailable` (the database is down).
    pub fn failing() -> Self {
        Self {
            fail: true,
            ..Self::new(vec![])
        }
    }

    pub fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }
}

#[async_trait]
impl HoldSource for CountingSource {
    /// The holds as one page; a call counts when it starts a pass.
    async fn active_holds(&self, _event: EventId, after: Option<TicketId>) -> Result<HoldPage> {
        if after.is_none() {
            self.calls.fetch_add(1, Ordering::SeqCst);
        }
        if !self.delay.is_zero() {
            tokio::time::sleep(self.delay).await;
        }
        if self.fail {
            return Err(Error::unavailable("mysql", "test database is down"));
        }
        Ok(HoldPage::last(self.holds.clone()))
    }
}
