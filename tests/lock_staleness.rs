//! Deterministic reproductions of seat-lock staleness found by the chaos runs (see the README's
//! "Correctness" section). The database stays right; the seat lock (and so the seat map) showed a
//! PAID seat as held, which turns into "free" once the hold's deadline passes, so buyers are sent
//! to the database for a seat that is sold.
//!

use async_trait::async_trait;
use ticketing_core::Result;
use ticketing_core::domain::{
    EventId, PaymentNotice, PaymentRef, TicketAction, TicketId, TicketStatus,
};
use ticketing_core::ports::{Clock, HoldPage, HoldSource, Transition};
use ticketing_core::service::{RepositoryHolds, TicketService};
use ticketing_core::testkit::{Fixture, Layout};
use ticketing_tests::redis_mysql_harness;

/// A rebuild source that reads the repository and then, before handing the holds over, lets a
/// payment commit: the interleaving of a rebuild's read and write with a concurrent payment.
struct PaymentDuringTheRead {
    inner: RepositoryHolds,
    tickets: TicketService,
    payment: PaymentNotice,
}

#[async_trait]
impl HoldSource for PaymentDuringTheRead {
    async fn active_holds(&self, event: EventId, after: Option<TicketId>) -> Result<HoldPage> {
        let holds = self.inner.active_holds(event, after).await?;
        // Commits PAID; its mark_sold finds the event not loaded (the rebuild is in progress)
        // and writes nothing.
        let paid = self.tickets.pay(self.payment.clone()).await?;
        assert_eq!(paid.status, TicketStatus::Paid);
        Ok(holds)
    }
}

/// A payment that commits between a rebuild's read of the database and its write: its own
/// mark_sold is lost (the event is not loaded) and the rebuild writes the unpaid hold. The
/// catch-up the services run after every rebuild reads the orders changed since the read began
/// and marks the seat sold.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_payment_during_a_rebuild_leaves_the_seat_sold() {
    let harness = redis_mysql_harness().await;
    let f = Fixture::new(&harness, Layout::default()).await;
    let order = f.buy("alice", vec![f.seat(0)]).await;
    (harness.wipe_seat_lock)().await;
    let source = PaymentDuringTheRead {
        inner: RepositoryHolds::new(
            f.backends.tickets().clone(),
            f.config.hold_grace,
            Default::default(),
        ),
        tickets: f.tickets.clone(),
        payment: PaymentNotice::for_order(&order, PaymentRef::new("pay_1").expect("ref")),
    };
    f.backends
        .seat_lock()
        .rebuild(f.event.id(), &source)
        .await
        .expect("rebuild");
    source
        .inner
        .catch_up(&**f.backends.seat_lock(), f.event.id(), f.clock.now())
        .await;
    f.assert_seat_map_matches_repository().await;
    harness.finish().await;
}

/// Regression: a payment that committed although its caller saw an error (a connection lost
/// during COMMIT) is retried with the same reference; the retry finds the order PAID and must
/// mark the seat sold in the lock (it used to return without touching the lock).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retried_payment_marks_the_seat_sold() {
    let harness = redis_mysql_harness().await;
    let f = Fixture::new(&harness, Layout::default()).await;
    let order = f.buy("alice", vec![f.seat(0)]).await;
    let reference = PaymentRef::new("pay_1").expect("ref");
    // What the failed attempt left behind: the payment committed, the lock never told.
    let moved = f
        .backends
        .tickets()
        .transition(&Transition {
            order: order.id,
            action: TicketAction::Pay,
            now: f.clock.now(),
            payment_ref: Some(reference.clone()),
        })
        .await
        .expect("pay in the repository");
    assert!(moved);
    let paid = f
        .tickets
        .pay(PaymentNotice::for_order(&order, reference))
        .await
        .expect("retry");
    assert_eq!(paid.status, TicketStatus::Paid);
    f.assert_seat_map_matches_repository().await;
    harness.finish().await;
}
