//! The HTTP suite on MySQL/MariaDB (a fresh database per test, from `TICKETING_MYSQL_URL`,
//! default `mysql://root@127.0.0.1:3306/test`) with the Redis seat lock (a key prefix per test,
//! from `TICKETING_REDIS_URL`, default `redis://127.0.0.1:6379`). An unreachable server fails the
//! test with a message naming the variable.

mod common;

use std::sync::Arc;

use common::TestApp;
use ticketing_core::service::Backends;
use ticketing_redis::{RedisSeatLock, RedisSeatLockConfig};
use ticketing_sqlx::testing::TestDatabase;
use ticketing_sqlx::{MySqlCatalog, MySqlTicketRepository};

const REDIS_VAR: &str = "TICKETING_REDIS_URL";
const REDIS_DEFAULT: &str = "redis://127.0.0.1:6379";

async fn mysql_redis() -> TestApp {
    let database = TestDatabase::create(8)
        .await
        .unwrap_or_else(|e| panic!("cannot create a test database (set TICKETING_MYSQL_URL): {e}"));
    let url = std::env::var(REDIS_VAR).unwrap_or_else(|_| REDIS_DEFAULT.to_owned());
    let config = RedisSeatLockConfig {
        key_prefix: format!("test-server-{}:", uuid::Uuid::new_v4().simple()),
        ..Default::default()
    };
    let lock = RedisSeatLock::connect(&url, config)
        .await
        .unwrap_or_else(|e| panic!("cannot reach Redis at {url} (set {REDIS_VAR}): {e}"));
    let pool = database.pool().clone();
    let backends = Backends::builder()
        .tickets(Arc::new(MySqlTicketRepository::new(pool.clone())))
        .catalog(Arc::new(MySqlCatalog::new(pool)))
        .seat_lock(Arc::new(lock))
        .build()
        .expect("every adapter given");
    TestApp::new(backends, Some(Box::new(database))).await
}

http_suite!(mysql_redis());
