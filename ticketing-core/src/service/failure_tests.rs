//! The purchase's failure paths, with mocked ports: what happens when the repository or the seat
//! lock fails at each step.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{TimeDelta, Utc};
use mockall::predicate::always;

use crate::domain::{Currency, EventSpec, Money, Row, Zone, ZoneKind};
use crate::domain::{EventId, OrderId};
use crate::memory::InMemoryCatalog;
use crate::ports::{
    BestAvailableOutcome, BestAvailableRequest, HoldItem, HoldOutcome, HoldRequest, HoldSource,
    LockSnapshot, MockTicketRepository, SeatLock, SystemClock, UuidV7Ids,
};
use crate::service::{
    Backends, CatalogService, PurchaseRequest, Selection, ServiceConfig, TicketService,
};
use crate::{Error, Result};

/// The seat lock's calls without the rebuild source: mockall cannot mock an `async_trait` method
/// that takes `&dyn Trait` (asomers/mockall#371), so the mock sits behind [`MockedLock`].
#[mockall::automock]
trait LockCalls: Send + Sync {
    fn hold(&self, request: &HoldRequest) -> Result<HoldOutcome>;
    fn hold_best_available(&self, request: &BestAvailableRequest) -> Result<BestAvailableOutcome>;
    fn release(&self, event: EventId, order: OrderId, items: &[HoldItem]) -> Result<()>;
    fn mark_sold(&self, event: EventId, order: OrderId, items: &[HoldItem]) -> Result<()>;
    fn snapshot(&self, event: EventId) -> Result<Option<LockSnapshot>>;
    fn rebuild(&self, event: EventId) -> Result<()>;
    fn forget(&self, event: EventId) -> Result<()>;
}

/// A [`SeatLock`] whose every call goes to the mocked [`LockCalls`].
struct MockedLock(MockLockCalls);

#[async_trait::async_trait]
impl SeatLock for MockedLock {
    async fn hold(&self, request: &HoldRequest) -> Result<HoldOutcome> {
        self.0.hold(request)
    }
    async fn hold_best_available(
        &self,
        request: &BestAvailableRequest,
    ) -> Result<BestAvailableOutcome> {
        self.0.hold_best_available(request)
    }
    async fn release(&self, event: EventId, order: OrderId, items: &[HoldItem]) -> Result<()> {
        self.0.release(event, order, items)
    }
    async fn mark_sold(&self, event: EventId, order: OrderId, items: &[HoldItem]) -> Result<()> {
        self.0.mark_sold(event, order, items)
    }
    async fn snapshot(
        &self,
        event: EventId,
        _: chrono::DateTime<Utc>,
    ) -> Result<Option<LockSnapshot>> {
        self.0.snapshot(event)
    }
    async fn zone_snapshot(
        &self,
        event: EventId,
        _: &crate::domain::Zone,
        _: chrono::DateTime<Utc>,
    ) -> Result<Option<LockSnapshot>> {
        self.0.snapshot(event)
    }
    async fn rebuild(&self, event: EventId, _: &dyn HoldSource) -> Result<()> {
        self.0.rebuild(event)
    }
    async fn forget(&self, event: EventId) -> Result<()> {
        self.0.forget(event)
    }
}

fn boom(what: &str) -> Error {
    Error::unavailable("mock", std::io::Error::other(what.to_string()))
}

/// A service with a real in-memory catalog holding one on-sale event, and the given mocks.
async fn service(
    lock: MockLockCalls,
    mut tickets: MockTicketRepository,
) -> (TicketService, PurchaseRequest) {
    // The event's channels: read once, then shared for `channel_max_age` (a second).
    tickets
        .expect_channels()
        .times(0..=1)
        .returning(|_| Ok(Vec::new()));
    let catalog = Arc::new(InMemoryCatalog::new());
    let setup = Backends {
        catalog: catalog.clone(),
        ..Backends::in_memory()
    };
    let catalog_service = CatalogService::new(setup);
    let venue = catalog_service
        .create_venue(
            "Hall",
            vec![Zone {
                code: "A".parse().unwrap(),
                name: "A".into(),
                kind: ZoneKind::Seated {
                    rows: vec![Row {
                        label: "1".parse().unwrap(),
                        seats: 10,
                    }],
                },
            }],
        )
        .await
        .unwrap();
    let eur = Currency::new("EUR").unwrap();
    let event = catalog_service
        .create_event(EventSpec {
            name: "Show".into(),
            venue_id: venue.id(),
            sale_opens: Utc::now() - TimeDelta::hours(1),
            sale_closes: Utc::now() + TimeDelta::hours(1),
            prices: BTreeMap::from([("A".parse().unwrap(), Money::new(1000, eur))]),
            hold_time: TimeDelta::minutes(5),
            per_customer_limit: 4,
        })
        .await
        .unwrap();
    let backends = Backends {
        catalog,
        tickets: Arc::new(tickets),
        seat_lock: Arc::new(MockedLock(lock)),
        clock: Arc::new(SystemClock),
        ids: Arc::new(UuidV7Ids),
        waiting_room: Arc::new(crate::memory::InMemoryWaitingRoom::new()),
        waiting_list: None,
    };
    let request = PurchaseRequest {
        event: event.id(),
        customer: "alice".parse().unwrap(),
        selection: Selection::Seats(vec!["A:1:1".parse().unwrap(), "A:1:2".parse().unwrap()]),
        idempotency_key: None,
        voucher: None,
        channel: None,
    };
    (
        TicketService::new(backends, ServiceConfig::default()),
        request,
    )
}

fn lock_that_holds() -> MockLockCalls {
    let mut lock = MockLockCalls::new();
    lock.expect_hold()
        .times(1)
        .returning(|_| Ok(HoldOutcome::Held));
    lock
}

#[tokio::test]
async fn persist_failure_releases_the_holds_of_the_same_order() {
    let mut lock = lock_that_holds();
    let held = Arc::new(std::sync::Mutex::new(None));
    let seen = held.clone();
    lock.expect_release()
        .times(1)
        .returning(move |_, order, items| {
            *seen.lock().unwrap() = Some((order, items.to_vec()));
            Ok(())
        });
    let mut tickets = MockTicketRepository::new();
    tickets
        .expect_insert_order()
        .times(1)
        .returning(|_| Err(boom("disk full")));
    tickets.expect_order().times(1).returning(|_| Ok(None));
    let (service, request) = service(lock, tickets).await;

    let result = service.purchase(request).await;
    assert!(
        matches!(result, Err(Error::Unavailable { .. })),
        "got {result:?}"
    );
    let (_, items) = held.lock().unwrap().clone().expect("release was called");
    let seats: Vec<String> = items
        .iter()
        .map(|i| match i {
            HoldItem::Seat(s) => s.key(),
            HoldItem::General { zone, .. } => zone.to_string(),
        })
        .collect();
    assert_eq!(seats, ["A:1:1", "A:1:2"]);
}

#[tokio::test]
async fn seats_taken_in_the_database_keep_their_stale_hold_and_free_the_rest() {
    let mut lock = lock_that_holds();
    // The seat the database says is taken stays held (the lock was stale); only the other is freed.
    lock.expect_release()
        .times(1)
        .withf(|_, _, items| items == [HoldItem::Seat("A:1:1".parse().unwrap())])
        .returning(|_, _, _| Ok(()));
    let mut tickets = MockTicketRepository::new();
    tickets.expect_insert_order().times(1).returning(|_| {
        Err(Error::SeatsTaken {
            seats: vec!["A:1:2".parse().unwrap()],
        })
    });
    let (service, request) = service(lock, tickets).await;
    match service.purchase(request).await {
        Err(Error::SeatsTaken { seats }) => assert_eq!(seats[0].key(), "A:1:2"),
        other => panic!("expected SeatsTaken, got {other:?}"),
    }
}

#[tokio::test]
async fn release_failing_too_surfaces_the_persist_error_without_panicking() {
    let mut lock = lock_that_holds();
    lock.expect_release()
        .times(1)
        .returning(|_, _, _| Err(boom("redis gone")));
    let mut tickets = MockTicketRepository::new();
    tickets
        .expect_insert_order()
        .times(1)
        .returning(|_| Err(boom("db gone")));
    tickets.expect_order().times(1).returning(|_| Ok(None));
    let (service, request) = service(lock, tickets).await;
    let result: Result<_> = service.purchase(request).await;
    match result {
        Err(Error::Unavailable { source, .. }) => assert_eq!(source.to_string(), "db gone"),
        other => panic!("expected the persist error, got {other:?}"),
    }
}

#[tokio::test]
async fn seat_lock_unavailable_is_unavailable_and_touches_no_database() {
    let mut lock = MockLockCalls::new();
    lock.expect_hold()
        .times(1)
        .returning(|_| Err(boom("connection refused")));
    let mut tickets = MockTicketRepository::new();
    tickets.expect_insert_order().never();
    tickets.expect_idempotency_record().never();
    let (service, request) = service(lock, tickets).await;
    let result = service.purchase(request).await;
    assert!(
        matches!(result, Err(Error::Unavailable { .. })),
        "got {result:?}"
    );
}

#[tokio::test]
async fn a_loser_costs_one_hold_and_no_repository_call() {
    let mut lock = MockLockCalls::new();
    lock.expect_hold().times(1).returning(|_| {
        Ok(HoldOutcome::Taken {
            seats: vec!["A:1:1".parse().unwrap()],
            zones: vec![],
        })
    });
    // A mock with no other expectations fails the test on any other call.
    let tickets = MockTicketRepository::new();
    let (service, request) = service(lock, tickets).await;
    assert!(matches!(
        service.purchase(request).await,
        Err(Error::SeatsTaken { .. })
    ));
}

#[tokio::test]
async fn a_lock_that_never_loads_gives_up_with_unavailable() {
    let mut lock = MockLockCalls::new();
    lock.expect_hold().returning(|_| Ok(HoldOutcome::NotLoaded));
    lock.expect_rebuild().with(always()).returning(|_| Ok(()));
    let tickets = MockTicketRepository::new();
    let (service, request) = service(lock, tickets).await;
    let result = service.purchase(request).await;
    assert!(
        matches!(result, Err(Error::Unavailable { .. })),
        "got {result:?}"
    );
}

#[tokio::test]
async fn a_commit_whose_answer_was_lost_is_a_success_and_keeps_its_holds() {
    let lock = lock_that_holds(); // no release expected: the mock fails on any call
    let written = Arc::new(std::sync::Mutex::new(None));
    let mut tickets = MockTicketRepository::new();
    let seen = written.clone();
    tickets
        .expect_insert_order()
        .times(1)
        .returning(move |new| {
            *seen.lock().unwrap() = Some(new.order.clone());
            Err(boom("connection lost during COMMIT"))
        });
    let stored = written.clone();
    tickets
        .expect_order()
        .times(1)
        .returning(move |_| Ok(stored.lock().unwrap().clone()));
    let (service, request) = service(lock, tickets).await;
    let order = service
        .purchase(request)
        .await
        .expect("the committed order");
    assert_eq!(Some(order), written.lock().unwrap().clone());
}

#[tokio::test]
async fn an_unknown_outcome_that_cannot_be_checked_keeps_the_holds_until_they_lapse() {
    let lock = lock_that_holds(); // no release expected
    let mut tickets = MockTicketRepository::new();
    tickets
        .expect_insert_order()
        .times(1)
        .returning(|_| Err(boom("db gone")));
    tickets
        .expect_order()
        .times(1)
        .returning(|_| Err(boom("db still gone")));
    let (service, request) = service(lock, tickets).await;
    let result = service.purchase(request).await;
    assert!(
        matches!(result, Err(Error::Unavailable { .. })),
        "got {result:?}"
    );
}
