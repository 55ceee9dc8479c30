//! The outbox's numbering against real transactions, one set of checks included by each
//! database's outbox module (`#[path]`), which names its database, repository, test database
//! and transaction start in a `backend` module.

use chrono::{TimeDelta, TimeZone, Utc};
use ticketing_core::domain::{
    Currency, CustomerId, EventId, Money, OrderId, OutboxEntry, OutboxEvent, OutboxKind, VenueId,
};
use ticketing_core::ports::{OutboxStore, TicketRepository};
use uuid::Uuid;

use super::backend::{Db, Repository, TestDatabase, begin};
use crate::flows::outbox::Outbox;

fn reserved(order: OrderId) -> OutboxEvent {
    OutboxEvent {
        version: ticketing_core::domain::OUTBOX_SCHEMA_VERSION,
        kind: OutboxKind::TicketReserved,
        order_id: order,
        event_id: EventId::from_uuid(Uuid::now_v7()),
        venue_id: VenueId::from_uuid(Uuid::now_v7()),
        customer: CustomerId::new("c").unwrap(),
        ticket_ids: Vec::new(),
        seats: Vec::new(),
        amount: Money::new(100, Currency::new("EUR").unwrap()),
        at: Utc.with_ymd_and_hms(2026, 12, 2, 12, 0, 0).unwrap(),
        lines: Vec::new(),
        payment: None,
        deadline: None,
        channel: None,
        offer: None,
    }
}

fn orders(entries: &[OutboxEntry]) -> Vec<(u64, OrderId)> {
    entries.iter().map(|e| (e.seq, e.event.order_id)).collect()
}

/// A transaction that inserted its outbox row before another one and commits after it gets
/// the lower id but the higher number, and is published once it commits: a relay reading
/// "ids above the last one published" would skip it for good.
#[tokio::test]
async fn a_row_that_commits_late_under_a_lower_id_is_published_after_it_commits() {
    let db = TestDatabase::create(4).await.unwrap();
    let pool = db.pool();
    let repo = Repository::new(pool.clone());
    let (slow_order, fast_order) = (
        OrderId::from_uuid(Uuid::now_v7()),
        OrderId::from_uuid(Uuid::now_v7()),
    );
    let mut slow = begin(pool).await.unwrap();
    Db::append(&mut slow, &[reserved(slow_order)])
        .await
        .unwrap();
    let mut fast = begin(pool).await.unwrap();
    Db::append(&mut fast, &[reserved(fast_order)])
        .await
        .unwrap();
    // The fast writer commits while the slow one is still open: no lock makes it wait.
    fast.commit().await.unwrap();

    let now = Utc::now();
    assert!(
        repo.try_acquire_lease("r", now, TimeDelta::seconds(30))
            .await
            .unwrap()
    );
    let first = repo.unsent(100).await.unwrap();
    assert_eq!(orders(&first), [(1, fast_order)], "only committed rows");
    assert!(repo.mark_sent("r", 1).await.unwrap());
    assert!(repo.unsent(100).await.unwrap().is_empty());

    slow.commit().await.unwrap();
    let second = repo.unsent(100).await.unwrap();
    assert_eq!(
        orders(&second),
        [(2, slow_order)],
        "published once committed"
    );
    assert_eq!(repo.outbox_head().await.unwrap(), Some(2));
    assert_eq!(
        orders(&repo.outbox_after(0, 10).await.unwrap()),
        [(1, fast_order), (2, slow_order)]
    );
    db.drop_database().await.unwrap();
}

/// A rolled-back writer leaves an id unused and no gap in the numbers.
#[tokio::test]
async fn a_rolled_back_row_leaves_no_gap_in_the_numbers() {
    let db = TestDatabase::create(4).await.unwrap();
    let pool = db.pool();
    let ids = [(); 3].map(|_| OrderId::from_uuid(Uuid::now_v7()));
    for (n, id) in ids.iter().enumerate() {
        let mut tx = begin(pool).await.unwrap();
        Db::append(&mut tx, &[reserved(*id)]).await.unwrap();
        if n == 1 {
            tx.rollback().await.unwrap();
        } else {
            tx.commit().await.unwrap();
        }
    }
    assert_eq!(
        orders(&Db::after(pool, 0, 10).await.unwrap()),
        [(1, ids[0]), (2, ids[2])]
    );
    db.drop_database().await.unwrap();
}
