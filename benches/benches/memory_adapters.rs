//! What one call of the in-memory adapters costs as an event fills up: the same calls on an event
//! holding 10,000 and on one holding 100,000 unpaid general-admission orders (one place each,
//! every one held in the seat lock). A time that grows with the fill means something scans.
//!
//! - `general_hold_release`: a new order holds one place of the zone, then releases it;
//! - `sweep_nothing_due`: `expire_due` when no deadline has passed (what most sweeps find);
//! - `relay_unsent`: the relay's read of the last 500 unsent outbox entries;
//! - `count_by_status`, `revenue_minor`: the read side's counters.
//!
//! The purchase itself is measured end to end by `flash-sale --lock memory --repo memory` (its
//! purchases/s per 10,000 tickets sold, with `--general` for a general-admission zone).
//!
//! `cargo bench -p ticketing-bench --bench memory_adapters`

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, TimeDelta, Utc};
use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use ticketing_core::domain::{
    Currency, CustomerId, EventId, Money, Order, OrderId, Ticket, TicketId, TicketStatus, VenueId,
    ZoneCode,
};
use ticketing_core::memory::{InMemorySeatLock, InMemoryTicketRepository};
use ticketing_core::ports::{
    HoldItem, HoldOutcome, HoldPage, HoldRequest, HoldSource, NewOrder, OutboxStore, SeatLock,
    TicketRepository,
};
use uuid::Uuid;

/// Fills the benches are run at.
const FILLS: [u64; 2] = [10_000, 100_000];
/// Places of the zone: room for every fill and the bench's own holds.
const CAPACITY: u32 = 1_000_000;
/// Entries the relay reads per round.
const RELAY_BATCH: u32 = 500;

/// An event and its adapters, filled with unpaid orders.
struct Filled {
    event: EventId,
    venue: VenueId,
    zone: ZoneCode,
    tickets: InMemoryTicketRepository,
    lock: InMemorySeatLock,
    now: DateTime<Utc>,
}

/// Nothing held yet: loads an event empty.
struct Empty;

#[async_trait]
impl HoldSource for Empty {
    async fn active_holds(
        &self,
        _: EventId,
        _: Option<TicketId>,
    ) -> ticketing_core::Result<HoldPage> {
        Ok(HoldPage::default())
    }
}

impl Filled {
    /// `orders` unpaid one-place orders, each stored and held, deadlines an hour ahead.
    async fn new(orders: u64) -> Self {
        let filled = Self {
            event: EventId::from_uuid(Uuid::now_v7()),
            venue: VenueId::from_uuid(Uuid::now_v7()),
            zone: "GA".parse().expect("zone code"),
            tickets: InMemoryTicketRepository::new(),
            lock: InMemorySeatLock::new(),
            now: Utc::now(),
        };
        filled
            .lock
            .rebuild(filled.event, &(Empty))
            .await
            .expect("load the event");
        for n in 0..orders {
            let order = filled.order(n);
            let hold = filled.hold_request(order.id);
            assert_eq!(
                filled.lock.hold(&hold).await.expect("hold"),
                HoldOutcome::Held
            );
            let new = NewOrder {
                order,
                per_customer_limit: 1,
                general_admission: Some((filled.zone.clone(), CAPACITY)),
                idempotency: None,
                voucher: None,
                price_tiers: Vec::new(),
                channel: None,
            };
            filled.tickets.insert_order(&new).await.expect("insert");
        }
        filled
    }

    fn order(&self, n: u64) -> Order {
        let ticket = Ticket {
            id: TicketId::from_uuid(Uuid::now_v7()),
            order_id: OrderId::from_uuid(Uuid::now_v7()),
            event_id: self.event,
            venue_id: self.venue,
            zone: self.zone.clone(),
            seat: None,
            customer: CustomerId::new(format!("c{n}")).expect("customer id"),
            price: Money::new(5_000, Currency::new("EUR").expect("currency")),
            status: TicketStatus::PendingPayment,
            created_on: self.now,
            expires_at: self.now + TimeDelta::hours(1),
            paid_at: None,
            payment_ref: None,
        };
        Order::from_tickets(vec![ticket])
            .expect("one order")
            .expect("one ticket")
    }

    fn hold_request(&self, order: OrderId) -> HoldRequest {
        HoldRequest {
            event: self.event,
            order,
            items: vec![self.one_place()],
            now: self.now,
            until: self.now + TimeDelta::hours(1),
        }
    }

    fn one_place(&self) -> HoldItem {
        HoldItem::General {
            zone: self.zone.clone(),
            quantity: 1,
            capacity: CAPACITY,
        }
    }
}

fn memory_adapters(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("tokio runtime");
    let mut group = c.benchmark_group("memory_adapters");
    group
        .sample_size(20)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    for fill in FILLS {
        let filled = runtime.block_on(Filled::new(fill));
        let relay = "bench-relay";
        runtime.block_on(async {
            let lease = filled
                .tickets
                .try_acquire_lease(relay, filled.now, TimeDelta::days(1))
                .await;
            assert!(lease.expect("lease"), "the bench's relay holds the lease");
            let cursor = fill.saturating_sub(u64::from(RELAY_BATCH));
            assert!(filled.tickets.mark_sent(relay, cursor).await.expect("mark"));
        });
        let f = &filled;
        group.bench_with_input(
            BenchmarkId::new("general_hold_release", fill),
            &fill,
            |b, _| {
                b.to_async(&runtime).iter(|| async {
                    let hold = f.hold_request(OrderId::from_uuid(Uuid::now_v7()));
                    let outcome = f.lock.hold(&hold).await.expect("hold");
                    assert_eq!(outcome, HoldOutcome::Held);
                    f.lock
                        .release(f.event, hold.order, &hold.items)
                        .await
                        .expect("release");
                })
            },
        );
        group.bench_with_input(
            BenchmarkId::new("sweep_nothing_due", fill),
            &fill,
            |b, _| {
                b.to_async(&runtime).iter(|| async {
                    let expired = f.tickets.expire_due(f.now, 100).await.expect("sweep");
                    assert!(expired.is_empty());
                })
            },
        );
        group.bench_with_input(BenchmarkId::new("relay_unsent", fill), &fill, |b, _| {
            b.to_async(&runtime).iter(|| async {
                let batch = f.tickets.unsent(RELAY_BATCH).await.expect("unsent");
                assert_eq!(batch.len() as u64, fill.min(u64::from(RELAY_BATCH)));
            })
        });
        group.bench_with_input(BenchmarkId::new("count_by_status", fill), &fill, |b, _| {
            b.to_async(&runtime).iter(|| async {
                let pending = f
                    .tickets
                    .count_by_status(f.event, TicketStatus::PendingPayment)
                    .await
                    .expect("count");
                assert_eq!(pending, fill);
            })
        });
        group.bench_with_input(BenchmarkId::new("revenue_minor", fill), &fill, |b, _| {
            b.to_async(&runtime).iter(|| async {
                let revenue = f
                    .tickets
                    .revenue_minor(f.venue, f.event)
                    .await
                    .expect("revenue");
                assert_eq!(revenue, 0, "nothing is paid");
            })
        });
    }
    group.finish();
}

criterion_group!(benches, memory_adapters);
criterion_main!(benches);
