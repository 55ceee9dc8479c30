//! The seat lock and the event stream on a Redis Cluster of this test alone (3 primaries, 3
//! replicas on loopback ports, see `testing::PrivateCluster`): the core conformance suite runs
//! unchanged over a cluster connection, and the stream's scripts, whose keys share one hash tag,
//! run on whichever primary owns that slot.

mod common;

use std::sync::Arc;

use common::*;
use ticketing_core::memory::{InMemoryCatalog, InMemoryTicketRepository, InMemoryWaitingList};
use ticketing_core::ports::{HoldOutcome, SeatLock};
use ticketing_core::testkit::{BoxFuture, Harness, run_all};
use ticketing_redis::{RedisSeatLock, RedisSeatLockConfig};
use uuid::Uuid;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_conformance_suite_passes_on_a_redis_cluster() {
    let cluster = Arc::new(PrivateCluster::start().await);
    let conn = cluster.connect().await;
    assert!(conn.is_cluster());
    run_all(|| {
        let (cluster, conn) = (cluster.clone(), conn.clone());
        async move {
            let prefix = format!("test:{}:", Uuid::new_v4());
            let config = RedisSeatLockConfig {
                key_prefix: prefix.clone(),
                ..Default::default()
            };
            let lock = RedisSeatLock::new(conn, config).expect("valid config");
            let tickets = Arc::new(InMemoryTicketRepository::new());
            Harness {
                seat_lock: Arc::new(lock),
                waiting_list: Arc::new(InMemoryWaitingList::new(tickets.clone())),
                outbox: tickets.clone(),
                tickets,
                catalog: Arc::new(InMemoryCatalog::new()),
                wipe_seat_lock: Arc::new(move || -> BoxFuture {
                    let (cluster, prefix) = (cluster.clone(), prefix.clone());
                    Box::pin(async move { cluster.delete_prefix(&prefix).await })
                }),
                teardown: None,
            }
        }
    })
    .await;
}

#[tokio::test]
async fn a_comma_separated_url_list_connects_to_the_cluster_and_one_url_to_one_server() {
    let cluster = PrivateCluster::start().await;
    let lock = RedisSeatLock::connect(&cluster.seeds(), RedisSeatLockConfig::default())
        .await
        .expect("connect to the cluster by its seeds");
    lock.ping_scripts()
        .await
        .expect("scripts run on the cluster");

    let single = ticketing_redis::RedisConnection::connect(&redis_url(), Default::default())
        .await
        .expect("the shared test server (TICKETING_REDIS_URL)");
    assert!(!single.is_cluster());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_lock_answers_again_after_its_primary_failed_over() {
    let mut cluster = PrivateCluster::start().await;
    let prefix = format!("test:{}:", Uuid::new_v4());
    let config = RedisSeatLockConfig {
        key_prefix: prefix.clone(),
        ..Default::default()
    };
    let lock = RedisSeatLock::new(cluster.connect().await, config).expect("valid config");
    let ev = event();
    load_empty(&lock, ev).await;
    let first = order();
    let held = lock
        .hold(&request(
            ev,
            first,
            seats(&["A:1:1"]),
            t0(),
            t0() + secs(60),
        ))
        .await
        .expect("hold before the failover");
    assert_eq!(held, HoldOutcome::Held);

    let key = format!("{prefix}{{ev:{ev}}}:seats");
    let (killed, promoted) = cluster.fail_over(&key).await;
    assert_ne!(killed, promoted);

    // The connection follows the slot to the promoted replica by itself; calls may fail while
    // it finds out, never for longer than the failover took plus a few retries.
    let started = std::time::Instant::now();
    let second = order();
    let outcome = loop {
        match lock
            .hold(&request(
                ev,
                second,
                seats(&["A:1:2"]),
                t0(),
                t0() + secs(60),
            ))
            .await
        {
            Ok(outcome) => break outcome,
            Err(e) => {
                assert!(e.is_retryable(), "{e}");
                assert!(
                    started.elapsed() < std::time::Duration::from_secs(30),
                    "the lock still fails 30 s after the failover: {e}"
                );
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
        }
    };
    println!(
        "first answer after the failover: {:?} after {:?}",
        outcome,
        started.elapsed()
    );
    assert!(matches!(
        outcome,
        HoldOutcome::Held | HoldOutcome::NotLoaded
    ));

    // The killed node comes back as the new primary's replica; then that primary fails too.
    cluster.restart(killed).await;
    let (again_killed, again_promoted) = cluster.fail_over(&key).await;
    assert_eq!((again_killed, again_promoted), (promoted, killed));
    let started = std::time::Instant::now();
    let third = order();
    loop {
        match tokio::time::timeout(
            std::time::Duration::from_secs(5),
            lock.hold(&request(
                ev,
                third,
                seats(&["A:1:3"]),
                t0(),
                t0() + secs(60),
            )),
        )
        .await
        {
            Ok(Ok(outcome)) => {
                println!(
                    "after the second failover: {outcome:?} after {:?}",
                    started.elapsed()
                );
                break;
            }
            Ok(Err(e)) => println!("error {e} after {:?}", started.elapsed()),
            Err(_) => println!("a hold hung for 5 s, after {:?}", started.elapsed()),
        }
        assert!(started.elapsed() < std::time::Duration::from_secs(30));
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

/// Holds in flight when the primary dies get an answer (an error while the cluster fails over
/// and redis-rs retries, within `cluster_overall_timeout`), never hang.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn holds_in_flight_during_a_failover_all_get_an_answer() {
    let mut cluster = PrivateCluster::start().await;
    let prefix = format!("test:{}:", Uuid::new_v4());
    let config = RedisSeatLockConfig {
        key_prefix: prefix.clone(),
        ..Default::default()
    };
    let lock = Arc::new(RedisSeatLock::new(cluster.connect().await, config).expect("config"));
    let ev = event();
    load_empty(lock.as_ref(), ev).await;
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let hung = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let tasks: Vec<_> = (0..200)
        .map(|i| {
            let (lock, stop, hung) = (lock.clone(), stop.clone(), hung.clone());
            tokio::spawn(async move {
                let mut n = 0u32;
                while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                    n += 1;
                    let seat = format!("A:{}:{}", i + 1, n);
                    let hold = request(ev, order(), seats(&[&seat]), t0(), t0() + secs(60));
                    let call = lock.hold(&hold);
                    if tokio::time::timeout(std::time::Duration::from_secs(15), call)
                        .await
                        .is_err()
                    {
                        hung.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    }
                }
            })
        })
        .collect();
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    let key = format!("{prefix}{{ev:{ev}}}:seats");
    let (killed, _) = cluster.fail_over(&key).await;
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    cluster.restart(killed).await;
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    for task in tasks {
        task.await.expect("holder task");
    }
    assert_eq!(
        hung.load(std::sync::atomic::Ordering::SeqCst),
        0,
        "holds that never answered"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn many_buyers_loading_an_event_at_once_get_answers() {
    let cluster = PrivateCluster::start().await;
    let lock = Arc::new(
        RedisSeatLock::new(cluster.connect().await, RedisSeatLockConfig::default()).expect("c"),
    );
    let ev = event();
    let source = Arc::new(CountingSource::new(vec![]));
    let started = std::time::Instant::now();
    let tasks: Vec<_> = (0..200)
        .map(|i| {
            let (lock, source) = (lock.clone(), source.clone());
            tokio::spawn(async move {
                let seat = format!("A:1:{}", i + 1);
                for _ in 0..20 {
                    let hold = request(ev, order(), seats(&[&seat]), t0(), t0() + secs(60));
                    match lock.hold(&hold).await {
                        Ok(HoldOutcome::NotLoaded) => {
                            let _ = lock.rebuild(ev, source.as_ref()).await;
                        }
                        Ok(outcome) => return outcome,
                        Err(e) => println!("hold error {e}"),
                    }
                }
                panic!("never held");
            })
        })
        .collect();
    for task in tasks {
        task.await.expect("task");
    }
    println!("200 buyers held after {:?}", started.elapsed());
    assert_eq!(source.calls(), 1, "the event was read from its source once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_seat_lock_contract_holds_on_a_redis_cluster() {
    use ticketing_core::testkit::contracts::seat_lock::{
        self, SeatLockCapabilities, SeatLockContext,
    };

    let cluster = Arc::new(PrivateCluster::start().await);
    // A short lease and tiny rebuild chunks, so that the rebuild checks renew and lose leases
    // and write in several script calls.
    let lease = std::time::Duration::from_secs(1);
    let config = RedisSeatLockConfig {
        key_prefix: format!("test:{}:", Uuid::new_v4()),
        rebuild_lock_ttl: lease,
        rebuild_chunk: 2,
        ..Default::default()
    };
    let lock = Arc::new(RedisSeatLock::new(cluster.connect().await, config.clone()).expect("c"));
    let forgetting = lock.clone();
    let opening = cluster.clone();
    let context = SeatLockContext {
        lock,
        // Racers get connections of their own, as separate server processes would.
        open: Arc::new(move || {
            let (cluster, config) = (opening.clone(), config.clone());
            Box::pin(async move {
                let lock = RedisSeatLock::new(cluster.connect().await, config).expect("config");
                Arc::new(lock) as Arc<dyn SeatLock>
            })
        }),
        forget: Some(Arc::new(move |event| {
            let lock = forgetting.clone();
            Box::pin(async move { lock.forget(event).await })
        })),
        capabilities: SeatLockCapabilities {
            rejects_duplicate_items: true,
            rebuild_lease: Some(lease),
        },
    };
    seat_lock::run_all(&context).await;
}
