//! General admission: places counted per zone against the capacity the caller passes.

use crate::ports::{HoldItem, HoldOutcome, SeatLock};

use super::super::{new_event, new_order, secs, t0};
use super::{assert_taken, general, hold, load_empty, places, snapshot};

fn ga(quantity: u32) -> Vec<HoldItem> {
    vec![general("GA", quantity, 5)]
}

/// A zone has room when the places of *other* orders plus the quantity fit the capacity; the
/// order's own earlier hold is replaced, not added to; releases give places back, fenced by the
/// order; zones are counted apart.
pub async fn general_admission_counts_other_orders_and_replaces_the_own_hold(lock: &dyn SeatLock) {
    let (event, a, b) = (new_event(), new_order(), new_order());
    load_empty(lock, event).await;
    let until = t0() + secs(600);

    assert_eq!(
        hold(lock, event, a, &ga(3), t0(), until).await,
        HoldOutcome::Held
    );
    assert_taken(
        &hold(lock, event, b, &ga(3), t0(), until).await,
        &[],
        &["GA"],
    );
    assert_eq!(
        hold(lock, event, b, &ga(2), t0(), until).await,
        HoldOutcome::Held,
        "3 + 2 fits 5 exactly"
    );
    assert_eq!(places(&snapshot(lock, event, t0()).await, "GA"), 5);

    // A's own hold is replaced: 3 → 1 frees two places, and 1 → 4 does not fit beside B's 2.
    assert_eq!(
        hold(lock, event, a, &ga(1), t0(), until).await,
        HoldOutcome::Held
    );
    assert_eq!(places(&snapshot(lock, event, t0()).await, "GA"), 3);
    assert_taken(
        &hold(lock, event, a, &ga(4), t0(), until).await,
        &[],
        &["GA"],
    );
    assert_eq!(
        places(&snapshot(lock, event, t0()).await, "GA"),
        3,
        "a refused hold keeps the order's earlier one"
    );
    assert_eq!(
        hold(lock, event, a, &ga(3), t0(), until).await,
        HoldOutcome::Held
    );
    assert_eq!(places(&snapshot(lock, event, t0()).await, "GA"), 5);

    // Releases give places back, fenced by the order.
    lock.release(event, new_order(), &ga(1))
        .await
        .expect("release");
    assert_eq!(places(&snapshot(lock, event, t0()).await, "GA"), 5);
    lock.release(event, a, &ga(1)).await.expect("release");
    assert_eq!(places(&snapshot(lock, event, t0()).await, "GA"), 2);

    // Zones are counted apart.
    assert_eq!(
        hold(lock, event, a, &[general("BALCONY", 5, 5)], t0(), until).await,
        HoldOutcome::Held
    );
    let after = snapshot(lock, event, t0()).await;
    assert_eq!(
        (places(&after, "GA"), places(&after, "BALCONY")),
        (2, 5),
        "{after:?}"
    );
}

/// Sold places count for ever and stay sold when their buyer holds the zone again; held places
/// lapse at their deadline and make room.
pub async fn sold_places_stay_sold_and_never_lapse(lock: &dyn SeatLock) {
    let (event, a, b, c) = (new_event(), new_order(), new_order(), new_order());
    load_empty(lock, event).await;
    let until = t0() + secs(600);
    assert_eq!(
        hold(lock, event, a, &ga(3), t0(), until).await,
        HoldOutcome::Held
    );
    assert_eq!(
        hold(lock, event, b, &ga(2), t0(), until).await,
        HoldOutcome::Held
    );

    lock.mark_sold(event, b, &ga(2)).await.expect("mark_sold");
    assert_eq!(
        hold(lock, event, b, &ga(2), t0(), until).await,
        HoldOutcome::Held,
        "the buyer may hold its bought places again"
    );
    let later = until + secs(1);
    assert_eq!(
        places(&snapshot(lock, event, later).await, "GA"),
        2,
        "A's 3 lapsed, B's 2 sold"
    );
    assert_eq!(
        hold(lock, event, c, &ga(3), later, later + secs(60)).await,
        HoldOutcome::Held
    );
    assert_taken(
        &hold(lock, event, a, &ga(1), later, later + secs(60)).await,
        &[],
        &["GA"],
    );
    let far = later + secs(3_600);
    assert_eq!(
        places(&snapshot(lock, event, far).await, "GA"),
        2,
        "C's hold lapsed; B's sale did not"
    );
}
