//! Harnesses that combine the real adapters: the Redis seat lock in front of the MySQL or the
//! PostgreSQL repositories, each test with its own database and its own key prefix.

pub mod chaos;

use std::sync::Arc;

use ticketing_core::testkit::{BoxFuture, Harness};
use ticketing_redis::testing::{TestRedis, connect, delete_prefix};
use ticketing_sqlx::testing::TestDatabase;
use ticketing_sqlx::{MySqlCatalog, MySqlTicketRepository};

/// The workspace README's examples (embedding, wiring MySQL + Redis), compiled as doctests.
#[doc = include_str!("../../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;

/// Pool size of a test database: enough for the conformance suite's concurrent tasks.
pub const TEST_POOL_SIZE: u32 = 24;

/// The production pairing: Redis seat lock + MySQL ticket repository and catalog.
pub async fn redis_mysql_harness() -> Harness {
    let db = TestDatabase::create(TEST_POOL_SIZE)
        .await
        .unwrap_or_else(|e| panic!("a test database (set TICKETING_MYSQL_URL): {e}"));
    let redis = TestRedis::shared();
    let seat_lock = Arc::new(redis.lock().await);
    let raw = connect(&redis.url).await;
    let prefix = redis.prefix.clone();
    let pool = db.pool().clone();
    let tickets = Arc::new(MySqlTicketRepository::new(pool.clone()));
    Harness {
        seat_lock,
        outbox: tickets.clone(),
        tickets,
        waiting_list: Arc::new(ticketing_sqlx::MySqlWaitingList::new(pool.clone())),
        catalog: Arc::new(MySqlCatalog::new(pool)),
        wipe_seat_lock: Arc::new(move || -> BoxFuture {
            let (mut raw, prefix) = (raw.clone(), prefix.clone());
            Box::pin(async move { delete_prefix(&mut raw, &prefix).await })
        }),
        teardown: Some(Box::pin(async move {
            db.drop_database().await.expect("drop the test database");
            drop(redis); // deletes the key prefix
        })),
    }
}

/// Redis seat lock + PostgreSQL ticket repository and catalog.
pub async fn redis_postgres_harness() -> Harness {
    use ticketing_sqlx::postgres::testing::{TestDatabase, URL_VAR};
    use ticketing_sqlx::postgres::{PgCatalog, PgTicketRepository};

    let db = TestDatabase::create(TEST_POOL_SIZE)
        .await
        .unwrap_or_else(|e| panic!("a test database (set {URL_VAR}): {e}"));
    let redis = TestRedis::shared();
    let seat_lock = Arc::new(redis.lock().await);
    let raw = connect(&redis.url).await;
    let prefix = redis.prefix.clone();
    let pool = db.pool().clone();
    let tickets = Arc::new(PgTicketRepository::new(pool.clone()));
    Harness {
        seat_lock,
        outbox: tickets.clone(),
        tickets,
        waiting_list: Arc::new(ticketing_sqlx::postgres::PgWaitingList::new(pool.clone())),
        catalog: Arc::new(PgCatalog::new(pool)),
        wipe_seat_lock: Arc::new(move || -> BoxFuture {
            let (mut raw, prefix) = (raw.clone(), prefix.clone());
            Box::pin(async move { delete_prefix(&mut raw, &prefix).await })
        }),
        teardown: Some(Box::pin(async move {
            db.drop_database().await.expect("drop the test database");
            drop(redis); // deletes the key prefix
        })),
    }
}
