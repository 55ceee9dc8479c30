//! Best available through the whole purchase flow: a stampede of best-available purchases never
//! sells a seat twice and leaves no orphan the choice could have avoided, and a keyed retry meets
//! its stored order.

use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::domain::{
    EventId, IdempotencyKey, Order, OrderId, RowLabel, SeatRef, Zone, ZoneCode, ZoneKind,
};
use crate::ports::{
    BestAvailableOutcome, BestAvailableRequest, HoldItem, HoldOutcome, HoldRequest, HoldSource,
    LockSnapshot, SeatLock, SeatState,
};
use crate::service::{BestAvailable, PurchaseRequest, RowRange, Selection};
use crate::{Error, Result};

use super::Harness;
use super::checks::race;
use super::fixture::{Fixture, Layout, customer_id};

fn zone_a() -> ZoneCode {
    "A".parse().expect("zone")
}

/// What a stampede of best-available purchases did.
#[derive(Debug, Default)]
pub struct StampedeReport {
    /// Purchases that got an order.
    pub orders: usize,
    /// Seats sold (held by those orders), as the repository's new active tickets count them.
    pub seats: usize,
    /// Purchases answered `NoAdjacentSeats`.
    pub no_block: usize,
}

/// A best-available purchase of `quantity` seats of zone A.
fn best(f: &Fixture, customer: &str, quantity: u32, rows: Option<RowRange>) -> PurchaseRequest {
    PurchaseRequest {
        event: f.event.id(),
        customer: customer_id(customer),
        selection: Selection::BestAvailable(BestAvailable {
            zone: Some(zone_a()),
            quantity,
            rows,
            max_price: None,
        }),
        idempotency_key: None,
        voucher: None,
        channel: None,
    }
}

/// The seats of an order must be `quantity` adjacent seats of one row of zone A.
#[track_caller]
fn assert_one_block(order: &Order, quantity: u32) -> Vec<SeatRef> {
    let mut seats: Vec<SeatRef> = order
        .tickets
        .iter()
        .filter_map(|t| t.seat.clone())
        .collect();
    seats.sort_by_key(|s| (s.row.clone(), s.number));
    assert_eq!(
        seats.len(),
        quantity as usize,
        "one ticket per seat asked for"
    );
    assert_eq!(order.tickets.len(), seats.len(), "only seated tickets");
    for pair in seats.windows(2) {
        assert!(
            pair[0].row == pair[1].row && pair[0].number + 1 == pair[1].number,
            "seats {} and {} are not side by side",
            pair[0],
            pair[1]
        );
    }
    seats
}

/// A seat lock that checks every best-available decision of the lock it wraps against the
/// reference: under a mutex (so that nothing changes between the look and the decision), it reads
/// the zone, computes [`BestAvailableRequest::choose`] (held by the core's property tests to a
/// brute-force enumeration: orphan-free whenever any block is), and asks the wrapped lock, which
/// must choose exactly that. Rebuilds take the same turn; other calls pass through.
pub struct ObservedLock {
    inner: Arc<dyn SeatLock>,
    turn: tokio::sync::Mutex<()>,
    decisions: AtomicUsize,
    wrong: Mutex<Vec<String>>,
}

impl ObservedLock {
    /// Wraps `inner`.
    pub fn new(inner: Arc<dyn SeatLock>) -> Self {
        Self {
            inner,
            turn: tokio::sync::Mutex::new(()),
            decisions: AtomicUsize::new(0),
            wrong: Mutex::new(Vec::new()),
        }
    }

    /// Panics naming every decision that differed from the reference; returns how many were
    /// checked.
    pub fn assert_every_decision_was_the_reference(&self) -> usize {
        let wrong = self.wrong.lock().unwrap_or_else(|e| e.into_inner());
        assert!(
            wrong.is_empty(),
            "best-available decisions off the reference: {wrong:#?}"
        );
        self.decisions.load(Ordering::SeqCst)
    }
}

#[async_trait]
impl SeatLock for ObservedLock {
    async fn hold(&self, request: &HoldRequest) -> Result<HoldOutcome> {
        self.inner.hold(request).await
    }
    async fn hold_best_available(
        &self,
        request: &BestAvailableRequest,
    ) -> Result<BestAvailableOutcome> {
        let _turn = self.turn.lock().await;
        let zone = Zone {
            code: request.zone.clone(),
            name: request.zone.to_string(),
            kind: ZoneKind::Seated {
                rows: request.rows.clone(),
            },
        };
        let Some(before) = self
            .inner
            .zone_snapshot(request.event, &zone, request.now)
            .await?
        else {
            return self.inner.hold_best_available(request).await;
        };
        let taken: Vec<&SeatRef> = before
            .seats
            .iter()
            .filter(|(_, state)| match state {
                SeatState::Held { order, .. } => *order != request.order,
                SeatState::Sold { .. } => true,
            })
            .map(|(seat, _)| seat)
            .collect();
        let expected = request.choose(taken);
        let outcome = self.inner.hold_best_available(request).await?;
        let got = match &outcome {
            BestAvailableOutcome::Held { seats } => Some(Some(seats.clone())),
            BestAvailableOutcome::NoBlock => Some(None),
            BestAvailableOutcome::NotLoaded => None,
        };
        if let Some(got) = got {
            self.decisions.fetch_add(1, Ordering::SeqCst);
            if got != expected {
                self.wrong
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push(format!(
                        "{} seats: chose {got:?}, the reference {expected:?}",
                        request.quantity
                    ));
            }
        }
        Ok(outcome)
    }
    async fn release(&self, event: EventId, order: OrderId, items: &[HoldItem]) -> Result<()> {
        self.inner.release(event, order, items).await
    }
    async fn mark_sold(&self, event: EventId, order: OrderId, items: &[HoldItem]) -> Result<()> {
        self.inner.mark_sold(event, order, items).await
    }
    async fn snapshot(&self, event: EventId, now: DateTime<Utc>) -> Result<Option<LockSnapshot>> {
        self.inner.snapshot(event, now).await
    }
    async fn zone_snapshot(
        &self,
        event: EventId,
        zone: &Zone,
        now: DateTime<Utc>,
    ) -> Result<Option<LockSnapshot>> {
        self.inner.zone_snapshot(event, zone, now).await
    }
    /// Takes the same turn as a best-available hold: a rebuild finishing between a hold's "not
    /// loaded" snapshot and its call would let that decision pass unchecked.
    async fn rebuild(&self, event: EventId, source: &dyn HoldSource) -> Result<()> {
        let _turn = self.turn.lock().await;
        self.inner.rebuild(event, source).await
    }
    async fn forget(&self, event: EventId) -> Result<()> {
        self.inner.forget(event).await
    }
}

/// The harness with its seat lock wrapped in an [`ObservedLock`], and that lock.
pub fn observed(harness: Harness) -> (Harness, Arc<ObservedLock>) {
    let lock = Arc::new(ObservedLock::new(harness.seat_lock.clone()));
    let observed = Harness {
        seat_lock: lock.clone(),
        ..harness
    };
    (observed, lock)
}

/// `buyers` customers each ask at once for 1 to 4 seats of zone A. Checks, by counting the
/// repository's active tickets: every seat at most once (the fixture's audit), exactly the seats
/// the orders hold active, every order one block of adjacent seats, and no `NoAdjacentSeats`
/// answer while a block of its size is still free at the end (seats are only taken during the
/// stampede). Orphans are the business of [`ObservedLock`], when the fixture's lock is one.
pub async fn best_available_stampede(f: &Arc<Fixture>, buyers: usize) -> StampedeReport {
    let rows = match &f.venue.zones()[0].kind {
        ZoneKind::Seated { rows } => rows.clone(),
        ZoneKind::GeneralAdmission { .. } => panic!("zone A is seated"),
    };
    let before: HashSet<SeatRef> = f.audit().await.into_iter().collect();
    let results = race(buyers, |i| {
        let f = f.clone();
        async move {
            let quantity = 1 + (i % 4) as u32;
            let result = f
                .tickets
                .purchase(best(&f, &format!("best{i}"), quantity, None))
                .await;
            (quantity, result)
        }
    })
    .await;
    let mut report = StampedeReport::default();
    let mut refused = Vec::new();
    let mut sold = HashSet::new();
    for (quantity, result) in &results {
        match result {
            Ok(order) => {
                report.orders += 1;
                for seat in assert_one_block(order, *quantity) {
                    assert!(sold.insert(seat.clone()), "seat {seat} in two orders");
                }
            }
            Err(Error::NoAdjacentSeats { .. }) => {
                report.no_block += 1;
                refused.push(*quantity);
            }
            Err(other) => panic!("a best-available purchase failed: {other}"),
        }
    }
    let active: HashSet<SeatRef> = f.audit().await.into_iter().collect();
    let new: HashSet<SeatRef> = active.difference(&before).cloned().collect();
    assert_eq!(
        new, sold,
        "the repository's new active seats are the orders' seats"
    );
    assert!(before.is_subset(&active), "no earlier sale lost");
    report.seats = new.len();
    let mut longest = 0;
    for row in &rows {
        let mut run = 0u32;
        for number in 1..=row.seats {
            let seat = SeatRef::new(zone_a(), row.label.clone(), number).expect("seat");
            run = if active.contains(&seat) { 0 } else { run + 1 };
            longest = longest.max(run);
        }
    }
    for quantity in refused {
        assert!(
            longest < quantity,
            "a buyer of {quantity} was refused, yet {longest} seats side by side are free"
        );
    }
    f.assert_seat_map_matches_repository().await;
    report
}

/// Best available end to end, on a lock that lost its state (the first purchase rebuilds it),
/// every lock decision checked against the reference ([`ObservedLock`]): a row range is kept; a
/// keyed purchase retried returns its order, and the key with another request is a conflict;
/// then 120 buyers of 1 to 4 seats for the 72 seats left (a sell-out) never share a seat
/// ([`best_available_stampede`]).
pub async fn best_available_sells_blocks_without_orphans(harness: Harness) {
    let (harness, observer) = observed(harness);
    let f = Arc::new(
        Fixture::new(
            &harness,
            Layout {
                rows: 8,
                seats_per_row: 12,
                limit: 4,
                ..Layout::default()
            },
        )
        .await,
    );
    let label = |n: u32| -> RowLabel { n.to_string().parse().expect("row") };
    // Rows 7 and 8 first, by range, keyed.
    let mut keyed = best(
        &f,
        "ranged",
        2,
        Some(RowRange {
            first: label(7),
            last: label(8),
        }),
    );
    keyed.idempotency_key = Some(IdempotencyKey::new("best-1").expect("key"));
    (harness.wipe_seat_lock)().await;
    let order = f
        .tickets
        .purchase(keyed.clone())
        .await
        .expect("a ranged purchase");
    let seats = assert_one_block(&order, 2);
    assert_eq!(seats[0].row, label(7), "the best row of the range");
    let again = f.tickets.purchase(keyed.clone()).await.expect("the retry");
    assert_eq!(
        again.id, order.id,
        "a retried keyed purchase returns its order"
    );
    assert_eq!(assert_one_block(&again, 2), seats, "with its seats");
    let mut other = keyed.clone();
    if let Selection::BestAvailable(wanted) = &mut other.selection {
        wanted.quantity = 4;
    }
    assert!(
        matches!(
            f.tickets.purchase(other).await,
            Err(Error::IdempotencyConflict { .. })
        ),
        "the key with another request"
    );
    // Fill rows 7 and 8 so that the stampede's rows are 1 to 6, then the stampede.
    let mut filler = 0;
    loop {
        filler += 1;
        let request = best(
            &f,
            &format!("filler{filler}"),
            2,
            Some(RowRange {
                first: label(7),
                last: label(8),
            }),
        );
        match f.tickets.purchase(request).await {
            Ok(order) => {
                assert!(
                    assert_one_block(&order, 2)
                        .iter()
                        .all(|s| s.row >= label(7))
                );
            }
            Err(Error::NoAdjacentSeats { .. }) => break,
            Err(other) => panic!("filling rows 7 and 8: {other}"),
        }
    }
    assert!(filler > 6, "rows 7 and 8 took pairs until no pair fits");
    let report = best_available_stampede(&f, 120).await;
    assert!(report.seats >= 6 * 12, "rows 1 to 6 sell out: {report:?}");
    assert!(report.no_block > 0, "{report:?}");
    let decisions = observer.assert_every_decision_was_the_reference();
    assert!(decisions >= 120, "{decisions} decisions checked");
    harness.finish().await;
}
