//! Rebuilding after a data loss, beyond the port's contract (which `tests/contracts.rs` runs):
//! the rebuild lock's key, its TTL and fencing, the bounded wait, `reload`, and a large event
//! (written in chunks of the default `rebuild_chunk`).

mod common;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use common::*;
use ticketing_core::domain::{EventId, TicketId};
use ticketing_core::ports::{
    ActiveHold, HoldItem, HoldOutcome, HoldPage, HoldSource, SeatLock, SeatState,
};
use ticketing_core::{Error, Result};
use ticketing_redis::RedisSeatLockConfig;
use ticketing_redis::redis::AsyncCommands;
use ticketing_redis::redis::aio::ConnectionManager;

fn seat_hold(key: &str, order: ticketing_core::domain::OrderId, sold: bool) -> ActiveHold {
    ActiveHold {
        order,
        item: HoldItem::Seat(seat(key)),
        until: (!sold).then(|| t0() + secs(600)),
    }
}

#[tokio::test]
async fn rebuilding_a_loaded_event_is_a_no_op_but_reload_replaces_it() {
    let redis = TestRedis::shared();
    let lock = redis.lock().await;
    let (ev, a, stale) = (event(), order(), order());
    let first = Arc::new(CountingSource::new(vec![seat_hold("A:1:1", a, false)]));
    lock.rebuild(ev, &*first).await.unwrap();
    assert!(
        redis
            .keys()
            .await
            .iter()
            .all(|k| !k.ends_with(":rebuild-lock")),
        "the rebuild lock is released"
    );
    assert_eq!(
        hold(&lock, ev, stale, seats(&["A:1:9"]), t0(), t0() + secs(60)).await,
        HoldOutcome::Held
    );

    lock.rebuild(ev, &*first).await.unwrap();
    assert_eq!(first.calls(), 1, "the event was loaded: no second read");
    assert_eq!(
        lock.snapshot(ev, t0()).await.unwrap().unwrap().seats.len(),
        2
    );

    let second = CountingSource::new(vec![seat_hold("A:1:2", a, true)]);
    lock.reload(ev, &second).await.unwrap();
    assert_eq!(second.calls(), 1);
    let snapshot = lock.snapshot(ev, t0()).await.unwrap().unwrap();
    assert_eq!(snapshot.seats.len(), 1, "{snapshot:?}");
    assert_eq!(snapshot.seats[&seat("A:1:2")], SeatState::Sold { order: a });
}

#[tokio::test]
async fn a_dead_rebuilders_lock_is_taken_over_after_its_ttl() {
    let redis = TestRedis::shared();
    let lock = redis.lock().await;
    let ev = event();
    let mut raw = redis.raw().await;
    let lock_key = redis.key(ev, "rebuild-lock");
    let _: () = ticketing_redis::redis::cmd("SET")
        .arg(&lock_key)
        .arg("token-of-a-dead-process")
        .arg("PX")
        .arg(300)
        .query_async(&mut raw)
        .await
        .unwrap();
    let source = Arc::new(CountingSource::new(vec![seat_hold("A:1:1", order(), true)]));
    lock.rebuild(ev, &*source)
        .await
        .expect("waits, then takes over");
    assert_eq!(source.calls(), 1);
    assert_eq!(
        lock.snapshot(ev, t0()).await.unwrap().unwrap().seats.len(),
        1
    );
    let left: Option<String> = raw.get(&lock_key).await.unwrap();
    assert_eq!(left, None);
}

#[tokio::test]
async fn waiting_for_a_rebuild_that_never_finishes_is_bounded() {
    let redis = TestRedis::shared();
    let config = RedisSeatLockConfig {
        rebuild_wait: Duration::from_millis(200),
        ..redis.config()
    };
    let lock = redis.lock_with(config).await;
    let ev = event();
    let mut raw = redis.raw().await;
    let lock_key = redis.key(ev, "rebuild-lock");
    let _: () = raw.set(&lock_key, "a-rebuilder-that-hangs").await.unwrap();

    let source = Arc::new(CountingSource::new(vec![]));
    let err = lock.rebuild(ev, &*source).await.unwrap_err();
    assert!(
        matches!(
            err,
            Error::Unavailable {
                adapter: "redis",
                ..
            }
        ),
        "{err}"
    );
    assert_eq!(source.calls(), 0, "a waiter never reads the source");
    let owner: String = raw.get(&lock_key).await.unwrap();
    assert_eq!(
        owner, "a-rebuilder-that-hangs",
        "the other rebuilder's lock is left alone"
    );
}

/// A source whose read outlives the rebuild lock: meanwhile another rebuilder takes the lock,
/// writes its (newer) state and finishes.
struct OvertakenSource {
    raw: tokio::sync::Mutex<ConnectionManager>,
    lock_key: String,
    seats_key: String,
    loaded_key: String,
    newer: String,
    stale: Vec<ActiveHold>,
}

#[async_trait]
impl HoldSource for OvertakenSource {
    async fn active_holds(&self, _event: EventId, _after: Option<TicketId>) -> Result<HoldPage> {
        let mut raw = self.raw.lock().await;
        let _: () = raw
            .set(&self.lock_key, "the-other-rebuilder")
            .await
            .unwrap();
        let _: () = raw
            .hset(&self.seats_key, "A:1:5", &self.newer)
            .await
            .unwrap();
        let _: () = raw.set(&self.loaded_key, "1").await.unwrap();
        let _: () = raw.del(&self.lock_key).await.unwrap();
        Ok(HoldPage::last(self.stale.clone()))
    }
}

#[tokio::test]
async fn a_rebuilder_that_lost_its_lock_writes_nothing() {
    let redis = TestRedis::shared();
    let lock = redis.lock().await;
    let (ev, newer_order) = (event(), order());
    let source = OvertakenSource {
        raw: tokio::sync::Mutex::new(redis.raw().await),
        lock_key: redis.key(ev, "rebuild-lock"),
        seats_key: redis.key(ev, "seats"),
        loaded_key: redis.key(ev, "loaded"),
        newer: format!("S|{newer_order}"),
        stale: vec![seat_hold("A:1:1", order(), false)],
    };
    lock.rebuild(ev, &(source))
        .await
        .expect("the other rebuild counts");
    let snapshot = lock.snapshot(ev, t0()).await.unwrap().unwrap();
    assert_eq!(
        snapshot.seats.len(),
        1,
        "the stale read was not written: {snapshot:?}"
    );
    assert_eq!(
        snapshot.seats[&seat("A:1:5")],
        SeatState::Sold { order: newer_order }
    );
}

#[tokio::test]
async fn a_failed_source_read_frees_the_lock_at_once() {
    let redis = TestRedis::shared();
    let lock = redis.lock().await;
    let ev = event();
    let err = lock
        .rebuild(ev, &(CountingSource::failing()))
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::Unavailable {
                adapter: "mysql",
                ..
            }
        ),
        "source error kept: {err}"
    );
    assert_eq!(
        redis.keys().await,
        Vec::<String>::new(),
        "no lock, no marker left behind"
    );

    // A rebuild that may not wait at all succeeds: nothing holds the lock.
    let impatient = redis
        .lock_with(RedisSeatLockConfig {
            rebuild_wait: Duration::ZERO,
            ..redis.config()
        })
        .await;
    impatient
        .rebuild(ev, &(CountingSource::new(vec![])))
        .await
        .expect("lock was free");
    assert!(impatient.snapshot(ev, t0()).await.unwrap().is_some());
}

#[tokio::test]
async fn a_large_event_is_rebuilt_in_chunks() {
    const SEATS: u32 = 10_000;
    let redis = TestRedis::shared();
    let lock = redis.lock().await;
    let ev = event();
    let mut holds: Vec<ActiveHold> = (1..=SEATS)
        .map(|n| {
            seat_hold(
                &format!("A:{}:{}", n / 100, n % 100 + 1),
                order(),
                n % 2 == 0,
            )
        })
        .collect();
    holds.extend((0..500).map(|_| ActiveHold {
        order: order(),
        item: general("GA", 2, 2_000),
        until: Some(t0() + secs(600)),
    }));
    lock.rebuild(ev, &(CountingSource::new(holds)))
        .await
        .expect("rebuild");
    let left: Vec<String> = redis
        .keys()
        .await
        .into_iter()
        .filter(|k| k.contains(":rebuild"))
        .collect();
    assert!(left.is_empty(), "no lease or staging key is left: {left:?}");
    let snapshot = lock.snapshot(ev, t0()).await.unwrap().unwrap();
    assert_eq!(snapshot.seats.len(), SEATS as usize);
    assert_eq!(snapshot.general[&zone("GA")], 1_000);
    let later = lock.snapshot(ev, t0() + secs(600)).await.unwrap().unwrap();
    assert_eq!(
        later.seats.len(),
        SEATS as usize / 2,
        "only sold seats outlive the deadline"
    );
    assert_eq!(later.general.get(&zone("GA")), None);
}
