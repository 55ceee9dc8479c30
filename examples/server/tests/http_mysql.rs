//! The HTTP suite on MySQL/MariaDB alone: repository, catalog and the SQL seat lock (what the
//! server uses with `--database-url` and no `--redis-url`). A fresh database per test, from
//! `TICKETING_MYSQL_URL` (default `mysql://root@127.0.0.1:3306/test`).

mod common;

use std::sync::Arc;

use common::TestApp;
use ticketing_core::service::Backends;
use ticketing_sqlx::testing::TestDatabase;
use ticketing_sqlx::{MySqlCatalog, MySqlSeatLock, MySqlTicketRepository, MySqlWaitingList};

async fn mysql() -> TestApp {
    let database = TestDatabase::create(8)
        .await
        .unwrap_or_else(|e| panic!("cannot create a test database (set TICKETING_MYSQL_URL): {e}"));
    let pool = database.pool().clone();
    let backends = Backends::builder()
        .tickets(Arc::new(MySqlTicketRepository::new(pool.clone())))
        .waiting_list(Arc::new(MySqlWaitingList::new(pool.clone())))
        .catalog(Arc::new(MySqlCatalog::new(pool.clone())))
        .seat_lock(Arc::new(MySqlSeatLock::new(pool)))
        .build()
        .expect("every adapter given");
    TestApp::new(backends, Some(Box::new(database))).await
}

http_suite!(mysql());

/// A database failure that no retry can cure (here a table gone, `ER_NO_SUCH_TABLE`) is
/// `500 INTERNAL` without `Retry-After`, not `503 UNAVAILABLE`: a client or a payment provider
/// told to retry would retry forever.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_failure_no_retry_cures_is_500_internal() {
    let database = TestDatabase::create(8)
        .await
        .unwrap_or_else(|e| panic!("cannot create a test database (set TICKETING_MYSQL_URL): {e}"));
    let pool = database.pool().clone();
    let backends = Backends::builder()
        .tickets(Arc::new(MySqlTicketRepository::new(pool.clone())))
        .catalog(Arc::new(MySqlCatalog::new(pool.clone())))
        .seat_lock(Arc::new(MySqlSeatLock::new(pool.clone())))
        .build()
        .expect("every adapter given");
    let app = TestApp::new(backends, None).await;
    let bought = app.buy("alice", &["STALLS:A:1"]).await;
    assert_eq!(bought.status, 201, "{}", bought.text());
    let order = bought.body["id"].as_str().expect("order id").to_owned();

    sqlx::query("RENAME TABLE tickets TO tickets_gone")
        .execute(&pool)
        .await
        .expect("rename the tickets table");
    for answer in [
        app.get_as("alice", &format!("/api/orders/{order}")).await,
        app.post_as(
            "alice",
            &format!("/api/orders/{order}/cancel"),
            &serde_json::json!({}),
        )
        .await,
    ] {
        answer.expect(
            axum::http::StatusCode::INTERNAL_SERVER_ERROR,
            Some("INTERNAL"),
        );
        assert!(
            !answer.headers.contains_key("retry-after"),
            "{:?}",
            answer.headers
        );
        assert_eq!(
            answer.body["message"], "internal error",
            "no driver message"
        );
    }
    sqlx::query("RENAME TABLE tickets_gone TO tickets")
        .execute(&pool)
        .await
        .expect("rename it back");
    let answer = app.get_as("alice", &format!("/api/orders/{order}")).await;
    assert_eq!(answer.status, 200, "{}", answer.text());
    drop(app);
    database
        .drop_database()
        .await
        .expect("drop the test database");
}
