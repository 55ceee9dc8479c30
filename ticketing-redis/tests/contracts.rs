//! The `SeatLock` contract on `RedisSeatLock`: one test per check, each under its own key prefix
//! (deleted when the test ends, also when it failed). The racers each get a lock on a connection
//! of their own, as separate processes would have.

use std::sync::Arc;
use std::time::Duration;

use ticketing_core::ports::SeatLock;
use ticketing_core::testkit::contracts::seat_lock::{self, SeatLockCapabilities, SeatLockContext};
use ticketing_redis::testing::{TestRedis, connect};
use ticketing_redis::{RedisSeatLock, RedisSeatLockConfig};

/// The rebuild lease of the checks: short, so that the lease checks need not wait long.
const LEASE: Duration = Duration::from_secs(1);

/// Hold, release and mark_sold reject a seat or zone listed twice (`Error::InvalidRequest`); the
/// rebuild lock lapses after [`LEASE`] without renewal.
const CAPABILITIES: SeatLockCapabilities = SeatLockCapabilities {
    rejects_duplicate_items: true,
    rebuild_lease: Some(LEASE),
};

/// The lock settings of the checks: [`LEASE`], and tiny rebuild chunks so that every rebuild
/// of the checks writes in several script calls.
fn config(redis: &TestRedis) -> RedisSeatLockConfig {
    RedisSeatLockConfig {
        rebuild_lock_ttl: LEASE,
        rebuild_chunk: 2,
        ..redis.config()
    }
}

/// A fresh prefix and a context on it; keep the `TestRedis` until the check ends.
async fn context() -> (SeatLockContext, TestRedis) {
    let redis = TestRedis::shared();
    let lock = Arc::new(redis.lock_with(config(&redis)).await);
    let (url, config) = (redis.url.clone(), config(&redis));
    let forgetting = lock.clone();
    let context = SeatLockContext {
        lock,
        open: Arc::new(move || {
            let (url, config) = (url.clone(), config.clone());
            Box::pin(async move {
                let lock = RedisSeatLock::new(connect(&url).await, config).expect("valid config");
                Arc::new(lock) as Arc<dyn SeatLock>
            })
        }),
        forget: Some(Arc::new(move |event| {
            let lock = forgetting.clone();
            Box::pin(async move { lock.forget(event).await })
        })),
        capabilities: CAPABILITIES,
    };
    (context, redis)
}

/// The prefix's keys are deleted when the `TestRedis` is dropped.
async fn finish(_redis: TestRedis) {}

ticketing_core::seat_lock_contract!(context, finish);

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_rebuilder_that_lost_its_lease_writes_nothing_more() {
    let (context, _redis) = context().await;
    seat_lock::a_rebuilder_that_lost_its_lease_writes_nothing_more(&context.open, LEASE).await;
}

#[tokio::test]
async fn forgetting_an_event_drops_only_that_event() {
    let (context, _redis) = context().await;
    let forget = context
        .forget
        .as_ref()
        .expect("RedisSeatLock forgets one event");
    seat_lock::forgetting_an_event_drops_only_that_event(context.lock.as_ref(), forget).await;
}

/// The `EventSink` contract on `RedisEventSink`: each check on a stream under its own key
/// prefix, read back with `XRANGE`.
mod event_sink {
    use std::sync::Arc;

    use async_trait::async_trait;
    use ticketing_core::domain::{OutboxEntry, OutboxEvent};
    use ticketing_core::ports::EventSink;
    use ticketing_core::testkit::contracts::event_sink::{EventSinkCapabilities, SinkLog};
    use ticketing_redis::redis;
    use ticketing_redis::testing::{TestRedis, connect};
    use ticketing_redis::{RedisEventSink, RedisEventSinkConfig};

    /// Redis refuses an `XADD` whose id `<seq>-0` is not above the stream's top.
    const CAPABILITIES: EventSinkCapabilities = EventSinkCapabilities {
        drops_duplicates: true,
    };

    /// The stream of one check; its prefix is deleted when the `TestRedis` drops.
    struct StreamLog {
        redis: TestRedis,
        stream: String,
    }

    #[async_trait]
    impl SinkLog for StreamLog {
        async fn held(&self) -> Vec<OutboxEntry> {
            let entries: Vec<(String, Vec<(String, String)>)> = redis::cmd("XRANGE")
                .arg(&self.stream)
                .arg("-")
                .arg("+")
                .query_async(&mut connect(&self.redis.url).await)
                .await
                .expect("XRANGE");
            entries
                .into_iter()
                .map(|(id, fields)| {
                    let field = |name: &str| {
                        fields
                            .iter()
                            .find(|(k, _)| k == name)
                            .map(|(_, v)| v.clone())
                            .unwrap_or_else(|| panic!("entry {id} has no {name}"))
                    };
                    let seq: u64 = field("seq").parse().expect("a numeric seq");
                    assert_eq!(id, format!("{seq}-0"), "the entry id is the seq");
                    let event: OutboxEvent =
                        serde_json::from_str(&field("payload")).expect("an outbox event");
                    OutboxEntry { seq, event }
                })
                .collect()
        }

        async fn lose_everything(&self) {
            let _: i64 = redis::cmd("DEL")
                .arg(&self.stream)
                .query_async(&mut connect(&self.redis.url).await)
                .await
                .expect("DEL the stream");
        }

        async fn remove(&self) {}
    }

    async fn fresh() -> (Arc<dyn EventSink>, StreamLog) {
        let redis = TestRedis::shared();
        let sink = RedisEventSink::new(
            connect(&redis.url).await,
            RedisEventSinkConfig {
                key_prefix: redis.prefix.clone(),
                max_len: None,
            },
        )
        .expect("sink config");
        let stream = sink.stream_key();
        (Arc::new(sink), StreamLog { redis, stream })
    }

    ticketing_core::event_sink_contract!(fresh, CAPABILITIES);
}

/// The `SalesReadModel` contract on `RedisSalesReadModel`, under a key prefix of its own.
#[tokio::test]
async fn the_sales_read_model_applies_entries_once_in_order() {
    use ticketing_core::testkit::contracts::sales_read_model;
    let redis = TestRedis::shared();
    let model = ticketing_redis::RedisSalesReadModel::new(connect(&redis.url).await, &redis.prefix)
        .expect("a prefix without braces");
    sales_read_model::entries_apply_once_in_sequence_order(&model).await;
}

/// The `WaitingRoom` contract on `RedisWaitingRoom`, each check under its own key prefix.
mod waiting_room {
    use std::sync::Arc;

    use ticketing_core::ports::WaitingRoom;
    use ticketing_redis::RedisWaitingRoom;
    use ticketing_redis::testing::{TestRedis, connect};

    async fn fresh() -> (Arc<dyn WaitingRoom>, TestRedis) {
        let redis = TestRedis::shared();
        let room = RedisWaitingRoom::new(connect(&redis.url).await, redis.prefix.clone())
            .expect("a prefix without braces");
        (Arc::new(room), redis)
    }

    ticketing_core::waiting_room_contract!(fresh);
}
