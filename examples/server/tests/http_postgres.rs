//! The HTTP suite on PostgreSQL alone: repository, catalog and the SQL seat lock (what the
//! server uses with a `postgres://` `--database-url` and no `--redis-url`). A fresh database per
//! test, from `TICKETING_POSTGRES_URL` (default `postgres://postgres@127.0.0.1:5432/test`).

mod common;

use std::sync::Arc;

use common::TestApp;
use ticketing_core::service::Backends;
use ticketing_sqlx::postgres::testing::{TestDatabase, URL_VAR};
use ticketing_sqlx::postgres::{PgCatalog, PgSeatLock, PgTicketRepository, PgWaitingList};

async fn database() -> TestDatabase {
    TestDatabase::create(8)
        .await
        .unwrap_or_else(|e| panic!("cannot create a test database (set {URL_VAR}): {e}"))
}

fn backends(pool: &sqlx::PgPool) -> Backends {
    Backends::builder()
        .tickets(Arc::new(PgTicketRepository::new(pool.clone())))
        .waiting_list(Arc::new(PgWaitingList::new(pool.clone())))
        .catalog(Arc::new(PgCatalog::new(pool.clone())))
        .seat_lock(Arc::new(PgSeatLock::new(pool.clone())))
        .build()
        .expect("every adapter given")
}

async fn postgres() -> TestApp {
    let database = database().await;
    let backends = backends(database.pool());
    TestApp::new(backends, Some(Box::new(database))).await
}

http_suite!(postgres());

/// A database failure that no retry can cure (here a table gone, `42P01`) is `500 INTERNAL`
/// without `Retry-After`, not `503 UNAVAILABLE`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_failure_no_retry_cures_is_500_internal() {
    let database = database().await;
    let pool = database.pool().clone();
    let app = TestApp::new(backends(&pool), None).await;
    let bought = app.buy("alice", &["STALLS:A:1"]).await;
    assert_eq!(bought.status, 201, "{}", bought.text());
    let order = bought.body["id"].as_str().expect("order id").to_owned();

    sqlx::query("ALTER TABLE tickets RENAME TO tickets_gone")
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
    sqlx::query("ALTER TABLE tickets_gone RENAME TO tickets")
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
