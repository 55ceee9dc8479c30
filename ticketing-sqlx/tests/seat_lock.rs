//! `MySqlSeatLock`: all-or-nothing holds, fencing, deadlines on the caller's clock, general
//! admission, snapshots, the NotLoaded / rebuild protocol, and a real race.

mod support;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use async_trait::async_trait;
use chrono::{DateTime, TimeDelta, Utc};
use futures::future::join_all;
use support::*;
use ticketing_core::domain::{EventId, OrderId, SeatRef};
use ticketing_core::ports::{
    ActiveHold, HoldItem, HoldOutcome, HoldRequest, HoldSource, LockSnapshot, SeatLock, SeatState,
};
use ticketing_sqlx::MySqlSeatLock;
use tokio::sync::Barrier;
use uuid::Uuid;

fn new_order() -> OrderId {
    OrderId::from_uuid(Uuid::now_v7())
}

fn seats(keys: &[&str]) -> Vec<HoldItem> {
    keys.iter().map(|k| HoldItem::Seat(seat(k))).collect()
}

fn ga(quantity: u32, capacity: u32) -> HoldItem {
    HoldItem::General {
        zone: zone("GA"),
        quantity,
        capacity,
    }
}

fn request(
    event: EventId,
    order: OrderId,
    items: Vec<HoldItem>,
    now: DateTime<Utc>,
) -> HoldRequest {
    HoldRequest {
        event,
        order,
        items,
        now,
        until: now + TimeDelta::minutes(10),
    }
}

/// A hold source that returns fixed holds and counts how often it was read.
struct Source {
    holds: Vec<ActiveHold>,
    reads: AtomicUsize,
}

impl Source {
    fn new(holds: Vec<ActiveHold>) -> Arc<Self> {
        Arc::new(Self {
            holds,
            reads: AtomicUsize::new(0),
        })
    }
}

#[async_trait]
impl HoldSource for Source {
    async fn active_holds(&self, _event: EventId) -> ticketing_core::Result<Vec<ActiveHold>> {
        self.reads.fetch_add(1, Ordering::SeqCst);
        // Long enough for the other rebuilders to pile up behind this one.
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        Ok(self.holds.clone())
    }
}

async fn loaded(lock: &MySqlSeatLock, event: EventId) {
    lock.rebuild(event, &*Source::new(Vec::new()))
        .await
        .unwrap();
}

#[tokio::test]
async fn holds_are_all_or_nothing_and_fenced_by_order() {
    let db = database(4).await;
    let lock = MySqlSeatLock::new(db.pool().clone());
    let event = Show::new().event;
    let (a, b) = (new_order(), new_order());
    assert_eq!(
        lock.hold(&request(event, a, seats(&["A:1:1"]), t0()))
            .await
            .unwrap(),
        HoldOutcome::NotLoaded
    );
    assert_eq!(lock.snapshot(event, t0()).await.unwrap(), None);
    loaded(&lock, event).await;
    assert_eq!(
        lock.snapshot(event, t0()).await.unwrap(),
        Some(LockSnapshot::default())
    );

    assert_eq!(
        lock.hold(&request(event, a, seats(&["A:1:2"]), t0()))
            .await
            .unwrap(),
        HoldOutcome::Held
    );
    // B wants three seats, one of them A's: nothing is held for B.
    assert_eq!(
        lock.hold(&request(
            event,
            b,
            seats(&["A:1:3", "A:1:2", "A:1:1"]),
            t0()
        ))
        .await
        .unwrap(),
        HoldOutcome::Taken {
            seats: vec![seat("A:1:2")],
            zones: vec![]
        }
    );
    let snapshot = lock.snapshot(event, t0()).await.unwrap().unwrap();
    assert_eq!(snapshot.seats.len(), 1);
    assert_eq!(
        snapshot.seats[&seat("A:1:2")],
        SeatState::Held {
            order: a,
            until: t0() + TimeDelta::minutes(10)
        }
    );

    // B cannot release A's seat; A can.
    lock.release(event, b, &seats(&["A:1:2"])).await.unwrap();
    assert_eq!(
        lock.snapshot(event, t0())
            .await
            .unwrap()
            .unwrap()
            .seats
            .len(),
        1
    );
    lock.release(event, a, &seats(&["A:1:2", "A:9:9"]))
        .await
        .unwrap();
    assert!(
        lock.snapshot(event, t0())
            .await
            .unwrap()
            .unwrap()
            .seats
            .is_empty()
    );
    assert_eq!(
        lock.hold(&request(
            event,
            b,
            seats(&["A:1:3", "A:1:2", "A:1:1"]),
            t0()
        ))
        .await
        .unwrap(),
        HoldOutcome::Held
    );
    db.drop_database().await.unwrap();
}

#[tokio::test]
async fn deadlines_follow_the_callers_clock_and_sales_never_lapse() {
    let db = database(4).await;
    let lock = MySqlSeatLock::new(db.pool().clone());
    let event = Show::new().event;
    loaded(&lock, event).await;
    let (a, b) = (new_order(), new_order());
    let until = t0() + TimeDelta::seconds(30);
    let hold_a = HoldRequest {
        event,
        order: a,
        items: seats(&["A:1:1", "A:1:2"]),
        now: t0(),
        until,
    };
    assert_eq!(lock.hold(&hold_a).await.unwrap(), HoldOutcome::Held);
    // One millisecond before the deadline the seats are A's; at the deadline they are free.
    let b_early = request(event, b, seats(&["A:1:1"]), until - ms(1));
    assert!(matches!(
        lock.hold(&b_early).await.unwrap(),
        HoldOutcome::Taken { .. }
    ));
    assert!(
        lock.snapshot(event, until)
            .await
            .unwrap()
            .unwrap()
            .seats
            .is_empty()
    );
    assert_eq!(
        lock.hold(&request(event, b, seats(&["A:1:1"]), until))
            .await
            .unwrap(),
        HoldOutcome::Held
    );
    // A's late release does not free B's seat (fencing after a lapse).
    lock.release(event, a, &seats(&["A:1:1", "A:1:2"]))
        .await
        .unwrap();
    let snapshot = lock.snapshot(event, until).await.unwrap().unwrap();
    assert!(matches!(snapshot.seats[&seat("A:1:1")], SeatState::Held { order, .. } if order == b));

    // Sold: no deadline; re-holding by the buyer keeps it sold, others are refused for ever.
    lock.mark_sold(event, b, &seats(&["A:1:1"])).await.unwrap();
    let far = until + TimeDelta::days(365);
    assert_eq!(
        lock.hold(&request(event, b, seats(&["A:1:1"]), far))
            .await
            .unwrap(),
        HoldOutcome::Held
    );
    assert_eq!(
        lock.snapshot(event, far).await.unwrap().unwrap().seats[&seat("A:1:1")],
        SeatState::Sold { order: b }
    );
    assert!(matches!(
        lock.hold(&request(event, a, seats(&["A:1:1"]), far))
            .await
            .unwrap(),
        HoldOutcome::Taken { .. }
    ));
    // mark_sold overwrites another holder: the database said this order paid.
    lock.hold(&request(event, a, seats(&["A:1:5"]), far))
        .await
        .unwrap();
    lock.mark_sold(event, b, &seats(&["A:1:5"])).await.unwrap();
    assert_eq!(
        lock.snapshot(event, far).await.unwrap().unwrap().seats[&seat("A:1:5")],
        SeatState::Sold { order: b }
    );
    // After a refund the buyer's release frees the sold seat.
    lock.release(event, b, &seats(&["A:1:1"])).await.unwrap();
    assert_eq!(
        lock.hold(&request(event, a, seats(&["A:1:1"]), far))
            .await
            .unwrap(),
        HoldOutcome::Held
    );
    db.drop_database().await.unwrap();
}

#[tokio::test]
async fn general_admission_counts_places_of_other_orders() {
    let db = database(4).await;
    let lock = MySqlSeatLock::new(db.pool().clone());
    let event = Show::new().event;
    loaded(&lock, event).await;
    let (a, b, c) = (new_order(), new_order(), new_order());
    assert_eq!(
        lock.hold(&request(event, a, vec![ga(3, 5)], t0()))
            .await
            .unwrap(),
        HoldOutcome::Held
    );
    assert_eq!(
        lock.hold(&request(event, b, vec![ga(3, 5)], t0()))
            .await
            .unwrap(),
        HoldOutcome::Taken {
            seats: vec![],
            zones: vec![zone("GA")]
        }
    );
    assert_eq!(
        lock.hold(&request(event, b, vec![ga(2, 5)], t0()))
            .await
            .unwrap(),
        HoldOutcome::Held
    );
    // A's own earlier hold is replaced, not added to.
    assert_eq!(
        lock.hold(&request(event, a, vec![ga(1, 5)], t0()))
            .await
            .unwrap(),
        HoldOutcome::Held
    );
    assert_eq!(
        lock.snapshot(event, t0()).await.unwrap().unwrap().general[&zone("GA")],
        3
    );
    assert_eq!(
        lock.hold(&request(event, c, vec![ga(2, 5)], t0()))
            .await
            .unwrap(),
        HoldOutcome::Held
    );
    assert!(matches!(
        lock.hold(&request(event, new_order(), vec![ga(1, 5)], t0()))
            .await
            .unwrap(),
        HoldOutcome::Taken { .. }
    ));
    // Sold places stay; lapsed holds free their places.
    lock.mark_sold(event, c, &[ga(2, 5)]).await.unwrap();
    let later = t0() + TimeDelta::minutes(10);
    assert_eq!(
        lock.snapshot(event, later).await.unwrap().unwrap().general[&zone("GA")],
        2
    );
    assert_eq!(
        lock.hold(&request(event, new_order(), vec![ga(3, 5)], later))
            .await
            .unwrap(),
        HoldOutcome::Held
    );
    // A mixed order: a seat and places, all or nothing.
    let mixed = request(
        event,
        new_order(),
        vec![HoldItem::Seat(seat("A:1:1")), ga(1, 5)],
        later,
    );
    assert_eq!(
        lock.hold(&mixed).await.unwrap(),
        HoldOutcome::Taken {
            seats: vec![],
            zones: vec![zone("GA")]
        }
    );
    assert!(
        lock.snapshot(event, later)
            .await
            .unwrap()
            .unwrap()
            .seats
            .is_empty()
    );
    lock.release(event, c, &[ga(2, 5)]).await.unwrap();
    assert_eq!(lock.hold(&mixed).await.unwrap(), HoldOutcome::Held);
    db.drop_database().await.unwrap();
}

#[tokio::test]
async fn rebuild_restores_the_source_once_and_forgetting_means_not_loaded() {
    let db = database(8).await;
    let lock = Arc::new(MySqlSeatLock::new(db.pool().clone()));
    let other_process = Arc::new(MySqlSeatLock::new(db.pool().clone()));
    let event = Show::new().event;
    let (held, sold, general) = (new_order(), new_order(), new_order());
    let until = t0() + TimeDelta::minutes(5);
    let source = Source::new(vec![
        ActiveHold {
            order: held,
            item: HoldItem::Seat(seat("A:1:1")),
            until: Some(until),
        },
        ActiveHold {
            order: sold,
            item: HoldItem::Seat(seat("A:1:2")),
            until: None,
        },
        ActiveHold {
            order: general,
            item: ga(1, 10),
            until: Some(until),
        },
        ActiveHold {
            order: general,
            item: ga(1, 10),
            until: Some(until),
        },
    ]);
    // Ten callers in two "processes" ask at once; the source is read once.
    let barrier = Arc::new(Barrier::new(10));
    let calls = (0..10).map(|i| {
        let lock = if i % 2 == 0 {
            lock.clone()
        } else {
            other_process.clone()
        };
        let (barrier, source) = (barrier.clone(), source.clone());
        tokio::spawn(async move {
            barrier.wait().await;
            lock.rebuild(event, &*source).await
        })
    });
    for result in join_all(calls).await {
        result.unwrap().unwrap();
    }
    assert_eq!(source.reads.load(Ordering::SeqCst), 1);
    let expected = LockSnapshot {
        seats: HashMap::from([
            (seat("A:1:1"), SeatState::Held { order: held, until }),
            (seat("A:1:2"), SeatState::Sold { order: sold }),
        ]),
        general: HashMap::from([(zone("GA"), 2)]),
    };
    assert_eq!(lock.snapshot(event, t0()).await.unwrap(), Some(expected));
    assert!(matches!(
        lock.hold(&request(event, new_order(), seats(&["A:1:2"]), t0()))
            .await
            .unwrap(),
        HoldOutcome::Taken { .. }
    ));

    // Forgetting one event leaves the others; forgetting all leaves none.
    let second = Show::new().event;
    loaded(&lock, second).await;
    lock.forget(event).await.unwrap();
    assert_eq!(lock.snapshot(event, t0()).await.unwrap(), None);
    assert!(lock.snapshot(second, t0()).await.unwrap().is_some());
    assert_eq!(
        lock.hold(&request(event, new_order(), seats(&["A:1:3"]), t0()))
            .await
            .unwrap(),
        HoldOutcome::NotLoaded
    );
    lock.forget_all().await.unwrap();
    assert_eq!(lock.snapshot(second, t0()).await.unwrap(), None);
    // Release and mark_sold on an event that is not loaded are not errors.
    lock.release(second, held, &seats(&["A:1:1"]))
        .await
        .unwrap();
    lock.mark_sold(second, held, &seats(&["A:1:1"]))
        .await
        .unwrap();
    assert_eq!(lock.snapshot(second, t0()).await.unwrap(), None);
    // A rebuild replaces whatever was written meanwhile with the source.
    lock.rebuild(second, &*Source::new(Vec::new()))
        .await
        .unwrap();
    assert_eq!(
        lock.snapshot(second, t0()).await.unwrap(),
        Some(LockSnapshot::default())
    );
    db.drop_database().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sixty_four_buyers_for_ten_seats_give_ten_winners() {
    let db = database(16).await;
    let lock = Arc::new(MySqlSeatLock::new(db.pool().clone()));
    let event = Show::new().event;
    loaded(&lock, event).await;
    let barrier = Arc::new(Barrier::new(64));
    let buyers = (0..64).map(|i| {
        let (lock, barrier) = (lock.clone(), barrier.clone());
        let order = new_order();
        let wanted = seat(&format!("A:1:{}", i % 10 + 1));
        tokio::spawn(async move {
            barrier.wait().await;
            let outcome = lock
                .hold(&request(
                    event,
                    order,
                    vec![HoldItem::Seat(wanted.clone())],
                    t0(),
                ))
                .await;
            (order, wanted, outcome)
        })
    });
    let mut winners: HashMap<SeatRef, OrderId> = HashMap::new();
    let mut losers = 0;
    for result in join_all(buyers).await {
        let (order, wanted, outcome) = result.unwrap();
        match outcome.unwrap() {
            HoldOutcome::Held => assert!(
                winners.insert(wanted, order).is_none(),
                "two winners for one seat"
            ),
            HoldOutcome::Taken { seats, zones } => {
                assert_eq!((seats, zones), (vec![wanted], vec![]));
                losers += 1;
            }
            HoldOutcome::NotLoaded => panic!("the event is loaded"),
        }
    }
    assert_eq!((winners.len(), losers), (10, 54));
    let snapshot = lock.snapshot(event, t0()).await.unwrap().unwrap();
    for (seat, order) in &winners {
        assert!(matches!(snapshot.seats[seat], SeatState::Held { order: o, .. } if o == *order));
    }

    // Fencing under concurrency: every loser releases the seat it wanted; the winners keep theirs.
    let releases = (0..64).map(|i| {
        let lock = lock.clone();
        let wanted = seat(&format!("A:1:{}", i % 10 + 1));
        tokio::spawn(async move {
            lock.release(event, new_order(), &[HoldItem::Seat(wanted)])
                .await
        })
    });
    for result in join_all(releases).await {
        result.unwrap().unwrap();
    }
    assert_eq!(
        lock.snapshot(event, t0())
            .await
            .unwrap()
            .unwrap()
            .seats
            .len(),
        10
    );
    db.drop_database().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn overlapping_multi_seat_holds_never_deadlock_out_and_never_share_a_seat() {
    let db = database(16).await;
    let lock = Arc::new(MySqlSeatLock::new(db.pool().clone()));
    let event = Show::new().event;
    loaded(&lock, event).await;
    let barrier = Arc::new(Barrier::new(40));
    let buyers = (0..40usize).map(|i| {
        let (lock, barrier) = (lock.clone(), barrier.clone());
        let order = new_order();
        // Three seats out of twelve, listed in different orders by different buyers.
        let mut keys: Vec<String> = [i, i * 5 + 2, i * 7 + 5]
            .iter()
            .map(|n| format!("A:1:{}", n % 12 + 1))
            .collect();
        keys.dedup();
        if i % 2 == 1 {
            keys.reverse();
        }
        tokio::spawn(async move {
            barrier.wait().await;
            let items: Vec<HoldItem> = keys.iter().map(|k| HoldItem::Seat(seat(k))).collect();
            let outcome = lock.hold(&request(event, order, items.clone(), t0())).await;
            (order, items, outcome)
        })
    });
    let mut owner: HashMap<SeatRef, OrderId> = HashMap::new();
    for result in join_all(buyers).await {
        let (order, items, outcome) = result.unwrap();
        match outcome.expect("no deadlock or lock timeout may leak out") {
            HoldOutcome::Held => {
                for item in items {
                    let HoldItem::Seat(s) = item else {
                        unreachable!()
                    };
                    assert!(
                        owner.insert(s, order).is_none(),
                        "a seat held by two orders"
                    );
                }
            }
            HoldOutcome::Taken { seats, .. } => assert!(!seats.is_empty()),
            HoldOutcome::NotLoaded => panic!("the event is loaded"),
        }
    }
    let snapshot = lock.snapshot(event, t0()).await.unwrap().unwrap();
    assert_eq!(snapshot.seats.len(), owner.len());
    for (seat, order) in owner {
        assert!(matches!(snapshot.seats[&seat], SeatState::Held { order: o, .. } if o == order));
    }
    db.drop_database().await.unwrap();
}
