//! Port-level contract suites: what every implementation of one port promises, checked on the
//! port alone, without the services.
//!
//! The [conformance suite](super) checks the invariants of the whole purchase flow;
//! these suites check one port each, exactly as its doc comments state it, so that an adapter's
//! bug shows up as the broken promise of that adapter instead of as a wrong ticket count three
//! layers up. Every check is a plain `pub async fn` taking the adapter under test (as object_store's
//! `integration` module does); where adapters legitimately differ, the difference is a
//! capability flag, not a skipped assertion. `run_all` in each module runs every check that
//! applies.
//!
//! - [`seat_lock`]: the [`SeatLock`](crate::ports::SeatLock) port — in memory, Redis, SQL.
//! - [`outbox_store`]: the [`OutboxStore`](crate::ports::OutboxStore) port — in memory, SQL.
//! - [`event_sink`]: the [`EventSink`](crate::ports::EventSink) port — in memory, Redis Streams,
//!   and the brokers of `ticketing-brokers`.
//! - [`waiting_room`]: the [`WaitingRoom`](crate::ports::WaitingRoom) port — in memory, Redis,
//!   MySQL.
//! - [`waiting_list`]: the [`WaitingList`](crate::ports::WaitingList) port — in memory, MySQL,
//!   PostgreSQL.
//! - [`sales_read_model`]: the [`SalesReadModel`](crate::ports::SalesReadModel) port — in memory,
//!   Redis.
//!
//! A check panics with a message naming the broken promise. Checks use fresh ids for everything
//! they create, so they may share one adapter; each adapter's tests still give every check its
//! own database or key prefix, so that a failure leaves nothing behind that confuses the next.

pub mod event_sink;
pub mod outbox_store;
pub mod sales_read_model;
pub mod seat_lock;
pub mod waiting_list;
pub mod waiting_room;

use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use uuid::Uuid;

use crate::domain::{EventId, OrderId, SeatRef, ZoneCode};

/// The checks' "now": a fixed instant in whole milliseconds (the precision every backend stores),
/// far from the real clock, so that a backend reading the real time instead of the caller's is
/// caught.
fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2031, 3, 1, 12, 0, 0)
        .single()
        .expect("a valid instant")
}

fn secs(n: i64) -> TimeDelta {
    TimeDelta::seconds(n)
}

fn ms(n: i64) -> TimeDelta {
    TimeDelta::milliseconds(n)
}

fn new_event() -> EventId {
    EventId::from_uuid(Uuid::now_v7())
}

fn new_order() -> OrderId {
    OrderId::from_uuid(Uuid::now_v7())
}

fn seat(key: &str) -> SeatRef {
    key.parse().expect("a valid seat key")
}

fn zone(code: &str) -> ZoneCode {
    code.parse().expect("a valid zone code")
}
