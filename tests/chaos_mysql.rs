//! Chaos run against MariaDB/MySQL: a flash sale through the services over the MySQL
//! repositories and a Redis seat lock, while the chaos task kills the repository's database
//! connections (`KILL <id>`, found in `information_schema.PROCESSLIST` by the test database's
//! name, preferring connections inside a transaction) at random moments. Every error a caller
//! sees must be `Unavailable` (never `Internal`, never a panic); buyers retry with the same
//! idempotency key, and a purchase that committed although its caller saw an error (a kill during
//! COMMIT) must come back from the retry as the committed order. At the end: no half-written
//! order, zero oversell, every acknowledged answer in the database, the seat map equal to it.
//!
//! `CHAOS_ROUNDS` sets the number of kills (default 40), `CHAOS_SEED` replays a run's choices.

use std::sync::Arc;
use std::time::Duration;

use sqlx::{AssertSqlSafe, Connection, MySqlConnection, Row};
use ticketing_core::testkit::Fixture;
use ticketing_redis::testing::TestRedis;
use ticketing_sqlx::testing::{DEFAULT_URL, URL_VAR};
use ticketing_tests::TEST_POOL_SIZE;
use ticketing_tests::chaos::{
    ChaosConfig, ChaosRng, FaultCounts, SEATS, Sale, check_everything, harness, layout,
    reload_and_assert_lock_equals_repository, test_database,
};

const IN_COMMIT: &str = "KILL during COMMIT";
const IN_TRANSACTION: &str = "KILL in a transaction";
const IN_QUERY: &str = "KILL during a query";
const IDLE: &str = "KILL of an idle connection";

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn flash_sale_survives_killed_database_connections() {
    let config = ChaosConfig::from_env("chaos_mysql", 40, 200);
    let db = test_database(TEST_POOL_SIZE).await;
    let url = std::env::var(URL_VAR).unwrap_or_else(|_| DEFAULT_URL.to_owned());
    let mut admin = MySqlConnection::connect(&url)
        .await
        .unwrap_or_else(|e| panic!("an admin connection to {url} (set {URL_VAR}): {e}"));
    let redis = TestRedis::shared();
    let lock = Arc::new(redis.lock().await);
    let fixture = Arc::new(Fixture::new(&harness(&db, lock.clone()), layout()).await);
    let sale = Sale::new(fixture.clone(), SEATS, config);
    let buyers = sale.start();

    let faults = FaultCounts::default();
    let mut missed = 0u64;
    let mut rng = ChaosRng::stream(config.seed, 2);
    let mut killed = 0;
    while killed < config.faults {
        tokio::time::sleep(Duration::from_millis(rng.between(5, 60) as u64)).await;
        // Look a few times for the best victim: a connection inside COMMIT (the unknown-result
        // case), else one inside a transaction or a query, else any.
        let mut connections: Vec<(i64, String, bool, bool)> = Vec::new();
        for _ in 0..8 {
            let rows = sqlx::query(
                "SELECT p.ID AS id, p.COMMAND AS command, \
                        COALESCE(p.INFO LIKE 'COMMIT%', 0) AS committing, \
                        t.trx_id IS NOT NULL AS in_trx \
                 FROM information_schema.PROCESSLIST p \
                 LEFT JOIN information_schema.INNODB_TRX t ON t.trx_mysql_thread_id = p.ID \
                 WHERE p.DB = ? ORDER BY p.ID",
            )
            .bind(db.name())
            .fetch_all(&mut admin)
            .await
            .expect("read the process list");
            connections = rows
                .iter()
                .map(|r| {
                    (
                        r.get::<i64, _>("id"),
                        r.get::<String, _>("command"),
                        r.get::<i64, _>("in_trx") != 0,
                        r.get::<i64, _>("committing") != 0,
                    )
                })
                .collect();
            if connections.iter().any(|c| c.2 || c.1 == "Query") {
                break;
            }
        }
        let committing: Vec<_> = connections.iter().filter(|c| c.3).collect();
        let busy: Vec<_> = connections
            .iter()
            .filter(|c| c.2 || c.1 == "Query")
            .collect();
        let pool: Vec<_> = if !committing.is_empty() {
            committing
        } else if !busy.is_empty() && rng.chance(0.9) {
            busy
        } else {
            connections.iter().collect()
        };
        if pool.is_empty() {
            continue;
        }
        let (id, command, in_trx, committing) = pool[rng.below(pool.len() as u64) as usize];
        let kind = if *committing {
            IN_COMMIT
        } else if *in_trx {
            IN_TRANSACTION
        } else if command == "Query" {
            IN_QUERY
        } else {
            IDLE
        };
        // The id is a number read from the server, so formatting it into the statement is safe.
        match sqlx::raw_sql(AssertSqlSafe(format!("KILL CONNECTION {id}")))
            .execute(&mut admin)
            .await
        {
            Ok(_) => {
                faults.record(kind);
                killed += 1;
            }
            // Gone already (ER_NO_SUCH_THREAD): the connection closed between the look and the kill.
            Err(e) if e.as_database_error().and_then(|d| d.code()).as_deref() == Some("HY000") => {
                missed += 1;
            }
            Err(e) => panic!("KILL CONNECTION {id}: {e}"),
        }
    }
    sale.stop();
    Sale::join(buyers).await;
    admin.close().await.expect("close the admin connection");

    let (mut checks, stale) = check_everything(&sale, db.pool()).await;

    // Reconciled from the database, the lock must equal it exactly.
    checks += reload_and_assert_lock_equals_repository(&lock, &fixture).await;
    println!(
        "chaos_mysql: faults injected {:?} (total {}, {missed} connections gone before the kill); {}; {stale} seats/zones left stale by the traffic (known bug); {checks} checks",
        faults.snapshot(),
        faults.total(),
        sale.stats.summary()
    );
    sale.assert_some_purchase_acknowledged();
    db.drop_database().await.expect("drop the test database");
}
