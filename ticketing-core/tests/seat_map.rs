//! The seat map: compact ranges, one zone at a time, one shared snapshot for a crowd of readers,
//! and the venue caps that bound its size.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, TimeDelta, Utc};
use ticketing_core::Error;
use ticketing_core::Result;
use ticketing_core::domain::{
    Currency, Event, EventId, EventSpec, Money, OrderId, Row, Venue, VenueLimits, Zone, ZoneKind,
};
use ticketing_core::memory::InMemorySeatLock;
use ticketing_core::ports::{
    BestAvailableOutcome, BestAvailableRequest, HoldItem, HoldOutcome, HoldRequest, HoldSource,
    LockSnapshot, SeatLock,
};
use ticketing_core::service::{
    Backends, CatalogService, PurchaseRequest, QueryService, SeatAvailability, SeatRange,
    Selection, ServiceConfig, TicketService,
};

/// A seat lock that counts snapshots and makes each one take `delay`, so that concurrent readers
/// really overlap.
struct CountingLock {
    inner: InMemorySeatLock,
    delay: Duration,
    snapshots: AtomicUsize,
    zone_snapshots: AtomicUsize,
}

#[async_trait]
impl SeatLock for CountingLock {
    async fn hold(&self, request: &HoldRequest) -> Result<HoldOutcome> {
        self.inner.hold(request).await
    }
    async fn hold_best_available(
        &self,
        request: &BestAvailableRequest,
    ) -> Result<BestAvailableOutcome> {
        self.inner.hold_best_available(request).await
    }
    async fn release(&self, event: EventId, order: OrderId, items: &[HoldItem]) -> Result<()> {
        self.inner.release(event, order, items).await
    }
    async fn mark_sold(&self, event: EventId, order: OrderId, items: &[HoldItem]) -> Result<()> {
        self.inner.mark_sold(event, order, items).await
    }
    async fn snapshot(&self, event: EventId, now: DateTime<Utc>) -> Result<Option<LockSnapshot>> {
        self.snapshots.fetch_add(1, Ordering::SeqCst);
        tokio::time::sleep(self.delay).await;
        self.inner.snapshot(event, now).await
    }
    async fn zone_snapshot(
        &self,
        event: EventId,
        zone: &Zone,
        now: DateTime<Utc>,
    ) -> Result<Option<LockSnapshot>> {
        self.zone_snapshots.fetch_add(1, Ordering::SeqCst);
        tokio::time::sleep(self.delay).await;
        self.inner.zone_snapshot(event, zone, now).await
    }
    async fn rebuild(&self, event: EventId, source: &dyn HoldSource) -> Result<()> {
        self.inner.rebuild(event, source).await
    }

    async fn forget(&self, event: EventId) -> Result<()> {
        self.inner.forget(event).await
    }
}

struct Sale {
    lock: Arc<CountingLock>,
    tickets: TicketService,
    queries: QueryService,
    event: Event,
}

fn seated(code: &str, rows: u32, seats: u32) -> Zone {
    Zone {
        code: code.parse().unwrap(),
        name: code.into(),
        kind: ZoneKind::Seated {
            rows: (1..=rows)
                .map(|n| Row {
                    label: n.to_string().parse().unwrap(),
                    seats,
                })
                .collect(),
        },
    }
}

/// An event on sale now with zones `A` (2 rows of 20) and `GA` (50 places) priced, and `B`
/// (1 row of 5) not priced; seat-map reads shared for `max_age`.
async fn sale(max_age: Duration) -> Sale {
    let lock = Arc::new(CountingLock {
        inner: InMemorySeatLock::new(),
        delay: Duration::from_millis(50),
        snapshots: AtomicUsize::new(0),
        zone_snapshots: AtomicUsize::new(0),
    });
    let backends = Backends::in_memory()
        .to_builder()
        .seat_lock(lock.clone())
        .build()
        .unwrap();
    let catalog = CatalogService::new(backends.clone());
    let ga = Zone {
        code: "GA".parse().unwrap(),
        name: "Floor".into(),
        kind: ZoneKind::GeneralAdmission { capacity: 50 },
    };
    let venue = catalog
        .create_venue("Hall", vec![seated("A", 2, 20), seated("B", 1, 5), ga])
        .await
        .unwrap();
    let eur = Currency::new("EUR").unwrap();
    let event = catalog
        .create_event(EventSpec {
            name: "Show".into(),
            venue_id: venue.id(),
            sale_opens: Utc::now() - TimeDelta::hours(1),
            sale_closes: Utc::now() + TimeDelta::hours(1),
            prices: BTreeMap::from([
                ("A".parse().unwrap(), Money::new(1000, eur)),
                ("GA".parse().unwrap(), Money::new(500, eur)),
            ]),
            hold_time: TimeDelta::minutes(5),
            per_customer_limit: 10,
        })
        .await
        .unwrap();
    let config = ServiceConfig {
        seat_map_max_age: max_age,
        ..ServiceConfig::default()
    };
    Sale {
        lock,
        tickets: TicketService::new(backends.clone(), config.clone()),
        queries: QueryService::new(backends, config),
        event,
    }
}

impl Sale {
    async fn buy(&self, customer: &str, selection: Selection) -> ticketing_core::domain::Order {
        self.tickets
            .purchase(PurchaseRequest {
                event: self.event.id(),
                customer: customer.parse().unwrap(),
                selection,
                idempotency_key: None,
                voucher: None,
                channel: None,
            })
            .await
            .unwrap()
    }

    fn snapshots(&self) -> usize {
        self.lock.snapshots.load(Ordering::SeqCst)
    }
}

fn seats(keys: &[&str]) -> Selection {
    Selection::Seats(keys.iter().map(|k| k.parse().unwrap()).collect())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_readers_share_one_snapshot() {
    let sale = Arc::new(sale(Duration::from_secs(60)).await);
    sale.buy("alice", seats(&["A:1:3", "A:1:4"])).await;
    let before = sale.snapshots();
    let readers = 64;
    let start = Arc::new(tokio::sync::Barrier::new(readers));
    let tasks: Vec<_> = (0..readers)
        .map(|_| {
            let (sale, start) = (sale.clone(), start.clone());
            tokio::spawn(async move {
                start.wait().await;
                sale.queries.seat_map(sale.event.id()).await.unwrap()
            })
        })
        .collect();
    let mut maps = Vec::new();
    for task in tasks {
        maps.push(task.await.unwrap());
    }
    assert_eq!(
        sale.snapshots() - before,
        1,
        "{readers} concurrent readers must cost one snapshot"
    );
    assert!(maps.iter().all(|map| Arc::ptr_eq(map, &maps[0])));
    assert_eq!(
        maps[0].seated[0].rows[0].free,
        [
            SeatRange { first: 1, last: 2 },
            SeatRange { first: 5, last: 20 }
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn a_shared_map_is_reused_only_for_its_max_age() {
    let sale = sale(Duration::from_secs(1)).await;
    let event = sale.event.id();
    let first = sale.queries.seat_map(event).await.unwrap();
    let reads = sale.snapshots();
    sale.buy("alice", seats(&["A:2:1"])).await;
    tokio::time::advance(Duration::from_millis(500)).await;
    let reused = sale.queries.seat_map(event).await.unwrap();
    assert!(Arc::ptr_eq(&first, &reused), "within the max age");
    assert_eq!(sale.snapshots(), reads);
    tokio::time::advance(Duration::from_millis(600)).await;
    let fresh = sale.queries.seat_map(event).await.unwrap();
    assert_eq!(
        sale.snapshots(),
        reads + 1,
        "a map older than its max age is read again"
    );
    assert_eq!(
        fresh.seated[0].rows[1].state(1),
        Some(SeatAvailability::Held)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn without_a_max_age_every_reader_reads() {
    let sale = Arc::new(sale(Duration::ZERO).await);
    sale.queries.seat_map(sale.event.id()).await.unwrap();
    let before = sale.snapshots();
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let sale = sale.clone();
            tokio::spawn(async move { sale.queries.seat_map(sale.event.id()).await.unwrap() })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    assert_eq!(sale.snapshots() - before, 8);
}

#[tokio::test]
async fn the_map_is_ranges_per_row_and_counts_per_general_zone() {
    let sale = sale(Duration::ZERO).await;
    let order = sale.buy("alice", seats(&["A:1:1", "A:1:2", "A:1:7"])).await;
    sale.tickets
        .pay(ticketing_core::domain::PaymentNotice::for_order(
            &order,
            "pi_1".parse().unwrap(),
        ))
        .await
        .unwrap();
    sale.buy("bob", seats(&["A:1:8"])).await;
    sale.buy(
        "carol",
        Selection::General {
            zone: "GA".parse().unwrap(),
            quantity: 3,
        },
    )
    .await;
    let map = sale.queries.seat_map(sale.event.id()).await.unwrap();
    let zones: Vec<_> = map.seated.iter().map(|z| z.zone.to_string()).collect();
    assert_eq!(zones, ["A"], "only priced zones");
    let row = &map.seated[0].rows[0];
    assert_eq!(row.seats, 20);
    assert_eq!(
        row.free,
        [
            SeatRange { first: 3, last: 6 },
            SeatRange { first: 9, last: 20 }
        ]
    );
    assert_eq!(
        row.sold,
        [
            SeatRange { first: 1, last: 2 },
            SeatRange { first: 7, last: 7 }
        ]
    );
    assert_eq!(row.state(8), Some(SeatAvailability::Held));
    assert_eq!(
        map.seated[0].rows[1].free,
        [SeatRange { first: 1, last: 20 }]
    );
    let ga = &map.general[0];
    assert_eq!((ga.capacity, ga.taken, ga.remaining), (50, 3, 47));
}

#[tokio::test]
async fn a_zone_map_reads_only_its_zone() {
    let sale = sale(Duration::ZERO).await;
    sale.buy("alice", seats(&["A:2:20"])).await;
    sale.buy(
        "bob",
        Selection::General {
            zone: "GA".parse().unwrap(),
            quantity: 2,
        },
    )
    .await;
    let event = sale.event.id();
    let snapshots = sale.snapshots();
    let a = sale
        .queries
        .zone_seat_map(event, &"A".parse().unwrap())
        .await
        .unwrap();
    assert_eq!(a.seated.len(), 1);
    assert!(a.general.is_empty());
    assert_eq!(a.seated[0].rows[1].free, [SeatRange { first: 1, last: 19 }]);
    let ga = sale
        .queries
        .zone_seat_map(event, &"GA".parse().unwrap())
        .await
        .unwrap();
    assert!(ga.seated.is_empty());
    assert_eq!(ga.general[0].remaining, 48);
    assert_eq!(sale.snapshots(), snapshots, "no whole-event snapshot");
    assert_eq!(sale.lock.zone_snapshots.load(Ordering::SeqCst), 2);
    for zone in ["B", "NOPE"] {
        let result = sale
            .queries
            .zone_seat_map(event, &zone.parse().unwrap())
            .await;
        assert!(
            matches!(result, Err(Error::NotFound { what: "zone", .. })),
            "zone {zone}: {result:?}"
        );
    }
}

#[tokio::test]
async fn venues_over_a_cap_are_refused_naming_it() {
    let backends = Backends::in_memory();
    let limits = VenueLimits {
        max_seats: 1_000,
        max_rows_per_zone: 10,
        max_seats_per_row: 100,
    };
    let catalog = CatalogService::new(backends.clone()).with_limits(limits);
    let refused = |result: Result<Venue>| match result {
        Err(Error::InvalidRequest { reason, .. }) => reason,
        other => panic!("expected InvalidRequest, got {other:?}"),
    };
    assert!(
        catalog
            .create_venue("Fits", vec![seated("A", 10, 100)])
            .await
            .is_ok()
    );
    let reason = refused(
        catalog
            .create_venue("Big", vec![seated("A", 10, 100), seated("B", 1, 1)])
            .await,
    );
    assert!(
        reason.contains("the cap is 1000 seats per venue"),
        "{reason}"
    );
    let reason = refused(catalog.create_venue("Deep", vec![seated("A", 11, 1)]).await);
    assert!(reason.contains("10 rows per zone"), "{reason}");
    let reason = refused(
        catalog
            .create_venue("Wide", vec![seated("A", 1, 101)])
            .await,
    );
    assert!(reason.contains("100 seats per row"), "{reason}");
    // The defaults take the flash-sale bench's largest sale: 200,000 seats in rows of 100.
    let defaults = CatalogService::new(backends);
    assert!(
        defaults
            .create_venue("Arena", vec![seated("A", 2_000, 100)])
            .await
            .is_ok()
    );
    let reason = refused(
        defaults
            .create_venue("Arena+", vec![seated("A", 2_000, 100), seated("B", 1, 1)])
            .await,
    );
    assert!(reason.contains("200000 seats per venue"), "{reason}");
}
