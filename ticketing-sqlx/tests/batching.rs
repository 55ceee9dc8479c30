//! Write batching: orders that share a transaction keep their own answers. One order that
//! breaks a rule (taken seat, full zone, customer limit, used idempotency key) fails alone with
//! its exact error; the others of its batch commit, with their outbox rows, counted once.

mod support;

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use chrono::TimeDelta;
use futures::future::join_all;
use support::*;
use ticketing_core::Error;
use ticketing_core::domain::{OutboxKind, TicketStatus};
use ticketing_core::ports::{InsertOutcome, NewOrder, TicketRepository};
use ticketing_sqlx::{BatchConfig, MySqlTicketRepository};

/// A long wait so that every order of a test lands in one batch.
fn batched(db: &ticketing_sqlx::testing::TestDatabase) -> Arc<MySqlTicketRepository> {
    Arc::new(MySqlTicketRepository::with_batching(
        db.pool().clone(),
        BatchConfig {
            max_orders: 64,
            max_wait: Duration::from_millis(200),
            max_in_flight: 1,
        },
    ))
}

/// Inserts all `orders` at once and returns their answers in order.
async fn insert_all(
    repo: &Arc<MySqlTicketRepository>,
    orders: &[NewOrder],
) -> Vec<ticketing_core::Result<InsertOutcome>> {
    join_all(orders.iter().map(|o| {
        let repo = repo.clone();
        let o = o.clone();
        async move { repo.insert_order(&o).await }
    }))
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_taken_seat_fails_only_its_own_order() {
    let db = database(8).await;
    let repo = batched(&db);
    let show = Show::new();
    let hold = TimeDelta::minutes(10);
    let first = show.seats("early", &["A:1:1"], t0(), hold);
    assert_eq!(
        repo.insert_order(&first).await.unwrap(),
        InsertOutcome::Inserted
    );

    let orders = vec![
        show.seats("b", &["A:1:2", "A:1:3"], t0(), hold),
        show.seats("c", &["A:1:4", "A:1:1"], t0(), hold), // A:1:1 is taken
        show.seats("d", &["A:1:5"], t0(), hold),
        show.seats("e", &["A:1:5", "A:1:6"], t0(), hold), // A:1:5 goes to d, earlier in the batch
        show.seats("f", &["A:1:7"], t0(), hold),
    ];
    let results = insert_all(&repo, &orders).await;
    assert!(
        matches!(results[0], Ok(InsertOutcome::Inserted)),
        "{results:?}"
    );
    match &results[1] {
        Err(Error::SeatsTaken { seats }) => assert_eq!(seats, &vec![seat("A:1:1")]),
        other => panic!("expected SeatsTaken(A:1:1), got {other:?}"),
    }
    assert!(
        matches!(results[2], Ok(InsertOutcome::Inserted)),
        "{results:?}"
    );
    match &results[3] {
        Err(Error::SeatsTaken { seats }) => assert_eq!(seats, &vec![seat("A:1:5")]),
        other => panic!("expected SeatsTaken(A:1:5), got {other:?}"),
    }
    assert!(
        matches!(results[4], Ok(InsertOutcome::Inserted)),
        "{results:?}"
    );

    let active: HashSet<String> = repo
        .active_tickets(show.event)
        .await
        .unwrap()
        .iter()
        .filter_map(|t| t.seat.as_ref().map(|s| s.key()))
        .collect();
    let expected: HashSet<String> = ["A:1:1", "A:1:2", "A:1:3", "A:1:5", "A:1:7"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    assert_eq!(active, expected);
    // Nothing of the failed orders was kept.
    for failed in [&orders[1], &orders[3]] {
        assert_eq!(repo.order(failed.order.id).await.unwrap(), None);
    }
    // One outbox row per stored order, numbered 1..=4 without gaps.
    let outbox = repo.outbox_after(0, 100).await.unwrap();
    let seqs: Vec<u64> = outbox.iter().map(|e| e.seq).collect();
    assert_eq!(seqs, vec![1, 2, 3, 4]);
    assert!(
        outbox
            .iter()
            .all(|e| e.event.kind == OutboxKind::TicketReserved)
    );
    db.drop_database().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn capacity_limit_and_idempotency_failures_stay_with_their_orders() {
    let db = database(8).await;
    let repo = batched(&db);
    let show = Show::new();
    let hold = TimeDelta::minutes(10);
    let keyed = with_key(show.seats("kim", &["B:1:1"], t0(), hold), "k1", "fp1");
    assert_eq!(
        repo.insert_order(&keyed).await.unwrap(),
        InsertOutcome::Inserted
    );

    let mut limited = show.seats("lou", &["B:1:2", "B:1:3"], t0(), hold);
    limited.per_customer_limit = 3;
    let mut over_limit = show.seats("lou", &["B:1:4", "B:1:5"], t0(), hold);
    over_limit.per_customer_limit = 3;
    let orders = vec![
        show.general("ga1", 3, 5, t0(), hold),
        show.general("ga2", 3, 5, t0(), hold), // 3 + 3 > 5
        with_key(show.seats("kim", &["B:1:9"], t0(), hold), "k1", "fp2"), // key used
        limited,
        over_limit, // lou: 2 + 2 > 3
        show.seats("max", &["B:1:6"], t0(), hold),
    ];
    let results = insert_all(&repo, &orders).await;
    // ga1 and ga2 do not fit together: they run alone, and exactly one of them gets the places.
    let ga_ok = results[0..2]
        .iter()
        .filter(|r| matches!(r, Ok(InsertOutcome::Inserted)))
        .count();
    let ga_sold_out = results[0..2]
        .iter()
        .filter(|r| matches!(r, Err(Error::SoldOut { requested: 3, .. })))
        .count();
    assert_eq!((ga_ok, ga_sold_out), (1, 1), "{results:?}");
    match &results[2] {
        Ok(InsertOutcome::DuplicateKey(record)) => {
            assert_eq!(Some(record), keyed.idempotency.as_ref())
        }
        other => panic!("expected DuplicateKey, got {other:?}"),
    }
    let lou_ok = results[3..5]
        .iter()
        .filter(|r| matches!(r, Ok(InsertOutcome::Inserted)))
        .count();
    let lou_limited = results[3..5]
        .iter()
        .filter(|r| matches!(r, Err(Error::LimitExceeded { limit: 3 })))
        .count();
    assert_eq!((lou_ok, lou_limited), (1, 1), "{results:?}");
    assert!(
        matches!(results[5], Ok(InsertOutcome::Inserted)),
        "{results:?}"
    );

    let active = repo.active_tickets(show.event).await.unwrap();
    assert_eq!(active.iter().filter(|t| t.seat.is_none()).count(), 3);
    assert_eq!(
        active
            .iter()
            .filter(|t| t.customer.as_str() == "lou")
            .count(),
        2
    );
    assert!(
        active
            .iter()
            .all(|t| t.status == TicketStatus::PendingPayment)
    );
    assert_eq!(active.len(), 1 + 3 + 2 + 1);
    assert_eq!(repo.outbox_after(0, 100).await.unwrap().len(), 4);
    db.drop_database().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn many_concurrent_orders_for_few_seats_sell_each_seat_once() {
    let db = database(8).await;
    let repo = Arc::new(MySqlTicketRepository::with_batching(
        db.pool().clone(),
        BatchConfig::default(),
    ));
    let show = Show::new();
    let hold = TimeDelta::minutes(10);
    // 200 orders for 20 seats, two seats each, overlapping.
    let orders: Vec<NewOrder> = (0..200)
        .map(|i| {
            let a = format!("C:1:{}", i % 20 + 1);
            let b = format!("C:1:{}", (i + 7) % 20 + 1);
            show.seats(&format!("buyer{i}"), &[&a, &b], t0(), hold)
        })
        .collect();
    let results = insert_all(&repo, &orders).await;
    let won: Vec<&NewOrder> = orders
        .iter()
        .zip(&results)
        .filter(|(_, r)| matches!(r, Ok(InsertOutcome::Inserted)))
        .map(|(o, _)| o)
        .collect();
    for result in &results {
        assert!(
            matches!(
                result,
                Ok(InsertOutcome::Inserted) | Err(Error::SeatsTaken { .. })
            ),
            "{result:?}"
        );
    }
    let active = repo.active_tickets(show.event).await.unwrap();
    let seats: HashSet<String> = active
        .iter()
        .filter_map(|t| t.seat.as_ref().map(|s| s.key()))
        .collect();
    assert_eq!(seats.len(), active.len(), "a seat sold twice");
    assert_eq!(active.len(), won.len() * 2);
    assert_eq!(repo.outbox_after(0, 1000).await.unwrap().len(), won.len());
    db.drop_database().await.unwrap();
}

/// Counter rows that exist before the batch (a returning customer, a zone sold before) are read
/// back after the upsert; rows the batch creates are checked from the batch's own sums. Both
/// must give the same answers.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn limits_hold_for_counter_rows_that_exist_before_the_batch() {
    let db = database(8).await;
    let repo = batched(&db);
    let show = Show::new();
    let hold = TimeDelta::minutes(10);
    let mut before = show.seats("ray", &["C:1:1", "C:1:2"], t0(), hold);
    before.per_customer_limit = 3;
    let ga_before = show.general("gb0", 3, 5, t0(), hold);
    for order in [&before, &ga_before] {
        assert_eq!(
            repo.insert_order(order).await.unwrap(),
            InsertOutcome::Inserted
        );
    }

    let mut fits = show.seats("ray", &["C:1:3"], t0(), hold);
    fits.per_customer_limit = 3;
    let mut over = show.seats("ray", &["C:1:4"], t0(), hold);
    over.per_customer_limit = 3; // 2 + 1 + 1 > 3
    let orders = vec![
        fits,
        over,
        show.general("gb1", 2, 5, t0(), hold), // 3 + 2 = 5 fits
        show.seats("sam", &["C:1:5"], t0(), hold), // a new customer next to a returning one
    ];
    let results = insert_all(&repo, &orders).await;
    let ray_ok = results[0..2]
        .iter()
        .filter(|r| matches!(r, Ok(InsertOutcome::Inserted)))
        .count();
    let ray_limited = results[0..2]
        .iter()
        .filter(|r| matches!(r, Err(Error::LimitExceeded { limit: 3 })))
        .count();
    assert_eq!((ray_ok, ray_limited), (1, 1), "{results:?}");
    assert!(
        results[2..]
            .iter()
            .all(|r| matches!(r, Ok(InsertOutcome::Inserted))),
        "{results:?}"
    );

    // The zone is full now: the next general-admission order is sold out.
    let full = insert_all(&repo, &[show.general("gb2", 1, 5, t0(), hold)]).await;
    assert!(
        matches!(full[0], Err(Error::SoldOut { requested: 1, .. })),
        "{full:?}"
    );
    let active = repo.active_tickets(show.event).await.unwrap();
    assert_eq!(active.iter().filter(|t| t.seat.is_none()).count(), 5);
    assert_eq!(
        active
            .iter()
            .filter(|t| t.customer.as_str() == "ray")
            .count(),
        3
    );
    db.drop_database().await.unwrap();
}
