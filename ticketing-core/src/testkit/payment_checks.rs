//! Conformance checks of the payments ledger and the late-payment policy: every notification is
//! recorded once with its outcome, one that cannot pay is a refund due, and a late payment never
//! sells a seat twice.

use std::sync::Arc;

use chrono::TimeDelta;
use tokio::sync::Barrier;

use crate::Error;
use crate::domain::{
    LatePaymentPolicy, Money, OrderId, OutboxKind, PaymentNotice, PaymentOutcome, PaymentRef,
    TicketStatus,
};
use crate::service::{ServiceConfig, TicketService};

use super::Harness;
use super::fixture::{Fixture, Layout};

fn reference(text: &str) -> PaymentRef {
    PaymentRef::new(text).expect("payment ref")
}

/// A service over the fixture's adapters that accepts late payments when the seats allow.
pub(super) fn accepting(f: &Fixture) -> TicketService {
    f.service_with_config(ServiceConfig {
        late_payment: LatePaymentPolicy::AcceptIfAvailable,
        ..f.config.clone()
    })
}

/// The ledger's outcomes for `order`, oldest first.
async fn outcomes(f: &Fixture, order: OrderId) -> Vec<PaymentOutcome> {
    f.tickets
        .payments_of(order)
        .await
        .expect("payments of order")
        .iter()
        .map(|p| p.outcome)
        .collect()
}

/// Every notification is recorded once, in the same call as its effect: a payment pays and is
/// `PAID`; its replay changes nothing; a wrong amount, a wrong currency and an unknown order are
/// refused, recorded as refunds due with a `PaymentRejected` outbox event, and leave the order
/// as it was; a refund reported sent leaves the list of refunds due.
pub async fn payments_ledger_records_every_notification(harness: Harness) {
    let f = Fixture::new(&harness, Layout::default()).await;
    let paid = f.buy("payer", vec![f.seat(0)]).await;
    let notice = PaymentNotice::for_order(&paid, reference("pi_ok"));
    let first = f.tickets.pay(notice.clone()).await.expect("pay");
    assert_eq!(first.status, TicketStatus::Paid);
    let replay = f.tickets.pay(notice).await.expect("replay");
    assert_eq!(replay, first);
    assert_eq!(outcomes(&f, paid.id).await, vec![PaymentOutcome::Paid]);

    let unpaid = f.buy("short", vec![f.seat(1)]).await;
    let short = PaymentNotice {
        amount: Money::new(unpaid.total.minor - 1, unpaid.total.currency),
        ..PaymentNotice::for_order(&unpaid, reference("pi_short"))
    };
    let refused = f.tickets.pay(short.clone()).await;
    assert!(
        matches!(refused, Err(Error::PaymentMismatch { expected: Some(e), received })
            if e == unpaid.total && received == short.amount),
        "got {refused:?}"
    );
    let dollars = PaymentNotice {
        amount: Money::new(unpaid.total.minor, "USD".parse().expect("USD")),
        ..PaymentNotice::for_order(&unpaid, reference("pi_usd"))
    };
    assert!(matches!(
        f.tickets.pay(dollars).await,
        Err(Error::PaymentMismatch { .. })
    ));
    assert!(
        matches!(
            f.tickets.pay(short).await,
            Err(Error::PaymentMismatch { .. })
        ),
        "a replayed refusal stays refused"
    );
    assert_eq!(
        f.queries.order(unpaid.id).await.unwrap().status,
        TicketStatus::PendingPayment,
        "a wrong amount pays nothing"
    );
    assert_eq!(
        outcomes(&f, unpaid.id).await,
        vec![PaymentOutcome::AmountMismatch; 2]
    );
    let nobody = OrderId::from_uuid(uuid::Uuid::now_v7());
    let stray = PaymentNotice {
        order: nobody,
        reference: reference("pi_stray"),
        amount: unpaid.total,
    };
    assert!(matches!(
        f.tickets.pay(stray).await,
        Err(Error::NotFound { .. })
    ));

    let due = f.tickets.refunds_due(100).await.expect("refunds due");
    let mut owed: Vec<&str> = due.iter().map(|p| p.reference.as_str()).collect();
    owed.sort_unstable();
    assert_eq!(owed, vec!["pi_short", "pi_stray", "pi_usd"]);
    let mut rejected: Vec<String> = f
        .backends
        .tickets
        .outbox_after(0, 1_000)
        .await
        .expect("outbox")
        .into_iter()
        .filter(|e| e.event.kind == OutboxKind::PaymentRejected)
        .map(|e| e.event.payment.expect("payment").reference.to_string())
        .collect();
    rejected.sort_unstable();
    assert_eq!(
        rejected,
        vec!["pi_short", "pi_usd"],
        "one PaymentRejected per refused payment of an existing order"
    );

    assert!(
        f.tickets
            .mark_refunded(&reference("pi_short"))
            .await
            .unwrap()
    );
    assert!(
        !f.tickets
            .mark_refunded(&reference("pi_short"))
            .await
            .unwrap()
    );
    assert!(!f.tickets.mark_refunded(&reference("pi_ok")).await.unwrap());
    assert_eq!(f.tickets.refunds_due(100).await.unwrap().len(), 2);
    f.audit().await;
    harness.finish().await;
}

/// `reject` refuses every payment at or after the deadline; `accept_if_available` takes one
/// while the order still has its seats, and after the sweep takes the seats back unless another
/// buyer has them (then it is a refund due, and the seat keeps one active ticket).
pub async fn late_payments_follow_the_policy(harness: Harness) {
    let f = Fixture::new(&harness, Layout::default()).await;
    let accepting = accepting(&f);
    let rejected = f.buy("late1", vec![f.seat(0)]).await;
    let unswept = f.buy("late2", vec![f.seat(1)]).await;
    let swept = f.buy("late3", vec![f.seat(2)]).await;
    let resold = f.buy("late4", vec![f.seat(3)]).await;
    let general = f
        .tickets
        .purchase(f.general_request("late5", 2))
        .await
        .expect("GA");
    f.clock
        .set(f.sweep_due(&rejected) - TimeDelta::milliseconds(1));

    let late = f
        .tickets
        .pay(PaymentNotice::for_order(&rejected, reference("pi_r")))
        .await;
    assert!(
        matches!(late, Err(Error::PaymentTooLate { .. })),
        "got {late:?}"
    );
    let paid_late = accepting
        .pay(PaymentNotice::for_order(&unswept, reference("pi_u")))
        .await
        .expect("an unswept order still has its seat");
    assert_eq!(paid_late.status, TicketStatus::Paid);

    f.clock.set(f.sweep_due(&swept));
    assert_eq!(f.tickets.expire_due().await.unwrap(), 4);
    let thief = f.buy("thief", vec![f.seat(3)]).await;
    let back = accepting
        .pay(PaymentNotice::for_order(&swept, reference("pi_s")))
        .await
        .expect("an expired order whose seat is free takes it back");
    assert_eq!(back.status, TicketStatus::Paid);
    let taken = f
        .tickets
        .purchase(f.seats_request("other", vec![f.seat(2)]))
        .await;
    assert!(
        matches!(taken, Err(Error::SeatsTaken { .. })),
        "got {taken:?}"
    );
    let gone = accepting
        .pay(PaymentNotice::for_order(&resold, reference("pi_x")))
        .await;
    assert!(
        matches!(gone, Err(Error::PaymentTooLate { .. })),
        "got {gone:?}"
    );
    assert_eq!(
        f.queries.order(resold.id).await.unwrap().status,
        TicketStatus::Expired
    );
    assert_eq!(
        f.queries.order(thief.id).await.unwrap().status,
        TicketStatus::PendingPayment
    );
    let ga_back = accepting
        .pay(PaymentNotice::for_order(&general, reference("pi_ga")))
        .await
        .expect("general-admission places come back while the zone has room");
    assert_eq!(ga_back.status, TicketStatus::Paid);

    assert_eq!(
        outcomes(&f, rejected.id).await,
        vec![PaymentOutcome::TooLate]
    );
    assert_eq!(
        outcomes(&f, unswept.id).await,
        vec![PaymentOutcome::PaidLate]
    );
    assert_eq!(outcomes(&f, swept.id).await, vec![PaymentOutcome::PaidLate]);
    assert_eq!(outcomes(&f, resold.id).await, vec![PaymentOutcome::TooLate]);
    let mut owed: Vec<String> = f
        .tickets
        .refunds_due(100)
        .await
        .unwrap()
        .iter()
        .map(|p| p.reference.to_string())
        .collect();
    owed.sort_unstable();
    assert_eq!(owed, vec!["pi_r", "pi_x"]);
    f.audit().await;
    harness.finish().await;
}

/// The race of a late payment with a buyer of the same, freed seat, with real concurrency: in
/// every round exactly one of them ends with an active ticket, and a refused payment is a
/// refund due.
pub async fn late_payment_races_a_resale(harness: Harness) {
    let f = Arc::new(Fixture::new(&harness, Layout::default()).await);
    let accepting = accepting(&f);
    let rounds = 12u32;
    let mut orders = Vec::new();
    for round in 0..rounds {
        orders.push(f.buy(&format!("owner{round}"), vec![f.seat(round)]).await);
    }
    f.clock.set(f.sweep_due(&orders[0]) + TimeDelta::seconds(1));
    assert_eq!(f.tickets.expire_due().await.unwrap(), u64::from(rounds));
    let (mut payments_won, mut buyers_won) = (0, 0);
    for (round, order) in orders.iter().enumerate() {
        let barrier = Arc::new(Barrier::new(2));
        let (b1, b2) = (barrier.clone(), barrier);
        let payer = accepting.clone();
        let notice = PaymentNotice::for_order(order, reference(&format!("pi_race{round}")));
        let pay = tokio::spawn(async move {
            b1.wait().await;
            payer.pay(notice).await
        });
        let buyer = f.tickets.clone();
        let request = f.seats_request(&format!("rival{round}"), vec![f.seat(round as u32)]);
        let buy = tokio::spawn(async move {
            b2.wait().await;
            buyer.purchase(request).await
        });
        let (paid, bought) = (pay.await.expect("pay task"), buy.await.expect("buy task"));
        match (&paid, &bought) {
            (Ok(_), Err(Error::SeatsTaken { .. })) => payments_won += 1,
            (Err(Error::PaymentTooLate { .. }), Ok(_)) => {
                buyers_won += 1;
                assert_eq!(outcomes(&f, order.id).await, vec![PaymentOutcome::TooLate]);
            }
            other => panic!("round {round}: both or neither won: {other:?}"),
        }
        let active = f
            .backends
            .tickets
            .active_tickets(f.event.id())
            .await
            .unwrap()
            .into_iter()
            .filter(|t| t.seat.as_ref() == Some(&f.seat(round as u32)))
            .count();
        assert_eq!(active, 1, "round {round}: one active ticket on the seat");
    }
    assert_eq!(payments_won + buyers_won, rounds);
    assert_eq!(
        f.tickets.refunds_due(100).await.unwrap().len(),
        buyers_won as usize
    );
    f.audit().await;
    harness.finish().await;
}
