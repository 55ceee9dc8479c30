//! `MySqlSeatLock` beyond the port's contract (which `tests/contracts.rs` runs): forgetting every
//! event at once, as the conformance suite's data loss does.

mod support;

use async_trait::async_trait;
use chrono::TimeDelta;
use support::*;
use ticketing_core::domain::{EventId, OrderId, TicketId};
use ticketing_core::ports::{
    HoldItem, HoldOutcome, HoldPage, HoldRequest, HoldSource, LockSnapshot, SeatLock,
};
use ticketing_sqlx::MySqlSeatLock;
use uuid::Uuid;

/// A source without holds.
struct Empty;

#[async_trait]
impl HoldSource for Empty {
    async fn active_holds(
        &self,
        _event: EventId,
        _after: Option<TicketId>,
    ) -> ticketing_core::Result<HoldPage> {
        Ok(HoldPage::default())
    }
}

#[tokio::test]
async fn forgetting_all_events_leaves_none_loaded_and_a_rebuild_starts_from_the_source() {
    let db = database(4).await;
    let lock = MySqlSeatLock::new(db.pool().clone());
    let (first, second) = (Show::new().event, Show::new().event);
    let order = OrderId::from_uuid(Uuid::now_v7());
    let items = vec![
        HoldItem::Seat(seat("A:1:1")),
        HoldItem::General {
            zone: zone("GA"),
            quantity: 2,
            capacity: 10,
        },
    ];
    let hold = |event| HoldRequest {
        event,
        order,
        items: items.clone(),
        now: t0(),
        until: t0() + TimeDelta::minutes(10),
    };
    for event in [first, second] {
        lock.rebuild(event, &Empty).await.unwrap();
        assert_eq!(lock.hold(&hold(event)).await.unwrap(), HoldOutcome::Held);
    }

    lock.forget_all().await.unwrap();
    for event in [first, second] {
        assert_eq!(lock.snapshot(event, t0()).await.unwrap(), None);
        assert_eq!(
            lock.hold(&hold(event)).await.unwrap(),
            HoldOutcome::NotLoaded
        );
    }
    lock.rebuild(second, &Empty).await.unwrap();
    assert_eq!(
        lock.snapshot(second, t0()).await.unwrap(),
        Some(LockSnapshot::default()),
        "nothing of the forgotten state comes back"
    );
    assert_eq!(lock.snapshot(first, t0()).await.unwrap(), None);
    db.drop_database().await.unwrap();
}
