//! Loading an event from its [`HoldSource`](crate::ports::HoldSource), page by page, and
//! forgetting it.

use std::collections::HashMap;

use chrono::{DateTime, Utc};

use crate::Error;
use crate::domain::OrderId;
use crate::ports::{ActiveHold, HoldItem, HoldOutcome, SeatLock, SeatState};

use super::super::{new_event, new_order, seat, secs, t0};
use super::{
    CountingSource, ForgetEvent, assert_taken, general, hold, load_empty, places, seats, snapshot,
};

fn seat_hold(key: &str, order: OrderId, until: Option<DateTime<Utc>>) -> ActiveHold {
    ActiveHold {
        order,
        item: HoldItem::Seat(seat(key)),
        until,
    }
}

fn places_hold(
    code: &str,
    quantity: u32,
    order: OrderId,
    until: Option<DateTime<Utc>>,
) -> ActiveHold {
    ActiveHold {
        order,
        item: general(code, quantity, 100),
        until,
    }
}

/// A rebuild restores exactly the source's holds: held seats with their deadlines, sold seats
/// without, lapsed holds as free; several holds of one order in one zone (one per ticket) become
/// that order's one hold of their summed places, sold if any of them is sold, else until the
/// latest deadline. The source is read once.
pub async fn rebuild_restores_every_active_hold(lock: &dyn SeatLock) {
    let event = new_event();
    let (held, sold, lapsed, per_ticket, part_sold, balcony) = (
        new_order(),
        new_order(),
        new_order(),
        new_order(),
        new_order(),
        new_order(),
    );
    let (until, later) = (t0() + secs(300), t0() + secs(400));
    let source = CountingSource::new(vec![
        seat_hold("A:1:1", held, Some(until)),
        seat_hold("A:1:2", sold, None),
        seat_hold("A:1:3", lapsed, Some(t0())),
        places_hold("GA", 1, per_ticket, Some(until)),
        places_hold("GA", 1, per_ticket, Some(later)),
        places_hold("GA", 1, part_sold, Some(until)),
        places_hold("GA", 1, part_sold, None),
        places_hold("BALCONY", 3, balcony, Some(until)),
    ]);
    lock.rebuild(event, &source).await.expect("rebuild");
    assert_eq!(source.reads(), 1);

    let now = snapshot(lock, event, t0()).await;
    assert_eq!(
        now.seats,
        HashMap::from([
            (seat("A:1:1"), SeatState::Held { order: held, until }),
            (seat("A:1:2"), SeatState::Sold { order: sold }),
        ]),
        "held and sold seats restored; the lapsed hold is free"
    );
    assert_eq!(
        (places(&now, "GA"), places(&now, "BALCONY")),
        (4, 3),
        "several holds of one order in one zone add up: {now:?}"
    );
    let between = snapshot(lock, event, until).await;
    assert_eq!(
        (places(&between, "GA"), places(&between, "BALCONY")),
        (4, 0),
        "per-ticket holds last until the latest deadline, or for ever when one is sold: {between:?}"
    );
    let after = snapshot(lock, event, later).await;
    assert_eq!(
        places(&after, "GA"),
        2,
        "only the sold order's places remain"
    );
    assert_eq!(after.seats.len(), 1, "only the sold seat remains");

    // The restored holds act as holds: they refuse others, the lapsed one does not.
    let other = new_order();
    let deadline = t0() + secs(60);
    assert_taken(
        &hold(
            lock,
            event,
            other,
            &seats(&["A:1:1", "A:1:2"]),
            t0(),
            deadline,
        )
        .await,
        &["A:1:1", "A:1:2"],
        &[],
    );
    assert_eq!(
        hold(lock, event, other, &seats(&["A:1:3"]), t0(), deadline).await,
        HoldOutcome::Held
    );
    assert_taken(
        &hold(lock, event, other, &[general("GA", 3, 6)], t0(), deadline).await,
        &[],
        &["GA"],
    );
    // The per-ticket holds are one hold of the order: re-holding replaces it, a release frees it.
    assert_eq!(
        hold(
            lock,
            event,
            per_ticket,
            &[general("GA", 1, 6)],
            t0(),
            deadline
        )
        .await,
        HoldOutcome::Held
    );
    assert_eq!(places(&snapshot(lock, event, t0()).await, "GA"), 3);
    lock.release(event, per_ticket, &[general("GA", 1, 6)])
        .await
        .expect("release");
    assert_eq!(places(&snapshot(lock, event, t0()).await, "GA"), 2);
}

/// A rebuild of an event that is loaded leaves it as it is, holds made since included, and does
/// not read its source.
pub async fn rebuilding_a_loaded_event_changes_nothing(lock: &dyn SeatLock) {
    let (event, a, b) = (new_event(), new_order(), new_order());
    let until = t0() + secs(600);
    let first = CountingSource::new(vec![seat_hold("A:1:1", a, Some(until))]);
    lock.rebuild(event, &first).await.expect("rebuild");
    assert_eq!(
        hold(lock, event, b, &seats(&["A:1:9"]), t0(), until).await,
        HoldOutcome::Held
    );

    let second = CountingSource::new(vec![seat_hold("A:1:2", a, None)]);
    lock.rebuild(event, &second).await.expect("rebuild");
    assert_eq!(
        (first.reads(), second.reads()),
        (1, 0),
        "a loaded event's source is not read again"
    );
    assert_eq!(
        snapshot(lock, event, t0()).await.seats,
        HashMap::from([
            (seat("A:1:1"), SeatState::Held { order: a, until }),
            (seat("A:1:9"), SeatState::Held { order: b, until }),
        ]),
        "the later hold is kept, nothing of the second source is written"
    );
}

/// A rebuild whose source fails returns that failure and leaves the event not loaded, so the next
/// caller rebuilds it again.
pub async fn a_failed_source_read_leaves_the_event_not_loaded(lock: &dyn SeatLock) {
    let (event, a) = (new_event(), new_order());
    let failing = CountingSource::failing();
    let failed = lock.rebuild(event, &failing).await;
    assert!(
        matches!(failed, Err(Error::Unavailable { .. })),
        "the source's failure is returned: {failed:?}"
    );
    assert_eq!(lock.snapshot(event, t0()).await.expect("snapshot"), None);
    let until = t0() + secs(60);
    assert_eq!(
        hold(lock, event, a, &seats(&["A:1:1"]), t0(), until).await,
        HoldOutcome::NotLoaded
    );

    let working = CountingSource::new(vec![seat_hold("A:1:2", a, None)]);
    lock.rebuild(event, &working)
        .await
        .expect("the next rebuild runs");
    assert_eq!(working.reads(), 1);
    assert_eq!(
        hold(lock, event, a, &seats(&["A:1:1"]), t0(), until).await,
        HoldOutcome::Held
    );
    assert_eq!(snapshot(lock, event, t0()).await.seats.len(), 2);
}

/// Forgetting one event makes it answer `NotLoaded` (and a snapshot `None`) until rebuilt, and
/// leaves every other event as it was; a rebuild afterwards reads its source again.
pub async fn forgetting_an_event_drops_only_that_event(lock: &dyn SeatLock, forget: &ForgetEvent) {
    let (gone, kept, a) = (new_event(), new_event(), new_order());
    let until = t0() + secs(60);
    let items = [seats(&["A:1:1"]), vec![general("GA", 1, 5)]].concat();
    for event in [gone, kept] {
        load_empty(lock, event).await;
        assert_eq!(
            hold(lock, event, a, &items, t0(), until).await,
            HoldOutcome::Held
        );
    }

    forget(gone).await.expect("forget");
    assert_eq!(lock.snapshot(gone, t0()).await.expect("snapshot"), None);
    assert_eq!(
        hold(lock, gone, a, &items, t0(), until).await,
        HoldOutcome::NotLoaded
    );
    let other = snapshot(lock, kept, t0()).await;
    assert_eq!(
        (other.seats.len(), places(&other, "GA")),
        (1, 1),
        "the other event is untouched: {other:?}"
    );

    let source = CountingSource::new(Vec::new());
    lock.rebuild(gone, &source).await.expect("rebuild");
    assert_eq!(
        source.reads(),
        1,
        "a forgotten event is read from its source"
    );
    let reloaded = snapshot(lock, gone, t0()).await;
    assert!(
        reloaded.seats.is_empty() && places(&reloaded, "GA") == 0,
        "nothing of the forgotten state comes back: {reloaded:?}"
    );
}

/// A rebuild that reads its source in pages of one, two or three holds (so that one order's
/// general-admission tickets fall on several pages, as a repository paging by ticket id gives
/// them) leaves exactly the state that one page does: every page read once, in one pass.
pub async fn a_rebuild_in_pages_restores_what_one_page_does(lock: &dyn SeatLock) {
    let (held, sold, lapsed, per_ticket, part_sold, balcony) = (
        new_order(),
        new_order(),
        new_order(),
        new_order(),
        new_order(),
        new_order(),
    );
    let (until, later) = (t0() + secs(300), t0() + secs(400));
    let holds = vec![
        places_hold("GA", 1, per_ticket, Some(until)),
        seat_hold("A:1:1", held, Some(until)),
        places_hold("GA", 1, part_sold, Some(until)),
        seat_hold("A:1:2", sold, None),
        places_hold("BALCONY", 2, balcony, Some(until)),
        seat_hold("A:1:3", lapsed, Some(t0())),
        places_hold("GA", 2, per_ticket, Some(later)),
        places_hold("GA", 1, part_sold, None),
        seat_hold("A:1:4", per_ticket, Some(later)),
        places_hold("BALCONY", 1, balcony, Some(until)),
    ];
    let mut states = Vec::new();
    for size in [usize::MAX, 1, 2, 3] {
        let event = new_event();
        let source = CountingSource::new(holds.clone()).paged(size);
        lock.rebuild(event, &source).await.expect("rebuild");
        assert_eq!(
            (source.reads(), source.pages()),
            (1, holds.len().div_ceil(size)),
            "one pass, every page of {size} read once"
        );
        let mut state = Vec::new();
        for at in [t0(), until, later] {
            state.push(snapshot(lock, event, at).await);
        }
        states.push((size, state));
    }
    let (_, whole) = &states[0];
    assert_eq!(
        whole[0].seats,
        HashMap::from([
            (seat("A:1:1"), SeatState::Held { order: held, until }),
            (seat("A:1:2"), SeatState::Sold { order: sold }),
            (
                seat("A:1:4"),
                SeatState::Held {
                    order: per_ticket,
                    until: later
                }
            ),
        ]),
    );
    assert_eq!(
        (places(&whole[0], "GA"), places(&whole[0], "BALCONY")),
        (5, 3),
        "{whole:?}"
    );
    assert_eq!(
        (places(&whole[1], "GA"), places(&whole[1], "BALCONY")),
        (5, 0),
        "summed per order, until the latest deadline or sold: {whole:?}"
    );
    assert_eq!(
        places(&whole[2], "GA"),
        2,
        "only the sold order's places remain"
    );
    for (size, state) in &states[1..] {
        assert_eq!(state, whole, "pages of {size} restore what one page does");
    }
}
