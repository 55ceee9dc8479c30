//! Redis misbehaving: an emptied script cache, a holder that crashed, data loss, a restart.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::*;
use ticketing_core::Error;
use ticketing_core::domain::{EventId, OrderId};
use ticketing_core::ports::{ActiveHold, HoldItem, HoldOutcome, LockSnapshot, SeatLock, SeatState};
use ticketing_redis::RedisSeatLock;
use ticketing_redis::redis::{self, aio::ConnectionManager};

async fn script_flush(conn: &mut ConnectionManager) {
    let _: () = redis::cmd("SCRIPT")
        .arg("FLUSH")
        .query_async(conn)
        .await
        .expect("SCRIPT FLUSH");
}

fn unavailable<T: std::fmt::Debug>(result: ticketing_core::Result<T>) -> bool {
    matches!(
        result,
        Err(Error::Unavailable {
            adapter: "redis",
            ..
        })
    )
}

/// The database's truth for the data-loss tests: A holds a seat and 2 places, C bought a seat.
fn truth(a: OrderId, c: OrderId) -> Vec<ActiveHold> {
    vec![
        ActiveHold {
            order: a,
            item: HoldItem::Seat(seat("A:1:1")),
            until: Some(t0() + secs(600)),
        },
        ActiveHold {
            order: a,
            item: general("GA", 2, 3),
            until: Some(t0() + secs(600)),
        },
        ActiveHold {
            order: c,
            item: HoldItem::Seat(seat("A:1:2")),
            until: None,
        },
    ]
}

fn assert_matches_truth(snapshot: LockSnapshot, a: OrderId, c: OrderId) {
    assert_eq!(snapshot.seats.len(), 2, "{snapshot:?}");
    assert_eq!(
        snapshot.seats[&seat("A:1:1")],
        SeatState::Held {
            order: a,
            until: t0() + secs(600)
        }
    );
    assert_eq!(snapshot.seats[&seat("A:1:2")], SeatState::Sold { order: c });
    assert_eq!(snapshot.general[&zone("GA")], 2);
}

/// After a data loss: the lock says "not loaded" and writes nothing, a rebuild restores the
/// database's truth, and holds are checked against it again.
async fn lose_and_rebuild(
    redis: &TestRedis,
    lock: &RedisSeatLock,
    ev: EventId,
    lost: impl AsyncFnOnce(),
) {
    let (a, b, c) = (order(), order(), order());
    let source = Arc::new(CountingSource::new(truth(a, c)));
    lock.rebuild(ev, &*source).await.unwrap();
    assert_matches_truth(lock.snapshot(ev, t0()).await.unwrap().unwrap(), a, c);

    lost().await;
    assert_eq!(redis.keys().await, Vec::<String>::new());
    let wanted = [seats(&["A:1:1", "A:1:3"]), vec![general("GA", 2, 3)]].concat();
    assert_eq!(
        hold(lock, ev, b, wanted.clone(), t0(), t0() + secs(60)).await,
        HoldOutcome::NotLoaded
    );
    assert_eq!(lock.snapshot(ev, t0()).await.unwrap(), None);
    assert_eq!(
        redis.keys().await,
        Vec::<String>::new(),
        "NotLoaded changes nothing"
    );

    lock.rebuild(ev, &*source).await.unwrap();
    assert_eq!(source.calls(), 2);
    assert_matches_truth(lock.snapshot(ev, t0()).await.unwrap().unwrap(), a, c);
    assert_eq!(
        hold(lock, ev, b, wanted, t0(), t0() + secs(60)).await,
        HoldOutcome::Taken {
            seats: vec![seat("A:1:1")],
            zones: vec![zone("GA")]
        }
    );
    assert_eq!(
        hold(lock, ev, b, seats(&["A:1:2"]), t0(), t0() + secs(60)).await,
        HoldOutcome::Taken {
            seats: vec![seat("A:1:2")],
            zones: vec![]
        }
    );
    let fits = [seats(&["A:1:3"]), vec![general("GA", 1, 3)]].concat();
    assert_eq!(
        hold(lock, ev, b, fits, t0(), t0() + secs(60)).await,
        HoldOutcome::Held
    );
}

#[tokio::test]
async fn an_emptied_script_cache_is_invisible_to_callers() {
    // SCRIPT FLUSH on the shared server is harmless to parallel tests only because every caller
    // reloads scripts on NOSCRIPT: exactly the property under test.
    let redis = TestRedis::shared();
    let lock = redis.lock().await;
    let mut raw = redis.raw().await;
    let (ev, a, b) = (event(), order(), order());
    let items = [seats(&["A:1:1"]), vec![general("GA", 1, 1)]].concat();

    script_flush(&mut raw).await;
    lock.ping_scripts().await.expect("health after flush");
    script_flush(&mut raw).await;
    assert_eq!(
        hold(&lock, ev, a, items.clone(), t0(), t0() + secs(60)).await,
        HoldOutcome::NotLoaded
    );
    script_flush(&mut raw).await;
    lock.rebuild(ev, &(CountingSource::new(vec![])))
        .await
        .expect("rebuild after flush");
    script_flush(&mut raw).await;
    assert_eq!(
        hold(&lock, ev, a, items.clone(), t0(), t0() + secs(60)).await,
        HoldOutcome::Held
    );
    script_flush(&mut raw).await;
    lock.mark_sold(ev, a, &items)
        .await
        .expect("mark_sold after flush");
    script_flush(&mut raw).await;
    let snapshot = lock
        .snapshot(ev, t0())
        .await
        .expect("snapshot after flush")
        .unwrap();
    assert_eq!(snapshot.seats[&seat("A:1:1")], SeatState::Sold { order: a });
    script_flush(&mut raw).await;
    lock.release(ev, a, &items)
        .await
        .expect("release after flush");
    script_flush(&mut raw).await;
    assert_eq!(
        hold(&lock, ev, b, items, t0(), t0() + secs(60)).await,
        HoldOutcome::Held
    );
}

#[tokio::test]
async fn a_crashed_holder_blocks_its_seats_only_until_the_deadline() {
    let redis = TestRedis::shared();
    let (ev, a, b) = (event(), order(), order());
    let until = t0() + secs(300);
    let items = [seats(&["A:1:1", "A:1:2"]), vec![general("GA", 4, 4)]].concat();
    {
        let crashed = redis.lock().await;
        load_empty(&crashed, ev).await;
        assert_eq!(
            hold(&crashed, ev, a, items.clone(), t0(), until).await,
            HoldOutcome::Held
        );
        // Dropped without release: the process died between hold and persist.
    }
    let survivor = redis.lock().await;
    assert_eq!(
        hold(
            &survivor,
            ev,
            b,
            items.clone(),
            t0() + secs(299),
            until + secs(300)
        )
        .await,
        HoldOutcome::Taken {
            seats: vec![seat("A:1:1"), seat("A:1:2")],
            zones: vec![zone("GA")]
        }
    );
    assert_eq!(
        hold(&survivor, ev, b, items, until, until + secs(300)).await,
        HoldOutcome::Held
    );
    let snapshot = survivor.snapshot(ev, until).await.unwrap().unwrap();
    assert!(snapshot.seats.values().all(|s| *s
        == SeatState::Held {
            order: b,
            until: until + secs(300)
        }));
    assert_eq!(snapshot.general[&zone("GA")], 4);
}

#[tokio::test]
async fn losing_the_keys_means_not_loaded_until_rebuilt() {
    let redis = TestRedis::shared();
    let lock = redis.lock().await;
    let ev = event();
    lose_and_rebuild(&redis, &lock, ev, async || redis.wipe().await).await;
}

#[tokio::test]
async fn flushall_on_a_private_server_means_not_loaded_until_rebuilt() {
    let server = PrivateRedis::start().await;
    let redis = TestRedis::on(server.url());
    let lock = redis.lock().await;
    let mut raw = redis.raw().await;
    let ev = event();
    lose_and_rebuild(&redis, &lock, ev, async || {
        let _: () = redis::cmd("FLUSHALL")
            .query_async(&mut raw)
            .await
            .expect("FLUSHALL");
    })
    .await;
}

#[tokio::test]
async fn a_restart_fails_calls_while_down_and_the_same_lock_works_after() {
    let mut server = PrivateRedis::start().await;
    let redis = TestRedis::on(server.url());
    let lock = redis.lock().await;
    let (ev, a) = (event(), order());
    load_empty(&lock, ev).await;
    let items = seats(&["A:1:1"]);
    assert_eq!(
        hold(&lock, ev, a, items.clone(), t0(), t0() + secs(60)).await,
        HoldOutcome::Held
    );

    server.kill();
    assert!(unavailable(
        lock.hold(&request(ev, a, items.clone(), t0(), t0() + secs(60)))
            .await
    ));
    assert!(unavailable(lock.snapshot(ev, t0()).await));
    assert!(unavailable(lock.release(ev, a, &items).await));
    assert!(unavailable(lock.ping_scripts().await));

    server.restart().await;
    // Bounded wait for the connection manager to reconnect; no timing is asserted.
    let mut healthy = false;
    for _ in 0..100 {
        match lock.ping_scripts().await {
            Ok(()) => {
                healthy = true;
                break;
            }
            Err(e) => {
                assert!(e.is_retryable(), "{e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
    assert!(healthy, "the lock never came back after the restart");
    // The restarted server is empty (no persistence) and its script cache too.
    assert_eq!(
        hold(&lock, ev, a, items.clone(), t0(), t0() + secs(60)).await,
        HoldOutcome::NotLoaded
    );
    load_empty(&lock, ev).await;
    assert_eq!(
        hold(&lock, ev, a, items, t0(), t0() + secs(60)).await,
        HoldOutcome::Held
    );
}
