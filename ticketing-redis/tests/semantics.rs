//! The `SeatLock` contract on Redis: holds, fencing, lapsing, selling, snapshots.

mod common;

use std::sync::Arc;

use common::*;
use ticketing_core::Error;
use ticketing_core::ports::{HoldOutcome, SeatLock, SeatState};
use ticketing_redis::redis::AsyncCommands;
use ticketing_redis::{RedisSeatLock, RedisSeatLockConfig};

fn taken(seat_keys: &[&str], zones: &[&str]) -> HoldOutcome {
    HoldOutcome::Taken {
        seats: seat_keys.iter().map(|k| seat(k)).collect(),
        zones: zones.iter().map(|z| zone(z)).collect(),
    }
}

#[tokio::test]
async fn an_event_not_loaded_answers_not_loaded_and_writes_nothing() {
    let redis = TestRedis::shared();
    let lock = redis.lock().await;
    let (ev, a) = (event(), order());
    let items = [seats(&["A:1:1"]), vec![general("GA", 1, 5)]].concat();

    assert_eq!(
        hold(&lock, ev, a, items.clone(), t0(), t0() + secs(60)).await,
        HoldOutcome::NotLoaded
    );
    assert_eq!(lock.snapshot(ev, t0()).await.unwrap(), None);
    lock.release(ev, a, &items).await.unwrap();
    lock.mark_sold(ev, a, &items).await.unwrap();
    assert_eq!(
        redis.keys().await,
        Vec::<String>::new(),
        "nothing written while not loaded"
    );

    load_empty(&lock, ev).await;
    assert_eq!(
        hold(&lock, ev, a, items, t0(), t0() + secs(60)).await,
        HoldOutcome::Held
    );
}

#[tokio::test]
async fn holds_are_all_or_nothing_and_name_every_conflict() {
    let redis = TestRedis::shared();
    let lock = redis.lock().await;
    let (ev, a, b) = (event(), order(), order());
    let until = t0() + secs(600);
    load_empty(&lock, ev).await;

    let mine = [seats(&["A:1:1", "A:1:2"]), vec![general("GA", 4, 5)]].concat();
    assert_eq!(
        hold(&lock, ev, a, mine, t0(), until).await,
        HoldOutcome::Held
    );

    let theirs = [
        seats(&["A:1:3", "A:1:2", "A:1:1"]),
        vec![general("GA", 2, 5)],
    ]
    .concat();
    assert_eq!(
        hold(&lock, ev, b, theirs, t0(), until).await,
        taken(&["A:1:2", "A:1:1"], &["GA"])
    );

    let snapshot = lock.snapshot(ev, t0()).await.unwrap().expect("loaded");
    assert_eq!(
        snapshot.seats.len(),
        2,
        "A:1:3 was not held: all or nothing"
    );
    assert_eq!(
        snapshot.seats[&seat("A:1:1")],
        SeatState::Held { order: a, until }
    );
    assert_eq!(snapshot.general[&zone("GA")], 4);

    // A zone alone can be the only conflict.
    assert_eq!(
        hold(
            &lock,
            ev,
            b,
            [seats(&["A:1:3"]), vec![general("GA", 2, 5)]].concat(),
            t0(),
            until
        )
        .await,
        taken(&[], &["GA"])
    );
    assert!(
        !lock
            .snapshot(ev, t0())
            .await
            .unwrap()
            .unwrap()
            .seats
            .contains_key(&seat("A:1:3"))
    );
}

#[tokio::test]
async fn release_is_fenced_by_the_order() {
    let redis = TestRedis::shared();
    let lock = redis.lock().await;
    let (ev, a, b) = (event(), order(), order());
    let until = t0() + secs(600);
    load_empty(&lock, ev).await;
    let items = [seats(&["A:1:1", "A:1:2"]), vec![general("GA", 2, 3)]].concat();
    assert_eq!(
        hold(&lock, ev, a, items.clone(), t0(), until).await,
        HoldOutcome::Held
    );

    // B cannot free A's holds.
    lock.release(ev, b, &items).await.unwrap();
    let snapshot = lock.snapshot(ev, t0()).await.unwrap().unwrap();
    assert_eq!(snapshot.seats.len(), 2);
    assert_eq!(snapshot.general[&zone("GA")], 2);
    assert_eq!(
        hold(&lock, ev, b, items.clone(), t0(), until).await,
        taken(&["A:1:1", "A:1:2"], &["GA"])
    );

    // A frees one seat and its places; the rest stays.
    lock.release(
        ev,
        a,
        &[seats(&["A:1:1"]), vec![general("GA", 2, 3)]].concat(),
    )
    .await
    .unwrap();
    let snapshot = lock.snapshot(ev, t0()).await.unwrap().unwrap();
    assert_eq!(
        snapshot.seats.keys().collect::<Vec<_>>(),
        vec![&seat("A:1:2")]
    );
    assert_eq!(snapshot.general.get(&zone("GA")), None);
    assert_eq!(
        hold(
            &lock,
            ev,
            b,
            [seats(&["A:1:1"]), vec![general("GA", 3, 3)]].concat(),
            t0(),
            until
        )
        .await,
        HoldOutcome::Held
    );

    // Releasing what nobody holds is not an error.
    lock.release(ev, a, &seats(&["B:9:9"])).await.unwrap();
}

#[tokio::test]
async fn re_holding_extends_and_a_bought_seat_stays_sold() {
    let redis = TestRedis::shared();
    let lock = redis.lock().await;
    let (ev, a, b) = (event(), order(), order());
    load_empty(&lock, ev).await;
    let s = seats(&["A:1:1"]);

    assert_eq!(
        hold(&lock, ev, a, s.clone(), t0(), t0() + secs(60)).await,
        HoldOutcome::Held
    );
    assert_eq!(
        hold(&lock, ev, a, s.clone(), t0(), t0() + secs(300)).await,
        HoldOutcome::Held
    );
    // The extended hold still blocks B after the first deadline.
    assert_eq!(
        hold(&lock, ev, b, s.clone(), t0() + secs(120), t0() + secs(900)).await,
        taken(&["A:1:1"], &[])
    );
    let snapshot = lock.snapshot(ev, t0() + secs(120)).await.unwrap().unwrap();
    assert_eq!(
        snapshot.seats[&seat("A:1:1")],
        SeatState::Held {
            order: a,
            until: t0() + secs(300)
        }
    );

    lock.mark_sold(ev, a, &s).await.unwrap();
    assert_eq!(
        hold(&lock, ev, a, s.clone(), t0(), t0() + secs(60)).await,
        HoldOutcome::Held
    );
    let far = t0() + secs(1_000_000);
    let snapshot = lock.snapshot(ev, far).await.unwrap().unwrap();
    assert_eq!(
        snapshot.seats[&seat("A:1:1")],
        SeatState::Sold { order: a },
        "still sold, no deadline"
    );
    assert_eq!(
        hold(&lock, ev, b, s, far, far + secs(60)).await,
        taken(&["A:1:1"], &[])
    );
}

#[tokio::test]
async fn a_hold_lapses_exactly_at_its_deadline() {
    let redis = TestRedis::shared();
    let lock = redis.lock().await;
    let (ev, a, b) = (event(), order(), order());
    load_empty(&lock, ev).await;
    let until = t0() + secs(60);
    let items = [seats(&["A:1:1"]), vec![general("GA", 2, 2)]].concat();
    assert_eq!(
        hold(&lock, ev, a, items.clone(), t0(), until).await,
        HoldOutcome::Held
    );

    let just_before = until - chrono::TimeDelta::milliseconds(1);
    assert_eq!(
        hold(&lock, ev, b, items.clone(), just_before, until + secs(60)).await,
        taken(&["A:1:1"], &["GA"])
    );
    let snapshot = lock.snapshot(ev, just_before).await.unwrap().unwrap();
    assert_eq!(
        (snapshot.seats.len(), snapshot.general.get(&zone("GA"))),
        (1, Some(&2))
    );

    // until <= now: free.
    let snapshot = lock.snapshot(ev, until).await.unwrap().unwrap();
    assert!(
        snapshot.seats.is_empty() && snapshot.general.is_empty(),
        "{snapshot:?}"
    );
    assert_eq!(
        hold(&lock, ev, b, items, until, until + secs(60)).await,
        HoldOutcome::Held
    );
    let snapshot = lock.snapshot(ev, until).await.unwrap().unwrap();
    assert_eq!(
        snapshot.seats[&seat("A:1:1")],
        SeatState::Held {
            order: b,
            until: until + secs(60)
        }
    );
    assert_eq!(snapshot.general[&zone("GA")], 2);
}

#[tokio::test]
async fn mark_sold_overwrites_any_holder_and_release_stays_fenced() {
    let redis = TestRedis::shared();
    let lock = redis.lock().await;
    let (ev, a, b) = (event(), order(), order());
    load_empty(&lock, ev).await;
    let s = seats(&["A:1:1"]);
    assert_eq!(
        hold(&lock, ev, a, s.clone(), t0(), t0() + secs(60)).await,
        HoldOutcome::Held
    );

    lock.mark_sold(ev, b, &s).await.unwrap();
    lock.release(ev, a, &s).await.unwrap(); // A no longer holds it: nothing happens
    let snapshot = lock.snapshot(ev, t0()).await.unwrap().unwrap();
    assert_eq!(snapshot.seats[&seat("A:1:1")], SeatState::Sold { order: b });
    assert_eq!(
        hold(&lock, ev, a, s.clone(), t0(), t0() + secs(60)).await,
        taken(&["A:1:1"], &[])
    );

    // A refund releases the sale of the buyer.
    lock.release(ev, b, &s).await.unwrap();
    assert!(
        lock.snapshot(ev, t0())
            .await
            .unwrap()
            .unwrap()
            .seats
            .is_empty()
    );
}

#[tokio::test]
async fn general_admission_counts_other_orders_and_replaces_the_own_hold() {
    let redis = TestRedis::shared();
    let lock = redis.lock().await;
    let (ev, a, b, c) = (event(), order(), order(), order());
    load_empty(&lock, ev).await;
    let until = t0() + secs(600);
    let ga = |q| vec![general("GA", q, 5)];
    let taken_places = |snapshot: Option<ticketing_core::ports::LockSnapshot>| {
        snapshot
            .expect("loaded")
            .general
            .get(&zone("GA"))
            .copied()
            .unwrap_or(0)
    };

    assert_eq!(
        hold(&lock, ev, a, ga(3), t0(), until).await,
        HoldOutcome::Held
    );
    assert_eq!(
        hold(&lock, ev, b, ga(3), t0(), until).await,
        taken(&[], &["GA"])
    );
    assert_eq!(
        hold(&lock, ev, b, ga(2), t0(), until).await,
        HoldOutcome::Held
    );
    assert_eq!(taken_places(lock.snapshot(ev, t0()).await.unwrap()), 5);

    // A's own hold is replaced, not added to: 3 → 1 frees two places.
    assert_eq!(
        hold(&lock, ev, a, ga(1), t0(), until).await,
        HoldOutcome::Held
    );
    assert_eq!(taken_places(lock.snapshot(ev, t0()).await.unwrap()), 3);
    assert_eq!(
        hold(&lock, ev, a, ga(4), t0(), until).await,
        taken(&[], &["GA"])
    );
    assert_eq!(
        hold(&lock, ev, a, ga(3), t0(), until).await,
        HoldOutcome::Held
    );
    assert_eq!(taken_places(lock.snapshot(ev, t0()).await.unwrap()), 5);

    // Sold places never lapse, and re-holding them leaves them sold.
    lock.mark_sold(ev, b, &ga(2)).await.unwrap();
    assert_eq!(
        hold(&lock, ev, b, ga(2), t0(), until).await,
        HoldOutcome::Held
    );
    let later = until + secs(1);
    assert_eq!(
        taken_places(lock.snapshot(ev, later).await.unwrap()),
        2,
        "A's 3 lapsed, B's 2 sold"
    );
    assert_eq!(
        hold(&lock, ev, c, ga(3), later, later + secs(60)).await,
        HoldOutcome::Held
    );
    assert_eq!(
        hold(&lock, ev, a, ga(1), later, later + secs(60)).await,
        taken(&[], &["GA"])
    );

    // Releases give places back, fenced by order.
    lock.release(ev, a, &ga(1)).await.unwrap();
    assert_eq!(taken_places(lock.snapshot(ev, later).await.unwrap()), 5);
    lock.release(ev, c, &ga(1)).await.unwrap();
    assert_eq!(taken_places(lock.snapshot(ev, later).await.unwrap()), 2);

    // Zones are independent.
    let other = vec![general("BALCONY", 5, 5)];
    assert_eq!(
        hold(&lock, ev, a, other, later, later + secs(60)).await,
        HoldOutcome::Held
    );
    let snapshot = lock.snapshot(ev, later).await.unwrap().unwrap();
    assert_eq!(
        (
            snapshot.general[&zone("GA")],
            snapshot.general[&zone("BALCONY")]
        ),
        (2, 5)
    );
}

#[tokio::test]
async fn unreadable_entries_count_as_free_and_never_panic() {
    let redis = TestRedis::shared();
    let lock = redis.lock().await;
    let (ev, a) = (event(), order());
    load_empty(&lock, ev).await;
    let mut raw = redis.raw().await;
    let seats_key = redis.key(ev, "seats");
    let _: () = raw.hset(&seats_key, "A:1:1", "garbage").await.unwrap();
    let _: () = raw
        .hset(&seats_key, "A:1:2", "H|not-an-order|99")
        .await
        .unwrap();
    let _: () = raw
        .hset(&seats_key, "no-seat-key", format!("S|{}", order()))
        .await
        .unwrap();
    let _: () = raw
        .hset(redis.key(ev, "ga"), format!("GA|{}", order()), "???")
        .await
        .unwrap();

    let snapshot = lock.snapshot(ev, t0()).await.unwrap().unwrap();
    assert!(snapshot.seats.is_empty(), "{snapshot:?}");
    assert_eq!(
        hold(
            &lock,
            ev,
            a,
            seats(&["A:1:1", "A:1:2"]),
            t0(),
            t0() + secs(60)
        )
        .await,
        HoldOutcome::Held
    );
    assert_eq!(
        lock.snapshot(ev, t0()).await.unwrap().unwrap().seats.len(),
        2
    );
    assert_eq!(
        hold(
            &lock,
            ev,
            a,
            vec![general("GA", 1, 1)],
            t0(),
            t0() + secs(60)
        )
        .await,
        HoldOutcome::Held
    );
}

#[tokio::test]
async fn duplicate_items_are_invalid_requests_and_bad_prefixes_config_errors() {
    let redis = TestRedis::shared();
    let lock = redis.lock().await;
    let (ev, a) = (event(), order());
    load_empty(&lock, ev).await;
    let twice = seats(&["A:1:1", "A:1:1"]);
    let err = lock
        .hold(&request(ev, a, twice, t0(), t0() + secs(60)))
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::InvalidRequest { field: "items", .. }),
        "{err}"
    );
    let zone_twice = vec![general("GA", 1, 5), general("GA", 2, 5)];
    assert!(lock.mark_sold(ev, a, &zone_twice).await.is_err());

    let config = RedisSeatLockConfig {
        key_prefix: "bad{prefix}".into(),
        ..Default::default()
    };
    let err = RedisSeatLock::new(redis.raw().await, config).unwrap_err();
    assert!(
        matches!(
            err,
            Error::Config {
                setting: "key_prefix",
                ..
            }
        ),
        "{err}"
    );
}

#[tokio::test]
async fn all_keys_of_an_event_carry_the_prefix_and_the_event_hash_tag() {
    let redis = TestRedis::shared();
    let lock = redis.lock().await;
    let (ev, a) = (event(), order());
    load_empty(&lock, ev).await;
    let until = t0() + secs(60);
    let items = [seats(&["A:1:1"]), vec![general("GA", 1, 5)]].concat();
    assert_eq!(
        hold(&lock, ev, a, items, t0(), until).await,
        HoldOutcome::Held
    );
    let keys = redis.keys().await;
    assert_eq!(keys.len(), 5, "{keys:?}"); // loaded, seats, ga, ga-taken, ga-deadlines
    let tag = format!("{}{{ev:{ev}}}:", redis.prefix);
    assert!(keys.iter().all(|k| k.starts_with(&tag)), "{keys:?}");
}

#[tokio::test]
async fn the_health_check_runs_a_script() {
    let redis = TestRedis::shared();
    let lock = Arc::new(redis.lock().await);
    lock.ping_scripts().await.expect("healthy");
}

#[tokio::test]
async fn forgetting_an_event_deletes_its_keys_only() {
    let redis = TestRedis::shared();
    let lock = redis.lock().await;
    let (gone, kept, a) = (event(), event(), order());
    let items = [seats(&["A:1:1"]), vec![general("GA", 1, 5)]].concat();
    for ev in [gone, kept] {
        load_empty(&lock, ev).await;
        assert_eq!(
            hold(&lock, ev, a, items.clone(), t0(), t0() + secs(60)).await,
            HoldOutcome::Held
        );
    }
    lock.forget(gone).await.unwrap();
    assert_eq!(
        hold(&lock, gone, a, items.clone(), t0(), t0() + secs(60)).await,
        HoldOutcome::NotLoaded
    );
    let tag = format!("{{ev:{gone}}}");
    let keys = redis.keys().await;
    assert!(
        !keys.is_empty() && keys.iter().all(|k| !k.contains(&tag)),
        "{keys:?}"
    );
    assert_eq!(
        lock.snapshot(kept, t0())
            .await
            .unwrap()
            .unwrap()
            .seats
            .len(),
        1
    );
}
