// The race checks, shared by `races.rs` (MySQL) and `pg_races.rs` (PostgreSQL), which include
// this file after defining `database`, `Repo`, `repo`, `ZONE_USAGE_TOTALS`,
// `ACTIVE_VOUCHER_ORDERS` and `ACTIVE_TICKETS_AT_PRICE`.
// this file after defining `database`, `Repo`, `repo`, `ZONE_USAGE_TOTALS` and
// `ACTIVE_VOUCHER_ORDERS`, `PUBLIC_TICKETS_ON_KEPT_SEATS` and `catalog`.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use chrono::TimeDelta;
use futures::future::join_all;
use ticketing_core::Error;
use ticketing_core::domain::{OrderId, OutboxKind, SeatRef, TicketAction, TicketStatus};
use ticketing_core::ports::{
    InsertOutcome, NewOrder, TicketRepository, TierClaim, Transition, VoucherClaim,
};
use tokio::sync::Barrier;

/// A boxed job, for races between different kinds of callers.
type Job<T> = Box<dyn FnOnce() -> std::pin::Pin<Box<dyn Future<Output = T> + Send>> + Send>;

/// Runs `jobs` at once (after a common barrier) and returns their results in job order.
async fn race<T, F, Fut>(jobs: Vec<F>) -> Vec<T>
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: Future<Output = T> + Send + 'static,
    T: Send + 'static,
{
    let barrier = Arc::new(Barrier::new(jobs.len()));
    let handles: Vec<_> = jobs
        .into_iter()
        .map(|job| {
            let barrier = barrier.clone();
            tokio::spawn(async move {
                barrier.wait().await;
                job().await
            })
        })
        .collect();
    join_all(handles)
        .await
        .into_iter()
        .map(|r| r.expect("task panicked"))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn overlapping_orders_sell_each_seat_once_and_losers_learn_which_seats() {
    let db = database(16).await;
    let repo = repo(&db);
    let show = Show::new();
    let keys: Vec<String> = (1..=20).map(|n| format!("A:{}:{}", 1 + n % 2, n)).collect();
    // 48 orders of 3 seats each over 20 seats, overlapping in many different ways and orders.
    let orders: Vec<NewOrder> = (0..48usize)
        .map(|i| {
            let picked: Vec<&str> = [i * 7, i * 7 + 3, i * 7 + 11]
                .iter()
                .map(|k| keys[k % 20].as_str())
                .collect();
            show.seats(&format!("c{i}"), &picked, t0(), TimeDelta::minutes(10))
        })
        .collect();
    let jobs = orders
        .iter()
        .cloned()
        .map(|order| {
            let repo = repo.clone();
            move || async move { repo.insert_order(&order).await }
        })
        .collect();
    let results = race(jobs).await;

    let active = repo.active_tickets(show.event).await.unwrap();
    let mut holder: HashMap<SeatRef, OrderId> = HashMap::new();
    for t in &active {
        let seat = t.seat.clone().expect("seated");
        assert!(
            holder.insert(seat.clone(), t.order_id).is_none(),
            "seat {seat} sold twice"
        );
    }
    let mut winners = 0;
    for (order, result) in orders.iter().zip(&results) {
        match result {
            Ok(InsertOutcome::Inserted) => {
                winners += 1;
                for t in &order.order.tickets {
                    assert_eq!(holder.get(t.seat.as_ref().unwrap()), Some(&order.order.id));
                }
            }
            Err(Error::SeatsTaken { seats }) => {
                assert!(
                    !seats.is_empty(),
                    "a loser must learn which seats are taken"
                );
                let wanted: HashSet<&SeatRef> = order
                    .order
                    .tickets
                    .iter()
                    .filter_map(|t| t.seat.as_ref())
                    .collect();
                for seat in seats {
                    assert!(wanted.contains(seat), "named seat {seat} was not asked for");
                    assert!(
                        holder.get(seat).is_some_and(|o| *o != order.order.id),
                        "{seat} is not taken by another order"
                    );
                }
                assert_eq!(
                    repo.order(order.order.id).await.unwrap(),
                    None,
                    "a loser wrote something"
                );
            }
            other => panic!("unexpected outcome (deadlocks must not leak): {other:?}"),
        }
    }
    assert!(winners >= 1);
    assert_eq!(active.len(), winners * 3);
    assert_eq!(repo.outbox_after(0, 1_000).await.unwrap().len(), winners);
    db.drop_database().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn general_admission_capacity_holds_under_a_race() {
    let db = database(16).await;
    let repo = repo(&db);
    let show = Show::new();
    let jobs = (0..200)
        .map(|i| {
            let (repo, order) = (
                repo.clone(),
                show.general(&format!("c{i}"), 1, 50, t0(), TimeDelta::minutes(10)),
            );
            move || async move { repo.insert_order(&order).await }
        })
        .collect();
    let results = race(jobs).await;
    let won = results
        .iter()
        .filter(|r| matches!(r, Ok(InsertOutcome::Inserted)))
        .count();
    let sold_out = results
        .iter()
        .filter(|r| matches!(r, Err(Error::SoldOut { requested: 1, .. })))
        .count();
    assert_eq!(
        (won, sold_out),
        (50, 150),
        "{:?}",
        results
            .iter()
            .find(|r| !matches!(r, Ok(_) | Err(Error::SoldOut { .. })))
    );
    assert_eq!(
        repo.count_by_status(show.event, TicketStatus::PendingPayment)
            .await
            .unwrap(),
        50
    );
    assert_eq!(repo.active_tickets(show.event).await.unwrap().len(), 50);
    db.drop_database().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_per_customer_limit_holds_under_a_race() {
    let db = database(16).await;
    let repo = repo(&db);
    let show = Show::new();
    // One customer, 30 single-seat orders on distinct seats, limit 4.
    let jobs = (1..=30)
        .map(|n| {
            let mut order = show.seats(
                "greedy",
                &[&format!("A:1:{n}")],
                t0(),
                TimeDelta::minutes(10),
            );
            order.per_customer_limit = 4;
            let repo = repo.clone();
            move || async move { repo.insert_order(&order).await }
        })
        .collect();
    let results = race(jobs).await;
    let won = results
        .iter()
        .filter(|r| matches!(r, Ok(InsertOutcome::Inserted)))
        .count();
    let refused = results
        .iter()
        .filter(|r| matches!(r, Err(Error::LimitExceeded { limit: 4 })))
        .count();
    assert_eq!((won, refused), (4, 26));
    assert_eq!(repo.active_tickets(show.event).await.unwrap().len(), 4);
    db.drop_database().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn payment_and_expiry_at_the_deadline_never_both_win() {
    let db = database(8).await;
    let repo = repo(&db);
    let show = Show::new();
    let hold = TimeDelta::seconds(30);
    let deadline = t0() + hold;
    let (mut paid, mut expired) = (0, 0);
    for round in 0..40 {
        let new = show.seats(
            &format!("c{round}"),
            &[&format!("A:1:{}", round + 1)],
            t0(),
            hold,
        );
        let id = new.order.id;
        repo.insert_order(&new).await.unwrap();
        // The payer's clock says one millisecond before the deadline, the sweepers' the deadline:
        // each guard holds on its own, so only the compare-and-set on the status decides.
        let payer = {
            let repo = repo.clone();
            move || async move {
                let pay = Transition {
                    order: id,
                    action: TicketAction::Pay,
                    now: deadline - ms(1),
                    payment_ref: None,
                };
                usize::from(repo.transition(&pay).await.unwrap())
            }
        };
        let sweeper = |repo: Arc<Repo>| {
            move || async move {
                repo.expire_due(deadline, 10)
                    .await
                    .unwrap()
                    .iter()
                    .filter(|o| o.id == id)
                    .count()
            }
        };
        let direct = {
            let repo = repo.clone();
            move || async move {
                let expire = Transition {
                    order: id,
                    action: TicketAction::Expire,
                    now: deadline,
                    payment_ref: None,
                };
                usize::from(repo.transition(&expire).await.unwrap())
            }
        };
        let jobs: Vec<Job<usize>> = vec![
            Box::new(move || Box::pin(payer())),
            Box::new({
                let s = sweeper(repo.clone());
                move || Box::pin(s())
            }),
            Box::new({
                let s = sweeper(repo.clone());
                move || Box::pin(s())
            }),
            Box::new(move || Box::pin(direct())),
        ];
        let wins = race(jobs).await;
        assert_eq!(wins.iter().sum::<usize>(), 1, "round {round}: {wins:?}");
        let status = repo.order(id).await.unwrap().unwrap().status;
        if wins[0] == 1 {
            paid += 1;
            assert_eq!(status, TicketStatus::Paid);
        } else {
            expired += 1;
            assert_eq!(status, TicketStatus::Expired);
        }
    }
    assert_eq!(paid + expired, 40);
    // Exactly one outbox row per round besides the reservation.
    let outbox = repo.outbox_after(0, 1_000).await.unwrap();
    let mut per_order: BTreeMap<OrderId, Vec<OutboxKind>> = BTreeMap::new();
    for entry in &outbox {
        per_order
            .entry(entry.event.order_id)
            .or_default()
            .push(entry.event.kind);
    }
    assert_eq!(per_order.len(), 40);
    for kinds in per_order.values() {
        assert_eq!(kinds.len(), 2);
        assert_eq!(kinds[0], OutboxKind::TicketReserved);
        assert!(matches!(
            kinds[1],
            OutboxKind::TicketPaid | OutboxKind::TicketExpired
        ));
    }
    db.drop_database().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_sweepers_expire_each_order_exactly_once() {
    let db = database(16).await;
    let repo = repo(&db);
    let show = Show::new();
    let hold = TimeDelta::minutes(1);
    let mut ids = HashSet::new();
    for i in 0..90 {
        // Staggered deadlines, some orders with two seats, some GA.
        let now = t0() + ms(i);
        let new = match i % 3 {
            0 => show.seats(
                &format!("c{i}"),
                &[&format!("A:{i}:1"), &format!("A:{i}:2")],
                now,
                hold,
            ),
            1 => show.seats(&format!("c{i}"), &[&format!("A:{i}:1")], now, hold),
            _ => show.general(&format!("c{i}"), 2, 1_000, now, hold),
        };
        ids.insert(new.order.id);
        repo.insert_order(&new).await.unwrap();
    }
    // A late order that is not due yet.
    let not_due = show.seats("late", &["Z:1:1"], t0() + hold, hold);
    repo.insert_order(&not_due).await.unwrap();

    let sweep_at = t0() + hold + ms(100);
    let jobs = (0..6)
        .map(|_| {
            let repo = repo.clone();
            move || async move {
                let mut mine = Vec::new();
                loop {
                    let batch = repo.expire_due(sweep_at, 7).await.unwrap();
                    if batch.is_empty() {
                        return mine;
                    }
                    assert!(batch.len() <= 7);
                    mine.extend(batch.into_iter().map(|o| o.id));
                }
            }
        })
        .collect();
    let per_sweeper: Vec<Vec<OrderId>> = race(jobs).await;
    let all: Vec<OrderId> = per_sweeper.concat();
    let unique: HashSet<OrderId> = all.iter().copied().collect();
    assert_eq!(all.len(), unique.len(), "an order was expired twice");
    assert_eq!(unique, ids);
    assert_eq!(
        repo.order(not_due.order.id).await.unwrap().unwrap().status,
        TicketStatus::PendingPayment
    );
    assert_eq!(
        repo.count_by_status(show.event, TicketStatus::Expired)
            .await
            .unwrap(),
        30 * 2 + 30 + 30 * 2
    );
    let expired_rows = repo
        .outbox_after(0, 1_000)
        .await
        .unwrap()
        .iter()
        .filter(|e| e.event.kind == OutboxKind::TicketExpired)
        .count();
    assert_eq!(expired_rows, 90);
    // The counters were given back: the whole GA capacity is free again.
    repo.insert_order(&show.general("next", 1, 1, sweep_at, hold))
        .await
        .unwrap();
    db.drop_database().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_retries_of_one_idempotent_purchase_insert_it_once() {
    let db = database(16).await;
    let repo = repo(&db);
    let show = Show::new();
    let original = with_key(
        show.seats("alice", &["A:1:1", "A:1:2"], t0(), TimeDelta::minutes(10)),
        "retry-me",
        "fp",
    );
    let jobs = (0..12)
        .map(|_| {
            let (repo, order) = (repo.clone(), original.clone());
            move || async move { repo.insert_order(&order).await }
        })
        .collect();
    let results = race(jobs).await;
    let inserted = results
        .iter()
        .filter(|r| matches!(r, Ok(InsertOutcome::Inserted)))
        .count();
    let duplicates = results
        .iter()
        .filter(|r| matches!(r, Ok(InsertOutcome::DuplicateKey(rec)) if Some(rec) == original.idempotency.as_ref()))
        .count();
    assert_eq!((inserted, duplicates), (1, 11), "{results:?}");
    assert_eq!(repo.active_tickets(show.event).await.unwrap().len(), 2);
    assert_eq!(repo.outbox_after(0, 100).await.unwrap().len(), 1);
    db.drop_database().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn outbox_numbers_are_gapless_and_follow_each_order_s_history() {
    let db = database(16).await;
    let repo = repo(&db);
    let show = Show::new();
    // 40 writers: each reserves, half of them then pay, the other half cancel; some lose seats.
    let jobs = (0..40)
        .map(|i| {
            let repo = repo.clone();
            let new = show.seats(
                &format!("c{i}"),
                &[&format!("A:1:{}", i % 30 + 1)],
                t0(),
                TimeDelta::minutes(10),
            );
            move || async move {
                if repo.insert_order(&new).await.is_err() {
                    return 0;
                }
                let action = if i % 2 == 0 {
                    TicketAction::Pay
                } else {
                    TicketAction::Cancel
                };
                let t = Transition {
                    order: new.order.id,
                    action,
                    now: t0() + ms(1),
                    payment_ref: None,
                };
                assert!(repo.transition(&t).await.unwrap());
                2
            }
        })
        .collect();
    let written: usize = race(jobs).await.into_iter().sum();
    let outbox = repo.outbox_after(0, 1_000).await.unwrap();
    let seqs: Vec<u64> = outbox.iter().map(|e| e.seq).collect();
    assert_eq!(
        seqs,
        (1..=written as u64).collect::<Vec<_>>(),
        "numbers are 1..=n without gaps"
    );
    let mut seen = HashSet::new();
    for entry in &outbox {
        match entry.event.kind {
            OutboxKind::TicketReserved => assert!(seen.insert(entry.event.order_id)),
            _ => assert!(
                seen.contains(&entry.event.order_id),
                "a change came before its reservation"
            ),
        }
    }
    db.drop_database().await.unwrap();
}

/// A general-admission zone is counted in shard rows: orders of mixed sizes whose places add up
/// to the capacity all fit at once (an order spreads over shards when one has too little room),
/// one more place is sold out, and released places (in whatever shards they were) can be
/// bought again, exactly as many.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn general_admission_fills_exactly_to_capacity_across_shards() {
    const CAPACITY: u32 = 100;
    let db = database(24).await;
    let repo = repo(&db);
    let show = Show::new();
    let hold = TimeDelta::minutes(10);
    let mut sizes: Vec<u32> = (0..6).flat_map(|_| 1..=5).collect();
    sizes.extend([4, 3, 2, 1]);
    assert_eq!(sizes.iter().sum::<u32>(), CAPACITY);
    let orders: Vec<_> = sizes
        .iter()
        .enumerate()
        .map(|(i, n)| show.general(&format!("c{i}"), *n, CAPACITY, t0(), hold))
        .collect();
    let jobs = orders
        .iter()
        .map(|order| {
            let (repo, order) = (repo.clone(), order.clone());
            move || async move { repo.insert_order(&order).await }
        })
        .collect();
    for result in race(jobs).await {
        assert!(matches!(result, Ok(InsertOutcome::Inserted)), "{result:?}");
    }
    let one_more = show.general("late", 1, CAPACITY, t0(), hold);
    assert!(matches!(
        repo.insert_order(&one_more).await,
        Err(Error::SoldOut { requested: 1, .. })
    ));

    // Cancel three orders (12 places) and race 12 single places plus 5 more buyers for them.
    let released: u32 = [4, 9, 27].iter().map(|&i| sizes[i]).sum();
    for i in [4, 9, 27] {
        let cancel = Transition {
            order: orders[i].order.id,
            action: TicketAction::Cancel,
            now: t0(),
            payment_ref: None,
        };
        assert!(repo.transition(&cancel).await.unwrap());
    }
    let jobs = (0..released + 5)
        .map(|i| {
            let (repo, order) = (
                repo.clone(),
                show.general(&format!("again{i}"), 1, CAPACITY, t0(), hold),
            );
            move || async move { repo.insert_order(&order).await }
        })
        .collect();
    let results = race(jobs).await;
    let won = results.iter().filter(|r| r.is_ok()).count() as u32;
    assert_eq!(won, released, "exactly the released places are sold again");
    assert!(
        results
            .iter()
            .all(|r| matches!(r, Ok(_) | Err(Error::SoldOut { .. })))
    );

    // The shard rows agree with the tickets, and none is over its slice.
    let (active, over): (i64, i64) = sqlx::query_as(ZONE_USAGE_TOTALS)
    .bind(show.event.as_uuid())
    .fetch_one(db.pool())
    .await
    .unwrap();
    assert_eq!(active, i64::from(CAPACITY));
    assert_eq!(over, 0);
    assert_eq!(
        repo.active_tickets(show.event).await.unwrap().len() as u32,
        CAPACITY
    );
    db.drop_database().await.unwrap();
}

/// 500 orders race for a voucher of 3 uses straight into the repository, with no seat lock in
/// front: the database alone lets exactly 3 commit (counted from the order rows), the others
/// are `VOUCHER_USED_UP` and wrote nothing; a cancellation gives its use back.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_voucher_is_used_at_most_max_uses_under_a_race() {
    let db = database(16).await;
    let repo = repo(&db);
    let show = Show::new();
    let code = ticketing_core::domain::VoucherCode::new("EARLY").unwrap();
    let jobs = (0..500)
        .map(|i| {
            let mut order = show.general(&format!("c{i}"), 1, 1_000, t0(), TimeDelta::minutes(10));
            order.voucher = Some(VoucherClaim {
                code: code.clone(),
                max_uses: 3,
                max_per_customer: 1,
            });
            let repo = repo.clone();
            move || async move { (order.order.id, repo.insert_order(&order).await) }
        })
        .collect();
    let results = race(jobs).await;
    let won: Vec<OrderId> = results
        .iter()
        .filter(|(_, r)| matches!(r, Ok(InsertOutcome::Inserted)))
        .map(|(id, _)| *id)
        .collect();
    let used_up = results
        .iter()
        .filter(|(_, r)| {
            matches!(
                r,
                Err(Error::Voucher {
                    problem: ticketing_core::domain::VoucherProblem::UsedUp,
                    ..
                })
            )
        })
        .count();
    assert_eq!((won.len(), used_up), (3, 497));
    let counted = |db: &TestDatabase| {
        let pool = db.pool().clone();
        let (event, code) = (show.event.as_uuid(), code.to_string());
        async move {
            sqlx::query_scalar::<_, i64>(ACTIVE_VOUCHER_ORDERS)
                .bind(event)
                .bind(code)
                .fetch_one(&pool)
                .await
                .unwrap()
        }
    };
    assert_eq!(counted(&db).await, 3, "orders using the voucher in the database");
    assert_eq!(repo.active_tickets(show.event).await.unwrap().len(), 3);
    assert_eq!(repo.voucher_uses(show.event).await.unwrap(), vec![(code.clone(), 3)]);
    let cancel = Transition {
        order: won[0],
        action: TicketAction::Cancel,
        now: t0(),
        payment_ref: None,
    };
    assert!(repo.transition(&cancel).await.unwrap());
    assert_eq!(counted(&db).await, 2);
    assert_eq!(repo.voucher_uses(show.event).await.unwrap(), vec![(code, 2)]);
    db.drop_database().await.unwrap();
}

/// 1,000 orders of one or two general-admission places race for a tier of 100 and a tier of
/// 200 straight into the repository, with no seat lock in front: the database alone prices
/// exactly 100 tickets at the first tier and 200 at the second (counted from the ticket rows),
/// the rest at the zone's price, and each order is answered with the prices it was stored at;
/// a cancellation gives its first-tier place back to the next order.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_price_tier_sells_at_most_its_size_under_a_race() {
    let db = database(16).await;
    let repo = repo(&db);
    let show = Show::new();
    let (first, second) = (eur(500), eur(800));
    let tiered = |mut order: NewOrder| {
        order.price_tiers = vec![TierClaim {
            zone: zone("GA"),
            tiers: vec![(100, first), (200, second)],
        }];
        order
    };
    let jobs = (0..1_000)
        .map(|i| {
            let places = if i % 3 == 0 { 2 } else { 1 };
            let order = tiered(show.general(&format!("c{i}"), places, 2_000, t0(), TimeDelta::minutes(10)));
            let repo = repo.clone();
            move || async move { repo.insert_order(&order).await }
        })
        .collect();
    let results = race(jobs).await;
    let mut answered: BTreeMap<i64, usize> = BTreeMap::new();
    let mut orders = Vec::new();
    for result in results {
        match result {
            Ok(InsertOutcome::Priced(order)) => {
                for ticket in &order.tickets {
                    *answered.entry(ticket.price.minor).or_default() += 1;
                }
                orders.push(order);
            }
            other => panic!("every order fits the zone: {other:?}"),
        }
    }
    let places = 334 * 2 + 666;
    let expected: BTreeMap<i64, usize> =
        [(500, 100), (800, 200), (PRICE, places - 300)].into();
    assert_eq!(answered, expected, "prices the orders were answered with");
    let counted = |price: i64| {
        let pool = db.pool().clone();
        let event = show.event.as_uuid();
        async move {
            sqlx::query_scalar::<_, i64>(ACTIVE_TICKETS_AT_PRICE)
                .bind(event)
                .bind(price)
                .fetch_one(&pool)
                .await
                .unwrap()
        }
    };
    assert_eq!(counted(500).await, 100, "first-tier tickets in the database");
    assert_eq!(counted(800).await, 200, "second-tier tickets in the database");
    assert_eq!(counted(PRICE).await, (places - 300) as i64);
    let sales = repo.tier_sales(show.event).await.unwrap();
    assert_eq!(sales, vec![(zone("GA"), 0, 100), (zone("GA"), 1, 200)]);
    let early = orders
        .iter()
        .find(|o| o.tickets.iter().all(|t| t.price == first))
        .expect("an order wholly in the first tier");
    let cancel = Transition {
        order: early.id,
        action: TicketAction::Cancel,
        now: t0(),
        payment_ref: None,
    };
    assert!(repo.transition(&cancel).await.unwrap());
    let freed = early.tickets.len() as i64;
    assert_eq!(counted(500).await, 100 - freed);
    let next = tiered(show.general("next", 1, 2_000, t0(), TimeDelta::minutes(10)));
    match repo.insert_order(&next).await.unwrap() {
        InsertOutcome::Priced(order) => assert_eq!(order.tickets[0].price, first),
        other => panic!("{other:?}"),
    }
    assert_eq!(counted(500).await, 101 - freed);
    db.drop_database().await.unwrap();
}

/// A stored venue (zone `A`, one row of 20 seats) and event with the show's ids, and channel
/// `BOX` keeping the whole row.
async fn show_with_channel(db: &TestDatabase, show: &Show) -> Vec<SeatRef> {
    use ticketing_core::domain::{
        Channel, ChannelCode, ChannelKey, Event, EventSpec, Row, Venue, Zone, ZoneKind,
    };
    let catalog = catalog(db);
    let venue = Venue::new(
        show.venue,
        "Race Hall",
        vec![Zone {
            code: zone("A"),
            name: "Stalls".into(),
            kind: ZoneKind::Seated {
                rows: vec![Row {
                    label: "1".parse().unwrap(),
                    seats: 20,
                }],
            },
        }],
    )
    .unwrap();
    catalog.insert_venue(&venue).await.unwrap();
    let spec = EventSpec {
        name: "Race Night".into(),
        venue_id: show.venue,
        sale_opens: t0() - TimeDelta::hours(1),
        sale_closes: t0() + TimeDelta::days(1),
        prices: [(zone("A"), eur(PRICE))].into(),
        hold_time: TimeDelta::minutes(10),
        per_customer_limit: 4,
    };
    let event = Event::new(show.event, spec, &venue).unwrap();
    catalog.insert_event(&event).await.unwrap();
    let kept: Vec<SeatRef> = (1..=20).map(|n| seat(&format!("A:1:{n}"))).collect();
    let channel = Channel::new(
        &event,
        &venue,
        ChannelCode::new("BOX").unwrap(),
        &ChannelKey::generate(),
        kept.clone(),
    )
    .unwrap();
    repo(db).insert_channel(&channel).await.unwrap();
    kept
}

/// 40 public buyers (two per seat) retry orders for the 20 seats channel `BOX` keeps, straight
/// into the repository with no seat lock in front, while the channel releases them. A watcher
/// counts, by SQL in one statement each time, active tickets on seats still kept: always 0, so
/// no public ticket exists on a seat before its release committed. After it, each seat is sold
/// exactly once, and the outbox has exactly one release event.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn public_orders_never_get_a_kept_seat_before_its_release_commits() {
    use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
    use ticketing_core::domain::{ChannelCode, ChannelRelease, Currency};

    let db = database(48).await;
    let repo = repo(&db);
    let show = Show::new();
    let kept = show_with_channel(&db, &show).await;
    let released = Arc::new(AtomicBool::new(false));
    let finished = Arc::new(AtomicBool::new(false));
    let refused_before = Arc::new(AtomicU32::new(0));

    let watcher = {
        let (pool, finished, event) = (db.pool().clone(), finished.clone(), show.event);
        tokio::spawn(async move {
            let mut polls = 0u32;
            loop {
                let done = finished.load(Ordering::SeqCst);
                let n: i64 = sqlx::query_scalar(PUBLIC_TICKETS_ON_KEPT_SEATS)
                    .bind(event.as_uuid())
                    .fetch_one(&pool)
                    .await
                    .unwrap();
                assert_eq!(n, 0, "a public ticket on a seat still kept (poll {polls})");
                polls += 1;
                if done {
                    return polls;
                }
            }
        })
    };
    let buyers: Vec<_> = (0..40usize)
        .map(|i| {
            let (repo, released, refused_before) =
                (repo.clone(), released.clone(), refused_before.clone());
            let key = kept[i % 20].key();
            tokio::spawn(async move {
                for _ in 0..5_000 {
                    let was_released = released.load(Ordering::SeqCst);
                    let order =
                        show.seats(&format!("p{i}"), &[key.as_str()], t0(), TimeDelta::minutes(10));
                    match repo.insert_order(&order).await {
                        Ok(InsertOutcome::Inserted) => return true,
                        Err(Error::SeatsTaken { .. }) if was_released => return false,
                        Err(Error::SeatsTaken { .. }) => {
                            refused_before.fetch_add(1, Ordering::SeqCst);
                            tokio::task::yield_now().await;
                        }
                        other => panic!("unexpected answer: {other:?}"),
                    }
                }
                panic!("buyer {i} neither bought nor lost its seat");
            })
        })
        .collect();
    tokio::time::sleep(std::time::Duration::from_millis(30)).await;
    let release = ChannelRelease {
        event: show.event,
        channel: ChannelCode::new("BOX").unwrap(),
        seats: None,
        id: OrderId::from_uuid(uuid::Uuid::now_v7()),
        venue: show.venue,
        currency: Currency::new("EUR").unwrap(),
        at: t0(),
    };
    let newly = repo.release_channel_seats(&release).await.unwrap();
    released.store(true, Ordering::SeqCst);
    assert_eq!(newly, kept);
    let won = join_all(buyers)
        .await
        .into_iter()
        .filter(|r| *r.as_ref().expect("buyer panicked"))
        .count();
    finished.store(true, Ordering::SeqCst);
    let polls = watcher.await.expect("the watcher found a public ticket on a kept seat");
    assert!(polls > 1, "the watcher ran during the race");
    assert!(
        refused_before.load(Ordering::SeqCst) > 0,
        "some orders met the seats still kept"
    );
    assert_eq!(won, 20, "each released seat sold once");
    let active = repo.active_tickets(show.event).await.unwrap();
    let seats: HashSet<SeatRef> = active.iter().filter_map(|t| t.seat.clone()).collect();
    assert_eq!((active.len(), seats.len()), (20, 20));
    let releases = repo
        .outbox_after(0, 10_000)
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.event.kind == OutboxKind::ChannelSeatsReleased)
        .count();
    assert_eq!(releases, 1);
    assert!(repo.release_channel_seats(&release).await.unwrap().is_empty());
    db.drop_database().await.unwrap();
}
