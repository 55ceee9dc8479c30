//! The checks of hold extension (docs/DESIGN.md, "Hold extension"): the policy's count and cap,
//! no extension after the deadline, never a seat taken back, the seat lock put back when the
//! repository refuses, the sweep held to the extended deadline, and races with payments and the
//! sweep.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};

use crate::Error;
use crate::domain::{
    CustomerId, ExtensionRefusal, HoldExtension, Order, OrderId, OutboxKind, PaymentNotice,
    PaymentRef, SeatRef, TicketStatus,
};
use crate::ports::{Clock, HoldItem, HoldOutcome, HoldRequest, ManualClock, SeatState};
use crate::service::{Backends, ServiceConfig, TicketService};

use super::Harness;
use super::checks::race;
use super::fixture::{Fixture, Layout};

fn customer(name: &str) -> CustomerId {
    CustomerId::new(name).expect("customer id")
}

fn refusal(result: &crate::Result<crate::service::ExtendedHold>) -> Option<ExtensionRefusal> {
    match result {
        Err(Error::HoldNotExtended { reason }) => Some(*reason),
        _ => None,
    }
}

/// The `HoldExtended` events of `order` in the outbox, with the deadline each set.
async fn extensions_in_outbox(f: &Fixture, order: OrderId) -> Vec<DateTime<Utc>> {
    let entries = f
        .backends
        .tickets
        .outbox_after(0, 100_000)
        .await
        .expect("outbox");
    entries
        .iter()
        .filter(|e| e.event.order_id == order && e.event.kind == OutboxKind::HoldExtended)
        .map(|e| {
            e.event
                .deadline
                .expect("a HoldExtended carries its deadline")
        })
        .collect()
}

/// The seat lock's state of `seat` at `now`, `None` when free.
async fn lock_state(f: &Fixture, seat: &SeatRef, now: DateTime<Utc>) -> Option<SeatState> {
    let snapshot = f
        .backends
        .seat_lock
        .snapshot(f.event.id(), now)
        .await
        .expect("snapshot")
        .expect("loaded");
    snapshot.seats.get(seat).copied()
}

/// A service over the fixture's adapters with its own clock and hold-extension policy.
fn service(f: &Fixture, clock: Arc<ManualClock>, policy: HoldExtension) -> TicketService {
    let backends = Backends {
        clock,
        ..f.backends.clone()
    };
    TicketService::new(
        backends,
        ServiceConfig {
            hold_extension: policy,
            ..f.config.clone()
        },
    )
}

/// An extension moves the deadline by the step, as often as the policy allows and never past
/// its cap; only the order's customer can extend it; the seat lock, the outbox and the sweep
/// follow the new deadline, and a payment that arrives between the old and the new deadline
/// pays.
pub async fn hold_extension_follows_the_policy(harness: Harness) {
    let f = Fixture::new(&harness, Layout::default()).await;
    let hold = f.event.hold_time();
    let step = TimeDelta::minutes(5);
    let policy = HoldExtension {
        step: Some(Duration::from_secs(5 * 60)),
        max_extensions: 2,
        max_total: Duration::from_secs(60 * 60),
    };
    let tickets = service(&f, f.clock.clone(), policy);

    // Count: two extensions of five minutes, then the limit.
    let order = f.buy("ext-alice", vec![f.seat(0)]).await;
    let alice = customer("ext-alice");
    let first = tickets.extend_hold(order.id, &alice).await.expect("first");
    assert_eq!(first.order.expires_at, order.expires_at + step);
    assert!(
        first
            .order
            .tickets
            .iter()
            .all(|t| t.expires_at == order.expires_at + step)
    );
    assert_eq!((first.extensions, first.extensions_left), (1, 1));
    let stranger = tickets
        .extend_hold(order.id, &customer("ext-mallory"))
        .await;
    assert!(
        matches!(stranger, Err(Error::NotFound { .. })),
        "another customer's order is not found: {stranger:?}"
    );
    let second = tickets.extend_hold(order.id, &alice).await.expect("second");
    assert_eq!(second.order.expires_at, order.expires_at + step * 2);
    assert_eq!((second.extensions, second.extensions_left), (2, 0));
    let third = tickets.extend_hold(order.id, &alice).await;
    assert_eq!(
        refusal(&third),
        Some(ExtensionRefusal::LimitReached),
        "{third:?}"
    );
    let deadline = second.order.expires_at;
    assert_eq!(
        f.queries.order(order.id).await.unwrap().expires_at,
        deadline,
        "a refusal changes nothing"
    );
    assert_eq!(
        extensions_in_outbox(&f, order.id).await,
        vec![order.expires_at + step, deadline]
    );

    // The lock holds the seat until the new deadline + grace, the put-back after the refusal
    // included: held just before, free at that instant.
    let until = deadline + f.config.grace();
    assert!(
        matches!(
            lock_state(&f, &f.seat(0), until - TimeDelta::milliseconds(1)).await,
            Some(SeatState::Held { order: o, .. }) if o == order.id
        ),
        "the lock holds the extended order's seat until its new deadline + grace"
    );
    assert_eq!(
        lock_state(&f, &f.seat(0), until).await,
        None,
        "the refused third extension's longer hold was put back"
    );

    // The sweep leaves the order alone past its old deadline, then expires it at the new one.
    f.clock.set(f.sweep_due(&order) + TimeDelta::seconds(1));
    assert_eq!(f.tickets.expire_due().await.unwrap(), 0, "old deadline");
    assert_eq!(
        f.queries.order(order.id).await.unwrap().status,
        TicketStatus::PendingPayment
    );
    f.clock
        .set(deadline + f.config.payment_grace() - TimeDelta::milliseconds(1));
    assert_eq!(f.tickets.expire_due().await.unwrap(), 0, "not due yet");
    let late = tickets.extend_hold(order.id, &alice).await;
    assert_eq!(
        refusal(&late),
        Some(ExtensionRefusal::Expired),
        "the deadline passed, the sweep did not run yet: {late:?}"
    );
    f.clock.set(deadline + f.config.payment_grace());
    assert_eq!(f.tickets.expire_due().await.unwrap(), 1, "new deadline");
    let swept = tickets.extend_hold(order.id, &alice).await;
    assert_eq!(
        refusal(&swept),
        Some(ExtensionRefusal::Expired),
        "{swept:?}"
    );

    // Cap: the last extension gives what is left of it, the next one nothing.
    let capped = service(
        &f,
        f.clock.clone(),
        HoldExtension {
            max_extensions: 5,
            max_total: Duration::from_secs(
                u64::try_from((hold + step + step / 2).num_seconds()).unwrap(),
            ),
            ..policy
        },
    );
    let order = f.buy("ext-bob", vec![f.seat(1)]).await;
    let bob = customer("ext-bob");
    let created = order.tickets[0].created_on;
    capped
        .extend_hold(order.id, &bob)
        .await
        .expect("within the cap");
    let last = capped
        .extend_hold(order.id, &bob)
        .await
        .expect("up to the cap");
    assert_eq!(last.order.expires_at, created + hold + step + step / 2);
    let past = capped.extend_hold(order.id, &bob).await;
    assert_eq!(
        refusal(&past),
        Some(ExtensionRefusal::CapReached),
        "{past:?}"
    );
    assert_eq!(extensions_in_outbox(&f, order.id).await.len(), 2);

    // A payment that arrives after the old deadline but before the new one pays.
    f.clock.set(order.expires_at + TimeDelta::seconds(1));
    let paid = f.pay(&order, "ext-bob-pays").await;
    assert_eq!(paid.status, TicketStatus::Paid);
    let after = capped.extend_hold(order.id, &bob).await;
    assert_eq!(
        refusal(&after),
        Some(ExtensionRefusal::NotPending),
        "{after:?}"
    );

    // Turned off.
    let off = service(&f, f.clock.clone(), HoldExtension::disabled());
    let order = f.buy("ext-carol", vec![f.seat(2)]).await;
    let refused = off.extend_hold(order.id, &customer("ext-carol")).await;
    assert_eq!(
        refusal(&refused),
        Some(ExtensionRefusal::Disabled),
        "{refused:?}"
    );
    f.audit().await;
    harness.finish().await;
}

/// A seat another order holds now (the extending order's hold lapsed in the lock, or the lock
/// lost it) is never taken back: the extension is refused, the other holder keeps the seat
/// until its own deadline, and the order's deadline does not move.
pub async fn an_extension_never_takes_a_seat_back(harness: Harness) {
    let f = Fixture::new(&harness, Layout::default()).await;
    let order = f.buy("ext-dave", vec![f.seat(3), f.seat(4)]).await;
    // Another server whose clock runs past this order's hold holds seat 4 for its buyer.
    let lapsed = order.expires_at + f.config.grace();
    let other = OrderId::from_uuid(uuid::Uuid::now_v7());
    let other_until = lapsed + TimeDelta::minutes(10);
    let held = f
        .backends
        .seat_lock
        .hold(&HoldRequest {
            event: f.event.id(),
            order: other,
            items: vec![HoldItem::Seat(f.seat(4))],
            now: lapsed,
            until: other_until,
        })
        .await
        .expect("hold");
    assert_eq!(held, HoldOutcome::Held);

    let refused = f.tickets.extend_hold(order.id, &customer("ext-dave")).await;
    match &refused {
        Err(Error::SeatsTaken { seats }) => assert_eq!(seats, &vec![f.seat(4)]),
        other => panic!("expected SeatsTaken for seat 4, got {other:?}"),
    }
    let now = f.clock.now();
    assert_eq!(
        lock_state(&f, &f.seat(4), now).await,
        Some(SeatState::Held {
            order: other,
            until: other_until
        }),
        "the other holder keeps the seat, until its own deadline"
    );
    assert!(
        lock_state(&f, &f.seat(3), order.expires_at + f.config.grace())
            .await
            .is_none(),
        "the order's other seat was not extended either (all or nothing)"
    );
    let stored = f.queries.order(order.id).await.unwrap();
    assert_eq!(
        stored.expires_at, order.expires_at,
        "the deadline did not move"
    );
    assert!(extensions_in_outbox(&f, order.id).await.is_empty());
    f.audit().await;
    harness.finish().await;
}

/// Many tasks extend, pay and sweep the same orders at once, on clocks around the deadline: no
/// order is extended more often than the policy allows, each extension moves the deadline by
/// one step, an order paid is never expired, an order expired is never extended afterwards,
/// and every answer given matches the repository.
pub async fn extensions_race_payments_and_the_sweep(harness: Harness) {
    let f = Arc::new(Fixture::new(&harness, Layout::default()).await);
    let policy = HoldExtension {
        step: Some(Duration::from_secs(60)),
        max_extensions: 3,
        max_total: Duration::from_secs(60 * 60),
    };
    let step = TimeDelta::minutes(1);
    let rounds = 12u32;
    for round in 0..rounds {
        let name = format!("ext-racer{round}");
        let order = f.buy(&name, vec![f.seat(10 + round)]).await;
        // Extenders just before the deadline, a payer and a sweeper just after it: the
        // extenders race each other, and one of them races the sweep.
        let before = Arc::new(ManualClock::new(
            order.expires_at - TimeDelta::milliseconds(5),
        ));
        let after = Arc::new(ManualClock::new(f.sweep_due(&order)));
        let extender = service(&f, before.clone(), policy);
        let payer = service(&f, before, policy);
        let sweeper = service(&f, after, policy);
        let who = customer(&name);
        let pays = round % 3 == 0;
        let order_id = order.id;
        let answers = race(8, |i| {
            let (extender, payer, sweeper, who) = (
                extender.clone(),
                payer.clone(),
                sweeper.clone(),
                who.clone(),
            );
            let notice = PaymentNotice::for_order(
                &order,
                PaymentRef::new(format!("ext-race-{round}")).unwrap(),
            );
            async move {
                match i {
                    0 => Answer::Swept(sweeper.expire_due().await.expect("sweep")),
                    1 if pays => Answer::Paid(payer.pay(notice).await.map(|o| o.status)),
                    _ => Answer::Extended(extender.extend_hold(order_id, &who).await),
                }
            }
        })
        .await;
        let stored = f.queries.order(order.id).await.unwrap();
        let extended: Vec<&Order> = answers
            .iter()
            .filter_map(|a| match a {
                Answer::Extended(Ok(e)) => Some(&e.order),
                _ => None,
            })
            .collect();
        let in_outbox = extensions_in_outbox(&f, order.id).await;
        assert!(
            extended.len() <= 3,
            "round {round}: {} extensions",
            extended.len()
        );
        assert_eq!(
            in_outbox.len(),
            extended.len(),
            "round {round}: one event per extension"
        );
        for (n, deadline) in in_outbox.iter().enumerate() {
            assert_eq!(
                *deadline,
                order.expires_at + step * (n as i32 + 1),
                "round {round}"
            );
        }
        let swept = answers.iter().any(|a| matches!(a, Answer::Swept(1)));
        let paid = answers
            .iter()
            .any(|a| matches!(a, Answer::Paid(Ok(TicketStatus::Paid))));
        for answer in &answers {
            match answer {
                Answer::Extended(Ok(_)) => assert!(!swept, "round {round}: extended and swept"),
                Answer::Extended(Err(Error::HoldNotExtended { .. }))
                | Answer::Extended(Err(Error::Unavailable { .. }))
                | Answer::Swept(_)
                | Answer::Paid(_) => {}
                Answer::Extended(Err(other)) => {
                    panic!("round {round}: unexpected extension error {other}")
                }
            }
        }
        assert!(!(swept && paid), "round {round}: paid and swept");
        let expected = if swept {
            TicketStatus::Expired
        } else if paid {
            TicketStatus::Paid
        } else {
            TicketStatus::PendingPayment
        };
        assert_eq!(stored.status, expected, "round {round}");
        if expected != TicketStatus::Expired {
            assert_eq!(
                stored.expires_at,
                order.expires_at + step * extended.len() as i32,
                "round {round}: the deadline moved once per extension"
            );
        }
    }
    f.audit().await;
    harness.finish().await;
}

/// One racer's answer in [`extensions_race_payments_and_the_sweep`].
enum Answer {
    Extended(crate::Result<crate::service::ExtendedHold>),
    Paid(crate::Result<TicketStatus>),
    Swept(u64),
}
