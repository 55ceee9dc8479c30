//! Conformance checks of channel-reserved seats: the public can neither buy nor be given a
//! reserved seat (named, best available, past a stale service cache: the repository refuses
//! it), the channel with its key can, a wrong key is refused, and a release gives the seats to
//! the public at once, with one outbox event, so that a stampede buys each released seat once.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use crate::Error;
use crate::domain::{ChannelAccess, ChannelCode, ChannelKey, OutboxKind, SalesChange, SeatRef};
use crate::ports::EventSink;
use crate::service::{
    BestAvailable, CatalogService, PurchaseRequest, SeatAvailability, SeatLockSync, Selection,
    ServiceConfig,
};

use super::Harness;
use super::checks::{count, race_purchases};
use super::fixture::{Fixture, Layout, outcome};

/// Concurrent buyers of each stampede.
const STAMPEDE: usize = 120;

fn code(text: &str) -> ChannelCode {
    ChannelCode::new(text).expect("channel code")
}

/// The fixture's seats `range` (0-based, row by row in zone A).
fn seats(f: &Fixture, range: std::ops::Range<u32>) -> Vec<SeatRef> {
    range.map(|n| f.seat(n)).collect()
}

/// Creates channel `text` keeping `kept` back; its key.
async fn create_channel(f: &Fixture, text: &str, kept: Vec<SeatRef>) -> ChannelKey {
    let (channel, key) = CatalogService::new(f.backends.clone())
        .create_channel(f.event.id(), code(text), kept.clone())
        .await
        .expect("create channel");
    assert_eq!(channel.reserved().len(), kept.len());
    key
}

fn with_channel(request: PurchaseRequest, text: &str, key: &ChannelKey) -> PurchaseRequest {
    PurchaseRequest {
        channel: Some(ChannelAccess {
            code: code(text),
            key: key.clone(),
        }),
        ..request
    }
}

/// A best-available purchase of `quantity` seats of zone A.
fn best(f: &Fixture, customer: &str, quantity: u32) -> PurchaseRequest {
    PurchaseRequest {
        selection: Selection::BestAvailable(BestAvailable {
            zone: Some("A".parse().expect("zone")),
            quantity,
            rows: None,
            max_price: None,
        }),
        ..f.seats_request(customer, Vec::new())
    }
}

/// The event's active tickets on seats, by seat, with their buyer.
async fn sold(f: &Fixture) -> HashMap<SeatRef, String> {
    f.backends
        .tickets
        .active_tickets(f.event.id())
        .await
        .expect("active tickets")
        .into_iter()
        .filter_map(|t| t.seat.map(|s| (s, t.customer.as_str().to_owned())))
        .collect()
}

/// The `ChannelSeatsReleased` events of the fixture's event in the outbox.
async fn releases(f: &Fixture) -> Vec<crate::domain::OutboxEntry> {
    f.backends
        .tickets
        .outbox_after(0, 100_000)
        .await
        .expect("outbox")
        .into_iter()
        .filter(|e| {
            e.event.event_id == f.event.id() && e.event.kind == OutboxKind::ChannelSeatsReleased
        })
        .collect()
}

/// Rows 1 and 2 of zone A are kept for channel `BOX`. Past a service whose cached reservations
/// predate a second channel `LATE` (seat 6 of row 3), the repository refuses the public that
/// seat. 120 public buyers of `BOX`'s seats by name are each refused `SEATS_TAKEN`, and 120
/// public best-available buyers of pairs share what rows 3 and 4 leave (9 pairs) and never get
/// a reserved seat. A wrong key and an unknown channel are
/// `CHANNEL_KEY_INVALID`. The channel with its key buys named reserved seats, and its
/// best-available purchases, with the public rows full, get reserved ones. The public map
/// shows the unsold reserved seats taken.
pub async fn channel_seats_are_kept_from_the_public(harness: Harness) {
    let f = Arc::new(Fixture::new(&harness, Layout::default()).await);
    let kept = seats(&f, 0..20);
    let key = create_channel(&f, "BOX", kept.clone()).await;

    // A service whose cached reservations were read before the channel `LATE` existed passes
    // the public buyer on; the repository refuses the seat.
    let cached = f.service_with_config(ServiceConfig {
        channel_max_age: Duration::from_secs(3_600),
        ..f.config.clone()
    });
    let late_seat = f.seat(25);
    let warm = cached
        .purchase(f.seats_request("warm", vec![f.seat(0)]))
        .await;
    assert_eq!(
        outcome(&warm),
        "SEATS_TAKEN",
        "BOX's seat, also in the cache"
    );
    create_channel(&f, "LATE", vec![late_seat.clone()]).await;
    let stale = cached
        .purchase(f.seats_request("stale", vec![late_seat.clone()]))
        .await;
    assert!(
        matches!(&stale, Err(Error::SeatsTaken { seats }) if seats == &vec![late_seat.clone()]),
        "the repository refuses a seat the cache did not know reserved: {stale:?}"
    );
    assert!(!sold(&f).await.contains_key(&late_seat));

    let named = race_purchases(&f, STAMPEDE, |f, i| {
        f.seats_request(&format!("named{i}"), vec![f.seat(i as u32 % 20)])
    })
    .await;
    let counts = count(&named.iter().map(outcome).collect::<Vec<_>>());
    assert_eq!(counts.get("SEATS_TAKEN"), Some(&STAMPEDE), "{counts:?}");
    let best_public = race_purchases(&f, STAMPEDE, |f, i| best(f, &format!("best{i}"), 2)).await;
    let counts = count(&best_public.iter().map(outcome).collect::<Vec<_>>());
    // Row 3 without its kept seat 6 is runs of 5 and 4 (2 pairs each), row 4 has 5 pairs.
    assert_eq!(counts.get("OK"), Some(&9), "{counts:?}");
    assert_eq!(
        counts.get("NO_ADJACENT_SEATS"),
        Some(&(STAMPEDE - 9)),
        "{counts:?}"
    );
    let taken = sold(&f).await;
    assert_eq!(taken.len(), 18);
    assert!(
        kept.iter()
            .chain([&late_seat])
            .all(|s| !taken.contains_key(s)),
        "no reserved seat sold to the public"
    );
    f.audit().await;

    let wrong = ChannelKey::generate();
    let refused = f
        .tickets
        .purchase(with_channel(
            f.seats_request("intruder", vec![f.seat(0)]),
            "BOX",
            &wrong,
        ))
        .await;
    assert!(
        matches!(&refused, Err(Error::ChannelKeyInvalid { channel }) if channel == "BOX"),
        "a wrong key: {refused:?}"
    );
    let unknown = f
        .tickets
        .purchase(with_channel(
            f.seats_request("intruder", vec![f.seat(0)]),
            "NOBODY",
            &key,
        ))
        .await;
    assert_eq!(outcome(&unknown), "CHANNEL_KEY_INVALID");

    let mine = f
        .tickets
        .purchase(with_channel(
            f.seats_request("box1", vec![f.seat(0), f.seat(1)]),
            "BOX",
            &key,
        ))
        .await
        .expect("the channel buys its seats");
    assert_eq!(mine.tickets.len(), 2);
    let chosen = f
        .tickets
        .purchase(with_channel(best(&f, "box2", 3), "BOX", &key))
        .await
        .expect("the channel's best available");
    for ticket in &chosen.tickets {
        let seat = ticket.seat.as_ref().expect("a seat");
        assert!(kept.contains(seat), "public rows are full: {seat}");
    }

    let map = f.queries.seat_map(f.event.id()).await.expect("seat map");
    let sold_now = sold(&f).await;
    for view in map.seats() {
        if kept.contains(&view.seat) && !sold_now.contains_key(&view.seat) {
            assert_ne!(
                view.state,
                SeatAvailability::Free,
                "a reserved seat shows free: {}",
                view.seat
            );
        }
    }

    f.audit().await;
}

/// Rows 1 and 2 are kept for `BOX`, which buys two seats of row 1. Releasing row 1 returns its
/// 10 seats and writes one `ChannelSeatsReleased` event naming the 8 without a ticket; the same
/// release again returns nothing and writes nothing. Then 120 public buyers race for the 20
/// seats by name: exactly the 8 released free seats are sold, each once; row 2 stays kept.
/// Releasing the rest (no list) frees row 2 for the next stampede. The event passes through the
/// seat-lock repair and changes no sales counter.
pub async fn a_release_gives_the_seats_to_the_public_once(harness: Harness) {
    let f = Arc::new(Fixture::new(&harness, Layout::default()).await);
    let kept = seats(&f, 0..20);
    let key = create_channel(&f, "BOX", kept.clone()).await;
    f.tickets
        .purchase(with_channel(
            f.seats_request("box1", vec![f.seat(0), f.seat(1)]),
            "BOX",
            &key,
        ))
        .await
        .expect("the channel buys two seats");
    let catalog = CatalogService::new(f.backends.clone());
    let row_one = seats(&f, 0..10);
    let released = catalog
        .release_channel_seats(f.event.id(), code("BOX"), Some(row_one.clone()))
        .await
        .expect("release row 1");
    assert_eq!(released, row_one);
    let events = releases(&f).await;
    assert_eq!(events.len(), 1, "one event per release");
    let event = &events[0].event;
    assert_eq!(event.channel, Some(code("BOX")));
    let free: BTreeSet<SeatRef> = event.seats.iter().cloned().collect();
    assert_eq!(
        free,
        seats(&f, 2..10).into_iter().collect(),
        "the seats without a ticket"
    );
    assert_eq!(SalesChange::of(event), SalesChange::default());
    SeatLockSync::new(f.backends.clone(), f.config.clone())
        .publish(&events)
        .await
        .expect("the seat-lock repair takes a release");

    let again = catalog
        .release_channel_seats(f.event.id(), code("BOX"), Some(row_one.clone()))
        .await
        .expect("release row 1 again");
    assert!(again.is_empty(), "nothing left to release: {again:?}");
    assert_eq!(releases(&f).await.len(), 1, "no second event");
    let stranger = catalog
        .release_channel_seats(f.event.id(), code("BOX"), Some(vec![f.seat(30)]))
        .await;
    assert_eq!(
        outcome(&stranger),
        "INVALID_REQUEST",
        "a seat BOX never kept"
    );
    let unknown = catalog
        .release_channel_seats(f.event.id(), code("NOBODY"), None)
        .await;
    assert_eq!(outcome(&unknown), "NOT_FOUND");

    let results = race_purchases(&f, STAMPEDE, |f, i| {
        f.seats_request(&format!("public{i}"), vec![f.seat(i as u32 % 20)])
    })
    .await;
    let counts = count(&results.iter().map(outcome).collect::<Vec<_>>());
    assert_eq!(counts.get("OK"), Some(&8), "{counts:?}");
    assert_eq!(
        counts.get("SEATS_TAKEN"),
        Some(&(STAMPEDE - 8)),
        "{counts:?}"
    );
    let taken = sold(&f).await;
    for seat in seats(&f, 2..10) {
        let buyer = taken.get(&seat).expect("every released free seat is sold");
        assert!(buyer.starts_with("public"), "{seat} went to {buyer}");
    }
    assert!(
        seats(&f, 10..20).iter().all(|s| !taken.contains_key(s)),
        "row 2 is still kept"
    );
    f.audit().await;

    let rest = catalog
        .release_channel_seats(f.event.id(), code("BOX"), None)
        .await
        .expect("release the rest");
    assert_eq!(rest, seats(&f, 10..20));
    assert_eq!(releases(&f).await.len(), 2);
    let channels = catalog.channels(f.event.id()).await.expect("channels");
    assert_eq!(channels.len(), 1);
    assert!(channels[0].reserved().is_empty());
    assert_eq!(channels[0].released().len(), 20);
    let results = race_purchases(&f, STAMPEDE, |f, i| {
        f.seats_request(&format!("second{i}"), vec![f.seat(10 + i as u32 % 10)])
    })
    .await;
    let counts = count(&results.iter().map(outcome).collect::<Vec<_>>());
    assert_eq!(counts.get("OK"), Some(&10), "{counts:?}");
    f.audit().await;
    f.assert_seat_map_matches_repository().await;
}
