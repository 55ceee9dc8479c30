//! Shared fixtures for the MySQL tests: a database per test, orders built by hand.

#![allow(dead_code)] // each test binary uses its own subset

use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use ticketing_core::domain::{
    Currency, CustomerId, EventId, IdempotencyKey, Money, Order, OrderId, SeatRef, Ticket,
    TicketId, TicketStatus, VenueId, ZoneCode,
};
use ticketing_core::ports::{IdempotencyRecord, NewOrder};
use ticketing_sqlx::testing::TestDatabase;
use uuid::Uuid;

/// Price of every ticket here, in cents.
pub const PRICE: i64 = 1_000;

/// A fresh, migrated database; fails (naming TICKETING_MYSQL_URL) when the server is unreachable.
pub async fn database(max_connections: u32) -> TestDatabase {
    match TestDatabase::create(max_connections).await {
        Ok(db) => db,
        Err(e) => panic!("MySQL tests need a server; set TICKETING_MYSQL_URL: {e}"),
    }
}

/// A fixed start time (whole milliseconds, as the services keep).
pub fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2030, 1, 1, 12, 0, 0)
        .single()
        .expect("valid time")
}

/// Milliseconds.
pub fn ms(n: i64) -> TimeDelta {
    TimeDelta::milliseconds(n)
}

pub fn seat(key: &str) -> SeatRef {
    key.parse().expect("seat key")
}

pub fn customer(name: &str) -> CustomerId {
    CustomerId::new(name).expect("customer id")
}

pub fn zone(code: &str) -> ZoneCode {
    ZoneCode::new(code).expect("zone code")
}

pub fn eur(minor: i64) -> Money {
    Money::new(minor, Currency::new("EUR").expect("EUR"))
}

/// An event and its venue with fresh ids.
#[derive(Debug, Clone, Copy)]
pub struct Show {
    pub event: EventId,
    pub venue: VenueId,
}

impl Show {
    pub fn new() -> Self {
        Self {
            event: EventId::from_uuid(Uuid::now_v7()),
            venue: VenueId::from_uuid(Uuid::now_v7()),
        }
    }

    fn ticket(
        &self,
        order: OrderId,
        who: &str,
        zone_code: &str,
        seat: Option<SeatRef>,
        now: DateTime<Utc>,
        hold: TimeDelta,
    ) -> Ticket {
        Ticket {
            id: TicketId::from_uuid(Uuid::now_v7()),
            order_id: order,
            event_id: self.event,
            venue_id: self.venue,
            zone: zone(zone_code),
            seat,
            customer: customer(who),
            price: eur(PRICE),
            status: TicketStatus::PendingPayment,
            created_on: now,
            expires_at: now + hold,
            paid_at: None,
            payment_ref: None,
        }
    }

    /// A seated order for `seats` (keys like `A:1:3`), deadline `now + hold`, limit 100.
    pub fn seats(
        &self,
        who: &str,
        seats: &[&str],
        now: DateTime<Utc>,
        hold: TimeDelta,
    ) -> NewOrder {
        let id = OrderId::from_uuid(Uuid::now_v7());
        let tickets = seats
            .iter()
            .map(|key| {
                let seat = seat(key);
                let zone_code = seat.zone.as_str().to_owned();
                self.ticket(id, who, &zone_code, Some(seat), now, hold)
            })
            .collect();
        NewOrder {
            order: order(tickets),
            per_customer_limit: 100,
            general_admission: None,
            idempotency: None,
            voucher: None,
            price_tiers: Vec::new(),
            channel: None,
        }
    }

    /// A general-admission order of `quantity` places in `GA` of `capacity`.
    pub fn general(
        &self,
        who: &str,
        quantity: u32,
        capacity: u32,
        now: DateTime<Utc>,
        hold: TimeDelta,
    ) -> NewOrder {
        let id = OrderId::from_uuid(Uuid::now_v7());
        let tickets = (0..quantity)
            .map(|_| self.ticket(id, who, "GA", None, now, hold))
            .collect();
        NewOrder {
            order: order(tickets),
            per_customer_limit: 100,
            general_admission: Some((zone("GA"), capacity)),
            idempotency: None,
            voucher: None,
            price_tiers: Vec::new(),
            channel: None,
        }
    }
}

/// Groups tickets into an order.
pub fn order(tickets: Vec<Ticket>) -> Order {
    Order::from_tickets(tickets)
        .expect("one order")
        .expect("some tickets")
}

/// Gives `new` an idempotency record for `key` (the order id stays as it is).
pub fn with_key(mut new: NewOrder, key: &str, fingerprint: &str) -> NewOrder {
    new.idempotency = Some(IdempotencyRecord {
        customer: new.order.customer.clone(),
        key: IdempotencyKey::new(key).expect("key"),
        fingerprint: fingerprint.to_owned(),
        order_id: new.order.id,
    });
    new
}

/// The conformance harness on MySQL alone: `MySqlSeatLock` in front of the repository that
/// `tickets` builds on the test database's pool (plain or batched), and `MySqlCatalog`.
pub async fn sql_lock_harness(
    tickets: impl FnOnce(sqlx::MySqlPool) -> ticketing_sqlx::MySqlTicketRepository,
) -> ticketing_core::testkit::Harness {
    use std::sync::Arc;
    use ticketing_core::testkit::{BoxFuture, Harness};
    use ticketing_sqlx::{MySqlCatalog, MySqlSeatLock};

    let db = database(16).await;
    let pool = db.pool().clone();
    let seat_lock = Arc::new(MySqlSeatLock::new(pool.clone()));
    let wiped = seat_lock.clone();
    let tickets = Arc::new(tickets(pool.clone()));
    Harness {
        seat_lock,
        outbox: tickets.clone(),
        tickets,
        waiting_list: Arc::new(ticketing_sqlx::MySqlWaitingList::new(pool.clone())),
        catalog: Arc::new(MySqlCatalog::new(pool)),
        wipe_seat_lock: Arc::new(move || -> BoxFuture {
            let lock = wiped.clone();
            Box::pin(async move { lock.forget_all().await.expect("wipe the SQL seat lock") })
        }),
        teardown: Some(Box::pin(async move {
            db.drop_database().await.expect("drop the test database");
        })),
    }
}
