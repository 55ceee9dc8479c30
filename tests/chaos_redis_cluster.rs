//! Chaos run against a Redis Cluster: a flash sale through the services over the MySQL
//! repositories and a Redis seat lock on a private 3-primary, 3-replica cluster, while the chaos
//! task kills the primary that serves the event's slot, waits for its replica to take over,
//! restarts the killed node (it rejoins empty, as the new primary's replica) and repeats.
//! Buyers retry `Unavailable` answers with the same idempotency key. At the end: zero oversell
//! audited by SQL, every acknowledged purchase, payment and cancellation in the database, and the
//! lock, reloaded from the database, equal to it.
//!
//! Commands in flight when the primary dies wait for the connection's ceiling
//! (`RedisConnectionConfig::cluster_overall_timeout`) and answer `Unavailable`; the connection
//! then renews itself from the seeds and follows the slot to the promoted replica.
//!
//! Redis replicates asynchronously: a hold acknowledged by the old primary may be missing on the
//! promoted replica. The database's unique active-seat index still refuses a second sale of that
//! seat (the buyer gets "taken"), and the run reports how many seats the lock had stale.
//!
//! `CHAOS_ROUNDS` sets the number of failovers (default 2), `CHAOS_SEED` replays a run's choices.

use std::sync::Arc;
use std::time::{Duration, Instant};

use ticketing_core::testkit::Fixture;
use ticketing_redis::testing::PrivateCluster;
use ticketing_redis::{RedisSeatLock, RedisSeatLockConfig};
use ticketing_tests::TEST_POOL_SIZE;
use ticketing_tests::chaos::{
    ChaosConfig, ChaosRng, FaultCounts, SEATS, Sale, check_everything, harness, layout,
    reload_and_assert_lock_equals_repository, test_database,
};

const PRIMARY_KILLED: &str = "primary killed, replica promoted";

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn flash_sale_survives_the_primary_of_its_event_failing_over() {
    let config = ChaosConfig::from_env("chaos_redis_cluster", 2, 200);
    let kills = config.faults;
    let db = test_database(TEST_POOL_SIZE).await;
    let mut cluster = PrivateCluster::start().await;
    let prefix = format!("test:{}:", uuid::Uuid::new_v4());
    let lock_config = RedisSeatLockConfig {
        key_prefix: prefix.clone(),
        ..Default::default()
    };
    let lock = Arc::new(RedisSeatLock::new(cluster.connect().await, lock_config).expect("config"));
    let fixture = Arc::new(Fixture::new(&harness(&db, lock.clone()), layout()).await);
    let seats_key = format!("{prefix}{{ev:{}}}:seats", fixture.event.id());
    let sale = Sale::new(fixture.clone(), SEATS, config);
    let buyers = sale.start();

    let faults = FaultCounts::default();
    let mut rng = ChaosRng::stream(config.seed, 1);
    let mut failovers = Vec::new();
    for _ in 0..kills {
        tokio::time::sleep(Duration::from_millis(rng.between(200, 600) as u64)).await;
        let killed_at = Instant::now();
        let (killed, promoted) = cluster.fail_over(&seats_key).await;
        assert_ne!(promoted, killed, "the killed primary still serves the slot");
        faults.record(PRIMARY_KILLED);
        failovers.push(killed_at.elapsed());
        cluster.restart(killed).await;
    }
    // Let the buyers run on the promoted primary for a while before stopping.
    tokio::time::sleep(Duration::from_millis(500)).await;
    sale.stop();
    tokio::time::timeout(Duration::from_secs(60), Sale::join(buyers))
        .await
        .expect("the buyers did not finish within a minute of the stop");

    let (mut checks, stale) = check_everything(&sale, db.pool()).await;

    // Reconciled from the database, the lock must equal it exactly.
    checks += reload_and_assert_lock_equals_repository(&lock, &fixture).await;
    println!(
        "chaos_redis_cluster: faults injected {:?}; failovers took {failovers:?}; {}; {stale} seats/zones left stale by the traffic; {checks} checks",
        faults.snapshot(),
        sale.stats.summary()
    );
    assert_eq!(faults.total(), u64::from(kills));
    sale.assert_some_purchase_acknowledged();
    db.drop_database().await.expect("drop the test database");
}
