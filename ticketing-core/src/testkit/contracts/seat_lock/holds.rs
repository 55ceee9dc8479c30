//! Holding and releasing: all or nothing, fenced by the order, lapsing at the deadline.

use crate::Error;
use crate::ports::{HoldOutcome, HoldRequest, LockSnapshot, SeatLock, SeatState};

use super::super::{ms, new_event, new_order, seat, secs, t0};
use super::{assert_taken, general, hold, load_empty, places, seats, snapshot};

/// An event the lock has no state for answers `NotLoaded` to a hold and `None` to a snapshot;
/// `release` and `mark_sold` on it are not errors and write nothing that a later load would
/// show. Once loaded, the same hold succeeds.
pub async fn an_event_not_loaded_answers_not_loaded_and_writes_nothing(lock: &dyn SeatLock) {
    let (event, a) = (new_event(), new_order());
    let items = [seats(&["A:1:1"]), vec![general("GA", 1, 5)]].concat();
    let until = t0() + secs(60);

    assert_eq!(
        hold(lock, event, a, &items, t0(), until).await,
        HoldOutcome::NotLoaded
    );
    assert_eq!(lock.snapshot(event, t0()).await.expect("snapshot"), None);
    lock.release(event, a, &items)
        .await
        .expect("a release on an event not loaded is not an error");
    lock.mark_sold(event, a, &items)
        .await
        .expect("mark_sold on an event not loaded is not an error");
    assert_eq!(
        lock.snapshot(event, t0()).await.expect("snapshot"),
        None,
        "release and mark_sold do not load an event"
    );

    load_empty(lock, event).await;
    let loaded = snapshot(lock, event, t0()).await;
    assert!(
        loaded.seats.is_empty() && places(&loaded, "GA") == 0,
        "nothing was written while the event was not loaded: {loaded:?}"
    );
    assert_eq!(
        hold(lock, event, a, &items, t0(), until).await,
        HoldOutcome::Held
    );
}

/// A hold that conflicts anywhere holds nothing and names every conflicting seat and zone (and
/// only those); a zone without room is a conflict on its own.
pub async fn holds_are_all_or_nothing_and_name_every_conflict(lock: &dyn SeatLock) {
    let (event, a, b) = (new_event(), new_order(), new_order());
    let until = t0() + secs(600);
    load_empty(lock, event).await;

    let mine = [seats(&["A:1:1", "A:1:2"]), vec![general("GA", 4, 5)]].concat();
    assert_eq!(
        hold(lock, event, a, &mine, t0(), until).await,
        HoldOutcome::Held
    );

    let theirs = [
        seats(&["A:1:3", "A:1:2", "A:1:1"]),
        vec![general("GA", 2, 5)],
    ]
    .concat();
    assert_taken(
        &hold(lock, event, b, &theirs, t0(), until).await,
        &["A:1:1", "A:1:2"],
        &["GA"],
    );
    let after = snapshot(lock, event, t0()).await;
    assert_eq!(
        after.seats.len(),
        2,
        "A:1:3 was not held: all or nothing ({after:?})"
    );
    assert_eq!(
        after.seats[&seat("A:1:1")],
        SeatState::Held { order: a, until }
    );
    assert_eq!(places(&after, "GA"), 4, "B's places were not added");

    // A zone alone can be the only conflict, and then the free seat is not held either.
    let mixed = [seats(&["A:1:3"]), vec![general("GA", 2, 5)]].concat();
    assert_taken(
        &hold(lock, event, b, &mixed, t0(), until).await,
        &[],
        &["GA"],
    );
    let after = snapshot(lock, event, t0()).await;
    assert!(
        !after.seats.contains_key(&seat("A:1:3")),
        "a zone conflict holds no seat: {after:?}"
    );

    // What fits is held in full.
    let fits = [seats(&["A:1:3"]), vec![general("GA", 1, 5)]].concat();
    assert_eq!(
        hold(lock, event, b, &fits, t0(), until).await,
        HoldOutcome::Held
    );
    let after = snapshot(lock, event, t0()).await;
    assert_eq!(
        (after.seats.len(), places(&after, "GA")),
        (3, 5),
        "{after:?}"
    );
}

/// Only the holding order releases: another order's release leaves seats and places alone, also
/// after the first hold lapsed and someone else took the seat; the holder frees exactly what it
/// names. Releasing what nobody holds is not an error.
pub async fn release_is_fenced_by_the_order(lock: &dyn SeatLock) {
    let (event, a, b) = (new_event(), new_order(), new_order());
    let until = t0() + secs(600);
    load_empty(lock, event).await;
    let items = [seats(&["A:1:1", "A:1:2"]), vec![general("GA", 2, 3)]].concat();
    assert_eq!(
        hold(lock, event, a, &items, t0(), until).await,
        HoldOutcome::Held
    );

    lock.release(event, b, &items).await.expect("release");
    let after = snapshot(lock, event, t0()).await;
    assert_eq!(
        (after.seats.len(), places(&after, "GA")),
        (2, 2),
        "B cannot free A's holds: {after:?}"
    );
    assert_taken(
        &hold(lock, event, b, &items, t0(), until).await,
        &["A:1:1", "A:1:2"],
        &["GA"],
    );

    // A frees one seat and its places; its other seat stays.
    let part = [seats(&["A:1:1"]), vec![general("GA", 2, 3)]].concat();
    lock.release(event, a, &part).await.expect("release");
    let after = snapshot(lock, event, t0()).await;
    assert_eq!(
        after.seats.keys().collect::<Vec<_>>(),
        vec![&seat("A:1:2")],
        "only what A named is free"
    );
    assert_eq!(places(&after, "GA"), 0);
    let freed = [seats(&["A:1:1"]), vec![general("GA", 3, 3)]].concat();
    assert_eq!(
        hold(lock, event, b, &freed, t0(), until).await,
        HoldOutcome::Held
    );

    // A's hold on A:1:2 lapses and B takes the seat: A's late release leaves B's hold alone.
    let later = until + secs(1);
    assert_eq!(
        hold(lock, event, b, &seats(&["A:1:2"]), later, later + secs(60)).await,
        HoldOutcome::Held
    );
    lock.release(event, a, &seats(&["A:1:1", "A:1:2"]))
        .await
        .expect("release");
    let after = snapshot(lock, event, later).await;
    assert!(
        matches!(after.seats.get(&seat("A:1:2")), Some(SeatState::Held { order, .. }) if *order == b),
        "a late release of a lapsed hold is fenced: {after:?}"
    );

    // Releasing what nobody holds is not an error.
    lock.release(
        event,
        a,
        &[seats(&["B:9:9"]), vec![general("NONE", 1, 1)]].concat(),
    )
    .await
    .expect("releasing nothing is not an error");
}

/// The holder holding again extends its hold to the new deadline (seats and places), and the
/// extended hold keeps others out after the first deadline.
pub async fn re_holding_extends_the_hold(lock: &dyn SeatLock) {
    let (event, a, b) = (new_event(), new_order(), new_order());
    load_empty(lock, event).await;
    let items = [seats(&["A:1:1"]), vec![general("GA", 2, 2)]].concat();
    let extended = t0() + secs(300);

    assert_eq!(
        hold(lock, event, a, &items, t0(), t0() + secs(60)).await,
        HoldOutcome::Held
    );
    assert_eq!(
        hold(lock, event, a, &items, t0() + secs(30), extended).await,
        HoldOutcome::Held,
        "the holder may hold its own seats again"
    );
    let past_first = t0() + secs(120);
    assert_taken(
        &hold(lock, event, b, &items, past_first, past_first + secs(60)).await,
        &["A:1:1"],
        &["GA"],
    );
    let after = snapshot(lock, event, past_first).await;
    assert_eq!(
        after.seats[&seat("A:1:1")],
        SeatState::Held {
            order: a,
            until: extended
        }
    );
    assert_eq!(places(&after, "GA"), 2);
    assert_eq!(
        hold(lock, event, b, &items, extended, extended + secs(60)).await,
        HoldOutcome::Held,
        "the extended hold lapses at its new deadline"
    );
}

/// A hold counts until one millisecond before its deadline and is free at it (`until <= now`), for
/// holds and snapshots, seats and places alike.
pub async fn a_hold_lapses_exactly_at_its_deadline(lock: &dyn SeatLock) {
    let (event, a, b) = (new_event(), new_order(), new_order());
    load_empty(lock, event).await;
    let until = t0() + secs(60);
    let items = [seats(&["A:1:1"]), vec![general("GA", 2, 2)]].concat();
    assert_eq!(
        hold(lock, event, a, &items, t0(), until).await,
        HoldOutcome::Held
    );

    let just_before = until - ms(1);
    assert_taken(
        &hold(lock, event, b, &items, just_before, until + secs(60)).await,
        &["A:1:1"],
        &["GA"],
    );
    let before = snapshot(lock, event, just_before).await;
    assert_eq!(
        (before.seats.len(), places(&before, "GA")),
        (1, 2),
        "{before:?}"
    );

    let at = snapshot(lock, event, until).await;
    assert!(
        at.seats.is_empty() && places(&at, "GA") == 0,
        "free at the deadline: {at:?}"
    );
    assert_eq!(
        hold(lock, event, b, &items, until, until + secs(60)).await,
        HoldOutcome::Held
    );
    let after = snapshot(lock, event, until).await;
    assert_eq!(
        after.seats[&seat("A:1:1")],
        SeatState::Held {
            order: b,
            until: until + secs(60)
        }
    );
    assert_eq!(places(&after, "GA"), 2, "A's lapsed places are not counted");
}

/// A request listing a seat or a zone twice breaks [`HoldRequest`]'s rule. With `rejects` (see
/// [`SeatLockCapabilities`](super::SeatLockCapabilities)) `hold`, `release` and `mark_sold` answer
/// [`Error::InvalidRequest`] and change nothing; without it a hold of a seat listed twice holds
/// it once.
pub async fn duplicate_items(lock: &dyn SeatLock, rejects: bool) {
    let (event, a) = (new_event(), new_order());
    load_empty(lock, event).await;
    let until = t0() + secs(60);
    let request = |items| HoldRequest {
        event,
        order: a,
        items,
        now: t0(),
        until,
    };
    let seat_twice = seats(&["A:1:1", "A:1:1"]);

    if !rejects {
        let outcome = lock.hold(&request(seat_twice)).await;
        assert!(matches!(outcome, Ok(HoldOutcome::Held)), "{outcome:?}");
        let after = snapshot(lock, event, t0()).await;
        assert_eq!(
            after.seats,
            [(seat("A:1:1"), SeatState::Held { order: a, until })].into(),
            "held once"
        );
        return;
    }

    let zone_twice = vec![general("GA", 1, 5), general("GA", 2, 5)];
    for items in [seat_twice.clone(), zone_twice.clone()] {
        let outcome = lock.hold(&request(items.clone())).await;
        assert!(
            matches!(outcome, Err(Error::InvalidRequest { .. })),
            "hold of {items:?}: {outcome:?}"
        );
    }
    assert_eq!(
        snapshot(lock, event, t0()).await,
        LockSnapshot::default(),
        "a rejected hold holds nothing"
    );

    let held = [seats(&["A:1:1"]), vec![general("GA", 1, 5)]].concat();
    assert_eq!(
        hold(lock, event, a, &held, t0(), until).await,
        HoldOutcome::Held
    );
    for items in [seat_twice, zone_twice] {
        let released = lock.release(event, a, &items).await;
        assert!(
            matches!(released, Err(Error::InvalidRequest { .. })),
            "release of {items:?}: {released:?}"
        );
        let sold = lock.mark_sold(event, a, &items).await;
        assert!(
            matches!(sold, Err(Error::InvalidRequest { .. })),
            "mark_sold of {items:?}: {sold:?}"
        );
    }
    let after = snapshot(lock, event, t0()).await;
    assert_eq!(
        after.seats[&seat("A:1:1")],
        SeatState::Held { order: a, until },
        "rejected calls change nothing"
    );
    assert_eq!(places(&after, "GA"), 1);
    assert_eq!(
        places(&snapshot(lock, event, until).await, "GA"),
        0,
        "the places are still a hold, not sold"
    );
}
