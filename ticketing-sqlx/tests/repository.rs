//! `MySqlTicketRepository` and `MySqlCatalog`, one caller at a time: what is stored, the
//! compare-and-set guards, the counters, idempotency and the outbox.

mod support;

use std::collections::BTreeMap;

use chrono::TimeDelta;
use support::*;
use ticketing_core::Error;
use ticketing_core::domain::{
    Event, EventId, EventSpec, OrderId, OutboxKind, PaymentRef, Row, TicketAction, TicketStatus,
    Venue, VenueId, Zone, ZoneKind,
};
use ticketing_core::ports::{CatalogRepository, InsertOutcome, TicketRepository, Transition};
use ticketing_sqlx::{MySqlCatalog, MySqlTicketRepository};
use uuid::Uuid;

fn act(order: OrderId, action: TicketAction, now: chrono::DateTime<chrono::Utc>) -> Transition {
    let payment_ref = (action == TicketAction::Pay).then(|| PaymentRef::new("pi_123").unwrap());
    Transition {
        order,
        action,
        now,
        payment_ref,
    }
}

#[tokio::test]
async fn an_order_round_trips_with_every_field() {
    let db = database(4).await;
    let repo = MySqlTicketRepository::new(db.pool().clone());
    let show = Show::new();
    let new = show.seats("alice", &["A:1:2", "A:1:1"], t0(), TimeDelta::minutes(10));

    assert_eq!(
        repo.insert_order(&new).await.unwrap(),
        InsertOutcome::Inserted
    );
    assert_eq!(
        repo.order(new.order.id).await.unwrap(),
        Some(new.order.clone())
    );
    for t in &new.order.tickets {
        assert_eq!(repo.ticket(t.id).await.unwrap().as_ref(), Some(t));
    }
    let mut active = repo.active_tickets(show.event).await.unwrap();
    active.sort_by(|a, b| a.seat.cmp(&b.seat));
    assert_eq!(active, new.order.tickets);
    assert_eq!(
        repo.ticket(ticketing_core::domain::TicketId::from_uuid(Uuid::now_v7()))
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        repo.order(OrderId::from_uuid(Uuid::now_v7()))
            .await
            .unwrap(),
        None
    );

    // Pay: status, paid_at and the payment reference are stored on every ticket.
    let paid_at = t0() + TimeDelta::minutes(1);
    assert!(
        repo.transition(&act(new.order.id, TicketAction::Pay, paid_at))
            .await
            .unwrap()
    );
    let paid = repo.order(new.order.id).await.unwrap().unwrap();
    assert_eq!(paid.status, TicketStatus::Paid);
    for t in &paid.tickets {
        assert_eq!(t.paid_at, Some(paid_at));
        assert_eq!(t.payment_ref.as_ref().map(|p| p.as_str()), Some("pi_123"));
    }
    assert_eq!(
        repo.count_by_status(show.event, TicketStatus::Paid)
            .await
            .unwrap(),
        2
    );
    assert_eq!(
        repo.count_by_status(show.event, TicketStatus::PendingPayment)
            .await
            .unwrap(),
        0
    );
    assert_eq!(
        repo.revenue_minor(show.venue, show.event).await.unwrap(),
        2 * PRICE
    );
    assert_eq!(
        repo.revenue_minor(VenueId::from_uuid(Uuid::now_v7()), show.event)
            .await
            .unwrap(),
        0
    );
    db.drop_database().await.unwrap();
}

#[tokio::test]
async fn a_taken_seat_is_named_and_freed_by_a_terminal_transition() {
    let db = database(4).await;
    let repo = MySqlTicketRepository::new(db.pool().clone());
    let show = Show::new();
    let hold = TimeDelta::minutes(10);
    let first = show.seats("alice", &["A:1:1", "A:1:2"], t0(), hold);
    let second = show.seats("bob", &["A:1:3", "A:1:2", "A:1:4"], t0(), hold);
    repo.insert_order(&first).await.unwrap();

    match repo.insert_order(&second).await {
        Err(Error::SeatsTaken { seats }) => assert_eq!(seats, vec![seat("A:1:2")]),
        other => panic!("expected SeatsTaken, got {other:?}"),
    }
    // Nothing of the loser was written.
    assert_eq!(repo.order(second.order.id).await.unwrap(), None);
    assert_eq!(repo.outbox_after(0, 100).await.unwrap().len(), 1);

    // The same seats in another event are a different thing.
    let elsewhere = Show::new().seats("bob", &["A:1:2"], t0(), hold);
    assert_eq!(
        repo.insert_order(&elsewhere).await.unwrap(),
        InsertOutcome::Inserted
    );

    assert!(
        repo.transition(&act(first.order.id, TicketAction::Cancel, t0()))
            .await
            .unwrap()
    );
    assert_eq!(
        repo.insert_order(&second).await.unwrap(),
        InsertOutcome::Inserted
    );
    db.drop_database().await.unwrap();
}

#[tokio::test]
async fn transitions_are_guarded_like_the_state_machine() {
    let db = database(4).await;
    let repo = MySqlTicketRepository::new(db.pool().clone());
    let show = Show::new();
    let hold = TimeDelta::minutes(10);
    let deadline = t0() + hold;
    let new = show.seats("alice", &["A:1:1"], t0(), hold);
    let id = new.order.id;
    repo.insert_order(&new).await.unwrap();

    // Paying at the deadline is too late; expiring before it is too early; refunding unpaid fails.
    assert!(
        !repo
            .transition(&act(id, TicketAction::Pay, deadline))
            .await
            .unwrap()
    );
    assert!(
        !repo
            .transition(&act(id, TicketAction::Expire, deadline - ms(1)))
            .await
            .unwrap()
    );
    assert!(
        !repo
            .transition(&act(id, TicketAction::Refund, t0()))
            .await
            .unwrap()
    );
    assert!(
        !repo
            .transition(&act(
                OrderId::from_uuid(Uuid::now_v7()),
                TicketAction::Cancel,
                t0()
            ))
            .await
            .unwrap()
    );
    assert_eq!(
        repo.order(id).await.unwrap().unwrap().status,
        TicketStatus::PendingPayment
    );

    // One millisecond before the deadline a payment goes through; then only a refund moves it.
    assert!(
        repo.transition(&act(id, TicketAction::Pay, deadline - ms(1)))
            .await
            .unwrap()
    );
    assert!(
        !repo
            .transition(&act(id, TicketAction::Pay, t0()))
            .await
            .unwrap()
    );
    assert!(
        !repo
            .transition(&act(id, TicketAction::Cancel, t0()))
            .await
            .unwrap()
    );
    assert!(
        !repo
            .transition(&act(id, TicketAction::Expire, deadline))
            .await
            .unwrap()
    );
    assert!(
        repo.expire_due(deadline + hold, 10)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        repo.transition(&act(id, TicketAction::Refund, deadline))
            .await
            .unwrap()
    );
    assert!(
        !repo
            .transition(&act(id, TicketAction::Refund, deadline))
            .await
            .unwrap()
    );
    assert_eq!(
        repo.order(id).await.unwrap().unwrap().status,
        TicketStatus::Refunded
    );
    assert!(repo.active_tickets(show.event).await.unwrap().is_empty());

    // An unpaid order expires exactly at its deadline, through the sweeper or a direct CAS.
    let late = show.seats("bob", &["A:1:1"], t0(), hold);
    repo.insert_order(&late).await.unwrap();
    assert!(
        repo.expire_due(deadline - ms(1), 10)
            .await
            .unwrap()
            .is_empty()
    );
    let expired = repo.expire_due(deadline, 10).await.unwrap();
    assert_eq!(expired.len(), 1);
    assert_eq!(expired[0].id, late.order.id);
    assert_eq!(expired[0].status, TicketStatus::Expired);
    assert!(
        expired[0]
            .tickets
            .iter()
            .all(|t| t.status == TicketStatus::Expired)
    );
    let direct = show.seats("carol", &["A:1:1"], t0(), hold);
    repo.insert_order(&direct).await.unwrap();
    assert!(
        repo.transition(&act(direct.order.id, TicketAction::Expire, deadline))
            .await
            .unwrap()
    );
    assert_eq!(
        repo.count_by_status(show.event, TicketStatus::Expired)
            .await
            .unwrap(),
        2
    );
    db.drop_database().await.unwrap();
}

#[tokio::test]
async fn counters_enforce_capacity_and_limit_and_are_given_back() {
    let db = database(4).await;
    let repo = MySqlTicketRepository::new(db.pool().clone());
    let show = Show::new();
    let hold = TimeDelta::minutes(10);

    // General admission: capacity 3.
    let two = show.general("alice", 2, 3, t0(), hold);
    repo.insert_order(&two).await.unwrap();
    match repo
        .insert_order(&show.general("bob", 2, 3, t0(), hold))
        .await
    {
        Err(Error::SoldOut {
            zone: z,
            requested: 2,
        }) => assert_eq!(z, zone("GA")),
        other => panic!("expected SoldOut, got {other:?}"),
    }
    repo.insert_order(&show.general("bob", 1, 3, t0(), hold))
        .await
        .unwrap();
    assert!(matches!(
        repo.insert_order(&show.general("carol", 1, 3, t0(), hold))
            .await,
        Err(Error::SoldOut { .. })
    ));
    // Expiry gives the places back, in the same transaction.
    assert_eq!(repo.expire_due(t0() + hold, 1).await.unwrap().len(), 1);
    repo.insert_order(&show.general("carol", 1, 3, t0() + hold, hold))
        .await
        .unwrap();

    // Per-customer limit 3 (GA tickets above count too: dave has none).
    let limited = |seats: &[&str]| {
        let mut new = show.seats("dave", seats, t0(), hold);
        new.per_customer_limit = 3;
        new
    };
    let first = limited(&["B:1:1", "B:1:2"]);
    repo.insert_order(&first).await.unwrap();
    match repo.insert_order(&limited(&["B:1:3", "B:1:4"])).await {
        Err(Error::LimitExceeded { limit: 3 }) => {}
        other => panic!("expected LimitExceeded, got {other:?}"),
    }
    // More than the limit in one order never reaches the database.
    assert!(matches!(
        repo.insert_order(&limited(&["B:2:1", "B:2:2", "B:2:3", "B:2:4"]))
            .await,
        Err(Error::LimitExceeded { .. })
    ));
    // A refund gives the customer's tickets back.
    assert!(
        repo.transition(&act(first.order.id, TicketAction::Pay, t0()))
            .await
            .unwrap()
    );
    assert!(
        repo.transition(&act(first.order.id, TicketAction::Refund, t0()))
            .await
            .unwrap()
    );
    repo.insert_order(&limited(&["B:1:3", "B:1:4"]))
        .await
        .unwrap();
    db.drop_database().await.unwrap();
}

#[tokio::test]
async fn a_duplicate_idempotency_key_returns_the_stored_record_and_writes_nothing() {
    let db = database(4).await;
    let repo = MySqlTicketRepository::new(db.pool().clone());
    let show = Show::new();
    let hold = TimeDelta::minutes(10);
    let first = with_key(show.seats("alice", &["A:1:1"], t0(), hold), "key-1", "fp-1");
    assert_eq!(
        repo.insert_order(&first).await.unwrap(),
        InsertOutcome::Inserted
    );
    let record = first.idempotency.clone().unwrap();
    assert_eq!(
        repo.idempotency_record(&record.customer, &record.key)
            .await
            .unwrap(),
        Some(record.clone())
    );

    // Same customer and key, another request and other seats: the stored record, nothing written.
    let retry = with_key(show.seats("alice", &["A:1:2"], t0(), hold), "key-1", "fp-2");
    assert_eq!(
        repo.insert_order(&retry).await.unwrap(),
        InsertOutcome::DuplicateKey(record)
    );
    assert_eq!(repo.order(retry.order.id).await.unwrap(), None);
    assert_eq!(repo.active_tickets(show.event).await.unwrap().len(), 1);
    assert_eq!(repo.outbox_after(0, 10).await.unwrap().len(), 1);

    // Keys are scoped per customer.
    let other = with_key(show.seats("bob", &["A:1:2"], t0(), hold), "key-1", "fp-1");
    assert_eq!(
        repo.insert_order(&other).await.unwrap(),
        InsertOutcome::Inserted
    );
    assert_eq!(
        repo.idempotency_record(&customer("carol"), &record_key("key-1"))
            .await
            .unwrap(),
        None
    );

    // A failed purchase does not keep its key: the key is free for the retry.
    let blocked = with_key(show.seats("carol", &["A:1:1"], t0(), hold), "key-2", "fp");
    assert!(matches!(
        repo.insert_order(&blocked).await,
        Err(Error::SeatsTaken { .. })
    ));
    assert_eq!(
        repo.idempotency_record(&customer("carol"), &record_key("key-2"))
            .await
            .unwrap(),
        None
    );
    db.drop_database().await.unwrap();
}

fn record_key(key: &str) -> ticketing_core::domain::IdempotencyKey {
    ticketing_core::domain::IdempotencyKey::new(key).unwrap()
}

#[tokio::test]
async fn every_change_writes_one_outbox_row_in_order() {
    let db = database(4).await;
    let repo = MySqlTicketRepository::new(db.pool().clone());
    let show = Show::new();
    let hold = TimeDelta::minutes(10);
    let a = show.seats("alice", &["A:1:1", "A:1:2"], t0(), hold);
    let b = show.seats("bob", &["A:1:3"], t0(), hold);
    let c = show.general("carol", 2, 10, t0(), hold);
    repo.insert_order(&a).await.unwrap();
    repo.insert_order(&b).await.unwrap();
    repo.insert_order(&c).await.unwrap();
    assert!(
        repo.transition(&act(a.order.id, TicketAction::Pay, t0() + ms(5)))
            .await
            .unwrap()
    );
    assert!(
        repo.transition(&act(b.order.id, TicketAction::Cancel, t0() + ms(6)))
            .await
            .unwrap()
    );
    assert!(
        repo.transition(&act(a.order.id, TicketAction::Refund, t0() + ms(7)))
            .await
            .unwrap()
    );
    assert_eq!(repo.expire_due(t0() + hold, 10).await.unwrap().len(), 1);
    // A refused transition writes nothing.
    assert!(
        !repo
            .transition(&act(b.order.id, TicketAction::Pay, t0()))
            .await
            .unwrap()
    );

    let all = repo.outbox_after(0, 100).await.unwrap();
    let seen: Vec<(u64, OutboxKind, OrderId)> = all
        .iter()
        .map(|e| (e.seq, e.event.kind, e.event.order_id))
        .collect();
    assert_eq!(
        seen,
        vec![
            (1, OutboxKind::TicketReserved, a.order.id),
            (2, OutboxKind::TicketReserved, b.order.id),
            (3, OutboxKind::TicketReserved, c.order.id),
            (4, OutboxKind::TicketPaid, a.order.id),
            (5, OutboxKind::TicketCancelled, b.order.id),
            (6, OutboxKind::TicketRefunded, a.order.id),
            (7, OutboxKind::TicketExpired, c.order.id),
        ]
    );
    // The payload is the whole event: tickets, seats, amount, time.
    let paid = &all[3].event;
    assert_eq!(
        paid.ticket_ids,
        a.order.tickets.iter().map(|t| t.id).collect::<Vec<_>>()
    );
    assert_eq!(paid.seats, vec![seat("A:1:1"), seat("A:1:2")]);
    assert_eq!(paid.amount, eur(2 * PRICE));
    assert_eq!(paid.at, t0() + ms(5));
    assert_eq!(all[6].event.at, t0() + hold);
    // Paging.
    let page: Vec<u64> = repo
        .outbox_after(2, 3)
        .await
        .unwrap()
        .iter()
        .map(|e| e.seq)
        .collect();
    assert_eq!(page, vec![3, 4, 5]);
    assert!(repo.outbox_after(7, 10).await.unwrap().is_empty());
    db.drop_database().await.unwrap();
}

#[tokio::test]
async fn malformed_orders_are_refused_before_the_database() {
    let db = database(2).await;
    let repo = MySqlTicketRepository::new(db.pool().clone());
    let show = Show::new();
    let hold = TimeDelta::minutes(10);
    let mut twice = show.seats("alice", &["A:1:1", "A:1:1"], t0(), hold);
    assert!(matches!(
        repo.insert_order(&twice).await,
        Err(Error::InvalidRequest { field: "seats", .. })
    ));
    twice.order.tickets.clear();
    assert!(matches!(
        repo.insert_order(&twice).await,
        Err(Error::InvalidRequest { .. })
    ));
    let mut ga_without_capacity = show.general("alice", 1, 5, t0(), hold);
    ga_without_capacity.general_admission = None;
    assert!(matches!(
        repo.insert_order(&ga_without_capacity).await,
        Err(Error::InvalidRequest { .. })
    ));
    assert!(repo.outbox_after(0, 10).await.unwrap().is_empty());
    db.drop_database().await.unwrap();
}

#[tokio::test]
async fn the_catalog_round_trips_venues_and_events() {
    let db = database(2).await;
    let catalog = MySqlCatalog::new(db.pool().clone());
    let venue = Venue::new(
        VenueId::from_uuid(Uuid::now_v7()),
        "Großer Saal",
        vec![
            Zone {
                code: zone("STALLS"),
                name: "Stalls".into(),
                kind: ZoneKind::Seated {
                    rows: vec![
                        Row {
                            label: "B".parse().unwrap(),
                            seats: 12,
                        },
                        Row {
                            label: "A".parse().unwrap(),
                            seats: 10,
                        },
                    ],
                },
            },
            Zone {
                code: zone("FLOOR"),
                name: "Floor".into(),
                kind: ZoneKind::GeneralAdmission { capacity: 500 },
            },
            Zone {
                code: zone("a"),
                name: "lower-case zone".into(),
                kind: ZoneKind::Seated {
                    rows: vec![Row {
                        label: "1".parse().unwrap(),
                        seats: 2,
                    }],
                },
            },
        ],
    )
    .unwrap();
    catalog.insert_venue(&venue).await.unwrap();
    assert_eq!(
        catalog.venue(venue.id()).await.unwrap(),
        Some(venue.clone())
    );
    assert!(matches!(
        catalog.insert_venue(&venue).await,
        Err(Error::InvalidRequest {
            field: "venue_id",
            ..
        })
    ));
    assert_eq!(
        catalog
            .venue(VenueId::from_uuid(Uuid::now_v7()))
            .await
            .unwrap(),
        None
    );

    let spec = EventSpec {
        name: "Première".into(),
        venue_id: venue.id(),
        sale_opens: t0(),
        sale_closes: t0() + TimeDelta::days(30) + ms(123),
        prices: BTreeMap::from([(zone("STALLS"), eur(4_500)), (zone("FLOOR"), eur(2_000))]),
        hold_time: TimeDelta::minutes(7),
        per_customer_limit: 6,
    };
    let event = Event::new(EventId::from_uuid(Uuid::now_v7()), spec.clone(), &venue).unwrap();
    catalog.insert_event(&event).await.unwrap();
    assert_eq!(
        catalog.event(event.id()).await.unwrap(),
        Some(event.clone())
    );
    assert!(matches!(
        catalog.insert_event(&event).await,
        Err(Error::InvalidRequest {
            field: "event_id",
            ..
        })
    ));
    assert_eq!(
        catalog
            .event(EventId::from_uuid(Uuid::now_v7()))
            .await
            .unwrap(),
        None
    );

    // An event at a venue the catalog does not have.
    let elsewhere = Venue::new(
        VenueId::from_uuid(Uuid::now_v7()),
        "Elsewhere",
        venue.zones().to_vec(),
    )
    .unwrap();
    let orphan = Event::new(
        EventId::from_uuid(Uuid::now_v7()),
        EventSpec {
            venue_id: elsewhere.id(),
            ..spec
        },
        &elsewhere,
    )
    .unwrap();
    assert!(matches!(
        catalog.insert_event(&orphan).await,
        Err(Error::NotFound { what: "venue", .. })
    ));
    assert_eq!(catalog.event(orphan.id()).await.unwrap(), None);
    db.drop_database().await.unwrap();
}

/// Servers that start together each migrate the same fresh database: they take turns, all
/// succeed, and every migration is applied once. (sqlx's own lock, `GET_LOCK(name, -1)`, does
/// not wait on MariaDB, and one of two servers used to fail on a duplicate version.)
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn servers_starting_together_migrate_one_after_the_other() {
    let db = database(1).await;
    let url = format!(
        "{}/{}",
        std::env::var(ticketing_sqlx::testing::URL_VAR)
            .unwrap_or_else(|_| ticketing_sqlx::testing::DEFAULT_URL.to_owned())
            .rsplit_once('/')
            .expect("a URL with a database")
            .0,
        db.name()
    );
    // A fresh database again: drop what `database` applied.
    let mut tables: Vec<String> = sqlx::query_scalar("SHOW TABLES")
        .fetch_all(db.pool())
        .await
        .expect("tables");
    tables.sort();
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "SET FOREIGN_KEY_CHECKS = 0; DROP TABLE {}",
        tables.join(", ")
    )))
    .execute(db.pool())
    .await
    .expect("drop the tables");
    let servers = (0..6).map(|_| {
        let url = url.clone();
        tokio::spawn(async move {
            let pool = ticketing_sqlx::connect(&url, 2).await?;
            ticketing_sqlx::migrate(&pool).await
        })
    });
    for result in futures::future::join_all(servers).await {
        result.expect("task").expect("every server migrates");
    }
    let applied: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM _sqlx_migrations")
        .fetch_one(db.pool())
        .await
        .expect("applied migrations");
    assert_eq!(
        applied as usize,
        ticketing_sqlx::migrations().iter().count()
    );
    db.drop_database().await.expect("drop the test database");
}
