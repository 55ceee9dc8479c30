//! Time and ids are ports so tests and simulations are deterministic.

use std::sync::Mutex;

use chrono::{DateTime, TimeDelta, Utc};
use uuid::Uuid;

use crate::domain::{EventId, OrderId, TicketId, VenueId};

/// The current time. Services truncate it to whole milliseconds, the precision every backend keeps.
pub trait Clock: Send + Sync {
    /// Now.
    fn now(&self) -> DateTime<Utc>;
}

/// The operating system's clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// A clock that only moves when told to, for tests and simulations.
#[derive(Debug)]
pub struct ManualClock(Mutex<DateTime<Utc>>);

impl ManualClock {
    /// A clock standing at `start`.
    pub fn new(start: DateTime<Utc>) -> Self {
        Self(Mutex::new(start))
    }

    /// Moves the clock to `to` (backwards too: clocks jump).
    pub fn set(&self, to: DateTime<Utc>) {
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) = to;
    }

    /// Moves the clock forward by `by`.
    pub fn advance(&self, by: TimeDelta) {
        let mut now = self.0.lock().unwrap_or_else(|e| e.into_inner());
        *now += by;
    }
}

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        *self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Makes new ids.
pub trait IdGenerator: Send + Sync {
    /// A new ticket id; production generators return UUID v7 (time-ordered).
    fn ticket_id(&self) -> TicketId;
    /// A new order id for a purchase without an idempotency key.
    fn order_id(&self) -> OrderId;

    /// A new venue id.
    fn venue_id(&self) -> VenueId;
    /// A new event id.
    fn event_id(&self) -> EventId;
}

/// UUID v7 ids from the system clock and a random source.
#[derive(Debug, Default, Clone, Copy)]
pub struct UuidV7Ids;

impl IdGenerator for UuidV7Ids {
    fn ticket_id(&self) -> TicketId {
        TicketId::from_uuid(Uuid::now_v7())
    }

    fn order_id(&self) -> OrderId {
        OrderId::from_uuid(Uuid::now_v7())
    }

    fn venue_id(&self) -> VenueId {
        VenueId::from_uuid(Uuid::now_v7())
    }

    fn event_id(&self) -> EventId {
        EventId::from_uuid(Uuid::now_v7())
    }
}
