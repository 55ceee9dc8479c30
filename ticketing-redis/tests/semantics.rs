//! `RedisSeatLock` beyond the port's contract (which `tests/contracts.rs` runs): the keys it
//! writes, unreadable entries, the errors of its own, the health check, forgetting one event.

mod common;

use std::sync::Arc;

use common::*;
use ticketing_core::Error;
use ticketing_core::ports::{HoldOutcome, SeatLock};
use ticketing_redis::redis::AsyncCommands;
use ticketing_redis::{RedisSeatLock, RedisSeatLockConfig};

/// The contract checks what a later load shows; here: not a single key is written.
#[tokio::test]
async fn an_event_not_loaded_gets_no_keys() {
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
