//! `WaitingRoomService` over the in-memory adapters: the purchase gate with real tokens, and the
//! remembered "no waiting room" answer that spares purchases a round trip.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{TimeDelta, Utc};
use ticketing_core::Error;
use ticketing_core::domain::{
    AdmissionMode, AdmissionPolicy, AdmissionRefusal, AdmissionSecret, Currency, EventId,
    EventSpec, Money, QueueOrder, Row, Zone, ZoneKind,
};
use ticketing_core::service::{
    Backends, CatalogService, PurchaseRequest, QueueStatus, Selection, ServiceConfig,
    TicketService, WaitingRoomService,
};

async fn on_sale_event(backends: &Backends) -> EventId {
    let catalog = CatalogService::new(backends.clone());
    let rows = vec![Row {
        label: "1".parse().unwrap(),
        seats: 20,
    }];
    let zone = Zone {
        code: "A".parse().unwrap(),
        name: "Stalls".into(),
        kind: ZoneKind::Seated { rows },
    };
    let venue = catalog.create_venue("Hall", vec![zone]).await.unwrap();
    catalog
        .create_event(EventSpec {
            name: "Night".into(),
            venue_id: venue.id(),
            sale_opens: Utc::now() - TimeDelta::minutes(1),
            sale_closes: Utc::now() + TimeDelta::days(1),
            prices: BTreeMap::from([(
                "A".parse().unwrap(),
                Money::new(100, Currency::new("EUR").unwrap()),
            )]),
            hold_time: TimeDelta::minutes(10),
            per_customer_limit: 4,
        })
        .await
        .unwrap()
        .id()
}

fn request(event: EventId, customer: &str, seat: &str) -> PurchaseRequest {
    PurchaseRequest {
        event,
        customer: customer.parse().unwrap(),
        selection: Selection::Seats(vec![seat.parse().unwrap()]),
        idempotency_key: None,
        voucher: None,
        channel: None,
    }
}

fn secret() -> AdmissionSecret {
    AdmissionSecret::new(b"shared by both servers").unwrap()
}

fn cap(n: u32) -> AdmissionPolicy {
    AdmissionPolicy::new(
        AdmissionMode::Concurrent(n),
        QueueOrder::Fifo,
        TimeDelta::minutes(5),
    )
    .unwrap()
}

#[tokio::test]
async fn a_failed_purchase_keeps_the_admission_and_a_bought_one_uses_it_up() {
    let backends = Backends::in_memory();
    let event = on_sale_event(&backends).await;
    let tickets = TicketService::new(backends.clone(), ServiceConfig::default());
    let room = WaitingRoomService::new(backends, secret());
    // Carol bought A:1:1 before the waiting room was set up.
    room.purchase(&tickets, request(event, "carol", "A:1:1"), None)
        .await
        .unwrap();
    room.configure(event, Some(cap(1))).await.unwrap();
    let alice = "alice".parse().unwrap();
    let QueueStatus::Admitted { token, .. } = room.join(event, &alice).await.unwrap() else {
        panic!("an empty room admits at once");
    };
    let taken = room
        .purchase(&tickets, request(event, "alice", "A:1:1"), Some(&token))
        .await;
    assert!(matches!(taken, Err(Error::SeatsTaken { .. })), "{taken:?}");
    let bought = room
        .purchase(&tickets, request(event, "alice", "A:1:2"), Some(&token))
        .await;
    assert!(
        bought.is_ok(),
        "the failed try gave the admission back: {bought:?}"
    );
    let replay = room
        .purchase(&tickets, request(event, "alice", "A:1:3"), Some(&token))
        .await;
    assert!(
        matches!(
            replay,
            Err(Error::NotAdmitted {
                reason: AdmissionRefusal::NotAdmitted,
                ..
            })
        ),
        "{replay:?}"
    );
    assert_eq!(
        room.status(event, &alice).await.unwrap(),
        QueueStatus::NotQueued
    );
}

#[tokio::test]
async fn another_server_s_policy_is_enforced_within_the_max_age() {
    let backends = Backends::in_memory();
    let event = on_sale_event(&backends).await;
    let tickets = TicketService::new(backends.clone(), ServiceConfig::default());
    let max_age = Duration::from_millis(200);
    let admin = WaitingRoomService::new(backends.clone(), secret());
    let other = WaitingRoomService::new(backends, secret()).with_policy_max_age(max_age);
    other
        .purchase(&tickets, request(event, "ann", "A:1:1"), None)
        .await
        .unwrap();
    admin.configure(event, Some(cap(1))).await.unwrap();
    let refused = admin
        .purchase(&tickets, request(event, "bob", "A:1:2"), None)
        .await;
    assert!(
        matches!(
            refused,
            Err(Error::NotAdmitted {
                reason: AdmissionRefusal::Missing,
                ..
            })
        ),
        "the configuring server enforces it at once: {refused:?}"
    );
    // The other server still trusts its answer from before, for at most `max_age`.
    other
        .purchase(&tickets, request(event, "bob", "A:1:3"), None)
        .await
        .unwrap();
    tokio::time::sleep(max_age).await;
    let refused = other
        .purchase(&tickets, request(event, "dan", "A:1:4"), None)
        .await;
    assert!(
        matches!(
            refused,
            Err(Error::NotAdmitted {
                reason: AdmissionRefusal::Missing,
                ..
            })
        ),
        "past the max age the other server asks again: {refused:?}"
    );
}
