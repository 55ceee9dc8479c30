//! `mark_sold`: the database said this order paid.

use chrono::TimeDelta;

use crate::ports::{HoldOutcome, SeatLock, SeatState};

use super::super::{new_event, new_order, seat, secs, t0};
use super::{assert_taken, general, hold, load_empty, places, seats, snapshot};

/// `mark_sold` overwrites any other holder of a seat; the sale never lapses, refuses everyone else
/// for ever, is not freed by the former holder's release, and is freed by the buyer's release (a
/// refund).
pub async fn mark_sold_overwrites_any_holder_and_never_lapses(lock: &dyn SeatLock) {
    let (event, a, b) = (new_event(), new_order(), new_order());
    load_empty(lock, event).await;
    let s = seats(&["A:1:1"]);
    assert_eq!(
        hold(lock, event, a, &s, t0(), t0() + secs(60)).await,
        HoldOutcome::Held
    );

    lock.mark_sold(event, b, &s).await.expect("mark_sold");
    lock.release(event, a, &s).await.expect("release");
    let far = t0() + TimeDelta::days(400);
    let after = snapshot(lock, event, far).await;
    assert_eq!(
        after.seats.get(&seat("A:1:1")),
        Some(&SeatState::Sold { order: b }),
        "sold to B over A's hold, without a deadline, and A's release is fenced"
    );
    assert_taken(
        &hold(lock, event, a, &s, far, far + secs(60)).await,
        &["A:1:1"],
        &[],
    );

    // A refund: the buyer's release frees the sold seat.
    lock.release(event, b, &s).await.expect("release");
    assert!(snapshot(lock, event, far).await.seats.is_empty());
    assert_eq!(
        hold(lock, event, a, &s, far, far + secs(60)).await,
        HoldOutcome::Held
    );
}

/// `mark_sold` leaves a free seat free (never held, or released before the mark arrived: a refund
/// that overtook the payment wins) and touches no zone where the order has no entry.
pub async fn mark_sold_leaves_free_seats_and_other_orders_zones_alone(lock: &dyn SeatLock) {
    let (event, a, b) = (new_event(), new_order(), new_order());
    load_empty(lock, event).await;
    let until = t0() + secs(60);

    // A:1:1 was never held; A:1:2 was held by A and released before the mark.
    assert_eq!(
        hold(lock, event, a, &seats(&["A:1:2"]), t0(), until).await,
        HoldOutcome::Held
    );
    lock.release(event, a, &seats(&["A:1:2"]))
        .await
        .expect("release");
    // B holds places in GA; A has no entry there, and A's entry in FLOOR was released.
    assert_eq!(
        hold(lock, event, b, &[general("GA", 2, 5)], t0(), until).await,
        HoldOutcome::Held
    );
    assert_eq!(
        hold(lock, event, a, &[general("FLOOR", 1, 5)], t0(), until).await,
        HoldOutcome::Held
    );
    lock.release(event, a, &[general("FLOOR", 1, 5)])
        .await
        .expect("release");

    let items = [
        seats(&["A:1:1", "A:1:2"]),
        vec![general("GA", 3, 5), general("FLOOR", 1, 5)],
    ]
    .concat();
    lock.mark_sold(event, a, &items).await.expect("mark_sold");
    let now = snapshot(lock, event, t0()).await;
    assert!(now.seats.is_empty(), "free seats stay free: {now:?}");
    assert_eq!(
        (places(&now, "GA"), places(&now, "FLOOR")),
        (2, 0),
        "only B's places, still B's hold: {now:?}"
    );
    let later = snapshot(lock, event, until).await;
    assert_eq!(
        (places(&later, "GA"), places(&later, "FLOOR")),
        (0, 0),
        "nothing was sold to A, and B's hold lapsed: {later:?}"
    );
}

/// A seat and places the order bought stay sold when the buyer holds them again (a retried
/// purchase): the hold answers `Held`, and nothing of it lapses.
pub async fn a_bought_seat_stays_sold_when_its_buyer_holds_it_again(lock: &dyn SeatLock) {
    let (event, a, b) = (new_event(), new_order(), new_order());
    load_empty(lock, event).await;
    let items = [seats(&["A:1:1"]), vec![general("GA", 2, 2)]].concat();
    assert_eq!(
        hold(lock, event, a, &items, t0(), t0() + secs(60)).await,
        HoldOutcome::Held
    );
    lock.mark_sold(event, a, &items).await.expect("mark_sold");

    assert_eq!(
        hold(lock, event, a, &items, t0(), t0() + secs(60)).await,
        HoldOutcome::Held
    );
    let far = t0() + TimeDelta::days(400);
    let after = snapshot(lock, event, far).await;
    assert_eq!(
        after.seats.get(&seat("A:1:1")),
        Some(&SeatState::Sold { order: a }),
        "still sold, no deadline"
    );
    assert_eq!(places(&after, "GA"), 2, "the places are still sold");
    assert_taken(
        &hold(lock, event, b, &items, far, far + secs(60)).await,
        &["A:1:1"],
        &["GA"],
    );
}
