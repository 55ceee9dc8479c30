//! Many buyers racing on separate connections: every seat goes to exactly one order, holds stay
//! all or nothing, and general admission never exceeds its capacity. Outcomes are counted.

mod common;

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use common::*;
use ticketing_core::domain::{EventId, OrderId};
use ticketing_core::ports::{HoldItem, HoldOutcome, SeatLock, SeatState};
use tokio::sync::Barrier;

const BUYERS: usize = 64;
const ROUNDS: usize = 3;

/// One lock per buyer, each on its own connection.
async fn locks(redis: &TestRedis) -> Vec<Arc<dyn SeatLock>> {
    let mut locks: Vec<Arc<dyn SeatLock>> = Vec::with_capacity(BUYERS);
    for _ in 0..BUYERS {
        locks.push(Arc::new(redis.lock().await));
    }
    locks
}

/// Runs every buyer's hold at once (after a barrier) and returns (order, items, outcome) each.
async fn race(
    locks: &[Arc<dyn SeatLock>],
    ev: EventId,
    wants: Vec<Vec<HoldItem>>,
) -> Vec<(OrderId, Vec<HoldItem>, HoldOutcome)> {
    let barrier = Arc::new(Barrier::new(wants.len()));
    let tasks: Vec<_> = wants
        .into_iter()
        .zip(locks.iter().cloned())
        .map(|(items, lock)| {
            let barrier = barrier.clone();
            tokio::spawn(async move {
                let order = order();
                barrier.wait().await;
                let outcome = hold(
                    lock.as_ref(),
                    ev,
                    order,
                    items.clone(),
                    t0(),
                    t0() + secs(600),
                )
                .await;
                (order, items, outcome)
            })
        })
        .collect();
    let mut results = Vec::new();
    for task in tasks {
        results.push(task.await.expect("buyer task"));
    }
    results
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_seat_many_buyers_exactly_one_wins() {
    let redis = TestRedis::shared();
    let locks = locks(&redis).await;
    for _ in 0..ROUNDS {
        let ev = event();
        load_empty(locks[0].as_ref(), ev).await;
        let results = race(&locks, ev, vec![seats(&["A:1:1"]); BUYERS]).await;

        let winners: Vec<OrderId> = results
            .iter()
            .filter(|r| r.2 == HoldOutcome::Held)
            .map(|r| r.0)
            .collect();
        assert_eq!(winners.len(), 1, "exactly one buyer holds the seat");
        let losers = results
            .iter()
            .filter(|r| {
                r.2 == HoldOutcome::Taken {
                    seats: vec![seat("A:1:1")],
                    zones: vec![],
                }
            })
            .count();
        assert_eq!(
            losers,
            BUYERS - 1,
            "every other buyer is told the seat is taken"
        );
        let snapshot = locks[1].snapshot(ev, t0()).await.unwrap().unwrap();
        assert_eq!(
            snapshot.seats[&seat("A:1:1")],
            SeatState::Held {
                order: winners[0],
                until: t0() + secs(600)
            }
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn overlapping_multi_seat_orders_never_share_a_seat() {
    const SEATS: usize = 20;
    let redis = TestRedis::shared();
    let locks = locks(&redis).await;
    for round in 0..ROUNDS {
        let ev = event();
        load_empty(locks[0].as_ref(), ev).await;
        let wants: Vec<Vec<HoldItem>> = (0..BUYERS)
            .map(|i| {
                let picks: BTreeSet<usize> = [i + round, i * 7 + 3, i * 13 + 5 + round]
                    .iter()
                    .map(|n| n % SEATS + 1)
                    .collect();
                let keys: Vec<String> = picks.iter().map(|n| format!("A:1:{n}")).collect();
                seats(&keys.iter().map(String::as_str).collect::<Vec<_>>())
            })
            .collect();
        let results = race(&locks, ev, wants).await;
        let snapshot = locks[0].snapshot(ev, t0()).await.unwrap().unwrap();
        let holder_of = |item: &HoldItem| match item {
            HoldItem::Seat(s) => snapshot.seats.get(s).map(|state| match state {
                SeatState::Held { order, .. } | SeatState::Sold { order } => *order,
            }),
            HoldItem::General { .. } => unreachable!("seats only"),
        };

        let mut held_by_winners = 0;
        for (order, items, outcome) in &results {
            match outcome {
                HoldOutcome::Held => {
                    held_by_winners += items.len();
                    for item in items {
                        assert_eq!(
                            holder_of(item),
                            Some(*order),
                            "a winner holds all its seats"
                        );
                    }
                }
                HoldOutcome::Taken {
                    seats: conflicts,
                    zones,
                } => {
                    assert!(zones.is_empty());
                    assert!(!conflicts.is_empty());
                    for item in items {
                        assert_ne!(
                            holder_of(item),
                            Some(*order),
                            "a loser holds none of its seats"
                        );
                    }
                    for conflict in conflicts {
                        let holder = holder_of(&HoldItem::Seat(conflict.clone()));
                        assert!(
                            holder.is_some() && holder != Some(*order),
                            "a reported conflict is held by another order"
                        );
                    }
                }
                HoldOutcome::NotLoaded => panic!("the event was loaded"),
            }
        }
        let winners = results.iter().filter(|r| r.2 == HoldOutcome::Held).count();
        assert!(winners >= 1);
        // Each held seat belongs to exactly one winner: the counts add up.
        assert_eq!(snapshot.seats.len(), held_by_winners, "{winners} winners");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn general_admission_race_never_exceeds_capacity() {
    const CAPACITY: u32 = 50;
    let redis = TestRedis::shared();
    let locks = locks(&redis).await;
    for _ in 0..ROUNDS {
        let ev = event();
        load_empty(locks[0].as_ref(), ev).await;
        let wants: Vec<Vec<HoldItem>> = (0..BUYERS)
            .map(|i| vec![general("GA", i as u32 % 3 + 1, CAPACITY)])
            .collect();
        let results = race(&locks, ev, wants).await;

        let quantity = |items: &[HoldItem]| match items {
            [HoldItem::General { quantity, .. }] => *quantity,
            _ => unreachable!("one zone"),
        };
        let won: u32 = results
            .iter()
            .filter(|r| r.2 == HoldOutcome::Held)
            .map(|r| quantity(&r.1))
            .sum();
        let snapshot = locks[0].snapshot(ev, t0()).await.unwrap().unwrap();
        let taken = snapshot.general.get(&zone("GA")).copied().unwrap_or(0);
        assert_eq!(taken, won, "the lock counts exactly the winners' places");
        assert!(taken <= CAPACITY, "{taken} places taken of {CAPACITY}");

        let mut refused: HashMap<u32, usize> = HashMap::new();
        for (_, items, outcome) in &results {
            if let HoldOutcome::Taken { seats, zones } = outcome {
                assert!(seats.is_empty());
                assert_eq!(zones, &vec![zone("GA")]);
                // Nothing is released during the race, so free places only shrink: a refused
                // buyer really did not fit, then or now.
                assert!(
                    CAPACITY - taken < quantity(items),
                    "refused although it fits"
                );
                *refused.entry(quantity(items)).or_default() += 1;
            }
        }
        let asked: u32 = results.iter().map(|r| quantity(&r.1)).sum();
        assert!(asked > CAPACITY, "the race oversubscribes the zone");
        assert!(!refused.is_empty(), "someone was refused");
    }
}
