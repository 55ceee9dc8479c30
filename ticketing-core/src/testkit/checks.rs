//! The checks. Each takes a fresh [`Harness`], runs real concurrency where the invariant is about
//! concurrency, counts the outcome in the repository, and tears the harness down when it passed.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use chrono::TimeDelta;
use tokio::sync::Barrier;

use crate::Error;
use crate::domain::{
    CustomerId, IdempotencyKey, OutboxKind, PaymentNotice, PaymentRef, TicketAction, TicketStatus,
};
use crate::ports::{Clock, HoldItem, HoldOutcome, HoldRequest, ManualClock};
use crate::service::{SeatAvailability, Selection};

use super::Harness;
use super::fixture::{Fixture, Layout, PRICE_MINOR, outcome};

/// Runs `n` copies of `task` at once (released together by a barrier) and returns their results
/// in task order.
pub(super) async fn race<T, F, Fut>(n: usize, task: F) -> Vec<T>
where
    T: Send + 'static,
    F: Fn(usize) -> Fut,
    Fut: std::future::Future<Output = T> + Send + 'static,
{
    let barrier = Arc::new(Barrier::new(n));
    let handles: Vec<_> = (0..n)
        .map(|i| {
            let barrier = barrier.clone();
            let fut = task(i);
            tokio::spawn(async move {
                barrier.wait().await;
                fut.await
            })
        })
        .collect();
    let mut results = Vec::with_capacity(n);
    for handle in handles {
        results.push(handle.await.expect("task panicked"));
    }
    results
}

/// Races `n` purchases, the `i`-th asking for `request(&f, i)`, through the fixture's service.
pub(super) async fn race_purchases(
    f: &Arc<Fixture>,
    n: usize,
    request: impl Fn(&Fixture, usize) -> crate::service::PurchaseRequest,
) -> Vec<crate::Result<crate::domain::Order>> {
    race(n, |i| {
        let (f, request) = (f.clone(), request(f, i));
        async move { f.tickets.purchase(request).await }
    })
    .await
}

pub(super) fn count(outcomes: &[&'static str]) -> HashMap<&'static str, usize> {
    let mut counts = HashMap::new();
    for o in outcomes {
        *counts.entry(*o).or_default() += 1;
    }
    counts
}

/// A purchase, the ticket and order queries, payment, sold count, revenue, seat map, cancel, and
/// one outbox row per state change, in order.
pub async fn lifecycle_round_trip(harness: Harness) {
    let f = Fixture::new(&harness, Layout::default()).await;
    let after = f
        .backends
        .tickets
        .outbox_after(0, 10_000)
        .await
        .expect("outbox")
        .last()
        .map_or(0, |e| e.seq);
    let order = f.buy("alice", vec![f.seat(0), f.seat(1)]).await;
    assert_eq!(order.status, TicketStatus::PendingPayment);
    assert_eq!(order.tickets.len(), 2);
    assert_eq!(order.total.minor, 2 * PRICE_MINOR);
    assert_eq!(order.expires_at, f.clock.now() + f.event.hold_time());
    let ticket = f
        .queries
        .ticket(order.tickets[0].id)
        .await
        .expect("ticket by id");
    assert_eq!(ticket, order.tickets[0]);
    assert_eq!(f.queries.order(order.id).await.expect("order"), order);
    let map = f.queries.seat_map(f.event.id()).await.expect("seat map");
    assert_eq!(
        map.seats()
            .filter(|s| s.state == SeatAvailability::Held)
            .count(),
        2
    );

    f.clock.advance(TimeDelta::seconds(5));
    let paid = f
        .tickets
        .pay(PaymentNotice::for_order(
            &order,
            PaymentRef::new("pay_1").unwrap(),
        ))
        .await
        .expect("pay");
    assert_eq!(paid.status, TicketStatus::Paid);
    assert!(
        paid.tickets
            .iter()
            .all(|t| t.paid_at == Some(f.clock.now()))
    );
    assert_eq!(
        f.queries
            .sold_count(f.event.id())
            .await
            .expect("sold count"),
        2
    );
    let revenue = f
        .queries
        .revenue(f.venue.id(), f.event.id())
        .await
        .expect("revenue");
    assert_eq!(revenue.minor, 2 * PRICE_MINOR);
    assert_eq!(revenue.currency.as_str(), "EUR");
    f.assert_seat_map_matches_repository().await;

    let other = f.buy("bob", vec![f.seat(2)]).await;
    let cancelled = f.tickets.cancel(other.id).await.expect("cancel");
    assert_eq!(cancelled.status, TicketStatus::Cancelled);
    f.buy("carol", vec![f.seat(2)]).await; // the cancelled seat is free again
    f.assert_seat_map_matches_repository().await;

    let rows = f
        .backends
        .tickets
        .outbox_after(after, 10_000)
        .await
        .expect("outbox");
    let kinds: Vec<(crate::domain::OrderId, OutboxKind)> = rows
        .iter()
        .map(|e| (e.event.order_id, e.event.kind))
        .collect();
    assert!(
        rows.windows(2).all(|w| w[0].seq < w[1].seq),
        "outbox sequence must increase"
    );
    let of = |id| {
        kinds
            .iter()
            .filter(|(o, _)| *o == id)
            .map(|(_, k)| *k)
            .collect::<Vec<_>>()
    };
    assert_eq!(
        of(order.id),
        vec![OutboxKind::TicketReserved, OutboxKind::TicketPaid]
    );
    assert_eq!(
        of(other.id),
        vec![OutboxKind::TicketReserved, OutboxKind::TicketCancelled]
    );
    assert_eq!(rows[0].event.ticket_ids.len(), 2);
    harness.finish().await;
}

/// Invariant 1: 64 buyers race for 10 seats → exactly 10 active tickets, each seat once, 54 clean
/// `SeatsTaken`. Then overlapping two-seat orders: all-or-nothing, still each seat once.
pub async fn seats_are_sold_once(harness: Harness) {
    let f = Arc::new(
        Fixture::new(
            &harness,
            Layout {
                limit: 4,
                ..Layout::default()
            },
        )
        .await,
    );
    let results = race_purchases(&f, 64, |f, i| {
        f.seats_request(&format!("buyer{i}"), vec![f.seat(i as u32 % 10)])
    })
    .await;
    let counts = count(&results.iter().map(outcome).collect::<Vec<_>>());
    assert_eq!(counts.get("OK"), Some(&10), "outcomes: {counts:?}");
    assert_eq!(counts.get("SEATS_TAKEN"), Some(&54), "outcomes: {counts:?}");
    for result in &results {
        if let Err(Error::SeatsTaken { seats }) = result {
            assert_eq!(seats.len(), 1, "a loser is told which seat is taken");
        }
    }
    let active = f.audit().await;
    assert_eq!(active.len(), 10);

    // Overlapping pairs (10,11), (11,12), … over seats 10..30: all-or-nothing holds.
    let results = race_purchases(&f, 40, |f, i| {
        let first = 10 + (i as u32 % 19);
        f.seats_request(&format!("pair{i}"), vec![f.seat(first), f.seat(first + 1)])
    })
    .await;
    for result in &results {
        match result {
            Ok(order) => assert_eq!(order.tickets.len(), 2),
            Err(Error::SeatsTaken { seats }) => assert!(!seats.is_empty()),
            Err(other) => panic!("unexpected {other}"),
        }
    }
    let winners = results.iter().filter(|r| r.is_ok()).count();
    let active = f.audit().await;
    assert_eq!(
        active.len(),
        10 + 2 * winners,
        "every winner got both seats and nobody got one"
    );
    assert!(
        winners >= 5,
        "at least every other pair can be sold: {winners}"
    );
    f.assert_seat_map_matches_repository().await;
    harness.finish().await;
}

/// Invariant 2: 500 buyers race for 100 general-admission places → exactly 100 tickets.
pub async fn general_admission_never_exceeds_capacity(harness: Harness) {
    let f = Arc::new(
        Fixture::new(
            &harness,
            Layout {
                general_capacity: 100,
                ..Layout::default()
            },
        )
        .await,
    );
    let results = race_purchases(&f, 500, |f, i| f.general_request(&format!("fan{i}"), 1)).await;
    let counts = count(&results.iter().map(outcome).collect::<Vec<_>>());
    assert_eq!(counts.get("OK"), Some(&100), "outcomes: {counts:?}");
    assert_eq!(counts.get("SOLD_OUT"), Some(&400), "outcomes: {counts:?}");
    f.audit().await;
    let active = f
        .backends
        .tickets
        .active_tickets(f.event.id())
        .await
        .expect("active");
    assert_eq!(active.iter().filter(|t| t.seat.is_none()).count(), 100);

    // Cancelling frees places that a new buyer can take; the map follows the repository.
    let order = results
        .iter()
        .find_map(|r| r.as_ref().ok())
        .expect("a winner");
    f.tickets.cancel(order.id).await.expect("cancel");
    f.tickets
        .purchase(f.general_request("late-fan", 1))
        .await
        .expect("a freed place");
    assert!(matches!(
        f.tickets.purchase(f.general_request("later-fan", 1)).await,
        Err(Error::SoldOut { .. })
    ));
    f.assert_seat_map_matches_repository().await;
    harness.finish().await;
}

/// Invariant 3: at the deadline a payment races the expiry sweep of another instance whose clock
/// is 1 ms ahead; over many rounds exactly one wins every time and the loser's answer says so.
/// A payment after the deadline is `PaymentTooLate`.
pub async fn payment_races_expiry_sweep(harness: Harness) {
    let f = Arc::new(
        Fixture::new(
            &harness,
            Layout {
                rows: 4,
                seats_per_row: 10,
                limit: 4,
                ..Layout::default()
            },
        )
        .await,
    );
    let rounds = 30u32;
    let (mut paid_wins, mut sweep_wins) = (0, 0);
    for round in 0..rounds {
        let order = f.buy(&format!("racer{round}"), vec![f.seat(round)]).await;
        let deadline = order.expires_at;
        let payer_clock = Arc::new(ManualClock::new(deadline - TimeDelta::milliseconds(1)));
        let sweeper_clock = Arc::new(ManualClock::new(f.sweep_due(&order)));
        let payer = f.service_with_clock(payer_clock);
        let sweeper = f.service_with_clock(sweeper_clock);
        let barrier = Arc::new(Barrier::new(2));
        let (b1, b2) = (barrier.clone(), barrier);
        let notice =
            PaymentNotice::for_order(&order, PaymentRef::new(format!("pay{round}")).unwrap());
        let pay = tokio::spawn(async move {
            b1.wait().await;
            payer.pay(notice).await
        });
        let sweep = tokio::spawn(async move {
            b2.wait().await;
            sweeper.expire_due().await
        });
        let (pay, sweep) = (
            pay.await.expect("pay task"),
            sweep.await.expect("sweep task").expect("sweep"),
        );
        let stored = f.queries.order(order.id).await.expect("order");
        match pay {
            Ok(paid) => {
                assert_eq!(
                    sweep, 0,
                    "round {round}: both the payment and the sweep won"
                );
                assert_eq!(paid.status, TicketStatus::Paid);
                assert_eq!(stored.status, TicketStatus::Paid);
                paid_wins += 1;
            }
            Err(Error::PaymentTooLate { .. }) => {
                assert_eq!(
                    sweep, 1,
                    "round {round}: the payment lost but nothing expired"
                );
                assert_eq!(stored.status, TicketStatus::Expired);
                sweep_wins += 1;
            }
            Err(other) => panic!("round {round}: unexpected payment error {other}"),
        }
    }
    assert_eq!(paid_wins + sweep_wins, rounds);

    // Late payment on the fixture's own clock: refused, and the ticket does not become PAID.
    let order = f.buy("late", vec![f.seat(35)]).await;
    f.clock.set(order.expires_at);
    let late = f
        .tickets
        .pay(PaymentNotice::for_order(
            &order,
            PaymentRef::new("late-pay").unwrap(),
        ))
        .await;
    assert!(
        matches!(late, Err(Error::PaymentTooLate { .. })),
        "got {late:?}"
    );
    assert_eq!(
        f.queries.order(order.id).await.unwrap().status,
        TicketStatus::PendingPayment
    );
    assert_eq!(
        f.tickets.expire_due().await.expect("sweep"),
        0,
        "the sweep leaves an order alone for the payment grace"
    );
    f.clock.set(f.sweep_due(&order));
    assert_eq!(f.tickets.expire_due().await.expect("sweep"), 1);
    let after_sweep = f
        .tickets
        .pay(PaymentNotice::for_order(
            &order,
            PaymentRef::new("late-pay").unwrap(),
        ))
        .await;
    assert!(
        matches!(after_sweep, Err(Error::PaymentTooLate { .. })),
        "got {after_sweep:?}"
    );
    f.audit().await;
    harness.finish().await;
}

/// Invariant 3: a PAID order changes only by refund; retries are idempotent; a refund frees the seat.
pub async fn paid_changes_only_by_refund(harness: Harness) {
    let f = Fixture::new(&harness, Layout::default()).await;
    let order = f.buy("payer", vec![f.seat(0)]).await;
    let reference = PaymentRef::new("pi_123").unwrap();
    let paid = f
        .tickets
        .pay(PaymentNotice::for_order(&order, reference.clone()))
        .await
        .expect("pay");
    assert_eq!(
        f.tickets
            .pay(PaymentNotice::for_order(&order, reference.clone()))
            .await
            .expect("same payment again"),
        paid
    );
    let other_ref = f
        .tickets
        .pay(PaymentNotice::for_order(
            &order,
            PaymentRef::new("pi_999").unwrap(),
        ))
        .await;
    assert!(
        matches!(
            other_ref,
            Err(Error::InvalidTransition {
                from: TicketStatus::Paid,
                ..
            })
        ),
        "got {other_ref:?}"
    );
    let cancel = f.tickets.cancel(order.id).await;
    assert!(
        matches!(
            cancel,
            Err(Error::InvalidTransition {
                from: TicketStatus::Paid,
                to: TicketStatus::Cancelled
            })
        ),
        "got {cancel:?}"
    );
    f.clock.advance(TimeDelta::days(2));
    assert_eq!(
        f.tickets.expire_due().await.expect("sweep"),
        0,
        "a PAID order never expires"
    );
    assert_eq!(
        f.queries.order(order.id).await.unwrap().status,
        TicketStatus::Paid
    );
    let taken = f
        .tickets
        .purchase(f.seats_request("other", vec![f.seat(0)]))
        .await;
    assert!(
        matches!(taken, Err(Error::SeatsTaken { .. })),
        "a sold seat stays sold: {taken:?}"
    );

    let refunded = f.tickets.refund(order.id).await.expect("refund");
    assert_eq!(refunded.status, TicketStatus::Refunded);
    assert_eq!(
        f.tickets
            .refund(order.id)
            .await
            .expect("refund again")
            .status,
        TicketStatus::Refunded
    );
    // The provider replaying the payment gets the ledger's answer (it paid this order) and
    // changes nothing; another payment for the refunded order is owed back.
    let replay = f
        .tickets
        .pay(PaymentNotice::for_order(&order, reference))
        .await
        .expect("replay");
    assert_eq!(replay.status, TicketStatus::Refunded);
    let pay_again = f
        .tickets
        .pay(PaymentNotice::for_order(
            &order,
            PaymentRef::new("pi_again").unwrap(),
        ))
        .await;
    assert!(
        matches!(
            pay_again,
            Err(Error::InvalidTransition {
                from: TicketStatus::Refunded,
                ..
            })
        ),
        "got {pay_again:?}"
    );
    assert_eq!(f.queries.sold_count(f.event.id()).await.unwrap(), 0);
    assert_eq!(
        f.queries
            .revenue(f.venue.id(), f.event.id())
            .await
            .unwrap()
            .minor,
        0
    );
    f.buy("other", vec![f.seat(0)]).await; // the refunded seat is for sale again
    let unknown = f
        .tickets
        .refund(crate::domain::OrderId::from_uuid(uuid::Uuid::now_v7()))
        .await;
    assert!(
        matches!(unknown, Err(Error::NotFound { .. })),
        "got {unknown:?}"
    );
    f.audit().await;
    harness.finish().await;
}

/// Invariant 4: a payment's `mark_sold` that arrives after the refund's release (two requests
/// racing, or a slow network) does not block the refunded seat for good.
pub async fn late_mark_sold_does_not_resurrect_a_refunded_seat(harness: Harness) {
    let f = Fixture::new(&harness, Layout::default()).await;
    let order = f.buy("late-mark", vec![f.seat(3)]).await;
    f.pay(&order, "pi_late").await;
    f.tickets.refund(order.id).await.expect("refund");
    let items = vec![HoldItem::Seat(f.seat(3))];
    f.backends
        .seat_lock
        .mark_sold(f.event.id(), order.id, &items)
        .await
        .expect("late mark_sold");
    f.assert_seat_map_matches_repository().await;
    f.buy("next", vec![f.seat(3)]).await;
    f.audit().await;
    harness.finish().await;
}

/// Invariant 4 when the process dies between a commit and its seat-lock update: the outbox
/// published to a [`SeatLockSync`](crate::service::SeatLockSync) repairs every missed update
/// (a refund's release, a payment's mark, a cancel's release), also when published twice.
pub async fn lost_lock_updates_are_repaired_from_the_outbox(harness: Harness) {
    let f = Fixture::new(&harness, Layout::default()).await;
    let repo = &f.backends.tickets();
    let head = repo
        .outbox_after(0, 1_000_000)
        .await
        .expect("outbox")
        .last()
        .map_or(0, |e| e.seq);
    let commit_only = |order, action, payment_ref: Option<&str>| crate::ports::Transition {
        order,
        action,
        now: f.clock.now(),
        payment_ref: payment_ref.map(|r| PaymentRef::new(r).unwrap()),
    };
    let refunded = f.buy("refunded", vec![f.seat(0)]).await;
    f.pay(&refunded, "pi_r").await;
    let paid = f.buy("paid", vec![f.seat(1)]).await;
    let cancelled = f.buy("cancelled", vec![f.seat(2)]).await;
    // Commits whose seat-lock updates never happen (the process died right after each).
    let t = TicketAction::Refund;
    assert!(
        repo.transition(&commit_only(refunded.id, t, None))
            .await
            .unwrap()
    );
    let t = TicketAction::Pay;
    assert!(
        repo.transition(&commit_only(paid.id, t, Some("pi_p")))
            .await
            .unwrap()
    );
    let t = TicketAction::Cancel;
    assert!(
        repo.transition(&commit_only(cancelled.id, t, None))
            .await
            .unwrap()
    );
    let stale = f.queries.seat_map(f.event.id()).await.expect("seat map");
    assert_eq!(
        stale.seats().next().expect("a seat").state,
        SeatAvailability::Sold,
        "the lock missed the refund"
    );

    let sync = crate::service::SeatLockSync::new(f.backends.clone(), f.config.clone());
    let entries = repo.outbox_after(head, 1_000_000).await.expect("outbox");
    crate::ports::EventSink::publish(&sync, &entries)
        .await
        .expect("mirror the outbox");
    crate::ports::EventSink::publish(&sync, &entries)
        .await
        .expect("a duplicate delivery is harmless");
    f.assert_seat_map_matches_repository().await;
    f.buy("next", vec![f.seat(0)]).await;
    f.buy("after-cancel", vec![f.seat(2)]).await;
    f.audit().await;
    harness.finish().await;
}

/// Invariant 4: a hold whose buyer vanished (no ticket written) blocks the seat only until its
/// deadline; an unpaid ticket is expired by the sweep and its seat sold again.
pub async fn abandoned_holds_free_their_seats(harness: Harness) {
    let f = Fixture::new(&harness, Layout::default()).await;
    let now = f.clock.now();
    // Load the lock, then "crash" after a hold: nothing persisted, nothing released.
    f.queries.seat_map(f.event.id()).await.expect("seat map");
    let ghost = crate::domain::OrderId::from_uuid(uuid::Uuid::now_v7());
    let until = now + TimeDelta::minutes(1);
    let held = f
        .backends
        .seat_lock
        .hold(&HoldRequest {
            event: f.event.id(),
            order: ghost,
            items: vec![HoldItem::Seat(f.seat(0))],
            now,
            until,
        })
        .await
        .expect("hold");
    assert_eq!(held, HoldOutcome::Held);
    let blocked = f
        .tickets
        .purchase(f.seats_request("bob", vec![f.seat(0)]))
        .await;
    assert!(
        matches!(blocked, Err(Error::SeatsTaken { .. })),
        "got {blocked:?}"
    );
    f.clock.set(until);
    let bob = f.buy("bob", vec![f.seat(0)]).await;
    f.pay(&bob, "bob-pays").await;

    // An unpaid ticket: blocked until the sweep expires it after its deadline.
    f.clock.advance(TimeDelta::seconds(1));
    let unpaid = f.buy("carol", vec![f.seat(1)]).await;
    f.clock
        .set(f.sweep_due(&unpaid) - TimeDelta::milliseconds(1));
    assert_eq!(f.tickets.expire_due().await.unwrap(), 0, "not due yet");
    f.clock.set(f.sweep_due(&unpaid));
    assert_eq!(f.tickets.expire_due().await.unwrap(), 1);
    assert_eq!(
        f.queries.order(unpaid.id).await.unwrap().status,
        TicketStatus::Expired
    );
    let blocked = f
        .tickets
        .purchase(f.seats_request("erin", vec![f.seat(0)]))
        .await;
    assert!(
        matches!(blocked, Err(Error::SeatsTaken { .. })),
        "bob's paid seat stays sold: {blocked:?}"
    );
    f.buy("dave", vec![f.seat(1)]).await;
    f.assert_seat_map_matches_repository().await;
    f.audit().await;
    harness.finish().await;
}

/// An event's seat-lock state is dropped once its sale closed plus its longest hold (the hold
/// time, or the extension policy's cap) plus the hold grace, not a millisecond before; a late read after that rebuilds it from the repository.
pub async fn closed_events_are_forgotten_by_the_seat_lock(harness: Harness) {
    let f = Fixture::new(&harness, Layout::default()).await;
    let paid = f.buy("closed", vec![f.seat(0)]).await;
    f.pay(&paid, "p-closed").await;
    f.buy("lapsing", vec![f.seat(1)]).await;
    let sweep = crate::service::ClosedEventSweep::new(f.backends.clone(), &f.config);
    let longest = f.config.hold_extension.longest_hold(f.event.hold_time());
    let due = f.event.sale_closes() + longest + f.config.grace();
    f.clock.set(due - TimeDelta::milliseconds(1));
    f.tickets.expire_due().await.expect("sweep");
    assert_eq!(sweep.forget_closed_events().await.unwrap(), 0, "not yet");
    let lock = f.backends.seat_lock();
    assert!(
        lock.snapshot(f.event.id(), f.clock.now())
            .await
            .unwrap()
            .is_some()
    );

    f.clock.set(due);
    assert_eq!(sweep.forget_closed_events().await.unwrap(), 1);
    assert!(
        lock.snapshot(f.event.id(), f.clock.now())
            .await
            .unwrap()
            .is_none(),
        "the event's state is gone"
    );
    assert_eq!(
        sweep.forget_closed_events().await.unwrap(),
        0,
        "forgotten once"
    );
    // A late read rebuilds from the repository: the paid seat is sold, the expired one free.
    f.assert_seat_map_matches_repository().await;
    let map = f.queries.seat_map(f.event.id()).await.expect("seat map");
    let state = |seat| map.seats().find(|v| v.seat == seat).map(|v| v.state);
    assert_eq!(state(f.seat(0)), Some(SeatAvailability::Sold));
    assert_eq!(state(f.seat(1)), Some(SeatAvailability::Free));
    harness.finish().await;
}

/// Invariant 5 after pruning: an idempotency record older than the cut-off is deleted, a younger
/// one stays, the order stays; the pruned key repeated makes no second order (an idempotency
/// conflict) and frees none of the stored order's seats.
pub async fn pruned_idempotency_keys_make_no_second_order(harness: Harness) {
    let f = Fixture::new(&harness, Layout::default()).await;
    let keyed = |key: &str, seats| crate::service::PurchaseRequest {
        idempotency_key: Some(IdempotencyKey::new(key).unwrap()),
        voucher: None,
        channel: None,
        ..f.seats_request("pruned", seats)
    };
    let old = f
        .tickets
        .purchase(keyed("old", vec![f.seat(0)]))
        .await
        .expect("old purchase");
    f.pay(&old, "p-old").await;
    f.clock.advance(TimeDelta::days(8));
    let young = f
        .tickets
        .purchase(keyed("young", vec![f.seat(1)]))
        .await
        .expect("young purchase");
    let repo = f.backends.tickets();
    let cut_off = f.clock.now() - TimeDelta::days(7);
    assert_eq!(repo.prune_idempotency_keys(cut_off, 100).await.unwrap(), 1);
    assert_eq!(repo.prune_idempotency_keys(cut_off, 100).await.unwrap(), 0);
    let customer = CustomerId::new("pruned").unwrap();
    let (old_key, young_key) = (
        IdempotencyKey::new("old").unwrap(),
        IdempotencyKey::new("young").unwrap(),
    );
    let record = |key| repo.idempotency_record(&customer, key);
    assert_eq!(
        record(&old_key).await.unwrap(),
        None,
        "older than the cut-off"
    );
    assert_eq!(
        record(&young_key).await.unwrap().map(|r| r.order_id),
        Some(young.id)
    );

    for seats in [vec![f.seat(0)], vec![f.seat(2)]] {
        let again = f.tickets.purchase(keyed("old", seats)).await;
        assert!(
            matches!(again, Err(Error::IdempotencyConflict { .. })),
            "a pruned key repeated: {again:?}"
        );
    }
    let stored = f.queries.order(old.id).await.expect("the order stays");
    assert_eq!(stored.status, TicketStatus::Paid);
    let taken = f
        .tickets
        .purchase(f.seats_request("other", vec![f.seat(0)]))
        .await;
    assert!(
        matches!(taken, Err(Error::SeatsTaken { .. })),
        "the paid seat stays sold: {taken:?}"
    );
    f.audit().await;
    harness.finish().await;
}

/// Invariant 5: the same key and request return the same order, also when 16 retries race; the
/// same key with another request is `IdempotencyConflict` and leaves no seat blocked.
pub async fn purchase_is_idempotent(harness: Harness) {
    let f = Arc::new(Fixture::new(&harness, Layout::default()).await);
    let key = IdempotencyKey::new("key-1").unwrap();
    let request = |seats| crate::service::PurchaseRequest {
        idempotency_key: Some(key.clone()),
        voucher: None,
        channel: None,
        ..f.seats_request("idem", seats)
    };
    let first = f
        .tickets
        .purchase(request(vec![f.seat(0), f.seat(1)]))
        .await
        .expect("first");
    let again = f
        .tickets
        .purchase(request(vec![f.seat(1), f.seat(0)]))
        .await
        .expect("retry, seats reordered");
    assert_eq!(again, first);

    let conflict = f.tickets.purchase(request(vec![f.seat(5)])).await;
    assert!(
        matches!(conflict, Err(Error::IdempotencyConflict { .. })),
        "got {conflict:?}"
    );
    f.buy("someone", vec![f.seat(5)]).await; // the conflicting request blocked nothing

    // 16 concurrent retries of one new request: one order, everyone gets it.
    let racing_key = IdempotencyKey::new("key-2").unwrap();
    let results = race_purchases(&f, 16, |f, _| crate::service::PurchaseRequest {
        idempotency_key: Some(racing_key.clone()),
        voucher: None,
        channel: None,
        ..f.seats_request("racer", vec![f.seat(10), f.seat(11)])
    })
    .await;
    let ids: HashSet<_> = results
        .iter()
        .map(|r| r.as_ref().expect("every retry succeeds").id)
        .collect();
    assert_eq!(ids.len(), 1, "all retries return one order");
    let stored = f
        .queries
        .order(*ids.iter().next().unwrap())
        .await
        .expect("stored");
    assert_eq!(stored.tickets.len(), 2);

    // Reusing a key for another general-admission quantity is a conflict that leaves the stored
    // order's places as they were.
    let ga_key = IdempotencyKey::new("key-ga").unwrap();
    let ga = |quantity| crate::service::PurchaseRequest {
        idempotency_key: Some(ga_key.clone()),
        voucher: None,
        channel: None,
        ..f.general_request("idem-ga", quantity)
    };
    f.tickets.purchase(ga(2)).await.expect("GA purchase");
    let reused = f.tickets.purchase(ga(3)).await;
    assert!(
        matches!(reused, Err(Error::IdempotencyConflict { .. })),
        "got {reused:?}"
    );
    f.assert_seat_map_matches_repository().await;

    // A retry after payment returns the paid order.
    f.pay(&first, "p1").await;
    let after_pay = f
        .tickets
        .purchase(request(vec![f.seat(0), f.seat(1)]))
        .await
        .expect("retry after pay");
    assert_eq!(after_pay.status, TicketStatus::Paid);
    assert_eq!(after_pay.id, first.id);
    f.audit().await;
    f.assert_seat_map_matches_repository().await;
    harness.finish().await;
}

/// Invariant 6: one customer with limit 4 fires 20 concurrent single-seat purchases → exactly 4
/// tickets, 16 `LimitExceeded`, and the 16 seats are free again.
pub async fn customer_limit_holds_under_concurrency(harness: Harness) {
    let f = Arc::new(
        Fixture::new(
            &harness,
            Layout {
                limit: 4,
                ..Layout::default()
            },
        )
        .await,
    );
    let results = race_purchases(&f, 20, |f, i| {
        f.seats_request("greedy", vec![f.seat(i as u32)])
    })
    .await;
    let counts = count(&results.iter().map(outcome).collect::<Vec<_>>());
    assert_eq!(counts.get("OK"), Some(&4), "outcomes: {counts:?}");
    assert_eq!(
        counts.get("LIMIT_EXCEEDED"),
        Some(&16),
        "outcomes: {counts:?}"
    );
    f.audit().await;
    f.assert_seat_map_matches_repository().await;
    let over = f.tickets.purchase(f.general_request("greedy", 1)).await;
    assert!(
        matches!(over, Err(Error::LimitExceeded { limit: 4 })),
        "GA counts too: {over:?}"
    );
    // Cancelling one order frees one slot of the limit.
    let order = results.iter().find_map(|r| r.as_ref().ok()).unwrap();
    f.tickets.cancel(order.id).await.expect("cancel");
    f.tickets
        .purchase(f.general_request("greedy", 1))
        .await
        .expect("a freed slot");
    harness.finish().await;
}

/// Invariant 7: the seat lock loses all its state several times during a concurrent sale → no
/// seat sold twice, every acknowledged purchase stored, and availability rebuilt to match.
pub async fn seat_lock_data_loss_is_harmless(harness: Harness) {
    let f = Arc::new(
        Fixture::new(
            &harness,
            Layout {
                rows: 4,
                seats_per_row: 10,
                limit: 2,
                ..Layout::default()
            },
        )
        .await,
    );
    let wipe = harness.wipe_seat_lock.clone();
    let mut acknowledged = Vec::new();
    for wave in 0..5u32 {
        let results = race(48, |i| {
            let f = f.clone();
            let wipe = wipe.clone();
            async move {
                if i == 0 {
                    wipe().await;
                }
                let seat = f.seat((i as u32 * 7 + wave * 3) % 40);
                let request = if i % 5 == 4 {
                    f.general_request(&format!("w{wave}c{i}"), 1)
                } else {
                    f.seats_request(&format!("w{wave}c{i}"), vec![seat])
                };
                f.tickets.purchase(request).await
            }
        })
        .await;
        for result in results {
            match result {
                Ok(order) => acknowledged.push(order),
                Err(Error::SeatsTaken { .. } | Error::SoldOut { .. }) => {}
                Err(other) => panic!("wave {wave}: unexpected {other}"),
            }
        }
        f.audit().await;
    }
    for order in &acknowledged {
        let stored = f
            .queries
            .order(order.id)
            .await
            .expect("acknowledged order is stored");
        assert_eq!(stored.tickets.len(), order.tickets.len());
    }
    // Pay some, wipe again: the rebuilt map shows them sold.
    for order in acknowledged.iter().take(5) {
        f.pay(order, &format!("p-{}", order.id)).await;
    }
    wipe().await;
    f.assert_seat_map_matches_repository().await;
    f.audit().await;
    harness.finish().await;
}

/// Invariant 7 with a rebuild of many pages ([`REBUILD_PAGE`](super::REBUILD_PAGE) tickets each,
/// so one order's tickets fall on several): after the lock lost its state, buyers race for every
/// seat and for the general-admission zone while the rebuild runs. Exactly the seats nobody had
/// are sold, each once, the zone fills to its capacity and no further, and the rebuilt seat map
/// shows every earlier sale, paid ones as sold.
pub async fn a_paged_rebuild_keeps_every_sale(harness: Harness) {
    const SEATS: u32 = 40;
    const TAKEN_SEATS: u32 = 24;
    const CAPACITY: u32 = 30;
    let f = Arc::new(
        Fixture::new(
            &harness,
            Layout {
                rows: 4,
                seats_per_row: SEATS / 4,
                general_capacity: CAPACITY,
                limit: 4,
                ..Layout::default()
            },
        )
        .await,
    );
    let mut orders = Vec::new();
    for k in 0..TAKEN_SEATS / 2 {
        let seats = vec![f.seat(2 * k), f.seat(2 * k + 1)];
        orders.push(f.buy(&format!("seated-{k}"), seats).await);
    }
    for k in 0..5 {
        let request = f.general_request(&format!("standing-{k}"), 3);
        orders.push(f.tickets.purchase(request).await.expect("places"));
    }
    for order in orders.iter().step_by(3) {
        f.pay(order, &format!("p-{}", order.id)).await;
    }
    (harness.wipe_seat_lock)().await;

    // 40 buyers of one seat each and 7 of 3 places, for the 15 places left.
    let results = race(SEATS as usize + 7, |i| {
        let f = f.clone();
        async move {
            let request = match u32::try_from(i).expect("small") {
                n if n < SEATS => f.seats_request(&format!("late-{n}"), vec![f.seat(n)]),
                n => f.general_request(&format!("late-{n}"), 3),
            };
            f.tickets.purchase(request).await
        }
    })
    .await;
    let mut sold = Vec::new();
    let mut places = 0;
    for (i, result) in results.iter().enumerate() {
        match (i < SEATS as usize, result) {
            (true, Ok(order)) => sold.push(order.tickets[0].seat.clone().expect("a seat")),
            (false, Ok(order)) => places += order.tickets.len() as u32,
            (_, Err(Error::SeatsTaken { .. } | Error::SoldOut { .. })) => {}
            (_, Err(other)) => panic!("buyer {i}: unexpected {other}"),
        }
    }
    sold.sort();
    let mut free: Vec<_> = (TAKEN_SEATS..SEATS).map(|n| f.seat(n)).collect();
    free.sort();
    assert_eq!(sold, free, "exactly the seats nobody had are sold");
    assert_eq!(places, CAPACITY - 15, "the zone fills to its capacity");
    f.audit().await;
    f.assert_seat_map_matches_repository().await;
    harness.finish().await;
}

/// Bad input is a typed error and writes nothing.
pub async fn bad_requests_write_nothing(harness: Harness) {
    let f = Fixture::new(&harness, Layout::default()).await;
    let unknown_event = crate::service::PurchaseRequest {
        event: crate::domain::EventId::from_uuid(uuid::Uuid::now_v7()),
        ..f.seats_request("x", vec![f.seat(0)])
    };
    assert!(matches!(
        f.tickets.purchase(unknown_event).await,
        Err(Error::NotFound { what: "event", .. })
    ));
    let cases = vec![
        (Selection::Seats(vec![]), "INVALID_REQUEST"),
        (
            Selection::Seats(vec![f.seat(0), f.seat(0)]),
            "INVALID_REQUEST",
        ),
        (
            Selection::Seats(vec!["A:99:1".parse().unwrap()]),
            "INVALID_REQUEST",
        ),
        (
            Selection::Seats(vec!["GA:1:1".parse().unwrap()]),
            "INVALID_REQUEST",
        ),
        (
            Selection::Seats((0..5).map(|n| f.seat(n)).collect()),
            "LIMIT_EXCEEDED",
        ),
        (
            Selection::General {
                zone: "A".parse().unwrap(),
                quantity: 1,
            },
            "INVALID_REQUEST",
        ),
        (
            Selection::General {
                zone: "GA".parse().unwrap(),
                quantity: 0,
            },
            "INVALID_REQUEST",
        ),
        (
            Selection::General {
                zone: "NOPE".parse().unwrap(),
                quantity: 1,
            },
            "INVALID_REQUEST",
        ),
    ];
    for (selection, code) in cases {
        let request = crate::service::PurchaseRequest {
            selection: selection.clone(),
            ..f.seats_request("x", vec![])
        };
        let result = f.tickets.purchase(request).await;
        assert_eq!(outcome(&result), code, "{selection:?}");
    }
    f.clock.advance(TimeDelta::days(31));
    let closed = f
        .tickets
        .purchase(f.seats_request("x", vec![f.seat(0)]))
        .await;
    assert!(
        matches!(closed, Err(Error::NotOnSale { .. })),
        "got {closed:?}"
    );
    assert!(
        f.backends
            .tickets
            .active_tickets(f.event.id())
            .await
            .unwrap()
            .is_empty()
    );
    let unknown_order = crate::domain::OrderId::from_uuid(uuid::Uuid::now_v7());
    assert!(matches!(
        f.tickets
            .pay(PaymentNotice {
                order: unknown_order,
                reference: PaymentRef::new("x").unwrap(),
                amount: crate::domain::Money::new(100, "EUR".parse().unwrap()),
            })
            .await,
        Err(Error::NotFound { .. })
    ));
    assert!(matches!(
        f.queries
            .ticket(crate::domain::TicketId::from_uuid(uuid::Uuid::now_v7()))
            .await,
        Err(Error::NotFound { .. })
    ));
    harness.finish().await;
}
