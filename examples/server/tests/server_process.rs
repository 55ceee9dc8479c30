//! The whole server as `ticketing-server --database-url …` runs it (`ticketing_server::run`, real
//! flags, a real listener): write batching on by default, and the outbox relay repairing the SQL
//! seat lock without Redis. A fresh database per test, from `TICKETING_MYSQL_URL` (default
//! `mysql://root@127.0.0.1:3306/test`).

mod common;
mod process;

use std::net::SocketAddr;
use std::time::Duration;

use axum::body::Bytes;
use axum::http::{Request, StatusCode};
use common::free_port;
use http_body_util::Full;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::json;
use ticketing_server::config::Args;
use uuid::Uuid;

use backend::{TestDatabase, URL_VAR};
use process::{HttpClient, database_url};

/// The MySQL adapters the shared checks run on.
mod backend {
    pub(crate) use ticketing_sqlx::MySqlTicketRepository as Repository;
    pub(crate) use ticketing_sqlx::testing::{TestDatabase, URL_VAR};

    /// The test server's URL (`TICKETING_MYSQL_URL`, or the default).
    pub(crate) fn server_url() -> String {
        std::env::var(URL_VAR).unwrap_or_else(|_| ticketing_sqlx::testing::DEFAULT_URL.to_owned())
    }
}

/// A change committed behind the seat lock's back (as when a process dies between the commit and
/// its lock call) reaches the SQL seat lock through the outbox relay that `run` starts, without
/// Redis; and purchases go through the default (batched) repository.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_relay_repairs_the_sql_seat_lock_in_a_server_without_redis() {
    // Purchases go through the default (batched) repository.
    process::the_relay_repairs_the_sql_seat_lock(|backends| backends.contains("write batching"))
        .await;
}

/// `--retention`: the server prunes the outbox entries the relay published and the idempotency
/// records once they are older than the retention; the orders stay, and the same key repeated
/// afterwards is refused (`409`), never a second order.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_server_prunes_published_history_older_than_the_retention() {
    let database = TestDatabase::create(4)
        .await
        .unwrap_or_else(|e| panic!("cannot create a test database (set {URL_VAR}): {e}"));
    let address: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let url = database_url(database.name());
    let args = Args::from_flags([
        "ticketing-server",
        "--listen",
        &address.to_string(),
        "--database-url",
        &url,
        "--demo",
        "true",
        "--jwt-hs256-secret",
        common::JWT_SECRET,
        "--retention",
        "2s",
        "--prune-interval",
        "100ms",
    ]);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(ticketing_server::run(args, async move {
        let _ = stopped.await;
    }));
    let client: HttpClient = Client::builder(TokioExecutor::new()).build_http();
    let base = format!("http://{address}");
    let mut up = false;
    for _ in 0..200 {
        let request = Request::get(format!("{base}/health"))
            .body(Full::new(Bytes::new()))
            .unwrap();
        if client
            .request(request)
            .await
            .is_ok_and(|r| r.status().is_success())
        {
            up = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(up, "the server did not come up on {address}");
    let pool = database.pool();
    let event: Uuid = sqlx::query_scalar("SELECT id FROM events")
        .fetch_one(pool)
        .await
        .expect("the demo event");
    let buy = |number: u32| {
        let request = Request::post(format!("{base}/api/tickets"))
            .header("authorization", common::bearer("keeper"))
            .header("content-type", "application/json")
            .header("idempotency-key", format!("key-{number}"))
            .body(Full::new(Bytes::from(
                json!({"eventId": event, "seats": [{"zone": "STALLS", "row": "A", "number": number}]})
                    .to_string(),
            )))
            .unwrap();
        client.request(request)
    };
    for number in 1..=3 {
        assert_eq!(buy(number).await.unwrap().status(), StatusCode::CREATED);
    }
    let count = |table: &'static str| async move {
        sqlx::query_scalar::<_, i64>(sqlx::AssertSqlSafe(format!("SELECT COUNT(*) FROM {table}")))
            .fetch_one(pool)
            .await
            .unwrap()
    };
    assert_eq!(
        count("idempotency_keys").await,
        3,
        "younger than the retention"
    );
    let mut left = (0, 0);
    for _ in 0..100 {
        left = (count("outbox").await, count("idempotency_keys").await);
        if left == (0, 0) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(left, (0, 0), "(outbox rows, idempotency records) left");
    assert_eq!(count("orders").await, 3, "orders stay");
    let sent: u64 = sqlx::query_scalar("SELECT sent_seq FROM outbox_relay")
        .fetch_one(pool)
        .await
        .unwrap();
    assert!(sent >= 3, "pruned only after the relay published: {sent}");
    let again = buy(1).await.unwrap();
    assert_eq!(
        again.status(),
        StatusCode::CONFLICT,
        "a pruned key repeated"
    );
    assert_eq!(count("orders").await, 3, "no second order");

    stop.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(30), server)
        .await
        .expect("the server stops")
        .expect("the server task")
        .expect("the server ran without error");
    database.drop_database().await.unwrap();
}
