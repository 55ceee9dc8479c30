//! The HTTP suite on MySQL/MariaDB (a fresh database per test, from `TICKETING_MYSQL_URL`,
//! default `mysql://root@127.0.0.1:3306/test`) with the Redis seat lock (a key prefix per test,
//! deleted afterwards, from `TICKETING_REDIS_URL`, default `redis://127.0.0.1:6379`). An
//! unreachable server fails the test with a message naming the variable.

mod common;

use std::sync::Arc;

use common::TestApp;
use ticketing_core::service::Backends;
use ticketing_redis::testing::TestRedis;
use ticketing_sqlx::testing::TestDatabase;
use ticketing_sqlx::{MySqlCatalog, MySqlTicketRepository};

async fn mysql_redis() -> TestApp {
    let database = TestDatabase::create(8)
        .await
        .unwrap_or_else(|e| panic!("cannot create a test database (set TICKETING_MYSQL_URL): {e}"));
    // The prefix's keys are deleted when the app (which keeps `redis` as its guard) is dropped.
    let redis = TestRedis::shared();
    let lock = redis.lock().await;
    let pool = database.pool().clone();
    let backends = Backends::builder()
        .tickets(Arc::new(MySqlTicketRepository::new(pool.clone())))
        .waiting_list(Arc::new(ticketing_sqlx::MySqlWaitingList::new(
            pool.clone(),
        )))
        .catalog(Arc::new(MySqlCatalog::new(pool)))
        .seat_lock(Arc::new(lock))
        .build()
        .expect("every adapter given");
    TestApp::new(backends, Some(Box::new((database, redis)))).await
}

http_suite!(mysql_redis());
