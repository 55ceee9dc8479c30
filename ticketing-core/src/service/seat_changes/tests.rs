//! The feed's promises: order, no duplicates, the exact gap on resume, a reset instead of a skip;
//! and a seat map plus the stream equal to the repository after a concurrent sale.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use proptest::prelude::*;
use uuid::Uuid;

use super::*;
use crate::domain::{
    CustomerId, Money, OrderId, OutboxEvent, OutboxLine, SeatRef, TicketId, TicketStatus, VenueId,
};
use crate::service::SeatMap;
use crate::testkit::{Fixture, Harness, Layout};

fn event_id(n: u128) -> EventId {
    EventId::from_uuid(Uuid::from_u128(n))
}

/// Entry `seq`: `kind` for one seat (`A:1:<seat>`) of `event`.
fn entry(seq: u64, event: EventId, kind: OutboxKind, seat: u32) -> OutboxEntry {
    let seat: SeatRef = format!("A:1:{seat}").parse().unwrap();
    let price = Money::new(100, "EUR".parse().unwrap());
    OutboxEntry {
        seq,
        event: OutboxEvent {
            version: crate::domain::OUTBOX_SCHEMA_VERSION,
            kind,
            order_id: OrderId::from_uuid(Uuid::from_u128(u128::from(seq))),
            event_id: event,
            venue_id: VenueId::from_uuid(Uuid::from_u128(1)),
            customer: CustomerId::new("alice").unwrap(),
            ticket_ids: vec![TicketId::from_uuid(Uuid::from_u128(u128::from(seq)))],
            seats: vec![seat.clone()],
            amount: price,
            at: Utc::now(),
            lines: vec![OutboxLine {
                ticket_id: TicketId::from_uuid(Uuid::from_u128(u128::from(seq))),
                zone: seat.zone.clone(),
                seat: Some(seat),
                price,
            }],
            payment: None,
            deadline: None,
            channel: None,
            offer: None,
        },
    }
}

/// Entries `range`, alternating between events 1 (even numbers) and 2 (odd ones), reserving
/// seat `seq`.
fn entries(range: std::ops::RangeInclusive<u64>) -> Vec<OutboxEntry> {
    range
        .map(|seq| {
            let event = event_id(u128::from(seq % 2) + 1);
            entry(seq, event, OutboxKind::TicketReserved, seq as u32)
        })
        .collect()
}

fn feed(config: SeatChangeFeedConfig) -> SeatChangeFeed {
    SeatChangeFeed::new(Backends::in_memory(), config)
}

/// The sequence numbers a subscription yields until it would wait, with `None` for a reset.
async fn drain(subscription: &mut SeatChangeSubscription) -> Vec<Option<u64>> {
    let mut seen = Vec::new();
    while let Ok(item) = tokio::time::timeout(Duration::from_millis(20), subscription.next()).await
    {
        seen.push(match item {
            SeatChangeItem::Change(change) => Some(change.seq),
            SeatChangeItem::Reset { .. } => None,
        });
    }
    seen
}

fn of_event(event: EventId, range: std::ops::RangeInclusive<u64>) -> Vec<Option<u64>> {
    entries(range)
        .into_iter()
        .filter(|e| e.event.event_id == event)
        .map(|e| Some(e.seq))
        .collect()
}

#[tokio::test]
async fn a_change_carries_each_seat_s_new_state() {
    let feed = feed(SeatChangeFeedConfig::default());
    let event = event_id(1);
    let kinds = [
        (OutboxKind::TicketReserved, Some(SeatAvailability::Held)),
        (OutboxKind::TicketPaid, Some(SeatAvailability::Sold)),
        (OutboxKind::TicketRefunded, Some(SeatAvailability::Free)),
        (OutboxKind::PaymentRejected, None),
        (OutboxKind::HoldExtended, None),
        (OutboxKind::WaitingListOffered, None),
        (OutboxKind::TicketReserved, Some(SeatAvailability::Held)),
        (OutboxKind::TicketExpired, Some(SeatAvailability::Free)),
        (OutboxKind::TicketCancelled, Some(SeatAvailability::Free)),
        (
            OutboxKind::ChannelSeatsReleased,
            Some(SeatAvailability::Free),
        ),
    ];
    let batch: Vec<_> = kinds
        .iter()
        .zip(1..)
        .map(|((kind, _), seq)| entry(seq, event, *kind, 7))
        .collect();
    feed.publish(&batch).await.unwrap();
    let mut subscription = feed.subscribe(event, Some(0));
    for (seq, (kind, state)) in (1..).zip(kinds) {
        let Some(state) = state else { continue };
        let SeatChangeItem::Change(change) = subscription.next().await else {
            panic!("a reset")
        };
        assert_eq!((change.seq, change.kind), (seq, kind));
        assert_eq!(change.seats.len(), 1);
        assert_eq!(change.seats[0].seat.to_string(), "A:1:7");
        assert_eq!(change.seats[0].state, state, "{kind:?}");
    }
    assert_eq!(drain(&mut subscription).await, vec![], "nothing else");
    assert_eq!(
        feed.position(),
        Some(10),
        "a rejected payment, an extended hold and an offer still move the position"
    );
}

#[tokio::test]
async fn a_resume_replays_exactly_the_gap_then_the_live_changes() {
    let feed = feed(SeatChangeFeedConfig::default());
    let event = event_id(1);
    feed.publish(&entries(1..=20)).await.unwrap();
    let mut resumed = feed.subscribe(event, Some(9));
    assert_eq!(drain(&mut resumed).await, of_event(event, 10..=20));
    feed.publish(&entries(21..=30)).await.unwrap();
    assert_eq!(drain(&mut resumed).await, of_event(event, 21..=30));
    // Resuming at the top replays nothing; a position ahead of the feed skips what it passed.
    let mut at_top = feed.subscribe(event, Some(30));
    let mut ahead = feed.subscribe(event, Some(33));
    feed.publish(&entries(31..=36)).await.unwrap();
    assert_eq!(drain(&mut at_top).await, of_event(event, 31..=36));
    assert_eq!(drain(&mut ahead).await, of_event(event, 34..=36));
}

#[tokio::test]
async fn republished_and_overlapping_batches_are_given_once() {
    let feed = feed(SeatChangeFeedConfig::default());
    let event = event_id(2);
    let mut live = feed.subscribe(event, None);
    feed.publish(&entries(1..=10)).await.unwrap();
    feed.publish(&entries(1..=10)).await.unwrap();
    feed.publish(&entries(5..=15)).await.unwrap();
    feed.publish(&entries(12..=12)).await.unwrap();
    assert_eq!(drain(&mut live).await, of_event(event, 1..=15));
    let mut resumed = feed.subscribe(event, Some(0));
    assert_eq!(drain(&mut resumed).await, of_event(event, 1..=15));
}

#[tokio::test]
async fn a_position_older_than_the_ring_is_reset_never_skipped() {
    let feed = feed(SeatChangeFeedConfig {
        retained: 6,
        ..SeatChangeFeedConfig::default()
    });
    let event = event_id(1);
    feed.publish(&entries(1..=20)).await.unwrap();
    // The ring holds 15..=20, so everything after 14 can be served, not after 13.
    let mut servable = feed.subscribe(event, Some(14));
    assert_eq!(drain(&mut servable).await, of_event(event, 15..=20));
    let mut too_old = feed.subscribe(event, Some(13));
    assert_eq!(
        too_old.next().await,
        SeatChangeItem::Reset {
            resume_after: Some(15)
        },
        "the reset names the position its replay starts after (16 is the event's first kept)"
    );
    // After the reset: the recent changes (all of the ring here), then the live ones.
    feed.publish(&entries(21..=22)).await.unwrap();
    assert_eq!(drain(&mut too_old).await, of_event(event, 15..=22));
}

#[tokio::test]
async fn a_feed_that_knows_no_position_resets_a_resuming_subscriber() {
    let feed = feed(SeatChangeFeedConfig::default());
    let mut resumed = feed.subscribe(event_id(1), Some(5));
    assert_eq!(
        resumed.next().await,
        SeatChangeItem::Reset { resume_after: None }
    );
    // A feed started at a position serves it exactly.
    feed.start_at(40);
    let mut exact = feed.subscribe(event_id(1), Some(40));
    feed.publish(&entries(41..=44)).await.unwrap();
    assert_eq!(drain(&mut exact).await, of_event(event_id(1), 41..=44));
}

#[tokio::test]
async fn a_subscriber_that_falls_behind_is_reset_then_caught_up() {
    let feed = feed(SeatChangeFeedConfig {
        live_buffer: 4,
        ..SeatChangeFeedConfig::default()
    });
    let event = event_id(1);
    let mut slow = feed.subscribe(event, None);
    feed.publish(&entries(1..=30)).await.unwrap();
    let seen = drain(&mut slow).await;
    assert_eq!(seen.first(), Some(&None), "a reset first: {seen:?}");
    // Then the recent changes, which here are all of them, in order.
    assert_eq!(seen[1..], of_event(event, 1..=30)[..]);
}

#[tokio::test]
async fn missed_entries_reset_every_subscriber() {
    let feed = feed(SeatChangeFeedConfig::default());
    let event = event_id(1);
    let mut live = feed.subscribe(event, None);
    feed.publish(&entries(1..=3)).await.unwrap();
    assert_eq!(drain(&mut live).await, of_event(event, 1..=3));
    feed.publish(&entries(7..=9)).await.unwrap();
    let seen = drain(&mut live).await;
    assert_eq!(seen.first(), Some(&None), "a reset: {seen:?}");
    assert_eq!(seen[1..], of_event(event, 7..=9)[..]);
    // Nobody can resume across the hole.
    let mut across = feed.subscribe(event, Some(3));
    assert_eq!(drain(&mut across).await.first(), Some(&None));
    let mut after = feed.subscribe(event, Some(6));
    assert_eq!(drain(&mut after).await, of_event(event, 7..=9));
}

#[tokio::test]
async fn a_new_subscription_replays_only_the_recent_changes() {
    let feed = feed(SeatChangeFeedConfig {
        fresh_replay: Duration::from_millis(300),
        ..SeatChangeFeedConfig::default()
    });
    let event = event_id(1);
    feed.publish(&entries(1..=4)).await.unwrap();
    tokio::time::sleep(Duration::from_millis(400)).await;
    feed.publish(&entries(5..=8)).await.unwrap();
    let mut fresh = feed.subscribe(event, None);
    assert_eq!(drain(&mut fresh).await, of_event(event, 5..=8));
}

/// Subscribers that join while batches are published get, from their position on, every change
/// of their event once and in order: nothing falls between the replay and the live changes.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn subscribing_during_publication_leaves_no_gap_and_no_duplicate() {
    let feed = Arc::new(feed(SeatChangeFeedConfig::default()));
    // As following an empty outbox starts it: a subscriber before the first entry resumes at 0.
    feed.start_at(0);
    let event = event_id(1);
    // The publisher publishes a batch per token while the subscribers join (4 batches after
    // each one has read its position, racing its subscribe), then the rest once the tokens
    // stop: every subscriber but the first joins during the publication on any machine.
    let (tokens, mut batches) = tokio::sync::mpsc::unbounded_channel::<()>();
    let publisher = {
        let feed = feed.clone();
        tokio::spawn(async move {
            for start in (1..=2_000).step_by(10) {
                let _ = batches.recv().await;
                feed.publish(&entries(start..=start + 9)).await.unwrap();
                tokio::task::yield_now().await;
            }
        })
    };
    let mut subscribers = Vec::new();
    for _ in 0..40 {
        let feed = feed.clone();
        let (placed, positioned) = tokio::sync::oneshot::channel();
        subscribers.push(tokio::spawn(async move {
            let after = feed.position().unwrap_or(0);
            let _ = placed.send(());
            let mut subscription = feed.subscribe(event, Some(after));
            let mut seen = Vec::new();
            // Until the publisher is done and nothing more comes.
            while let Ok(item) =
                tokio::time::timeout(Duration::from_millis(500), subscription.next()).await
            {
                match item {
                    SeatChangeItem::Change(change) => seen.push(change.seq),
                    SeatChangeItem::Reset { .. } => panic!("reset after {after}"),
                }
            }
            (after, seen)
        }));
        positioned.await.unwrap();
        for _ in 0..4 {
            tokens.send(()).unwrap();
        }
    }
    drop(tokens);
    publisher.await.unwrap();
    let mut during = 0;
    for subscriber in subscribers {
        let (after, seen) = subscriber.await.unwrap();
        during += usize::from(after > 0 && after < 2_000);
        // Event 1 has the even sequence numbers.
        let expected: Vec<u64> = (after + 1..=2_000).filter(|s| s % 2 == 0).collect();
        assert_eq!(seen, expected, "subscribed after {after}");
    }
    assert!(
        during >= 30,
        "only {during} subscribers joined during the publication"
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Whatever the batches (republished, overlapping) and wherever a subscriber resumes: the
    /// changes of its event after its position when the ring holds them, else a reset.
    #[test]
    fn a_resume_gets_exactly_the_gap_or_a_reset(
        batches in prop::collection::vec((1u64..=60, 0u64..=12), 1..30),
        retained in 5usize..80,
        after in 0u64..70,
    ) {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        runtime.block_on(async {
            let feed = feed(SeatChangeFeedConfig { retained, ..SeatChangeFeedConfig::default() });
            let mut top = 0;
            for (start, len) in batches {
                // A batch starts at most right after the top: the relay never skips an entry.
                let start = start.min(top + 1);
                feed.publish(&entries(start..=start + len)).await.unwrap();
                top = top.max(start + len);
            }
            let event = event_id(1);
            let mut subscription = feed.subscribe(event, Some(after));
            let seen = drain(&mut subscription).await;
            let oldest_kept = top.saturating_sub(retained as u64);
            if after >= oldest_kept {
                let expected = if after >= top { vec![] } else { of_event(event, after + 1..=top) };
                prop_assert_eq!(seen, expected);
            } else {
                prop_assert_eq!(seen.first(), Some(&None));
            }
            Ok(())
        })?;
    }
}

/// The seat map read after subscribing, plus every change of the stream, equals the repository
/// after a sale with concurrent buyers of seats and places, cancellations and payments.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_map_plus_the_stream_equals_the_repository_after_a_concurrent_sale() {
    let harness = Harness::in_memory();
    let layout = Layout {
        rows: 2,
        seats_per_row: 10,
        general_capacity: 60,
        limit: 4,
        ..Layout::default()
    };
    let fixture = Arc::new(Fixture::new(&harness, layout).await);
    let feed = Arc::new(SeatChangeFeed::new(
        fixture.backends.clone(),
        SeatChangeFeedConfig::default(),
    ));
    feed.follow_once().await.unwrap();
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let follower = {
        let feed = feed.clone();
        let mut stopped = stopped.clone();
        tokio::spawn(async move {
            feed.follow_outbox(Duration::from_millis(5), async move {
                let _ = stopped.wait_for(|s| *s).await;
            })
            .await;
        })
    };
    let event = fixture.event.id();
    let mut subscription = feed.subscribe(event, None);
    let buyers: Vec<_> = (0..120u32)
        .map(|n| {
            let fixture = fixture.clone();
            tokio::spawn(async move {
                let customer = format!("buyer{n}");
                let request = if n % 3 == 0 {
                    fixture.general_request(&customer, 1 + n % 4)
                } else {
                    let seats = vec![fixture.seat(n % 20), fixture.seat((n * 7 + 3) % 20)];
                    let mut seats = seats;
                    seats.dedup();
                    fixture.seats_request(&customer, seats)
                };
                let Ok(order) = fixture.tickets.purchase(request).await else {
                    return 0;
                };
                match n % 5 {
                    0 => {
                        fixture.tickets.cancel(order.id).await.unwrap();
                    }
                    1 | 2 => {
                        fixture.pay(&order, &format!("pay-{n}")).await;
                    }
                    _ => {}
                }
                1
            })
        })
        .collect();
    // The map is read while the buyers run.
    tokio::time::sleep(Duration::from_millis(2)).await;
    let map = fixture.queries.seat_map(event).await.unwrap();
    let mut won = 0;
    for buyer in buyers {
        won += buyer.await.unwrap();
    }
    assert!(won > 20, "only {won} purchases went through");
    let head = fixture
        .backends
        .tickets()
        .outbox_head()
        .await
        .unwrap()
        .unwrap();
    while feed.position() < Some(head) {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let _ = stop.send(true);
    follower.await.unwrap();

    let mut seats: HashMap<SeatRef, SeatAvailability> =
        map.seats().map(|view| (view.seat, view.state)).collect();
    let mut places: BTreeMap<ZoneCode, u32> = map
        .general
        .iter()
        .map(|g| (g.zone.clone(), g.taken))
        .collect();
    let mut changes = 0;
    loop {
        match tokio::time::timeout(Duration::from_millis(50), subscription.next()).await {
            Ok(SeatChangeItem::Change(change)) => {
                changes += 1;
                for view in &change.seats {
                    seats.insert(view.seat.clone(), view.state);
                }
                for place in &change.places {
                    places.insert(place.zone.clone(), place.taken);
                }
            }
            Ok(SeatChangeItem::Reset { .. }) => panic!("a reset during a small sale"),
            Err(_) => break,
        }
    }
    assert!(changes >= won, "{changes} changes for {won} purchases");

    let active = fixture
        .backends
        .tickets()
        .active_tickets(event)
        .await
        .unwrap();
    let mut expected: HashMap<SeatRef, SeatAvailability> = fixture
        .venue
        .zones()
        .iter()
        .flat_map(|zone| zone.seats())
        .map(|seat| (seat, SeatAvailability::Free))
        .collect();
    let mut general = 0;
    for ticket in &active {
        let state = match ticket.status {
            TicketStatus::Paid => SeatAvailability::Sold,
            _ => SeatAvailability::Held,
        };
        match &ticket.seat {
            Some(seat) => {
                expected.insert(seat.clone(), state);
            }
            None => general += 1,
        }
    }
    assert_eq!(
        seats, expected,
        "seats: the map plus the stream against the repository"
    );
    assert_eq!(
        places.values().copied().collect::<Vec<_>>(),
        vec![general],
        "places taken"
    );
    // The repository agrees with a map read now, too: the stream converged to the truth.
    let now: SeatMap = (*fixture.queries.seat_map(event).await.unwrap()).clone();
    assert_eq!(now.general[0].taken, general);
}
